//! `ConnLog`: one plugin instance over one store, with the transaction discipline that
//! makes acknowledgements durable and plugin faults harmless.
//!
//! Every mutating call runs inside one SQLite transaction: the plugin appends to the
//! journal through its imports, and the host commits only when the call succeeded. A trap
//! rolls the transaction back and rebuilds the instance from the store; a commit failure
//! does the same (the plugin's memory may be ahead of the disk). Either way the caller gets
//! an error, and nothing it was told is stored is lost.
//!
//! Before a mutating call, events another writer appended to the journal (another process,
//! another connection) are merged first, so the instance always holds everything up to the
//! position it records (`merged_upto`), and a snapshot claims exactly that.
//!
//! Bringing an instance up to date (start, rebuild, swap) loads the stored snapshot when
//! this exact plugin build wrote it and it matches its record, then replays only the events
//! the snapshot does not cover, applying again the purges committed since it was written;
//! otherwise it replays the whole journal. Snapshots are written by a background thread
//! (`background`), never under the service's lock except on a clean shutdown or when asked
//! for (`save_snapshot`). See README "Durability".

mod background;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::directory::Lookup;
use crate::model::{
    self, Actor, ConnectionEvent, EventOutcome, LogFormat, Page, QueryError, QueryRequest,
};
use crate::plugin::{
    Clock, ComponentCache, Limits, LoadedPlugin, PluginError, PluginHost, PluginInstance,
    PluginSource, ServiceLogSink,
};
use crate::store::snapshot_file::OpenFailure;
use crate::store::{Expect, Includes, Journal, PendingPurge, ReplayCursor, SnapshotInfo};

/// The store's file name inside the data directory.
pub const STORE_FILE: &str = "connlog.db";

/// How many events one replay call carries.
const REPLAY_BATCH: usize = 8192;

/// How many times a swap brings the new plugin up beside the old one before it gives up
/// racing purges and brings it up under the lock.
const SWAP_ATTEMPTS: usize = 3;

/// A write transaction longer than this is logged with where its time went.
const SLOW_TRANSACTION: Duration = Duration::from_millis(100);

/// How many times a bring-up pins a new view when the snapshot it pinned was replaced
/// before it could open the file, before it settles for a full replay.
const BRING_UP_ATTEMPTS: usize = 3;

#[derive(Clone)]
pub struct ServiceConfig {
    pub data_dir: PathBuf,
    pub plugin: PluginSource,
    pub directory: Arc<dyn Lookup + Send + Sync>,
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
    /// The stored snapshot, then the events after it (with the purges committed since it
    /// was written applied again at their place).
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
    /// Have one written in the background as soon as about this many stored events are not
    /// covered by the snapshot (after an ingest, or a start that replayed them). 0: never.
    pub every_events: u64,
    /// On a clean shutdown, write one if at least this many events are not covered.
    /// 0: never.
    pub on_close_min_events: u64,
    /// After a purge that deleted rows, have the snapshot (which still holds them)
    /// rewritten in the background, and on a clean shutdown if that has not happened yet.
    /// Turn it off only to test what a crash before the rewrite leaves.
    pub rewrite_after_purge: bool,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        Self {
            every_events: 1_000_000,
            on_close_min_events: 10_000,
            rewrite_after_purge: true,
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
    /// Snapshots written, in the background or on demand.
    pub snapshots_saved: u64,
    /// Size of the last snapshot written, in bytes.
    pub snapshot_bytes: u64,
    /// Stored snapshots refused at bring-up (damaged, or not matching the journal).
    pub snapshots_refused: u64,
    /// Background snapshot writes that failed (the journal stays complete; the next
    /// request tries again).
    pub snapshot_writes_failed: u64,
    /// How long the last purge held the service (its lock, when shared), in microseconds.
    pub last_purge_locked_us: u64,
    /// The longest any purge held it, in microseconds.
    pub max_purge_locked_us: u64,
}

pub struct ConnLog {
    host: Arc<PluginHost>,
    plugin: Arc<LoadedPlugin>,
    instance: PluginInstance,
    config: ServiceConfig,
    last_restore: RestoreReport,
    counters: Counters,
    snapshot_policy: SnapshotPolicy,
    /// Stored events the stored snapshot does not cover (all of them when there is none);
    /// after a background snapshot, counted as positions (`merged_upto - snapshot_upto`).
    unsnapshotted: u64,
    /// The journal position the instance has merged: it holds every event with
    /// `seq <= merged_upto`, and a snapshot of it covers exactly that.
    merged_upto: i64,
    /// The journal position the stored snapshot covers, as far as this service knows.
    snapshot_upto: i64,
    writer: background::Writer,
    /// The background snapshots already accounted for in `unsnapshotted`.
    writer_seen: u64,
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
                let up = bring_up(&plugin, journal, &config, None)?;
                Ok((host, plugin, up))
            });
        checker
            .join()
            .map_err(|_| anyhow::anyhow!("the store check panicked"))??;
        let (host, plugin, up) = brought_up?;
        let plugin = Arc::new(plugin);
        let mut counters = Counters::default();
        if up.snapshot_refused {
            counters.snapshots_refused += 1;
        }
        let mut writer = background::Writer::new(plugin.clone(), config.clone());
        // A snapshot older than a purge still holds the purged rows: rewrite it. Files no
        // record names (what a crash leaves) are zeroed.
        let stale = up.pinned.stale_snapshot();
        writer.request(background::Work {
            snapshot: stale,
            checkpoint: stale,
            sweep: up.pinned.leftover_files,
        });
        let mut service = Self {
            host,
            plugin,
            instance: up.instance,
            config,
            unsnapshotted: up.report.events_replayed,
            merged_upto: up.upto,
            snapshot_upto: up.report.source.covers(),
            last_restore: up.report,
            counters,
            snapshot_policy: SnapshotPolicy::default(),
            writer,
            writer_seen: 0,
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
        let mut counters = self.counters;
        let written = self.writer.results();
        counters.snapshots_saved = written.saved;
        counters.snapshot_bytes = written.last_bytes;
        counters.snapshots_refused += written.refused;
        counters.snapshot_writes_failed = written.failed;
        counters
    }

    pub fn set_snapshot_policy(&mut self, policy: SnapshotPolicy) {
        self.snapshot_policy = policy;
    }

    /// Stored events the current snapshot does not cover.
    pub fn unsnapshotted_events(&self) -> u64 {
        let written = self.writer.results();
        if written.recorded != self.writer_seen && written.covers > self.snapshot_upto {
            u64::try_from(self.merged_upto - written.covers).unwrap_or(0)
        } else {
            self.unsnapshotted
        }
    }

    /// The journal position the instance has merged (every event with `seq` up to it).
    pub fn merged_upto(&self) -> i64 {
        self.merged_upto
    }

    /// Waits until the background snapshot writer has nothing left to do (what was asked
    /// of it before this call, and anything that asked for more meanwhile).
    pub fn wait_for_snapshots(&mut self) {
        self.writer.wait_idle();
        self.absorb_background();
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

    /// Applies retention as of `now`: rows and their events are gone from memory and from
    /// the journal.
    ///
    /// One short transaction deletes the rows' events (`secure_delete` zeroes their bytes)
    /// and records the purge as pending for the stored snapshot, which still holds the
    /// rows. The background writer then writes a snapshot without them, zeroes the old
    /// file, and checkpoints and truncates the WAL, so no copy of them stays on disk; until
    /// then a restart applies the recorded purge again.
    pub fn purge(&mut self, now: model::UnixNanos) -> Result<model::PurgeReport, ServiceError> {
        let started = Instant::now();
        self.attach_store()?;
        self.journal_mut()?.take_forgotten();
        let report = self.in_transaction(|instance| {
            let report = match instance.purge(now)? {
                Ok(report) => report,
                Err(e) => return Ok(Err(e)),
            };
            let journal = instance
                .state()
                .journal()
                .expect("in_transaction attaches the store");
            let (deleted, max_deleted_seq) = journal.forgotten();
            if let Some(cutoff) = report.cutoff
                && (deleted > 0 || report.purged > 0)
                && let Err(e) = journal.record_purge(cutoff, max_deleted_seq)
            {
                return Ok(Err(e));
            }
            Ok(Ok(report))
        });
        let report = match report {
            Ok(report) => report,
            Err(e) => {
                self.note_purge_time(started);
                return Err(e);
            }
        };
        let forgotten = self.journal_mut()?.take_forgotten();
        self.counters.purges_run += 1;
        self.counters.rows_purged += report.purged;
        self.counters.events_purged += forgotten;
        if forgotten > 0 || report.purged > 0 {
            self.purge_generation += 1;
            self.writer.request(background::Work {
                snapshot: self.snapshot_policy.rewrite_after_purge,
                checkpoint: true,
                sweep: true,
            });
        }
        self.note_purge_time(started);
        Ok(report)
    }

    fn note_purge_time(&mut self, started: Instant) {
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.counters.last_purge_locked_us = us;
        self.counters.max_purge_locked_us = self.counters.max_purge_locked_us.max(us);
    }

    /// `purge` as of the service's clock.
    pub fn purge_now(&mut self) -> Result<model::PurgeReport, ServiceError> {
        let now = self.now();
        self.purge(now)
    }

    pub fn set_retention(&mut self, retention: Duration) -> Result<(), ServiceError> {
        self.config.retention = retention;
        self.writer
            .set_source(self.plugin.clone(), self.config.clone());
        let outcome = self.instance()?.set_retention(retention);
        self.recover_if_trapped(outcome)
    }

    pub fn stats(&mut self) -> Result<model::StateStats, ServiceError> {
        let outcome = self.instance()?.stats();
        self.recover_if_trapped(outcome)
    }

    /// Writes the plugin's state as the stored snapshot, now, under the caller's hold of
    /// the service: into a new file, then one small transaction records it (this plugin
    /// build, the position it covers: `merged_upto`) and drops the pending purges, which
    /// the running plugin has all applied. The file it replaces is zeroed and removed in
    /// the background (at once on shutdown).
    pub fn save_snapshot(&mut self) -> Result<SnapshotInfo, ServiceError> {
        let rows = self.stats()?.rows;
        let digest = self.plugin.digest.clone();
        let last_seq = self.merged_upto;
        self.journal_mut()?
            .start_snapshot_write()
            .map_err(ServiceError::Storage)?;
        match self.instance.save_snapshot() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.journal_mut()?.abandon_snapshot_write();
                return Err(ServiceError::Storage(e));
            }
            Err(trap) => {
                self.journal_mut()?.abandon_snapshot_write();
                self.rebuild()?;
                return Err(ServiceError::Plugin(trap));
            }
        }
        let journal = self.journal_mut()?;
        let written = journal
            .finish_snapshot_write(&digest, rows, last_seq)
            .map_err(ServiceError::Storage)?;
        let info = written.info.clone();
        journal
            .replace_snapshot(written, Expect::Anything, Includes::AllPurges)
            .map_err(ServiceError::Storage)?;
        self.absorb_background();
        self.snapshot_upto = last_seq;
        self.unsnapshotted = 0;
        self.writer.note_saved(info.bytes);
        self.writer.request(background::Work {
            sweep: true,
            ..Default::default()
        });
        tracing::info!(
            rows = info.rows,
            bytes = info.bytes,
            last_seq = info.last_seq,
            "snapshot saved"
        );
        Ok(info)
    }

    /// Shuts down cleanly: stops the background writer, writes a snapshot if the policy
    /// asks for one (or if the stored one still holds purged rows), removes replaced
    /// snapshot files and checkpoints the WAL. Dropping the service does the same, logging
    /// instead of returning errors.
    pub fn close(mut self) -> Result<(), ServiceError> {
        self.closed = true;
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), ServiceError> {
        self.writer.stop();
        self.absorb_background();
        let threshold = self.snapshot_policy.on_close_min_events;
        let due = threshold > 0 && self.unsnapshotted >= threshold;
        let stale = self.snapshot_policy.rewrite_after_purge
            && self
                .journal()
                .ok()
                .and_then(|j| stale_snapshot(j).ok())
                .unwrap_or(false);
        if (due || stale) && !self.instance.is_poisoned() {
            self.save_snapshot()?;
        }
        if let Ok(journal) = self.journal() {
            if let Err(e) = journal.sweep_snapshot_files() {
                tracing::warn!(error = %e, "replaced snapshot files could not be removed; the next start will");
            }
            let _ = journal.checkpoint_truncate();
        }
        Ok(())
    }

    /// Asks the background writer for a snapshot once the policy's `every_events` are
    /// uncovered and it is not already at work.
    fn snapshot_if_due(&mut self) {
        self.absorb_background();
        let threshold = self.snapshot_policy.every_events;
        if threshold > 0 && self.unsnapshotted >= threshold && self.writer.is_idle() {
            self.writer.request(background::Work {
                snapshot: true,
                sweep: true,
                ..Default::default()
            });
        }
    }

    /// Takes note of the snapshots the background writer recorded since the last look.
    fn absorb_background(&mut self) {
        let written = self.writer.results();
        if written.recorded == self.writer_seen {
            return;
        }
        self.writer_seen = written.recorded;
        if written.covers > self.snapshot_upto {
            self.snapshot_upto = written.covers;
            self.unsnapshotted = u64::try_from(self.merged_upto - written.covers).unwrap_or(0);
        }
    }

    /// Runs a mutating call in one transaction; commits on success, rolls back otherwise.
    /// Events another writer committed since the instance last merged are merged first,
    /// in the same transaction, so that `merged_upto` stays exact.
    fn in_transaction<T>(
        &mut self,
        call: impl FnOnce(&mut PluginInstance) -> Result<Result<T, model::StorageError>, PluginError>,
    ) -> Result<T, ServiceError> {
        self.attach_store()?;
        let started = Instant::now();
        self.journal()?.begin().map_err(ServiceError::Storage)?;
        let begun = started.elapsed();
        self.merge_foreign_events()?;
        match call(&mut self.instance) {
            Ok(Ok(value)) => {
                let called = started.elapsed();
                let journal = self.journal()?;
                let committed = journal
                    .last_seq()
                    .and_then(|head| journal.commit().map(|()| head));
                match committed {
                    Ok(head) => {
                        self.merged_upto = head;
                        self.flush_service_log();
                        let took = started.elapsed();
                        if took > SLOW_TRANSACTION {
                            tracing::info!(
                                waited_for_write_lock_ms = begun.as_millis() as u64,
                                call_ms = (called - begun).as_millis() as u64,
                                commit_ms = (took - called).as_millis() as u64,
                                "a slow write transaction"
                            );
                        }
                        Ok(value)
                    }
                    Err(e) => {
                        // The plugin's memory already holds what the disk refused.
                        self.rebuild()?;
                        Err(ServiceError::Storage(e))
                    }
                }
            }
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

    /// Inside the write transaction (so no one appends meanwhile): replays into the
    /// instance the events with `seq > merged_upto`, which another writer committed.
    fn merge_foreign_events(&mut self) -> Result<(), ServiceError> {
        let head = match self.journal()?.last_seq() {
            Ok(head) => head,
            Err(e) => {
                self.journal()?.rollback();
                return Err(ServiceError::Storage(e));
            }
        };
        if head <= self.merged_upto {
            return Ok(());
        }
        match replay_range(&mut self.instance, self.merged_upto, head, None, None) {
            Ok(merged) => {
                tracing::info!(
                    events = merged,
                    from = self.merged_upto,
                    to = head,
                    "merged events another writer appended to the journal"
                );
                self.merged_upto = head;
                self.unsnapshotted += merged;
                Ok(())
            }
            Err(e) => {
                // What a partial replay left in the instance is thrown away with it.
                self.rebuild()?;
                Err(bring_up_error(e))
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
            Some(mut journal) => {
                journal.rollback();
                journal.abandon_snapshot_write();
                journal
            }
            None => Journal::connect(&store_path(&self.config.data_dir))
                .map_err(ServiceError::Rebuild)?,
        };
        let up =
            bring_up(&self.plugin, journal, &self.config, None).map_err(ServiceError::Rebuild)?;
        self.instance = up.instance;
        self.unsnapshotted = up.report.events_replayed;
        self.merged_upto = up.upto;
        self.snapshot_upto = up.report.source.covers();
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

/// Whether a snapshot file is recorded that purges since have made stale: it still holds
/// the purged rows until it is rewritten.
fn stale_snapshot(journal: &Journal) -> Result<bool, model::StorageError> {
    Ok(journal.recorded_snapshot_file()?.is_some() && !journal.pending_purges()?.is_empty())
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

/// Waits until the shared service's background snapshot writer is idle, without holding
/// the service's lock meanwhile (`ConnLog::wait_for_snapshots` waits under it).
pub fn wait_for_snapshots(shared: &SharedConnLog) {
    let waiter = lock(shared).writer.waiter();
    waiter.wait_idle();
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
        let mut up = bring_up(&plugin, journal, config, None).map_err(bring_up_error)?;
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
        let head = up
            .instance
            .state()
            .journal()
            .expect("bring_up attaches a journal")
            .last_seq()
            .map_err(ServiceError::Storage)?;
        let caught_up =
            replay_range(&mut up.instance, up.upto, head, None, None).map_err(bring_up_error)?;
        up.upto = head;
        up.report.rows = up.instance.stats()?.rows;
        return Ok(service.install(plugin, up, source, caught_up, started, locked));
    }
    // Purges kept invalidating the side work: bring the plugin up under the lock.
    let mut service = lock(shared);
    let locked = Instant::now();
    let journal = Journal::connect(&path).map_err(ServiceError::Rebuild)?;
    let up = bring_up(&plugin, journal, &service.config, None).map_err(bring_up_error)?;
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
        let previous = std::mem::replace(&mut self.plugin, Arc::new(plugin))
            .info
            .clone();
        self.instance = up.instance;
        self.config.plugin = source.clone();
        self.writer
            .set_source(self.plugin.clone(), self.config.clone());
        self.unsnapshotted = up.report.events_replayed + caught_up;
        self.merged_upto = up.upto;
        self.snapshot_upto = up.report.source.covers();
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
    pinned: Pinned,
}

/// What the pinned view held besides the events: what a snapshot written from this
/// bring-up replaces and includes.
struct Pinned {
    /// The snapshot file the record named.
    snapshot_file: Option<String>,
    /// `Journal::purge_mark`: the purges this bring-up applied are those up to it.
    purge_mark: i64,
    /// Purges no stored snapshot included.
    pending_purges: usize,
    /// The snapshot folder holds files the record does not name.
    leftover_files: bool,
}

impl Pinned {
    /// A snapshot file is recorded, and purges since it was written: it still holds rows
    /// they removed.
    fn stale_snapshot(&self) -> bool {
        self.snapshot_file.is_some() && self.pending_purges > 0
    }
}

impl RestoreSource {
    /// The journal position the stored snapshot covers, when it was used.
    fn covers(&self) -> i64 {
        match self {
            RestoreSource::Snapshot { last_seq, .. } => *last_seq,
            RestoreSource::FullReplay { .. } => 0,
        }
    }
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
/// It works from a read transaction pinned on the instance's connection, so the snapshot
/// record, the pending purges and the journal are seen at one instant even while another
/// connection commits. The snapshot is used only if this exact plugin build wrote it, its
/// position is one the journal handed out, no purge since deleted events it does not cover,
/// and its bytes match their record (checked as they are read); otherwise, or if loading
/// it fails in any way, a fresh instance replays the whole journal. If the pinned snapshot
/// was replaced before its file could be opened, it pins a new view and starts again.
///
/// `cancel` stops it between replay batches (the background writer, shutting down).
fn bring_up(
    plugin: &LoadedPlugin,
    journal: Journal,
    config: &ServiceConfig,
    cancel: Option<&AtomicBool>,
) -> anyhow::Result<BroughtUp> {
    let started = Instant::now();
    let mut journal = journal;
    for attempt in 1..=BRING_UP_ATTEMPTS {
        journal
            .begin_read()
            .map_err(|e| anyhow::anyhow!("reading the store: {e}"))?;
        let mut instance = fresh_instance(plugin, journal, config)?;
        let last_attempt = attempt == BRING_UP_ATTEMPTS;
        let result = restore_into(&mut instance, plugin, config, started, cancel, last_attempt);
        if let Some(journal) = instance.state_mut().journal.as_mut() {
            journal.set_session_bound(None);
            journal.end_read();
        }
        match result? {
            Some(restored) => {
                return Ok(BroughtUp {
                    instance,
                    report: restored.report,
                    upto: restored.upto,
                    snapshot_refused: restored.refused,
                    pinned: restored.pinned,
                });
            }
            None => {
                journal = instance
                    .state_mut()
                    .take_journal()
                    .expect("bring_up attaches a journal");
            }
        }
    }
    unreachable!("the last attempt never asks for another")
}

struct Restored {
    report: RestoreReport,
    upto: i64,
    refused: bool,
    pinned: Pinned,
}

/// Why the stored snapshot was not used.
enum Refusal {
    /// Another plugin build's, or older than a purge that deleted events it does not
    /// cover: not damage.
    NotUsable(String),
    /// Damaged, or not matching the journal: counted and logged as a warning.
    Damaged(String),
    /// Replaced (and its file removed) after this view was pinned.
    Replaced,
}

/// Brings `instance` up from the pinned view; `None` when the pinned snapshot was replaced
/// meanwhile and another attempt should pin a new view.
fn restore_into(
    instance: &mut PluginInstance,
    plugin: &LoadedPlugin,
    config: &ServiceConfig,
    started: Instant,
    cancel: Option<&AtomicBool>,
    last_attempt: bool,
) -> anyhow::Result<Option<Restored>> {
    let storage = |e: model::StorageError| anyhow::anyhow!("reading the store: {e}");
    let journal = instance
        .state()
        .journal()
        .expect("bring_up attaches a journal");
    let upto = journal.last_seq().map_err(storage)?;
    let high_water = journal.high_water().map_err(storage)?;
    let stored = journal.snapshot_info().map_err(storage)?;
    let purges = journal.pending_purges().map_err(storage)?;
    let snapshot_file = journal.recorded_snapshot_file().map_err(storage)?;
    let dir = journal.snapshot_dir();
    let recorded = snapshot_file
        .as_deref()
        .map(|f| crate::store::snapshot_file::path_of(&dir, f));
    let leftover_files = crate::store::snapshot_file::list(&dir)
        .map(|files| {
            files
                .iter()
                .any(|(path, _)| Some(path) != recorded.as_ref())
        })
        .unwrap_or(true);
    let pinned = Pinned {
        snapshot_file,
        purge_mark: journal.purge_mark().map_err(storage)?,
        pending_purges: purges.len(),
        leftover_files,
    };
    let path = store_path(&config.data_dir);
    let mut refused = false;
    let mut source = RestoreSource::FullReplay {
        reason: "no snapshot is stored".into(),
    };
    if let Some(info) = stored {
        let usable = if info.plugin_digest != plugin.digest {
            Err(Refusal::NotUsable(
                "the stored snapshot was written by another plugin build".to_string(),
            ))
        } else if info.last_seq > high_water {
            Err(Refusal::Damaged(format!(
                "the stored snapshot covers journal position {} but the journal does not hold it",
                info.last_seq
            )))
        } else if let Some(purge) = purges.iter().find(|p| p.max_deleted_seq > info.last_seq) {
            // That purge may have removed a row whose newer events changed it (an earlier
            // connect time arriving later): applying its cutoff to the snapshot's version of
            // the row would not remove the same rows.
            Err(Refusal::NotUsable(format!(
                "a purge since the stored snapshot deleted events it does not cover \
                 (up to position {}, the snapshot covers {})",
                purge.max_deleted_seq, info.last_seq
            )))
        } else {
            Ok(())
        };
        source = match usable.and_then(|()| load_snapshot(instance, &info, &path)) {
            Ok(load_time) => RestoreSource::Snapshot {
                last_seq: info.last_seq,
                bytes: info.bytes,
                load_time,
            },
            Err(Refusal::Replaced) if !last_attempt => return Ok(None),
            Err(refusal) => {
                let reason = match refusal {
                    Refusal::Damaged(reason) => {
                        refused = true;
                        tracing::warn!(%reason, "the stored snapshot was refused; replaying the whole journal");
                        reason
                    }
                    Refusal::NotUsable(reason) => {
                        tracing::info!(%reason, "replaying the whole journal");
                        reason
                    }
                    Refusal::Replaced => {
                        let reason = "the stored snapshot kept being replaced while it was opened"
                            .to_string();
                        tracing::info!(%reason, "replaying the whole journal");
                        reason
                    }
                };
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
    let events_replayed = match &source {
        RestoreSource::Snapshot { last_seq, .. } => {
            replay_tail_with_purges(instance, *last_seq, upto, &purges, config, cancel)?
        }
        // The journal holds no event of a purged row: replaying it all applies every purge.
        RestoreSource::FullReplay { .. } => replay_range(instance, 0, upto, Some(upto), cancel)?,
    };
    let rows = instance.stats()?.rows;
    Ok(Some(Restored {
        report: RestoreReport {
            events_replayed,
            rows,
            elapsed: started.elapsed(),
            source,
        },
        upto,
        refused,
        pinned,
    }))
}

/// Loads the recorded snapshot into `instance`, verified against its record.
fn load_snapshot(
    instance: &mut PluginInstance,
    info: &SnapshotInfo,
    store: &Path,
) -> Result<Duration, Refusal> {
    let started = Instant::now();
    let journal = instance
        .state_mut()
        .journal
        .as_mut()
        .expect("bring_up attaches a journal");
    if let Err(failure) = journal.start_snapshot_read(info) {
        // The pinned record may be old: a newer snapshot may have replaced it and its file
        // been removed since. Only if the current record still names the file is it lost.
        let still_recorded = Journal::connect(store)
            .ok()
            .and_then(|j| j.recorded_snapshot_file().ok())
            .is_some_and(|current| current.as_deref() == Some(info.file.as_str()));
        return Err(match failure {
            OpenFailure::Busy => Refusal::Replaced,
            _ if !still_recorded => Refusal::Replaced,
            failure => Refusal::Damaged(failure.to_string()),
        });
    }
    let outcome = instance.load_snapshot();
    let journal = instance
        .state_mut()
        .journal
        .as_mut()
        .expect("bring_up attaches a journal");
    let verified = journal.snapshot_read_verified();
    journal.finish_snapshot_read();
    match outcome {
        Ok(Ok(())) if verified => Ok(started.elapsed()),
        Ok(Ok(())) => Err(Refusal::Damaged(
            "the plugin finished loading before the snapshot's end".into(),
        )),
        Ok(Err(e)) => Err(Refusal::Damaged(format!(
            "loading the snapshot failed: {e}"
        ))),
        Err(trap) => Err(Refusal::Damaged(format!(
            "loading the snapshot failed: {trap}"
        ))),
    }
}

/// After loading a snapshot covering `seq <= last_seq`: replays the tail up to `upto` in
/// segments, applying each pending purge where it happened (after the events up to its
/// high-water mark), so the instance goes through the states the running plugin went
/// through and ends up with the same rows.
fn replay_tail_with_purges(
    instance: &mut PluginInstance,
    last_seq: i64,
    upto: i64,
    purges: &[PendingPurge],
    config: &ServiceConfig,
    cancel: Option<&AtomicBool>,
) -> anyhow::Result<u64> {
    let mut at = last_seq;
    let mut replayed = 0;
    for purge in purges {
        let end = purge.high_water.min(upto);
        if end > at {
            replayed += replay_range(instance, at, end, Some(end), cancel)?;
            at = end;
        }
        reapply_purge(instance, purge.cutoff, config.retention)?;
    }
    if upto > at {
        replayed += replay_range(instance, at, upto, Some(upto), cancel)?;
    }
    Ok(replayed)
}

/// Removes the rows a recorded purge removed, through the plugin's own retention: with a
/// retention of 1 ns, `purge(cutoff + 1)` uses exactly `cutoff`. The journal is left alone
/// (the events are gone already, and newer events may share a purged row's session key).
fn reapply_purge(
    instance: &mut PluginInstance,
    cutoff: model::UnixNanos,
    retention: Duration,
) -> anyhow::Result<()> {
    instance.state_mut().ignore_forget = true;
    let outcome = (|| -> anyhow::Result<()> {
        instance.set_retention(Duration::from_nanos(1))?;
        let report = instance
            .purge(cutoff.saturating_add(1))?
            .map_err(|e| anyhow::anyhow!("applying a recorded purge again: {e}"))?;
        anyhow::ensure!(
            report.cutoff == Some(cutoff),
            "applying a recorded purge again used cutoff {:?}, not {cutoff}",
            report.cutoff
        );
        instance.set_retention(retention)?;
        Ok(())
    })();
    instance.state_mut().ignore_forget = false;
    outcome
}

/// Feeds the stored events with `after < seq <= upto` back through the plugin's `replay`,
/// read batch by batch on the instance's own connection (inside a bring-up's pinned read,
/// every batch comes from the same view); `bound` limits what the plugin's own reads see
/// meanwhile (`Journal::set_session_bound`).
fn replay_range(
    instance: &mut PluginInstance,
    after: i64,
    upto: i64,
    bound: Option<i64>,
    cancel: Option<&AtomicBool>,
) -> anyhow::Result<u64> {
    fn journal(instance: &mut PluginInstance) -> anyhow::Result<&mut Journal> {
        instance
            .state_mut()
            .journal
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("no store is attached"))
    }
    journal(instance)?.set_session_bound(bound);
    let mut cursor = ReplayCursor::new(after, upto);
    let mut replayed = 0u64;
    let outcome = loop {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            break Err(anyhow::anyhow!("cancelled"));
        }
        let batch = match journal(instance)?.next_batch(&mut cursor, REPLAY_BATCH) {
            Ok(Some(batch)) => batch,
            Ok(None) => break Ok(replayed),
            Err(e) => break Err(e),
        };
        replayed += batch.len() as u64;
        match instance.replay(batch) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => break Err(anyhow::anyhow!("replaying the journal: {e}")),
            Err(trap) => break Err(trap.into()),
        }
    };
    if let Ok(journal) = journal(instance) {
        journal.set_session_bound(None);
    }
    outcome
}
