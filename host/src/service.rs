//! `ConnLog`: one plugin instance over one store, with the transaction discipline that
//! makes acknowledgements durable and plugin faults harmless.
//!
//! Every mutating call runs inside one SQLite transaction: the plugin appends to the
//! journal through its imports, and the host commits only when the call succeeded. A trap
//! rolls the transaction back and rebuilds the instance from the store; a commit failure
//! does the same (the plugin's memory may be ahead of the disk). Either way the caller gets
//! an error, and nothing it was told is stored is lost.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use connlog_guest::host::Directory;
use connlog_guest::model::{
    self, Actor, ConnectionEvent, EventOutcome, LogFormat, Page, QueryError, QueryRequest,
};

use crate::plugin::{
    Clock, ComponentCache, Limits, LoadedPlugin, PluginError, PluginHost, PluginInstance,
    PluginSource, ServiceLogSink,
};
use crate::store::Journal;

/// The store's file name inside the data directory.
pub const STORE_FILE: &str = "connlog.db";

/// How many events one replay call carries.
const REPLAY_BATCH: usize = 8192;

pub struct ServiceConfig {
    pub data_dir: PathBuf,
    pub plugin: PluginSource,
    pub directory: Arc<dyn Directory + Send + Sync>,
    pub limits: Limits,
    pub log_formats: Vec<LogFormat>,
    pub service_log: Arc<dyn ServiceLogSink>,
    /// 0 keeps rows forever.
    pub retention: Duration,
    /// `None` compiles the plugin on every start.
    pub cache: Option<ComponentCache>,
    pub clock: Clock,
}

/// Why a service call failed. Each variant leaves the service usable.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("storage error: {0}")]
    Storage(model::StorageError),
    #[error("the plugin could not be rebuilt after a failure: {0:#}")]
    Rebuild(anyhow::Error),
}

/// What a start-up or rebuild did to bring the plugin up to date.
#[derive(Clone, Debug)]
pub struct RestoreReport {
    pub events_replayed: u64,
    pub rows: u64,
    pub elapsed: Duration,
}

pub struct ConnLog {
    host: PluginHost,
    plugin: LoadedPlugin,
    instance: PluginInstance,
    config: ServiceConfig,
    last_restore: RestoreReport,
    restarts: u64,
}

impl ConnLog {
    pub fn open(config: ServiceConfig) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("creating the data directory {}", config.data_dir.display())
        })?;
        let journal = Journal::open(&store_path(&config.data_dir))?;
        let host = PluginHost::new(config.cache.clone())?;
        let plugin = host.load(&config.plugin)?;
        let (instance, last_restore) = bring_up(&plugin, journal, &config)?;
        Ok(Self {
            host,
            plugin,
            instance,
            config,
            last_restore,
            restarts: 0,
        })
    }

    pub fn plugin(&self) -> &LoadedPlugin {
        &self.plugin
    }

    pub fn last_restore(&self) -> &RestoreReport {
        &self.last_restore
    }

    /// How many times the instance was rebuilt after a failure.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// Validates, stores and merges a batch. When this returns `Ok`, every `Stored` event
    /// is durable.
    pub fn ingest(
        &mut self,
        events: Vec<ConnectionEvent>,
    ) -> Result<Vec<EventOutcome>, ServiceError> {
        self.in_transaction(|instance| instance.ingest_batch(events))
    }

    pub fn query(
        &mut self,
        actor: Actor,
        request: QueryRequest,
    ) -> Result<Result<Page, QueryError>, ServiceError> {
        let outcome = self.instance.query(actor, request);
        self.recover_if_trapped(outcome)
    }

    /// Coder's response body for a page.
    pub fn api_response(&mut self, page: Page) -> Result<String, ServiceError> {
        let outcome = self.instance.api_response(page);
        self.recover_if_trapped(outcome)
    }

    pub fn api_rows(
        &mut self,
        rows: Vec<model::ConnectionLog>,
    ) -> Result<Vec<String>, ServiceError> {
        let outcome = self.instance.api_rows(rows);
        self.recover_if_trapped(outcome)
    }

    pub fn row_events(
        &mut self,
        row: model::ConnectionLog,
    ) -> Result<Vec<ConnectionEvent>, ServiceError> {
        let outcome = self.instance.row_events(row);
        self.recover_if_trapped(outcome)
    }

    pub fn service_log_line(
        &mut self,
        event: ConnectionEvent,
        format: LogFormat,
        logged_at: model::UnixNanos,
    ) -> Result<String, ServiceError> {
        let outcome = self.instance.service_log_line(event, format, logged_at);
        self.recover_if_trapped(outcome)
    }

    /// Applies retention as of `now`: rows and their events are gone from memory and disk.
    pub fn purge(&mut self, now: model::UnixNanos) -> Result<model::PurgeReport, ServiceError> {
        self.in_transaction(|instance| instance.purge(now))
    }

    pub fn set_retention(&mut self, retention: Duration) -> Result<(), ServiceError> {
        self.config.retention = retention;
        let outcome = self.instance.set_retention(retention);
        self.recover_if_trapped(outcome)
    }

    pub fn stats(&mut self) -> Result<model::StateStats, ServiceError> {
        let outcome = self.instance.stats();
        self.recover_if_trapped(outcome)
    }

    /// Runs a mutating call in one transaction; commits on success, rolls back otherwise.
    fn in_transaction<T>(
        &mut self,
        call: impl FnOnce(&mut PluginInstance) -> Result<Result<T, model::StorageError>, PluginError>,
    ) -> Result<T, ServiceError> {
        self.journal()?.begin().map_err(ServiceError::Storage)?;
        match call(&mut self.instance) {
            Ok(Ok(value)) => match self.journal()?.commit() {
                Ok(()) => {
                    self.flush_service_log();
                    Ok(value)
                }
                Err(e) => {
                    // The plugin's memory already holds what the disk refused.
                    self.rebuild()?;
                    Err(ServiceError::Storage(e))
                }
            },
            Ok(Err(storage)) => {
                self.journal()?.rollback();
                self.instance.state_mut().pending_log.clear();
                Err(ServiceError::Storage(storage))
            }
            Err(trap) => {
                self.rebuild()?;
                Err(ServiceError::Plugin(trap))
            }
        }
    }

    fn recover_if_trapped<T>(
        &mut self,
        outcome: Result<T, PluginError>,
    ) -> Result<T, ServiceError> {
        match outcome {
            Ok(value) => Ok(value),
            Err(error) => {
                if self.instance.is_poisoned() {
                    self.rebuild()?;
                }
                Err(ServiceError::Plugin(error))
            }
        }
    }

    fn journal(&self) -> Result<&Journal, ServiceError> {
        self.instance.state().journal().ok_or_else(|| {
            ServiceError::Storage(model::StorageError::Unavailable("no store attached".into()))
        })
    }

    fn flush_service_log(&mut self) {
        let lines = std::mem::take(&mut self.instance.state_mut().pending_log);
        if !lines.is_empty() {
            self.config.service_log.write(&lines);
        }
    }

    /// Replaces the instance with a fresh one brought up to date from the store.
    fn rebuild(&mut self) -> Result<(), ServiceError> {
        let journal = self.instance.state_mut().take_journal().ok_or_else(|| {
            ServiceError::Rebuild(anyhow::anyhow!("the failed instance held no store"))
        })?;
        journal.rollback();
        let (instance, report) =
            bring_up(&self.plugin, journal, &self.config).map_err(ServiceError::Rebuild)?;
        self.instance = instance;
        self.last_restore = report;
        self.restarts += 1;
        tracing::info!(
            restarts = self.restarts,
            rows = self.last_restore.rows,
            "plugin instance rebuilt from the store"
        );
        Ok(())
    }
}

/// The service as the server shares it between requests: calls are serialised.
pub type SharedConnLog = std::sync::Arc<std::sync::Mutex<ConnLog>>;

/// What a hot swap did.
#[derive(Clone, Debug)]
pub struct SwapReport {
    pub previous: crate::plugin::PluginInfo,
    pub current: crate::plugin::PluginInfo,
    /// Events replayed into the new instance while the old one kept serving.
    pub events_replayed: u64,
    /// Events that arrived meanwhile, replayed under the lock just before the switch.
    pub events_caught_up: u64,
    pub elapsed: Duration,
}

/// Replaces the running plugin with the one at `source`, without dropping a request: the
/// new plugin is loaded and brought up to date beside the old one, which keeps serving;
/// the switch itself happens under the lock, after a catch-up. If anything fails, the old
/// plugin stays and the error is returned.
pub fn swap_plugin(
    shared: &SharedConnLog,
    source: &PluginSource,
) -> Result<SwapReport, ServiceError> {
    let _ = (shared, source);
    todo!("service::swap_plugin")
}

pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STORE_FILE)
}

/// A new instance over `journal`, configured and holding every stored row.
fn bring_up(
    plugin: &LoadedPlugin,
    journal: Journal,
    config: &ServiceConfig,
) -> anyhow::Result<(PluginInstance, RestoreReport)> {
    let started = Instant::now();
    let mut instance = plugin.instantiate(
        Some(journal),
        config.directory.clone(),
        config.clock,
        &config.limits,
    )?;
    instance.configure(&config.log_formats)?;
    instance.set_retention(config.retention)?;
    let events_replayed = replay_journal(&mut instance, &store_path(&config.data_dir))?;
    let rows = instance.stats()?.rows;
    Ok((
        instance,
        RestoreReport {
            events_replayed,
            rows,
            elapsed: started.elapsed(),
        },
    ))
}

/// Feeds every stored event back through the plugin's `replay`. The events are read on a
/// second connection, because `replay` itself reads the journal through the instance's.
fn replay_journal(instance: &mut PluginInstance, store: &Path) -> anyhow::Result<u64> {
    let reader = Journal::open(store)?;
    reader.for_each_batch(REPLAY_BATCH, &mut |batch| {
        instance
            .replay(batch)?
            .map_err(|e| anyhow::anyhow!("replaying the journal: {e}"))
    })
}
