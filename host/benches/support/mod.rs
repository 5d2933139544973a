//! A large journal, written directly through the store: what the benches start from.
//! Half the rows are web rows (one event), half ssh sessions (a connect and a disconnect),
//! over 3 organizations, 500 owners and 5,000 workspaces, one second apart.

#![allow(dead_code)]

pub mod peer;

use std::sync::Arc;
use std::time::Duration;

use connlog::directory::Directory;
use connlog::model::{ConnectionEvent, ConnectionMethod, ConnectionStatus, LogFields, Uuid};
use connlog::plugin::{
    Clock, ComponentCache, Embedded, Limits, NoServiceLog, PluginSource, PluginSpec,
};
use connlog::service::ServiceConfig;
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
        journal.insert(&batch).unwrap();
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

/// `connlog` over `data`, with room for a big store and the compile cache inside `data`.
pub fn connlog(data: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_connlog"));
    command
        .arg("--data")
        .arg(data)
        .arg("--plugin-memory-mib")
        .arg("4000")
        .env("CONNLOG_CACHE_DIR", data.join(".cache"))
        .env_remove("CODER_CONNECTION_LOGS_RETENTION")
        .env_remove("CONNLOG_DATA");
    command
}

/// `connlog serve` over `data` on a free loopback port, once it listens: the process and
/// its base URL (`http://127.0.0.1:PORT`).
pub fn serve(data: &std::path::Path) -> (std::process::Child, String) {
    serve_with(data, &[])
}

/// `serve` with more arguments after `serve`.
pub fn serve_with(data: &std::path::Path, serve_args: &[&str]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = connlog(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(serve_args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned();
    (child, base)
}

/// A store of `rows` rows and a directory whose one user, `admin`, is a site owner (who
/// sees every row). Returns how many events were written.
pub fn fill_store(data: &std::path::Path, rows: u64) -> u64 {
    let mut journal = Journal::open(&connlog::service::store_path(data)).unwrap();
    let events = fill(&mut journal, 0, rows);
    journal.checkpoint_truncate().unwrap();
    drop(journal);
    write_admin_directory(data);
    events
}

/// A directory whose one user, `admin`, is a site owner.
pub fn write_admin_directory(data: &std::path::Path) {
    std::fs::write(data.join("directory.json"), ADMIN_DIRECTORY).unwrap();
}

/// A new API token of `admin`.
pub fn admin_token(data: &std::path::Path) -> String {
    let out = succeed(connlog(data).args(["token", "create", "--user", "admin"]));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs `command`, which must succeed (its stderr is the failure's message).
pub fn succeed(command: &mut std::process::Command) -> std::process::Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

const ADMIN_DIRECTORY: &str = r#"{"organizations":[],"users":[{"id":"fe8f4bab-3128-41f1-8fec-1cc0755affe5","username":"admin","email":"admin@example.com","name":"","avatar_url":"","status":"active","login_type":"password","created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z","last_seen_at":"2025-07-01T00:00:00Z","deleted":false,"roles":["owner"],"organization_roles":{}}],"api_tokens":[]}"#;

/// An embedded service on the reference plugin, with room for 10M rows (4 GiB, calls of up
/// to 10 minutes) and compiled components kept in `cache`.
pub fn service_config(
    data: &std::path::Path,
    cache: &std::path::Path,
    retention: Duration,
    clock: Clock,
) -> ServiceConfig {
    ServiceConfig {
        data_dir: data.to_path_buf(),
        plugin: PluginSpec::plain(PluginSource::Embedded(Embedded::Reference)),
        directory: Arc::new(Directory::new()),
        limits: Limits {
            memory_bytes: 4 << 30,
            call_deadline: Duration::from_secs(600),
            ..Limits::default()
        },
        log_formats: Vec::new(),
        log_fields: LogFields::Current,
        service_log: Arc::new(NoServiceLog),
        retention,
        cache: Some(ComponentCache::new(cache.to_path_buf())),
        clock,
    }
}

/// A duration as the benches print it.
pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Bytes in MiB, as the benches print sizes.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}
