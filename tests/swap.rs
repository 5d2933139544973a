//! Hot swap: the new plugin is brought up beside the running one, caught up under the
//! lock and switched in atomically; requests keep being served throughout. A plugin that
//! fails to load or to initialise leaves the running one serving, and the error says why.

mod service_support;
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connlog::plugin::{Embedded, PluginError, PluginSource, PluginSpec, TrapKind};
use connlog::service::{self, ServiceError, SharedConnLog, swap_plugin};
use service_support::*;

fn shared(service: connlog::service::ConnLog) -> SharedConnLog {
    Arc::new(Mutex::new(service))
}

#[test]
fn a_swap_keeps_every_row_and_answers_as_before() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    ingest_all(&mut service, mixed_events(0, 1500, "row"), 100);
    let before = answers(&mut service);
    let old_digest = service.plugin().digest.clone();
    let shared = shared(service);

    let report = swap_plugin(&shared, &PluginSpec::plain(faulty_plugin())).expect("the swap");
    assert_eq!(report.events_replayed + report.events_caught_up, 1875);
    assert!(
        report.snapshot.is_none(),
        "no snapshot policy: the new instance writes none"
    );
    let mut service = service::lock(&shared);
    assert_ne!(service.plugin().digest, old_digest);
    assert_eq!(service.counters().swaps, 1);
    assert_eq!(answers(&mut service), before);

    // And back again.
    drop(service);
    swap_plugin(
        &shared,
        &PluginSpec::plain(PluginSource::Embedded(Embedded::Reference)),
    )
    .expect("the swap back");
    let mut service = service::lock(&shared);
    assert_eq!(service.plugin().digest, old_digest);
    assert_eq!(service.counters().swaps, 2);
    assert_eq!(answers(&mut service), before);
}

/// Has a snapshot written in the background every 1,000 events, then stores 1,875 events
/// (1,500 rows): a swap to another build replays more than that policy leaves uncovered.
fn fill_snapshotting_every_thousand_events(service: &mut service::ConnLog) {
    service.set_snapshot_policy(service::SnapshotPolicy {
        every_events: 1_000,
        pause: std::time::Duration::ZERO,
        ..Default::default()
    });
    ingest_all(service, mixed_events(0, 1500, "row"), 100);
}

#[test]
fn a_swap_to_another_build_records_the_new_instances_snapshot_before_the_switch() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    fill_snapshotting_every_thousand_events(&mut service);
    service.wait_for_snapshots();
    let old_snapshot = snapshot_files(data.path());
    assert_eq!(old_snapshot.len(), 1, "the old build's background snapshot");
    let saved_before = service.counters().snapshots_saved;
    let before = answers(&mut service);
    let shared = shared(service);

    let report = swap_plugin(&shared, &PluginSpec::plain(faulty_plugin())).expect("the swap");
    assert!(matches!(
        report.restore.source,
        service::RestoreSource::FullReplay { .. }
    ));
    let snapshot = report
        .snapshot
        .expect("a full replay of 1,875 events is over the policy's 1,000");
    let mut service = service::lock(&shared);
    assert_eq!(snapshot.plugin_digest, service.plugin().digest);
    assert_eq!(snapshot.last_seq, service.merged_upto());
    assert_eq!(service.unsnapshotted_events(), 0);
    assert_eq!(answers(&mut service), before);
    let later: Vec<_> = (0..10)
        .map(|k| web_event(1_000_000 + k, T0 + k as i64, "later"))
        .collect();
    ingest_all(&mut service, later, 10);
    assert_eq!(service.unsnapshotted_events(), 10);
    service.wait_for_snapshots();
    assert_eq!(
        service.counters().snapshots_saved,
        saved_before + 1,
        "the background writer was not asked to bring the new build up again"
    );
    let files = snapshot_files(data.path());
    assert_eq!(files.len(), 1, "the old build's file was swept: {files:?}");
    assert_ne!(files, old_snapshot);
    let after = answers(&mut service);
    drop(service);
    drop(shared);

    // The next start of the new build loads it instead of replaying.
    let mut service = open(data.path(), faulty_plugin());
    match service.last_restore().source {
        service::RestoreSource::Snapshot {
            last_seq, bytes, ..
        } => assert_eq!((last_seq, bytes), (snapshot.last_seq, snapshot.bytes)),
        ref other => panic!("expected the new build's snapshot, got {other:?}"),
    }
    assert_eq!(service.last_restore().events_replayed, 10);
    assert_eq!(answers(&mut service), after);
}

#[test]
fn on_a_replica_the_new_instances_snapshot_is_shared_with_new_replicas() {
    let cluster = support::postgres::PrivateCluster::start();
    let url = cluster.create_database("shared");
    let data = tempfile::tempdir().unwrap();
    let directory = data.path().join("directory.json");
    std::fs::write(&directory, support::directory_json()).unwrap();
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    service
        .attach_upstream(
            &connlog::store::postgres::parse_url(&url).unwrap(),
            &directory,
        )
        .unwrap();
    fill_snapshotting_every_thousand_events(&mut service);
    service.wait_for_snapshots();
    let old_digest = service.plugin().digest.clone();
    let shared_snapshots = || -> Vec<(String, i64)> {
        cluster
            .client("shared")
            .query(
                "SELECT plugin_digest, rows FROM connlog.snapshots ORDER BY written_at",
                &[],
            )
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    };
    let before = shared_snapshots();
    assert_eq!(
        before.iter().map(|(digest, _)| digest).collect::<Vec<_>>(),
        [&old_digest],
        "the old build's background snapshot is shared"
    );
    let shared = shared(service);

    let report = swap_plugin(&shared, &PluginSpec::plain(faulty_plugin())).expect("the swap");
    let snapshot = report.snapshot.expect("the new instance's snapshot");
    // Offered by the background writer, after the switch.
    service::wait_for_snapshots(&shared);
    assert_eq!(
        shared_snapshots(),
        [before[0].clone(), (snapshot.plugin_digest, 1500)]
    );
}

#[test]
fn a_swap_whose_snapshot_cannot_be_written_still_swaps() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    fill_snapshotting_every_thousand_events(&mut service);
    let before = answers(&mut service);
    let shared = shared(service);
    // The old build's background snapshot, recorded but not yet taken note of.
    service::wait_for_snapshots(&shared);
    assert_eq!(snapshot_files(data.path()).len(), 1);
    // A file where the snapshot folder was: no snapshot file can be created.
    let folder = data.path().join(connlog::store::snapshot_file::DIR);
    std::fs::remove_dir_all(&folder).unwrap();
    std::fs::write(&folder, b"not a folder").unwrap();

    let report = swap_plugin(&shared, &PluginSpec::plain(faulty_plugin())).expect("the swap");
    assert!(report.snapshot.is_none());
    let mut service = service::lock(&shared);
    assert_eq!(service.counters().swaps, 1);
    assert_eq!(
        service.unsnapshotted_events(),
        1875,
        "the old build's snapshot covers nothing for the new build"
    );
    assert_eq!(answers(&mut service), before);
}

#[test]
fn a_swap_to_the_same_build_starts_from_its_snapshot() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    ingest_all(&mut service, mixed_events(0, 500, "row"), 100);
    service.save_snapshot().unwrap();
    ingest_all(&mut service, mixed_events(500, 10, "tail"), 100);
    let before = answers(&mut service);
    let shared = shared(service);
    let report = swap_plugin(
        &shared,
        &PluginSpec::plain(PluginSource::Embedded(Embedded::Reference)),
    )
    .unwrap();
    assert!(matches!(
        report.restore.source,
        connlog::service::RestoreSource::Snapshot { .. }
    ));
    assert_eq!(answers(&mut service::lock(&shared)), before);
}

#[test]
fn requests_keep_being_served_during_swaps_and_nothing_acknowledged_is_lost() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    // Enough rows that bringing a plugin up takes a while, so requests overlap it.
    ingest_all(&mut service, mixed_events(0, 20_000, "base"), 2_000);
    let shared = shared(service);
    let stop = Arc::new(AtomicBool::new(false));

    let writer = {
        let (shared, stop) = (shared.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut acknowledged = 0u64;
            let mut n = 1_000_000u64;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<_> = (n..n + 20)
                    .map(|k| web_event(k, T0 + k as i64, "live"))
                    .collect();
                n += 20;
                let outcomes = service::lock(&shared)
                    .ingest(batch)
                    .expect("an ingest during a swap");
                acknowledged += outcomes.len() as u64;
                std::thread::sleep(Duration::from_millis(2));
            }
            acknowledged
        })
    };
    let reader = {
        let (shared, stop) = (shared.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut answered = 0u64;
            let mut last = 0;
            while !stop.load(Ordering::Relaxed) {
                let count = row_count(&mut service::lock(&shared));
                assert!(
                    count >= last,
                    "rows never go backwards ({last} then {count})"
                );
                last = count;
                answered += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            answered
        })
    };

    let mut caught_up = 0;
    for target in [
        faulty_plugin(),
        PluginSource::Embedded(Embedded::Reference),
        faulty_plugin(),
    ] {
        let report = swap_plugin(&shared, &PluginSpec::plain(target)).expect("a swap under load");
        caught_up += report.events_caught_up;
        assert!(report.locked_for < report.elapsed);
    }
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let acknowledged = writer.join().expect("no ingest failed");
    let answered = reader.join().expect("no query failed");
    assert!(answered > 0 && acknowledged > 0);
    assert!(
        caught_up > 0,
        "events arrived while the new plugins were brought up"
    );

    let mut service = service::lock(&shared);
    assert_eq!(service.counters().swaps, 3);
    assert_eq!(service.restarts(), 0);
    let expected_rows = 20_000 + acknowledged;
    assert_eq!(row_count(&mut service), expected_rows);
    let after_swaps = answers(&mut service);
    drop(service);

    // The swapped-in instance equals one brought up from scratch over the same store.
    let mut fresh = open(data.path(), faulty_plugin());
    assert_eq!(answers(&mut fresh), after_swaps);
}

#[test]
fn a_plugin_that_fails_to_load_leaves_the_old_one_serving() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    ingest_all(&mut service, mixed_events(0, 100, "row"), 100);
    let before = answers(&mut service);
    let digest = service.plugin().digest.clone();
    let shared = shared(service);

    let garbage = data.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm not really").unwrap();
    let missing = data.path().join("missing.wasm");
    for (source, expected) in [
        (garbage, "not a connection-log plugin"),
        (missing, "cannot read plugin"),
    ] {
        let error = swap_plugin(&shared, &PluginSpec::plain(PluginSource::File(source)))
            .expect_err("refused");
        assert!(matches!(error, ServiceError::Plugin(_)), "{error}");
        assert!(error.to_string().contains(expected), "{error}");
    }
    let mut service = service::lock(&shared);
    assert_eq!(service.plugin().digest, digest);
    assert_eq!(service.counters().swaps_failed, 2);
    assert_eq!(service.counters().swaps, 0);
    assert_eq!(answers(&mut service), before);
    ingest_all(&mut service, vec![web_event(5000, T0, "after")], 10);
    assert_eq!(row_count(&mut service), 101);
}

#[test]
fn a_plugin_that_fails_to_initialise_leaves_the_old_one_serving() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    ingest_all(&mut service, mixed_events(0, 100, "row"), 100);
    // An event the fault-injection build stores fine but panics on when it replays it.
    let mut poison = web_event(7777, T0, "row");
    poison.agent_name = "fault:replay-panic".into();
    ingest_all(&mut service, vec![poison], 10);
    let before = answers(&mut service);
    let digest = service.plugin().digest.clone();
    let shared = shared(service);

    let error = swap_plugin(&shared, &PluginSpec::plain(faulty_plugin()))
        .expect_err("the new plugin traps");
    match &error {
        ServiceError::Plugin(PluginError::Trapped { call, kind, .. }) => {
            assert_eq!(*call, "replay");
            assert_eq!(*kind, TrapKind::Panic);
        }
        other => panic!("unexpected error: {other}"),
    }
    let mut service = service::lock(&shared);
    assert_eq!(service.plugin().digest, digest);
    assert_eq!(service.counters().swaps_failed, 1);
    assert_eq!(
        service.restarts(),
        0,
        "the running instance was never touched"
    );
    assert_eq!(answers(&mut service), before);
    ingest_all(&mut service, vec![web_event(5000, T0, "after")], 10);
}
