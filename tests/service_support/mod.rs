//! Helpers for the tests that drive `ConnLog` in process (durability, faults, swap): a
//! service over a temporary data directory, events with unique marker strings, and a set
//! of queries whose answers must survive any restart.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Duration;

use connlog::directory::Directory;
use connlog::events::Line;
use connlog::ingest::ReadLine;
use connlog::model::{
    Actor, ConnectionEvent, ConnectionMethod, ConnectionStatus, EventOutcome, LogFields,
    QueryError, QueryRequest, Uuid,
};
use connlog::plugin::{Clock, ComponentCache, Limits, NoServiceLog, PluginSource, PluginSpec};
use connlog::service::{ConnLog, ServiceConfig, SnapshotPolicy};

use crate::support::{ADMIN, ORG, OTHER_ORG, directory_json};

/// 2025-07-01T00:00:00Z.
pub const T0: i64 = 1_751_328_000_000_000_000;
pub const HOUR: i64 = 3_600_000_000_000;

/// A shared compile cache, so that each test does not run Cranelift again.
pub fn cache_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join("connlog-test-cache");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn directory() -> Arc<Directory> {
    Arc::new(Directory::from_json(&directory_json(), Path::new("directory.json")).unwrap())
}

pub fn config(data: &Path, plugin: PluginSource) -> ServiceConfig {
    ServiceConfig {
        data_dir: data.to_path_buf(),
        plugin: PluginSpec::plain(plugin),
        directory: directory(),
        limits: Limits::default(),
        log_formats: Vec::new(),
        log_fields: LogFields::Current,
        service_log: Arc::new(NoServiceLog),
        retention: Duration::ZERO,
        cache: Some(ComponentCache::new(cache_dir())),
        clock: Clock::Fixed(T0 + 1000 * HOUR),
    }
}

/// Snapshots only when a test asks for one (and the rewrite after a purge, which keeps
/// purged rows off the disk).
pub const NO_SNAPSHOTS: SnapshotPolicy = SnapshotPolicy {
    every_events: 0,
    on_close_min_events: 0,
    rewrite_after_purge: true,
    pause: Duration::ZERO,
};

/// No snapshot at all, not even after a purge: what a crash before the background rewrite
/// leaves on disk.
pub const NO_REWRITE: SnapshotPolicy = SnapshotPolicy {
    every_events: 0,
    on_close_min_events: 0,
    rewrite_after_purge: false,
    pause: Duration::ZERO,
};

pub fn open(data: &Path, plugin: PluginSource) -> ConnLog {
    open_with(config(data, plugin))
}

pub fn open_with(config: ServiceConfig) -> ConnLog {
    let mut service = ConnLog::open(config).expect("the service opens");
    service.set_snapshot_policy(NO_SNAPSHOTS);
    service
}

pub fn faulty_plugin() -> PluginSource {
    PluginSource::File(connlog_test_plugins::FAULTY_PLUGIN.into())
}

pub fn id(kind: u64, n: u64) -> Uuid {
    Uuid::from_u64_pair(
        0x5eed_0000_0000_4000 | (kind << 20),
        0x8000_0000_0000_0000 | n,
    )
}

/// A web event: one row of its own. `tag` ends up in the workspace name and user agent.
pub fn web_event(n: u64, time: i64, tag: &str) -> ConnectionEvent {
    ConnectionEvent {
        id: id(1, n),
        time,
        organization_id: if n.is_multiple_of(3) { OTHER_ORG } else { ORG }
            .parse()
            .unwrap(),
        workspace_owner_id: ADMIN.parse().unwrap(),
        workspace_id: id(2, n % 7),
        workspace_name: format!("{tag}-ws-{n}"),
        agent_name: "main".into(),
        connection_method: if n.is_multiple_of(2) {
            ConnectionMethod::WorkspaceApp
        } else {
            ConnectionMethod::PortForwarding
        },
        code: Some(200 + (n % 5) as i32),
        ip: Some(format!("10.1.{}.{}", n / 256 % 256, n % 256)),
        user_agent: Some(format!("{tag}-agent-{n}")),
        user_id: Some(ADMIN.parse().unwrap()),
        app_name_or_port: Some(format!("app{}", n % 4)),
        connection_id: None,
        disconnect_reason: None,
        client_session_id: None,
        status: ConnectionStatus::Connected,
    }
}

/// The app of ssh session `n`: none, a VS Code fork, a JetBrains IDE, or one of no family.
const SESSION_APPS: [Option<&str>; 4] = [None, Some("cursor"), Some("goland"), Some("zed")];

/// The connect and disconnect of ssh session `n` (every fifth a web terminal); some carry a
/// client session id, shared by neighbouring sessions as one client's connections are.
pub fn session_events(n: u64, time: i64, tag: &str) -> [ConnectionEvent; 2] {
    let connect = ConnectionEvent {
        id: id(3, n),
        time,
        organization_id: ORG.parse().unwrap(),
        workspace_owner_id: ADMIN.parse().unwrap(),
        workspace_id: id(2, n % 7),
        workspace_name: format!("{tag}-ws-{n}"),
        agent_name: "main".into(),
        connection_method: if n.is_multiple_of(5) {
            ConnectionMethod::ReconnectingPty
        } else {
            ConnectionMethod::Ssh
        },
        code: None,
        ip: Some("127.0.0.1".into()),
        user_agent: None,
        user_id: None,
        app_name_or_port: SESSION_APPS[(n % 4) as usize].map(str::to_owned),
        connection_id: Some(id(4, n)),
        disconnect_reason: None,
        client_session_id: n.is_multiple_of(3).then(|| format!("{:032x}", n / 12)),
        status: ConnectionStatus::Connected,
    };
    let disconnect = ConnectionEvent {
        id: id(5, n),
        time: time + HOUR / 2,
        code: Some((n % 3) as i32),
        disconnect_reason: Some(format!("{tag}-reason-{n}")),
        status: ConnectionStatus::Disconnected,
        ..connect.clone()
    };
    [connect, disconnect]
}

/// `count` rows' worth of events from `first` on, mixed: web rows, and sessions whose
/// connect and disconnect are far apart in the list (so they land in different batches).
pub fn mixed_events(first: u64, count: u64, tag: &str) -> Vec<ConnectionEvent> {
    let mut connects = Vec::new();
    let mut disconnects = Vec::new();
    for n in first..first + count {
        let time = T0 + (n as i64) * 60_000_000_000;
        if n.is_multiple_of(2) {
            connects.push(web_event(n, time, tag));
        } else {
            let [c, d] = session_events(n, time, tag);
            connects.push(c);
            // Every fourth session stays ongoing.
            if n % 4 != 1 {
                disconnects.push(d);
            }
        }
    }
    connects.extend(disconnects);
    connects
}

/// Ingests in batches of `batch`; every event must be stored or a duplicate.
pub fn ingest_all(service: &mut ConnLog, events: Vec<ConnectionEvent>, batch: usize) {
    for chunk in events.chunks(batch) {
        let outcomes = service.ingest(chunk.to_vec()).expect("ingest");
        for outcome in outcomes {
            assert!(
                matches!(outcome, EventOutcome::Stored | EventOutcome::Duplicate),
                "{outcome:?}"
            );
        }
    }
}

/// A closed channel holding `events` as lines 1, 2, …: a reader that is ahead of the store
/// (`ingest::ingest_live`), its position the line number.
pub fn read_ahead(events: Vec<ConnectionEvent>) -> Receiver<ReadLine<u64>> {
    let (tx, rx) = sync_channel(events.len());
    for (line, event) in (1..).zip(events) {
        tx.send(ReadLine {
            line: Ok(Line::Event { line, event }),
            end: line,
        })
        .expect("the channel holds them all");
    }
    rx
}

pub fn owner() -> Actor {
    directory().actor_for("admin").unwrap()
}

/// Coder's response body for one query as the owner.
pub fn query(service: &mut ConnLog, q: &str, limit: u32, offset: u32) -> String {
    service
        .api_page(
            owner(),
            QueryRequest {
                q: q.into(),
                limit,
                offset,
            },
        )
        .expect("the api-page call")
        .unwrap_or_else(|e: QueryError| panic!("query {q:?} refused: {e:?}"))
}

/// How many rows the owner sees.
pub fn row_count(service: &mut ConnLog) -> u64 {
    let body: serde_json::Value = serde_json::from_str(&query(service, "", 1, 0)).unwrap();
    body["count"].as_u64().unwrap()
}

/// The answers that must be identical before and after any restart or swap: several
/// filters, pages deep into the result, and every row through paging.
pub fn answers(service: &mut ConnLog) -> Vec<String> {
    let mut out = Vec::new();
    for (q, limit, offset) in [
        ("", 0, 0),
        ("", 25, 40),
        ("method:ssh", 10, 3),
        ("app:cursor,goland status:completed", 20, 1),
        ("type:vscode", 10, 0),
        ("status:ongoing", 50, 0),
        ("status:completed", 50, 10),
        ("organization:other", 20, 0),
        ("workspace_owner:admin method:port_forwarding", 15, 5),
        (
            "connected_after:\"2025-07-01T05:00:00Z\" connected_before:\"2025-07-02T00:00:00Z\"",
            30,
            2,
        ),
    ] {
        out.push(query(service, q, limit, offset));
    }
    let total = row_count(service);
    let mut offset = 0;
    while offset < total {
        out.push(query(service, "", 1000, offset as u32));
        offset += 1000;
    }
    out
}

/// Appends events to the journal behind the service's back, as another writer would: a
/// second SQLite connection inserting rows in the stored column format (`Journal::append`'s
/// encoding). Returns the sequence numbers they got.
pub fn foreign_append(data: &Path, events: &[ConnectionEvent]) -> Vec<i64> {
    let conn = rusqlite::Connection::open(connlog::service::store_path(data)).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut seqs = Vec::new();
    for e in events {
        insert_stored_event(&conn, e);
        seqs.push(conn.last_insert_rowid());
    }
    conn.execute_batch("COMMIT").unwrap();
    seqs
}

/// One event as the journal stores it (schema version 3), in whatever `events` table
/// `conn` has.
pub fn insert_stored_event(conn: &rusqlite::Connection, e: &ConnectionEvent) {
    conn.execute(
        "INSERT INTO events (id, time_ns, organization_id, workspace_owner_id, workspace_id, \
         workspace_name, agent_name, connection_method, code, ip, user_agent, user_id, \
         app_name_or_port, connection_id, disconnect_reason, client_session_id, disconnected) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        rusqlite::params![
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
        ],
    )
    .unwrap();
}

/// One event as schema versions 1 and 2 stored it: a `connection_type` and a
/// `slug_or_port`, as connlog's earlier contract spoke them (an SSH app as the type).
pub fn insert_old_layout_event(conn: &rusqlite::Connection, e: &ConnectionEvent) {
    let (connection_type, slug) =
        connlog_vocabulary::downgrade(e.connection_method, e.app_name_or_port.as_deref());
    insert_old_layout_row(conn, e, connection_type, slug);
}

/// `e` stored in the old layout with the given `connection_type` and `slug_or_port` (its
/// own method, app and client session id are not written).
pub fn insert_old_layout_row(
    conn: &rusqlite::Connection,
    e: &ConnectionEvent,
    connection_type: &str,
    slug_or_port: Option<&str>,
) {
    conn.execute(
        "INSERT INTO events (id, time_ns, organization_id, workspace_owner_id, workspace_id, \
         workspace_name, agent_name, connection_type, code, ip, user_agent, user_id, \
         slug_or_port, connection_id, disconnect_reason, disconnected) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        rusqlite::params![
            e.id.as_bytes(),
            e.time,
            e.organization_id.as_bytes(),
            e.workspace_owner_id.as_bytes(),
            e.workspace_id.as_bytes(),
            e.workspace_name,
            e.agent_name,
            connection_type,
            e.code,
            e.ip,
            e.user_agent,
            e.user_id.as_ref().map(Uuid::as_bytes),
            slug_or_port,
            e.connection_id.as_ref().map(Uuid::as_bytes),
            e.disconnect_reason,
            e.status == ConnectionStatus::Disconnected,
        ],
    )
    .unwrap();
}

/// What a store of the old layout can hold of `e`: the method and app through the old
/// type and back (migration 000614), and no client session id.
pub fn as_old_layout_holds(e: &ConnectionEvent) -> ConnectionEvent {
    let (connection_type, slug) =
        connlog_vocabulary::downgrade(e.connection_method, e.app_name_or_port.as_deref());
    let (method, app) = connlog_vocabulary::upgrade(connection_type, slug);
    ConnectionEvent {
        connection_method: method,
        app_name_or_port: app.map(str::to_owned),
        client_session_id: None,
        ..e.clone()
    }
}

/// The snapshot files in the data directory (finished or not).
pub fn snapshot_files(data: &Path) -> Vec<std::path::PathBuf> {
    let dir = data.join(connlog::store::snapshot_file::DIR);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// Every byte the service keeps on disk: every file in the data directory and in its
/// snapshot folder.
pub fn disk_bytes(data: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut dirs = vec![data.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(more) = std::fs::read(&path) {
                bytes.extend(more);
            }
        }
    }
    bytes
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Forgets the snapshot record, so that the next start replays the whole journal.
pub fn forget_snapshot_record(data: &Path) {
    let conn = rusqlite::Connection::open(connlog::service::store_path(data)).unwrap();
    conn.execute("DELETE FROM meta WHERE key LIKE 'snapshot.%'", [])
        .unwrap();
}

/// The service's last bring-up replayed the whole journal, for a reason containing
/// `reason_contains`.
pub fn assert_full_replay(service: &ConnLog, reason_contains: &str) {
    match &service.last_restore().source {
        connlog::service::RestoreSource::FullReplay { reason } => assert!(
            reason.contains(reason_contains),
            "full replay for an unexpected reason: {reason}"
        ),
        other => panic!("expected a full replay, got {other:?}"),
    }
}
