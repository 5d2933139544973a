//! How fast the command line answers on a big store: `connlog query` through a running
//! `connlog serve` (the command runs in the server, over the local channel), against the
//! same command alone (it opens the store and starts from the snapshot).
//!
//! `cargo bench -p connlog --bench cli` (`CONNLOG_BENCH_ROWS=1000000,10000000` for other
//! sizes, `CONNLOG_BENCH_DIR` for where the store goes). Each figure is the wall time of
//! the whole `connlog` process, as an operator sees it.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use connlog::service::store_path;
use connlog::store::Journal;

const QUERIES: [&str; 3] = ["", "method:ssh status:completed", "workspace_owner:admin"];
const RUNS: usize = 5;

fn main() {
    support::for_each_size(run);
}

fn connlog(data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_connlog"));
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

/// Runs `connlog query` and returns its wall time.
fn query(data: &Path, q: &str) -> Duration {
    let started = Instant::now();
    let out = connlog(data)
        .args(["query", "--as", "admin", "--limit", "25", "-q", q])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "connlog query failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn run(data: &Path, rows: u64) {
    println!("== {rows} rows ==");
    let started = Instant::now();
    let mut journal = Journal::open(&store_path(data)).unwrap();
    let events = support::fill(&mut journal, 0, rows);
    journal.checkpoint_truncate().unwrap();
    drop(journal);
    // `admin` is a site owner: it sees every row.
    std::fs::write(data.join("directory.json"), DIRECTORY).unwrap();
    println!(
        "journal written: {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let mut server = connlog(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on "), "{line:?}");
    println!(
        "serve: first start (full replay, compile): {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for q in QUERIES {
        let times: Vec<Duration> = (0..RUNS).map(|_| query(data, q)).collect();
        println!(
            "query through the server, q={q:?}: median {} (min {}, max {})",
            millis(median(times.clone())),
            millis(*times.iter().min().unwrap()),
            millis(*times.iter().max().unwrap())
        );
    }
    let started = Instant::now();
    let stopped = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    server.wait().unwrap();
    println!(
        "serve: clean stop (writes the snapshot): {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for q in QUERIES {
        let times: Vec<Duration> = (0..2).map(|_| query(data, q)).collect();
        println!(
            "query alone (starts from the snapshot), q={q:?}: median {} (min {}, max {})",
            millis(median(times.clone())),
            millis(*times.iter().min().unwrap()),
            millis(*times.iter().max().unwrap())
        );
    }
}

const DIRECTORY: &str = r#"{"organizations":[],"users":[{"id":"fe8f4bab-3128-41f1-8fec-1cc0755affe5","username":"admin","email":"admin@example.com","name":"","avatar_url":"","status":"active","login_type":"password","created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z","last_seen_at":"2025-07-01T00:00:00Z","deleted":false,"roles":["owner"],"organization_roles":{}}],"api_tokens":[]}"#;
