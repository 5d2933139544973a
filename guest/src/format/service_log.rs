//! Coder's `connection_log` service-log lines, as in Coder's docs (spec §9).

use crate::model::*;

/// One line, without a trailing newline. `logged_at` is when the line is written.
pub fn line(event: &ConnectionEvent, format: LogFormat, logged_at: UnixNanos) -> String {
    let _ = (event, format, logged_at);
    todo!("format::service_log::line")
}
