//! Durable ingest against a raw import of the same events, side by side in one run.
//!
//! `cargo bench -p connlog --bench ingest` (`CONNLOG_BENCH_ROWS=1000000,10000000` for other
//! sizes, `CONNLOG_BENCH_DIR` for where the files go). For each size it writes the
//! peer-shaped events (`support::peer`) once as event NDJSON and once as CSV, then times:
//! - the `sqlite3` shell importing the CSV into one table with a unique `id` index, in WAL
//!   mode with `synchronous=FULL` (the bar: a raw import of the same events);
//! - `connlog ingest FILE` into an empty store;
//! - `connlog serve` taking the same lines over HTTP from 4 concurrent clients, in
//!   requests of 1,000 lines, each acknowledged only once durable;
//! - the same into a replica on PostgreSQL (`serve --store`, a private cluster started by
//!   the bench), where durable means committed in PostgreSQL as well.
//!
//! Each is a whole process's wall time, start to exit (for the HTTP run, first request to
//! last answer; the plugin is compiled before either), and is printed as events/s and as a
//! ratio to the raw import. After each HTTP run the bench prints the plugin's memory per
//! row as `/metrics` then shows it (its own estimate and its whole linear memory): the
//! issue's data set measured in the guest.

// The tests' private cluster; the bench uses only part of it.
#[allow(dead_code)]
#[path = "../tests/support/postgres.rs"]
mod private_postgres;
mod support;

use support::{connlog, peer};

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use connlog::events::event_to_line;

const CLIENTS: usize = 4;
const LINES_PER_REQUEST: usize = 1_000;

fn main() {
    support::for_each_size(run);
}

fn run(dir: &Path, rows: u64) {
    println!("== {rows} rows ==");
    let ndjson = dir.join("events.ndjson");
    let csv = dir.join("events.csv");
    let events = write_inputs(rows, &ndjson, &csv);
    println!(
        "{events} events ({:.2} per row); NDJSON {} MiB, CSV {} MiB",
        events as f64 / rows as f64,
        mib(&ndjson),
        mib(&csv)
    );

    let raw = raw_import(&dir.join("raw"), &csv);
    report("sqlite3 .import (the bar)", events, raw, raw);
    let file = connlog_ingest(&dir.join("file"), &ndjson);
    report("connlog ingest FILE", events, file, raw);
    let (http, memory) = http_ingest(&dir.join("http"), &ndjson, &[]);
    report("HTTP, 4 clients x 1,000 lines", events, http, raw);
    println!("  {memory}");
    let cluster = private_postgres::PrivateCluster::start();
    let url = cluster.create_database("bench");
    let (replica, memory) = http_ingest(&dir.join("replica"), &ndjson, &["--store", &url]);
    report("the same into a replica on PG", events, replica, raw);
    println!("  {memory}");
}

fn mib(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len() >> 20
}

fn report(what: &str, events: u64, took: Duration, bar: Duration) {
    println!(
        "{what:<32} {:>7.1} s  {:>8.0} events/s  ratio {:.2}",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64(),
        took.as_secs_f64() / bar.as_secs_f64()
    );
}

/// Writes the events of `rows` rows to both files; returns how many there are.
fn write_inputs(rows: u64, ndjson: &Path, csv: &Path) -> u64 {
    let mut lines = BufWriter::new(std::fs::File::create(ndjson).unwrap());
    let mut table = BufWriter::new(std::fs::File::create(csv).unwrap());
    writeln!(table, "{}", peer::CSV_HEADER).unwrap();
    let mut events = 0;
    for event in peer::events(rows) {
        writeln!(lines, "{}", event_to_line(&event)).unwrap();
        writeln!(table, "{}", peer::csv_line(&event)).unwrap();
        events += 1;
    }
    // On disk before anything is timed: their writeback would otherwise queue behind (and
    // slow down) the fsyncs being measured.
    for file in [lines.into_inner().unwrap(), table.into_inner().unwrap()] {
        file.sync_all().unwrap();
    }
    events
}

fn raw_import(dir: &Path, csv: &Path) -> Duration {
    std::fs::create_dir_all(dir).unwrap();
    let columns: Vec<String> = peer::CSV_HEADER
        .split(',')
        .map(|c| format!("{c} TEXT"))
        .collect();
    let script = format!(
        "PRAGMA journal_mode=WAL;\nPRAGMA synchronous=FULL;\n\
         CREATE TABLE events ({});\nCREATE UNIQUE INDEX events_id ON events (id);\n\
         .import --csv --skip 1 {} events\n",
        columns.join(", "),
        csv.display()
    );
    let started = Instant::now();
    let mut shell = Command::new("sqlite3")
        .arg(dir.join("raw.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the sqlite3 shell (Debian's sqlite3 package)");
    shell
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(shell.wait().unwrap().success(), "sqlite3 failed");
    started.elapsed()
}

fn connlog_ingest(data: &Path, ndjson: &Path) -> Duration {
    std::fs::create_dir_all(data).unwrap();
    // The plugin is compiled once per build and cached (as after any first run), before
    // the clock starts: the HTTP run's server has compiled it before its load, too.
    let compiled = Instant::now();
    let empty = data.join("empty.ndjson");
    std::fs::write(&empty, "").unwrap();
    let out = connlog(data).arg("ingest").arg(&empty).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "  (the plugin compiled into the empty store's cache first: {:.1} s)",
        compiled.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let out = connlog(data)
        .arg("ingest")
        .arg(ndjson)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "connlog ingest: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// The load's wall time, and what the plugin reports of its memory after it.
fn http_ingest(data: &Path, ndjson: &Path, serve_args: &[&str]) -> (Duration, String) {
    std::fs::create_dir_all(data).unwrap();
    support::write_admin_directory(data);
    let token = support::admin_token(data);
    let (mut server, base) = support::serve_with(data, serve_args);
    let queue = Arc::new(Mutex::new(requests_of(ndjson).into_iter()));
    let url = format!("{base}/api/v2/connectionlog/ingest");
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..CLIENTS {
            let (queue, url, token) = (queue.clone(), &url, &token);
            scope.spawn(move || {
                let agent = ureq::Agent::config_builder()
                    .http_status_as_error(true)
                    .build()
                    .new_agent();
                loop {
                    let Some(body) = queue.lock().unwrap().next() else {
                        return;
                    };
                    let answer = agent
                        .post(url)
                        .header("Coder-Session-Token", token)
                        .send(body)
                        .unwrap()
                        .body_mut()
                        .read_to_string()
                        .unwrap();
                    assert!(answer.contains("\"rejected\":[]"), "{answer}");
                }
            });
        }
    });
    let took = started.elapsed();
    let memory = plugin_memory(&format!("{base}/metrics"));
    let _ = server.kill();
    let _ = server.wait();
    (took, memory)
}

/// The requests' bodies, `LINES_PER_REQUEST` lines each. The file's text is freed before
/// the load starts: held beside the bodies it would double the client's memory (16 GiB at
/// 10M rows), which the server's store would otherwise have for its page cache.
fn requests_of(ndjson: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(ndjson).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(LINES_PER_REQUEST)
        .map(|chunk| chunk.join("\n"))
        .collect()
}

/// What `/metrics` shows of the plugin's memory per row: its own estimate and its whole
/// linear memory.
fn plugin_memory(metrics: &str) -> String {
    let text = ureq::get(metrics)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let gauge = |name: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(&format!("{name} ")));
        let value = line.and_then(|l| l.split(' ').nth(1));
        value
            .unwrap_or_else(|| panic!("{name} in /metrics"))
            .parse()
            .unwrap()
    };
    let rows = gauge("connlog_rows");
    let per_row = |name: &str| {
        let bytes = gauge(name);
        format!(
            "{:.1} MiB ({:.1} B/row)",
            bytes / f64::from(1 << 20),
            bytes / rows
        )
    };
    format!(
        "plugin memory after it, {rows} rows: estimated {}, linear memory {}",
        per_row("connlog_plugin_memory_bytes"),
        per_row("connlog_plugin_linear_memory_bytes")
    )
}
