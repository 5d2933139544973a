//! The SQLite journal behind the WIT `journal` interface.
//!
//! Durability: WAL mode with `synchronous=FULL`, so a committed transaction has been
//! fsynced before `commit` returns; callers acknowledge events only after that.
//! `secure_delete` overwrites deleted content, so purged rows leave no data in the file,
//! and a `forget` that deletes anything deletes the snapshot in the same transaction, so a
//! purged row can never come back from a snapshot either.
//!
//! Snapshots: the plugin writes its state as opaque chunks (`snapshot_chunks`). The host
//! records, in `meta` and in the same transaction, which plugin build wrote it, the journal
//! position it covers (`last_seq`), its size, chunk count and SHA-256. Reading verifies all
//! of that before the plugin is told the snapshot ended, so a damaged or foreign snapshot
//! is refused whatever the plugin's own checks are.

use std::path::{Path, PathBuf};

use anyhow::Context;
use connlog_guest::event_columns::EventColumns;
use connlog_guest::model::{
    ConnectionEvent, ConnectionStatus, EventRef, RowOrigin, SessionKey, StorageError, Uuid,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use sha2::{Digest, Sha256};

/// Bumped when the table layout changes; an unknown version is refused, never guessed at.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS events (
    seq                INTEGER PRIMARY KEY,
    id                 BLOB    NOT NULL UNIQUE,
    time_ns            INTEGER NOT NULL,
    organization_id    BLOB    NOT NULL,
    workspace_owner_id BLOB    NOT NULL,
    workspace_id       BLOB    NOT NULL,
    workspace_name     TEXT    NOT NULL,
    agent_name         TEXT    NOT NULL,
    connection_type    TEXT    NOT NULL,
    code               INTEGER,
    ip                 TEXT,
    user_agent         TEXT,
    user_id            BLOB,
    slug_or_port       TEXT,
    connection_id      BLOB,
    disconnect_reason  TEXT,
    disconnected       INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS events_by_session
    ON events (connection_id, workspace_id, agent_name) WHERE connection_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS snapshot_chunks (
    seq   INTEGER PRIMARY KEY,
    bytes BLOB NOT NULL
) STRICT;
";

const EVENT_COLUMNS: &str = "id, time_ns, organization_id, workspace_owner_id, workspace_id, workspace_name, \
     agent_name, connection_type, code, ip, user_agent, user_id, slug_or_port, connection_id, \
     disconnect_reason, disconnected";

/// The format of the snapshot records in `meta`; bumped if their meaning changes.
const SNAPSHOT_META_VERSION: &str = "1";

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
}

/// Running totals of the snapshot being written or read.
#[derive(Default)]
struct SnapshotStream {
    hasher: Sha256,
    bytes: u64,
    chunks: u64,
}

pub struct Journal {
    conn: Connection,
    path: PathBuf,
    /// Position of the next snapshot chunk to read.
    snapshot_cursor: i64,
    /// The snapshot being written (between `start_snapshot_write` and `finish_snapshot_write`).
    writing: Option<SnapshotStream>,
    /// The snapshot being read, and what it must match at its end.
    reading: Option<(SnapshotStream, SnapshotInfo)>,
    /// Set once a read reached the end of a snapshot that matched its record.
    read_verified: bool,
    /// Events deleted by `forget` since the last `take_forgotten`.
    forgotten: u64,
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
        check_file(&conn).with_context(|| format!("the store {} cannot be used", path.display()))
    }

    fn open_with(path: &Path, check: bool) -> anyhow::Result<Self> {
        let conn = Connection::open(path)
            .with_context(|| format!("opening the store {}", path.display()))?;
        let journal = Self {
            conn,
            path: path.to_path_buf(),
            snapshot_cursor: 0,
            writing: None,
            reading: None,
            read_verified: false,
            forgotten: 0,
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
        self.conn.execute_batch(SCHEMA)?;
        let version: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match version {
            None => {
                self.conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )?;
            }
            Some(v) if v == SCHEMA_VERSION.to_string() => {}
            Some(v) => anyhow::bail!(
                "store schema version {v} is not supported (this build reads {SCHEMA_VERSION})"
            ),
        }
        Ok(())
    }

    pub fn begin(&self) -> Result<(), StorageError> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(unavailable)
    }

    /// Durable when this returns Ok (synchronous=FULL).
    pub fn commit(&self) -> Result<(), StorageError> {
        self.conn.execute_batch("COMMIT").map_err(unavailable)
    }

    pub fn rollback(&self) {
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
        self.conn
            .query_row("SELECT count(*) FROM meta", [], |r| r.get::<_, i64>(0))
            .map(|_| ())
            .map_err(unavailable)
    }

    pub fn end_read(&self) {
        self.rollback();
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

    pub fn event_count(&self) -> Result<u64, StorageError> {
        self.conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(unavailable)
    }

    pub fn append(&mut self, events: &[ConnectionEvent]) -> Result<Vec<bool>, StorageError> {
        let mut insert = self
            .conn
            .prepare_cached(&format!(
                "INSERT OR IGNORE INTO events ({EVENT_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
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
                        e.connection_type,
                        e.code,
                        e.ip,
                        e.user_agent,
                        e.user_id.as_ref().map(Uuid::as_bytes),
                        e.slug_or_port,
                        e.connection_id.as_ref().map(Uuid::as_bytes),
                        e.disconnect_reason,
                        e.status == ConnectionStatus::Disconnected,
                    ])
                    .map(|inserted| inserted == 1)
                    .map_err(unavailable)
            })
            .collect()
    }

    pub fn session_events(
        &mut self,
        keys: &[SessionKey],
    ) -> Result<Vec<Vec<ConnectionEvent>>, StorageError> {
        let mut select = self
            .conn
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events \
                 WHERE connection_id = ?1 AND workspace_id = ?2 AND agent_name = ?3"
            ))
            .map_err(unavailable)?;
        keys.iter()
            .map(|k| {
                let rows = select
                    .query_map(
                        params![
                            k.connection_id.as_bytes(),
                            k.workspace_id.as_bytes(),
                            k.agent_name
                        ],
                        |row| event_from_row(row).map(EventRef::into_owned),
                    )
                    .map_err(unavailable)?;
                rows.map(|r| r.map_err(corrupt)).collect()
            })
            .collect()
    }

    pub fn forget(&mut self, origins: &[RowOrigin]) -> Result<u64, StorageError> {
        let mut by_id = self
            .conn
            .prepare_cached("DELETE FROM events WHERE id = ?1")
            .map_err(unavailable)?;
        let mut by_session = self
            .conn
            .prepare_cached("DELETE FROM events WHERE connection_id = ?1 AND workspace_id = ?2 AND agent_name = ?3")
            .map_err(unavailable)?;
        let mut deleted = 0u64;
        for origin in origins {
            deleted += match origin {
                RowOrigin::SingleEvent(id) => by_id.execute([id.as_bytes()]),
                RowOrigin::Session(k) => by_session.execute(params![
                    k.connection_id.as_bytes(),
                    k.workspace_id.as_bytes(),
                    k.agent_name
                ]),
            }
            .map_err(unavailable)? as u64;
        }
        drop((by_id, by_session));
        if deleted > 0 {
            // The snapshot may hold the rows just forgotten: it goes in the same transaction.
            self.clear_snapshot()?;
            self.forgotten += deleted;
        }
        Ok(deleted)
    }

    /// Events deleted by `forget` since the last call (committed or not: the caller asks
    /// after its commit).
    pub fn take_forgotten(&mut self) -> u64 {
        std::mem::take(&mut self.forgotten)
    }

    /// Streams the events with `after < seq <= upto` to `sink` as the plugin's `replay`
    /// takes them, in batches of about `batch_size`. A whole journal (`after == 0`) comes
    /// as web and tunnel events in arrival order, then session by session, each session's
    /// events together (what `replay` is fastest with); a tail comes in `seq` order.
    pub fn for_each_batch_in(
        &self,
        batch_size: usize,
        after: i64,
        upto: i64,
        sink: &mut dyn FnMut(EventColumns) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        let mut total = 0u64;
        let queries = if after == 0 {
            vec![
                format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE connection_id IS NULL \
                     AND seq > ?1 AND seq <= ?2 ORDER BY seq"
                ),
                format!(
                    "SELECT {EVENT_COLUMNS} FROM events INDEXED BY events_by_session \
                     WHERE connection_id IS NOT NULL AND seq > ?1 AND seq <= ?2 \
                     ORDER BY connection_id, workspace_id, agent_name"
                ),
            ]
        } else {
            vec![format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE seq > ?1 AND seq <= ?2 ORDER BY seq"
            )]
        };
        for sql in queries {
            let mut stmt = self.conn.prepare(&sql)?;
            let mut rows = stmt.query([after, upto])?;
            let fresh_batch = || EventColumns::with_capacity(batch_size, batch_size * 64);
            let mut batch = fresh_batch();
            let mut last_key: Option<(Uuid, Uuid, String)> = None;
            while let Some(row) = rows.next()? {
                let event = event_from_row(row)
                    .map_err(|e| anyhow::anyhow!("decoding a stored event: {e}"))?;
                let key = event
                    .connection_id
                    .map(|id| (id, event.workspace_id, event.agent_name));
                let same_session =
                    key.is_some() && key == last_key.as_ref().map(|(c, w, a)| (*c, *w, a.as_str()));
                // Keep a session's events in one batch so the plugin can fold them at once.
                if batch.len() >= batch_size && !same_session {
                    total += batch.len() as u64;
                    sink(std::mem::replace(&mut batch, fresh_batch()))?;
                }
                if !same_session {
                    last_key = key.map(|(c, w, a)| (c, w, a.to_string()));
                }
                batch.push(&event);
            }
            if !batch.is_empty() {
                total += batch.len() as u64;
                sink(batch)?;
            }
        }
        Ok(total)
    }

    // ---- snapshots --------------------------------------------------------------------

    /// Deletes the snapshot and its record (`secure_delete` zeroes its bytes).
    pub fn clear_snapshot(&self) -> Result<(), StorageError> {
        self.conn
            .execute("DELETE FROM snapshot_chunks", [])
            .map_err(unavailable)?;
        self.conn
            .execute("DELETE FROM meta WHERE key LIKE 'snapshot.%'", [])
            .map_err(unavailable)?;
        Ok(())
    }

    /// Replaces the stored snapshot with an empty one being written; call inside the write
    /// transaction that `finish_snapshot_write` ends.
    pub fn start_snapshot_write(&mut self) -> Result<(), StorageError> {
        self.clear_snapshot()?;
        self.writing = Some(SnapshotStream::default());
        Ok(())
    }

    /// Records the snapshot just written: this plugin build, the journal position it
    /// covers, and its size and digest. Same transaction as the chunks.
    pub fn finish_snapshot_write(
        &mut self,
        plugin_digest: &str,
        rows: u64,
    ) -> Result<SnapshotInfo, StorageError> {
        let stream = self
            .writing
            .take()
            .ok_or_else(|| StorageError::Unavailable("no snapshot is being written".into()))?;
        let info = SnapshotInfo {
            plugin_digest: plugin_digest.to_string(),
            last_seq: self.last_seq()?,
            bytes: stream.bytes,
            chunks: stream.chunks,
            sha256: hex::encode(stream.hasher.finalize()),
            rows,
        };
        for (key, value) in [
            ("snapshot.format", SNAPSHOT_META_VERSION.to_string()),
            ("snapshot.plugin", info.plugin_digest.clone()),
            ("snapshot.last_seq", info.last_seq.to_string()),
            ("snapshot.bytes", info.bytes.to_string()),
            ("snapshot.chunks", info.chunks.to_string()),
            ("snapshot.sha256", info.sha256.clone()),
            ("snapshot.rows", info.rows.to_string()),
        ] {
            self.set_meta(key, &value)?;
        }
        Ok(info)
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
            Some(plugin_digest),
            Some(last_seq),
            Some(bytes),
            Some(chunks),
            Some(sha256),
            Some(rows),
        ) = (
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
        }))
    }

    /// Prepares to read the stored snapshot from its start, checking it against `expected`
    /// as it goes: the read that would report its end fails instead if the bytes are not
    /// exactly those recorded.
    pub fn start_snapshot_read(&mut self, expected: &SnapshotInfo) {
        self.snapshot_cursor = 0;
        self.read_verified = false;
        self.reading = Some((SnapshotStream::default(), expected.clone()));
    }

    /// Whether the last snapshot read reached its end and matched its record.
    pub fn snapshot_read_verified(&self) -> bool {
        self.read_verified
    }

    pub fn write_snapshot_chunk(&mut self, chunk: &[u8]) -> Result<(), StorageError> {
        self.conn
            .prepare_cached("INSERT INTO snapshot_chunks (bytes) VALUES (?1)")
            .and_then(|mut s| s.execute([chunk]))
            .map_err(unavailable)?;
        if let Some(stream) = &mut self.writing {
            stream.hasher.update(chunk);
            stream.bytes += chunk.len() as u64;
            stream.chunks += 1;
        }
        Ok(())
    }

    /// The next chunk of the stored snapshot. While a checked read is under way
    /// (`start_snapshot_read`), the last chunk the record announces is handed over only if
    /// every byte so far matches the record's size and SHA-256, and the end only if no
    /// chunk follows it: a plugin never finishes loading a snapshot that is not the one
    /// recorded.
    pub fn read_snapshot_chunk(&mut self) -> Result<Option<Vec<u8>>, StorageError> {
        let next = self.next_snapshot_chunk()?;
        let Some((stream, expected)) = &mut self.reading else {
            return Ok(next);
        };
        let refuse = |what: String| {
            Err(StorageError::Corrupt(format!(
                "the snapshot does not match its record: {what}"
            )))
        };
        match next {
            Some(bytes) => {
                stream.hasher.update(&bytes);
                stream.bytes += bytes.len() as u64;
                stream.chunks += 1;
                if stream.chunks > expected.chunks || stream.bytes > expected.bytes {
                    self.reading = None;
                    return refuse("it is longer than recorded".into());
                }
                if stream.chunks == expected.chunks {
                    let sha256 = hex::encode(std::mem::take(&mut stream.hasher).finalize());
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
                let (stream, expected) = self.reading.take().expect("checked above");
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

    fn next_snapshot_chunk(&mut self) -> Result<Option<Vec<u8>>, StorageError> {
        let next: Option<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached(
                "SELECT seq, bytes FROM snapshot_chunks WHERE seq > ?1 ORDER BY seq LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row([self.snapshot_cursor], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(unavailable)?;
        Ok(next.map(|(seq, bytes)| {
            self.snapshot_cursor = seq;
            bytes
        }))
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StorageError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(unavailable)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StorageError> {
        self.conn
            .execute("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2", [key, value])
            .map(|_| ())
            .map_err(unavailable)
    }

    /// The highest event sequence number, 0 when empty.
    pub fn last_seq(&self) -> Result<i64, StorageError> {
        self.conn
            .query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))
            .map_err(unavailable)
    }

    /// Whether an event with this sequence number is stored.
    pub fn seq_exists(&self, seq: i64) -> Result<bool, StorageError> {
        self.conn
            .query_row("SELECT 1 FROM events WHERE seq = ?1", [seq], |_| Ok(()))
            .optional()
            .map(|found| found.is_some())
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
        connection_type: text_column(row, 7)?,
        code: row.get(8)?,
        ip: optional_text_column(row, 9)?,
        user_agent: optional_text_column(row, 10)?,
        user_id: optional_uuid_column(row, 11)?,
        slug_or_port: optional_text_column(row, 12)?,
        connection_id: optional_uuid_column(row, 13)?,
        disconnect_reason: optional_text_column(row, 14)?,
        status: if row.get::<_, bool>(15)? {
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

fn uuid_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Uuid> {
    optional_uuid_column(row, index)?.ok_or(rusqlite::Error::InvalidColumnType(
        index,
        "a UUID".into(),
        rusqlite::types::Type::Null,
    ))
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
    optional_text_column(row, index)?.ok_or(rusqlite::Error::InvalidColumnType(
        index,
        "text".into(),
        rusqlite::types::Type::Null,
    ))
}

fn optional_text_column<'r>(row: &'r Row<'_>, index: usize) -> rusqlite::Result<Option<&'r str>> {
    row.get_ref(index)?
        .as_str_or_null()
        .map_err(|e| conversion_failure(index, rusqlite::types::Type::Text, e))
}

fn unavailable(e: rusqlite::Error) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

fn corrupt(e: rusqlite::Error) -> StorageError {
    StorageError::Corrupt(e.to_string())
}
