//! A large journal, written directly through the store: what the benches start from.
//! Half the rows are web rows (one event), half ssh sessions (a connect and a disconnect),
//! over 3 organizations, 500 owners and 5,000 workspaces, one second apart.

#![allow(dead_code)]

use connlog::model::{ConnectionEvent, ConnectionMethod, ConnectionStatus, Uuid};
use connlog::store::Journal;

pub const T0: i64 = 1_750_000_000_000_000_000;
/// Rows per transaction while filling.
const BATCH: usize = 100_000;

pub fn uuid(kind: u64, n: u64) -> Uuid {
    Uuid::from_u64_pair(
        0x1000_0000_0000_4000 | kind << 48,
        0x8000_0000_0000_0000 | n,
    )
}

/// Row `n`, one second after row `n - 1`.
pub fn row_events(n: u64) -> Vec<ConnectionEvent> {
    row_events_at(n, T0 + (n as i64) * 1_000_000_000)
}

/// Row `n` at `time`: even rows are web rows (one event), odd rows ssh sessions (two
/// events, the disconnect ten minutes later).
pub fn row_events_at(n: u64, time: i64) -> Vec<ConnectionEvent> {
    let org = uuid(1, n % 3);
    let owner = uuid(2, n % 500);
    let workspace = uuid(3, n % 5_000);
    let base = ConnectionEvent {
        id: uuid(4, n),
        time,
        organization_id: org,
        workspace_owner_id: owner,
        workspace_id: workspace,
        workspace_name: format!("ws-{}", n % 5_000),
        agent_name: "main".into(),
        connection_method: ConnectionMethod::WorkspaceApp,
        code: Some(200),
        ip: Some(format!("10.0.{}.{}", (n >> 8) % 256, n % 256)),
        user_agent: Some("Mozilla/5.0".into()),
        user_id: Some(owner),
        app_name_or_port: Some("code-server".into()),
        connection_id: None,
        disconnect_reason: None,
        client_session_id: None,
        status: ConnectionStatus::Connected,
    };
    if n.is_multiple_of(2) {
        return vec![base];
    }
    let connect = ConnectionEvent {
        connection_method: ConnectionMethod::Ssh,
        code: None,
        user_agent: None,
        user_id: None,
        app_name_or_port: None,
        connection_id: Some(uuid(5, n)),
        ..base
    };
    let disconnect = ConnectionEvent {
        id: uuid(6, n),
        time: time + 600_000_000_000,
        code: Some(0),
        disconnect_reason: Some("client closed".into()),
        status: ConnectionStatus::Disconnected,
        ..connect.clone()
    };
    vec![connect, disconnect]
}

pub fn fill(journal: &mut Journal, from: u64, to: u64) -> u64 {
    let mut events = 0;
    let mut n = from;
    while n < to {
        let end = (n + BATCH as u64).min(to);
        let batch: Vec<ConnectionEvent> = (n..end).flat_map(row_events).collect();
        journal.begin().unwrap();
        journal.append(&batch).unwrap();
        journal.commit().unwrap();
        events += batch.len() as u64;
        n = end;
    }
    events
}

/// Runs `run` once per size in `CONNLOG_BENCH_ROWS` (default 1M; `1000000,10000000` for
/// both), each in a fresh temporary directory under `CONNLOG_BENCH_DIR` if set.
pub fn for_each_size(mut run: impl FnMut(&std::path::Path, u64)) {
    let sizes: Vec<u64> = std::env::var("CONNLOG_BENCH_ROWS")
        .unwrap_or_else(|_| "1000000".into())
        .split(',')
        .map(|s| s.trim().replace('_', "").parse().expect("row counts"))
        .collect();
    let base = std::env::var_os("CONNLOG_BENCH_DIR").map(std::path::PathBuf::from);
    for rows in sizes {
        let dir = match &base {
            Some(b) => tempfile::tempdir_in(b),
            None => tempfile::tempdir(),
        }
        .unwrap();
        run(dir.path(), rows);
    }
}
