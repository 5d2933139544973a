//! Builds the test plugins from source for wasm32, wraps each as a component in OUT_DIR and
//! hands its path to `src/lib.rs`. Only tests depend on this crate, so a plain build of the
//! host never builds a test plugin.

#[path = "../build/guest_toolchain.rs"]
mod guest_toolchain;

use std::path::PathBuf;

use guest_toolchain::Toolchain;

/// (environment variable, workspace package) of each test plugin.
const PLUGINS: [(&str, &str); 4] = [
    ("CONNLOG_FAULTY_PLUGIN", "connlog-faulty-plugin"),
    ("CONNLOG_REFERENCE_V0_1_PLUGIN", "connlog-reference-v0-1"),
    ("CONNLOG_REFERENCE_V0_2_PLUGIN", "connlog-reference-v0-2"),
    ("CONNLOG_SESSIONLESS_PLUGIN", "connlog-sessionless-plugin"),
];

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .ancestors()
        .nth(2)
        .expect("host/test-plugins lives in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env("OUT_DIR"));

    let toolchain = Toolchain::detect().unwrap_or_else(|why| {
        panic!(
            "\n\nthe test plugins cannot be built: {why}\n\n{}\n",
            guest_toolchain::INSTALL_HELP
        )
    });
    let target_dir = guest_toolchain::shared_target_dir(&out_dir);

    let mut sources = Vec::new();
    for (env_name, package) in PLUGINS {
        let component = out_dir.join(format!("{package}.wasm"));
        sources.extend(
            toolchain
                .build_component(&workspace, &target_dir, package, &component)
                .unwrap_or_else(|why| panic!("\n\nbuilding test plugin {package} failed: {why}\n")),
        );
        println!("cargo:rustc-env={env_name}={}", component.display());
    }
    guest_toolchain::rerun_if_changed(&workspace, &sources);
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}
