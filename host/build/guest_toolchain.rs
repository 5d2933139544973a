//! Builds plugin components from source for a build script: finds a way to compile Rust for
//! `wasm32-unknown-unknown`, builds a plugin crate with it, wraps the core module as a
//! component with `wit-component`, and tells Cargo exactly which files to watch (from the
//! dep-info of the wasm build).
//!
//! Two routes to wasm32, tried in order:
//! 1. rustup's own toolchain, when it has the `wasm32-unknown-unknown` standard library;
//! 2. Debian's `rustc-web` + `rust-web-src` + `lld`, which build the standard library from
//!    source with `-Zbuild-std` (rustup cannot download targets on every machine).

use std::fs::File;
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

    /// Builds the `cdylib` of workspace package `package` for wasm32 into `target_dir`,
    /// writes it as a component to `component`, and returns the source files it was built
    /// from (for [`rerun_if_changed`]).
    pub fn build_component(
        &self,
        workspace: &Path,
        target_dir: &Path,
        package: &str,
        component: &Path,
    ) -> Result<Vec<PathBuf>, String> {
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
                package,
                "--lib",
                "--target",
                TARGET,
            ]);
        if let Toolchain::DebianBuildStd { linker, .. } = self {
            cmd.env("RUSTC_BOOTSTRAP", "1")
                .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", linker)
                .args(["-Zbuild-std=std,panic_abort"]);
        }

        // Build scripts of several crates share `target_dir`. Cargo serialises their
        // builds, but not the reads that follow: hold the directory until the module and its
        // dep-info are read.
        std::fs::create_dir_all(target_dir)
            .map_err(|e| format!("creating {}: {e}", target_dir.display()))?;
        let lock = File::create(target_dir.join(".connlog-build-lock"))
            .and_then(|file| file.lock().map(|()| file))
            .map_err(|e| format!("locking {}: {e}", target_dir.display()))?;
        let output = cmd
            .output()
            .map_err(|e| format!("running {}: {e}", cargo.display()))?;
        if !output.status.success() {
            return Err(format!(
                "`{cmd:?}` failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let built = target_dir.join(TARGET).join("guest");
        let stem = package.replace('-', "_");
        let module = built.join(format!("{stem}.wasm"));
        let module = std::fs::read(&module)
            .map_err(|e| format!("reading the core module {}: {e}", module.display()))?;
        let dep_info = built.join(format!("{stem}.d"));
        let dep_info = std::fs::read_to_string(&dep_info)
            .map_err(|e| format!("reading {}: {e}", dep_info.display()))?;
        drop(lock);

        let encoded = wit_component::ComponentEncoder::default()
            .module(&module)
            .and_then(|encoder| encoder.validate(true).encode())
            .map_err(|e| format!("turning {package} into a component: {e:?}"))?;
        std::fs::write(component, encoded)
            .map_err(|e| format!("writing {}: {e}", component.display()))?;
        Ok(dep_info_sources(&dep_info))
    }
}

/// Tells Cargo to rerun the build script when any file a plugin was built from changes:
/// its sources (from the dep-info, so every module and WIT file, across path dependencies),
/// the manifest of each package they belong to, the workspace's manifest (profiles) and
/// lock file, and this file.
pub fn rerun_if_changed(workspace: &Path, sources: &[PathBuf]) {
    let mut watched: Vec<PathBuf> = vec![
        workspace.join("Cargo.toml"),
        workspace.join("Cargo.lock"),
        workspace.join("host/build/guest_toolchain.rs"),
    ];
    for source in sources {
        watched.push(source.clone());
        if let Some(manifest) = source
            .ancestors()
            .skip(1)
            .map(|dir| dir.join("Cargo.toml"))
            .find(|manifest| manifest.exists())
        {
            watched.push(manifest);
        }
    }
    watched.sort();
    watched.dedup();
    for path in watched {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rerun-if-env-changed=CONNLOG_GUEST_TOOLCHAIN");
}

/// The files a Cargo dep-info file lists: `target: dep dep …`, spaces in paths escaped.
fn dep_info_sources(dep_info: &str) -> Vec<PathBuf> {
    let mut sources = Vec::new();
    for line in dep_info.lines() {
        let Some((_, deps)) = line.split_once(": ") else {
            continue;
        };
        let mut current = String::new();
        let mut chars = deps.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => current.extend(chars.next()),
                ' ' => {
                    if !current.is_empty() {
                        sources.push(PathBuf::from(std::mem::take(&mut current)));
                    }
                }
                _ => current.push(c),
            }
        }
        if !current.is_empty() {
            sources.push(PathBuf::from(current));
        }
    }
    sources
}

/// One wasm target directory for every build script and host profile, so that plugin
/// builds stay incremental and the standard library is built once. `out_dir` is a build
/// script's OUT_DIR, `<target>/<profile>/build/<pkg>-<hash>/out`.
pub fn shared_target_dir(out_dir: &Path) -> PathBuf {
    let target_dir = out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(|build| build.parent()?.parent())
        .unwrap_or(out_dir);
    target_dir.join("guest-wasm")
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
