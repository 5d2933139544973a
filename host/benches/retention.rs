//! Request latency across retention ticks at large sizes.
//!
//! `cargo bench -p connlog --bench retention` (`CONNLOG_BENCH_ROWS=1000000,10000000` for
//! other sizes, `CONNLOG_BENCH_DIR` for where the stores go, `CONNLOG_BENCH_TICKS` for how
//! many ticks). For each size it writes a journal directly through the store (half web rows
//! of one event, half ssh sessions of two), opens the service (full replay), saves a
//! snapshot, and adds rows that expire five per tick. Then the retention scheduler runs for
//! a number of ticks while one thread makes an API request (a page of `method:ssh`) every
//! 100 ms and another ingests one event every 100 ms, as the measurement did. It
//! prints, per tick and overall, the longest request latency and lock wait, the longest
//! hold of the service by a purge, when the background rewrites finished, and the plugin's
//! memory before and after (with the compactions that gave back what purged rows left).
//!
//! `CONNLOG_BENCH_EXPIRED=1000000` makes that many of the first rows already expired, so
//! the scheduler's first purge (at start) removes them all in one pass: the issue's "purge
//! of 1M expired rows out of 10M".

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use connlog::model::{Actor, QueryRequest};
use connlog::plugin::Clock;
use connlog::retention::RetentionScheduler;
use connlog::service::{self, ConnLog, ServiceConfig, SnapshotPolicy, store_path};
use connlog::store::Journal;
use support::{mib, row_events_at, secs, service_config, uuid};

const BATCH: usize = 100_000;
const RETENTION: Duration = Duration::from_secs(3600);
const REQUEST_EVERY: Duration = Duration::from_millis(100);

/// The bench's service: an hour of retention, the system clock.
fn config(data: &std::path::Path, cache: &std::path::Path) -> ServiceConfig {
    service_config(data, cache, RETENTION, Clock::System)
}

fn main() {
    // `CONNLOG_BENCH_LOG=connlog=debug` shows what the snapshot writer does, and when.
    if let Ok(filter) = std::env::var("CONNLOG_BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_timer(tracing_subscriber::fmt::time::uptime())
            .with_writer(std::io::stderr)
            .init();
    }
    let sizes: Vec<u64> = std::env::var("CONNLOG_BENCH_ROWS")
        .unwrap_or_else(|_| "1000000".into())
        .split(',')
        .map(|s| s.trim().replace('_', "").parse().expect("row counts"))
        .collect();
    let ticks: usize = std::env::var("CONNLOG_BENCH_TICKS")
        .ok()
        .map(|v| v.parse().expect("a tick count"))
        .unwrap_or(6);
    let expired: u64 = std::env::var("CONNLOG_BENCH_EXPIRED")
        .ok()
        .map(|v| v.replace('_', "").parse().expect("a row count"))
        .unwrap_or(0);
    let base = std::env::var_os("CONNLOG_BENCH_DIR").map(std::path::PathBuf::from);
    for rows in sizes {
        let dir = match &base {
            Some(b) => tempfile::tempdir_in(b),
            None => tempfile::tempdir(),
        }
        .unwrap();
        run(dir.path(), rows, ticks, expired.min(rows));
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// One request: when it was asked (since the scheduler started), how long it waited for
/// the lock, how long it took in all.
#[derive(Clone, Copy)]
struct Sample {
    at: Duration,
    waited: Duration,
    took: Duration,
}

/// Calls `request` every `REQUEST_EVERY` until `stop`, timing each call.
fn requests(
    shared: &service::SharedConnLog,
    stop: &Arc<AtomicBool>,
    epoch: Instant,
    mut request: impl FnMut(&mut ConnLog) + Send + 'static,
) -> std::thread::JoinHandle<Vec<Sample>> {
    let (shared, stop) = (shared.clone(), stop.clone());
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let asked = Instant::now();
            let mut service = service::lock(&shared);
            let waited = asked.elapsed();
            request(&mut service);
            drop(service);
            samples.push(Sample {
                at: asked - epoch,
                waited,
                took: asked.elapsed(),
            });
            std::thread::sleep(REQUEST_EVERY.saturating_sub(asked.elapsed()));
        }
        samples
    })
}

fn run(data: &std::path::Path, rows: u64, ticks: usize, expired: u64) {
    let cache = data.join(".cache");
    let db = store_path(data);
    // One tick is longer than a rewrite takes, so that each purge gets its own.
    let tick = Duration::from_secs((rows / 1_000_000 * 3).clamp(3, 40));
    println!(
        "== {rows} rows ({expired} expired at start), a purge every {} ==",
        secs(tick)
    );

    let started = Instant::now();
    let now = Clock::System.now();
    let journal = Journal::open(&db).unwrap();
    let mut n = 0;
    while n < rows {
        let end = (n + BATCH as u64).min(rows);
        // The expired rows spread over the hour before the cutoff; then recent rows, 100 µs
        // apart: none of those expires during the run.
        let hour = 3_600_000_000_000i64;
        let time = |k: u64| {
            if k < expired {
                now - RETENTION.as_nanos() as i64 - hour + k as i64 * (hour / expired as i64)
            } else {
                now - 1_800_000_000_000 + k as i64 * 100_000
            }
        };
        let batch: Vec<_> = (n..end).flat_map(|k| row_events_at(k, time(k))).collect();
        journal.begin().unwrap();
        journal.insert(&batch).unwrap();
        journal.commit().unwrap();
        n = end;
    }
    journal.checkpoint_truncate().unwrap();
    drop(journal);
    println!("journal written in {}", secs(started.elapsed()));

    // Warm the compiled-component cache so the start measures the store, not Cranelift.
    drop(ConnLog::open(config(
        tempfile::tempdir().unwrap().path(),
        &cache,
    )));
    let started = Instant::now();
    let mut service = ConnLog::open(config(data, &cache)).expect("open");
    service.set_snapshot_policy(SnapshotPolicy {
        every_events: 0,
        on_close_min_events: 0,
        ..SnapshotPolicy::default()
    });
    println!("start by full replay: {}", secs(started.elapsed()));
    // Rows that cross the cutoff five per tick, from the first tick on. They are in the
    // snapshot, as rows that expire usually are: a purge of rows newer than the snapshot
    // would have its rewrite (and a restart) replay the whole journal.
    let expiring = 5 * (ticks as u64 + 2);
    let first = Clock::System.now() - RETENTION.as_nanos() as i64;
    let step = tick.as_nanos() as i64 / 5;
    let events: Vec<_> = (0..expiring)
        .flat_map(|i| row_events_at(rows + i, first + i as i64 * step))
        .collect();
    service.ingest(events).unwrap();

    let started = Instant::now();
    let info = service.save_snapshot().unwrap();
    service.wait_for_snapshots();
    println!(
        "snapshot saved: {} ({:.0} MiB)",
        secs(started.elapsed()),
        mib(info.bytes)
    );

    let memory_before = service.stats().unwrap().memory_bytes;
    let shared: service::SharedConnLog = Arc::new(Mutex::new(service));
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let owner = Actor {
        user_id: uuid(9, 0),
        site_roles: vec!["owner".into()],
        organization_roles: Vec::new(),
    };
    let queries = requests(&shared, &stop, epoch, move |service| {
        service
            .api_page(
                owner.clone(),
                QueryRequest {
                    q: "method:ssh".into(),
                    limit: 25,
                    offset: 0,
                },
            )
            .unwrap()
            .unwrap();
    });
    let mut next = 100 * rows;
    let ingests = requests(&shared, &stop, epoch, move |service| {
        next += 1;
        let mut event = row_events_at(next * 2, Clock::System.now()).remove(0);
        event.id = uuid(7, next);
        service.ingest(vec![event]).unwrap();
    });
    // Note when background rewrites finish.
    let watcher = {
        let (shared, stop) = (shared.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut finished = Vec::new();
            let mut saved = service::lock(&shared).counters().snapshots_saved;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                let now = service::lock(&shared).counters().snapshots_saved;
                if now > saved {
                    finished.push(epoch.elapsed());
                    saved = now;
                }
            }
            finished
        })
    };

    tracing::info!("requests start (time 0 of the figures below)");
    let scheduler = RetentionScheduler::spawn(shared.clone(), tick);
    std::thread::sleep(tick * ticks as u32 + tick / 2);
    drop(scheduler);
    stop.store(true, Ordering::Relaxed);
    let queries = queries.join().unwrap();
    let ingests = ingests.join().unwrap();
    let rewrites = watcher.join().unwrap();

    for t in 0..=ticks {
        let window = |s: &&Sample| s.at >= tick * t as u32 && s.at < tick * (t as u32 + 1);
        let worst = |samples: &[Sample]| {
            samples
                .iter()
                .filter(window)
                .map(|s| (s.took, s.waited))
                .max()
                .unwrap_or_default()
        };
        let (q, qw) = worst(&queries);
        let (i, iw) = worst(&ingests);
        println!(
            "tick {t}: longest query {} (lock wait {}), longest ingest {} (lock wait {})",
            ms(q),
            ms(qw),
            ms(i),
            ms(iw)
        );
    }
    let overall = |samples: &[Sample]| {
        let took = samples.iter().map(|s| s.took).max().unwrap_or_default();
        let waited = samples.iter().map(|s| s.waited).max().unwrap_or_default();
        let over = samples
            .iter()
            .filter(|s| s.took > Duration::from_millis(100))
            .count();
        format!(
            "{} requests, longest {} (lock wait {}), {over} over 100 ms",
            samples.len(),
            ms(took),
            ms(waited)
        )
    };
    println!("queries: {}", overall(&queries));
    println!("ingests: {}", overall(&ingests));
    for (what, samples) in [("query", &queries), ("ingest", &ingests)] {
        for s in samples
            .iter()
            .filter(|s| s.took > Duration::from_millis(100))
        {
            println!(
                "  {what} at {:.2} s took {} (lock wait {})",
                s.at.as_secs_f64(),
                ms(s.took),
                ms(s.waited)
            );
        }
    }

    let mut service = service::lock(&shared);
    let waiting = Instant::now();
    service.wait_for_snapshots();
    let counters = service.counters();
    println!(
        "purges: {} run, {} rows purged, longest hold of the service {} (last {})",
        counters.purges_run,
        counters.rows_purged,
        ms(Duration::from_micros(counters.max_purge_locked_us)),
        ms(Duration::from_micros(counters.last_purge_locked_us))
    );
    let stats = service.stats().unwrap();
    println!(
        "plugin memory: {:.0} MiB before, {:.0} MiB after ({} rows; {} compactions)",
        mib(memory_before),
        mib(stats.memory_bytes),
        stats.rows,
        counters.compactions
    );
    println!(
        "background rewrites finished at {:?} s; {} snapshots written in all; the last one pending took {} more",
        rewrites
            .iter()
            .map(|d| (d.as_secs_f64() * 10.0).round() / 10.0)
            .collect::<Vec<_>>(),
        counters.snapshots_saved,
        secs(waiting.elapsed())
    );
}
