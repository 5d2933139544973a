//! Which values a row keeps (PRODUCT.md "Which values a merged row keeps"): a row is a pure
//! function of the set of its events, so order and duplication cannot matter.

use crate::model::*;

/// The row of a web or tunnel event: it never merges.
pub fn single_event_row(event: &ConnectionEvent) -> ConnectionLog {
    let _ = event;
    todo!("merge::single_event_row")
}

/// The row of one agent-reported session, from all of its canonical events (any order,
/// duplicates allowed). `events` is never empty and shares one session key.
pub fn fold_session(events: &[ConnectionEvent]) -> ConnectionLog {
    let _ = events;
    todo!("merge::fold_session")
}
