//! Loading and running plugin components.
//!
//! - [`PluginHost`]: one wasmtime `Engine` (components, epoch interruption), the `Linker`
//!   with our imports, the compiled-component cache, and the epoch ticker thread.
//! - [`LoadedPlugin`]: a compiled, type-checked component (`InstancePre`) whose
//!   `plugin-info` was checked against the contract this host speaks.
//! - [`PluginInstance`]: one `Store` + instance. Every call gets a deadline and runs under
//!   the memory cap; after a trap the instance refuses further calls and must be rebuilt.

mod cache;
mod columns;
mod host_state;
mod limiter;
mod wit;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, Trap};

use crate::directory::Lookup;
use crate::model;

pub use cache::ComponentCache;
pub use columns::EventColumns;
pub use host_state::{Clock, HostState, NoServiceLog, ServiceLogSink};
use wit::v0_1::*;
pub use wit::v0_1::{CONTRACT_PACKAGE, CONTRACT_VERSION};

use crate::store::Journal;

/// The reference plugin, built from `guest/` by `build.rs` and embedded in the binary.
pub static REFERENCE_PLUGIN: &[u8] = include_bytes!(env!("CONNLOG_REFERENCE_PLUGIN"));

/// How often the epoch advances; deadlines are measured in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What each instance may use.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The most linear memory the instance may hold, in bytes (all its memories together;
    /// the reference plugin has one).
    pub memory_bytes: usize,
    pub max_instances: usize,
    /// How long one call into the plugin may run before it is interrupted.
    pub call_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 2 << 30,
            max_instances: 16,
            call_deadline: Duration::from_secs(60),
        }
    }
}

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

/// The plugin's own account of itself (`plugin-info.describe`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub contract_version: String,
}

/// Why a plugin could not be loaded, or why a call into it failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot read plugin {source_name}: {reason}")]
    Unreadable { source_name: String, reason: String },
    #[error("{source_name} is not a connection-log plugin: {reason}")]
    NotAPlugin { source_name: String, reason: String },
    #[error(
        "{source_name} implements contract {CONTRACT_PACKAGE}@{found}, but this host supports {CONTRACT_PACKAGE}@{CONTRACT_VERSION} (same {compat} only)"
    )]
    IncompatibleContract {
        source_name: String,
        found: String,
        compat: &'static str,
    },
    #[error("plugin call `{call}` failed: {kind}: {detail}")]
    Trapped {
        call: &'static str,
        kind: TrapKind,
        detail: String,
    },
    #[error("the plugin instance is unusable after an earlier failure; it must be rebuilt")]
    Poisoned,
}

/// What went wrong inside a failed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapKind {
    /// The guest panicked (a Rust panic aborts to `unreachable`).
    Panic,
    /// The call ran past its deadline.
    Deadline,
    /// The guest asked for more memory than its cap.
    MemoryLimit,
    /// Any other trap.
    Other,
}

impl std::fmt::Display for TrapKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TrapKind::Panic => "the plugin panicked",
            TrapKind::Deadline => "the plugin ran past its deadline",
            TrapKind::MemoryLimit => "the plugin exceeded its memory limit",
            TrapKind::Other => "the plugin trapped",
        })
    }
}

pub struct PluginHost {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    cache: Option<ComponentCache>,
}

impl PluginHost {
    /// `cache`: where compiled components are kept; `None` compiles every time.
    pub fn new(cache: Option<ComponentCache>) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        // Lets `perf` name the plugin's compiled functions (written to /tmp/perf-<pid>.map).
        if std::env::var_os("CONNLOG_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        ConnectionLogPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        start_epoch_ticker(&engine);
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            cache,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

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

/// Advances the engine's epoch every tick, from a thread that holds only a weak reference
/// and ends when the engine is dropped. A thread, not an async task: a guest that never
/// yields could starve an executor that is meant to interrupt it.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("connlog-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker thread");
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
        let mut store = Store::new(
            &self.engine,
            HostState::new(journal, directory, clock, limits),
        );
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(deadline_ticks(limits.call_deadline));
        store.epoch_deadline_trap();
        let bindings = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| anyhow::Error::from(e).context("instantiating the plugin"))?;
        Ok(PluginInstance {
            store,
            bindings,
            call_deadline: limits.call_deadline,
            poisoned: false,
        })
    }
}

fn deadline_ticks(deadline: Duration) -> u64 {
    (deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1
}

pub struct PluginInstance {
    store: Store<HostState>,
    bindings: ConnectionLogPlugin,
    call_deadline: Duration,
    poisoned: bool,
}

/// A storage error the plugin reported (as opposed to a trap).
pub type StorageResult<T> = Result<T, model::StorageError>;

impl PluginInstance {
    pub fn state(&self) -> &HostState {
        self.store.data()
    }

    pub fn state_mut(&mut self) -> &mut HostState {
        self.store.data_mut()
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Runs one export with a fresh deadline; a trap poisons the instance.
    fn call<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce(&ConnectionLogPlugin, &mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, PluginError> {
        if self.poisoned {
            return Err(PluginError::Poisoned);
        }
        self.store
            .set_epoch_deadline(deadline_ticks(self.call_deadline));
        f(&self.bindings, &mut self.store).map_err(|error| {
            self.poisoned = true;
            let kind = classify_trap(&error);
            // The wasm backtrace helps whoever debugs the plugin, not whoever called it.
            tracing::debug!(call = name, %kind, error = %format!("{error:?}"), "plugin call failed");
            PluginError::Trapped { call: name, kind, detail: error.root_cause().to_string() }
        })
    }

    pub fn describe(&mut self) -> Result<PluginInfo, PluginError> {
        let info = self.call("describe", |b, s| {
            b.coder_connection_log_plugin_info().call_describe(s)
        })?;
        Ok(PluginInfo {
            name: info.name,
            version: info.version,
            contract_version: info.contract_version,
        })
    }

    pub fn configure(&mut self, log_formats: &[model::LogFormat]) -> Result<(), PluginError> {
        let config = exports::coder::connection_log::lifecycle::PluginConfig {
            service_log_formats: log_formats.iter().copied().map(Into::into).collect(),
        };
        self.call("configure", |b, s| {
            b.coder_connection_log_lifecycle()
                .call_configure(s, &config)
        })
    }

    pub fn ingest_batch(
        &mut self,
        events: Vec<model::ConnectionEvent>,
    ) -> Result<StorageResult<Vec<model::EventOutcome>>, PluginError> {
        let events: Vec<wit_types::ConnectionEvent> = events.into_iter().map(Into::into).collect();
        let outcome = self.call("ingest-batch", |b, s| {
            b.coder_connection_log_ingest()
                .call_ingest_batch(s, &events)
        })?;
        Ok(outcome.map_err(Into::into).map(|outcomes| {
            outcomes
                .into_iter()
                .map(|o| match o {
                    wit_ingest::EventOutcome::Stored => model::EventOutcome::Stored,
                    wit_ingest::EventOutcome::Duplicate => model::EventOutcome::Duplicate,
                    wit_ingest::EventOutcome::Rejected(v) => {
                        model::EventOutcome::Rejected(v.into())
                    }
                })
                .collect()
        }))
    }

    pub fn query(
        &mut self,
        actor: model::Actor,
        request: model::QueryRequest,
    ) -> Result<Result<model::Page, model::QueryError>, PluginError> {
        let (actor, request) = (
            wit_types::Actor::from(actor),
            wit_query::QueryRequest::from(request),
        );
        let outcome = self.call("query", |b, s| {
            b.coder_connection_log_query()
                .call_query(s, &actor, &request)
        })?;
        Ok(outcome
            .map(|page| model::Page {
                rows: page.rows.into_iter().map(Into::into).collect(),
                count: page.count,
            })
            .map_err(Into::into))
    }

    /// The page as Coder's `GET /api/v2/connectionlog` body, rendered by the plugin in the
    /// same call.
    pub fn api_page(
        &mut self,
        actor: model::Actor,
        request: model::QueryRequest,
    ) -> Result<Result<String, model::QueryError>, PluginError> {
        let (actor, request) = (
            wit_types::Actor::from(actor),
            wit_query::QueryRequest::from(request),
        );
        let outcome = self.call("api-page", |b, s| {
            b.coder_connection_log_query()
                .call_api_page(s, &actor, &request)
        })?;
        Ok(outcome.map_err(Into::into))
    }

    pub fn set_retention(&mut self, max_age: Duration) -> Result<(), PluginError> {
        let nanos = u64::try_from(max_age.as_nanos()).unwrap_or(u64::MAX);
        self.call("set-retention", |b, s| {
            b.coder_connection_log_retention()
                .call_set_retention(s, nanos)
        })
    }

    pub fn purge(
        &mut self,
        now: model::UnixNanos,
    ) -> Result<StorageResult<model::PurgeReport>, PluginError> {
        let outcome = self.call("purge", |b, s| {
            b.coder_connection_log_retention().call_purge(s, now)
        })?;
        Ok(outcome
            .map(|r| model::PurgeReport {
                purged: r.purged,
                cutoff: r.cutoff,
            })
            .map_err(Into::into))
    }

    pub fn api_response(&mut self, page: model::Page) -> Result<String, PluginError> {
        let rows: Vec<wit_types::ConnectionLog> = page.rows.into_iter().map(Into::into).collect();
        self.call("api-response", |b, s| {
            b.coder_connection_log_formats()
                .call_api_response(s, &rows, page.count)
        })
    }

    pub fn api_rows(
        &mut self,
        rows: Vec<model::ConnectionLog>,
    ) -> Result<Vec<String>, PluginError> {
        let rows: Vec<wit_types::ConnectionLog> = rows.into_iter().map(Into::into).collect();
        self.call("api-rows", |b, s| {
            b.coder_connection_log_formats().call_api_rows(s, &rows)
        })
    }

    pub fn service_log_line(
        &mut self,
        event: model::ConnectionEvent,
        format: model::LogFormat,
        logged_at: model::UnixNanos,
    ) -> Result<String, PluginError> {
        let event = wit_types::ConnectionEvent::from(event);
        let format = wit_service_log::LogFormat::from(format);
        self.call("service-log-line", |b, s| {
            b.coder_connection_log_formats()
                .call_service_log_line(s, &event, format, logged_at)
        })
    }

    pub fn row_events(
        &mut self,
        row: model::ConnectionLog,
    ) -> Result<Vec<model::ConnectionEvent>, PluginError> {
        let row = wit_types::ConnectionLog::from(row);
        let events = self.call("row-events", |b, s| {
            b.coder_connection_log_formats().call_row_events(s, &row)
        })?;
        Ok(events.into_iter().map(Into::into).collect())
    }

    pub fn save_snapshot(&mut self) -> Result<StorageResult<()>, PluginError> {
        let outcome = self.call("save-snapshot", |b, s| {
            b.coder_connection_log_state().call_save_snapshot(s)
        })?;
        Ok(outcome.map_err(Into::into))
    }

    pub fn load_snapshot(&mut self) -> Result<StorageResult<()>, PluginError> {
        let outcome = self.call("load-snapshot", |b, s| {
            b.coder_connection_log_state().call_load_snapshot(s)
        })?;
        Ok(outcome.map_err(Into::into))
    }

    /// Sends journaled events to the plugin's `replay`.
    pub fn replay(&mut self, batch: EventColumns) -> Result<StorageResult<()>, PluginError> {
        let batch = wit_types::EventColumns::from(batch);
        let outcome = self.call("replay", |b, s| {
            b.coder_connection_log_state().call_replay(s, &batch)
        })?;
        Ok(outcome.map_err(Into::into))
    }

    pub fn stats(&mut self) -> Result<model::StateStats, PluginError> {
        let stats = self.call("stats", |b, s| b.coder_connection_log_state().call_stats(s))?;
        Ok(model::StateStats {
            rows: stats.rows,
            memory_bytes: stats.memory_bytes,
        })
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

fn classify_trap(error: &wasmtime::Error) -> TrapKind {
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => TrapKind::Deadline,
        Some(Trap::UnreachableCodeReached) => TrapKind::Panic,
        _ if format!("{error:#}").contains("growing memory") => TrapKind::MemoryLimit,
        _ => TrapKind::Other,
    }
}
