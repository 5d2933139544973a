//! What an ingest group appended, kept beside the inserter's queue so that the journal
//! answers without waiting for the inserts (and for the commit queued before them):
//! `journal.append` counts these ids as stored, and `session-events` adds these session
//! events to the committed store's answer. Both follow the group's savepoints.

use std::sync::Arc;

use foldhash::{HashMap, HashSet};

use crate::model::{ConnectionEvent, SessionKey, Uuid};

/// One group's appended ids and batches (the batches shared with the inserter's queue, not
/// copied), with each session event in them by connection id.
#[derive(Default)]
pub(super) struct Appended {
    /// Every id appended (the journal's read transaction does not see them).
    ids: HashSet<Uuid>,
    /// Those of them noted since the last savepoint, forgotten if it is rolled back. An id
    /// is noted before its batch is queued, and a failure between the two still rolls back.
    batch_ids: Vec<Uuid>,
    batches: Vec<Arc<Vec<ConnectionEvent>>>,
    /// (batch, index) of each event with a connection id, in the order appended.
    by_connection: HashMap<Uuid, Vec<(u32, u32)>>,
    /// How many batches came before the last savepoint.
    savepoint: usize,
}

impl Appended {
    pub(super) fn contains(&self, id: &Uuid) -> bool {
        self.ids.contains(id)
    }

    /// Counts an event as appended (the group and the committed store both said it was new).
    pub(super) fn note(&mut self, id: Uuid) {
        self.ids.insert(id);
        self.batch_ids.push(id);
    }

    /// Holds a batch queued for the inserter, and indexes its session events.
    pub(super) fn push(&mut self, events: &Arc<Vec<ConnectionEvent>>) {
        let batch = self.batches.len() as u32;
        for (i, event) in events.iter().enumerate() {
            if let Some(connection) = event.connection_id {
                self.by_connection
                    .entry(connection)
                    .or_default()
                    .push((batch, i as u32));
            }
        }
        self.batches.push(events.clone());
    }

    /// Marks where the next batch starts (a savepoint, or one released: what came before
    /// it stays).
    pub(super) fn savepoint(&mut self) {
        self.batch_ids.clear();
        self.savepoint = self.batches.len();
    }

    /// Forgets what was appended since the last `savepoint` (rolled back to it).
    pub(super) fn rollback_to_savepoint(&mut self) {
        for id in self.batch_ids.drain(..) {
            self.ids.remove(&id);
        }
        while self.batches.len() > self.savepoint {
            let batch = self.batches.pop().expect("longer than the savepoint");
            let at = self.batches.len() as u32;
            for connection in batch.iter().filter_map(|e| e.connection_id) {
                // Its places in this batch are the last ones, in the order appended.
                if let Some(places) = self.by_connection.get_mut(&connection) {
                    while places.last().is_some_and(|&(b, _)| b == at) {
                        places.pop();
                    }
                    if places.is_empty() {
                        self.by_connection.remove(&connection);
                    }
                }
            }
        }
    }

    /// Empties it, keeping its room for the next group.
    pub(super) fn clear(&mut self) {
        self.ids.clear();
        self.clear_batches();
    }

    /// The ids appended, emptying it as `clear` does.
    pub(super) fn drain_ids(&mut self) -> impl Iterator<Item = Uuid> + '_ {
        self.clear_batches();
        self.ids.drain()
    }

    fn clear_batches(&mut self) {
        self.batch_ids.clear();
        self.batches.clear();
        self.by_connection.clear();
        self.savepoint = 0;
    }

    /// Adds to `events` (what the store answered for `key`) the events of `key` held here
    /// that it does not hold yet.
    pub(super) fn add_to(&self, key: &SessionKey, events: &mut Vec<ConnectionEvent>) {
        let Some(places) = self.by_connection.get(&key.connection_id) else {
            return;
        };
        for &(batch, i) in places {
            let event = &self.batches[batch as usize][i as usize];
            if event.workspace_id == key.workspace_id
                && event.agent_name == key.agent_name
                && !events.iter().any(|known| known.id == event.id)
            {
                events.push(event.clone());
            }
        }
    }
}
