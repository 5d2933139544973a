//! The event input format: NDJSON whose objects use the field names of Coder's service-log
//! `fields` object, or whole Coder JSON service-log lines.
//!
//! This module checks syntax and JSON types only, and maps the seed's `Type` to a method and
//! an app. Whether an event makes sense (nil ids, connection-id rules, app names, client
//! session ids, `localhost`, unparseable IPs) is the plugin's call, so that every host and
//! every plugin version judge events the same way.
//!
//! Both generations of Coder's fields are read:
//! - Coder's current line: `ConnectionMethod` (exactly `ssh`, `reconnecting_pty`,
//!   `workspace_app`, `port_forwarding` or `tunnel`), `AppNameOrPort`, `ClientSessionID`,
//!   `IP`. A `Type` beside a `ConnectionMethod` is ignored; without `AppNameOrPort`, a
//!   `SlugOrPort` is read in its place.
//! - The seed's line: `Type`, `SlugOrPort`, `Ip` (or `IP`). `Type` maps as migration 000614
//!   does, classified by its normalised name: `vscode` and `jetbrains` become `ssh` with
//!   that app; `workspace_app` and `port_forwarding` keep their slug; `ssh`,
//!   `reconnecting_pty` and `tunnel` drop it; any other name is an app reported over SSH
//!   (`cursor` becomes `ssh` with the app `cursor`). A `Type` that is empty once control
//!   characters and surrounding spaces are removed is rejected.
//! - A line with neither `ConnectionMethod` nor `Type` is rejected as missing
//!   `ConnectionMethod`.
//!
//! Rules, field by field:
//! - Required, and must be strings: `ID`, `Time`, `OrganizationID`, `WorkspaceOwnerID`,
//!   `WorkspaceID`, `WorkspaceName`, `AgentName`, `ConnectionMethod` or `Type`,
//!   `ConnectionStatus`. A required UUID given as `""` becomes the nil UUID, which the plugin
//!   then refuses with Coder's own validation message.
//! - `Time`: RFC 3339 with up to nanoseconds and any offset, held as UTC nanoseconds since
//!   the Unix epoch; it must fit in an `i64` (1677-09-21 to 2262-04-11).
//! - `Code`: an integer in the 32-bit range, or `null`.
//! - `UserID`, `ConnectionID`: a UUID, `null`, `""` or the nil UUID (the last three mean
//!   absent).
//! - `IP` (or `Ip`), `UserAgent`, `AppNameOrPort`, `SlugOrPort`, `DisconnectReason`,
//!   `ClientSessionID`: a string or `null`; `""` means absent (Coder's `NULLIF`). The values
//!   are passed on as written: the plugin parses the IP, normalises the app name and checks
//!   the client session id. When both `Ip` and `IP` are set they must agree.
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

mod json;
mod read;
#[cfg(test)]
mod tests;
mod time;
mod write;

pub use read::{
    CONNECTION_LOG_MSG, EventError, EventReader, Line, LineError, MAX_LINE_BYTES, Parsed,
    ReadStats, SkipReason, parse_line,
};
pub use time::{TimeError, format_time, parse_time};
pub use write::{
    event_to_json, event_to_line, event_to_line_as, status_name, write_event_line,
    write_event_line_as,
};
