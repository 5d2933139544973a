#!/usr/bin/env bash
# Makes this machine able to build connlog: a Rust toolchain for the host, and a way to
# compile the plugin for wasm32-unknown-unknown. With --tests, also what only the tests
# use: a browser and a PostgreSQL server. Idempotent: installs only what is missing.
set -euo pipefail

say() { printf 'setup: %s\n' "$*" >&2; }

for_tests=0
case "${1:-}" in
    "") ;;
    --tests) for_tests=1 ;;
    *) say "unknown option $1 (the only one is --tests)"; exit 2 ;;
esac

# Installs Debian packages with apt-get (through sudo when not root).
apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

if ! command -v cargo >/dev/null 2>&1; then
    say "cargo is missing: install Rust (https://rustup.rs), then run this again."
    exit 1
fi

rustup_has_wasm() {
    local libdir
    libdir=$(rustc --print target-libdir --target wasm32-unknown-unknown 2>/dev/null) || return 1
    compgen -G "$libdir/libstd-*" >/dev/null
}

debian_route_ready() {
    [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] \
        && [ -f "$(/usr/bin/rustc --print sysroot)/lib/rustlib/src/rust/library/Cargo.toml" ] \
        && compgen -G '/usr/lib/llvm-*/bin/wasm-ld' >/dev/null
}

if rustup_has_wasm; then
    say "wasm32 guest toolchain: rustup's wasm32-unknown-unknown target"
elif debian_route_ready; then
    say "wasm32 guest toolchain: Debian rustc-web with -Zbuild-std"
elif command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's rustc-web, cargo-web, rust-web-src and lld-22 for the wasm32 guest"
    apt_install rustc-web cargo-web rust-web-src lld-22
    debian_route_ready || { say "the Debian packages installed, but the toolchain is still incomplete"; exit 1; }
else
    say "no way to compile the wasm32 plugin. Install one of:"
    say "  rustup target add wasm32-unknown-unknown"
    say "  apt-get install -y rustc-web cargo-web rust-web-src lld-22   (Debian 12)"
    exit 1
fi

[ "$for_tests" -eq 1 ] || exit 0

# The page's browser tests (tests/browser.rs) drive Debian's headless Chromium through
# chromedriver; they fail, naming these packages, when either is missing.
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    say "browser tests: Debian chromium and chromium-driver"
elif command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's chromium and chromium-driver for the browser tests"
    apt_install chromium chromium-driver
else
    say "no chromium and chromedriver for the browser tests: install chromium and chromium-driver (Debian 12)"
    exit 1
fi

# The PostgreSQL tests (tests/migrate.rs) start a private cluster from Debian's server
# binaries (initdb, pg_ctl) in a temporary directory; they fail, naming the package, when
# it is missing.
if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    say "PostgreSQL tests: Debian postgresql"
elif command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's postgresql for the PostgreSQL tests"
    apt_install postgresql
else
    say "no PostgreSQL server for the PostgreSQL tests: install postgresql (Debian 12)"
    exit 1
fi
