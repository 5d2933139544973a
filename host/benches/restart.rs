//! Restart time at large sizes: full replay against snapshot + tail.
//!
//! `cargo bench -p connlog --bench restart` (set `CONNLOG_BENCH_ROWS=1000000,10000000` for
//! other sizes). For each size it writes a journal directly through the store (half web
//! rows of one event, half ssh sessions of a connect and a disconnect), then measures:
//! the store's open (`quick_check`), a start by full replay, writing the snapshot, a start
//! from the snapshot after a clean stop (no whole-file check), a start after a crash (the
//! service abandoned after ingesting a 1% tail: the snapshot, the tail, and no whole-file
//! check, the file being as sealed at the last checkpoint), a start after another writer
//! added 1% more behind its back (the whole-file check), and a start of a new plugin build
//! after a clean stop (a full replay with no whole-file check: the first full replay,
//! right after the journal was written, has one beside it). It prints one line per figure
//! and checks that the starts of each store answer the same queries identically.

mod support;

use std::time::{Duration, Instant};

use connlog::model::{Actor, QueryRequest};
use connlog::plugin::{Clock, Embedded, PluginSource, PluginSpec};
use connlog::service::{
    ConnLog, RestoreSource, ServiceConfig, SnapshotPolicy, StoreCheck, store_path,
};
use connlog::store::Journal;

use support::{T0, fill, mib, row_events, secs, service_config, uuid};

/// The bench's service: no retention, a fixed clock.
fn config(data: &std::path::Path, cache: &std::path::Path) -> ServiceConfig {
    service_config(data, cache, Duration::ZERO, Clock::Fixed(T0))
}

fn main() {
    support::for_each_size(run);
}

/// Starts the service `config` describes, with no snapshot of its own on close; returns it
/// and how long the start took.
fn open(config: ServiceConfig) -> (ConnLog, Duration) {
    let started = Instant::now();
    let mut service = ConnLog::open(config).expect("open");
    let elapsed = started.elapsed();
    service.set_snapshot_policy(SnapshotPolicy {
        every_events: 0,
        on_close_min_events: 0,
        ..SnapshotPolicy::default()
    });
    (service, elapsed)
}

fn probe(service: &mut ConnLog) -> String {
    let owner = Actor {
        user_id: uuid(9, 0),
        site_roles: vec!["owner".into()],
        organization_roles: Vec::new(),
    };
    let mut out = String::new();
    let workspace = format!("workspace_id:{}", uuid(3, 7));
    for q in ["", "method:ssh status:completed", workspace.as_str()] {
        let body = service
            .api_page(
                owner.clone(),
                QueryRequest {
                    q: q.to_string(),
                    limit: 50,
                    offset: 1000,
                },
            )
            .unwrap()
            .unwrap();
        out.push_str(&body);
    }
    out
}

fn file_mib(path: &std::path::Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| mib(m.len()))
}

fn run(data: &std::path::Path, rows: u64) {
    let cache = data.join(".cache");
    let db = store_path(data);
    println!("== {rows} rows ==");
    let started = Instant::now();
    let mut journal = Journal::open(&db).unwrap();
    let events = fill(&mut journal, 0, rows);
    journal.checkpoint_truncate().unwrap();
    drop(journal);
    println!(
        "journal written: {events} events in {}; connlog.db {:.0} MiB",
        secs(started.elapsed()),
        file_mib(&db)
    );
    let started = Instant::now();
    drop(Journal::open(&db).unwrap());
    println!("store open incl. quick_check: {}", secs(started.elapsed()));
    let started = Instant::now();
    Journal::quick_check(&db).unwrap();
    println!(
        "quick_check alone, as a start after a crash runs it beside the load: {}",
        secs(started.elapsed())
    );

    // Warm the compiled-component cache so starts measure the store, not Cranelift.
    drop(ConnLog::open(config(
        tempfile::tempdir().unwrap().path(),
        &cache,
    )));

    let (mut service, elapsed) = open(config(data, &cache));
    let report = service.last_restore().clone();
    assert!(matches!(report.source, RestoreSource::FullReplay { .. }));
    let stats = service.stats().unwrap();
    println!(
        "start by full replay: {} (restore {}, {} events, {} rows, plugin memory {:.0} MiB)",
        secs(elapsed),
        secs(report.elapsed),
        report.events_replayed,
        report.rows,
        mib(stats.memory_bytes)
    );
    let expected = probe(&mut service);

    let started = Instant::now();
    let info = service.save_snapshot().unwrap();
    println!(
        "snapshot saved: {} ({:.0} MiB in {} chunks; {:.1} bytes/row)",
        secs(started.elapsed()),
        mib(info.bytes),
        info.chunks,
        info.bytes as f64 / rows as f64
    );
    let started = Instant::now();
    service.close().unwrap();
    println!("close (checkpoint): {}", secs(started.elapsed()));
    println!("connlog.db with snapshot: {:.0} MiB", file_mib(&db));

    for run in 1..=2 {
        let (mut service, elapsed) = open(config(data, &cache));
        let report = service.last_restore().clone();
        let RestoreSource::Snapshot { load_time, .. } = report.source else {
            panic!("expected a snapshot start, got {:?}", report.source)
        };
        let memory = service.stats().unwrap().memory_bytes;
        println!(
            "start from snapshot (run {run}): {} (restore {}, of which load-snapshot {}, {} events replayed; store check {:?}; plugin memory {:.0} MiB)",
            secs(elapsed),
            secs(report.elapsed),
            secs(load_time),
            report.events_replayed,
            service.store_check(),
            mib(memory)
        );
        assert_eq!(
            probe(&mut service),
            expected,
            "snapshot start answers differently"
        );
        drop(service);
    }

    // A crash: a 1% tail ingested through the running service, which is then abandoned
    // without a stop (its connections stay open, as a killed process's WAL stays behind).
    let tail_rows = (rows / 100).max(1);
    let (mut service, _) = open(config(data, &cache));
    let mut tail_events = 0;
    for first in (rows..rows + tail_rows).step_by(1000) {
        let batch: Vec<_> = (first..(first + 1000).min(rows + tail_rows))
            .flat_map(row_events)
            .collect();
        tail_events += batch.len() as u64;
        service.ingest(batch).unwrap();
    }
    std::mem::forget(service);
    start_from_snapshot_and_tail(
        data,
        &cache,
        &format!("start after a crash: snapshot + 1% tail ({tail_events} events)"),
        (rows + tail_rows, tail_events),
        StoreCheck::LastCheckpoint,
    );

    // Another 1% written behind connlog's back: the file changed, so it is read whole.
    let mut journal = Journal::connect(&db).unwrap();
    tail_events += fill(&mut journal, rows + tail_rows, rows + 2 * tail_rows);
    drop(journal);
    let answers = start_from_snapshot_and_tail(
        data,
        &cache,
        &format!(
            "start from snapshot + 2% tail ({tail_events} events) after another writer, with the whole-file check"
        ),
        (rows + 2 * tail_rows, tail_events),
        StoreCheck::WholeFile,
    );

    // That start ended with a clean stop. A new build of the plugin finds the stored
    // snapshot another build's, and replays the whole journal.
    let build = new_build(data);
    let new_config = |data: &std::path::Path, cache: &std::path::Path| ServiceConfig {
        plugin: PluginSpec::plain(PluginSource::File(build.clone())),
        ..config(data, cache)
    };
    // Compiled once before, as the starts above find the cache warm.
    drop(ConnLog::open(new_config(
        tempfile::tempdir().unwrap().path(),
        &cache,
    )));
    let (mut service, elapsed) = open(new_config(data, &cache));
    let report = service.last_restore().clone();
    assert!(matches!(report.source, RestoreSource::FullReplay { .. }));
    assert_eq!(report.rows, rows + 2 * tail_rows);
    assert_eq!(service.store_check(), StoreCheck::CleanStop);
    println!(
        "start by full replay of a new plugin build after a clean stop: {} (restore {}, {} events; store check {:?})",
        secs(elapsed),
        secs(report.elapsed),
        report.events_replayed,
        service.store_check()
    );
    assert_eq!(
        probe(&mut service),
        answers,
        "the new build answers differently"
    );
}

/// The reference plugin as a new build would be: the same code, another digest (a custom
/// section appended, which the component model ignores).
fn new_build(data: &std::path::Path) -> std::path::PathBuf {
    let name = b"connlog-bench-build";
    let mut bytes = Embedded::Reference.component().to_vec();
    // Section id 0 (custom), its size, then its name; both lengths fit one LEB128 byte.
    bytes.extend([0, name.len() as u8 + 1, name.len() as u8]);
    bytes.extend(name);
    let path = data.join(".new-build.wasm");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Starts, checks that it loaded the snapshot, replayed the tail's `events`, holds `rows`
/// and checked the store as `check` says, and prints how long it took under `what`.
/// Returns what it answers to `probe`.
fn start_from_snapshot_and_tail(
    data: &std::path::Path,
    cache: &std::path::Path,
    what: &str,
    (rows, events): (u64, u64),
    check: StoreCheck,
) -> String {
    let (mut service, elapsed) = open(config(data, cache));
    let report = service.last_restore().clone();
    assert!(matches!(report.source, RestoreSource::Snapshot { .. }));
    assert_eq!(report.events_replayed, events);
    assert_eq!(report.rows, rows);
    assert_eq!(service.store_check(), check);
    println!(
        "{what}: {} (restore {}; store check {check:?})",
        secs(elapsed),
        secs(report.elapsed)
    );
    probe(&mut service)
}
