//! The SQLite journal behind the WIT `journal` interface.
//!
//! Durability: WAL mode with `synchronous=FULL`, so a committed transaction has been
//! fsynced before `commit` returns; callers acknowledge events only after that.
//! `secure_delete` overwrites deleted content, so purged rows leave no data in the file.
//! `events.seq` is AUTOINCREMENT: a sequence number is never handed out twice, even after
//! the newest events are purged, so "the snapshot covers `seq <= last_seq`" stays true.
//!
//! Snapshots: the plugin writes its state as opaque chunks into a file of their own
//! (`snapshot_file`); `meta` records, in one small transaction, which file it is, which
//! plugin build wrote it, the journal position it covers (`last_seq`), its size, chunk count
//! and SHA-256. Reading verifies all of that before the plugin is told the snapshot ended,
//! so a damaged or foreign snapshot is refused whatever the plugin's own checks are.
//!
//! A purge does not touch the snapshot: it records a *pending purge* (`snapshot_purges`:
//! the journal's high-water mark then, the cutoff applied, the highest `seq` it deleted).
//! Bringing a plugin up from a snapshot older than a purge re-applies the purge at its
//! place in the tail; the next snapshot written drops the pending purges it includes.

use std::cell::{Cell, RefCell, RefMut};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::EventCounts;
use super::checkpointer;
use super::inserter::{Commit, Inserter};
use super::known_ids::KnownIds;
use super::snapshot_file::{self, FileReader, FileWriter, FinishedFile};
use crate::model::{
    ConnectionEvent, ConnectionMethod, ConnectionStatus, EventRef, RowOrigin, SessionKey,
    StorageError, Uuid,
};
use crate::plugin::EventColumns;

/// Bumped when the table layout changes; an unknown version is refused, never guessed at.
/// Older versions are migrated once: version 1 (`seq` without AUTOINCREMENT, snapshots in
/// `snapshot_chunks`) and version 2 (a `connection_type` and a `slug_or_port` where Coder
/// now has a connection method and an app name, migration 000614).
const SCHEMA_VERSION: i64 = 3;

const META_TABLE: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
";

/// The events table as version 3 lays it out, under `{name}`. `connection_method` is the
/// method's index (`ConnectionMethod::index`).
const EVENTS_TABLE: &str = "
CREATE TABLE {name} (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 BLOB    NOT NULL UNIQUE,
    time_ns            INTEGER NOT NULL,
    organization_id    BLOB    NOT NULL,
    workspace_owner_id BLOB    NOT NULL,
    workspace_id       BLOB    NOT NULL,
    workspace_name     TEXT    NOT NULL,
    agent_name         TEXT    NOT NULL,
    connection_method  INTEGER NOT NULL CHECK (connection_method BETWEEN 0 AND 4),
    code               INTEGER,
    ip                 TEXT,
    user_agent         TEXT,
    user_id            BLOB,
    app_name_or_port   TEXT,
    connection_id      BLOB,
    disconnect_reason  TEXT,
    client_session_id  TEXT,
    disconnected       INTEGER NOT NULL
) STRICT;
";

const REST_OF_SCHEMA: &str = "
CREATE INDEX IF NOT EXISTS events_by_session
    ON events (connection_id, workspace_id, agent_name) WHERE connection_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS snapshot_purges (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    high_water      INTEGER NOT NULL,
    cutoff          INTEGER NOT NULL,
    max_deleted_seq INTEGER NOT NULL
) STRICT;
";

const EVENT_COLUMNS: &str = "id, time_ns, organization_id, workspace_owner_id, workspace_id, workspace_name, \
     agent_name, connection_method, code, ip, user_agent, user_id, app_name_or_port, connection_id, \
     disconnect_reason, client_session_id, disconnected";

/// The events of schema versions 1 and 2, in the order `migrate_events` reads them.
const OLD_EVENT_COLUMNS: &str = "seq, id, time_ns, organization_id, workspace_owner_id, \
     workspace_id, workspace_name, agent_name, connection_type, code, ip, user_agent, user_id, \
     slug_or_port, connection_id, disconnect_reason, disconnected";

/// The `meta` key counting the `forget`s that deleted events: a read that was paused
/// compares it as it resumes (`Journal::resume_read`) to learn whether its view lost any.
const DELETIONS_KEY: &str = "deletions";

/// The format of the snapshot records in `meta`; bumped if their meaning changes. Format
/// 1 named chunks in `snapshot_chunks`; 2 names a file.
const SNAPSHOT_META_VERSION: &str = "2";

/// What `meta` says about the stored snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// SHA-256 of the plugin component that wrote it (`LoadedPlugin::digest`).
    pub plugin_digest: String,
    /// The snapshot holds exactly the events with `seq <= last_seq`.
    pub last_seq: i64,
    pub bytes: u64,
    pub chunks: u64,
    /// SHA-256 of the chunks' bytes, in order.
    pub sha256: String,
    /// Rows the plugin held when it wrote it.
    pub rows: u64,
    /// The file's name in the snapshot folder (`snapshot_file`).
    pub file: String,
}

/// A purge committed after the stored snapshot was written, which restoring from that
/// snapshot must apply again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingPurge {
    pub id: i64,
    /// The journal's high-water `seq` when the purge ran: it saw every event up to there.
    pub high_water: i64,
    /// Rows with `connect_time < cutoff` were removed.
    pub cutoff: i64,
    /// The highest `seq` it deleted (0: none).
    pub max_deleted_seq: i64,
}

/// A snapshot file written and made durable, not yet recorded.
pub struct WrittenSnapshot {
    pub info: SnapshotInfo,
    file: FinishedFile,
}

impl WrittenSnapshot {
    /// Zeroes and removes the file (it will not be recorded).
    pub fn discard(self) {
        if let Err(e) = self.file.discard() {
            tracing::warn!(error = %e, "an unrecorded snapshot file could not be removed; the next sweep will");
        }
    }
}

/// What a snapshot file holds: its chunks' bytes and count, and their SHA-256.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotBytes {
    pub bytes: u64,
    pub chunks: u64,
    pub sha256: [u8; 32],
}

/// A snapshot file being written, taken out of the journal (`Journal::take_snapshot_write`):
/// still locked and unnamed until `finish`. A forked copy of the process may write its
/// chunks meanwhile (`service::fork`).
pub struct SnapshotWrite(FileWriter);

impl SnapshotWrite {
    /// Makes the file, holding `wrote`, durable under its final name, and describes it:
    /// this plugin build, the journal position it covers (`last_seq`: the caller knows
    /// what its plugin had merged) and its size and digest. Nothing is recorded yet.
    pub fn finish(
        self,
        wrote: SnapshotBytes,
        plugin_digest: &str,
        rows: u64,
        last_seq: i64,
    ) -> Result<WrittenSnapshot, StorageError> {
        let file = self.0.finish(wrote.sha256).map_err(io_unavailable)?;
        Ok(WrittenSnapshot {
            info: SnapshotInfo {
                plugin_digest: plugin_digest.to_string(),
                last_seq,
                bytes: wrote.bytes,
                chunks: wrote.chunks,
                sha256: hex::encode(file.sha256),
                rows,
                file: file.name.clone(),
            },
            file,
        })
    }

    /// Zeroes and removes the file (it will not be finished).
    pub fn abandon(self) {
        if let Err(e) = self.0.abandon() {
            tracing::warn!(error = %e, "an unfinished snapshot file could not be removed; the next sweep will");
        }
    }
}

/// What `replace_snapshot` should find recorded before it replaces it.
#[derive(Clone, Copy, Debug)]
pub enum Expect<'a> {
    /// Whatever is there (the running plugin's own state is the newest).
    Anything,
    /// Exactly this file, or no snapshot (`None`): a writer that worked from an older view
    /// must not replace a newer snapshot.
    File(Option<&'a str>),
}

/// Which pending purges a newly recorded snapshot includes.
#[derive(Clone, Copy, Debug)]
pub enum Includes {
    AllPurges,
    /// Those with `id <= mark` (`purge_mark` when the writer pinned its view).
    PurgesUpTo(i64),
}

/// Where a replay of the journal has got to (`Journal::next_batch`): the events with
/// `after < seq <= upto`. A whole journal (`after == 0`) comes as web and tunnel events in
/// arrival order, then session by session, each session's events together (what `replay`
/// is fastest with); a tail comes in `seq` order.
pub struct ReplayCursor {
    after: i64,
    upto: i64,
    phase: Phase,
}

enum Phase {
    /// A tail, after this `seq`.
    Tail(i64),
    /// A whole journal's web and tunnel events, after this `seq`...
    Singles(i64),
    /// ...then its sessions, after this one.
    Sessions(Option<(Uuid, Uuid, String)>),
    Done,
}

impl ReplayCursor {
    pub fn new(after: i64, upto: i64) -> Self {
        let phase = if after == 0 {
            Phase::Singles(0)
        } else {
            Phase::Tail(after)
        };
        Self { after, upto, phase }
    }
}

/// A sweep of the snapshot folder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Files no record names, zeroed and removed.
    pub removed: u32,
    /// Files no record names that someone held (left for a later sweep).
    pub busy: u32,
}

/// Running totals of the snapshot being written or read (the file layer hashes the bytes:
/// `FinishedFile::sha256`, `ReadChunk::sha256_so_far`).
#[derive(Default)]
struct SnapshotStream {
    bytes: u64,
    chunks: u64,
}

pub struct Journal {
    conn: Connection,
    path: PathBuf,
    /// The snapshot being written (between `start_snapshot_write` and `finish_snapshot_write`).
    writing: Option<(FileWriter, SnapshotStream)>,
    /// The snapshot being read, and what it must match at its end.
    reading: Option<(FileReader, SnapshotStream, SnapshotInfo)>,
    /// Set once a read reached the end of a snapshot that matched its record.
    read_verified: bool,
    /// Events deleted by `forget` since the last `take_forgotten`, and the highest `seq`.
    forgotten: u64,
    forgotten_max_seq: i64,
    /// The rows `forget` deleted, kept only while `keep_forgotten_rows` is on (a replica
    /// deletes them from the shared store too).
    forgotten_rows: Option<Vec<RowOrigin>>,
    /// The cutoff of the purge recorded meanwhile (`record_purge`), kept with them.
    forgotten_cutoff: std::cell::Cell<Option<i64>>,
    /// While set, `session_events` sees only events with `seq <= bound`: a restore that
    /// replays the tail in segments between pending purges sees each session as the running
    /// plugin saw it then.
    session_bound: Option<i64>,
    /// The thread an ingest group's inserts run on (`begin_ingest`), started by the first
    /// group and kept for the next.
    inserter: RefCell<Option<Inserter>>,
    /// Set while an ingest group's transaction is open on the inserter.
    in_group: Cell<bool>,
    /// Which ids the journal may hold, so that a group's `append` reads few of them.
    known_ids: RefCell<KnownIds>,
    /// `meta`'s deletion count when the pinned read began (`begin_read`, `resume_read`).
    pinned_deletions: Cell<i64>,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`, and checks that it is one and that
    /// SQLite finds it well formed (`quick_check`): a torn or damaged file is refused here,
    /// with SQLite's own account of what is wrong, never used.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        Self::open_with(path, true)
    }

    /// Another connection to a journal this process has already opened (and checked) with
    /// `open`: the same settings, without the whole-file check.
    pub fn connect(path: &Path) -> anyhow::Result<Self> {
        Self::open_with(path, false)
    }

    /// Runs SQLite's `quick_check` over the whole file on a connection of its own, so that
    /// it can run while another thread brings the plugin up.
    pub fn quick_check(path: &Path) -> anyhow::Result<()> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("opening the store {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Reading the pages through a mapping rather than copying each one out of the
        // kernel's cache takes a quarter off the check (5.5 → 4.2 s at 10M rows); SQLite
        // maps up to the cap `.cargo/config.toml` sets.
        conn.pragma_update(None, "mmap_size", i64::MAX)?;
        check_file(&conn).with_context(|| format!("the store {} cannot be used", path.display()))
    }

    fn open_with(path: &Path, check: bool) -> anyhow::Result<Self> {
        let conn = Connection::open(path)
            .with_context(|| format!("opening the store {}", path.display()))?;
        let journal = Self {
            conn,
            path: path.to_path_buf(),
            writing: None,
            reading: None,
            read_verified: false,
            forgotten: 0,
            forgotten_max_seq: 0,
            forgotten_rows: None,
            forgotten_cutoff: std::cell::Cell::new(None),
            session_bound: None,
            inserter: RefCell::new(None),
            in_group: Cell::new(false),
            known_ids: RefCell::default(),
            pinned_deletions: Cell::new(0),
        };
        journal
            .initialise(check)
            .with_context(|| format!("the store {} cannot be used", path.display()))?;
        Ok(journal)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn initialise(&self, check: bool) -> anyhow::Result<()> {
        self.conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        anyhow::ensure!(
            mode.eq_ignore_ascii_case("wal"),
            "SQLite refused WAL mode (got {mode})"
        );
        self.conn
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA secure_delete = ON;")?;
        if check {
            check_file(&self.conn)?;
        }
        self.conn.execute_batch(META_TABLE)?;
        if self.schema_version()? == Some(SCHEMA_VERSION) {
            return Ok(());
        }
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let outcome = self.create_or_migrate();
        match outcome {
            Ok(migrated) => {
                self.conn.execute_batch("COMMIT")?;
                if migrated {
                    // The old snapshot's pages were zeroed in place; older versions of them
                    // must not stay behind in the WAL either.
                    let _ = self.checkpoint_truncate();
                }
                Ok(())
            }
            Err(e) => {
                self.rollback();
                Err(e)
            }
        }
    }

    fn schema_version(&self) -> anyhow::Result<Option<i64>> {
        let version: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        version
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| anyhow::anyhow!("store schema version {v:?} is not a number"))
            })
            .transpose()
    }

    /// Inside `BEGIN IMMEDIATE`: creates a new store, or migrates a version-1 one. Returns
    /// whether it migrated.
    fn create_or_migrate(&self) -> anyhow::Result<bool> {
        let has_events: bool = self.conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'events'",
            [],
            |r| r.get(0),
        )?;
        let migrated = match self.schema_version()? {
            Some(SCHEMA_VERSION) => return Ok(false),
            // Version 1 wrote its tables before its version: tables without a version are
            // version 1's.
            Some(1) => {
                self.drop_v1_snapshot()?;
                self.migrate_events()?;
                true
            }
            None if has_events => {
                self.drop_v1_snapshot()?;
                self.migrate_events()?;
                true
            }
            Some(2) => {
                self.migrate_events()?;
                true
            }
            None => {
                self.conn
                    .execute_batch(&EVENTS_TABLE.replace("{name}", "events"))?;
                false
            }
            Some(v) => anyhow::bail!(
                "store schema version {v} is not supported (this build reads {SCHEMA_VERSION})"
            ),
        };
        self.conn.execute_batch(REST_OF_SCHEMA)?;
        self.set_meta("schema_version", &SCHEMA_VERSION.to_string())
            .map_err(|e| anyhow::anyhow!("recording the schema version: {e}"))?;
        Ok(migrated)
    }

    /// Version 1's in-database snapshot is deleted (its bytes zeroed by `secure_delete`),
    /// not carried over: it records `last_seq` as the journal's highest `seq`, which may
    /// include events its plugin never merged, so it cannot be trusted. The next start
    /// replays the journal.
    fn drop_v1_snapshot(&self) -> anyhow::Result<()> {
        let has_chunks: bool = self.conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'snapshot_chunks'",
            [],
            |r| r.get(0),
        )?;
        if has_chunks {
            self.conn
                .execute_batch("DELETE FROM snapshot_chunks; DROP TABLE snapshot_chunks;")?;
        }
        self.conn
            .execute("DELETE FROM meta WHERE key LIKE 'snapshot.%'", [])?;
        Ok(())
    }

    /// Versions 1 and 2 to 3, in the caller's transaction: every event keeps its `seq` and
    /// its `(connection_type, slug_or_port)` becomes a method and an app as Coder's
    /// migration 000614 turns them ([`connlog_vocabulary::upgrade`]). The table is rebuilt
    /// (with AUTOINCREMENT, which version 1 lacked) and its sequence starts above every
    /// `seq` it holds. A snapshot stays: it belongs to the plugin build that wrote it, which
    /// a new build does not use.
    fn migrate_events(&self) -> anyhow::Result<()> {
        tracing::info!(
            store = %self.path.display(),
            "upgrading the store to schema version {SCHEMA_VERSION}: connection methods"
        );
        self.conn
            .execute_batch(&EVENTS_TABLE.replace("{name}", "events_v3"))?;
        let mut select = self.conn.prepare(&format!(
            "SELECT {OLD_EVENT_COLUMNS} FROM events ORDER BY seq"
        ))?;
        let mut insert = self.conn.prepare(&format!(
            "INSERT INTO events_v3 (seq, {EVENT_COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, NULL, ?17)"
        ))?;
        let mut rows = select.query([])?;
        while let Some(row) = rows.next()? {
            let connection_type = text_column(row, 8)?;
            let slug = optional_text_column(row, 13)?;
            let (method, app) = connlog_vocabulary::upgrade(connection_type, slug);
            let column = |i| row.get::<_, rusqlite::types::Value>(i);
            insert.execute(params![
                column(0)?,
                column(1)?,
                column(2)?,
                column(3)?,
                column(4)?,
                column(5)?,
                column(6)?,
                column(7)?,
                method.index(),
                column(9)?,
                column(10)?,
                column(11)?,
                column(12)?,
                app,
                column(14)?,
                column(15)?,
                column(16)?,
            ])?;
        }
        drop(rows);
        self.conn.execute_batch(
            "DROP TABLE events;
             ALTER TABLE events_v3 RENAME TO events;
             DELETE FROM sqlite_sequence WHERE name IN ('events', 'events_v3');
             INSERT INTO sqlite_sequence (name, seq)
                 SELECT 'events', coalesce(max(seq), 0) FROM events;",
        )?;
        Ok(())
    }

    pub fn begin(&self) -> Result<(), StorageError> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(unavailable)
    }

    /// `begin` for an ingest group, whose inserts run on a thread of their own
    /// (`store::inserter`) while the plugin merges: the write transaction opens on the
    /// inserter's connection. Until `commit` or `rollback`, `append` answers from this
    /// connection's reads of what is committed and queues the rows.
    pub fn begin_ingest(&self) -> Result<(), StorageError> {
        let mut inserter = self.inserter.borrow_mut();
        if inserter.is_none() {
            let connection = Journal::connect(&self.path)
                .map_err(|e| StorageError::Unavailable(format!("{e:#}")))?;
            connection.checkpoint_only_past(checkpointer::BACKSTOP_PAGES)?;
            *inserter = Some(Inserter::start(connection)?);
        }
        let inserter = inserter.as_mut().expect("started above");
        inserter.begin()?;
        // The filter catches up in one read, and `append` reads a statement at a time: a
        // read left open across the group would be open nearly always once the next group
        // opens behind a queued commit, and a WAL with a reader always open never starts
        // over: it grows by every group's frames (a 10M HTTP load took 299 s, not 171).
        let read = self.begin_read().and_then(|()| {
            self.known_ids
                .borrow_mut()
                .catch_up(&self.conn, &self.path)
                .map_err(unavailable)
        });
        self.end_read();
        if let Err(e) = read {
            inserter.rollback();
            return Err(e);
        }
        self.in_group.set(true);
        Ok(())
    }

    /// The inserter, while an ingest group is open.
    fn group(&self) -> Option<RefMut<'_, Inserter>> {
        if !self.in_group.get() {
            return None;
        }
        RefMut::filter_map(self.inserter.borrow_mut(), Option::as_mut).ok()
    }

    /// Ends an ingest group: the inserter, to commit or roll back.
    fn end_group(&self) -> Option<RefMut<'_, Inserter>> {
        let group = self.group()?;
        self.in_group.set(false);
        Some(group)
    }

    /// Durable when this returns Ok (synchronous=FULL).
    pub fn commit(&self) -> Result<(), StorageError> {
        if !self.in_group.get() {
            return self.conn.execute_batch("COMMIT").map_err(unavailable);
        }
        let commit = self.queue_commit();
        let outcome = commit.wait();
        self.settle_commit(&outcome);
        outcome.map(|_| ())
    }

    /// Commits the open ingest group without waiting: the returned commit says when it is
    /// durable, with the journal's head then, and the next group may open meanwhile
    /// (`begin_ingest`). Its outcome must be passed to `settle_commit` before the next
    /// commit. Outside a group there is nothing to queue (`commit` commits in place).
    pub fn queue_commit(&self) -> Arc<Commit> {
        let queued = match self.end_group() {
            Some(mut group) => group.commit_queued(),
            None => Err(StorageError::Unavailable(
                "no ingest group is open to commit".into(),
            )),
        };
        queued.unwrap_or_else(|e| Commit::finished(Err(e)))
    }

    /// Takes note of a queued commit's outcome: its ids are known to be stored, or, after a
    /// failure, the filter of known ids is built again from the store.
    pub fn settle_commit(&self, outcome: &Result<i64, StorageError>) {
        let mut inserter = self.inserter.borrow_mut();
        let Some(inserter) = inserter.as_mut() else {
            return;
        };
        let mut known_ids = self.known_ids.borrow_mut();
        match outcome {
            Ok(head) => known_ids.committed(inserter.settle(), *head),
            Err(_) => {
                inserter.settle().for_each(drop);
                known_ids.forget();
            }
        }
    }

    /// Marks where one batch of a group commit starts, inside the write transaction.
    pub fn savepoint(&self) -> Result<(), StorageError> {
        self.batch_step("SAVEPOINT batch", Inserter::savepoint)
    }

    /// Keeps what was written since `savepoint`, in the enclosing transaction.
    pub fn release_savepoint(&self) -> Result<(), StorageError> {
        self.batch_step("RELEASE batch", Inserter::release_savepoint)
    }

    /// Undoes what was written since `savepoint`; the transaction goes on.
    pub fn rollback_to_savepoint(&self) -> Result<(), StorageError> {
        self.batch_step(
            "ROLLBACK TO batch; RELEASE batch",
            Inserter::rollback_to_savepoint,
        )
    }

    /// Runs `sql` in the write transaction, or in an ingest group does the same with the
    /// inserter's batch marks instead (`Inserter::savepoint`: no SQL savepoint there).
    fn batch_step(&self, sql: &str, queue: fn(&mut Inserter)) -> Result<(), StorageError> {
        match self.group() {
            Some(mut group) => {
                queue(&mut group);
                Ok(())
            }
            None => self.conn.execute_batch(sql).map_err(unavailable),
        }
    }

    pub fn rollback(&self) {
        match self.end_group() {
            Some(mut group) => group.rollback(),
            None => self.end_transaction(),
        }
    }

    fn end_transaction(&self) {
        if !self.conn.is_autocommit() {
            // Nothing more to do if even the rollback fails: SQLite rolls back on reopen.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// Starts a read transaction and pins it: until `end_read`, this connection sees the
    /// store as it is now, whatever other connections commit meanwhile (WAL).
    pub fn begin_read(&self) -> Result<(), StorageError> {
        self.conn
            .execute_batch("BEGIN DEFERRED")
            .map_err(unavailable)?;
        // The read starts here, at the first statement, and sees the count as of now.
        self.pinned_deletions.set(self.deletions()?);
        Ok(())
    }

    /// Ends the pinned read for a while (`resume_read` pins a new one). A read held for
    /// long keeps the WAL from starting over, so that it grows by every commit meanwhile,
    /// and keeps checkpoints from copying those commits.
    pub fn pause_read(&self) {
        self.end_transaction();
    }

    /// Pins a new read after `pause_read`: true when no event was deleted in between, so
    /// that every event the old view held is still stored, unchanged (events are only ever
    /// added or deleted).
    pub fn resume_read(&self) -> Result<bool, StorageError> {
        let before = self.pinned_deletions.get();
        self.begin_read()?;
        Ok(self.pinned_deletions.get() == before)
    }

    /// How many `forget`s have deleted events, ever (`DELETIONS_KEY`). A value that is not
    /// a number is refused: read as 0, it could hide the deletions a paused read asks about.
    fn deletions(&self) -> Result<i64, StorageError> {
        self.meta(DELETIONS_KEY)?.map_or(Ok(0), |n| {
            n.parse().map_err(|_| {
                StorageError::Corrupt(format!("the deletion count {n:?} in meta is not a number"))
            })
        })
    }

    pub fn end_read(&self) {
        self.end_transaction();
    }

    /// Copies the WAL into the database file and truncates the WAL to zero bytes, so that
    /// page versions holding deleted data leave the WAL too. Returns false when a reader on
    /// another connection kept it from completing (the next checkpoint finishes the job).
    pub fn checkpoint_truncate(&self) -> Result<bool, StorageError> {
        let (busy, _log, _done): (i64, i64, i64) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(unavailable)?;
        Ok(busy == 0)
    }

    /// `checkpoint_truncate`, waiting at most `patience` for other connections: the
    /// checkpoint holds SQLite's write lock while it waits and copies, so a long wait would
    /// stall every writer. A PASSIVE pass first copies most frames without that lock.
    pub fn checkpoint_truncate_within(
        &self,
        patience: std::time::Duration,
    ) -> Result<bool, StorageError> {
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
        self.conn.busy_timeout(patience).map_err(unavailable)?;
        let done = self.checkpoint_truncate().unwrap_or(false);
        self.conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(unavailable)?;
        Ok(done)
    }

    pub fn event_count(&self) -> Result<u64, StorageError> {
        self.conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(unavailable)
    }

    /// The numbers `connlog migrate` compares a copy of the events by.
    pub fn event_counts(&self) -> anyhow::Result<EventCounts> {
        let (events, first_seq, last_seq) = self.conn.query_row(
            "SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0) FROM events",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?)),
        )?;
        let mut stmt = self.conn.prepare(
            "SELECT connection_method, disconnected, count(*) FROM events \
             GROUP BY 1, 2 ORDER BY 1, 2",
        )?;
        let by_kind = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })?
            .collect::<Result<_, _>>()?;
        Ok(EventCounts {
            events,
            first_seq,
            last_seq,
            by_kind,
        })
    }

    /// Every event with `after < seq <= upto`, with its `seq`, in `seq` order, read in one
    /// statement (inside a transaction, or while nothing else writes).
    pub fn for_each_event(
        &self,
        after: i64,
        upto: i64,
        mut f: impl FnMut(i64, &EventRef<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS}, seq FROM events WHERE seq > ?1 AND seq <= ?2 ORDER BY seq"
        ))?;
        let mut rows = stmt.query([after, upto])?;
        while let Some(row) = rows.next()? {
            let event =
                event_from_row(row).map_err(|e| anyhow::anyhow!("decoding a stored event: {e}"))?;
            f(row.get(17)?, &event)?;
        }
        Ok(())
    }

    /// Appends canonical events: for each, true when it is new, false when an event with its
    /// id is already stored (or earlier in this group). In an ingest group the answer comes
    /// from this connection's read and the group's ids, and the new events are queued for
    /// the inserter; otherwise they are inserted now.
    pub fn append(&mut self, events: Vec<ConnectionEvent>) -> Result<Vec<bool>, StorageError> {
        let Some(mut group) = self.group() else {
            return self.insert(&events);
        };
        let mut stored = self
            .conn
            .prepare_cached("SELECT 1 FROM events WHERE id = ?1")
            .map_err(unavailable)?;
        // The filter's look-ups first, in a loop of their own: each misses the cache, and
        // with nothing between them the processor overlaps those misses.
        let may_hold: Vec<bool> = {
            let known_ids = self.known_ids.borrow();
            events.iter().map(|e| known_ids.may_hold(&e.id)).collect()
        };
        let mut answers = Vec::with_capacity(events.len());
        for (event, may_hold) in events.iter().zip(may_hold) {
            let is_new = !group.appended(&event.id)
                && (!may_hold || !stored.exists([event.id.as_bytes()]).map_err(unavailable)?);
            if is_new {
                group.note(event.id);
            }
            answers.push(is_new);
        }
        // The new events stay where they are (usually all of them, so nothing moves) rather
        // than being copied, some 300 bytes each, into a second vector.
        let mut new = events;
        let mut is_new = answers.iter();
        new.retain(|_| *is_new.next().expect("one answer per event"));
        if !new.is_empty() {
            group.insert(new);
        }
        Ok(answers)
    }

    /// Inserts events now, in the open transaction: for each, whether it was new.
    pub fn insert(&self, events: &[ConnectionEvent]) -> Result<Vec<bool>, StorageError> {
        let mut insert = self
            .conn
            .prepare_cached(&format!(
                "INSERT OR IGNORE INTO events ({EVENT_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
            ))
            .map_err(unavailable)?;
        events
            .iter()
            .map(|e| {
                insert
                    .execute(params![
                        e.id.as_bytes(),
                        e.time,
                        e.organization_id.as_bytes(),
                        e.workspace_owner_id.as_bytes(),
                        e.workspace_id.as_bytes(),
                        e.workspace_name,
                        e.agent_name,
                        e.connection_method.index(),
                        e.code,
                        e.ip,
                        e.user_agent,
                        e.user_id.as_ref().map(Uuid::as_bytes),
                        e.app_name_or_port,
                        e.connection_id.as_ref().map(Uuid::as_bytes),
                        e.disconnect_reason,
                        e.client_session_id,
                        e.status == ConnectionStatus::Disconnected,
                    ])
                    .map(|inserted| inserted == 1)
                    .map_err(unavailable)
            })
            .collect()
    }

    /// The events of each session `keys` names. In an ingest group: what is committed, read
    /// on this connection, and what the group and the one whose commit is queued appended
    /// (`Inserter::add_appended`), without waiting for the inserter.
    pub fn session_events(
        &mut self,
        keys: &[SessionKey],
    ) -> Result<Vec<Vec<ConnectionEvent>>, StorageError> {
        if let Some(group) = self.group() {
            let mut answers = self.committed_session_events(keys, i64::MAX)?;
            group.add_appended(keys, &mut answers);
            return Ok(answers);
        }
        self.committed_session_events(keys, self.session_bound.unwrap_or(i64::MAX))
    }

    /// `session_events` as this connection reads them, with `seq <= bound`.
    fn committed_session_events(
        &self,
        keys: &[SessionKey],
        bound: i64,
    ) -> Result<Vec<Vec<ConnectionEvent>>, StorageError> {
        let mut select = self
            .conn
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events \
                 WHERE connection_id = ?1 AND workspace_id = ?2 AND agent_name = ?3 AND seq <= ?4"
            ))
            .map_err(unavailable)?;
        keys.iter()
            .map(|k| {
                let rows = select
                    .query_map(
                        params![
                            k.connection_id.as_bytes(),
                            k.workspace_id.as_bytes(),
                            k.agent_name,
                            bound
                        ],
                        |row| event_from_row(row).map(EventRef::into_owned),
                    )
                    .map_err(unavailable)?;
                rows.map(|r| r.map_err(corrupt)).collect()
            })
            .collect()
    }

    /// The row each event with `after < seq <= upto` belongs to, at most `limit` of them
    /// in `seq` order: its session when it has a connection id (as `session_events` groups
    /// them), else the event alone.
    pub fn origins_between(
        &self,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Vec<(i64, RowOrigin)>, StorageError> {
        let mut select = self
            .conn
            .prepare_cached(
                "SELECT seq, id, connection_id, workspace_id, agent_name FROM events \
                 WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(unavailable)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = select
            .query_map(params![after, upto, limit], |row| {
                let origin = match optional_uuid_column(row, 2)? {
                    Some(connection_id) => RowOrigin::Session(SessionKey {
                        connection_id,
                        workspace_id: uuid_column(row, 3)?,
                        agent_name: text_column(row, 4)?.to_owned(),
                    }),
                    None => RowOrigin::SingleEvent(uuid_column(row, 1)?),
                };
                Ok((row.get(0)?, origin))
            })
            .map_err(unavailable)?;
        rows.map(|r| r.map_err(corrupt)).collect()
    }

    pub fn forget(&mut self, origins: &[RowOrigin]) -> Result<u64, StorageError> {
        if self.in_group.get() {
            return Err(StorageError::Unavailable(
                "events cannot be forgotten while ingesting".into(),
            ));
        }
        let mut by_id = self
            .conn
            .prepare_cached("DELETE FROM events WHERE id = ?1 RETURNING seq")
            .map_err(unavailable)?;
        let mut by_session = self
            .conn
            .prepare_cached(
                "DELETE FROM events WHERE connection_id = ?1 AND workspace_id = ?2 \
                 AND agent_name = ?3 RETURNING seq",
            )
            .map_err(unavailable)?;
        let (mut deleted, mut max_seq) = (0u64, 0i64);
        for origin in origins {
            let mut rows = match origin {
                RowOrigin::SingleEvent(id) => by_id.query([id.as_bytes()]),
                RowOrigin::Session(k) => by_session.query(params![
                    k.connection_id.as_bytes(),
                    k.workspace_id.as_bytes(),
                    k.agent_name
                ]),
            }
            .map_err(unavailable)?;
            while let Some(row) = rows.next().map_err(unavailable)? {
                deleted += 1;
                max_seq = max_seq.max(row.get(0).map_err(unavailable)?);
            }
        }
        if deleted > 0 {
            self.set_meta(DELETIONS_KEY, &(self.deletions()? + 1).to_string())?;
        }
        self.forgotten += deleted;
        self.forgotten_max_seq = self.forgotten_max_seq.max(max_seq);
        if let Some(rows) = &mut self.forgotten_rows {
            rows.extend_from_slice(origins);
        }
        Ok(deleted)
    }

    /// Whether `forget` keeps the rows it deleted, for `take_forgotten_rows`; the list
    /// starts empty, so rows a rolled-back transaction forgot are never taken later.
    pub fn keep_forgotten_rows(&mut self, keep: bool) {
        self.forgotten_rows = keep.then(Vec::new);
        self.forgotten_cutoff.set(None);
    }

    /// The rows `forget` deleted since the last call (while `keep_forgotten_rows` is on),
    /// and the cutoff of the purge that removed them, when one was recorded.
    pub fn take_forgotten_rows(&mut self) -> (Vec<RowOrigin>, Option<i64>) {
        let rows = self
            .forgotten_rows
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        (rows, self.forgotten_cutoff.take())
    }

    /// Events deleted by `forget` since the last `take_forgotten`, and the highest `seq`
    /// among them (0: none).
    pub fn forgotten(&self) -> (u64, i64) {
        (self.forgotten, self.forgotten_max_seq)
    }

    /// Events deleted by `forget` since the last call (committed or not: the caller asks
    /// after its commit).
    pub fn take_forgotten(&mut self) -> u64 {
        self.forgotten_max_seq = 0;
        std::mem::take(&mut self.forgotten)
    }

    /// Limits what `session_events` sees to `seq <= bound` (`None`: everything).
    pub fn set_session_bound(&mut self, bound: Option<i64>) {
        self.session_bound = bound;
    }

    /// The next batch of about `batch_size` events for `cursor` (more rather than split a
    /// session of a whole journal), or `None` at its end. Each call is a query of its own,
    /// so the connection is free between calls (the plugin's `replay` reads sessions
    /// through it); inside a pinned read every call sees the same journal.
    pub fn next_batch(
        &self,
        cursor: &mut ReplayCursor,
        batch_size: usize,
    ) -> anyhow::Result<Option<EventColumns>> {
        let batch_size = batch_size.max(1);
        loop {
            let (upto, after) = (cursor.upto, cursor.after);
            let (sql, from): (String, Vec<Box<dyn rusqlite::ToSql>>) = match &cursor.phase {
                Phase::Done => return Ok(None),
                Phase::Tail(last) => (
                    format!(
                        "SELECT {EVENT_COLUMNS}, seq FROM events \
                         WHERE seq > ?1 AND seq <= ?2 ORDER BY seq"
                    ),
                    vec![Box::new(*last), Box::new(upto)],
                ),
                Phase::Singles(last) => (
                    format!(
                        "SELECT {EVENT_COLUMNS}, seq FROM events WHERE connection_id IS NULL \
                         AND seq > ?1 AND seq <= ?2 ORDER BY seq"
                    ),
                    vec![Box::new(*last), Box::new(upto)],
                ),
                Phase::Sessions(None) => (
                    format!(
                        "SELECT {EVENT_COLUMNS}, seq FROM events INDEXED BY events_by_session \
                         WHERE connection_id IS NOT NULL AND seq > ?1 AND seq <= ?2 \
                         ORDER BY connection_id, workspace_id, agent_name"
                    ),
                    vec![Box::new(after), Box::new(upto)],
                ),
                Phase::Sessions(Some((connection, workspace, agent))) => (
                    format!(
                        "SELECT {EVENT_COLUMNS}, seq FROM events INDEXED BY events_by_session \
                         WHERE connection_id IS NOT NULL AND seq > ?1 AND seq <= ?2 \
                         AND (connection_id, workspace_id, agent_name) > (?3, ?4, ?5) \
                         ORDER BY connection_id, workspace_id, agent_name"
                    ),
                    vec![
                        Box::new(after),
                        Box::new(upto),
                        Box::new(connection.as_bytes().to_vec()),
                        Box::new(workspace.as_bytes().to_vec()),
                        Box::new(agent.clone()),
                    ],
                ),
            };
            let sessions = matches!(cursor.phase, Phase::Sessions(_));
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(from.iter()))?;
            let mut batch = EventColumns::with_capacity(batch_size, batch_size * 64);
            let mut last_seq = None;
            let mut last_session: Option<(Uuid, Uuid, String)> = None;
            while let Some(row) = rows.next()? {
                let event = event_from_row(row)
                    .map_err(|e| anyhow::anyhow!("decoding a stored event: {e}"))?;
                let same_session = last_session.as_ref().is_some_and(|(c, w, a)| {
                    event.connection_id == Some(*c)
                        && event.workspace_id == *w
                        && event.agent_name == a
                });
                // A whole journal keeps each session's events in one batch, so that the
                // plugin folds them at once.
                if batch.len() >= batch_size && !(sessions && same_session) {
                    break;
                }
                if sessions && !same_session {
                    last_session = event
                        .connection_id
                        .map(|c| (c, event.workspace_id, event.agent_name.to_string()));
                }
                batch.push(&event);
                last_seq = Some(row.get::<_, i64>(17)?);
            }
            if batch.is_empty() {
                cursor.phase = match cursor.phase {
                    Phase::Singles(_) => Phase::Sessions(None),
                    _ => Phase::Done,
                };
                continue;
            }
            cursor.phase = match (&cursor.phase, last_seq, last_session) {
                (Phase::Tail(_), Some(seq), _) => Phase::Tail(seq),
                (Phase::Singles(_), Some(seq), _) => Phase::Singles(seq),
                (_, _, session) => Phase::Sessions(session),
            };
            return Ok(Some(batch));
        }
    }

    // ---- snapshots --------------------------------------------------------------------

    /// The folder holding this store's snapshot files.
    pub fn snapshot_dir(&self) -> PathBuf {
        snapshot_file::dir_for(&self.path)
    }

    /// Starts writing a snapshot into a new file, which no record names until
    /// `replace_snapshot` commits one that does.
    pub fn start_snapshot_write(&mut self) -> Result<(), StorageError> {
        self.abandon_snapshot_write();
        let writer = FileWriter::create(&self.snapshot_dir()).map_err(io_unavailable)?;
        self.writing = Some((writer, SnapshotStream::default()));
        Ok(())
    }

    /// Drops (zeroes and removes) a snapshot file being written.
    pub fn abandon_snapshot_write(&mut self) {
        if let Some(write) = self.take_snapshot_write() {
            write.abandon();
        }
    }

    /// Makes the snapshot just written durable under its final name, and describes it
    /// (`SnapshotWrite::finish`). Nothing is recorded yet.
    pub fn finish_snapshot_write(
        &mut self,
        plugin_digest: &str,
        rows: u64,
        last_seq: i64,
    ) -> Result<WrittenSnapshot, StorageError> {
        let wrote = self.snapshot_written()?;
        let write = self.take_snapshot_write().ok_or_else(not_writing)?;
        write.finish(wrote, plugin_digest, rows, last_seq)
    }

    /// In a forked copy of the process (`service::fork`), after the plugin saved: writes
    /// out and syncs the snapshot file, and says what it holds. The file keeps its
    /// temporary name; the process that forked names it (`SnapshotWrite::finish`).
    pub fn sync_snapshot_write(&mut self) -> Result<SnapshotBytes, StorageError> {
        let (writer, _) = self.writing.as_mut().ok_or_else(not_writing)?;
        writer.sync().map_err(io_unavailable)?;
        self.snapshot_written()
    }

    /// What the snapshot being written holds so far.
    fn snapshot_written(&self) -> Result<SnapshotBytes, StorageError> {
        let (writer, stream) = self.writing.as_ref().ok_or_else(not_writing)?;
        Ok(SnapshotBytes {
            bytes: stream.bytes,
            chunks: stream.chunks,
            sha256: writer.sha256(),
        })
    }

    /// The descriptor of the snapshot file being written, which a forked copy of the
    /// process must keep open.
    pub fn snapshot_write_fd(&self) -> Option<std::os::fd::RawFd> {
        self.writing.as_ref().map(|(writer, _)| writer.raw_fd())
    }

    /// Takes the snapshot file being written out of the journal, once a forked copy of
    /// the process writes its chunks (`service::fork`).
    pub fn take_snapshot_write(&mut self) -> Option<SnapshotWrite> {
        self.writing.take().map(|(writer, _)| SnapshotWrite(writer))
    }

    /// Records `written` as the stored snapshot in one small write transaction, if the
    /// record is still what `expect` says, and deletes the pending purges it includes.
    /// Returns false (and removes the new file) when the record had changed. The replaced
    /// file is left to `sweep_snapshot_files`, which zeroes it once no one reads it.
    pub fn replace_snapshot(
        &self,
        written: WrittenSnapshot,
        expect: Expect<'_>,
        includes: Includes,
    ) -> Result<bool, StorageError> {
        let WrittenSnapshot { info, file } = written;
        self.begin()?;
        let recorded = (|| {
            if let Expect::File(expected) = expect
                && self.recorded_snapshot_file()?.as_deref() != expected
            {
                return Ok(false);
            }
            for (key, value) in [
                ("snapshot.format", SNAPSHOT_META_VERSION.to_string()),
                ("snapshot.file", info.file.clone()),
                ("snapshot.plugin", info.plugin_digest.clone()),
                ("snapshot.last_seq", info.last_seq.to_string()),
                ("snapshot.bytes", info.bytes.to_string()),
                ("snapshot.chunks", info.chunks.to_string()),
                ("snapshot.sha256", info.sha256.clone()),
                ("snapshot.rows", info.rows.to_string()),
            ] {
                self.set_meta(key, &value)?;
            }
            let mark = match includes {
                Includes::AllPurges => i64::MAX,
                Includes::PurgesUpTo(mark) => mark,
            };
            self.conn
                .execute("DELETE FROM snapshot_purges WHERE id <= ?1", [mark])
                .map_err(unavailable)?;
            Ok(true)
        })()
        .and_then(|recorded| {
            if recorded {
                self.commit()?;
            } else {
                self.rollback();
            }
            Ok(recorded)
        });
        match recorded {
            Ok(true) => Ok(true),
            Ok(false) => {
                if let Err(e) = file.discard() {
                    tracing::warn!(error = %e, "a superseded snapshot file could not be removed; the next sweep will");
                }
                Ok(false)
            }
            Err(e) => {
                self.rollback();
                if let Err(e) = file.discard() {
                    tracing::warn!(error = %e, "an unrecorded snapshot file could not be removed; the next sweep will");
                }
                Err(e)
            }
        }
    }

    /// The file the snapshot record names, complete or not.
    pub fn recorded_snapshot_file(&self) -> Result<Option<String>, StorageError> {
        if self.meta("snapshot.format")?.as_deref() != Some(SNAPSHOT_META_VERSION) {
            return Ok(None);
        }
        self.meta("snapshot.file")
    }

    /// The stored snapshot's record; `None` when there is none, or when its record is
    /// incomplete or from another format (then it is ignored, never guessed at).
    pub fn snapshot_info(&self) -> Result<Option<SnapshotInfo>, StorageError> {
        if self.meta("snapshot.format")?.as_deref() != Some(SNAPSHOT_META_VERSION) {
            return Ok(None);
        }
        let get = |key: &str| self.meta(key);
        let number = |key: &str| -> Result<Option<u64>, StorageError> {
            Ok(get(key)?.and_then(|v| v.parse().ok()))
        };
        let (
            Some(file),
            Some(plugin_digest),
            Some(last_seq),
            Some(bytes),
            Some(chunks),
            Some(sha256),
            Some(rows),
        ) = (
            get("snapshot.file")?,
            get("snapshot.plugin")?,
            number("snapshot.last_seq")?,
            number("snapshot.bytes")?,
            number("snapshot.chunks")?,
            get("snapshot.sha256")?,
            number("snapshot.rows")?,
        )
        else {
            return Ok(None);
        };
        Ok(Some(SnapshotInfo {
            plugin_digest,
            last_seq: last_seq as i64,
            bytes,
            chunks,
            sha256,
            rows,
            file,
        }))
    }

    /// Zeroes and removes every snapshot file no record names: the one a newer snapshot
    /// replaced, and leftovers of a crash (unfinished files, files written but never
    /// recorded). A file someone holds is left for a later sweep; a file recorded while
    /// the sweep ran is kept (the record is read again once the file is locked, and its
    /// writer lets go only after committing the record).
    pub fn sweep_snapshot_files(&self) -> anyhow::Result<Sweep> {
        let dir = self.snapshot_dir();
        let mut sweep = Sweep::default();
        for (path, name) in snapshot_file::list(&dir)? {
            let is_recorded = |journal: &Self| -> anyhow::Result<bool> {
                let recorded = journal
                    .recorded_snapshot_file()
                    .map_err(|e| anyhow::anyhow!("reading the snapshot record: {e}"))?;
                Ok(recorded.is_some_and(|r| snapshot_file::path_of(&dir, &r) == path))
            };
            if is_recorded(self)? {
                continue;
            }
            let Some(file) = snapshot_file::lock_for_shred(&path)? else {
                sweep.busy += u32::from(path.exists());
                continue;
            };
            if is_recorded(self)? {
                continue;
            }
            snapshot_file::shred_locked(&file, &path)?;
            tracing::debug!(file = %name, "snapshot file zeroed and removed");
            sweep.removed += 1;
        }
        Ok(sweep)
    }

    /// Prepares to read the recorded snapshot from its start, checking it against
    /// `expected` as it goes: the read that would report its end fails instead if the
    /// bytes are not exactly those recorded.
    pub fn start_snapshot_read(
        &mut self,
        expected: &SnapshotInfo,
    ) -> Result<(), snapshot_file::OpenFailure> {
        self.read_verified = false;
        self.reading = None;
        let file = FileReader::open(&self.snapshot_dir(), &expected.file)?;
        self.reading = Some((file, SnapshotStream::default(), expected.clone()));
        Ok(())
    }

    /// Ends a snapshot read (closing the file, so that it may be replaced).
    pub fn finish_snapshot_read(&mut self) {
        self.reading = None;
    }

    /// Whether the last snapshot read reached its end and matched its record.
    pub fn snapshot_read_verified(&self) -> bool {
        self.read_verified
    }

    pub fn write_snapshot_chunk(&mut self, chunk: &[u8]) -> Result<(), StorageError> {
        let (writer, stream) = self.writing.as_mut().ok_or_else(not_writing)?;
        writer.write_chunk(chunk).map_err(io_unavailable)?;
        stream.bytes += chunk.len() as u64;
        stream.chunks += 1;
        Ok(())
    }

    /// The next chunk of the snapshot being read. The last chunk the record announces is
    /// handed over only if every byte so far matches the record's size and SHA-256, and
    /// the end only if no chunk follows it: a plugin never finishes loading a snapshot that
    /// is not the one recorded.
    pub fn read_snapshot_chunk(&mut self) -> Result<Option<Vec<u8>>, StorageError> {
        let Some((file, stream, expected)) = &mut self.reading else {
            return Err(StorageError::Unavailable(
                "no snapshot is being read".into(),
            ));
        };
        let refuse = |what: String| {
            Err(StorageError::Corrupt(format!(
                "the snapshot does not match its record: {what}"
            )))
        };
        let next = match file.next_chunk() {
            Ok(next) => next,
            Err(e) => {
                self.reading = None;
                return refuse(format!("its file is damaged ({e})"));
            }
        };
        match next {
            Some(chunk) => {
                let bytes = chunk.bytes;
                stream.bytes += bytes.len() as u64;
                stream.chunks += 1;
                if stream.chunks > expected.chunks || stream.bytes > expected.bytes {
                    self.reading = None;
                    return refuse("it is longer than recorded".into());
                }
                if stream.chunks == expected.chunks {
                    let sha256 = hex::encode(chunk.sha256_so_far);
                    if stream.bytes != expected.bytes || sha256 != expected.sha256 {
                        let what = format!(
                            "{} bytes with sha256 {sha256}, recorded {} bytes with sha256 {}",
                            stream.bytes, expected.bytes, expected.sha256
                        );
                        self.reading = None;
                        return refuse(what);
                    }
                }
                Ok(Some(bytes))
            }
            None => {
                let (_, stream, expected) = self.reading.take().expect("checked above");
                if stream.chunks != expected.chunks {
                    return refuse(format!(
                        "it ends after {} of {} chunks",
                        stream.chunks, expected.chunks
                    ));
                }
                self.read_verified = true;
                Ok(None)
            }
        }
    }

    // ---- pending purges -----------------------------------------------------------------

    /// Records a purge, in the purge's transaction: the high-water mark now, its cutoff, and
    /// the highest `seq` it deleted.
    pub fn record_purge(&self, cutoff: i64, max_deleted_seq: i64) -> Result<(), StorageError> {
        if self.forgotten_rows.is_some() {
            self.forgotten_cutoff.set(Some(cutoff));
        }
        self.conn
            .execute(
                "INSERT INTO snapshot_purges (high_water, cutoff, max_deleted_seq) \
                 VALUES (?1, ?2, ?3)",
                params![self.high_water()?, cutoff, max_deleted_seq],
            )
            .map(|_| ())
            .map_err(unavailable)
    }

    /// The purges no stored snapshot includes, oldest first.
    pub fn pending_purges(&self) -> Result<Vec<PendingPurge>, StorageError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, high_water, cutoff, max_deleted_seq FROM snapshot_purges ORDER BY id",
            )
            .map_err(unavailable)?;
        stmt.query_map([], |r| {
            Ok(PendingPurge {
                id: r.get(0)?,
                high_water: r.get(1)?,
                cutoff: r.get(2)?,
                max_deleted_seq: r.get(3)?,
            })
        })
        .map_err(unavailable)?
        .collect::<Result<_, _>>()
        .map_err(corrupt)
    }

    /// How many purges were ever recorded (ids are never reused): a snapshot written from
    /// a view taken now includes the purges with `id <=` this.
    pub fn purge_mark(&self) -> Result<i64, StorageError> {
        self.sequence("snapshot_purges")
    }

    /// A `meta` value. Every pinned read asks for one (`begin_read`), so the statement is
    /// kept prepared.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StorageError> {
        self.conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")
            .and_then(|mut stmt| stmt.query_row([key], |r| r.get(0)).optional())
            .map_err(unavailable)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StorageError> {
        self.conn
            .execute("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2", [key, value])
            .map(|_| ())
            .map_err(unavailable)
    }

    /// Leaves this connection's commits to checkpoint only once the WAL holds `pages`. For
    /// the inserter, whose WAL the checkpointer copies meanwhile (`store::checkpointer`).
    fn checkpoint_only_past(&self, pages: u32) -> Result<(), StorageError> {
        self.conn
            .execute_batch(&format!("PRAGMA wal_autocheckpoint = {pages}"))
            .map_err(unavailable)
    }

    /// Lets this connection keep up to `mib` MiB of pages in memory (SQLite's default is
    /// about 2): a bulk copy into a large id index then rewrites each page far less often.
    pub fn set_cache_mib(&self, mib: u32) -> Result<(), StorageError> {
        self.conn
            .execute_batch(&format!("PRAGMA cache_size = -{}", u64::from(mib) * 1024))
            .map_err(unavailable)
    }

    /// Sets the number `key` holds to `value` if that is higher (or `key` is not set), in
    /// one statement: writers that raise it in any order leave the highest.
    pub fn raise_meta(&self, key: &str, value: i64) -> Result<(), StorageError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE \
                 SET value = excluded.value WHERE CAST(value AS INTEGER) < CAST(excluded.value AS INTEGER)",
                params![key, value.to_string()],
            )
            .map(|_| ())
            .map_err(unavailable)
    }

    /// The highest event sequence number stored, 0 when empty.
    pub fn last_seq(&self) -> Result<i64, StorageError> {
        if let Some(mut group) = self.group() {
            return group.last_seq();
        }
        self.conn
            .query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))
            .map_err(unavailable)
    }

    /// Deletes the events past `seq`, which an ingest group's inserter wrote for a batch
    /// that was rolled back: its write lock keeps them its own.
    pub(super) fn delete_events_after(&self, seq: i64) -> Result<(), StorageError> {
        self.conn
            .execute("DELETE FROM events WHERE seq > ?1", [seq])
            .map(|_| ())
            .map_err(unavailable)
    }

    /// The highest event sequence number ever handed out (purged ones included): no event
    /// will ever get one at or below it.
    pub fn high_water(&self) -> Result<i64, StorageError> {
        Ok(self.sequence("events")?.max(self.last_seq()?))
    }

    fn sequence(&self, table: &str) -> Result<i64, StorageError> {
        self.conn
            .query_row(
                "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?1), 0)",
                [table],
                |r| r.get(0),
            )
            .map_err(unavailable)
    }
}

fn check_file(conn: &Connection) -> anyhow::Result<()> {
    let mut stmt = conn.prepare("PRAGMA quick_check")?;
    let problems: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(
        problems == ["ok"],
        "the SQLite file is damaged: {}",
        problems.join("; ")
    );
    Ok(())
}

/// A stored event, its text borrowed from the row: reading the journal copies no string
/// until the event is kept.
fn event_from_row<'r>(row: &'r Row<'_>) -> rusqlite::Result<EventRef<'r>> {
    Ok(ConnectionEvent {
        id: uuid_column(row, 0)?,
        time: row.get(1)?,
        organization_id: uuid_column(row, 2)?,
        workspace_owner_id: uuid_column(row, 3)?,
        workspace_id: uuid_column(row, 4)?,
        workspace_name: text_column(row, 5)?,
        agent_name: text_column(row, 6)?,
        connection_method: method_column(row, 7)?,
        code: row.get(8)?,
        ip: optional_text_column(row, 9)?,
        user_agent: optional_text_column(row, 10)?,
        user_id: optional_uuid_column(row, 11)?,
        app_name_or_port: optional_text_column(row, 12)?,
        connection_id: optional_uuid_column(row, 13)?,
        disconnect_reason: optional_text_column(row, 14)?,
        client_session_id: optional_text_column(row, 15)?,
        status: if row.get::<_, bool>(16)? {
            ConnectionStatus::Disconnected
        } else {
            ConnectionStatus::Connected
        },
    })
}

fn conversion_failure(
    index: usize,
    ty: rusqlite::types::Type,
    error: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, ty, Box::new(error))
}

fn method_column(row: &Row<'_>, index: usize) -> rusqlite::Result<ConnectionMethod> {
    let stored: u8 = row.get(index)?;
    ConnectionMethod::from_index(stored).ok_or(rusqlite::Error::IntegralValueOutOfRange(
        index,
        i64::from(stored),
    ))
}

fn uuid_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Uuid> {
    // `ok_or_else`: the error holds a `String`, which `ok_or` would build and drop for
    // every column of every event read.
    optional_uuid_column(row, index)?.ok_or_else(|| {
        rusqlite::Error::InvalidColumnType(index, "a UUID".into(), rusqlite::types::Type::Null)
    })
}

fn optional_uuid_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Uuid>> {
    let bytes = row
        .get_ref(index)?
        .as_blob_or_null()
        .map_err(|e| conversion_failure(index, rusqlite::types::Type::Blob, e))?;
    bytes
        .map(|bytes| {
            Uuid::from_slice(bytes)
                .map_err(|e| conversion_failure(index, rusqlite::types::Type::Blob, e))
        })
        .transpose()
}

fn text_column<'r>(row: &'r Row<'_>, index: usize) -> rusqlite::Result<&'r str> {
    optional_text_column(row, index)?.ok_or_else(|| {
        rusqlite::Error::InvalidColumnType(index, "text".into(), rusqlite::types::Type::Null)
    })
}

fn optional_text_column<'r>(row: &'r Row<'_>, index: usize) -> rusqlite::Result<Option<&'r str>> {
    row.get_ref(index)?
        .as_str_or_null()
        .map_err(|e| conversion_failure(index, rusqlite::types::Type::Text, e))
}

fn unavailable(e: rusqlite::Error) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

fn not_writing() -> StorageError {
    StorageError::Unavailable("no snapshot is being written".into())
}

fn io_unavailable(e: std::io::Error) -> StorageError {
    StorageError::Unavailable(format!("snapshot file: {e}"))
}

fn corrupt(e: rusqlite::Error) -> StorageError {
    StorageError::Corrupt(e.to_string())
}
