//! Builds the plugin components from source on every build (no `.wasm` lives in git):
//! the guest crate is compiled to a core wasm module for `wasm32-unknown-unknown`, then
//! wrapped as a component with `wit-component`. The paths are handed to the code as
//! `CONNLOG_REFERENCE_PLUGIN` and `CONNLOG_FAULTY_PLUGIN`.

#[path = "build/guest_toolchain.rs"]
mod guest_toolchain;

use std::path::{Path, PathBuf};

use guest_toolchain::Toolchain;

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ lives in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env("OUT_DIR"));

    for watched in ["guest/src", "guest/Cargo.toml", "wit", "Cargo.lock"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    println!("cargo:rerun-if-changed=build/guest_toolchain.rs");
    println!("cargo:rerun-if-env-changed=CONNLOG_GUEST_TOOLCHAIN");

    let toolchain = Toolchain::detect().unwrap_or_else(|why| {
        // A build script's panic is the clearest way to stop the build with a message.
        panic!(
            "\n\nconnlog cannot build its wasm plugin: {why}\n\n{}\n",
            guest_toolchain::INSTALL_HELP
        )
    });
    let guest_target_dir = shared_guest_target_dir(&out_dir);

    let plugins = [
        ("CONNLOG_REFERENCE_PLUGIN", "connlog-reference.wasm", None),
        (
            "CONNLOG_FAULTY_PLUGIN",
            "connlog-faulty.wasm",
            Some("fault-injection"),
        ),
    ];
    for (env_name, file_name, features) in plugins {
        let core = toolchain
            .build_guest(&workspace, &guest_target_dir, features)
            .unwrap_or_else(|why| panic!("\n\nbuilding the guest ({file_name}) failed: {why}\n"));
        let component_path = out_dir.join(file_name);
        componentize(&core, &component_path);
        println!("cargo:rustc-env={env_name}={}", component_path.display());
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}

/// One guest target directory for every host profile, so guest builds stay incremental.
/// OUT_DIR is `<target>/<profile>/build/<pkg>-<hash>/out`.
fn shared_guest_target_dir(out_dir: &Path) -> PathBuf {
    let target_dir = out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(|build| build.parent()?.parent())
        .unwrap_or(out_dir);
    target_dir.join("guest-wasm")
}

fn componentize(core_module: &Path, component_path: &Path) {
    let module = std::fs::read(core_module)
        .unwrap_or_else(|e| panic!("reading the guest module {}: {e}", core_module.display()));
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .unwrap_or_else(|e| panic!("turning {} into a component: {e:?}", core_module.display()));
    std::fs::write(component_path, component)
        .unwrap_or_else(|e| panic!("writing {}: {e}", component_path.display()));
}
