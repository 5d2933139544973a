//! Replicas on PostgreSQL (`connlog serve --store postgres://…`).
//!
//! The shared journal is the `connlog.events` table. Each replica keeps a local copy of it
//! (its data directory's SQLite store, which the plugin reads through its imports as it
//! always does) and the plugin state in memory:
//! - A write transaction (ingest, purge) appends to the local copy as usual; before the
//!   local commit, the new events go to PostgreSQL in one transaction, committed there
//!   first. So nothing is acknowledged that PostgreSQL does not hold, and a replica that
//!   dies between the two commits loses nothing: the follower brings those events back.
//! - The follower (`Follower`, a thread) listens for appends and reads the shared journal
//!   in `seq` order past its mark into the local copy, then has the service merge them
//!   (as it merges another local writer's events). Events the replica stored itself are
//!   already in its copy: the follower moves past the `seq` ranges that hold only those
//!   (`OwnRanges`), and skips any others by id.
//! - Purges: the retention schedule runs on the replica holding the retention lock (a
//!   session-level advisory lock, taken by the first replica to ask and held while it
//!   lives). A purge on any replica deletes its rows' events from PostgreSQL too and
//!   notifies the others, which purge at once up to the cutoff it records. Every replica of
//!   a store applies the same retention setting (`PgStore::agree_retention`).
//! - Snapshots: a snapshot written from a view of the local copy that holds exactly the
//!   shared journal up to some `seq` (`exact_position`) is published as its plugin build's
//!   shared snapshot when it is newer than the stored one. A new replica copies the events
//!   up to that `seq` first, records the shared snapshot as its own at that point of its
//!   copy, copies the rest, and brings the plugin up from the snapshot and that tail.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;

use super::{ConnLog, ServiceError, SharedConnLog, lock, store_path};
use crate::directory::{Directory, write_atomic};
use crate::duration::format_duration;
use crate::model::{ConnectionEvent, RowOrigin, StorageError};
use crate::store::postgres::{Config, PgStore, SharedSnapshot};
use crate::store::snapshot_file::FileReader;
use crate::store::{Expect, Includes, Journal, SnapshotInfo};

/// Local `meta` keys: which shared store the local copy is of; the mark (the copy holds
/// every shared event with `seq <= mark`); the highest `seq` the replica's own events have
/// in the shared store (the copy holds no followed event past the mark); the purge
/// generation (`PgStore::forget`) whose purges the copy has all applied.
const STORE_ID_KEY: &str = "upstream.store_id";
const MARK_KEY: &str = "upstream.mark";
const OWN_HIGH_KEY: &str = "upstream.own_high";
const PURGES_KEY: &str = "upstream.purges";

/// Events the follower reads per local transaction.
const FOLLOW_BATCH: i64 = 5_000;
/// The same for a new replica's first copy: fewer, larger local transactions (each
/// commit's checkpoint rewrites pages all over the id index).
const BULK_BATCH: i64 = 100_000;
/// The local connection's page cache during that first copy, and after it.
const BULK_CACHE_MIB: u32 = 256;
const FOLLOW_CACHE_MIB: u32 = 2;
/// How long the follower waits for a notification before it looks anyway.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// A replica started with another retention than the replicas of its shared store apply.
#[derive(Debug, thiserror::Error)]
#[error(
    "the replicas of {store} keep rows for {shared} (0: forever), and this one was started \
     with --connection-logs-retention {mine}: every replica of a store applies the same \
     retention, which decides the rows the database keeps. Start it with {shared}, or stop \
     every replica and start one with the new retention"
)]
pub struct RetentionConflict {
    store: String,
    shared: String,
    mine: String,
}

/// The service's connection to the shared store.
pub(super) struct Upstream {
    config: Config,
    pg: PgStore,
    /// It holds the retention lock, so it runs the retention schedule (`leads_retention`).
    leads_retention: bool,
    /// The `seq` range of the last push, until its local commit says it may be skipped.
    pushed: Option<(i64, i64)>,
    /// Ranges of the shared journal that hold only events this replica stored and
    /// committed locally: the follower moves its mark past them without reading them back.
    own: OwnRanges,
    /// The connections `attach_upstream` caught up with, until the follower thread takes
    /// them over (`Follower::spawn`).
    follow: Option<FollowState>,
    /// The purge generation a purge run to catch up with the shared store's purges
    /// (`purge_catching_up`) records, in its own write transaction.
    catching_up: Option<i64>,
}

/// `(before, after)` ranges of `seq`s (`PgStore::append`), oldest first.
type OwnRanges = Arc<Mutex<VecDeque<(i64, i64)>>>;

impl Upstream {
    /// Inside the service's write transaction, before the local commit: stores the events
    /// appended locally since `after`, and, on the replica that leads retention, deletes the
    /// rows it purged.
    pub(super) fn push(
        &mut self,
        journal: &mut Journal,
        after: i64,
        head: i64,
    ) -> Result<(), StorageError> {
        let mut events = Vec::new();
        journal
            .for_each_event(after, head, |_, e| {
                events.push(e.map_text(|s| s.to_string()));
                Ok(())
            })
            .map_err(|e| StorageError::Unavailable(format!("{e:#}")))?;
        let (forgotten, cutoff): (Vec<RowOrigin>, _) = journal.take_forgotten_rows();
        let appended = self.pg.append(&events).map_err(shared_store_error)?;
        self.pushed = appended.own;
        if !events.is_empty() {
            journal.raise_meta(OWN_HIGH_KEY, appended.highest)?;
        }
        if let Some((before, after)) = appended.own
            && before <= stored_number(journal, MARK_KEY)?
        {
            // Right after what the copy holds: with this commit it holds up to `after`.
            journal.raise_meta(MARK_KEY, after)?;
        }
        if !forgotten.is_empty() {
            // Whichever replica purged (the one leading retention on its schedule, an
            // operator's `connlog purge` anywhere, a replica following a notice, which then
            // finds the events gone): the events go from the database too.
            let generation = self
                .pg
                .forget(&forgotten, cutoff)
                .map_err(shared_store_error)?;
            // This purge is applied; the copy has applied all before it only if it had the
            // one just before (another replica's purge may be a notice away still).
            if let Some(generation) = generation
                && stored_number(journal, PURGES_KEY)? == generation - 1
            {
                journal.raise_meta(PURGES_KEY, generation)?;
            }
        }
        if let Some(generation) = self.catching_up.take() {
            journal.raise_meta(PURGES_KEY, generation)?;
        }
        Ok(())
    }

    /// The local commit after `push` succeeded: the follower may skip what it pushed.
    pub(super) fn committed(&mut self) {
        if let Some(range) = self.pushed.take() {
            let mut own = self.own.lock().unwrap_or_else(PoisonError::into_inner);
            own.push_back(range);
            // A follower that stopped leaves them behind: keep the newest only.
            if own.len() > 1024 {
                own.pop_front();
            }
        }
    }
}

fn shared_store_error(e: anyhow::Error) -> StorageError {
    StorageError::Unavailable(format!("the shared PostgreSQL store: {e:#}"))
}

/// A number the local `meta` holds; 0 when unset.
fn stored_number(journal: &Journal, key: &str) -> Result<i64, StorageError> {
    journal.meta(key)?.map_or(Ok(0), |value| {
        value
            .parse()
            .map_err(|_| StorageError::Corrupt(format!("the local store's {key} is {value:?}")))
    })
}

/// Where a replica's local copy stands against the shared store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SharedPosition {
    /// The copy holds exactly the shared events with `seq <= mark`.
    pub mark: i64,
    /// The purge generation whose purges it has all applied.
    pub purges: i64,
}

/// On a replica's local copy, the shared journal position whose events the copy holds
/// exactly: all of them (the mark) and no later one (none of the replica's own events is
/// past the mark). `None` on a store that is no replica's copy, or while the replica's own
/// newest events are ahead of what it has followed.
pub(super) fn exact_position(journal: &Journal) -> Result<Option<SharedPosition>, StorageError> {
    if journal.meta(STORE_ID_KEY)?.is_none() {
        return Ok(None);
    }
    let mark = stored_number(journal, MARK_KEY)?;
    if stored_number(journal, OWN_HIGH_KEY)? > mark {
        return Ok(None);
    }
    Ok(Some(SharedPosition {
        mark,
        purges: stored_number(journal, PURGES_KEY)?,
    }))
}

/// Offers a snapshot just recorded in a replica's local copy, written from a view holding
/// exactly the shared journal up to `position`, as its plugin build's shared snapshot:
/// stored unless the shared one is as new or a purge the view had not applied deleted
/// events (`PgStore::publish_snapshot`). The file is read back and checked against its
/// record as it goes up. `cancel` stops it between chunks (the service is stopping).
pub(super) fn publish_snapshot(
    config: &Config,
    dir: &Path,
    info: &SnapshotInfo,
    position: SharedPosition,
    cancel: Option<&AtomicBool>,
) -> anyhow::Result<bool> {
    let mut pg = PgStore::open(config)?;
    let shared = SharedSnapshot {
        plugin_digest: info.plugin_digest.clone(),
        mark: position.mark,
        purges: position.purges,
        rows: info.rows,
        bytes: info.bytes,
        chunks: info.chunks,
        sha256: info.sha256.clone(),
    };
    // Opened at the first chunk asked for: only once the store has checked it wants it.
    let mut file = None;
    let mut sha256 = None;
    let published = pg.publish_snapshot(&shared, &mut || {
        anyhow::ensure!(
            !cancel.is_some_and(|c| c.load(Ordering::Relaxed)),
            "the service is stopping"
        );
        if file.is_none() {
            file = Some(FileReader::open(dir, &info.file).map_err(|e| anyhow::anyhow!("{e}"))?);
        }
        match file.as_mut().expect("opened above").next_chunk()? {
            Some(chunk) => {
                sha256 = Some(chunk.sha256_so_far);
                Ok(Some(chunk.bytes))
            }
            None => {
                anyhow::ensure!(
                    sha256.map(hex::encode).as_deref() == Some(info.sha256.as_str()),
                    "the snapshot file does not match its record"
                );
                Ok(None)
            }
        }
    })?;
    if published {
        tracing::info!(
            position = position.mark,
            rows = info.rows,
            bytes = info.bytes,
            "snapshot shared with new replicas"
        );
    }
    Ok(published)
}

impl ConnLog {
    /// Makes this service a replica of the shared store `config` names: its data directory
    /// must be empty or a copy of that same store. Reads what the shared store holds past
    /// the local copy before it returns. `directory` is the server's directory file, kept
    /// equal to the shared directory.
    pub fn attach_upstream(&mut self, config: &Config, directory: &Path) -> anyhow::Result<()> {
        let mut pg = PgStore::open(config)?;
        let store_id = pg.store_id()?;
        let data_dir = self.config.data_dir.clone();
        let journal = self.journal()?;
        match journal.meta(STORE_ID_KEY)? {
            Some(local) if local == store_id => {}
            Some(other) => anyhow::bail!(
                "the data directory {} is a copy of another shared store ({other}, not \
                 {store_id} at {}): give each store's replicas their own data directories",
                data_dir.display(),
                pg.target()
            ),
            None if journal.event_count()? > 0 => anyhow::bail!(
                "the data directory {} holds a store of its own: move it into PostgreSQL \
                 with `connlog migrate`, and give the replica an empty data directory",
                data_dir.display()
            ),
            None => journal.set_meta(STORE_ID_KEY, &store_id)?,
        }
        pg.join_replicas()?;
        let mine = u64::try_from(self.config.retention.as_nanos()).unwrap_or(u64::MAX);
        let shared = pg.agree_retention(mine)?;
        if shared != mine {
            return Err(RetentionConflict {
                store: pg.target().to_string(),
                shared: format_duration(shared),
                mine: format_duration(mine),
            }
            .into());
        }
        let own = OwnRanges::default();
        self.writer.share_snapshots_with(config.clone());
        let mut follower = FollowState::open(config, &data_dir, directory, own.clone())?;
        self.upstream = Some(Upstream {
            config: config.clone(),
            pg,
            leads_retention: false,
            pushed: None,
            own,
            follow: None,
            catching_up: None,
        });
        if self.merged_upto == 0 {
            // A new replica: copy everything first (from the shared snapshot's position,
            // when there is one), then bring the plugin up from the whole copy at once
            // (far faster than merging batch after batch).
            follower.local.set_cache_mib(BULK_CACHE_MIB)?;
            follower.start_from_shared_snapshot(&self.plugin.digest)?;
            follower.copy_in_bulk(i64::MAX)?;
            follower.local.set_cache_mib(FOLLOW_CACHE_MIB)?;
            if follower.local.last_seq()? > 0 {
                self.bring_up_again()?;
            }
        }
        while follower.copy_batch(FOLLOW_BATCH, i64::MAX)? {
            self.merge_followed()?;
        }
        self.merge_followed()?;
        // Purges another replica made while this one was away sent notices it missed; for a
        // new copy this also records that it has them all.
        let (generation, cutoff) = follower.pg.purge_state()?;
        self.purge_catching_up(generation, cutoff)?;
        follower.pg.drop_stale_snapshots()?;
        if let Some(upstream) = &mut self.upstream {
            upstream.follow = Some(follower);
        }
        Ok(())
    }

    /// The shared store this data directory is a local copy of, if it is one.
    pub fn replica_of(&self) -> Result<Option<String>, ServiceError> {
        self.journal()?
            .meta(STORE_ID_KEY)
            .map_err(ServiceError::Storage)
    }

    /// The shared store, when this service is a replica of one.
    pub fn shared_store(&mut self) -> Option<&mut PgStore> {
        self.upstream.as_mut().map(|u| &mut u.pg)
    }

    /// Whether this service runs the retention schedule: always, unless it is a replica and
    /// another replica leads retention (a session lock, taken by the first replica to ask
    /// and held while it lives), which then purges for all of them: the others follow its
    /// notices.
    pub fn leads_retention(&mut self) -> Result<bool, ServiceError> {
        let Some(upstream) = &mut self.upstream else {
            return Ok(true);
        };
        if !upstream.leads_retention {
            upstream.leads_retention = upstream
                .pg
                .try_lead_retention()
                .map_err(|e| ServiceError::Storage(shared_store_error(e)))?;
        }
        Ok(upstream.leads_retention)
    }

    /// At a clean stop, after the service wrote its own snapshot (`info`): offers it to the
    /// shared store, if the copy holds exactly what the plugin merged and that is exactly the
    /// shared journal up to some position. Failures are logged: the journal is complete.
    pub(super) fn share_stopped_snapshot(&mut self, info: &SnapshotInfo) {
        let Some(upstream) = &self.upstream else {
            return;
        };
        let Ok(journal) = self.journal() else {
            return;
        };
        let position = match (journal.last_seq(), exact_position(journal)) {
            (Ok(head), Ok(Some(position))) if head == info.last_seq => position,
            _ => return,
        };
        if let Err(e) = publish_snapshot(
            &upstream.config,
            &journal.snapshot_dir(),
            info,
            position,
            None,
        ) {
            tracing::warn!(error = %format!("{e:#}"), "the snapshot could not be shared with new replicas");
        }
    }

    /// Purges the rows every purge up to `generation` removed from the shared store (those
    /// with a connect time before `cutoff`, the latest of their cutoffs), or more if this
    /// replica's own retention says so, and records (in the purge's write transaction) that
    /// the local copy has applied them.
    fn purge_catching_up(&mut self, generation: i64, cutoff: i64) -> Result<(), ServiceError> {
        if let Some(upstream) = &mut self.upstream {
            upstream.catching_up = Some(generation);
        }
        let now = self.now();
        let own = self.config.retention;
        let own_cutoff = (!own.is_zero()).then(|| now.saturating_sub(own.as_nanos() as i64));
        if generation == 0 || cutoff >= now || own_cutoff.is_some_and(|own| own >= cutoff) {
            self.purge(now)?;
            return Ok(());
        }
        // The shared cutoff is later than this replica's: purge once as if its retention
        // were the one that gives it.
        self.set_retention(std::time::Duration::from_nanos((now - cutoff) as u64))?;
        let purged = self.purge(now);
        self.set_retention(own)?;
        purged.map(|_| ())
    }

    /// Merges what the follower copied into the local store (an empty write transaction:
    /// beginning one merges every event another writer appended).
    pub fn merge_followed(&mut self) -> Result<(), ServiceError> {
        let started = self.begin_write()?;
        self.commit_write(started)
    }
}

/// Makes the directory file at `path` the shared one: the stored directory replaces the
/// file when they differ (the server re-reads a file that changed); with none stored yet,
/// the file's becomes the shared one if `offer_local` (once the data directory is known to
/// be a copy of this store).
pub fn share_directory(pg: &mut PgStore, path: &Path, offer_local: bool) -> anyhow::Result<()> {
    let local = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let shared = match (pg.directory()?, &local) {
        (Some(shared), _) => shared,
        (None, None) => return Ok(()),
        (None, Some(_)) if !offer_local => return Ok(()),
        (None, Some(text)) => {
            // Checked as the server would check it before anyone relies on it.
            Directory::from_json(text, path)?;
            pg.edit_directory(|current| -> anyhow::Result<_> {
                Ok((current.unwrap_or(text).to_owned(), ()))
            })?
            .0
        }
    };
    if local.as_deref() != Some(shared.as_str()) {
        write_atomic(path, shared.as_bytes())
            .with_context(|| format!("writing the shared directory to {}", path.display()))?;
    }
    Ok(())
}

/// The follower's own connections: one to the shared store (listening), one to the local
/// copy.
struct FollowState {
    config: Config,
    pg: PgStore,
    local: Journal,
    mark: i64,
    own: OwnRanges,
    /// The server's directory file, kept equal to the shared directory.
    directory: PathBuf,
}

impl FollowState {
    fn open(
        config: &Config,
        data_dir: &Path,
        directory: &Path,
        own: OwnRanges,
    ) -> anyhow::Result<Self> {
        let mut pg = PgStore::open(config)?;
        pg.listen()?;
        share_directory(&mut pg, directory, true)?;
        let local = Journal::connect(&store_path(data_dir))?;
        let mark = stored_number(&local, MARK_KEY)?;
        Ok(Self {
            config: config.clone(),
            pg,
            local,
            mark,
            own,
            directory: directory.to_path_buf(),
        })
    }

    /// Copies up to `limit` events past the mark, up to `upto`, into the local store, with
    /// the new mark, in one local transaction. Returns whether it copied any.
    fn copy_batch(&mut self, limit: i64, upto: i64) -> anyhow::Result<bool> {
        self.skip_own()?;
        let batch = self.pg.events_after(self.mark, upto, limit)?;
        self.store_batch(batch)
    }

    /// Copies every event past the mark up to `upto`, as `copy_batch` would batch after
    /// batch, with a second connection reading the next batch from the shared store while
    /// this one stores the last (a new replica's first copy).
    fn copy_in_bulk(&mut self, upto: i64) -> anyhow::Result<()> {
        let (send, batches) = std::sync::mpsc::sync_channel(1);
        let (config, mut after) = (self.config.clone(), self.mark);
        std::thread::scope(|scope| {
            let reader = scope.spawn(move || -> anyhow::Result<()> {
                let mut pg = PgStore::open(&config)?;
                loop {
                    let batch = pg.events_after(after, upto, BULK_BATCH)?;
                    let Some(&(last, _)) = batch.last() else {
                        return Ok(());
                    };
                    after = last;
                    if send.send(batch).is_err() {
                        // The copy failed: its error is the one to report.
                        return Ok(());
                    }
                }
            });
            let stored = batches
                .into_iter()
                .try_for_each(|batch| self.store_batch(batch).map(|_| ()));
            let read = reader
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the shared store's reader panicked")));
            stored.and(read)
        })
    }

    /// Stores `batch` (events past the mark, in `seq` order) and the mark after it, in one
    /// local transaction. Returns whether there was any.
    fn store_batch(&mut self, batch: Vec<(i64, ConnectionEvent)>) -> anyhow::Result<bool> {
        let Some(&(last, _)) = batch.last() else {
            return Ok(false);
        };
        let events: Vec<ConnectionEvent> = batch.into_iter().map(|(_, e)| e).collect();
        self.local.begin()?;
        let copied = self
            .local
            .insert(&events)
            .and_then(|_| self.local.raise_meta(MARK_KEY, last))
            .and_then(|()| self.local.commit());
        if let Err(e) = copied {
            self.local.rollback();
            return Err(e.into());
        }
        self.mark = last;
        Ok(true)
    }
}

impl FollowState {
    /// A new replica's first step: fetches this plugin build's shared snapshot, copies the
    /// shared events up to its position and records it as the local snapshot there.
    /// Returns whether it did; a snapshot that does not match its record is dropped (the
    /// plugin then replays the whole copy).
    fn start_from_shared_snapshot(&mut self, plugin_digest: &str) -> anyhow::Result<bool> {
        self.local.start_snapshot_write()?;
        let (pg, local) = (&mut self.pg, &mut self.local);
        let fetched = pg.fetch_snapshot(plugin_digest, &mut |chunk| {
            local.write_snapshot_chunk(chunk).map_err(Into::into)
        });
        let shared = match fetched {
            Ok(Some(shared)) => shared,
            Ok(None) => {
                self.local.abandon_snapshot_write();
                return Ok(false);
            }
            Err(e) => {
                self.local.abandon_snapshot_write();
                return Err(e.context("fetching the shared snapshot"));
            }
        };
        self.copy_in_bulk(shared.mark)?;
        let covers = self.local.last_seq()?;
        let written = self
            .local
            .finish_snapshot_write(plugin_digest, shared.rows, covers)?;
        let got = &written.info;
        if (got.bytes, got.chunks, got.sha256.as_str())
            != (shared.bytes, shared.chunks, shared.sha256.as_str())
        {
            tracing::warn!(
                "the shared snapshot does not match its record ({} bytes in {} chunks with \
                 sha256 {}, recorded {} bytes in {} chunks with sha256 {}); replaying \
                 every event instead",
                got.bytes,
                got.chunks,
                got.sha256,
                shared.bytes,
                shared.chunks,
                shared.sha256
            );
            written.discard();
            return Ok(false);
        }
        self.local
            .replace_snapshot(written, Expect::Anything, Includes::AllPurges)?;
        tracing::info!(
            position = shared.mark,
            rows = shared.rows,
            "a new replica starts from the shared snapshot"
        );
        Ok(true)
    }

    /// Moves the mark past ranges of the shared journal that hold only this replica's own
    /// events, which its local copy has already: reading them back would only be skipped.
    fn skip_own(&mut self) -> anyhow::Result<()> {
        // The service moves the stored mark itself past appends right after it.
        self.mark = self.mark.max(stored_number(&self.local, MARK_KEY)?);
        let mut mark = self.mark;
        {
            let mut own = self.own.lock().unwrap_or_else(PoisonError::into_inner);
            while let Some(&(before, after)) = own.front() {
                if after <= mark {
                    own.pop_front();
                } else if before <= mark {
                    mark = after;
                    own.pop_front();
                } else {
                    break;
                }
            }
        }
        if mark > self.mark {
            self.local.raise_meta(MARK_KEY, mark)?;
            self.mark = mark;
        }
        Ok(())
    }
}

/// The thread that keeps a replica's local copy and plugin up with the shared store.
pub struct Follower {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Follower {
    pub fn spawn(
        service: SharedConnLog,
        config: Config,
        data_dir: &Path,
        directory: &Path,
    ) -> anyhow::Result<Self> {
        let (own, mut state) = {
            let mut service = lock(&service);
            let upstream = service
                .upstream
                .as_mut()
                .context("the service is not a replica")?;
            let state = upstream
                .follow
                .take()
                .context("the replica's follower runs already")?;
            (upstream.own.clone(), state)
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let (data_dir, directory) = (data_dir.to_path_buf(), directory.to_path_buf());
        let thread = std::thread::Builder::new()
            .name("connlog-replica".into())
            .spawn(move || {
                // Purge notices sent while it was disconnected are lost: it catches up on
                // purges after each reconnection (`attach_upstream` did at start).
                let mut purges_missed = false;
                while !stopping.load(Ordering::SeqCst) {
                    let followed = if std::mem::take(&mut purges_missed) {
                        apply_purges(&service, &mut state)
                    } else {
                        follow_once(&service, &mut state)
                    };
                    if let Err(e) = followed {
                        tracing::warn!("following the shared store: {e:#}; trying again");
                        std::thread::sleep(Duration::from_secs(1));
                        purges_missed = true;
                        match FollowState::open(&config, &data_dir, &directory, own.clone()) {
                            Ok(fresh) => state = fresh,
                            Err(e) => tracing::warn!("reconnecting to the shared store: {e:#}"),
                        }
                    }
                }
            })
            .context("spawning the replica's follower")?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

/// Copies and merges whatever is new, then waits for a notification (or `FOLLOW_POLL`).
fn follow_once(service: &SharedConnLog, state: &mut FollowState) -> anyhow::Result<()> {
    while state.copy_batch(FOLLOW_BATCH, i64::MAX)? {
        lock(service).merge_followed()?;
    }
    let notified = state.pg.wait(FOLLOW_POLL)?;
    if notified.iter().any(|n| n == "directory") {
        share_directory(&mut state.pg, &state.directory, true)?;
    }
    if notified.iter().any(|n| n == "purge") {
        // Another replica purged from the shared store: drop the same rows here now
        // rather than at this replica's next retention tick.
        apply_purges(service, state)?;
    }
    Ok(())
}

/// Catches up with the purges the shared store has seen (`ConnLog::purge_catching_up`),
/// and deletes the shared snapshots they made stale. The rows before the shared cutoff go
/// in slices first, as the replica that purged them removed them: after a reconnection, or
/// a notice read late, the catch-up may span many of its slices, and requests here would
/// wait for all of them at once.
fn apply_purges(service: &SharedConnLog, state: &mut FollowState) -> anyhow::Result<()> {
    let (generation, cutoff) = state.pg.purge_state()?;
    let mut locked = lock(service);
    if generation > 0 && cutoff < locked.now() {
        (locked, _) = super::purge_slices(service, locked, cutoff)?;
    }
    locked.purge_catching_up(generation, cutoff)?;
    drop(locked);
    state.pg.drop_stale_snapshots()?;
    Ok(())
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
