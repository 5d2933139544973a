//! The session events an ingest group appended, kept beside the inserter's queue so that
//! `Journal::session_events` answers without waiting for the inserts (and for the commit
//! queued before them): the committed store's answer, plus these.

use std::sync::Arc;

use foldhash::HashMap;

use crate::model::{ConnectionEvent, SessionKey, Uuid};

/// One group's appended batches (shared with the inserter's queue, not copied), and where
/// each session event in them is, by connection id.
#[derive(Default)]
pub(super) struct AppendedSessions {
    batches: Vec<Arc<Vec<ConnectionEvent>>>,
    /// (batch, index) of each event with a connection id, in the order appended.
    by_connection: HashMap<Uuid, Vec<(u32, u32)>>,
    /// How many batches came before the last savepoint.
    savepoint: usize,
}

impl AppendedSessions {
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

    /// Marks where the next batch starts.
    pub(super) fn savepoint(&mut self) {
        self.savepoint = self.batches.len();
    }

    /// Forgets the batches pushed since the last `savepoint` (rolled back to it).
    pub(super) fn rollback_to_savepoint(&mut self) {
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

    pub(super) fn clear(&mut self) {
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
