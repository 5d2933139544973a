//! Group commit: ingest batches from concurrent callers share one transaction, and so one
//! fsync, and the fsync of one group overlaps the plugin calls of the next.
//!
//! A caller queues its batch (or, reading ahead, several). If no caller is storing, it
//! becomes the runner: it takes the service and stores the batches queued by then, up to
//! `INGEST_GROUP` of them, as one group (`ConnLog::ingest_group_unsynced`), whose commit
//! does not wait for the disk. While a thread of its own syncs the WAL, the runner stores
//! the next group, the batches queued meanwhile; each group's callers get their answers
//! once its sync returned, and then queue their next batches while the runner goes on.
//! Other callers wait for their answers without the service. The runner lets the service
//! go only when every group it committed is durable, so no query, feed or swap ever sees a
//! row that is not yet on disk; and it lets it go after `MAX_HOLD` even if batches keep
//! coming, so that a steady stream does not hold queries up (a waiting caller takes over).
//! A lone caller stores its batches alone: grouping costs it nothing.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{BatchAnswer, ServiceError, SharedConnLog, lock};
use crate::ingest::INGEST_GROUP;
use crate::model::{ConnectionEvent, EventOutcome, StorageError};
use crate::store::WalSync;

/// How long a runner keeps the service while batches keep coming: a query waits at most
/// this and one group more.
const MAX_HOLD: Duration = Duration::from_millis(100);

/// Where the ingesters of one service meet: the HTTP endpoint, a followed log and
/// `connlog ingest` all store through it.
pub struct IngestQueue {
    service: SharedConnLog,
    waiting: Mutex<Waiting>,
    /// Signalled when answers are left in `Waiting::answers`, and when a runner stops.
    answered: Condvar,
}

#[derive(Default)]
struct Waiting {
    next_ticket: u64,
    batches: Vec<(u64, Vec<ConnectionEvent>)>,
    /// Answers for callers whose batch another caller stored.
    answers: HashMap<u64, BatchAnswer>,
    /// A caller is storing batches (and holds, or is about to take, the service).
    running: bool,
}

/// A group committed but not yet synced: its tickets, answers and the sync under way.
type Unsynced = (Vec<u64>, Vec<BatchAnswer>, Syncing);

impl IngestQueue {
    pub fn new(service: SharedConnLog) -> Self {
        Self {
            service,
            waiting: Mutex::default(),
            answered: Condvar::new(),
        }
    }

    pub fn service(&self) -> &SharedConnLog {
        &self.service
    }

    /// Batches waiting for the service now.
    pub fn queued(&self) -> usize {
        self.waiting().batches.len()
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

    /// `ingest` for several batches of one caller, committed with whatever other batches
    /// are waiting, `INGEST_GROUP` batches at most per commit: one answer per batch, in
    /// order.
    pub fn ingest_batches(&self, batches: Vec<Vec<ConnectionEvent>>) -> Vec<BatchAnswer> {
        if batches.is_empty() {
            return Vec::new();
        }
        let mut waiting = self.waiting();
        let first = waiting.next_ticket;
        waiting.next_ticket += batches.len() as u64;
        waiting.batches.extend((first..).zip(batches));
        let tickets = first..waiting.next_ticket;
        loop {
            if tickets.clone().all(|t| waiting.answers.contains_key(&t)) {
                return tickets
                    .map(|t| waiting.answers.remove(&t).expect("answered"))
                    .collect();
            }
            if waiting.running {
                waiting = self
                    .answered
                    .wait(waiting)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // No one is storing: this caller runs what is queued, its own batches first
            // among them or after those queued before.
            waiting.running = true;
            drop(waiting);
            Run {
                queue: self,
                taken: Vec::new(),
            }
            .store_queued();
            waiting = self.waiting();
        }
    }

    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Leaves the answers for their callers.
    fn publish(&self, tickets: Vec<u64>, answers: Vec<BatchAnswer>) {
        let mut waiting = self.waiting();
        waiting.answers.extend(tickets.into_iter().zip(answers));
        self.answered.notify_all();
    }
}

/// One runner's turn with the service. Dropped (also by a panic), it answers whatever it
/// took and could not answer, and lets another caller run.
struct Run<'q> {
    queue: &'q IngestQueue,
    /// Tickets taken from the queue and not yet answered.
    taken: Vec<u64>,
}

impl Run<'_> {
    /// Stores groups while batches are queued, for up to `MAX_HOLD`, each group's sync
    /// overlapping the next group's plugin calls, and returns when all are answered.
    fn store_queued(mut self) {
        let mut service = lock(&self.queue.service);
        let held = Instant::now();
        let mut unsynced: Option<Unsynced> = None;
        loop {
            let group: Vec<_> = {
                let mut waiting = self.queue.waiting();
                let take = waiting.batches.len().min(INGEST_GROUP);
                waiting.batches.drain(..take).collect()
            };
            if group.is_empty() {
                break;
            }
            let (tickets, batches): (Vec<u64>, Vec<_>) = group.into_iter().unzip();
            self.taken.extend(&tickets);
            let (answers, sync) = service.ingest_group_unsynced(batches);
            if let Some(previous) = unsynced.take() {
                self.answer_when_synced(previous);
            }
            match sync {
                Some(wal) => unsynced = Some((tickets, answers, Syncing::start(wal))),
                None => self.answer(tickets, answers),
            }
            if held.elapsed() >= MAX_HOLD {
                break;
            }
        }
        if let Some(last) = unsynced {
            self.answer_when_synced(last);
        }
        // Every group committed under the service is durable: let it go.
        drop(service);
    }

    fn answer_when_synced(&mut self, (tickets, answers, sync): Unsynced) {
        let answers = match sync.wait() {
            Ok(()) => answers,
            Err(e) => {
                tracing::error!(error = %e, "syncing the store's WAL failed");
                let error = StorageError::Unavailable(format!(
                    "the store could not be synced to disk ({e}): these events may or may \
                     not be stored, and sending them again is safe"
                ));
                answers
                    .into_iter()
                    .map(|a| a.and(Err(ServiceError::Storage(error.clone()))))
                    .collect()
            }
        };
        self.answer(tickets, answers);
    }

    fn answer(&mut self, tickets: Vec<u64>, answers: Vec<BatchAnswer>) {
        self.taken.retain(|t| !tickets.contains(t));
        self.queue.publish(tickets, answers);
    }
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        let lost = std::mem::take(&mut self.taken);
        // Only a panic leaves any: whether they were stored is unknown.
        let answers: Vec<BatchAnswer> = lost
            .iter()
            .map(|_| {
                Err(ServiceError::Storage(StorageError::Unavailable(
                    "the batch was lost to a failed concurrent ingest; nothing of it is \
                     acknowledged, and sending it again is safe"
                        .into(),
                )))
            })
            .collect();
        let mut waiting = self.queue.waiting();
        waiting.answers.extend(lost.into_iter().zip(answers));
        waiting.running = false;
        self.queue.answered.notify_all();
    }
}

/// A WAL sync under way on a thread of its own (or done already, if no thread could be
/// started).
enum Syncing {
    Thread(JoinHandle<std::io::Result<()>>),
    Done(std::io::Result<()>),
}

impl Syncing {
    fn start(wal: Arc<WalSync>) -> Self {
        let sync = wal.clone();
        match std::thread::Builder::new()
            .name("connlog-wal-sync".into())
            .spawn(move || sync.sync())
        {
            Ok(thread) => Syncing::Thread(thread),
            Err(_) => Syncing::Done(wal.sync()),
        }
    }

    fn wait(self) -> std::io::Result<()> {
        match self {
            Syncing::Thread(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the WAL sync thread panicked"))),
            Syncing::Done(result) => result,
        }
    }
}
