//! How fast the command line answers on a big store: `connlog query` through a running
//! `connlog serve` (the command runs in the server, over the local channel), against the
//! same command alone (it opens the store and starts from the snapshot).
//!
//! `cargo bench -p connlog --bench cli` (`CONNLOG_BENCH_ROWS=1000000,10000000` for other
//! sizes, `CONNLOG_BENCH_DIR` for where the store goes). Each figure is the wall time of
//! the whole `connlog` process, as an operator sees it.

mod support;

use support::connlog;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const QUERIES: [&str; 3] = ["", "method:ssh status:completed", "workspace_owner:admin"];
const RUNS: usize = 5;

fn main() {
    support::for_each_size(run);
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
    let events = support::fill_store(data, rows);
    println!(
        "journal written: {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let (mut server, _) = support::serve(data);
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
