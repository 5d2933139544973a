//! The SQLite journal behind the WIT `journal` interface.
//!
//! Durability: WAL mode with `synchronous=FULL`, so a committed transaction has been
//! fsynced before `commit` returns; callers acknowledge events only after that.
//! `secure_delete` overwrites deleted content, so purged rows leave no data in the file.

use std::path::{Path, PathBuf};

use anyhow::Context;
use connlog_guest::model::{
    ConnectionEvent, ConnectionStatus, RowOrigin, SessionKey, StorageError, Uuid,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

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

pub struct Journal {
    conn: Connection,
    path: PathBuf,
    /// Position of the next snapshot chunk to read.
    snapshot_cursor: i64,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`, and checks that it is one.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path)
            .with_context(|| format!("opening the store {}", path.display()))?;
        let journal = Self {
            conn,
            path: path.to_path_buf(),
            snapshot_cursor: 0,
        };
        journal
            .initialise()
            .with_context(|| format!("the store {} cannot be used", path.display()))?;
        Ok(journal)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn initialise(&self) -> anyhow::Result<()> {
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
        let check: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        anyhow::ensure!(check == "ok", "the SQLite file is damaged: {check}");
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
                        event_from_row,
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
        Ok(deleted)
    }

    /// Streams every event to `sink` in batches of `batch_size`: web and tunnel events in
    /// arrival order, then sessions, each session's events together (what `replay` is
    /// fastest with).
    pub fn for_each_batch(
        &self,
        batch_size: usize,
        sink: &mut dyn FnMut(Vec<ConnectionEvent>) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        let mut total = 0u64;
        let queries = [
            format!("SELECT {EVENT_COLUMNS} FROM events WHERE connection_id IS NULL ORDER BY seq"),
            format!(
                "SELECT {EVENT_COLUMNS} FROM events INDEXED BY events_by_session WHERE connection_id IS NOT NULL \
                 ORDER BY connection_id, workspace_id, agent_name"
            ),
        ];
        for sql in queries {
            let mut stmt = self.conn.prepare(&sql)?;
            let mut rows = stmt.query([])?;
            let mut batch = Vec::with_capacity(batch_size);
            let mut last_key: Option<SessionKey> = None;
            while let Some(row) = rows.next()? {
                let event = event_from_row(row)
                    .map_err(|e| anyhow::anyhow!("decoding a stored event: {e}"))?;
                let key = session_key(&event);
                // Keep a session's events in one batch so the plugin can fold them at once.
                if batch.len() >= batch_size && (key.is_none() || key != last_key) {
                    total += batch.len() as u64;
                    sink(std::mem::replace(
                        &mut batch,
                        Vec::with_capacity(batch_size),
                    ))?;
                }
                last_key = key;
                batch.push(event);
            }
            if !batch.is_empty() {
                total += batch.len() as u64;
                sink(batch)?;
            }
        }
        Ok(total)
    }

    // ---- snapshots --------------------------------------------------------------------

    pub fn clear_snapshot(&mut self) -> Result<(), StorageError> {
        self.conn
            .execute("DELETE FROM snapshot_chunks", [])
            .map_err(unavailable)?;
        self.conn
            .execute("DELETE FROM meta WHERE key LIKE 'snapshot.%'", [])
            .map_err(unavailable)?;
        Ok(())
    }

    pub fn write_snapshot_chunk(&mut self, chunk: &[u8]) -> Result<(), StorageError> {
        self.conn
            .prepare_cached("INSERT INTO snapshot_chunks (bytes) VALUES (?1)")
            .and_then(|mut s| s.execute([chunk]))
            .map(|_| ())
            .map_err(unavailable)
    }

    pub fn rewind_snapshot(&mut self) {
        self.snapshot_cursor = 0;
    }

    pub fn read_snapshot_chunk(&mut self) -> Result<Option<Vec<u8>>, StorageError> {
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
}

fn session_key(e: &ConnectionEvent) -> Option<SessionKey> {
    e.connection_id.map(|connection_id| SessionKey {
        connection_id,
        workspace_id: e.workspace_id,
        agent_name: e.agent_name.clone(),
    })
}

fn uuid_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Uuid> {
    let bytes: Vec<u8> = row.get(index)?;
    Uuid::from_slice(&bytes).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Blob, Box::new(e))
    })
}

fn optional_uuid_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Uuid>> {
    let value: Option<Vec<u8>> = row.get(index)?;
    value
        .map(|bytes| {
            Uuid::from_slice(&bytes).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    index,
                    rusqlite::types::Type::Blob,
                    Box::new(e),
                )
            })
        })
        .transpose()
}

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<ConnectionEvent> {
    Ok(ConnectionEvent {
        id: uuid_column(row, 0)?,
        time: row.get(1)?,
        organization_id: uuid_column(row, 2)?,
        workspace_owner_id: uuid_column(row, 3)?,
        workspace_id: uuid_column(row, 4)?,
        workspace_name: row.get(5)?,
        agent_name: row.get(6)?,
        connection_type: row.get(7)?,
        code: row.get(8)?,
        ip: row.get(9)?,
        user_agent: row.get(10)?,
        user_id: optional_uuid_column(row, 11)?,
        slug_or_port: row.get(12)?,
        connection_id: optional_uuid_column(row, 13)?,
        disconnect_reason: row.get(14)?,
        status: if row.get::<_, bool>(15)? {
            ConnectionStatus::Disconnected
        } else {
            ConnectionStatus::Connected
        },
    })
}

fn unavailable(e: rusqlite::Error) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

fn corrupt(e: rusqlite::Error) -> StorageError {
    StorageError::Corrupt(e.to_string())
}
