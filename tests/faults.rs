//! Fault isolation, proven with the fault-injection build of the plugin (built from
//! `guest/` by `host/build.rs`): a panic, an endless loop and unbounded allocation each
//! fail only their own call. The host rebuilds the instance from the store and keeps
//! serving, and every event acknowledged before is still there. Each fault is paired with
//! the same limit kept, to show the limit is what stops the faulty call. A rebuild that
//! fails too is retried by every later call, and a swap to a sound plugin recovers all.

mod service_support;
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use connlog::ingest::ingest_live;
use connlog::plugin::{Embedded, Limits, PluginError, PluginSource, PluginSpec, TrapKind};
use connlog::service::{
    self, ConnLog, IngestQueue, Input, RestoreSource, ServiceError, store_path, swap_plugin,
};
use connlog::store::Journal;
use service_support::*;

/// The markers of `guest/src/faults.rs` (that module is compiled into the faulty plugin
/// only, not into the host's copy of the guest crate).
mod faults {
    pub const PANIC: &str = "fault:panic";
    pub const LOOP: &str = "fault:loop";
    pub const ALLOC: &str = "fault:alloc";
    pub const BAD_APPEND: &str = "fault:bad-append";
    pub const REPLAY_PANIC: &str = "fault:replay-panic";
    pub const REPLAY_READS: &str = "fault:replay-reads";
}

const MEMORY_CAP: usize = 64 << 20;
const DEADLINE: Duration = Duration::from_millis(500);

/// The faulty plugin with a small memory cap and a short deadline, holding 300 rows.
fn faulty_service(data: &std::path::Path) -> (ConnLog, Vec<String>) {
    let mut cfg = config(data, faulty_plugin());
    cfg.limits = Limits {
        memory_bytes: MEMORY_CAP,
        call_deadline: DEADLINE,
        ..Limits::default()
    };
    let mut service = open_with(cfg);
    ingest_all(&mut service, mixed_events(0, 300, "ok"), 60);
    let before = answers(&mut service);
    (service, before)
}

fn marker_event(n: u64, marker: &str) -> connlog::model::ConnectionEvent {
    let mut event = session_events(n, T0, "fault")[0].clone();
    event.agent_name = marker.to_string();
    event
}

/// Ingests good events around a marker in one batch: the batch fails as a whole with the
/// expected trap, then the service answers as before and takes the next batch. Returns the
/// failed call's error, as the service reported it.
fn fault_costs_one_call(marker: &str, kind: TrapKind) -> String {
    let data = tempfile::tempdir().unwrap();
    let (mut service, before) = faulty_service(data.path());
    assert_eq!(service.restarts(), 0);

    let batch = vec![
        web_event(10_000, T0, "lost"),
        marker_event(10_001, marker),
        web_event(10_002, T0, "lost"),
    ];
    let started = Instant::now();
    let error = service
        .ingest(batch)
        .expect_err("the marker fails its call");
    match &error {
        ServiceError::Plugin(PluginError::Trapped {
            call, kind: got, ..
        }) => {
            assert_eq!(*call, "ingest-batch");
            assert_eq!(*got, kind, "{error}");
        }
        other => panic!("expected a trap of kind {kind:?}, got {other}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the failed call took {:?}",
        started.elapsed()
    );
    assert_eq!(service.restarts(), 1, "the instance was rebuilt");
    assert_eq!(service.counters().instance_restarts, 1);

    // Every acknowledged event is still there; nothing of the failed batch is.
    assert_eq!(answers(&mut service), before);
    assert_eq!(row_count(&mut service), 300);

    // The next call works.
    let outcomes = service.ingest(vec![web_event(20_000, T0, "next")]).unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(row_count(&mut service), 301);

    // And a fresh process over the same store sees the same.
    drop(service);
    let mut reopened = open(data.path(), faulty_plugin());
    assert_eq!(row_count(&mut reopened), 301);
    error.to_string()
}

#[test]
fn a_panic_fails_only_its_call() {
    fault_costs_one_call(faults::PANIC, TrapKind::Panic);
}

#[test]
fn an_endless_loop_is_stopped_by_the_deadline_and_fails_only_its_call() {
    fault_costs_one_call(faults::LOOP, TrapKind::Deadline);
}

#[test]
fn unbounded_allocation_is_stopped_by_the_memory_cap_and_fails_only_its_call() {
    fault_costs_one_call(faults::ALLOC, TrapKind::MemoryLimit);
}

#[test]
fn an_append_whose_columns_do_not_fit_together_traps_and_fails_only_its_call() {
    let error = fault_costs_one_call(faults::BAD_APPEND, TrapKind::Other);
    assert!(
        error.contains(
            "the plugin appended event columns that do not fit together: \
             uuids holds 0 entries for 1 events (expected 12)"
        ),
        "{error}"
    );
}

/// Group commit: batches of concurrent callers share a transaction, each in a savepoint. A
/// batch that traps fails alone: the batches before it are committed, those after it are
/// stored in a new transaction once the instance is rebuilt.
#[test]
fn a_trap_in_a_group_commit_fails_only_its_batch() {
    let data = tempfile::tempdir().unwrap();
    let (mut service, _) = faulty_service(data.path());
    let before = service.counters();
    let outcomes = service.ingest_group(vec![
        vec![web_event(10_000, T0, "before")],
        vec![
            web_event(10_001, T0, "lost"),
            marker_event(10_002, faults::PANIC),
        ],
        vec![
            web_event(10_003, T0, "after"),
            web_event(10_004, T0, "after"),
        ],
    ]);
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[0].as_ref().unwrap().len(), 1);
    match &outcomes[1] {
        Err(ServiceError::Plugin(PluginError::Trapped { kind, .. })) => {
            assert_eq!(*kind, TrapKind::Panic)
        }
        other => panic!("expected the middle batch to trap, got {other:?}"),
    }
    assert_eq!(outcomes[2].as_ref().unwrap().len(), 2);
    assert_eq!(service.restarts(), 1);
    assert_eq!(row_count(&mut service), 303);
    let after = service.counters();
    assert_eq!(
        (
            after.ingest_commits - before.ingest_commits,
            after.ingest_batches - before.ingest_batches
        ),
        (2, 2),
        "one commit before the trap, one after it"
    );

    drop(service);
    let mut reopened = open(data.path(), faulty_plugin());
    assert_eq!(
        row_count(&mut reopened),
        303,
        "the good batches are durable"
    );
    let every_row = answers(&mut reopened).join("\n");
    assert!(every_row.contains("before-ws-10000"));
    assert!(every_row.contains("after-ws-10004"));
    assert!(
        !every_row.contains("lost-ws-"),
        "nothing of the trapped batch"
    );
}

/// The same through a reader that is ahead of the store, whose batches share a commit: the
/// ingest stops with the trap, and its answer counts every batch stored, after it too.
#[test]
fn a_trap_in_a_group_of_read_ahead_batches_stops_the_ingest_and_counts_what_was_stored() {
    let data = tempfile::tempdir().unwrap();
    let (service, _) = faulty_service(data.path());
    let queue = IngestQueue::new(Arc::new(Mutex::new(service)));
    let lines = read_ahead(vec![
        web_event(10_000, T0, "before"),
        web_event(10_001, T0, "before"),
        web_event(10_002, T0, "lost"),
        marker_event(10_003, faults::PANIC),
        web_event(10_004, T0, "after"),
        web_event(10_005, T0, "after"),
    ]);
    let (answer, error) = ingest_live(
        &queue,
        &lines,
        Input::Finite,
        2,
        Duration::from_secs(600),
        &mut (),
    )
    .expect_err("the second batch traps");
    match error {
        ServiceError::Plugin(PluginError::Trapped { kind, .. }) => {
            assert_eq!(kind, TrapKind::Panic)
        }
        other => panic!("expected a trap, got {other}"),
    }
    assert_eq!(answer.accepted, 4, "the first batch and the last");
    let mut service = service::lock(queue.service());
    assert_eq!(row_count(&mut service), 304);
    let every_row = answers(&mut service).join("\n");
    assert!(every_row.contains("before-ws-10001") && every_row.contains("after-ws-10005"));
    assert!(
        !every_row.contains("lost-ws-"),
        "nothing of the trapped batch"
    );
}

#[test]
fn limit_kept_work_under_the_memory_cap_succeeds() {
    // Growing the plugin's memory well past its start, under the cap, is fine.
    let data = tempfile::tempdir().unwrap();
    let (mut service, _) = faulty_service(data.path());
    let start = service.stats().unwrap().memory_bytes;
    ingest_all(&mut service, mixed_events(1_000, 20_000, "big"), 5_000);
    let grown = service.stats().unwrap().memory_bytes;
    assert!(grown > start * 4, "memory grew from {start} to {grown}");
    assert!((grown as usize) < MEMORY_CAP);
    assert_eq!(row_count(&mut service), 20_300);
    assert_eq!(service.restarts(), 0);
}

#[test]
fn limit_kept_a_call_under_the_deadline_succeeds() {
    let data = tempfile::tempdir().unwrap();
    let (mut service, _) = faulty_service(data.path());
    let started = Instant::now();
    ingest_all(&mut service, mixed_events(1_000, 2_000, "quick"), 2_000);
    assert!(started.elapsed() < DEADLINE * 4);
    for _ in 0..20 {
        query(&mut service, "method:ssh status:completed", 100, 0);
    }
    assert_eq!(service.restarts(), 0);
}

#[test]
fn repeated_faults_never_lose_data_and_rebuilds_use_the_snapshot() {
    let data = tempfile::tempdir().unwrap();
    let (mut service, _) = faulty_service(data.path());
    service.save_snapshot().unwrap();
    let mut expected = 300;
    for (round, marker) in [faults::PANIC, faults::LOOP, faults::ALLOC, faults::PANIC]
        .into_iter()
        .enumerate()
    {
        let round = round as u64;
        ingest_all(
            &mut service,
            mixed_events(5_000 + round * 100, 10, "between"),
            10,
        );
        expected += 10;
        assert!(
            service
                .ingest(vec![marker_event(90_000 + round, marker)])
                .is_err()
        );
        assert!(
            matches!(
                service.last_restore().source,
                RestoreSource::Snapshot { .. }
            ),
            "a rebuild loads this plugin's snapshot: {:?}",
            service.last_restore().source
        );
        assert_eq!(row_count(&mut service), expected);
    }
    assert_eq!(service.restarts(), 4);
}

/// When the rebuild after a trap fails too (here the faulty plugin panics replaying an event
/// it stored), every later call retries the rebuild and reports why it failed; nothing
/// acknowledged is lost, and swapping to a plugin that can replay the store serves it all.
#[test]
fn a_failed_rebuild_is_retried_by_every_call_and_a_swap_recovers_everything() {
    let data = tempfile::tempdir().unwrap();
    let (mut service, _) = faulty_service(data.path());
    ingest_all(
        &mut service,
        vec![marker_event(50_000, faults::REPLAY_PANIC)],
        1,
    );
    let stored = Journal::open(&store_path(data.path()))
        .unwrap()
        .event_count()
        .unwrap();

    let rebuild_failure = |error: ServiceError| match error {
        ServiceError::Rebuild(cause) => format!("{cause:#}"),
        other => panic!("expected a failed rebuild, got {other}"),
    };
    let error = service
        .ingest(vec![marker_event(50_001, faults::PANIC)])
        .expect_err("the marker traps and the rebuild replays the poison");
    assert!(rebuild_failure(error).contains("replay"));
    for _ in 0..2 {
        let error = service.ingest(vec![web_event(50_002, T0, "refused")]);
        let cause = rebuild_failure(error.expect_err("no instance can be rebuilt"));
        assert!(cause.contains("replay"), "{cause}");
        assert!(!cause.contains("no store attached"), "{cause}");
    }
    assert_eq!(service.restarts(), 0, "no rebuild succeeded");
    let journal = Journal::open(&store_path(data.path())).unwrap();
    assert_eq!(
        journal.event_count().unwrap(),
        stored,
        "nothing stored or lost"
    );

    let shared = Arc::new(Mutex::new(service));
    swap_plugin(
        &shared,
        &PluginSpec::plain(PluginSource::Embedded(Embedded::Reference)),
    )
    .expect("the reference plugin replays it all");
    let mut service = service::lock(&shared);
    assert_eq!(
        row_count(&mut service),
        301,
        "300 rows and the poison's own"
    );
    ingest_all(&mut service, vec![web_event(50_003, T0, "after")], 1);
    assert_eq!(row_count(&mut service), 302);
}

/// A start that replays the whole journal reads it on a second thread while the plugin
/// folds, with the journal lent to that reader. A plugin that reads the journal meanwhile
/// (here it panics when it cannot) still comes up: the host notices the read it could not
/// answer and replays again with the journal attached.
#[test]
fn a_plugin_reading_the_journal_during_a_whole_replay_comes_up_all_the_same() {
    let data = tempfile::tempdir().unwrap();
    let (mut service, _) = faulty_service(data.path());
    ingest_all(
        &mut service,
        vec![marker_event(50_000, faults::REPLAY_READS)],
        1,
    );
    let before = answers(&mut service);
    drop(service);
    forget_snapshot_record(data.path());

    let mut service = open(data.path(), faulty_plugin());
    assert_full_replay(&service, "");
    assert_eq!(service.last_restore().rows, 301);
    assert_eq!(answers(&mut service), before);
}
