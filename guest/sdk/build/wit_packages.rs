//! The contract's package name and version come from the `package` line of its WIT folder,
//! so they are written in one place. For each folder under `wit/`, such as `v0.1.0` holding
//! `package coder:connection-log@0.1.0;`, [`emit`] sets `CONNLOG_CONTRACT_V0_1_0_NAME` to
//! `coder:connection-log` and `CONNLOG_CONTRACT_V0_1_0_VERSION` to `0.1.0` for the crate
//! being built. Shared by the SDK's build script and the host's.

use std::path::Path;

/// `wit` is the `wit/` folder; `wit_relative` the same folder relative to the package being
/// built. Cargo resolves relative watch paths against the package, and checkouts that share
/// a target directory share a build script's fingerprint: an absolute path would watch only
/// the checkout that ran it first.
pub fn emit(wit: &Path, wit_relative: &str) {
    println!("cargo:rerun-if-changed={wit_relative}");
    let folders =
        std::fs::read_dir(wit).unwrap_or_else(|e| panic!("reading {}: {e}", wit.display()));
    for folder in folders {
        let folder = folder.expect("a readable wit/ entry").path();
        if !folder.is_dir() {
            continue;
        }
        let package = package_of(&folder, wit_relative);
        let name = folder.file_name().unwrap().to_string_lossy();
        let key: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        let (name, version) = package.split_once('@').expect("checked by package_of");
        println!("cargo:rustc-env=CONNLOG_CONTRACT_{key}_NAME={name}");
        println!("cargo:rustc-env=CONNLOG_CONTRACT_{key}_VERSION={version}");
    }
}

/// The one package every `.wit` file of `folder` declares, such as
/// `coder:connection-log@0.1.0`.
fn package_of(folder: &Path, wit_relative: &str) -> String {
    let mut found: Option<String> = None;
    let mut files: Vec<_> = std::fs::read_dir(folder)
        .unwrap_or_else(|e| panic!("reading {}: {e}", folder.display()))
        .map(|entry| entry.expect("a readable WIT file").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wit"))
        .collect();
    files.sort();
    for file in files {
        let relative = file
            .strip_prefix(folder.parent().expect("a folder of wit/"))
            .expect("a file of its folder");
        println!(
            "cargo:rerun-if-changed={wit_relative}/{}",
            relative.display()
        );
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let Some(package) = text.lines().find_map(|line| {
            let rest = line.trim().strip_prefix("package ")?;
            Some(rest.trim_end_matches(';').trim().to_string())
        }) else {
            continue;
        };
        match &found {
            Some(other) if *other != package => panic!(
                "{} declares package {package}, another file of its folder {other}",
                file.display()
            ),
            _ => found = Some(package),
        }
    }
    let package = found.unwrap_or_else(|| panic!("no `package` line in {}", folder.display()));
    if !package.contains('@') {
        panic!("{}: package {package} has no version", folder.display());
    }
    package
}
