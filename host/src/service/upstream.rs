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
//! - Purges: every replica applies retention to its own rows; the one holding the
//!   retention lock (a session-level advisory lock, taken by the first replica to purge and
//!   held while it lives) also deletes those rows' events from PostgreSQL and notifies the
//!   others, which purge at once. Replicas are meant to share one retention setting.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;

use super::{ConnLog, ServiceError, SharedConnLog, lock, store_path};
use crate::directory::{Directory, write_atomic};
use crate::model::{ConnectionEvent, RowOrigin, StorageError};
use crate::store::Journal;
use crate::store::postgres::{Config, PgStore};

/// Local `meta` keys: which shared store the local copy is of, and how far it has read it.
const STORE_ID_KEY: &str = "upstream.store_id";
const MARK_KEY: &str = "upstream.mark";

/// Events the follower reads per local transaction.
const FOLLOW_BATCH: i64 = 5_000;
/// The same for a new replica's first copy: fewer, larger local transactions (each
/// commit's checkpoint rewrites pages all over the id index).
const BULK_BATCH: i64 = 100_000;
/// How long the follower waits for a notification before it looks anyway.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// The service's connection to the shared store.
pub(super) struct Upstream {
    pg: PgStore,
    leads_retention: bool,
    /// The `seq` range of the last push, until its local commit says it may be skipped.
    pushed: Option<(i64, i64)>,
    /// Ranges of the shared journal that hold only events this replica stored and
    /// committed locally: the follower moves its mark past them without reading them back.
    own: OwnRanges,
    /// The connections `attach_upstream` caught up with, until the follower thread takes
    /// them over (`Follower::spawn`).
    follow: Option<FollowState>,
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
        let forgotten: Vec<RowOrigin> = journal.take_forgotten_rows();
        self.pushed = self.pg.append(&events).map_err(shared_store_error)?;
        if !forgotten.is_empty() {
            if !self.leads_retention {
                self.leads_retention = self.pg.try_lead_retention().map_err(shared_store_error)?;
            }
            if self.leads_retention {
                self.pg.forget(&forgotten).map_err(shared_store_error)?;
            }
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
        let own = OwnRanges::default();
        let mut follower = FollowState::open(config, &data_dir, directory, own.clone())?;
        self.upstream = Some(Upstream {
            pg,
            leads_retention: false,
            pushed: None,
            own,
            follow: None,
        });
        if self.merged_upto == 0 {
            // A new replica: copy everything first, then bring the plugin up from the whole
            // copy at once (a full replay, far faster than merging batch after batch).
            let mut copied = false;
            while follower.copy_batch(BULK_BATCH)? {
                copied = true;
            }
            if copied {
                self.bring_up_again()?;
            }
        }
        while follower.copy_batch(FOLLOW_BATCH)? {
            self.merge_followed()?;
        }
        self.merge_followed()?;
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
        let mark = match local.meta(MARK_KEY)? {
            Some(mark) => mark
                .parse()
                .with_context(|| format!("the local store's {MARK_KEY} is {mark:?}"))?,
            None => 0,
        };
        Ok(Self {
            pg,
            local,
            mark,
            own,
            directory: directory.to_path_buf(),
        })
    }

    /// Copies up to `limit` events past the mark into the local store, with the new mark,
    /// in one local transaction. Returns whether it copied any.
    fn copy_batch(&mut self, limit: i64) -> anyhow::Result<bool> {
        self.skip_own()?;
        let batch = self.pg.events_after(self.mark, limit)?;
        let Some(&(last, _)) = batch.last() else {
            return Ok(false);
        };
        let events: Vec<ConnectionEvent> = batch.into_iter().map(|(_, e)| e).collect();
        self.local.begin()?;
        let copied = self
            .local
            .append(&events)
            .and_then(|_| self.local.set_meta(MARK_KEY, &last.to_string()))
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
    /// Moves the mark past ranges of the shared journal that hold only this replica's own
    /// events, which its local copy has already: reading them back would only be skipped.
    fn skip_own(&mut self) -> anyhow::Result<()> {
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
            self.local.set_meta(MARK_KEY, &mark.to_string())?;
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
                while !stopping.load(Ordering::SeqCst) {
                    if let Err(e) = follow_once(&service, &mut state) {
                        tracing::warn!("following the shared store: {e:#}; trying again");
                        std::thread::sleep(Duration::from_secs(1));
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
    while state.copy_batch(FOLLOW_BATCH)? {
        lock(service).merge_followed()?;
    }
    let notified = state.pg.wait(FOLLOW_POLL)?;
    if notified.iter().any(|n| n == "directory") {
        share_directory(&mut state.pg, &state.directory, true)?;
    }
    if notified.iter().any(|n| n == "purge") {
        // Another replica purged from the shared store: drop the same rows here now
        // rather than at this replica's next retention tick.
        lock(service).purge_now()?;
    }
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
