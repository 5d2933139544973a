//! The live feed's reads: the rows the newest journal events created or completed, as the
//! plugin renders them for one reader.
//!
//! A position is the journal `seq` of an event. A reader at position `after` asks for the
//! events after it, up to the merged head. Each event names its row (its session, or the
//! event alone), and the plugin answers with the rows that reader may see and its filter
//! matches, as they are now. A row named by several events of one read is sent once, at the
//! last of their positions. Sequence numbers only grow and a committed event is never
//! rewritten, so resuming after a position neither skips nor repeats a message.

use std::collections::HashSet;

use super::{ConnLog, ServiceError};
use crate::model::{Actor, QueryError, RowOrigin};

/// One row for the feed, at the position of the event that last changed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedMessage {
    pub position: i64,
    /// One codersdk `ConnectionLog` JSON object, without a trailing newline.
    pub row_json: String,
}

/// What one read found: its messages in position order, and where the next read starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedChunk {
    pub messages: Vec<FeedMessage>,
    /// Every event up to here has been looked at: the reader's next `after`.
    pub scanned_to: i64,
}

impl ConnLog {
    /// The rows behind the journal events with `after < seq <= head`, at most `max_events`
    /// events, that `actor` may read and `q` matches. `max_events == 0` only checks `q`.
    pub fn feed(
        &mut self,
        actor: &Actor,
        q: &str,
        after: i64,
        max_events: usize,
    ) -> Result<Result<FeedChunk, QueryError>, ServiceError> {
        // The head is read before the instance: settled first, it is what is durable.
        self.settled();
        let head = self.merged_upto;
        let events = if max_events == 0 || after >= head {
            Vec::new()
        } else {
            self.journal()?
                .origins_between(after, head, max_events)
                .map_err(ServiceError::Storage)?
        };
        let scanned_to = match events.last() {
            Some(&(seq, _)) if events.len() == max_events => seq,
            Some(_) => head,
            None if max_events == 0 => after,
            None => head.max(after),
        };
        let (positions, origins) = last_position_of_each(events);
        let answered = self
            .instance()?
            .feed_rows(actor.clone(), q, origins.clone());
        let answered = match self.recover_if_trapped(answered)? {
            None => {
                return Err(ServiceError::Unsupported(format!(
                    "the running plugin ({}) implements contract {}, which has no live feed; \
                     swap to a plugin of contract 0.2.0 or later",
                    self.plugin().info.name,
                    self.plugin().info.contract_version
                )));
            }
            Some(Err(e)) => return Ok(Err(e)),
            Some(Ok(rows)) => rows,
        };
        if answered.len() != origins.len() {
            return Err(ServiceError::BrokenContract(format!(
                "feed-rows answered {} rows for {} origins",
                answered.len(),
                origins.len()
            )));
        }
        let messages = positions
            .into_iter()
            .zip(answered)
            .filter_map(|(position, row)| row.map(|row_json| FeedMessage { position, row_json }))
            .collect();
        Ok(Ok(FeedChunk {
            messages,
            scanned_to,
        }))
    }
}

/// Each origin once, at the last position naming it, in position order.
fn last_position_of_each(events: Vec<(i64, RowOrigin)>) -> (Vec<i64>, Vec<RowOrigin>) {
    let mut seen = HashSet::with_capacity(events.len());
    let mut kept: Vec<(i64, RowOrigin)> = events
        .into_iter()
        .rev()
        .filter(|(_, origin)| seen.insert(origin.clone()))
        .collect();
    kept.reverse();
    kept.into_iter().unzip()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SessionKey, Uuid};

    #[test]
    fn a_row_named_twice_is_sent_once_at_its_last_position() {
        let single = |n: u128| RowOrigin::SingleEvent(Uuid::from_u128(n));
        let session = RowOrigin::Session(SessionKey {
            connection_id: Uuid::from_u128(9),
            workspace_id: Uuid::from_u128(8),
            agent_name: "main".into(),
        });
        let (positions, origins) = last_position_of_each(vec![
            (3, session.clone()),
            (4, single(1)),
            (6, single(2)),
            (7, session.clone()),
        ]);
        assert_eq!(positions, vec![4, 6, 7]);
        assert_eq!(origins, vec![single(1), single(2), session]);
        assert_eq!(last_position_of_each(Vec::new()), (Vec::new(), Vec::new()));
    }
}
