//! `ConnLog`: one plugin instance over one store, with the transaction discipline that
//! makes acknowledgements durable and plugin faults harmless.
//!
//! Every mutating call runs inside one SQLite transaction: the plugin appends to the
//! journal through its imports, and the host commits only when the call succeeded. A trap
//! rolls the transaction back and rebuilds the instance from the store; a commit failure
//! does the same (the plugin's memory may be ahead of the disk). Either way the caller gets
//! an error, and nothing it was told is stored is lost.
//!
//! Bringing an instance up to date (start, rebuild, swap) loads the stored snapshot when
//! this exact plugin build wrote it and it matches its record, then replays only the events
//! the snapshot does not cover; otherwise it replays the whole journal. See README
//! "Durability".

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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
use crate::store::{Journal, SnapshotInfo};

/// The store's file name inside the data directory.
pub const STORE_FILE: &str = "connlog.db";

/// How many events one replay call carries.
const REPLAY_BATCH: usize = 8192;

/// How many times a swap brings the new plugin up beside the old one before it gives up
/// racing purges and brings it up under the lock.
const SWAP_ATTEMPTS: usize = 3;

#[derive(Clone)]
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
    /// A plugin instance could not be brought up from the store: after a failure (the
    /// instance is rebuilt on the next call), or for a swap (the old plugin keeps serving).
    #[error("the plugin could not be brought up from the store: {0:#}")]
    Rebuild(anyhow::Error),
}

/// What a start-up or rebuild did to bring the plugin up to date.
#[derive(Clone, Debug)]
pub struct RestoreReport {
    /// Events fed to `replay`: the whole journal, or only the snapshot's tail.
    pub events_replayed: u64,
    pub rows: u64,
    pub elapsed: Duration,
    pub source: RestoreSource,
}

/// Where the rebuilt state came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreSource {
    /// The stored snapshot, then the events after it.
    Snapshot {
        /// The journal position the snapshot covers.
        last_seq: i64,
        bytes: u64,
        load_time: Duration,
    },
    /// Every event of the journal, because no usable snapshot was stored.
    FullReplay { reason: String },
}

/// When snapshots are written (besides `ConnLog::save_snapshot`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Write one as soon as this many stored events are not covered by the snapshot (after
    /// an ingest, a purge that deleted rows, or a start that replayed them). 0: never.
    pub every_events: u64,
    /// On a clean shutdown, write one if at least this many events are not covered.
    /// 0: never.
    pub on_close_min_events: u64,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        Self {
            every_events: 1_000_000,
            on_close_min_events: 10_000,
        }
    }
}

/// Running totals, for `/metrics`. Cheap to read: a copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Purges run (by the scheduler, `connlog purge` or the API), whatever they deleted.
    pub purges_run: u64,
    pub rows_purged: u64,
    /// Journal events deleted with the purged rows.
    pub events_purged: u64,
    /// Instances rebuilt from the store after a trap, an overrun or a failed commit.
    pub instance_restarts: u64,
    pub swaps: u64,
    pub swaps_failed: u64,
    pub snapshots_saved: u64,
    /// Size of the last snapshot written, in bytes.
    pub snapshot_bytes: u64,
    /// Stored snapshots refused at bring-up (damaged, or not matching the journal).
    pub snapshots_refused: u64,
}

pub struct ConnLog {
    host: Arc<PluginHost>,
    plugin: LoadedPlugin,
    instance: PluginInstance,
    config: ServiceConfig,
    last_restore: RestoreReport,
    counters: Counters,
    snapshot_policy: SnapshotPolicy,
    /// Stored events the current plugin's snapshot does not cover (all of them when it has
    /// none).
    unsnapshotted: u64,
    /// Bumped by every purge that deleted events: a swap that started bringing its plugin
    /// up before it must start again.
    purge_generation: u64,
    closed: bool,
}

impl ConnLog {
    pub fn open(config: ServiceConfig) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("creating the data directory {}", config.data_dir.display())
        })?;
        let path = store_path(&config.data_dir);
        let journal = Journal::connect(&path)?;
        // The whole-file check reads every page; it runs on its own connection while this
        // thread brings the plugin up, and its verdict comes first: a damaged store is
        // refused even if the bring-up happened to succeed.
        let checker = {
            let path = path.clone();
            std::thread::Builder::new()
                .name("connlog-quick-check".into())
                .spawn(move || Journal::quick_check(&path))
                .context("spawning the store check")?
        };
        let brought_up = PluginHost::new(config.cache.clone())
            .map(Arc::new)
            .and_then(|host| {
                let plugin = host.load(&config.plugin)?;
                let up = bring_up(&plugin, journal, &config)?;
                Ok((host, plugin, up))
            });
        checker
            .join()
            .map_err(|_| anyhow::anyhow!("the store check panicked"))??;
        let (host, plugin, up) = brought_up?;
        let mut counters = Counters::default();
        if up.snapshot_refused {
            counters.snapshots_refused += 1;
        }
        let mut service = Self {
            host,
            plugin,
            instance: up.instance,
            config,
            unsnapshotted: up.report.events_replayed,
            last_restore: up.report,
            counters,
            snapshot_policy: SnapshotPolicy::default(),
            purge_generation: 0,
            closed: false,
        };
        service.snapshot_if_due();
        Ok(service)
    }

    pub fn plugin(&self) -> &LoadedPlugin {
        &self.plugin
    }

    pub fn last_restore(&self) -> &RestoreReport {
        &self.last_restore
    }

    /// How many times the instance was rebuilt after a failure.
    pub fn restarts(&self) -> u64 {
        self.counters.instance_restarts
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    pub fn set_snapshot_policy(&mut self, policy: SnapshotPolicy) {
        self.snapshot_policy = policy;
    }

    /// Stored events the current snapshot does not cover.
    pub fn unsnapshotted_events(&self) -> u64 {
        self.unsnapshotted
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// The service's clock (the system clock, or a fixed instant in tests).
    pub fn now(&self) -> model::UnixNanos {
        self.config.clock.now()
    }

    /// Validates, stores and merges a batch. When this returns `Ok`, every `Stored` event
    /// is durable.
    pub fn ingest(
        &mut self,
        events: Vec<ConnectionEvent>,
    ) -> Result<Vec<EventOutcome>, ServiceError> {
        let outcomes = self.in_transaction(|instance| instance.ingest_batch(events))?;
        let stored = outcomes
            .iter()
            .filter(|o| matches!(o, EventOutcome::Stored))
            .count() as u64;
        self.unsnapshotted += stored;
        self.snapshot_if_due();
        Ok(outcomes)
    }

    pub fn query(
        &mut self,
        actor: Actor,
        request: QueryRequest,
    ) -> Result<Result<Page, QueryError>, ServiceError> {
        let outcome = self.instance()?.query(actor, request);
        self.recover_if_trapped(outcome)
    }

    /// Coder's response body for a page the caller already holds.
    pub fn api_response(&mut self, page: Page) -> Result<String, ServiceError> {
        let outcome = self.instance()?.api_response(page);
        self.recover_if_trapped(outcome)
    }

    /// A page as Coder's `GET /api/v2/connectionlog` body, in one plugin call.
    pub fn api_page(
        &mut self,
        actor: Actor,
        request: QueryRequest,
    ) -> Result<Result<String, QueryError>, ServiceError> {
        let outcome = self.instance()?.api_page(actor, request);
        self.recover_if_trapped(outcome)
    }

    pub fn api_rows(
        &mut self,
        rows: Vec<model::ConnectionLog>,
    ) -> Result<Vec<String>, ServiceError> {
        let outcome = self.instance()?.api_rows(rows);
        self.recover_if_trapped(outcome)
    }

    pub fn row_events(
        &mut self,
        row: model::ConnectionLog,
    ) -> Result<Vec<ConnectionEvent>, ServiceError> {
        let outcome = self.instance()?.row_events(row);
        self.recover_if_trapped(outcome)
    }

    pub fn service_log_line(
        &mut self,
        event: ConnectionEvent,
        format: LogFormat,
        logged_at: model::UnixNanos,
    ) -> Result<String, ServiceError> {
        let outcome = self.instance()?.service_log_line(event, format, logged_at);
        self.recover_if_trapped(outcome)
    }

    /// Applies retention as of `now`: rows and their events are gone from memory and disk.
    ///
    /// In the purge's transaction the journal deletes the rows' events and the snapshot
    /// (`secure_delete` zeroes their bytes); after the commit the WAL is checkpointed and
    /// truncated, so no page version holding them stays in the WAL either.
    pub fn purge(&mut self, now: model::UnixNanos) -> Result<model::PurgeReport, ServiceError> {
        self.attach_store()?;
        self.journal_mut()?.take_forgotten();
        let report = self.in_transaction(|instance| instance.purge(now))?;
        let forgotten = self.journal_mut()?.take_forgotten();
        self.counters.purges_run += 1;
        self.counters.rows_purged += report.purged;
        self.counters.events_purged += forgotten;
        if forgotten > 0 {
            self.purge_generation += 1;
            // The snapshot went with the purged rows: every remaining event is uncovered.
            // The purge is committed: a failure from here on is logged, not returned.
            match self.journal()?.event_count() {
                Ok(n) => self.unsnapshotted = n,
                Err(e) => tracing::warn!(error = %e, "counting events after a purge failed"),
            }
            match self.journal()?.checkpoint_truncate() {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    "the WAL could not be truncated after a purge (a reader is active); \
                     the next checkpoint will finish"
                ),
                Err(e) => tracing::warn!(error = %e, "checkpointing after a purge failed"),
            }
            self.snapshot_if_due();
        }
        Ok(report)
    }

    /// `purge` as of the service's clock.
    pub fn purge_now(&mut self) -> Result<model::PurgeReport, ServiceError> {
        let now = self.now();
        self.purge(now)
    }

    pub fn set_retention(&mut self, retention: Duration) -> Result<(), ServiceError> {
        self.config.retention = retention;
        let outcome = self.instance()?.set_retention(retention);
        self.recover_if_trapped(outcome)
    }

    pub fn stats(&mut self) -> Result<model::StateStats, ServiceError> {
        let outcome = self.instance()?.stats();
        self.recover_if_trapped(outcome)
    }

    /// Writes the plugin's state as the stored snapshot, in one transaction that replaces
    /// the previous one and records this plugin build and the journal position it covers.
    pub fn save_snapshot(&mut self) -> Result<SnapshotInfo, ServiceError> {
        let rows = self.stats()?.rows;
        let digest = self.plugin.digest.clone();
        let journal = self.journal_mut()?;
        journal.begin().map_err(ServiceError::Storage)?;
        if let Err(e) = journal.start_snapshot_write() {
            journal.rollback();
            return Err(ServiceError::Storage(e));
        }
        match self.instance.save_snapshot() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.journal()?.rollback();
                return Err(ServiceError::Storage(e));
            }
            Err(trap) => {
                self.rebuild()?;
                return Err(ServiceError::Plugin(trap));
            }
        }
        let journal = self.journal_mut()?;
        let info = journal
            .finish_snapshot_write(&digest, rows)
            .and_then(|info| journal.commit().map(|()| info));
        match info {
            Ok(info) => {
                self.unsnapshotted = 0;
                self.counters.snapshots_saved += 1;
                self.counters.snapshot_bytes = info.bytes;
                tracing::info!(
                    rows = info.rows,
                    bytes = info.bytes,
                    last_seq = info.last_seq,
                    "snapshot saved"
                );
                Ok(info)
            }
            Err(e) => {
                // Writing a snapshot changes nothing in the plugin: no rebuild needed.
                self.journal()?.rollback();
                Err(ServiceError::Storage(e))
            }
        }
    }

    /// Shuts down cleanly: writes a snapshot if the policy asks for one, and checkpoints
    /// the WAL. Dropping the service does the same, logging instead of returning errors.
    pub fn close(mut self) -> Result<(), ServiceError> {
        self.closed = true;
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), ServiceError> {
        let threshold = self.snapshot_policy.on_close_min_events;
        if threshold > 0 && self.unsnapshotted >= threshold && !self.instance.is_poisoned() {
            self.save_snapshot()?;
        }
        if let Ok(journal) = self.journal() {
            let _ = journal.checkpoint_truncate();
        }
        Ok(())
    }

    /// Saves a snapshot once the policy's `every_events` are uncovered.
    fn snapshot_if_due(&mut self) {
        let threshold = self.snapshot_policy.every_events;
        if threshold > 0
            && self.unsnapshotted >= threshold
            && let Err(e) = self.save_snapshot()
        {
            tracing::warn!(error = %e, "could not save a snapshot; the journal remains complete");
        }
    }

    /// Runs a mutating call in one transaction; commits on success, rolls back otherwise.
    fn in_transaction<T>(
        &mut self,
        call: impl FnOnce(&mut PluginInstance) -> Result<Result<T, model::StorageError>, PluginError>,
    ) -> Result<T, ServiceError> {
        self.attach_store()?;
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

    /// The instance, with its store attached.
    fn instance(&mut self) -> Result<&mut PluginInstance, ServiceError> {
        self.attach_store()?;
        Ok(&mut self.instance)
    }

    /// A rebuild that failed leaves the instance without its store (and possibly ahead of
    /// it): every call retries the rebuild first.
    fn attach_store(&mut self) -> Result<(), ServiceError> {
        if self.instance.state().journal().is_none() {
            self.rebuild()?;
        }
        Ok(())
    }

    fn journal(&self) -> Result<&Journal, ServiceError> {
        self.instance.state().journal().ok_or_else(no_store)
    }

    fn journal_mut(&mut self) -> Result<&mut Journal, ServiceError> {
        self.instance
            .state_mut()
            .journal
            .as_mut()
            .ok_or_else(no_store)
    }

    fn flush_service_log(&mut self) {
        let lines = std::mem::take(&mut self.instance.state_mut().pending_log);
        if !lines.is_empty() {
            self.config.service_log.write(&lines);
        }
    }

    /// Replaces the instance with a fresh one brought up to date from the store. If that
    /// fails, the failed instance stays in place, poisoned, and the next call tries again.
    fn rebuild(&mut self) -> Result<(), ServiceError> {
        let journal = match self.instance.state_mut().take_journal() {
            Some(journal) => {
                journal.rollback();
                journal
            }
            None => Journal::connect(&store_path(&self.config.data_dir))
                .map_err(ServiceError::Rebuild)?,
        };
        let up = bring_up(&self.plugin, journal, &self.config).map_err(ServiceError::Rebuild)?;
        self.instance = up.instance;
        self.unsnapshotted = up.report.events_replayed;
        self.last_restore = up.report;
        self.counters.instance_restarts += 1;
        if up.snapshot_refused {
            self.counters.snapshots_refused += 1;
        }
        tracing::info!(
            restarts = self.counters.instance_restarts,
            rows = self.last_restore.rows,
            elapsed_ms = self.last_restore.elapsed.as_millis() as u64,
            "plugin instance rebuilt from the store"
        );
        Ok(())
    }
}

impl Drop for ConnLog {
    fn drop(&mut self) {
        if self.closed || std::thread::panicking() {
            return;
        }
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "clean shutdown could not save a snapshot");
        }
    }
}

fn no_store() -> ServiceError {
    ServiceError::Storage(model::StorageError::Unavailable("no store attached".into()))
}

/// The service as the server shares it between requests: calls are serialised.
pub type SharedConnLog = Arc<Mutex<ConnLog>>;

/// Locks the shared service. A panic while it was held cannot have left a half-done
/// change behind (every change is one SQLite transaction), so a poisoned lock is used.
pub fn lock(shared: &SharedConnLog) -> MutexGuard<'_, ConnLog> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

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
    /// How the new instance was brought up (snapshot or full replay).
    pub restore: RestoreReport,
    /// How long requests waited on the lock for the catch-up and the switch.
    pub locked_for: Duration,
}

/// Replaces the running plugin with the one at `source`, without dropping a request: the
/// new plugin is loaded and brought up to date beside the old one, which keeps serving;
/// the switch itself happens under the lock, after a catch-up. If anything fails, the old
/// plugin stays and the error is returned. Call it without holding the lock (it takes the
/// lock twice, briefly: to read the settings, and for the catch-up and the switch).
///
/// The new instance gets its own connection to the store. It is brought up from a pinned
/// read transaction (the snapshot if it wrote one, then the journal up to position `S`),
/// while the old instance goes on committing. Under the lock it replays the events after
/// `S` (sessions they touch are refolded from the whole journal, so rows come out exactly
/// as a full replay would give them) and takes the old one's place. A purge that deleted
/// rows meanwhile invalidates the side work, which then starts again.
pub fn swap_plugin(
    shared: &SharedConnLog,
    source: &PluginSource,
) -> Result<SwapReport, ServiceError> {
    let started = Instant::now();
    let (host, config) = {
        let service = lock(shared);
        (service.host.clone(), service.config.clone())
    };
    let outcome = bring_up_beside(shared, &host, &config, source, started);
    let mut service = lock(shared);
    match &outcome {
        Ok(report) => tracing::info!(
            previous = %report.previous.version,
            current = %report.current.version,
            replayed = report.events_replayed,
            caught_up = report.events_caught_up,
            locked_ms = report.locked_for.as_millis() as u64,
            elapsed_ms = report.elapsed.as_millis() as u64,
            "plugin swapped"
        ),
        Err(e) => {
            service.counters.swaps_failed += 1;
            tracing::error!(plugin = %source.describe(), error = %e, "plugin swap failed; the running plugin keeps serving");
        }
    }
    outcome
}

fn bring_up_beside(
    shared: &SharedConnLog,
    host: &PluginHost,
    config: &ServiceConfig,
    source: &PluginSource,
    started: Instant,
) -> Result<SwapReport, ServiceError> {
    let plugin = host.load(source)?;
    let path = store_path(&config.data_dir);
    for _ in 0..SWAP_ATTEMPTS {
        let generation = lock(shared).purge_generation;
        let journal = Journal::connect(&path).map_err(ServiceError::Rebuild)?;
        let mut up = bring_up(&plugin, journal, config).map_err(bring_up_error)?;
        let mut service = lock(shared);
        if service.purge_generation != generation {
            continue;
        }
        let locked = Instant::now();
        if service.config.retention != config.retention {
            up.instance
                .set_retention(service.config.retention)
                .map_err(ServiceError::Plugin)?;
        }
        let caught_up =
            replay_range(&mut up.instance, &path, up.upto, i64::MAX).map_err(bring_up_error)?;
        up.report.rows = up.instance.stats()?.rows;
        return Ok(service.install(plugin, up, source, caught_up, started, locked));
    }
    // Purges kept invalidating the side work: bring the plugin up under the lock.
    let mut service = lock(shared);
    let locked = Instant::now();
    let journal = Journal::connect(&path).map_err(ServiceError::Rebuild)?;
    let up = bring_up(&plugin, journal, &service.config).map_err(bring_up_error)?;
    Ok(service.install(plugin, up, source, 0, started, locked))
}

impl ConnLog {
    /// Puts the brought-up instance (plus `caught_up` events replayed under the lock) in
    /// the running one's place.
    fn install(
        &mut self,
        plugin: LoadedPlugin,
        up: BroughtUp,
        source: &PluginSource,
        caught_up: u64,
        started: Instant,
        locked: Instant,
    ) -> SwapReport {
        let previous = std::mem::replace(&mut self.plugin, plugin).info;
        self.instance = up.instance;
        self.config.plugin = source.clone();
        self.unsnapshotted = up.report.events_replayed + caught_up;
        self.last_restore = up.report.clone();
        self.counters.swaps += 1;
        if up.snapshot_refused {
            self.counters.snapshots_refused += 1;
        }
        SwapReport {
            previous,
            current: self.plugin.info.clone(),
            events_replayed: up.report.events_replayed,
            events_caught_up: caught_up,
            elapsed: started.elapsed(),
            restore: up.report,
            locked_for: locked.elapsed(),
        }
    }
}

/// A failed bring-up: a trap is reported as the plugin's failure, anything else as is.
fn bring_up_error(error: anyhow::Error) -> ServiceError {
    match error.downcast::<PluginError>() {
        Ok(plugin) => ServiceError::Plugin(plugin),
        Err(other) => ServiceError::Rebuild(other),
    }
}

pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STORE_FILE)
}

/// An instance brought up to date.
struct BroughtUp {
    instance: PluginInstance,
    report: RestoreReport,
    /// The journal position it holds: every event with `seq <= upto`.
    upto: i64,
    /// A stored snapshot of this plugin was refused (damaged or inconsistent).
    snapshot_refused: bool,
}

/// A configured instance over `journal`, holding nothing yet.
fn fresh_instance(
    plugin: &LoadedPlugin,
    journal: Journal,
    config: &ServiceConfig,
) -> anyhow::Result<PluginInstance> {
    let mut instance = plugin.instantiate(
        Some(journal),
        config.directory.clone(),
        config.clock,
        &config.limits,
    )?;
    instance.configure(&config.log_formats)?;
    instance.set_retention(config.retention)?;
    Ok(instance)
}

/// A new instance over `journal`, configured and holding every stored row.
///
/// It works from a read transaction pinned on the instance's connection, so the snapshot,
/// its record and the journal are seen at one instant even while another connection
/// commits. The snapshot is used only if this exact plugin build wrote it, its position is
/// in the journal, and its bytes match their record (checked as they are read); otherwise,
/// or if loading it fails in any way, a fresh instance replays the whole journal.
fn bring_up(
    plugin: &LoadedPlugin,
    journal: Journal,
    config: &ServiceConfig,
) -> anyhow::Result<BroughtUp> {
    let started = Instant::now();
    journal
        .begin_read()
        .map_err(|e| anyhow::anyhow!("reading the store: {e}"))?;
    let mut instance = fresh_instance(plugin, journal, config)?;
    let result = restore_into(&mut instance, plugin, config, started);
    if let Some(journal) = instance.state().journal() {
        journal.end_read();
    }
    let (report, upto, snapshot_refused) = result?;
    Ok(BroughtUp {
        instance,
        report,
        upto,
        snapshot_refused,
    })
}

fn restore_into(
    instance: &mut PluginInstance,
    plugin: &LoadedPlugin,
    config: &ServiceConfig,
    started: Instant,
) -> anyhow::Result<(RestoreReport, i64, bool)> {
    let storage = |e: model::StorageError| anyhow::anyhow!("reading the store: {e}");
    let journal = instance
        .state()
        .journal()
        .expect("bring_up attaches a journal");
    let upto = journal.last_seq().map_err(storage)?;
    let stored = journal.snapshot_info().map_err(storage)?;
    let mut refused = false;
    let mut source = RestoreSource::FullReplay {
        reason: "no snapshot is stored".into(),
    };
    if let Some(info) = stored {
        let usable = if info.plugin_digest != plugin.digest {
            Err("the stored snapshot was written by another plugin build".to_string())
        } else if info.last_seq > upto
            || (info.last_seq > 0 && !journal.seq_exists(info.last_seq).map_err(storage)?)
        {
            Err(format!(
                "the stored snapshot covers journal position {} but the journal does not hold it",
                info.last_seq
            ))
        } else {
            Ok(())
        };
        source = match usable.and_then(|()| load_snapshot(instance, &info)) {
            Ok(load_time) => RestoreSource::Snapshot {
                last_seq: info.last_seq,
                bytes: info.bytes,
                load_time,
            },
            Err(reason) => {
                if info.plugin_digest == plugin.digest {
                    refused = true;
                    tracing::warn!(%reason, "the stored snapshot was refused; replaying the whole journal");
                } else {
                    tracing::info!(%reason, "replaying the whole journal");
                }
                // Whatever a failed load left in the instance is thrown away.
                let journal = instance
                    .state_mut()
                    .take_journal()
                    .expect("bring_up attaches a journal");
                *instance = fresh_instance(plugin, journal, config)?;
                RestoreSource::FullReplay { reason }
            }
        };
    }
    let after = match &source {
        RestoreSource::Snapshot { last_seq, .. } => *last_seq,
        RestoreSource::FullReplay { .. } => 0,
    };
    let events_replayed = replay_range(instance, &store_path(&config.data_dir), after, upto)?;
    let rows = instance.stats()?.rows;
    Ok((
        RestoreReport {
            events_replayed,
            rows,
            elapsed: started.elapsed(),
            source,
        },
        upto,
        refused,
    ))
}

/// Loads the stored snapshot into `instance`, verified against its record.
fn load_snapshot(instance: &mut PluginInstance, info: &SnapshotInfo) -> Result<Duration, String> {
    let started = Instant::now();
    instance
        .state_mut()
        .journal
        .as_mut()
        .expect("bring_up attaches a journal")
        .start_snapshot_read(info);
    let outcome = instance.load_snapshot();
    let verified = instance
        .state()
        .journal()
        .is_some_and(Journal::snapshot_read_verified);
    match outcome {
        Ok(Ok(())) if verified => Ok(started.elapsed()),
        Ok(Ok(())) => Err("the plugin finished loading before the snapshot's end".into()),
        Ok(Err(e)) => Err(format!("loading the snapshot failed: {e}")),
        Err(trap) => Err(format!("loading the snapshot failed: {trap}")),
    }
}

/// Feeds the stored events with `after < seq <= upto` back through the plugin's `replay`.
/// The events are read on a second connection, because `replay` itself reads the journal
/// through the instance's.
fn replay_range(
    instance: &mut PluginInstance,
    store: &Path,
    after: i64,
    upto: i64,
) -> anyhow::Result<u64> {
    let reader = Journal::connect(store)?;
    reader.for_each_batch_in(REPLAY_BATCH, after, upto, &mut |batch| {
        instance
            .replay(batch)?
            .map_err(|e| anyhow::anyhow!("replaying the journal: {e}"))
    })
}
