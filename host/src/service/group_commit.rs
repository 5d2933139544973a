//! Group commit: ingest batches from concurrent callers share one transaction, and so one
//! fsync. A caller queues its batch (or, reading ahead, several). When no other caller is
//! storing a group, it leads: it waits for the service, takes every batch queued by then,
//! stores them together (`ConnLog::ingest_group_queued`) and leaves each caller its own
//! answers. The others wait for those answers, not for the service: a caller whose batch
//! is stored returns at once, while the next leader stores the next group. A lone caller
//! stores its batches alone: grouping costs it nothing.
//!
//! A leader lets the service and the lead go once its group is merged and its commit
//! queued, and waits for the commit on its own: the next group merges while this one is
//! made durable, and no answer is given before it is.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, TryLockError};

use super::{BatchAnswer, GroupAnswers, ServiceError, SharedConnLog, lock, lock_to_ingest};
use crate::model::{ConnectionEvent, EventOutcome, StorageError};

/// Whether an input that reads ahead of the store comes to an end, which decides when the
/// service snapshots a bulk load in the background (`ConnLog::snapshot_if_due`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// A file: its end comes, and the snapshot with it.
    Finite,
    /// A followed log or a pipe, which may stay ahead for good.
    Endless,
}

/// An ingest reading ahead of the store (`IngestQueue::reading_ahead`).
pub struct ReadingAhead<'a>(&'a IngestQueue, Input);

impl Drop for ReadingAhead<'_> {
    fn drop(&mut self) {
        lock(&self.0.service).reader_ahead(self.1, false);
    }
}

/// Where the ingesters of one service meet: the HTTP endpoint, a followed log and
/// `connlog ingest` all store through it.
pub struct IngestQueue {
    service: SharedConnLog,
    groups: Groups<Vec<ConnectionEvent>, BatchAnswer>,
}

impl IngestQueue {
    pub fn new(service: SharedConnLog) -> Self {
        Self {
            service,
            groups: Groups::default(),
        }
    }

    pub fn service(&self) -> &SharedConnLog {
        &self.service
    }

    /// Batches waiting for the service now.
    pub fn queued(&self) -> usize {
        self.groups.queued()
    }

    pub fn into_service(self) -> SharedConnLog {
        self.service
    }

    /// Validates, stores and merges a batch, committed with whatever other batches are
    /// waiting. When this returns `Ok`, every `Stored` event is durable.
    pub fn ingest(&self, events: Vec<ConnectionEvent>) -> Result<Vec<EventOutcome>, ServiceError> {
        self.ingest_batches(vec![events])
            .pop()
            .expect("one answer per batch")
    }

    /// `ingest` for several batches of one caller, all in the same commit (with whatever
    /// other batches are waiting): one answer per batch, in order.
    pub fn ingest_batches(&self, batches: Vec<Vec<ConnectionEvent>>) -> Vec<BatchAnswer> {
        self.submit(batches).answers()
    }

    /// `ingest_batches` up to the commit: returns once the batches are merged and their
    /// commit queued (or answered, by another caller's group), so that a caller with more
    /// can send the next ones while this commit is made durable. Other callers' batches
    /// in a group this one led are answered only with its own (`Submitted::answers`).
    pub fn submit(&self, batches: Vec<Vec<ConnectionEvent>>) -> Submitted<'_> {
        let submitted = self.groups.submit(
            batches,
            || lock_to_ingest(&self.service),
            |service, group| service.ingest_group_queued(group),
            || {
                // A leader that took them panicked before answering (the service's lock
                // was poisoned). Whether they were stored is unknown; sending them again
                // is safe.
                Err(ServiceError::Storage(StorageError::Unavailable(
                    "the batch was lost to a failed concurrent ingest; nothing of it is \
                     acknowledged, and sending it again is safe"
                        .into(),
                )))
            },
        );
        Submitted {
            queue: self,
            submitted,
        }
    }

    /// After a group's commit: settles it in the service (`ConnLog::settled`), so that the
    /// live feed and the service log follow at once. Not if the service is held: whoever
    /// holds it settles it before letting go (`service::lock` on taking it, the next group
    /// on queueing its own commit or, having queued none, on ending). Nor if the next
    /// group's commit is queued by now, which its own leader settles likewise.
    fn settle_service(&self) {
        match self.service.try_lock() {
            Ok(mut service) => service.settled_if_done(),
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner().settled_if_done(),
            Err(TryLockError::WouldBlock) => {}
        }
    }

    /// Marks an ingest as reading ahead of the store (it has a whole group of lines
    /// waiting) until the mark is dropped: meanwhile the service holds background
    /// snapshots back (`ConnLog::snapshot_if_due`).
    pub fn reading_ahead(&self, input: Input) -> ReadingAhead<'_> {
        lock(&self.service).reader_ahead(input, true);
        ReadingAhead(self, input)
    }
}

/// Batches sent with `IngestQueue::submit`, whose answers wait for their commit.
pub struct Submitted<'a> {
    queue: &'a IngestQueue,
    submitted: Pending<'a, Vec<ConnectionEvent>, BatchAnswer, GroupAnswers>,
}

impl Submitted<'_> {
    /// One answer per batch, in order, once their commit is durable (or failed).
    pub fn answers(self) -> Vec<BatchAnswer> {
        let queue = self.queue;
        self.submitted.answers(|stored| {
            let answers = stored.wait();
            queue.settle_service();
            answers
        })
    }
}

/// Batches `B` of concurrent callers, stored a group at a time by whichever caller leads,
/// and their answers `A`.
struct Groups<B, A> {
    waiting: Mutex<Waiting<B, A>>,
    /// Notified when a leader is done: it left its answers and let the service go.
    led: Condvar,
}

struct Waiting<B, A> {
    next_ticket: u64,
    batches: Vec<(u64, B)>,
    /// Answers for callers whose batch another caller stored.
    answers: HashMap<u64, A>,
    /// A caller is storing a group, or waiting for the service to store one.
    leading: bool,
    /// Batches of groups stored and not yet answered: their leaders wait for the commit.
    settling: HashSet<u64>,
}

impl<B, A> Default for Groups<B, A> {
    fn default() -> Self {
        Self {
            waiting: Mutex::new(Waiting {
                next_ticket: 0,
                batches: Vec::new(),
                answers: HashMap::new(),
                leading: false,
                settling: HashSet::new(),
            }),
            led: Condvar::new(),
        }
    }
}

/// A caller's batches, answered (by another caller's group), or stored in a group this
/// caller led and must settle.
enum Pending<'a, B, A, P> {
    Answered(Vec<A>),
    Led {
        lead: Lead<'a, B, A>,
        stored: P,
        tickets: Range<u64>,
    },
}

impl<B, A, P> Pending<'_, B, A, P> {
    /// The caller's answers, in order. A group it led is `settle`d into one answer per
    /// batch first, and the other callers' answers left for them.
    fn answers(self, settle: impl FnOnce(P) -> Vec<A>) -> Vec<A> {
        let (lead, stored, tickets) = match self {
            Pending::Answered(answers) => return answers,
            Pending::Led {
                lead,
                stored,
                tickets,
            } => (lead, stored, tickets),
        };
        let answers = settle(stored);
        let mut waiting = lead.groups.waiting();
        let mut own = Vec::with_capacity((tickets.end - tickets.start) as usize);
        for (&t, answer) in lead.group.iter().zip(answers) {
            if tickets.contains(&t) {
                own.push(answer);
            } else {
                waiting.answers.insert(t, answer);
            }
        }
        // The lead, dropped after, wakes the callers whose answers are in.
        own
    }
}

/// The leader's turn over its group's batches: when dropped, even by a panic, it gives up
/// the lead (if `hand_over` did not) and those batches, so that the callers waiting for
/// their answers wake (and find whether they got one).
struct Lead<'a, B, A> {
    groups: &'a Groups<B, A>,
    group: Vec<u64>,
    leading: bool,
}

impl<B, A> Lead<'_, B, A> {
    /// Lets another caller lead the next group.
    fn hand_over(&mut self) {
        self.groups.waiting().leading = false;
        self.leading = false;
        self.groups.led.notify_all();
    }
}

impl<B, A> Drop for Lead<'_, B, A> {
    fn drop(&mut self) {
        let mut waiting = self.groups.waiting();
        if self.leading {
            waiting.leading = false;
        }
        for t in &self.group {
            waiting.settling.remove(t);
        }
        drop(waiting);
        self.groups.led.notify_all();
    }
}

impl<B, A> Groups<B, A> {
    fn queued(&self) -> usize {
        self.waiting().batches.len()
    }

    /// Queues `batches` and returns their answers, in order, once a group holding them
    /// is stored: by another caller, or by this one, which `hold`s the store, `store`s
    /// every batch queued by then, lets the store and the lead go, and `settle`s what the
    /// store left into one answer each, in order. `lost` answers batches a leader took and
    /// never answered (it panicked).
    #[cfg(test)]
    fn store<S, P>(
        &self,
        batches: Vec<B>,
        hold: impl FnOnce() -> S,
        store: impl FnOnce(&mut S, Vec<B>) -> P,
        settle: impl FnOnce(P) -> Vec<A>,
        lost: impl Fn() -> A,
    ) -> Vec<A> {
        self.submit(batches, hold, store, lost).answers(settle)
    }

    /// Queues `batches` until a group holding them is stored: by another caller, which
    /// answers them, or by this one, which `hold`s the store, `store`s every batch queued
    /// by then, and lets the store and the lead go. It must then settle the group
    /// (`Pending::answers`), also for the others. `lost` answers batches a leader took and
    /// never answered (it panicked).
    fn submit<S, P>(
        &self,
        batches: Vec<B>,
        hold: impl FnOnce() -> S,
        store: impl FnOnce(&mut S, Vec<B>) -> P,
        lost: impl Fn() -> A,
    ) -> Pending<'_, B, A, P> {
        if batches.is_empty() {
            return Pending::Answered(Vec::new());
        }
        let mut waiting = self.waiting();
        let first = waiting.next_ticket;
        waiting.next_ticket += batches.len() as u64;
        waiting.batches.extend((first..).zip(batches));
        let tickets = first..waiting.next_ticket;
        // Another caller stores them all, or none: a caller's batches are queued together
        // and taken together.
        while !waiting.answers.contains_key(&tickets.start)
            && (waiting.leading || waiting.settling.contains(&tickets.start))
        {
            waiting = self
                .led
                .wait(waiting)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if waiting.answers.contains_key(&tickets.start) {
            return Pending::Answered(
                tickets
                    .map(|t| waiting.answers.remove(&t).expect("answered together"))
                    .collect(),
            );
        }
        if !waiting.batches.iter().any(|(t, _)| tickets.contains(t)) {
            return Pending::Answered(tickets.map(|_| lost()).collect());
        }
        waiting.leading = true;
        drop(waiting);
        let mut lead = Lead {
            groups: self,
            group: Vec::new(),
            leading: true,
        };
        let mut held = hold();
        // Batches queued while this caller waited for the store join the group.
        let batches: Vec<B> = {
            let mut waiting = self.waiting();
            let taken = std::mem::take(&mut waiting.batches);
            waiting.settling.extend(taken.iter().map(|&(t, _)| t));
            taken
                .into_iter()
                .map(|(t, batch)| {
                    lead.group.push(t);
                    batch
                })
                .collect()
        };
        let stored = store(&mut held, batches);
        drop(held);
        lead.hand_over();
        Pending::Led {
            lead,
            stored,
            tickets,
        }
    }

    fn waiting(&self) -> MutexGuard<'_, Waiting<B, A>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc::{Receiver, Sender, channel};
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    use super::*;

    const LOST: u32 = 0;
    const PATIENCE: Duration = Duration::from_secs(30);

    type Caller = JoinHandle<Vec<u32>>;

    fn tenfold(group: Vec<u32>) -> Vec<u32> {
        group.iter().map(|b| b * 10).collect()
    }

    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done() {
            assert!(Instant::now() < deadline, "never {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A caller that must never lead: its batches are stored by another's group.
    fn follower(groups: &Arc<Groups<u32, u32>>, batch: u32) -> Caller {
        let groups = groups.clone();
        std::thread::spawn(move || {
            groups.store(
                vec![batch],
                || panic!("batch {batch} led"),
                |(), _| unreachable!(),
                |answers: Vec<u32>| answers,
                || LOST,
            )
        })
    }

    /// A caller that leads once `go` says so: it then holds the store and answers its
    /// group with `store`.
    fn leader(
        groups: &Arc<Groups<u32, u32>>,
        batch: u32,
        go: Receiver<()>,
        store: fn(Vec<u32>) -> Vec<u32>,
    ) -> Caller {
        settling_leader(groups, batch, go, store, |answers| answers)
    }

    /// `leader`, whose group is answered only once `settle` returns (as a leader waits for
    /// its commit).
    fn settling_leader(
        groups: &Arc<Groups<u32, u32>>,
        batch: u32,
        go: Receiver<()>,
        store: fn(Vec<u32>) -> Vec<u32>,
        settle: impl FnOnce(Vec<u32>) -> Vec<u32> + Send + 'static,
    ) -> Caller {
        let groups = groups.clone();
        std::thread::spawn(move || {
            groups.store(
                vec![batch],
                || go.recv().unwrap(),
                |(), group| store(group),
                settle,
                || LOST,
            )
        })
    }

    /// A leader of batch 1, waiting for the store until the returned sender says so, and
    /// `followers` queued behind it.
    fn queued_behind_a_leader(
        groups: &Arc<Groups<u32, u32>>,
        followers: &[u32],
        store: fn(Vec<u32>) -> Vec<u32>,
    ) -> (Sender<()>, Caller, Vec<Caller>) {
        let (go_tx, go) = channel();
        let first = leader(groups, 1, go, store);
        wait_until("queued the leader's batch", || groups.queued() == 1);
        let followers: Vec<_> = followers.iter().map(|&b| follower(groups, b)).collect();
        wait_until("queued every batch", || {
            groups.queued() == 1 + followers.len()
        });
        (go_tx, first, followers)
    }

    #[test]
    fn a_lone_caller_stores_its_batches_as_one_group() {
        let groups = Groups::default();
        let mut groups_stored = Vec::new();
        let answers = groups.store(
            vec![1, 2, 3],
            || (),
            |(), group| {
                groups_stored.push(group.clone());
                tenfold(group)
            },
            |answers| answers,
            || LOST,
        );
        assert_eq!(answers, [10, 20, 30]);
        assert_eq!(groups_stored, [vec![1, 2, 3]]);
        assert_eq!(groups.queued(), 0);
    }

    /// A caller whose batch another's group stored returns with its answer, and does not
    /// wait for the store while the next leader holds it.
    #[test]
    fn a_stored_batch_is_answered_while_the_next_group_holds_the_store() {
        let groups = Arc::new(Groups::default());
        let (go, first, mut grouped) = queued_behind_a_leader(&groups, &[2], tenfold);
        go.send(()).unwrap();
        assert_eq!(first.join().unwrap(), [10]);

        let (next_go, go) = channel();
        let next = leader(&groups, 3, go, tenfold);
        assert_eq!(grouped.pop().unwrap().join().unwrap(), [20]);
        next_go.send(()).unwrap();
        assert_eq!(next.join().unwrap(), [30]);
        assert_eq!(groups.queued(), 0);
    }

    #[test]
    fn batches_queued_while_the_leader_waits_for_the_store_join_its_group() {
        let groups = Arc::new(Groups::default());
        let (go, first, followers) = queued_behind_a_leader(&groups, &[2, 3, 4], tenfold);
        go.send(()).unwrap();
        assert_eq!(first.join().unwrap(), [10]);
        for (b, f) in (2..).zip(followers) {
            assert_eq!(f.join().unwrap(), [b * 10]);
        }
    }

    /// A leader waiting for its group's commit has let the store and the lead go: the
    /// next caller stores its own group meanwhile, while the callers of the first group get
    /// nothing until the commit is settled (and neither lead nor count as lost).
    #[test]
    fn the_next_group_is_stored_while_a_leader_settles_its_own() {
        let groups = Arc::new(Groups::default());
        let (go, may_lead) = channel();
        let (settled, settle) = channel::<()>();
        let first = settling_leader(&groups, 1, may_lead, tenfold, move |answers| {
            settle.recv().unwrap();
            answers
        });
        wait_until("queued the leader's batch", || groups.queued() == 1);
        let grouped = follower(&groups, 2);
        wait_until("queued the follower's batch", || groups.queued() == 2);
        go.send(()).unwrap();
        wait_until("took the group", || groups.queued() == 0);

        let (next_go, may_lead) = channel();
        next_go.send(()).unwrap();
        assert_eq!(leader(&groups, 3, may_lead, tenfold).join().unwrap(), [30]);
        assert!(!first.is_finished() && !grouped.is_finished());
        settled.send(()).unwrap();
        assert_eq!(first.join().unwrap(), [10]);
        assert_eq!(grouped.join().unwrap(), [20]);
    }

    /// A leader that panics while it waits for its commit: its group's callers are told
    /// their batches were lost, and the next caller leads.
    #[test]
    fn batches_of_a_leader_that_panicked_settling_are_answered_as_lost() {
        let groups = Arc::new(Groups::default());
        let (go, may_lead) = channel();
        let doomed = settling_leader(&groups, 1, may_lead, tenfold, |_| {
            panic!("the commit could not be waited for")
        });
        wait_until("queued the leader's batch", || groups.queued() == 1);
        let grouped = follower(&groups, 2);
        wait_until("queued the follower's batch", || groups.queued() == 2);
        go.send(()).unwrap();
        assert!(doomed.join().is_err());
        assert_eq!(grouped.join().unwrap(), [LOST]);

        let (go, may_lead) = channel();
        go.send(()).unwrap();
        assert_eq!(leader(&groups, 3, may_lead, tenfold).join().unwrap(), [30]);
    }

    /// A leader that panics takes its group's batches with it: their callers are told
    /// they were lost (never stored twice, never left waiting), and the next caller leads.
    #[test]
    fn batches_of_a_leader_that_panicked_are_answered_as_lost() {
        let groups = Arc::new(Groups::default());
        let (go, doomed, mut grouped) =
            queued_behind_a_leader(&groups, &[2], |_| panic!("the plugin trapped badly"));
        go.send(()).unwrap();
        assert!(doomed.join().is_err());
        assert_eq!(grouped.pop().unwrap().join().unwrap(), [LOST]);

        let (go_tx, go) = channel();
        go_tx.send(()).unwrap();
        assert_eq!(leader(&groups, 3, go, tenfold).join().unwrap(), [30]);
    }
}
