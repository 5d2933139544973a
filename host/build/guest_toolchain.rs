//! Finds a way to compile Rust for `wasm32-unknown-unknown`, and drives it.
//!
//! Two routes, tried in order:
//! 1. rustup's own toolchain, when it has the `wasm32-unknown-unknown` standard library;
//! 2. Debian's `rustc-web` + `rust-web-src` + `lld`, which build the standard library from
//!    source with `-Zbuild-std` (rustup cannot download targets on every machine).

use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "wasm32-unknown-unknown";

pub const INSTALL_HELP: &str = "\
Install one of:
  - with rustup:            rustup target add wasm32-unknown-unknown
  - on Debian 12 (root):    apt-get install -y rustc-web cargo-web rust-web-src lld-22
(`scripts/setup.sh` does whichever applies.)";

pub enum Toolchain {
    Rustup {
        cargo: PathBuf,
        rustc: PathBuf,
    },
    DebianBuildStd {
        cargo: PathBuf,
        rustc: PathBuf,
        linker: PathBuf,
    },
}

impl Toolchain {
    pub fn detect() -> Result<Self, String> {
        let forced = std::env::var("CONNLOG_GUEST_TOOLCHAIN").ok();
        let rustup = rustup_route();
        let debian = debian_route();
        match forced.as_deref() {
            Some("rustup") => rustup,
            Some("debian") => debian,
            Some(other) => Err(format!(
                "CONNLOG_GUEST_TOOLCHAIN={other:?}: use `rustup` or `debian`"
            )),
            None => rustup.or_else(|rustup_why| {
                debian.map_err(|debian_why| {
                    format!(
                        "no wasm32 toolchain found.\n  rustup: {rustup_why}\n  debian: {debian_why}"
                    )
                })
            }),
        }
    }

    /// Builds the guest crate; returns the core module's path.
    pub fn build_guest(
        &self,
        workspace: &Path,
        target_dir: &Path,
        features: Option<&str>,
    ) -> Result<PathBuf, String> {
        let (cargo, rustc) = match self {
            Toolchain::Rustup { cargo, rustc } | Toolchain::DebianBuildStd { cargo, rustc, .. } => {
                (cargo, rustc)
            }
        };
        let mut cmd = Command::new(cargo);
        clear_outer_cargo_env(&mut cmd);
        cmd.current_dir(workspace)
            .env("RUSTC", rustc)
            .env("CARGO_TARGET_DIR", target_dir)
            .args([
                "build",
                "--profile",
                "guest",
                "-p",
                "connlog-guest",
                "--lib",
                "--target",
                TARGET,
            ]);
        if let Some(features) = features {
            cmd.args(["--features", features]);
        }
        if let Toolchain::DebianBuildStd { linker, .. } = self {
            cmd.env("RUSTC_BOOTSTRAP", "1")
                .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", linker)
                .args(["-Zbuild-std=std,panic_abort"]);
        }
        let output = cmd
            .output()
            .map_err(|e| format!("running {}: {e}", cargo.display()))?;
        if !output.status.success() {
            return Err(format!(
                "`{cmd:?}` failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        // Two feature sets share one output name: copy it out before the next build.
        let built = target_dir
            .join(TARGET)
            .join("guest")
            .join("connlog_guest.wasm");
        let suffix = features.unwrap_or("default");
        let kept = target_dir.join(format!("connlog_guest.{suffix}.core.wasm"));
        std::fs::copy(&built, &kept).map_err(|e| format!("copying {}: {e}", built.display()))?;
        Ok(kept)
    }
}

fn rustup_route() -> Result<Toolchain, String> {
    let rustc = PathBuf::from(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()));
    let cargo = PathBuf::from(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .map_err(|e| format!("running {}: {e}", rustc.display()))?;
    let libdir = PathBuf::from(String::from_utf8_lossy(&libdir.stdout).trim());
    let has_std = std::fs::read_dir(&libdir)
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
        })
        .unwrap_or(false);
    if has_std {
        Ok(Toolchain::Rustup { cargo, rustc })
    } else {
        Err(format!(
            "{} has no {TARGET} standard library",
            rustc.display()
        ))
    }
}

fn debian_route() -> Result<Toolchain, String> {
    let cargo = PathBuf::from("/usr/bin/cargo");
    let rustc = PathBuf::from("/usr/bin/rustc");
    for (path, package) in [(&cargo, "cargo-web"), (&rustc, "rustc-web")] {
        if !path.exists() {
            return Err(format!("{} is missing (package {package})", path.display()));
        }
    }
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("running {}: {e}", rustc.display()))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    let library = sysroot.join("lib/rustlib/src/rust/library/Cargo.toml");
    if !library.exists() {
        return Err(format!(
            "{} is missing (package rust-web-src)",
            library.display()
        ));
    }
    let linker = find_wasm_ld().ok_or("no wasm-ld found (package lld-22)")?;
    Ok(Toolchain::DebianBuildStd {
        cargo,
        rustc,
        linker,
    })
}

/// The newest `/usr/lib/llvm-N/bin/wasm-ld`, else `wasm-ld` on PATH.
fn find_wasm_ld() -> Option<PathBuf> {
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version = name.strip_prefix("llvm-")?.parse().ok()?;
            let ld = entry.path().join("bin/wasm-ld");
            ld.exists().then_some((version, ld))
        })
        .collect();
    versioned.sort();
    versioned.pop().map(|(_, ld)| ld).or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("wasm-ld"))
                .find(|p| p.exists())
        })
    })
}

/// The outer build's settings (flags, wrappers, its target dir) must not leak into the
/// nested one.
fn clear_outer_cargo_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let outer = key.starts_with("CARGO_")
            && !key.starts_with("CARGO_HOME")
            && !key.starts_with("CARGO_NET_")
            && !key.starts_with("CARGO_HTTP_")
            && !key.starts_with("CARGO_REGISTRIES_");
        if outer
            || matches!(
                key.as_ref(),
                "RUSTFLAGS"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "RUSTDOC"
                    | "RUSTC_BOOTSTRAP"
            )
        {
            cmd.env_remove(key.as_ref());
        }
    }
}
