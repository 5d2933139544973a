//! The events that rebuild a row, for `connlog export --format json|human`.

use crate::model::*;

/// A connect event, then a disconnect event when the row has a disconnect (only the
/// disconnect for a disconnect-only row); one event for a web or tunnel row. The event that
/// defines the row keeps its id; any other gets an id derived from it deterministically.
pub fn row_events(row: &ConnectionLog) -> Vec<ConnectionEvent> {
    let _ = row;
    todo!("format::row_events::row_events")
}
