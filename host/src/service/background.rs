//! The background snapshot writer: one thread per service, so that writing a snapshot
//! (seconds at millions of rows) never holds the service's lock longer than a fork, or
//! SQLite's write lock longer than one small transaction.
//!
//! While ingest goes on, a job asks the service for a forked copy of the process that saves
//! the running instance (`fork`), and then for the record of the file that copy wrote (both
//! at the service's next hold, where no ingest group holds SQLite's write lock). When
//! ingest has stopped (a second instance then takes CPU from no load, and no hold of the
//! service would answer), when the service does not answer within `FORK_WAIT` or turns idle
//! meanwhile, or on a replica, the job brings a fresh instance of the same plugin build up
//! from the store exactly as a restart would (`bring_up`: snapshot, pending purges and
//! tail, from a pinned read transaction), writes that instance's snapshot to a new file,
//! and records it in one small transaction (at the service's next hold while it is at work,
//! as a forked copy's file), if the record is still the one it started from. Its replay
//! pins the read anew for each batch, so that the WAL can start over beside a long job; if
//! a purge deleted events meanwhile, it brings the instance up again from one pinned read.
//! Then it zeroes and removes the files no record names, and, after a purge, checkpoints
//! and truncates the WAL. At most one job runs at a time; requests made meanwhile are
//! merged into the next.
//! On a replica, a snapshot written from a view that holds exactly the shared journal up to
//! some position is offered to the shared store too (`upstream::publish_snapshot`), and so
//! is the one a swap's new instance wrote (`Work::share`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::ServiceError;
use super::fork::Forked;
use super::restore::{Beside, EventsDeleted, bring_up};
use super::upstream::{SharedPosition, publish_snapshot};
use super::{ServiceConfig, store_path};
use crate::model::StorageError;
use crate::plugin::LoadedPlugin;
use crate::store::{
    Expect, Includes, Journal, SnapshotInfo, WrittenSnapshot, postgres, snapshot_file,
};

/// How long a checkpoint may hold SQLite's write lock waiting for readers, and how often
/// it tries. Writers wait at most about this long for it.
const CHECKPOINT_PATIENCE: Duration = Duration::from_millis(20);
const CHECKPOINT_TRIES: usize = 100;
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(100);

/// When a sweep found a replaced file still in use, it tries again this much later.
const SWEEP_RETRY: Duration = Duration::from_secs(1);

/// A snapshot that waits for ingest to pause waits at most this many times the pause it
/// waits for.
pub const PAUSE_PATIENCE: u32 = 60;

/// A job asks for a fork only if an ingest group was stored this recently: the service
/// answers at its next hold, and a service at work is held every few milliseconds. Longer
/// than the pause a snapshot waits for (`SnapshotPolicy::pause`): a load that stalls for
/// a second (an fsync behind a snapshot file's writes) and goes on is still at work.
const FORK_IF_INGESTED_WITHIN: Duration = Duration::from_secs(10);

/// How long a job waits for the service to fork before it brings an instance of its own
/// up instead. A commit's fsync stalls for hundreds of milliseconds now and then while a
/// snapshot file is written out; a purge slice or a save on demand holds the service too.
const FORK_WAIT: Duration = Duration::from_secs(5);

/// A service that stored no ingest group for this long, while a job waits for it, is idle:
/// no hold may come to answer the job, and no group holds SQLite's write lock. Twice the
/// stall of a second that a load shows now and then (`FORK_IF_INGESTED_WITHIN`).
const IDLE_AFTER: Duration = Duration::from_secs(2);

/// What a job does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Work {
    /// Write a snapshot of the running instance (from a fork), or of a freshly brought-up
    /// one.
    pub snapshot: bool,
    /// The snapshot waits until no ingest group has been stored for this long
    /// (`Writer::ingested`), or for `PAUSE_PATIENCE` times as long since it was asked for:
    /// a save costs CPU and disk in proportion to the store, which a load keeping the
    /// service busy would otherwise share (and a bring-up merges every event the stored
    /// snapshot does not cover again). Zero: at once. Other work never waits.
    pub pause: Duration,
    /// Checkpoint the WAL and truncate it (after a purge: no page version holding purged
    /// data stays in it).
    pub checkpoint: bool,
    /// Zero and remove snapshot files no record names. Every job sweeps; a request may ask
    /// for nothing else.
    pub sweep: bool,
    /// Offer this recorded snapshot, which a swap's new instance wrote, to the shared
    /// store (on a replica; nothing otherwise).
    pub share: Option<Share>,
}

/// A recorded snapshot written from a view holding exactly the shared journal up to
/// `position`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Share {
    pub info: SnapshotInfo,
    pub position: SharedPosition,
}

impl Work {
    fn any(&self) -> bool {
        self.snapshot || self.checkpoint || self.sweep || self.share.is_some()
    }

    /// How much longer this work waits for ingest to pause, `since_ingest` the last group
    /// (none: no group yet) and `since_asked` the snapshot was asked for: until the `pause`,
    /// or `PAUSE_PATIENCE` times as long after it was asked for, whichever comes first.
    /// Only a snapshot (and the sweep that goes with each job) waits.
    fn pause_left(
        &self,
        since_ingest: Option<Duration>,
        since_asked: Option<Duration>,
    ) -> Option<Duration> {
        if !self.snapshot || self.checkpoint || self.share.is_some() {
            return None;
        }
        let quiet = since_ingest.unwrap_or(Duration::MAX);
        let asked = since_asked.unwrap_or(Duration::ZERO);
        let patience = self.pause.saturating_mul(PAUSE_PATIENCE);
        if quiet >= self.pause || asked >= patience {
            return None;
        }
        Some((self.pause - quiet).min(patience - asked))
    }

    fn merge(&mut self, other: Work) {
        self.pause = match (self.snapshot, other.snapshot) {
            (true, true) => self.pause.min(other.pause),
            (false, true) => other.pause,
            (_, false) => self.pause,
        };
        self.snapshot |= other.snapshot;
        self.checkpoint |= other.checkpoint;
        self.sweep |= other.sweep;
        if other.share.is_some() {
            self.share = other.share;
        }
    }
}

/// What the writer did so far, including the snapshots the service wrote itself.
#[derive(Clone, Debug, Default)]
pub(super) struct Results {
    /// Snapshots written (by jobs, and noted by the service).
    pub saved: u64,
    pub last_bytes: u64,
    /// Snapshots a job's bring-up refused as damaged.
    pub refused: u64,
    pub failed: u64,
    /// Snapshots recorded by jobs; bumped with `covers`.
    pub recorded: u64,
    /// Of those, the ones a forked copy of the process saved.
    pub forked: u64,
    /// The position the last snapshot a job recorded covers.
    pub covers: i64,
    /// The digest of the plugin build that wrote it.
    pub covers_plugin: String,
}

struct State {
    plugin: Arc<LoadedPlugin>,
    config: ServiceConfig,
    /// The shared store a replica offers its snapshots to.
    shared_store: Option<postgres::Config>,
    wanted: Work,
    /// When the snapshot in `wanted` was first asked for.
    snapshot_asked: Option<Instant>,
    /// When the service last stored an ingest group.
    ingested: Option<Instant>,
    running: bool,
    stopped: bool,
    results: Results,
    request: Request,
}

/// The service stored no ingest group for `IDLE_AFTER`, neither since a job asked it nor
/// before: it is not at work.
fn idle(since_ingest: Option<Duration>, since_asked: Duration) -> bool {
    since_ingest.map_or(since_asked, |quiet| quiet.min(since_asked)) >= IDLE_AFTER
}

/// What a job asks of the service, which does it at its next hold, where no ingest group
/// is under way (`ConnLog::answer_writer`).
pub(super) enum Ask {
    /// Fork a copy of the process that saves the instance (`fork`).
    Fork,
    /// Record a forked copy's snapshot. On the writer's own connection the record's write
    /// transaction would wait for a gap between ingest groups, which a load over HTTP may
    /// not leave for SQLite's 10 s busy timeout.
    Record(Box<PendingRecord>),
}

/// A snapshot file to record, if the record is still `replaces`, with the purges up to
/// `purge_mark` (`Journal::replace_snapshot`).
pub(super) struct PendingRecord {
    pub written: WrittenSnapshot,
    pub replaces: Option<String>,
    pub purge_mark: i64,
}

pub(super) enum Answer {
    Forked(Box<Result<Forked, ServiceError>>),
    /// Whether the file was recorded (false: the record had changed, and the file was
    /// dropped).
    Recorded(Result<bool, ServiceError>),
}

/// A job's request to the service.
#[derive(Default)]
enum Request {
    #[default]
    None,
    /// Asked for; the service answers at its next hold.
    Wanted(Ask),
    /// The service took it, and answers before it lets go of itself.
    Taken,
    Answered(Answer),
}

impl State {
    /// Whether the service is idle (`idle`) for a job that asked it at `asked`, or that
    /// has yet to ask.
    fn idle_since(&self, asked: Option<Instant>) -> bool {
        idle(
            self.ingested.map(|at| at.elapsed()),
            asked.map_or(Duration::MAX, |at| at.elapsed()),
        )
    }

    /// How much longer the wanted work waits for ingest to pause.
    fn pause_left(&self) -> Option<Duration> {
        let since = |at: Option<Instant>| at.map(|t| t.elapsed());
        self.wanted
            .pause_left(since(self.ingested), since(self.snapshot_asked))
    }
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    /// Set on stop: the running job ends at its next check.
    cancel: AtomicBool,
    /// A job waits for the service (`Request::Wanted`): read at every hold of the service,
    /// so kept apart from the lock.
    asked: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

pub(super) struct Writer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// A writer whose thread starts with the first request: a short command that never
    /// needs one costs nothing.
    pub fn new(plugin: Arc<LoadedPlugin>, config: ServiceConfig) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                plugin,
                config,
                shared_store: None,
                wanted: Work::default(),
                snapshot_asked: None,
                ingested: None,
                running: false,
                stopped: false,
                results: Results::default(),
                request: Request::None,
            }),
            changed: Condvar::new(),
            cancel: AtomicBool::new(false),
            asked: AtomicBool::new(false),
        });
        Self {
            shared,
            thread: None,
        }
    }

    /// Asks for `work`, merged with whatever is already asked for. Nothing after `stop`.
    pub fn request(&mut self, work: Work) {
        {
            let mut state = self.shared.lock();
            if state.stopped || !work.any() {
                return;
            }
            if work.snapshot && !state.wanted.snapshot {
                state.snapshot_asked = Some(Instant::now());
            }
            state.wanted.merge(work);
            self.shared.changed.notify_all();
        }
        if self.thread.is_none() {
            let shared = self.shared.clone();
            match std::thread::Builder::new()
                .name("connlog-snapshots".into())
                .spawn(move || run(&shared))
            {
                Ok(thread) => self.thread = Some(thread),
                Err(e) => {
                    self.shared.lock().wanted = Work::default();
                    tracing::warn!(error = %e, "the snapshot writer could not start; the journal remains complete");
                }
            }
        }
    }

    /// The plugin build and settings the next job brings up (after a swap or a change of
    /// retention).
    pub fn set_source(&self, plugin: Arc<LoadedPlugin>, config: ServiceConfig) {
        let mut state = self.shared.lock();
        state.plugin = plugin;
        state.config = config;
    }

    /// Snapshots are offered to this shared store from now on (the service is a replica).
    pub fn share_snapshots_with(&self, store: postgres::Config) {
        self.shared.lock().shared_store = Some(store);
    }

    /// No job running and none asked for.
    pub fn is_idle(&self) -> bool {
        let state = self.shared.lock();
        !state.running && !state.wanted.any()
    }

    /// Only a snapshot is asked for, and it waits for ingest to pause.
    pub fn is_waiting_for_pause(&self) -> bool {
        let state = self.shared.lock();
        !state.running && state.pause_left().is_some()
    }

    /// The service stored an ingest group: a snapshot waiting for a pause waits on.
    pub fn ingested(&self) {
        self.shared.lock().ingested = Some(Instant::now());
    }

    /// `Waiter::wait_idle`.
    pub fn wait_idle(&self) -> bool {
        self.waiter().wait_idle()
    }

    /// A handle that waits for the writer without the service (or its lock).
    pub fn waiter(&self) -> Waiter {
        Waiter(self.shared.clone())
    }

    pub fn results(&self) -> Results {
        self.shared.lock().results.clone()
    }

    /// A job waits for the service: `take_request`, then `answer`.
    pub fn asked(&self) -> bool {
        self.shared.asked.load(Ordering::Relaxed)
    }

    /// Takes the job's request, which the service then answers (`answer`) before it lets
    /// go of itself; `None` when the job stopped waiting.
    pub fn take_request(&self) -> Option<Ask> {
        let mut state = self.shared.lock();
        self.shared.asked.store(false, Ordering::Relaxed);
        match std::mem::take(&mut state.request) {
            Request::Wanted(ask) => {
                state.request = Request::Taken;
                Some(ask)
            }
            other => {
                state.request = other;
                None
            }
        }
    }

    pub fn answer(&self, answer: Answer) {
        let mut state = self.shared.lock();
        debug_assert!(matches!(state.request, Request::Taken));
        state.request = Request::Answered(answer);
        self.shared.changed.notify_all();
    }

    /// Counts a snapshot the service wrote itself.
    pub fn note_saved(&self, bytes: u64) {
        let mut state = self.shared.lock();
        state.results.saved += 1;
        state.results.last_bytes = bytes;
    }

    /// Cancels the running job (at its next check) and ends the thread.
    pub fn stop(&mut self) {
        {
            let mut state = self.shared.lock();
            state.stopped = true;
            state.wanted = Work::default();
            self.shared.cancel.store(true, Ordering::Relaxed);
            self.shared.changed.notify_all();
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("the snapshot writer panicked");
        }
    }
}

/// Waits for a service's snapshot writer to be idle.
pub(super) struct Waiter(Arc<Shared>);

impl Waiter {
    /// Returns once no job runs and none is asked for (at once after the writer stopped):
    /// true; or once a job waits for the service: false. The caller then answers that
    /// request (the service's next hold does), and waits again.
    pub fn wait_idle(&self) -> bool {
        let mut state = self.0.lock();
        while !state.stopped && (state.running || state.wanted.any()) {
            if matches!(state.request, Request::Wanted(_)) {
                return false;
            }
            state = self
                .0
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        true
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(shared: &Shared) {
    let mut retry_sweep = false;
    loop {
        let (work, plugin, config, shared_store) = {
            let mut state = shared.lock();
            loop {
                if state.stopped {
                    return;
                }
                if state.wanted.any() {
                    let Some(left) = state.pause_left() else {
                        break;
                    };
                    state = shared
                        .changed
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    continue;
                }
                if retry_sweep {
                    let (next, waited) = shared
                        .changed
                        .wait_timeout(state, SWEEP_RETRY)
                        .unwrap_or_else(PoisonError::into_inner);
                    state = next;
                    if waited.timed_out() {
                        state.wanted.sweep = true;
                    }
                } else {
                    state = shared
                        .changed
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
            state.running = true;
            state.snapshot_asked = None;
            (
                std::mem::take(&mut state.wanted),
                state.plugin.clone(),
                state.config.clone(),
                state.shared_store.clone(),
            )
        };
        let outcome = run_job(shared, work, &plugin, &config, shared_store.as_ref());
        retry_sweep = outcome.busy_files;
        let mut state = shared.lock();
        state.running = false;
        let results = &mut state.results;
        results.failed += u64::from(outcome.failed);
        if let Some(saved) = outcome.saved {
            results.saved += 1;
            results.last_bytes = saved.bytes;
            results.refused += u64::from(saved.refused);
            results.recorded += 1;
            results.forked += u64::from(saved.forked);
            results.covers = saved.covers;
            results.covers_plugin = saved.plugin_digest;
        }
        shared.changed.notify_all();
    }
}

#[derive(Default)]
struct Outcome {
    saved: Option<Saved>,
    failed: bool,
    busy_files: bool,
}

struct Saved {
    bytes: u64,
    covers: i64,
    /// The plugin build whose state it holds.
    plugin_digest: String,
    /// Saved by a forked copy of the process.
    forked: bool,
    refused: bool,
    /// What a replica offers the shared store, when the view was exact.
    share: Option<Share>,
}

fn run_job(
    shared: &Shared,
    work: Work,
    plugin: &LoadedPlugin,
    config: &ServiceConfig,
    shared_store: Option<&postgres::Config>,
) -> Outcome {
    let mut outcome = Outcome::default();
    let started = std::time::Instant::now();
    if work.snapshot {
        // A replica's snapshot must hold exactly the shared journal up to a position, which
        // only a bring-up from its pinned view knows.
        let forked = match shared_store {
            None => ask_for_fork(shared),
            Some(_) => None,
        };
        let written = match forked {
            Some(forked) => write_forked(shared, forked, config),
            None => write_snapshot(shared, plugin, config),
        };
        match written {
            Ok(saved) => outcome.saved = saved,
            Err(_) if shared.cancelled() => {}
            Err(e) => {
                outcome.failed = true;
                tracing::warn!(error = %format!("{e:#}"), "writing a snapshot in the background failed; the journal remains complete");
            }
        }
    }
    // The job's own snapshot, else the one a swap asked to share: the newer, if both.
    let share = outcome
        .saved
        .as_ref()
        .and_then(|saved| saved.share.as_ref())
        .or(work.share.as_ref());
    if let (Some(share), Some(store)) = (share, shared_store)
        && let Err(e) = publish_snapshot(
            store,
            &snapshot_file::dir_for(&store_path(&config.data_dir)),
            &share.info,
            share.position,
            Some(&shared.cancel),
        )
        && !shared.cancelled()
    {
        tracing::warn!(error = %format!("{e:#}"), "the snapshot could not be shared with new replicas; the next one will be");
    }
    let journal = match Journal::connect(&store_path(&config.data_dir)) {
        Ok(journal) => journal,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "the snapshot writer cannot open the store");
            outcome.failed = true;
            return outcome;
        }
    };
    let swept = std::time::Instant::now();
    match journal.sweep_snapshot_files() {
        Ok(sweep) => {
            outcome.busy_files = sweep.busy > 0;
            tracing::debug!(
                removed = sweep.removed,
                busy = sweep.busy,
                elapsed_ms = swept.elapsed().as_millis() as u64,
                "snapshot files swept"
            );
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "replaced snapshot files could not be removed; the next sweep will");
        }
    }
    if work.checkpoint {
        let checkpointing = std::time::Instant::now();
        checkpoint(shared, &journal);
        tracing::debug!(
            elapsed_ms = checkpointing.elapsed().as_millis() as u64,
            "WAL checkpointed"
        );
    }
    tracing::debug!(
        ?work,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "snapshot writer job done"
    );
    outcome
}

/// Brings a fresh instance up from the store, writes its snapshot and records it. `None`
/// when the record changed meanwhile (a newer snapshot is there) or when cancelled.
///
/// The instance holds exactly the pinned view (the bring-up reads everything through its
/// pinned connection); purges committed since stay pending for the new snapshot, which a
/// restore applies after its tail as it would after the old one.
fn write_snapshot(
    shared: &Shared,
    plugin: &LoadedPlugin,
    config: &ServiceConfig,
) -> anyhow::Result<Option<Saved>> {
    let started = Instant::now();
    let store = store_path(&config.data_dir);
    let beside = |pause_reads| {
        Some(Beside {
            cancel: &shared.cancel,
            pause_reads,
        })
    };
    let mut up = match bring_up(plugin, Journal::connect(&store)?, config, beside(true)) {
        // A purge (or a slice of one) committed meanwhile. Pausing again could meet the
        // next slice; one pinned read cannot, at the cost of the WAL's growth meanwhile.
        Err(e) if e.chain().any(|cause| cause.is::<EventsDeleted>()) => {
            tracing::debug!("{e:#}; bringing the snapshot's instance up again from one read");
            bring_up(plugin, Journal::connect(&store)?, config, beside(false))?
        }
        up => up?,
    };
    if shared.cancelled() {
        return Ok(None);
    }
    tracing::debug!(
        rows = up.report.rows,
        elapsed_ms = up.report.elapsed.as_millis() as u64,
        "snapshot writer: instance brought up"
    );
    let saving = std::time::Instant::now();
    let written = up
        .write_snapshot_file(plugin)
        .context("writing the snapshot file")?;
    let info = written.info.clone();
    let (bytes, rows) = (info.bytes, info.rows);
    tracing::debug!(
        bytes,
        elapsed_ms = saving.elapsed().as_millis() as u64,
        "snapshot writer: file written"
    );
    let recorded = record(shared, config, up.pending_record(written))?;
    let saved = Saved {
        bytes,
        covers: up.upto,
        plugin_digest: plugin.digest.clone(),
        forked: false,
        refused: up.snapshot_refused,
        share: up
            .pinned
            .shared_position
            .map(|position| Share { info, position }),
    };
    Ok(logged(recorded, saved, rows, started))
}

/// Asks the service for a fork while ingest goes on. `None` when ingest has stopped, or
/// the service did not answer (or could not fork): the job brings an instance up instead.
fn ask_for_fork(shared: &Shared) -> Option<Forked> {
    let ingesting = shared
        .lock()
        .ingested
        .is_some_and(|at| at.elapsed() < FORK_IF_INGESTED_WITHIN);
    if !ingesting {
        return None;
    }
    match ask_service(shared, Ask::Fork) {
        Ok(Answer::Forked(forked)) => match *forked {
            Ok(forked) => Some(forked),
            Err(e) => {
                tracing::debug!(error = %e, "the service could not fork for a snapshot; bringing one up instead");
                None
            }
        },
        Ok(Answer::Recorded(_)) => unreachable!("a fork is answered with a fork"),
        Err(_) => None,
    }
}

/// Asks the service, and waits up to `FORK_WAIT` for it to take the request: its answer,
/// or the request back when it did not take it, when it is idle (it stored no ingest group
/// for `IDLE_AFTER`, since the ask or before it), or when the job was cancelled.
fn ask_service(shared: &Shared, ask: Ask) -> Result<Answer, Ask> {
    let asked = Instant::now();
    let deadline = asked + FORK_WAIT;
    let mut state = shared.lock();
    state.request = Request::Wanted(ask);
    shared.asked.store(true, Ordering::Relaxed);
    // Those waiting for the writer to be idle answer it (`Waiter::wait_idle`).
    shared.changed.notify_all();
    loop {
        match std::mem::take(&mut state.request) {
            Request::Answered(answer) => return Ok(answer),
            // The service answers before it lets go of itself: moments.
            Request::Taken => state.request = Request::Taken,
            Request::Wanted(ask)
                if Instant::now() >= deadline
                    || shared.cancelled()
                    || state.idle_since(Some(asked)) =>
            {
                shared.asked.store(false, Ordering::Relaxed);
                return Err(ask);
            }
            Request::Wanted(ask) => state.request = Request::Wanted(ask),
            Request::None => unreachable!("only this job asks, and only the service answers"),
        }
        let left = deadline
            .saturating_duration_since(Instant::now())
            .clamp(POLL_FLOOR, POLL);
        state = shared
            .changed
            .wait_timeout(state, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

/// The shortest wait of `ask_service` once its deadline passed while the service answers.
const POLL_FLOOR: Duration = Duration::from_millis(10);

/// The longest wait of `ask_service` between two looks: a stored group does not wake it,
/// and the service may turn idle meanwhile.
const POLL: Duration = Duration::from_millis(100);

/// Waits for the forked copy's file and records it, if the record is still the one the
/// fork saw. `None` when the record changed meanwhile or when cancelled.
fn write_forked(
    shared: &Shared,
    forked: Forked,
    config: &ServiceConfig,
) -> anyhow::Result<Option<Saved>> {
    let (replaces, purge_mark) = (forked.replaces.clone(), forked.purge_mark);
    let started = Instant::now();
    let Some(written) = forked.wait(&shared.cancel)? else {
        return Ok(None);
    };
    let info = written.info.clone();
    let pending = PendingRecord {
        written,
        replaces,
        purge_mark,
    };
    let recorded = record(shared, config, pending)?;
    let saved = Saved {
        bytes: info.bytes,
        covers: info.last_seq,
        plugin_digest: info.plugin_digest,
        forked: true,
        refused: false,
        share: None,
    };
    Ok(logged(recorded, saved, info.rows, started))
}

/// Records a job's snapshot file: at the service's next hold while it is at work, or in
/// one small transaction on the job's own connection when it is not (nothing then holds
/// SQLite's write lock for long).
fn record(shared: &Shared, config: &ServiceConfig, pending: PendingRecord) -> anyhow::Result<bool> {
    let at_work = !shared.lock().idle_since(None);
    let pending = if at_work {
        match ask_service(shared, Ask::Record(Box::new(pending))) {
            Ok(Answer::Recorded(recorded)) => return Ok(recorded?),
            Ok(Answer::Forked(_)) => unreachable!("a record is answered with a record"),
            Err(Ask::Record(pending)) => *pending,
            Err(Ask::Fork) => unreachable!("the record's request comes back"),
        }
    } else {
        pending
    };
    Ok(pending.record(&Journal::connect(&store_path(&config.data_dir))?)?)
}

impl PendingRecord {
    pub fn record(self, journal: &Journal) -> Result<bool, StorageError> {
        journal.replace_snapshot(
            self.written,
            Expect::File(self.replaces.as_deref()),
            Includes::PurgesUpTo(self.purge_mark),
        )
    }
}

/// A job's snapshot once the transaction that records it ran: `None` when the record had
/// changed meanwhile (a newer snapshot is there, and this file was dropped).
fn logged(recorded: bool, saved: Saved, rows: u64, started: Instant) -> Option<Saved> {
    if !recorded {
        tracing::debug!(
            forked = saved.forked,
            "a newer snapshot was recorded meanwhile; this one is dropped"
        );
        return None;
    }
    tracing::info!(
        rows,
        bytes = saved.bytes,
        last_seq = saved.covers,
        forked = saved.forked,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "snapshot written in the background"
    );
    Some(saved)
}

/// Checkpoints and truncates the WAL, holding SQLite's write lock only briefly each try.
fn checkpoint(shared: &Shared, journal: &Journal) {
    for _ in 0..CHECKPOINT_TRIES {
        match journal.checkpoint_truncate_within(CHECKPOINT_PATIENCE) {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "checkpointing the WAL failed");
                return;
            }
        }
        if shared.cancelled() {
            return;
        }
        std::thread::sleep(CHECKPOINT_PAUSE);
    }
    tracing::warn!(
        "the WAL could not be truncated (readers kept it busy); the next checkpoint will finish"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_snapshot_waits_for_a_pause_in_ingest_or_for_its_patience() {
        let pause = 1000 * MS;
        let patience = pause * PAUSE_PATIENCE;
        // (pause, since the last group, since it was asked for) → how much longer it waits.
        let cases = [
            (
                Duration::ZERO,
                Some(Duration::ZERO),
                Some(Duration::ZERO),
                None,
            ),
            (pause, None, Some(Duration::ZERO), None),
            (pause, Some(pause), Some(Duration::ZERO), None),
            (pause, Some(300 * MS), Some(Duration::ZERO), Some(700 * MS)),
            (pause, Some(300 * MS), None, Some(700 * MS)),
            (
                pause,
                Some(Duration::ZERO),
                Some(patience - 200 * MS),
                Some(200 * MS),
            ),
            (pause, Some(Duration::ZERO), Some(patience), None),
        ];
        for (pause, since_ingest, since_asked, left) in cases {
            let snapshot = Work {
                snapshot: true,
                pause,
                sweep: true,
                ..Default::default()
            };
            assert_eq!(
                snapshot.pause_left(since_ingest, since_asked),
                left,
                "pause {pause:?}, since the last group {since_ingest:?}, asked {since_asked:?} ago"
            );
        }
    }

    #[test]
    fn a_job_stops_waiting_for_a_service_that_stored_no_group_for_a_while() {
        let idle_after = IDLE_AFTER.as_millis() as u64;
        // (since the last group, since the job asked) → idle.
        let cases = [
            (None, 0, false),
            (None, idle_after - 1, false),
            (None, idle_after, true),
            (Some(idle_after * 5), 0, false),
            (Some(idle_after * 5), idle_after, true),
            (Some(0), idle_after * 5, false),
            (Some(idle_after - 1), idle_after * 5, false),
            (Some(idle_after), idle_after * 5, true),
        ];
        for (since_ingest, since_asked, expected) in cases {
            assert_eq!(
                idle(
                    since_ingest.map(Duration::from_millis),
                    Duration::from_millis(since_asked)
                ),
                expected,
                "since the last group {since_ingest:?} ms, asked {since_asked} ms ago"
            );
        }
    }

    #[test]
    fn merged_work_waits_for_the_shortest_pause_its_snapshots_asked_for() {
        let waiting = |pause| Work {
            snapshot: true,
            pause,
            sweep: true,
            ..Default::default()
        };
        let mut work = waiting(1000 * MS);
        work.merge(Work {
            sweep: true,
            ..Default::default()
        });
        assert_eq!(work.pause, 1000 * MS, "a sweep leaves the pause alone");
        work.merge(waiting(Duration::ZERO));
        assert_eq!(
            work.pause,
            Duration::ZERO,
            "a snapshot wanted now is written now"
        );

        let mut work = Work {
            checkpoint: true,
            ..Default::default()
        };
        work.merge(waiting(1000 * MS));
        assert_eq!((work.snapshot, work.pause), (true, 1000 * MS));
        let now = Some(Duration::ZERO);
        assert_eq!(
            work.pause_left(now, now),
            None,
            "a checkpoint does not wait"
        );
        assert_eq!(waiting(1000 * MS).pause_left(now, now), Some(1000 * MS));
    }
}
