//! A running plugin: one `Store` and instance whose every call gets a fresh deadline and runs
//! under the memory cap, and which refuses further calls after a trap.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Engine, Store, Trap};

use super::engine::EPOCH_TICK;
use super::wit::{Exports, ExportsPre};
use super::{Clock, EventColumns, HostState, Limits, PluginError, PluginInfo, TrapKind};
use crate::directory::Lookup;
use crate::model;
use crate::store::Journal;

pub struct PluginInstance {
    store: Store<HostState>,
    bindings: Box<dyn Exports>,
    /// The contract version the plugin implements, such as `0.2.0`.
    contract_version: &'static str,
    call_deadline: Duration,
    poisoned: bool,
}

/// A storage error the plugin reported (as opposed to a trap).
pub type StorageResult<T> = Result<T, model::StorageError>;

impl PluginInstance {
    /// A new instance of `pre` in a `Store` of its own, under `limits`.
    pub(super) fn new(
        engine: &Engine,
        pre: &dyn ExportsPre,
        contract_version: &'static str,
        journal: Option<Journal>,
        directory: Arc<dyn Lookup + Send + Sync>,
        clock: Clock,
        limits: &Limits,
    ) -> anyhow::Result<Self> {
        let mut store = Store::new(engine, HostState::new(journal, directory, clock, limits));
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(deadline_ticks(limits.call_deadline));
        store.epoch_deadline_trap();
        let bindings = pre
            .instantiate(&mut store)
            .map_err(|e| anyhow::Error::from(e).context("instantiating the plugin"))?;
        Ok(PluginInstance {
            store,
            bindings,
            contract_version,
            call_deadline: limits.call_deadline,
            poisoned: false,
        })
    }

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
        f: impl FnOnce(&dyn Exports, &mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, PluginError> {
        if self.poisoned {
            return Err(PluginError::Poisoned);
        }
        self.store
            .set_epoch_deadline(deadline_ticks(self.call_deadline));
        f(self.bindings.as_ref(), &mut self.store).map_err(|error| {
            self.poisoned = true;
            let kind = classify_trap(&error);
            // The wasm backtrace helps whoever debugs the plugin, not whoever called it.
            tracing::debug!(call = name, %kind, error = %format!("{error:?}"), "plugin call failed");
            PluginError::Trapped { call: name, kind, detail: error.root_cause().to_string() }
        })
    }

    /// The plugin's name and version, and the contract version it implements.
    pub fn describe(&mut self) -> Result<PluginInfo, PluginError> {
        let (name, version) = self.call("describe", |b, s| b.describe(s))?;
        Ok(PluginInfo {
            name,
            version,
            contract_version: self.contract_version,
        })
    }

    /// Passes the service-log formats, their fields' generation and the deployment's settings; `Ok(Err(_))` is the
    /// plugin refusing the settings.
    pub fn configure(
        &mut self,
        log_formats: &[model::LogFormat],
        log_fields: model::LogFields,
        settings: &[model::Setting],
    ) -> Result<Result<(), model::SettingsError>, PluginError> {
        self.call("configure", |b, s| {
            b.configure(s, log_formats, log_fields, settings)
        })
    }

    pub fn ingest_batch(
        &mut self,
        events: Vec<model::ConnectionEvent>,
    ) -> Result<StorageResult<Vec<model::EventOutcome>>, PluginError> {
        self.call("ingest-batch", |b, s| b.ingest_batch(s, events))
    }

    pub fn query(
        &mut self,
        actor: model::Actor,
        request: model::QueryRequest,
    ) -> Result<Result<model::Page, model::QueryError>, PluginError> {
        self.call("query", |b, s| b.query(s, actor, request))
    }

    /// The page as Coder's `GET /api/v2/connectionlog` body, rendered by the plugin in the
    /// same call.
    pub fn api_page(
        &mut self,
        actor: model::Actor,
        request: model::QueryRequest,
    ) -> Result<Result<String, model::QueryError>, PluginError> {
        self.call("api-page", |b, s| b.api_page(s, actor, request))
    }

    /// The live feed's rows for these origins (see `query.feed-rows`); `None` when the
    /// plugin's contract has no feed.
    pub fn feed_rows(
        &mut self,
        actor: model::Actor,
        q: &str,
        origins: Vec<model::RowOrigin>,
    ) -> Result<super::wit::FeedRows, PluginError> {
        self.call("feed-rows", |b, s| b.feed_rows(s, actor, q, origins))
    }

    /// The operator's retention (`None`: forever); returns the retention the plugin
    /// applies, which may be shorter.
    pub fn set_retention(
        &mut self,
        max_age: Option<Duration>,
    ) -> Result<Option<Duration>, PluginError> {
        let nanos = max_age.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let applied = self.call("set-retention", |b, s| b.set_retention(s, nanos))?;
        Ok(applied.map(Duration::from_nanos))
    }

    pub fn purge(
        &mut self,
        now: model::UnixNanos,
    ) -> Result<StorageResult<model::PurgeReport>, PluginError> {
        self.call("purge", |b, s| b.purge(s, now))
    }

    pub fn api_response(&mut self, page: model::Page) -> Result<String, PluginError> {
        self.call("api-response", |b, s| b.api_response(s, page))
    }

    pub fn api_rows(
        &mut self,
        rows: Vec<model::ConnectionLog>,
    ) -> Result<Vec<String>, PluginError> {
        self.call("api-rows", |b, s| b.api_rows(s, rows))
    }

    pub fn service_log_line(
        &mut self,
        event: model::ConnectionEvent,
        format: model::LogFormat,
        fields: model::LogFields,
        logged_at: model::UnixNanos,
    ) -> Result<String, PluginError> {
        self.call("service-log-line", |b, s| {
            b.service_log_line(s, event, format, fields, logged_at)
        })
    }

    pub fn row_events(
        &mut self,
        row: model::ConnectionLog,
    ) -> Result<Vec<model::ConnectionEvent>, PluginError> {
        self.call("row-events", |b, s| b.row_events(s, row))
    }

    pub fn save_snapshot(&mut self) -> Result<StorageResult<()>, PluginError> {
        self.call("save-snapshot", |b, s| b.save_snapshot(s))
    }

    pub fn load_snapshot(&mut self) -> Result<StorageResult<()>, PluginError> {
        self.call("load-snapshot", |b, s| b.load_snapshot(s))
    }

    /// Sends journaled events to the plugin's `replay`.
    pub fn replay(&mut self, batch: EventColumns) -> Result<StorageResult<()>, PluginError> {
        self.call("replay", |b, s| b.replay(s, batch))
    }

    pub fn stats(&mut self) -> Result<model::StateStats, PluginError> {
        self.call("stats", |b, s| b.stats(s))
    }
}

fn deadline_ticks(deadline: Duration) -> u64 {
    (deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1
}

fn classify_trap(error: &wasmtime::Error) -> TrapKind {
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => TrapKind::Deadline,
        Some(Trap::UnreachableCodeReached) => TrapKind::Panic,
        _ if format!("{error:#}").contains("growing memory") => TrapKind::MemoryLimit,
        _ => TrapKind::Other,
    }
}
