//! The event input format: NDJSON whose objects use the field names of Coder's service-log
//! `fields` object, or whole Coder JSON service-log lines.
//!
//! This module checks syntax and JSON types only. Whether an event makes sense (nil ids,
//! known types, connection-id rules, `localhost`, unparseable IPs) is the plugin's call,
//! so that every host and every plugin version judge events the same way.
//!
//! Rules, field by field:
//! - Required, and must be strings: `ID`, `Time`, `OrganizationID`, `WorkspaceOwnerID`,
//!   `WorkspaceID`, `WorkspaceName`, `AgentName`, `Type`, `ConnectionStatus`.
//!   A required UUID given as `""` becomes the nil UUID, which the plugin then refuses with
//!   Coder's own validation message.
//! - `Time`: RFC 3339 with up to nanoseconds and any offset, held as UTC nanoseconds since
//!   the Unix epoch; it must fit in an `i64` (1677-09-21 to 2262-04-11).
//! - `Code`: an integer in the 32-bit range, or `null`.
//! - `UserID`, `ConnectionID`: a UUID, `null`, `""` or the nil UUID (the last three mean
//!   absent).
//! - `Ip` (or `IP`), `UserAgent`, `SlugOrPort`, `DisconnectReason`: a string or `null`;
//!   `""` means absent. The IP is passed on as written: the plugin parses it. When both `Ip`
//!   and `IP` are set they must agree.
//! - `ConnectionStatus`: exactly `connected` or `disconnected`.
//! - Unknown fields are ignored (Coder adds fields over time, and service-log lines carry
//!   context fields such as `request_id`). Field names are case-sensitive; a missing field
//!   whose name appears with other casing is reported with a hint.
//! - A JSON object with a `msg` key is a Coder service-log line: with `msg` =
//!   `connection_log` its `fields` object is the event; any other message is skipped and
//!   counted. Blank lines are skipped and counted too.
//! - A line longer than [`MAX_LINE_BYTES`] is rejected without being held in memory.
//!
//! Reading lives in `read`, writing in `write`, and the timestamps both use in `time`.

mod read;
#[cfg(test)]
mod tests;
mod time;
mod write;

pub use read::{
    CONNECTION_LOG_MSG, EventError, EventReader, Line, LineError, MAX_LINE_BYTES, Parsed,
    ReadStats, SkipReason, parse_event_object, parse_line,
};
pub use time::{TimeError, format_time, parse_time};
pub use write::{event_to_json, event_to_line, status_name, write_event_line};
