//! codersdk's `ConnectionLogResponse` and `ConnectionLog` JSON (spec §6.3).

use crate::host::Directory;
use crate::model::*;

/// `{"connection_logs":[…],"count":N,"count_cap":2000}`.
pub fn response_json(rows: &[ConnectionLog], count: u64, directory: &dyn Directory) -> String {
    let _ = (rows, count, directory);
    todo!("format::api::response_json")
}

/// One codersdk `ConnectionLog` object.
pub fn row_json(row: &ConnectionLog, directory: &dyn Directory) -> String {
    let _ = (row, directory);
    todo!("format::api::row_json")
}
