//! Replicas on PostgreSQL at large sizes: `cargo bench -p connlog --bench replica` (set
//! `CONNLOG_BENCH_ROWS=1000000,10000000` for other sizes).
//!
//! For each size it writes an embedded store directly (as the restart bench does), moves
//! it into a private PostgreSQL cluster with `connlog migrate`, then times, through the
//! real binary: a new replica's start with no shared snapshot (copy + full replay), its
//! clean stop (which writes a snapshot and shares it), a second new replica's start from
//! that snapshot, and that replica's restart after a clean stop. Every replica must serve
//! every row.

// The tests' private cluster; the bench uses only part of it.
#[allow(dead_code)]
#[path = "../tests/support/postgres.rs"]
mod private_postgres;
mod support;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use support::{connlog, fill_store, secs, serve_with, succeed};

fn main() {
    support::for_each_size(run);
}

fn run(dir: &Path, rows: u64) {
    println!("== {rows} rows ==");
    let source = dir.join("source");
    std::fs::create_dir_all(&source).unwrap();
    let events = fill_store(&source, rows);
    println!("{events} events in an embedded store");
    let cluster = private_postgres::PrivateCluster::start();
    let url = cluster.create_database("bench");

    let started = Instant::now();
    succeed(connlog(&source).args(["migrate", "--to", &url]));
    println!("connlog migrate: {}", secs(started.elapsed()));

    let first = dir.join("first");
    let (replica, took) = start(&first, &url, rows);
    println!(
        "new replica, no shared snapshot: serving after {}",
        secs(took)
    );
    println!(
        "  its clean stop (snapshot written and shared): {}",
        secs(stop(replica))
    );

    let second = dir.join("second");
    let (replica, took) = start(&second, &url, rows);
    println!(
        "new replica from the shared snapshot: serving after {}",
        secs(took)
    );
    stop(replica);
    let (replica, took) = start(&second, &url, rows);
    println!(
        "that replica restarted after a clean stop: serving after {}",
        secs(took)
    );
    stop(replica);
}

/// Starts a replica over `data` and waits until it serves; checks it holds `rows` rows.
fn start(data: &Path, url: &str, rows: u64) -> (Child, Duration) {
    std::fs::create_dir_all(data).unwrap();
    let started = Instant::now();
    let (child, base) = serve_with(data, &["--store", url]);
    let took = started.elapsed();
    let metrics = ureq_get(&format!("{base}/metrics"));
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing"))
            .to_owned()
    };
    assert_eq!(value("connlog_rows"), rows.to_string());
    println!(
        "  (from a snapshot: {}; events replayed: {})",
        value("connlog_bring_up_from_snapshot") == "1",
        value("connlog_bring_up_events_replayed")
    );
    (child, took)
}

/// SIGTERM, and the time until the process is gone.
fn stop(mut child: Child) -> Duration {
    let started = Instant::now();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    assert!(child.wait().unwrap().success());
    started.elapsed()
}

fn ureq_get(url: &str) -> String {
    ureq::get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .body_mut()
        .read_to_string()
        .unwrap()
}
