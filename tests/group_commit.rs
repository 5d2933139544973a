//! Group commit through `IngestQueue`: batches queued while the service is busy are stored
//! under one commit, and each caller gets its own batch's outcomes.

mod service_support;
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use connlog::ingest::{INGEST_GROUP, IngestAnswer, IngestObserver, ReadLine, ingest_live};
use connlog::model::{EventOutcome, LogFormat, LogLine};
use connlog::plugin::{PluginSource, ServiceLogSink};
use connlog::service::{
    self, BULK_SNAPSHOT_EVERY, IngestQueue, Input, ServiceConfig, SharedConnLog, SnapshotPolicy,
};
use service_support::*;

const CALLERS: u64 = 4;
/// The batch size of the read-ahead tests: small, so that a group is 80 events.
const BATCH: usize = 5;
/// A partial-batch delay no test waits for.
const NEVER: Duration = Duration::from_secs(600);

/// Service-log lines, as written.
#[derive(Default)]
struct Captured(Mutex<Vec<LogLine>>);

impl Captured {
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

impl ServiceLogSink for Captured {
    fn write(&self, lines: &[LogLine]) {
        self.0.lock().unwrap().extend_from_slice(lines);
    }
}

/// A service over `data` with the reference plugin, and the queue its ingesters share.
fn queued_service(data: &std::path::Path) -> (SharedConnLog, IngestQueue) {
    let shared = Arc::new(Mutex::new(open(data, PluginSource::default())));
    let queue = IngestQueue::new(shared.clone());
    (shared, queue)
}

#[test]
fn batches_waiting_for_the_service_share_one_commit_and_each_caller_gets_its_own_answer() {
    let data = tempfile::tempdir().unwrap();
    let (shared, queue) = queued_service(data.path());
    let queue = Arc::new(queue);

    // Hold the service while every caller queues its batch, so that one takes them all.
    let held = service::lock(&shared);
    let callers: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let queue = queue.clone();
            std::thread::spawn(move || {
                // Caller `c` sends 3(c+1) new events and a repeat of its first one.
                let mut batch: Vec<_> = (0..3 * (caller + 1))
                    .map(|i| web_event(caller * 100 + i, T0, "grouped"))
                    .collect();
                batch.push(batch[0].clone());
                (caller, queue.ingest(batch))
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while queue.queued() < CALLERS as usize {
        assert!(Instant::now() < deadline, "the callers never queued");
        std::thread::sleep(Duration::from_millis(1));
    }
    let before = held.counters();
    drop(held);

    for handle in callers {
        let (caller, answer) = handle.join().unwrap();
        let outcomes = answer.expect("stored");
        let new = 3 * (caller + 1) as usize;
        assert_eq!(
            outcomes.len(),
            new + 1,
            "caller {caller} got its own answer"
        );
        assert!(outcomes[..new].iter().all(|o| *o == EventOutcome::Stored));
        assert_eq!(outcomes[new], EventOutcome::Duplicate);
    }
    let mut service = service::lock(&shared);
    let after = service.counters();
    assert_eq!(after.ingest_batches - before.ingest_batches, CALLERS);
    assert_eq!(
        after.ingest_commits - before.ingest_commits,
        1,
        "one commit"
    );
    assert_eq!(row_count(&mut service), 3 + 6 + 9 + 12);
    assert_eq!(queue.queued(), 0);
}

#[test]
fn a_lone_caller_commits_its_batch_alone() {
    let data = tempfile::tempdir().unwrap();
    let (shared, queue) = queued_service(data.path());
    for n in 0..3 {
        let outcomes = queue.ingest(vec![web_event(n, T0, "alone")]).unwrap();
        assert_eq!(outcomes, vec![EventOutcome::Stored]);
    }
    let mut service = service::lock(&shared);
    let counters = service.counters();
    assert_eq!((counters.ingest_commits, counters.ingest_batches), (3, 3));
    assert_eq!(row_count(&mut service), 3);
}

/// A caller's answer waits for its group's commit, queued while the next group merges;
/// with no other call after it, the commit is settled in the service before the answer
/// returns: the live feed's head has moved, and the service-log lines are written.
#[test]
fn a_lone_callers_commit_is_settled_before_its_answer_returns() {
    let data = tempfile::tempdir().unwrap();
    let lines = Arc::new(Captured::default());
    let shared = Arc::new(Mutex::new(open_with(ServiceConfig {
        log_formats: vec![LogFormat::Json],
        service_log: lines.clone(),
        ..config(data.path(), PluginSource::default())
    })));
    let queue = IngestQueue::new(shared.clone());
    let head = service::lock(&shared).head();
    let before = *head.borrow();
    for n in 1..=3 {
        let outcomes = queue.ingest(vec![web_event(n, T0, "alone")]).unwrap();
        assert_eq!(outcomes, vec![EventOutcome::Stored]);
        assert_eq!(
            *head.borrow(),
            before + n as i64,
            "the head after event {n}"
        );
        assert_eq!(
            lines.count(),
            n as usize,
            "service-log lines after event {n}"
        );
    }
}

/// A reader that is ahead of the store (a file, a backlog) has its batches committed a
/// group at a time: `INGEST_GROUP` batches per commit, each its own plugin call.
#[test]
fn lines_read_ahead_are_committed_a_group_of_batches_at_a_time() {
    let data = tempfile::tempdir().unwrap();
    let (shared, queue) = queued_service(data.path());
    // Two whole groups and a partial batch, and one event again.
    let count = 2 * INGEST_GROUP * BATCH + 3;
    let mut events: Vec<_> = (0..count as u64)
        .map(|n| web_event(n, T0, "ahead"))
        .collect();
    events.push(events[7].clone());
    let lines = read_ahead(events);

    let answer = ingest_live(&queue, &lines, Input::Finite, BATCH, NEVER, &mut ()).expect("stored");
    assert_eq!((answer.accepted, answer.duplicates), (count as u64 + 1, 1));
    assert!(answer.rejected.is_empty());
    let mut service = service::lock(&shared);
    let counters = service.counters();
    assert_eq!(
        (counters.ingest_commits, counters.ingest_batches),
        (3, 2 * INGEST_GROUP as u64 + 1),
        "a commit per group, and one for the rest"
    );
    assert_eq!(row_count(&mut service), count as u64);
}

/// The pair of the test above: when no line is waiting, a whole batch is stored at once;
/// it does not wait for the group to fill (nor for the partial-batch delay).
#[test]
fn a_whole_batch_is_stored_when_no_line_waits() {
    let data = tempfile::tempdir().unwrap();
    let (shared, queue) = queued_service(data.path());
    let (tx, lines) = std::sync::mpsc::sync_channel(BATCH);
    let sender = {
        let shared = shared.clone();
        std::thread::spawn(move || {
            for batch in 0..3u64 {
                for n in 0..BATCH as u64 {
                    let line = batch * BATCH as u64 + n + 1;
                    let event = web_event(line, T0, "trickle");
                    tx.send(ReadLine {
                        line: Ok(connlog::events::Line::Event { line, event }),
                        end: line,
                    })
                    .unwrap();
                }
                // The next batch comes only once this one is stored.
                let deadline = Instant::now() + Duration::from_secs(30);
                while row_count(&mut service::lock(&shared)) < (batch + 1) * BATCH as u64 {
                    assert!(
                        Instant::now() < deadline,
                        "batch {batch} waited for more lines"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        })
    };
    let answer =
        ingest_live(&queue, &lines, Input::Endless, BATCH, NEVER, &mut ()).expect("stored");
    sender
        .join()
        .expect("every batch was stored without waiting");
    assert_eq!(answer.accepted, 3 * BATCH as u64);
    let counters = service::lock(&shared).counters();
    assert_eq!((counters.ingest_commits, counters.ingest_batches), (3, 3));
}

/// Has the store under `data` refuse events of this time (a trigger), as a full disk would:
/// `DROP TRIGGER refuse` on the returned connection lifts it.
fn refuse_time(data: &std::path::Path, time: i64) -> rusqlite::Connection {
    let store = rusqlite::Connection::open(data.join("connlog.db")).unwrap();
    store
        .execute_batch(&format!(
            "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.time_ns = {time} \
             BEGIN SELECT RAISE(ABORT, 'the disk is full'); END;"
        ))
        .unwrap();
    store
}

/// A group's inserts run beside the plugin (`store::inserter`), so one the store refuses
/// is known only at the commit: the whole group fails, none of it is acknowledged or
/// visible, and the service, rebuilt from the store, stores the next group as before.
#[test]
fn an_insert_the_store_refuses_fails_its_group_and_the_next_group_is_stored() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::default());
    let store = refuse_time(data.path(), T0 + 13);
    let group = || {
        vec![
            vec![web_event(1, T0, "refused")],
            vec![web_event(2, T0 + 13, "refused")],
            vec![web_event(3, T0, "refused")],
        ]
    };

    for answer in service.ingest_group(group()) {
        let failure = answer.expect_err("the group failed");
        assert!(
            failure.to_string().contains("the disk is full"),
            "{failure}"
        );
    }
    assert_eq!(
        row_count(&mut service),
        0,
        "the plugin was rebuilt from the store"
    );

    let after = service.ingest_group(vec![vec![web_event(4, T0, "next")]]);
    assert_eq!(after[0].as_ref().unwrap(), &vec![EventOutcome::Stored]);
    store.execute_batch("DROP TRIGGER refuse").unwrap();
    for answer in service.ingest_group(group()) {
        assert_eq!(
            answer.unwrap(),
            vec![EventOutcome::Stored],
            "sent again, stored once"
        );
    }
    assert_eq!(row_count(&mut service), 4);
}

/// The next group merges while the one before is made durable, and counts that one's
/// events as stored: when its commit fails, the group behind it fails too (an answer of
/// "already stored" for an event that is not must never be given), nothing of either is
/// visible, and both are stored when sent again.
#[test]
fn a_group_merged_behind_a_commit_that_fails_fails_with_it() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::default());
    let store = refuse_time(data.path(), T0 + 13);
    let first = || {
        vec![vec![
            web_event(1, T0, "first"),
            web_event(2, T0 + 13, "first"),
        ]]
    };
    let behind = || vec![vec![web_event(1, T0, "first"), web_event(3, T0, "behind")]];

    let queued = service.ingest_group_queued(first());
    let answers = service.ingest_group_queued(behind()).wait();
    for answer in queued.wait().into_iter().chain(answers) {
        let failure = answer.expect_err("both groups failed");
        assert!(
            failure.to_string().contains("the disk is full"),
            "{failure}"
        );
    }
    assert_eq!(row_count(&mut service), 0, "rebuilt from the store");
    assert_eq!(service.counters().ingest_commits, 0);

    store.execute_batch("DROP TRIGGER refuse").unwrap();
    let queued = service.ingest_group_queued(first());
    let answers = service.ingest_group_queued(behind()).wait();
    assert_eq!(
        queued.wait()[0].as_ref().unwrap(),
        &vec![EventOutcome::Stored; 2]
    );
    assert_eq!(
        answers[0].as_ref().unwrap(),
        &vec![EventOutcome::Duplicate, EventOutcome::Stored],
        "the first group's event is already stored for the group behind it"
    );
    assert_eq!(row_count(&mut service), 3);
    assert_eq!(service.counters().ingest_commits, 2);
}

/// A reader ahead of the store sends each group while the one before is made durable.
/// When a group's commit fails, the ingest stops with its error. The group before it is
/// stored and counted; the one sent behind it is stored and counted too if it merged once
/// the failure was known, and fails with it otherwise. The position a resumed ingest starts
/// from stays before the failed group, so sending the rest again stores it.
#[test]
fn a_reader_ahead_stops_at_a_failed_commit_with_the_groups_before_it_stored() {
    struct Positions(Vec<u64>);
    impl IngestObserver<u64> for Positions {
        fn committed(&mut self, _: &IngestAnswer, committed: &u64) {
            self.0.push(*committed);
        }
    }
    let data = tempfile::tempdir().unwrap();
    let (shared, queue) = queued_service(data.path());
    let store = refuse_time(data.path(), T0 + 13);
    let group = (INGEST_GROUP * BATCH) as u64;
    let events = || -> Vec<_> {
        (0..4 * group)
            .map(|n| web_event(n, if n == group + 5 { T0 + 13 } else { T0 }, "ahead"))
            .collect()
    };

    let mut positions = Positions(Vec::new());
    let (answer, error) = ingest_live(
        &queue,
        &read_ahead(events()),
        Input::Finite,
        BATCH,
        NEVER,
        &mut positions,
    )
    .expect_err("the second group failed");
    assert!(error.to_string().contains("the disk is full"), "{error}");
    assert!(
        [group, 2 * group].contains(&answer.accepted),
        "the first group, and maybe the third: {}",
        answer.accepted
    );
    assert_eq!(
        positions.0.last(),
        Some(&group),
        "resumes after the first group"
    );
    assert_eq!(
        row_count(&mut service::lock(&shared)),
        answer.accepted,
        "what was counted is stored"
    );
    let counted = answer.accepted;

    store.execute_batch("DROP TRIGGER refuse").unwrap();
    let answer = ingest_live(
        &queue,
        &read_ahead(events()),
        Input::Finite,
        BATCH,
        NEVER,
        &mut (),
    )
    .expect("stored");
    assert_eq!((answer.accepted, answer.duplicates), (4 * group, counted));
    assert_eq!(row_count(&mut service::lock(&shared)), 4 * group);
}

/// The events stored (the journal's head, in a new store) when the first background
/// snapshot was seen, checked after each commit: what a reader ahead of the store leaves
/// when it loads `count` events of `input` under a policy of `every_events`. Also the
/// service, to look at afterwards.
fn first_snapshot_reading_ahead(
    data: &std::path::Path,
    input: Input,
    count: u64,
    every_events: u64,
) -> (SharedConnLog, Option<u64>) {
    struct FirstSnapshot<'a>(&'a SharedConnLog, Option<u64>);
    impl IngestObserver<u64> for FirstSnapshot<'_> {
        fn committed(&mut self, _: &IngestAnswer, _: &u64) {
            let mut service = service::lock(self.0);
            // Returns at once unless a job was asked for.
            service.wait_for_snapshots();
            if service.counters().snapshots_saved > 0 {
                self.1.get_or_insert(service.merged_upto() as u64);
            }
        }
    }

    let (shared, queue) = queued_service(data);
    service::lock(&shared).set_snapshot_policy(SnapshotPolicy {
        every_events,
        ..NO_SNAPSHOTS
    });
    let lines = read_ahead((0..count).map(|n| web_event(n, T0, "bulk")).collect());
    let mut first = FirstSnapshot(&shared, None);
    let answer = ingest_live(&queue, &lines, input, BATCH, NEVER, &mut first).expect("stored");
    assert_eq!(answer.accepted, count);
    let seen = first.1;
    (shared, seen)
}

/// The pair of `durability.rs`'s snapshot every N events: a reader ahead of the store (a
/// bulk load of a followed log's backlog) starts no background snapshot while it fills
/// whole groups, up to `BULK_SNAPSHOT_EVERY` times the policy's events; the flush that
/// finds it caught up (here, its input's end) does.
#[test]
fn a_reader_ahead_of_the_store_defers_background_snapshots_until_it_catches_up() {
    let data = tempfile::tempdir().unwrap();
    // Four whole groups, and the rest of a batch once the input ends: fewer events than
    // the deferral's bound.
    let count = (4 * INGEST_GROUP * BATCH + 3) as u64;
    let every_events = count / BULK_SNAPSHOT_EVERY + 1;
    let (shared, first) =
        first_snapshot_reading_ahead(data.path(), Input::Endless, count, every_events);
    assert_eq!(first, Some(count), "no snapshot before the input's end");
    let mut service = service::lock(&shared);
    service.wait_for_snapshots();
    assert_eq!(service.counters().snapshots_saved, 1, "once caught up");
    assert_eq!(service.unsnapshotted_events(), 0);
}

/// Events in one whole group of batches.
const GROUP: u64 = (INGEST_GROUP * BATCH) as u64;
/// A policy under which a reader ahead of the store for four whole groups passes the bulk
/// bound within the second.
const EVERY_FOR_LONG: u64 = (GROUP * 3 / 2) / BULK_SNAPSHOT_EVERY;

/// The pair of the test above: a reader that stays ahead for more than
/// `BULK_SNAPSHOT_EVERY` times the policy's events gets a background snapshot anyway.
#[test]
fn a_reader_ahead_for_long_is_snapshotted_all_the_same() {
    let data = tempfile::tempdir().unwrap();
    let (_, first) =
        first_snapshot_reading_ahead(data.path(), Input::Endless, 4 * GROUP, EVERY_FOR_LONG);
    assert_eq!(
        first,
        Some(2 * GROUP),
        "snapshotted after the group that passed {} events",
        EVERY_FOR_LONG * BULK_SNAPSHOT_EVERY
    );
}

/// The pair of the test above: a finite input (a file) ahead for as long gets no background
/// snapshot while it loads, only once it has ended.
#[test]
fn a_finite_input_is_snapshotted_once_it_ends_however_long_it_was_ahead() {
    let data = tempfile::tempdir().unwrap();
    let (shared, first) =
        first_snapshot_reading_ahead(data.path(), Input::Finite, 4 * GROUP, EVERY_FOR_LONG);
    assert_eq!(first, None, "no snapshot while it loaded");
    let mut service = service::lock(&shared);
    service.wait_for_snapshots();
    assert_eq!(service.counters().snapshots_saved, 1, "once it ended");
    assert_eq!(service.unsnapshotted_events(), 0);
}
