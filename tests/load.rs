//! Loading plugins: the reference plugin loads and identifies itself, its compilation is
//! cached, and anything that is not a plugin for this contract is refused clearly.

use connlog::plugin::{ComponentCache, Embedded, PluginError, PluginHost, PluginSource};

fn host_with_cache(dir: &std::path::Path) -> PluginHost {
    PluginHost::new(Some(ComponentCache::new(dir.to_path_buf()))).expect("engine")
}

#[test]
fn reference_plugin_loads_and_reports_its_identity() {
    let cache = tempfile::tempdir().unwrap();
    let plugin = host_with_cache(cache.path())
        .load(&PluginSource::Embedded(Embedded::Reference))
        .expect("the reference plugin loads");
    assert_eq!(plugin.info.name, "connlog-reference");
    assert_eq!(plugin.info.contract_version, "0.3.0");
    assert_eq!(plugin.digest.len(), 64, "sha-256 hex digest");
}

#[test]
fn second_load_uses_the_compiled_component_cache() {
    let cache = tempfile::tempdir().unwrap();
    let first = host_with_cache(cache.path())
        .load(&PluginSource::Embedded(Embedded::Reference))
        .unwrap();
    assert!(
        !first.from_cache,
        "an empty cache cannot serve the first load"
    );
    // A new engine, as a new process would have.
    let second = host_with_cache(cache.path())
        .load(&PluginSource::Embedded(Embedded::Reference))
        .unwrap();
    assert!(
        second.from_cache,
        "the second load must come from the cache"
    );
    assert_eq!(first.digest, second.digest);
}

#[test]
fn a_damaged_cache_entry_is_ignored_and_replaced() {
    let cache = tempfile::tempdir().unwrap();
    host_with_cache(cache.path())
        .load(&PluginSource::Embedded(Embedded::Reference))
        .unwrap();
    for entry in std::fs::read_dir(cache.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let reloaded = host_with_cache(cache.path())
        .load(&PluginSource::Embedded(Embedded::Reference))
        .expect("recompiles");
    assert!(!reloaded.from_cache);
}

fn load_file(bytes: &[u8]) -> Result<connlog::plugin::LoadedPlugin, PluginError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plugin.wasm");
    std::fs::write(&path, bytes).unwrap();
    PluginHost::new(None)
        .unwrap()
        .load(&PluginSource::File(path))
}

#[test]
fn bytes_that_are_not_a_component_are_refused_without_quoting_them() {
    let err = load_file(b"SECRET=hunter2\n").err().expect("refused");
    assert!(matches!(err, PluginError::NotAPlugin { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("not a WebAssembly file"), "{message}");
    // Neither the text nor its bytes (the parser's own message shows them as hex).
    assert!(
        !message.contains("SECRET") && !message.contains("0x53"),
        "{message}"
    );
    let core = wat::parse_str("(module)").unwrap();
    let message = load_file(&core).err().expect("refused").to_string();
    assert!(
        message.contains("a core WebAssembly module, not a component"),
        "{message}"
    );
    let mut broken = wat::parse_str("(component)").unwrap();
    broken.extend_from_slice(b"\x7fSECRET");
    let message = load_file(&broken).err().expect("refused").to_string();
    assert!(
        message.contains("not a valid WebAssembly component"),
        "{message}"
    );
    assert!(!message.contains("SECRET"), "{message}");
}

#[test]
fn a_missing_file_is_reported_with_its_path() {
    let err = PluginHost::new(None)
        .unwrap()
        .load(&PluginSource::File("/nonexistent/plugin.wasm".into()))
        .err()
        .expect("refused");
    assert!(matches!(err, PluginError::Unreadable { .. }), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/plugin.wasm"),
        "{err}"
    );
}

#[test]
fn a_component_of_another_kind_is_refused() {
    let err = load_file(&wat::parse_str("(component)").unwrap())
        .err()
        .expect("refused");
    assert!(matches!(err, PluginError::NotAPlugin { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("exports no coder:connection-log interface"),
        "{err}"
    );
}

/// A component that claims another major version of the contract.
fn component_for_contract(version: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
            (core module $m (func (export "f") (result i32) i32.const 0))
            (core instance $i (instantiate $m))
            (func $f (result u32) (canon lift (core func $i "f")))
            (instance $api (export "describe" (func $f)))
            (export "coder:connection-log/plugin-info@{version}" (instance $api)))"#
    ))
    .unwrap()
}

#[test]
fn a_plugin_for_another_contract_version_is_refused() {
    for version in ["9.0.0", "0.4.0", "1.0.0", "0.0.1"] {
        let err = load_file(&component_for_contract(version))
            .err()
            .expect("refused");
        assert!(
            matches!(err, PluginError::IncompatibleContract { .. }),
            "{version}: {err}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&format!("coder:connection-log@{version}")),
            "{message}"
        );
        assert!(
            message.ends_with("this host supports only 0.1.0, 0.2.0, 0.3.0"),
            "{message}"
        );
    }
}

#[test]
fn a_plugin_for_this_contract_version_with_missing_exports_is_refused() {
    for version in ["0.1.0", "0.2.0", "0.2.7", "0.3.0"] {
        let err = load_file(&component_for_contract(version))
            .err()
            .expect("refused");
        assert!(matches!(err, PluginError::NotAPlugin { .. }), "{err}");
        assert!(
            err.to_string().contains("do not match the contract"),
            "{version}: {err}"
        );
    }
}
