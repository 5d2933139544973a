//! Sets the contract's name and version of each WIT folder from its `package` line (see
//! `build/wit_packages.rs`).

#[path = "build/wit_packages.rs"]
mod wit_packages;

fn main() {
    // Read when the script runs, not when it was compiled: a build script compiled for one
    // checkout may be run for another that shares the target directory.
    let sdk = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let wit = sdk
        .ancestors()
        .nth(2)
        .expect("guest/sdk lives in the workspace")
        .join("wit");
    wit_packages::emit(&wit, "../../wit");
}
