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
//! (`background`, from a forked copy of the process: `fork`), or by the instance a swap
//! brings up beside the running one (`swap`), never under the service's lock except on a
//! clean shutdown or when asked for (`save_snapshot`). See README "Durability".
//!
//! The calls themselves live in `transactions`, bringing an instance up to date in `restore`,
//! hot swaps in `swap`, bringing the running build up again after purges in `compact`,
//! writing an instance's snapshot file in `snapshot`.

mod background;
mod compact;
mod feed;
mod fork;
mod group_commit;
mod restore;
mod slices;
mod snapshot;
mod swap;
mod transactions;
mod upstream;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;

use crate::directory::Lookup;
use crate::model::{self, LogFormat};
use crate::plugin::{
    Clock, ComponentCache, Limits, LoadedPlugin, PluginError, PluginHost, PluginInstance,
    PluginSpec, ServiceLogSink,
};
use crate::store::checkpointer::Checkpointer;
use crate::store::{Journal, seal};
use compact::Compaction;
use restore::bring_up;

pub use background::PAUSE_PATIENCE;
pub use compact::compact_if_due;
pub use feed::{FeedChunk, FeedMessage};
pub use group_commit::{IngestQueue, Input, ReadingAhead, Submitted};
pub use restore::{RestoreReport, RestoreSource};
pub use slices::SLICE_ROWS;
pub(crate) use slices::purge_slices;
pub use swap::{SwapReport, swap_plugin};
pub use transactions::{BatchAnswer, GroupAnswers};
pub use upstream::{Follower, RetentionConflict, share_directory};

/// The store's file name inside the data directory.
pub const STORE_FILE: &str = "connlog.db";

#[derive(Clone)]
pub struct ServiceConfig {
    pub data_dir: PathBuf,
    /// The plugin, and the deployment's settings for it.
    pub plugin: PluginSpec,
    pub directory: Arc<dyn Lookup + Send + Sync>,
    pub limits: Limits,
    pub log_formats: Vec<LogFormat>,
    /// Which generation of Coder's fields the service-log lines carry.
    pub log_fields: model::LogFields,
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
    /// The running plugin's contract predates what was asked of it.
    #[error("{0}")]
    Unsupported(String),
    /// The plugin answered, but not as the contract says (such as the wrong number of rows).
    #[error("the plugin broke the contract: {0}")]
    BrokenContract(String),
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
    /// A snapshot due by `every_events` waits until no ingest group has been stored for
    /// this long, or for `PAUSE_PATIENCE` times as long: a load that keeps the service
    /// busy (over HTTP, say) is snapshotted once it pauses. Zero: at once.
    pub pause: Duration,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        Self {
            every_events: 1_000_000,
            on_close_min_events: 10_000,
            rewrite_after_purge: true,
            pause: Duration::from_secs(1),
        }
    }
}

/// While an endless ingest reads ahead of the store, or ingest does not pause, a background
/// snapshot waits for this many times `SnapshotPolicy::every_events`
/// (`ConnLog::snapshot_if_due`).
pub const BULK_SNAPSHOT_EVERY: u64 = 10;

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
    /// The running build brought up again to give back what purged rows left (`compact`).
    pub compactions: u64,
    /// Snapshots written, in the background or on demand.
    pub snapshots_saved: u64,
    /// Of those, the ones a forked copy of the process saved in the background.
    pub snapshots_forked: u64,
    /// Size of the last snapshot written, in bytes.
    pub snapshot_bytes: u64,
    /// Stored snapshots refused at bring-up (damaged, or not matching the journal).
    pub snapshots_refused: u64,
    /// Background snapshot writes that failed (the journal stays complete; the next
    /// request tries again).
    pub snapshot_writes_failed: u64,
    /// Ingest transactions committed, and the batches they stored: group commit puts
    /// concurrent callers' batches under one commit (one fsync).
    pub ingest_commits: u64,
    pub ingest_batches: u64,
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
    store_check: StoreCheck,
    /// Seals the store file again after each of SQLite's checkpoints into it, so that a
    /// start after a crash need not read it whole.
    seal: seal::Keeper,
    /// Copies ingest groups' WAL frames into the store file off the commits' path.
    checkpointer: Checkpointer,
    counters: Counters,
    snapshot_policy: SnapshotPolicy,
    /// Stored events the stored snapshot does not cover (all of them when there is none);
    /// after a background snapshot, counted as positions (`merged_upto - snapshot_upto`).
    unsnapshotted: u64,
    /// The journal position the instance has merged: it holds every event with
    /// `seq <= merged_upto`, and a snapshot of it covers exactly that.
    merged_upto: i64,
    /// `merged_upto`, for the live feed's watchers to wait on.
    head: tokio::sync::watch::Sender<i64>,
    /// The journal position the stored snapshot covers, as far as this service knows.
    snapshot_upto: i64,
    writer: background::Writer,
    /// The background snapshots already accounted for in `unsnapshotted`.
    writer_seen: u64,
    /// Bumped by every purge that deleted events: a swap that started bringing its plugin
    /// up before it must start again.
    purge_generation: u64,
    /// Rows purged from the running instance since it was brought up, whose leftovers it
    /// still holds, and where a compaction last failed (`compact`).
    compaction: Compaction,
    /// Slices of a purge removed rows (`purge_before`) and the snapshot rewrite they need
    /// waits for the purge's last hold, which asks for it once.
    rewrite_owed: bool,
    /// The shared store this service is a replica of (`attach_upstream`).
    upstream: Option<upstream::Upstream>,
    /// The last ingest group's commit, while it is made durable (`ingest_group_queued`).
    queued: Option<transactions::QueuedCommit>,
    /// Ingests reading ahead of the store now (`IngestQueue::reading_ahead`): of finite
    /// inputs, and of endless ones.
    finite_ahead: usize,
    endless_ahead: usize,
    closed: bool,
}

/// How `ConnLog::open` made sure the store file is sound before serving from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreCheck {
    /// SQLite's `quick_check` read every page (after a change to the file, a crash during
    /// a checkpoint, or a start that found no seal).
    WholeFile,
    /// The file is exactly as the last clean stop left it (`store::seal`).
    CleanStop,
    /// The file is exactly as the service left it after its last checkpoint, before it
    /// crashed (`store::seal`); SQLite recovers the WAL.
    LastCheckpoint,
}

impl ConnLog {
    pub fn open(config: ServiceConfig) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("creating the data directory {}", config.data_dir.display())
        })?;
        let path = store_path(&config.data_dir);
        let store_check = match seal::take(&path)
            .with_context(|| format!("reading the seal of {}", path.display()))?
        {
            Some(seal::Seal::CleanStop) => StoreCheck::CleanStop,
            Some(seal::Seal::Running) => StoreCheck::LastCheckpoint,
            None => StoreCheck::WholeFile,
        };
        tracing::info!(?store_check, "opening the store");
        let journal = Journal::connect(&path)?;
        // The whole-file check reads every page; it runs on its own connection while this
        // thread brings the plugin up, and its verdict comes first: a damaged store is
        // refused even if the bring-up happened to succeed.
        let checker = (store_check == StoreCheck::WholeFile)
            .then(|| {
                let path = path.clone();
                std::thread::Builder::new()
                    .name("connlog-quick-check".into())
                    .spawn(move || Journal::quick_check(&path))
                    .context("spawning the store check")
            })
            .transpose()?;
        let brought_up = PluginHost::new(config.cache.clone())
            .map(Arc::new)
            .and_then(|host| {
                let plugin = host.load_spec(&config.plugin)?;
                let up = bring_up(&plugin, journal, &config, None)?;
                Ok((host, plugin, up))
            });
        if let Some(checker) = checker {
            checker
                .join()
                .map_err(|_| anyhow::anyhow!("the store check panicked"))??;
        }
        let (host, plugin, up) = brought_up?;
        // Only now is the file known sound: sealed before the check's verdict, a damaged
        // file would be vouched for at the next start.
        let seal = seal::Keeper::new(&path);
        let checkpointer = Checkpointer::new(&path, seal.clone());
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
            ..Default::default()
        });
        let mut service = Self {
            host,
            plugin,
            instance: up.instance,
            config,
            unsnapshotted: up.report.events_replayed,
            merged_upto: up.upto,
            head: tokio::sync::watch::Sender::new(up.upto),
            snapshot_upto: up.report.source.covers(),
            last_restore: up.report,
            store_check,
            seal,
            checkpointer,
            counters,
            snapshot_policy: SnapshotPolicy::default(),
            writer,
            writer_seen: 0,
            purge_generation: 0,
            compaction: Compaction::default(),
            rewrite_owed: false,
            upstream: None,
            queued: None,
            finite_ahead: 0,
            endless_ahead: 0,
            closed: false,
        };
        service.snapshot_if_due();
        Ok(service)
    }

    pub fn plugin(&self) -> &LoadedPlugin {
        &self.plugin
    }

    /// How the opening made sure the store file is sound.
    pub fn store_check(&self) -> StoreCheck {
        self.store_check
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
        counters.snapshots_forked = written.forked;
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
        match self.unseen_cover(&self.writer.results()) {
            Some(covers) => self.uncovered_since(covers),
            None => self.unsnapshotted,
        }
    }

    /// The journal position the instance has merged (every event with `seq` up to it).
    pub fn merged_upto(&self) -> i64 {
        self.merged_upto
    }

    /// Every change of the merged position goes through here, so that watchers wake.
    fn set_merged_upto(&mut self, upto: i64) {
        self.merged_upto = upto;
        self.head
            .send_if_modified(|head| std::mem::replace(head, upto) != upto);
    }

    /// The merged journal position, as it changes: what the live feed waits on.
    pub fn head(&self) -> tokio::sync::watch::Receiver<i64> {
        self.head.subscribe()
    }

    /// Waits until the background snapshot writer has nothing left to do (what was asked
    /// of it before this call, and anything that asked for more meanwhile).
    pub fn wait_for_snapshots(&mut self) {
        while !self.writer.wait_idle() {
            self.answer_writer();
        }
        self.absorb_background();
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// The service's clock (the system clock, or a fixed instant in tests).
    pub fn now(&self) -> model::UnixNanos {
        self.config.clock.now()
    }

    /// Leaves the store as a crash would, for the tests of a start after one: its
    /// background threads end (a checkpoint under way finishes and seals, as in a crash
    /// just after it), and nothing else is written: no clean-stop seal, no snapshot, no
    /// checkpoint as the last connection closes, for none is closed. Merely leaking the
    /// service would leave its checkpointer running, to seal whatever the test did to the
    /// file next.
    #[doc(hidden)]
    pub fn crash(mut self) {
        self.writer.stop();
        self.checkpointer.stop();
        std::mem::forget(self);
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
        self.settled();
        self.writer.stop();
        self.checkpointer.stop();
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
            let info = self.save_snapshot()?;
            self.share_stopped_snapshot(&info);
        }
        if let Ok(journal) = self.journal() {
            if let Err(e) = journal.sweep_snapshot_files() {
                tracing::warn!(error = %e, "replaced snapshot files could not be removed; the next start will");
            }
            if matches!(journal.checkpoint_truncate(), Ok(true)) {
                match seal::record_clean_stop(journal.path()) {
                    Ok(true) => return Ok(()),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "the clean stop could not be sealed; the next start reads the whole store")
                    }
                }
            }
        }
        // Not sealed as stopped: sealed as the last checkpoint left it, as after a crash.
        self.seal.refresh();
        Ok(())
    }

    /// Asks the background writer for a snapshot once the policy's `every_events` are
    /// uncovered and it is not already at work. Each such snapshot saves the whole state
    /// (from a fork while ingest goes on; else a second instance brought up from the store
    /// merges the uncovered events again), so a bulk load is snapshotted once it has caught
    /// up, not every million events while it loads:
    /// - while a finite input (a file) reads ahead, not at all: its end comes, and with it
    ///   the snapshot (at 10M rows a background job cost the file's load 40 s of CPU, its
    ///   snapshot at the end a 3 s save);
    /// - while an endless one (a followed log that outpaces the store) does, once
    ///   `BULK_SNAPSHOT_EVERY` times as many events are uncovered, so that it is still
    ///   snapshotted now and then;
    /// - otherwise once ingest pauses (`SnapshotPolicy::pause`), as a load from concurrent
    ///   callers does when it ends, and at once past `BULK_SNAPSHOT_EVERY` times the events.
    fn snapshot_if_due(&mut self) {
        self.absorb_background();
        let every = self.snapshot_policy.every_events;
        let threshold = match (self.finite_ahead, self.endless_ahead) {
            (0, 0) => every,
            (0, _) => every.saturating_mul(BULK_SNAPSHOT_EVERY),
            _ => return,
        };
        if threshold == 0 || self.unsnapshotted < threshold {
            return;
        }
        let urgent = self.unsnapshotted >= every.saturating_mul(BULK_SNAPSHOT_EVERY);
        if self.writer.is_idle() || urgent && self.writer.is_waiting_for_pause() {
            self.writer.request(background::Work {
                snapshot: true,
                pause: if urgent {
                    Duration::ZERO
                } else {
                    self.snapshot_policy.pause
                },
                sweep: true,
                ..Default::default()
            });
        }
    }

    /// Answers the background writer's request, if it made one: a forked copy of the
    /// process that saves the instance (`fork`), or the record of such a copy's file. The
    /// last group's commit is settled first: the copy must hold only what is durable, and
    /// no group then holds SQLite's write lock.
    fn answer_writer(&mut self) {
        if !self.writer.asked() {
            return;
        }
        self.settled();
        let answer = match self.writer.take_request() {
            None => return,
            Some(background::Ask::Fork) => {
                background::Answer::Forked(Box::new(self.fork_for_writer()))
            }
            Some(background::Ask::Record(pending)) => background::Answer::Recorded(
                self.journal()
                    .and_then(|journal| pending.record(journal).map_err(ServiceError::Storage)),
            ),
        };
        self.writer.answer(answer);
    }

    fn fork_for_writer(&mut self) -> Result<fork::Forked, ServiceError> {
        let forking = std::time::Instant::now();
        let forked = if self.instance.is_poisoned() {
            Err(ServiceError::Plugin(PluginError::Poisoned))
        } else {
            self.stats().and_then(|stats| {
                fork::fork_save(
                    &mut self.instance,
                    &self.plugin.digest,
                    stats.rows,
                    self.merged_upto,
                    self.config.limits.call_deadline,
                )
            })
        };
        tracing::debug!(
            elapsed_us = forking.elapsed().as_micros() as u64,
            forked = forked.is_ok(),
            "forked for a snapshot"
        );
        forked
    }

    /// Counts an ingest that reads ahead of the store, or one that has caught up.
    pub(super) fn reader_ahead(&mut self, input: Input, ahead: bool) {
        let readers = match input {
            Input::Finite => &mut self.finite_ahead,
            Input::Endless => &mut self.endless_ahead,
        };
        if ahead {
            *readers += 1;
        } else {
            *readers = readers.saturating_sub(1);
            self.snapshot_if_due();
        }
    }

    /// Takes note of the snapshots the background writer recorded since the last look.
    fn absorb_background(&mut self) {
        // The writer may have checkpointed the WAL into the file.
        self.seal.refresh();
        let written = self.writer.results();
        let cover = self.unseen_cover(&written);
        self.writer_seen = written.recorded;
        if let Some(covers) = cover {
            self.snapshot_upto = covers;
            self.unsnapshotted = self.uncovered_since(covers);
        }
    }

    /// The events a snapshot covering `covers` leaves out, counted as positions, and a
    /// queued group's as its stored events: `merged_upto` moves past them only once its
    /// commit is durable.
    fn uncovered_since(&self, covers: i64) -> u64 {
        let queued = self.queued.as_ref().map_or(0, |q| q.stored);
        u64::try_from(self.merged_upto - covers).unwrap_or(0) + queued
    }

    /// What a snapshot the background writer recorded since the last look covers, when it
    /// is newer than the one known and of the running build: a job that began before a
    /// swap records the old build's, which the new instance cannot start from.
    fn unseen_cover(&self, written: &background::Results) -> Option<i64> {
        (written.recorded != self.writer_seen
            && written.covers_plugin == self.plugin.digest
            && written.covers > self.snapshot_upto)
            .then_some(written.covers)
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

/// The service as the server shares it between requests: calls are serialised.
pub type SharedConnLog = Arc<Mutex<ConnLog>>;

/// Locks the shared service, once the last ingest group's commit is settled: what the
/// service answers is durable. A panic while it was held cannot have left a half-done
/// change behind (every change is one SQLite transaction), so a poisoned lock is used.
pub fn lock(shared: &SharedConnLog) -> MutexGuard<'_, ConnLog> {
    let mut service = lock_to_ingest(shared);
    service.settled();
    service.answer_writer();
    service
}

/// `lock` for the next ingest group, which may merge while the last one's commit is made
/// durable (`ConnLog::ingest_group_queued`).
fn lock_to_ingest(shared: &SharedConnLog) -> MutexGuard<'_, ConnLog> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits until the shared service's background snapshot writer is idle, without holding
/// the service's lock meanwhile (`ConnLog::wait_for_snapshots` waits under it).
pub fn wait_for_snapshots(shared: &SharedConnLog) {
    let waiter = lock(shared).writer.waiter();
    while !waiter.wait_idle() {
        // The hold answers the job's request.
        drop(lock(shared));
    }
}

pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STORE_FILE)
}

/// The reference plugin over the store in `data`, for this module's unit tests.
#[cfg(test)]
fn test_config(data: &Path) -> ServiceConfig {
    use crate::plugin::{Embedded, NoServiceLog, PluginSource};
    ServiceConfig {
        data_dir: data.to_path_buf(),
        plugin: PluginSpec::plain(PluginSource::Embedded(Embedded::Reference)),
        directory: Arc::new(crate::directory::Directory::new()),
        limits: Limits::default(),
        log_formats: Vec::new(),
        log_fields: model::LogFields::Current,
        service_log: Arc::new(NoServiceLog),
        retention: Duration::ZERO,
        cache: Some(ComponentCache::new(
            std::env::temp_dir().join("connlog-test-cache"),
        )),
        clock: Clock::Fixed(0),
    }
}
