//! Builds the shipped plugins from source on every build (no `.wasm` lives in git): crates
//! `connlog-reference` and `connlog-privacy` are compiled for `wasm32-unknown-unknown` and
//! wrapped as components, whose paths the code embeds through `CONNLOG_REFERENCE_PLUGIN`
//! and `CONNLOG_PRIVACY_PLUGIN`.

#[path = "build/guest_toolchain.rs"]
mod guest_toolchain;
#[path = "../guest/sdk/build/wit_packages.rs"]
mod wit_packages;

use std::path::PathBuf;

use guest_toolchain::Toolchain;

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ lives in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env("OUT_DIR"));
    // The contract versions, from each WIT folder's `package` line, as the SDK reads them.
    wit_packages::emit(&workspace.join("wit"), "../wit");

    let toolchain = Toolchain::detect().unwrap_or_else(|why| {
        // A build script's panic is the clearest way to stop the build with a message.
        panic!(
            "\n\nconnlog cannot build its wasm plugin: {why}\n\n{}\n",
            guest_toolchain::INSTALL_HELP
        )
    });
    let target_dir = guest_toolchain::shared_target_dir(&out_dir);

    let plugins = [
        ("CONNLOG_REFERENCE_PLUGIN", "connlog-reference"),
        ("CONNLOG_PRIVACY_PLUGIN", "connlog-privacy"),
    ];
    let mut sources = Vec::new();
    for (env_name, package) in plugins {
        let component = out_dir.join(format!("{package}.wasm"));
        sources.extend(
            toolchain
                .build_component(&workspace, &target_dir, package, &component)
                .unwrap_or_else(|why| panic!("\n\nbuilding plugin {package} failed: {why}\n")),
        );
        println!("cargo:rustc-env={env_name}={}", component.display());
    }
    guest_toolchain::rerun_if_changed(&workspace, &sources);
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}
