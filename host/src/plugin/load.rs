//! Loading a plugin: its bytes, compiled (or taken from the cache), its contract version
//! checked, its imports and exports type-checked, and its own account of itself read.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::wit::{CONTRACT_PACKAGE, ExportsPre, SUPPORTED};
use super::{Clock, Limits, PluginError, PluginHost, PluginInfo, PluginInstance};
use crate::directory::Lookup;
use crate::model;
use crate::store::Journal;

/// The plugins built from `guest/` by `build.rs` and embedded in the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Embedded {
    /// Crate `connlog-reference`: Coder's semantics.
    Reference,
    /// Crate `connlog-privacy`: the reference plugin keeping less personal data.
    Privacy,
}

impl Embedded {
    pub const ALL: [Embedded; 2] = [Embedded::Reference, Embedded::Privacy];

    /// The name that selects it: `--plugin reference`, `{"plugin":"privacy"}`.
    pub fn name(self) -> &'static str {
        match self {
            Embedded::Reference => "reference",
            Embedded::Privacy => "privacy",
        }
    }

    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    pub fn component(self) -> &'static [u8] {
        match self {
            Embedded::Reference => include_bytes!(env!("CONNLOG_REFERENCE_PLUGIN")),
            Embedded::Privacy => include_bytes!(env!("CONNLOG_PRIVACY_PLUGIN")),
        }
    }

    /// `reference, privacy`: for messages.
    pub fn names() -> String {
        Self::ALL.map(Embedded::name).join(", ")
    }
}

/// Where a plugin comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginSource {
    /// A plugin embedded in this binary.
    Embedded(Embedded),
    File(PathBuf),
}

/// A plugin and the deployment's settings for it: what a service runs, and what a swap
/// asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginSpec {
    pub source: PluginSource,
    pub settings: Vec<model::Setting>,
}

impl PluginSpec {
    /// A plugin with no settings.
    pub fn plain(source: PluginSource) -> Self {
        Self {
            source,
            settings: Vec::new(),
        }
    }
}

impl Default for PluginSource {
    fn default() -> Self {
        PluginSource::Embedded(Embedded::Reference)
    }
}

impl PluginSource {
    /// An embedded plugin's name (`reference`, `privacy`) names it; anything else is a
    /// component file.
    pub fn from_arg(arg: &std::path::Path) -> Self {
        match arg.to_str().and_then(Embedded::named) {
            Some(embedded) => PluginSource::Embedded(embedded),
            None => PluginSource::File(arg.to_path_buf()),
        }
    }

    /// The plugin a remote caller names: an embedded plugin by name, or a file of
    /// `directory` by its plain file name. Never any other path: a caller cannot make the
    /// server read a file the operator did not put there.
    pub fn named_in(name: &str, directory: Option<&std::path::Path>) -> Result<Self, String> {
        if let Some(embedded) = Embedded::named(name) {
            return Ok(PluginSource::Embedded(embedded));
        }
        let Some(directory) = directory else {
            return Err(format!(
                "no plugin named {name:?} is embedded, and plugin files are loaded only from the directory given with `serve --plugin-dir`, which is not set"
            ));
        };
        let plain = !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0']);
        if !plain {
            return Err(format!(
                "{name:?} is not a plain file name: name an embedded plugin ({}) or a file of the plugin directory",
                Embedded::names()
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
            PluginSource::Embedded(embedded) => format!("the embedded {} plugin", embedded.name()),
            PluginSource::File(path) => path.display().to_string(),
        }
    }

    /// The component's bytes: an embedded one is borrowed, not copied.
    fn bytes(&self) -> Result<Cow<'static, [u8]>, PluginError> {
        match self {
            PluginSource::Embedded(embedded) => Ok(Cow::Borrowed(embedded.component())),
            PluginSource::File(path) => {
                std::fs::read(path)
                    .map(Cow::Owned)
                    .map_err(|e| PluginError::Unreadable {
                        source_name: path.display().to_string(),
                        reason: e.to_string(),
                    })
            }
        }
    }
}

impl PluginHost {
    /// [`load_spec`](Self::load_spec) with no settings.
    pub fn load(&self, source: &PluginSource) -> Result<LoadedPlugin, PluginError> {
        self.load_spec(&PluginSpec::plain(source.clone()))
    }

    /// Compiles (or loads from the cache), type-checks and identifies a plugin, and has it
    /// judge its settings: a plugin that refuses them is refused here, before it serves.
    pub fn load_spec(&self, spec: &PluginSpec) -> Result<LoadedPlugin, PluginError> {
        let source = &spec.source;
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

        let (index, version) = contract_version(&self.engine, &component, &source_name)?;
        let pre = (version.pre)(&self.linkers[index], &component).map_err(not_a_plugin)?;

        let mut loaded = LoadedPlugin {
            pre: Arc::from(pre),
            engine: self.engine.clone(),
            info: PluginInfo {
                name: String::new(),
                version: String::new(),
                contract_version: version.version,
            },
            digest,
            spec: spec.clone(),
            from_cache,
            load_time: Duration::ZERO,
        };
        let probe_directory: Arc<dyn Lookup + Send + Sync> = Arc::new(EmptyDirectory);
        let mut probe = loaded
            .instantiate(None, probe_directory, Clock::System, &Limits::default())
            .map_err(|e| not_a_plugin(format!("it cannot be instantiated ({e:#})")))?;
        let info = probe.describe()?;
        if let Err(error) = probe.configure(&[], model::LogFields::Current, &spec.settings)? {
            return Err(PluginError::SettingsRefused {
                source_name,
                error: Box::new(error),
            });
        }
        loaded.info = info;
        loaded.load_time = started.elapsed();
        Ok(loaded)
    }
}

/// Reads the contract version off the component's export names
/// (`coder:connection-log/ingest@0.2.0`) and finds it among the versions this host speaks,
/// so that a plugin for another version is refused with a clear message before any
/// type-checking error. Returns its index in [`SUPPORTED`].
fn contract_version(
    engine: &Engine,
    component: &Component,
    source_name: &str,
) -> Result<(usize, &'static super::wit::ContractVersion), PluginError> {
    let prefix = format!("{CONTRACT_PACKAGE}/");
    let exported: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let found = exported
        .iter()
        .filter_map(|name| name.strip_prefix(&prefix))
        .find_map(|rest| rest.split_once('@').map(|(_, version)| version));
    let Some(found) = found else {
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
    SUPPORTED
        .iter()
        .enumerate()
        .find(|(_, version)| same_series(version.version, found))
        .ok_or_else(|| PluginError::IncompatibleContract {
            source_name: source_name.to_string(),
            found: found.to_string(),
        })
}

/// Semver's compatibility: for 0.x the same minor version (`0.2.1` is served as `0.2.0`),
/// otherwise the same major.
fn same_series(ours: &str, found: &str) -> bool {
    let series = |v: &str| -> Option<(u64, u64)> {
        let mut parts = v.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(if major == 0 { (0, minor) } else { (major, 0) })
    };
    series(ours).is_some_and(|s| series(found) == Some(s))
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
    pre: Arc<dyn ExportsPre>,
    engine: Engine,
    pub info: PluginInfo,
    /// SHA-256 of the component bytes: identifies this exact build.
    pub digest: String,
    /// Where it came from, and the settings every instance is configured with.
    pub spec: PluginSpec,
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
        PluginInstance::new(
            &self.engine,
            self.pre.as_ref(),
            self.info.contract_version,
            journal,
            directory,
            clock,
            limits,
        )
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
