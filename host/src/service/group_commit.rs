//! Group commit: ingest batches from concurrent callers share one transaction, and so one
//! fsync. A caller queues its batch and waits for the service; whoever gets the service
//! takes every batch queued by then, stores them together (`ConnLog::ingest_group`), and
//! leaves each caller its own answer before it lets the service go. A lone caller stores
//! its batch alone, as before: grouping costs it nothing.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{BatchAnswer, ServiceError, SharedConnLog, lock};
use crate::model::{ConnectionEvent, EventOutcome, StorageError};

/// Where the ingesters of one service meet: the HTTP endpoint, a followed log and
/// `connlog ingest` all store through it.
pub struct IngestQueue {
    service: SharedConnLog,
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    next_ticket: u64,
    batches: Vec<(u64, Vec<ConnectionEvent>)>,
    /// Answers for callers whose batch another caller stored.
    answers: HashMap<u64, BatchAnswer>,
}

impl IngestQueue {
    pub fn new(service: SharedConnLog) -> Self {
        Self {
            service,
            waiting: Mutex::default(),
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
        let ticket = {
            let mut waiting = self.waiting();
            let ticket = waiting.next_ticket;
            waiting.next_ticket += 1;
            waiting.batches.push((ticket, events));
            ticket
        };
        let mut service = lock(&self.service);
        let group = {
            let mut waiting = self.waiting();
            if let Some(answer) = waiting.answers.remove(&ticket) {
                return answer;
            }
            std::mem::take(&mut waiting.batches)
        };
        if !group.iter().any(|(t, _)| *t == ticket) {
            // The caller that took it panicked before answering (the service's lock was
            // poisoned). Whether it was stored is unknown; sending it again is safe.
            return Err(ServiceError::Storage(StorageError::Unavailable(
                "the batch was lost to a failed concurrent ingest; nothing of it is \
                 acknowledged, and sending it again is safe"
                    .into(),
            )));
        }
        let (tickets, batches): (Vec<u64>, Vec<_>) = group.into_iter().unzip();
        let answers = service.ingest_group(batches);
        let mut waiting = self.waiting();
        let mut own = None;
        for (t, answer) in tickets.into_iter().zip(answers) {
            if t == ticket {
                own = Some(answer);
            } else {
                waiting.answers.insert(t, answer);
            }
        }
        own.expect("the caller's batch is in its group")
    }

    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
