//! Group commit through `IngestQueue`: batches queued while the service is busy are stored
//! under one commit, and each caller gets its own batch's outcomes.

mod service_support;
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use connlog::model::EventOutcome;
use connlog::plugin::PluginSource;
use connlog::service::{self, IngestQueue};
use service_support::*;

const CALLERS: u64 = 4;

#[test]
fn batches_waiting_for_the_service_share_one_commit_and_each_caller_gets_its_own_answer() {
    let data = tempfile::tempdir().unwrap();
    let shared = Arc::new(Mutex::new(open(data.path(), PluginSource::default())));
    let queue = Arc::new(IngestQueue::new(shared.clone()));

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
    let shared = Arc::new(Mutex::new(open(data.path(), PluginSource::default())));
    let queue = IngestQueue::new(shared.clone());
    for n in 0..3 {
        let outcomes = queue.ingest(vec![web_event(n, T0, "alone")]).unwrap();
        assert_eq!(outcomes, vec![EventOutcome::Stored]);
    }
    let mut service = service::lock(&shared);
    let counters = service.counters();
    assert_eq!((counters.ingest_commits, counters.ingest_batches), (3, 3));
    assert_eq!(row_count(&mut service), 3);
}
