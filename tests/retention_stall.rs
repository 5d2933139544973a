//! Retention never stalls the service. Over a store of many rows, the scheduler purges a
//! handful of rows every tick, and after each purge the snapshot holding them is rewritten
//! in the background, while one thread queries every 10 ms and another ingests every 50 ms.
//!
//! What is asserted strictly is the purge's own hold of the service (its transaction only,
//! under 100 ms; `Counters::max_purge_locked_us`). Request latencies are printed and bounded
//! loosely: on a small CI machine the background writer competes with requests for CPU.
//! `CONNLOG_STALL_ROWS` changes the store's size (default 200,000 rows).

mod service_support;
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use connlog::model::ConnectionEvent;
use connlog::plugin::{Clock, Embedded, PluginSource};
use connlog::retention::RetentionScheduler;
use connlog::service::{self, ConnLog, store_path};
use connlog::store::Journal;
use service_support::*;

const RETENTION: Duration = Duration::from_secs(3600);
const TICK: Duration = Duration::from_millis(700);
const TICKS: u32 = 6;
/// Rows that expire while the test runs: five per tick.
const EXPIRING: u64 = 5 * TICKS as u64 + 10;

fn rows() -> u64 {
    std::env::var("CONNLOG_STALL_ROWS")
        .ok()
        .map(|v| v.replace('_', "").parse().expect("a row count"))
        .unwrap_or(200_000)
}

/// Row `n` at `time`: web rows and completed sessions, alternately.
fn row_events(n: u64, time: i64, tag: &str) -> Vec<ConnectionEvent> {
    if n.is_multiple_of(2) {
        vec![web_event(n, time, tag)]
    } else {
        session_events(n, time, tag).to_vec()
    }
}

/// The longest and the total of a series of durations.
#[derive(Default)]
struct Latencies {
    count: u64,
    max: Duration,
    max_wait: Duration,
    total: Duration,
}

impl Latencies {
    fn note(&mut self, waited: Duration, took: Duration) {
        self.count += 1;
        self.max = self.max.max(took);
        self.max_wait = self.max_wait.max(waited);
        self.total += took;
    }

    fn describe(&self) -> String {
        format!(
            "{} requests, longest {:.1} ms (of which waiting for the lock {:.1} ms), mean {:.2} ms",
            self.count,
            self.max.as_secs_f64() * 1e3,
            self.max_wait.as_secs_f64() * 1e3,
            self.total.as_secs_f64() * 1e3 / self.count.max(1) as f64
        )
    }
}

#[test]
fn purges_and_snapshot_rewrites_never_stall_requests() {
    let rows = rows();
    let data = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let now = Clock::System.now();

    // The bulk of the store, written straight into the journal: recent rows that stay.
    let journal = Journal::open(&store_path(data.path())).unwrap();
    let mut n = 0;
    while n < rows {
        let end = (n + 10_000).min(rows);
        let batch: Vec<_> = (n..end)
            .flat_map(|k| row_events(k, now - 1_800_000_000_000 + k as i64 * 1_000_000, "bulk"))
            .collect();
        journal.begin().unwrap();
        journal.insert(&batch).unwrap();
        journal.commit().unwrap();
        n = end;
    }
    drop(journal);

    let mut cfg = config(data.path(), PluginSource::Embedded(Embedded::Reference));
    cfg.clock = Clock::System;
    cfg.retention = RETENTION;
    let mut service = ConnLog::open(cfg).unwrap();
    service.set_snapshot_policy(NO_SNAPSHOTS);
    assert_eq!(service.last_restore().rows, rows);
    service.save_snapshot().unwrap();

    // Rows that cross the cutoff one after the other, five per tick, from the first tick on.
    let first = Clock::System.now() - RETENTION.as_nanos() as i64;
    let step = TICK.as_nanos() as i64 / 5;
    let expiring: Vec<_> = (0..EXPIRING)
        .flat_map(|i| row_events(rows + i, first + i as i64 * step, "expiring"))
        .collect();
    ingest_all(&mut service, expiring, 64);
    println!(
        "{rows} rows ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let shared = Arc::new(Mutex::new(service));
    let stop = Arc::new(AtomicBool::new(false));
    let querier = {
        let (shared, stop) = (shared.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut latencies = Latencies::default();
            while !stop.load(Ordering::Relaxed) {
                let asked = Instant::now();
                let mut service = service::lock(&shared);
                let waited = asked.elapsed();
                query(&mut service, "method:ssh", 25, 0);
                drop(service);
                latencies.note(waited, asked.elapsed());
                std::thread::sleep(Duration::from_millis(10));
            }
            latencies
        })
    };
    let ingester = {
        let (shared, stop) = (shared.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut latencies = Latencies::default();
            let mut n = 10 * rows;
            while !stop.load(Ordering::Relaxed) {
                let event = web_event(n, Clock::System.now(), "live");
                n += 1;
                let asked = Instant::now();
                let mut service = service::lock(&shared);
                let waited = asked.elapsed();
                service
                    .ingest(vec![event])
                    .expect("an ingest during retention");
                drop(service);
                latencies.note(waited, asked.elapsed());
                std::thread::sleep(Duration::from_millis(50));
            }
            latencies
        })
    };

    let scheduler = RetentionScheduler::spawn(shared.clone(), TICK);
    std::thread::sleep(TICK * TICKS + TICK / 2);
    drop(scheduler);
    stop.store(true, Ordering::Relaxed);
    let queries = querier.join().expect("no query failed");
    let ingests = ingester.join().expect("no ingest failed");

    service::wait_for_snapshots(&shared);
    let mut service = service::lock(&shared);
    let counters = service.counters();
    println!("queries: {}", queries.describe());
    println!("ingests: {}", ingests.describe());
    println!(
        "purges: {} run, {} rows purged; longest hold of the service {:.1} ms; {} snapshots written",
        counters.purges_run,
        counters.rows_purged,
        counters.max_purge_locked_us as f64 / 1e3,
        counters.snapshots_saved
    );

    assert!(counters.purges_run >= u64::from(TICKS), "{counters:?}");
    assert!(
        counters.rows_purged >= 10 && counters.rows_purged <= EXPIRING,
        "a handful of rows per tick: {counters:?}"
    );
    assert!(
        counters.snapshots_saved >= 3,
        "the snapshot was rewritten after purges: {counters:?}"
    );
    assert_eq!(counters.snapshot_writes_failed, 0);
    assert!(
        counters.max_purge_locked_us < 100_000,
        "a purge held the service for {} us",
        counters.max_purge_locked_us
    );
    assert!(queries.count > 100 && ingests.count > 20);
    assert!(
        queries.max < Duration::from_secs(1),
        "{}",
        queries.describe()
    );
    assert!(
        ingests.max < Duration::from_secs(1),
        "{}",
        ingests.describe()
    );

    // Purges and rewrites interleaved as they happened: a restart from the last snapshot
    // (with whatever purges are still pending) and a full replay both answer as before.
    let before = answers(&mut service);
    drop(service);
    let service = Arc::try_unwrap(shared)
        .ok()
        .expect("no one else holds the service");
    drop(service.into_inner().unwrap());
    let reopen = || {
        let mut cfg = config(data.path(), PluginSource::Embedded(Embedded::Reference));
        cfg.retention = RETENTION;
        open_with(cfg)
    };
    let mut service = reopen();
    assert!(
        matches!(
            service.last_restore().source,
            connlog::service::RestoreSource::Snapshot { .. }
        ),
        "{:?}",
        service.last_restore().source
    );
    assert_eq!(answers(&mut service), before);
    drop(service);
    forget_snapshot_record(data.path());
    let mut service = reopen();
    assert_eq!(answers(&mut service), before);
}

/// A purge of many rows runs in slices of `service::SLICE_ROWS`, each a purge of its
/// own under one hold of the service, with requests served between them; the report and
/// the rows left are those of one purge, followed by one snapshot rewrite.
#[test]
fn a_large_purge_runs_in_slices_with_requests_between_them() {
    const KEPT: u64 = 30_000;
    const EXPIRED: u64 = 2 * connlog::service::SLICE_ROWS as u64 + 2_000;
    let data = tempfile::tempdir().unwrap();
    let now = Clock::System.now();
    let cutoff = now - RETENTION.as_nanos() as i64;
    // The expired rows in the hour before the cutoff, one time each; the rest recent.
    let time = |k: u64| match k.checked_sub(KEPT) {
        Some(old) => cutoff - 3_600_000_000_000 + old as i64 * 100_000_000,
        None => now - 1_800_000_000_000 + k as i64 * 1_000_000,
    };
    let journal = Journal::open(&store_path(data.path())).unwrap();
    let events: Vec<_> = (0..KEPT + EXPIRED)
        .flat_map(|k| row_events(k, time(k), "bulk"))
        .collect();
    journal.begin().unwrap();
    journal.insert(&events).unwrap();
    journal.commit().unwrap();
    drop(journal);

    let mut cfg = config(data.path(), PluginSource::Embedded(Embedded::Reference));
    cfg.clock = Clock::System;
    cfg.retention = RETENTION;
    let mut service = ConnLog::open(cfg.clone()).unwrap();
    service.set_snapshot_policy(NO_SNAPSHOTS);
    service.save_snapshot().unwrap();
    let shared = Arc::new(Mutex::new(service));

    // Counts the queries answered after the first slice and before the last purge.
    let purging = Arc::new(AtomicBool::new(true));
    let querier = {
        let (shared, purging) = (shared.clone(), purging.clone());
        std::thread::spawn(move || {
            let mut between_slices = 0;
            while purging.load(Ordering::Relaxed) {
                let mut service = service::lock(&shared);
                query(&mut service, "method:ssh", 25, 0);
                if (1..3).contains(&service.counters().purges_run) {
                    between_slices += 1;
                }
            }
            between_slices
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    service::wait_for_snapshots(&shared);
    let saved_before = service::lock(&shared).counters().snapshots_saved;
    let report = connlog::retention::purge(&shared, None).unwrap();
    purging.store(false, Ordering::Relaxed);
    let between_slices = querier.join().unwrap();
    service::wait_for_snapshots(&shared);

    assert_eq!(report.purged, EXPIRED);
    let applied = report.cutoff.expect("a retention applies");
    assert!(applied >= cutoff && applied < Clock::System.now() - RETENTION.as_nanos() as i64);
    let mut service = service::lock(&shared);
    let counters = service.counters();
    println!(
        "{} purges, longest hold of the service {:.1} ms; {between_slices} queries answered between slices",
        counters.purges_run,
        counters.max_purge_locked_us as f64 / 1e3
    );
    assert_eq!(
        (counters.purges_run, counters.rows_purged),
        (3, EXPIRED),
        "two slices of {} rows, then the rest: {counters:?}",
        connlog::service::SLICE_ROWS
    );
    assert_eq!(
        counters.snapshots_saved,
        saved_before + 1,
        "one rewrite after the whole pass"
    );
    assert!(
        between_slices >= 1,
        "requests were answered between the slices ({between_slices})"
    );
    assert_eq!(row_count(&mut service), KEPT);

    // After the pass's one rewrite, a restart from the new snapshot and a full replay
    // (which finds none of the purged rows' events) both answer as before.
    let before = answers(&mut service);
    drop(service);
    drop(
        Arc::try_unwrap(shared)
            .ok()
            .expect("no one else holds the service"),
    );
    let mut service = open_with(cfg.clone());
    assert!(matches!(
        service.last_restore().source,
        connlog::service::RestoreSource::Snapshot { .. }
    ));
    assert_eq!(answers(&mut service), before);
    drop(service);
    forget_snapshot_record(data.path());
    let mut service = open_with(cfg);
    assert_eq!(answers(&mut service), before);
}
