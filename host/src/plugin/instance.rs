//! A running plugin: one `Store` and instance whose every call gets a fresh deadline and runs
//! under the memory cap, and which refuses further calls after a trap.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Engine, Store, Trap};

use super::engine::EPOCH_TICK;
use super::wit::v0_1::{
    ConnectionLogPlugin, ConnectionLogPluginPre, exports, wit_ingest, wit_query, wit_service_log,
    wit_types,
};
use super::{Clock, EventColumns, HostState, Limits, PluginError, PluginInfo, TrapKind};
use crate::directory::Lookup;
use crate::model;
use crate::store::Journal;

pub struct PluginInstance {
    store: Store<HostState>,
    bindings: ConnectionLogPlugin,
    call_deadline: Duration,
    poisoned: bool,
}

/// A storage error the plugin reported (as opposed to a trap).
pub type StorageResult<T> = Result<T, model::StorageError>;

impl PluginInstance {
    /// A new instance of `pre` in a `Store` of its own, under `limits`.
    pub(super) fn new(
        engine: &Engine,
        pre: &ConnectionLogPluginPre<HostState>,
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
