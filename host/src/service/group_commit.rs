//! Group commit: ingest batches from concurrent callers share one transaction, and so one
//! fsync. A caller queues its batch (or, reading ahead, several) and waits for the
//! service; whoever gets the service takes every batch queued by then, stores them
//! together (`ConnLog::ingest_group`), and leaves each caller its own answers before it
//! lets the service go. A lone caller stores its batches alone: grouping costs it nothing.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{BatchAnswer, ServiceError, SharedConnLog, lock};
use crate::model::{ConnectionEvent, EventOutcome, StorageError};

/// An ingest reading ahead of the store (`IngestQueue::reading_ahead`).
pub struct ReadingAhead<'a>(&'a IngestQueue);

impl Drop for ReadingAhead<'_> {
    fn drop(&mut self) {
        lock(&self.0.service).reader_ahead(false);
    }
}

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
        self.ingest_batches(vec![events])
            .pop()
            .expect("one answer per batch")
    }

    /// `ingest` for several batches of one caller, all in the same commit (with whatever
    /// other batches are waiting): one answer per batch, in order.
    pub fn ingest_batches(&self, batches: Vec<Vec<ConnectionEvent>>) -> Vec<BatchAnswer> {
        if batches.is_empty() {
            return Vec::new();
        }
        let tickets = {
            let mut waiting = self.waiting();
            let first = waiting.next_ticket;
            waiting.next_ticket += batches.len() as u64;
            waiting.batches.extend((first..).zip(batches));
            first..waiting.next_ticket
        };
        let mut service = lock(&self.service);
        let group = {
            let mut waiting = self.waiting();
            // Another caller stored them all (a caller's batches are queued and taken
            // together, under one lock).
            if waiting.answers.contains_key(&tickets.start) {
                return tickets
                    .map(|t| waiting.answers.remove(&t).expect("answered together"))
                    .collect();
            }
            std::mem::take(&mut waiting.batches)
        };
        if !group.iter().any(|(t, _)| tickets.contains(t)) {
            // The caller that took them panicked before answering (the service's lock was
            // poisoned). Whether they were stored is unknown; sending them again is safe.
            return tickets
                .map(|_| {
                    Err(ServiceError::Storage(StorageError::Unavailable(
                        "the batch was lost to a failed concurrent ingest; nothing of it is \
                         acknowledged, and sending it again is safe"
                            .into(),
                    )))
                })
                .collect();
        }
        let (group_tickets, batches): (Vec<u64>, Vec<_>) = group.into_iter().unzip();
        let answers = service.ingest_group(batches);
        let mut waiting = self.waiting();
        let mut own = Vec::with_capacity((tickets.end - tickets.start) as usize);
        for (t, answer) in group_tickets.into_iter().zip(answers) {
            if tickets.contains(&t) {
                own.push(answer);
            } else {
                waiting.answers.insert(t, answer);
            }
        }
        own
    }

    /// Marks an ingest as reading ahead of the store (it has a whole group of lines
    /// waiting) until the mark is dropped: meanwhile the service starts no background
    /// snapshot (`ConnLog::snapshot_if_due`).
    pub fn reading_ahead(&self) -> ReadingAhead<'_> {
        lock(&self.service).reader_ahead(true);
        ReadingAhead(self)
    }

    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
