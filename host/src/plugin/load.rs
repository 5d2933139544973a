//! Loading a plugin: its bytes, compiled (or taken from the cache), its contract version
//! checked, its imports and exports type-checked, and its own account of itself read.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::wit::v0_1::{CONTRACT_PACKAGE, CONTRACT_VERSION, ConnectionLogPluginPre};
use super::{Clock, HostState, Limits, PluginError, PluginHost, PluginInfo, PluginInstance};
use crate::directory::Lookup;
use crate::model;
use crate::store::Journal;

/// The reference plugin, built from `guest/` by `build.rs` and embedded in the binary.
pub static REFERENCE_PLUGIN: &[u8] = include_bytes!(env!("CONNLOG_REFERENCE_PLUGIN"));

/// Where a plugin comes from.
#[derive(Clone, Debug)]
pub enum PluginSource {
    /// The reference plugin embedded in this binary.
    Embedded,
    File(PathBuf),
}

/// The name that selects the embedded reference plugin (`--plugin reference`).
pub const REFERENCE_NAME: &str = "reference";

impl PluginSource {
    /// `reference` names the embedded plugin; anything else is a component file.
    pub fn from_arg(arg: &std::path::Path) -> Self {
        if arg.as_os_str() == REFERENCE_NAME {
            PluginSource::Embedded
        } else {
            PluginSource::File(arg.to_path_buf())
        }
    }

    /// The plugin a remote caller names: an embedded plugin by name, or a file of
    /// `directory` by its plain file name. Never any other path: a caller cannot make the
    /// server read a file the operator did not put there.
    pub fn named_in(name: &str, directory: Option<&std::path::Path>) -> Result<Self, String> {
        if name == REFERENCE_NAME {
            return Ok(PluginSource::Embedded);
        }
        let Some(directory) = directory else {
            return Err(format!(
                "no plugin named {name:?} is embedded, and plugin files are loaded only from the directory given with `serve --plugin-dir`, which is not set"
            ));
        };
        let plain = !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0']);
        if !plain {
            return Err(format!(
                "{name:?} is not a plain file name: name an embedded plugin ({REFERENCE_NAME}) or a file of the plugin directory"
            ));
        }
        let path = directory.join(name);
        // A link out of the directory is refused like a path would be.
        if let (Ok(real), Ok(root)) = (path.canonicalize(), directory.canonicalize())
            && !real.starts_with(&root)
        {
            return Err(format!("{name:?} leads out of the plugin directory"));
        }
        Ok(PluginSource::File(path))
    }

    pub fn describe(&self) -> String {
        match self {
            PluginSource::Embedded => "the embedded reference plugin".into(),
            PluginSource::File(path) => path.display().to_string(),
        }
    }

    fn bytes(&self) -> Result<Vec<u8>, PluginError> {
        match self {
            PluginSource::Embedded => Ok(REFERENCE_PLUGIN.to_vec()),
            PluginSource::File(path) => std::fs::read(path).map_err(|e| PluginError::Unreadable {
                source_name: path.display().to_string(),
                reason: e.to_string(),
            }),
        }
    }
}

impl PluginHost {
    /// Compiles (or loads from the cache), type-checks and identifies a plugin.
    pub fn load(&self, source: &PluginSource) -> Result<LoadedPlugin, PluginError> {
        let started = Instant::now();
        let source_name = source.describe();
        let bytes = source.bytes()?;
        let digest = hex::encode(Sha256::digest(&bytes));
        let not_a_plugin = |reason: String| PluginError::NotAPlugin {
            source_name: source_name.clone(),
            reason,
        };

        let cached = self
            .cache
            .as_ref()
            .and_then(|c| c.load(&self.engine, &digest));
        let from_cache = cached.is_some();
        let component = match cached {
            Some(component) => component,
            None => {
                let component = Component::new(&self.engine, &bytes)
                    .map_err(|e| not_a_plugin(why_not_a_component(&bytes, &e)))?;
                if let Some(cache) = &self.cache
                    && let Err(e) = cache.store(&self.engine, &digest, &component)
                {
                    tracing::warn!(error = %e, "could not cache the compiled plugin");
                }
                component
            }
        };

        check_contract_version(&self.engine, &component, &source_name)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| not_a_plugin(format!("its imports do not match the contract ({e:#})")))?;
        let pre = ConnectionLogPluginPre::new(pre)
            .map_err(|e| not_a_plugin(format!("its exports do not match the contract ({e:#})")))?;

        let mut loaded = LoadedPlugin {
            pre,
            engine: self.engine.clone(),
            info: PluginInfo {
                name: String::new(),
                version: String::new(),
                contract_version: String::new(),
            },
            digest,
            source: source.clone(),
            from_cache,
            load_time: Duration::ZERO,
        };
        let probe_directory: Arc<dyn Lookup + Send + Sync> = Arc::new(EmptyDirectory);
        let mut probe = loaded
            .instantiate(None, probe_directory, Clock::System, &Limits::default())
            .map_err(|e| not_a_plugin(format!("it cannot be instantiated ({e:#})")))?;
        let info = probe.describe()?;
        if !contract_compatible(&info.contract_version) {
            return Err(PluginError::IncompatibleContract {
                source_name,
                found: info.contract_version,
                compat: compat_rule(),
            });
        }
        loaded.info = info;
        loaded.load_time = started.elapsed();
        Ok(loaded)
    }
}

/// The compatibility rule of semver: for 0.x, the minor version must match; otherwise the
/// major.
fn contract_compatible(found: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64)> {
        let mut parts = v.split('.');
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    match (parse(found), parse(CONTRACT_VERSION)) {
        (Some((0, found_minor)), Some((0, our_minor))) => found_minor == our_minor,
        (Some((found_major, _)), Some((our_major, _))) => found_major == our_major,
        _ => false,
    }
}

fn compat_rule() -> &'static str {
    if CONTRACT_VERSION.starts_with("0.") {
        "0.minor"
    } else {
        "major"
    }
}

/// Reads the contract version off the component's export names
/// (`coder:connection-log/ingest@0.1.0`) so that a plugin for another version is refused
/// with a clear message before any type-checking error.
fn check_contract_version(
    engine: &Engine,
    component: &Component,
    source_name: &str,
) -> Result<(), PluginError> {
    let prefix = format!("{CONTRACT_PACKAGE}/");
    let exported: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let versions: Vec<&str> = exported
        .iter()
        .filter_map(|name| name.strip_prefix(&prefix))
        .filter_map(|rest| rest.split_once('@').map(|(_, version)| version))
        .collect();
    let Some(found) = versions.first() else {
        let listed = if exported.is_empty() {
            "nothing".to_string()
        } else {
            exported.join(", ")
        };
        return Err(PluginError::NotAPlugin {
            source_name: source_name.to_string(),
            reason: format!("it exports no {CONTRACT_PACKAGE} interface (it exports {listed})"),
        });
    };
    if contract_compatible(found) {
        Ok(())
    } else {
        Err(PluginError::IncompatibleContract {
            source_name: source_name.to_string(),
            found: found.to_string(),
            compat: compat_rule(),
        })
    }
}

/// The probe instance at load time looks nothing up.
struct EmptyDirectory;

impl Lookup for EmptyDirectory {
    fn organization_by_id(&self, _: model::Uuid) -> Option<model::Organization> {
        None
    }
    fn organization_by_name(&self, _: &str) -> Option<model::Organization> {
        None
    }
    fn user_by_id(&self, _: model::Uuid) -> Option<model::User> {
        None
    }
    fn users_by_username(&self, _: &str) -> Vec<model::User> {
        Vec::new()
    }
    fn users_by_email(&self, _: &str) -> Vec<model::User> {
        Vec::new()
    }
}

pub struct LoadedPlugin {
    pre: ConnectionLogPluginPre<HostState>,
    engine: Engine,
    pub info: PluginInfo,
    /// SHA-256 of the component bytes: identifies this exact build.
    pub digest: String,
    pub source: PluginSource,
    /// Whether the compiled code came from the on-disk cache.
    pub from_cache: bool,
    pub load_time: Duration,
}

impl LoadedPlugin {
    pub fn instantiate(
        &self,
        journal: Option<Journal>,
        directory: Arc<dyn Lookup + Send + Sync>,
        clock: Clock,
        limits: &Limits,
    ) -> anyhow::Result<PluginInstance> {
        PluginInstance::new(&self.engine, &self.pre, journal, directory, clock, limits)
    }
}

/// Why `bytes` did not compile, in words that never quote the file: the parser's own
/// message for a wrong header shows the first bytes, which may be anything the path named.
fn why_not_a_component(bytes: &[u8], error: &wasmtime::Error) -> String {
    const MAGIC: &[u8] = b"\0asm";
    if !bytes.starts_with(MAGIC) {
        return "it is not a WebAssembly file (it does not start with the `\\0asm` header)".into();
    }
    // The layer field of the header: 0 for a core module, 1 for a component.
    if bytes.len() >= 8 && bytes[6..8] == [0, 0] {
        return "it is a core WebAssembly module, not a component (build it with `wasm-tools component new`, or with a target that makes components)".into();
    }
    format!("not a valid WebAssembly component ({error:#})")
}
