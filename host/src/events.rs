//! The event input format (PRODUCT.md, "Event input format"): NDJSON whose objects use the
//! field names of Coder's service-log `fields` object, or whole Coder JSON service-log lines.
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

use std::io::{self, BufRead, Write};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::{ConnectionEvent, ConnectionStatus, UnixNanos, Uuid};

/// The longest line accepted, in bytes, without its line ending.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The service-log message of connection events.
pub const CONNECTION_LOG_MSG: &str = "connection_log";

/// What a line that is not rejected turned out to be.
// Events are the common case: boxing them would cost an allocation per line to save a
// few hundred bytes on the rare skipped line.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Event(ConnectionEvent),
    Skipped(SkipReason),
}

/// Why a line was skipped rather than read or rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// Empty or only whitespace.
    Blank,
    /// A Coder service-log line with another message than `connection_log`.
    OtherServiceLog { msg: String },
}

/// One line that was read, with its 1-based line number.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    Event { line: u64, event: ConnectionEvent },
    Skipped { line: u64, reason: SkipReason },
}

impl Line {
    pub fn line(&self) -> u64 {
        match self {
            Line::Event { line, .. } | Line::Skipped { line, .. } => *line,
        }
    }
}

/// A rejected line: its 1-based number and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct LineError {
    pub line: u64,
    pub error: EventError,
}

/// Why a line could not be read as an event. `Display` is the human reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("line is longer than {limit} bytes")]
    LineTooLong { limit: usize },
    #[error("line is not valid UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("bad JSON at column {column}: {message}{hint}")]
    BadJson {
        column: usize,
        message: String,
        hint: &'static str,
    },
    #[error("expected a JSON object, got {got}")]
    NotAnObject { got: &'static str },
    #[error("missing field `{field}`{}", case_hint(.found))]
    MissingField {
        field: &'static str,
        found: Option<String>,
    },
    #[error("wrong JSON type for `{field}`: expected {expected}, got {got}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        got: &'static str,
    },
    #[error("`{field}` is not a valid UUID: {value}")]
    InvalidUuid { field: &'static str, value: String },
    #[error("`Time` is not RFC 3339: {value}")]
    InvalidTime { value: String },
    #[error(
        "`Time` is out of range: {value} (must be between 1677-09-21T00:12:43.145224192Z and 2262-04-11T23:47:16.854775807Z)"
    )]
    TimeOutOfRange { value: String },
    #[error("`Code` must be an integer in the 32-bit range, got {value}")]
    CodeOutOfRange { value: String },
    #[error("unknown `ConnectionStatus` {value} (only \"connected\" and \"disconnected\")")]
    UnknownStatus { value: String },
    #[error("`Ip` and `IP` disagree: {ip:?} and {ip_upper:?}")]
    IpConflict { ip: String, ip_upper: String },
    #[error("wrong JSON type for `{field}` of a service-log line: expected {expected}, got {got}")]
    BadServiceLog {
        field: &'static str,
        expected: &'static str,
        got: &'static str,
    },
    #[error("read error: {message}")]
    Io { message: String },
}

fn case_hint(found: &Option<String>) -> String {
    match found {
        Some(k) => format!(" (found `{k}`; field names are case-sensitive)"),
        None => String::new(),
    }
}

/// Counts of what a reader has seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub lines: u64,
    pub events: u64,
    pub blank: u64,
    /// Service-log lines with another message than `connection_log`.
    pub other_service_log: u64,
    pub rejected: u64,
}

impl ReadStats {
    pub fn skipped(&self) -> u64 {
        self.blank + self.other_service_log
    }
}

/// Reads NDJSON events from any `BufRead`, one item per line, never stopping at a bad line.
///
/// Memory stays bounded by [`MAX_LINE_BYTES`] (or the limit given) whatever the input. After an
/// I/O error it yields that error once and then ends.
pub struct EventReader<R> {
    reader: R,
    line: u64,
    buf: Vec<u8>,
    max_line_bytes: usize,
    stats: ReadStats,
    done: bool,
    /// Bytes consumed from `reader`: the offset just past the last line read.
    consumed: u64,
}

impl<R: BufRead> EventReader<R> {
    pub fn new(reader: R) -> Self {
        Self::with_max_line_bytes(reader, MAX_LINE_BYTES)
    }

    pub fn with_max_line_bytes(reader: R, max_line_bytes: usize) -> Self {
        Self {
            reader,
            line: 0,
            buf: Vec::new(),
            max_line_bytes,
            stats: ReadStats::default(),
            done: false,
            consumed: 0,
        }
    }

    /// The byte offset just past the last line read (where the next one starts).
    pub fn bytes_consumed(&self) -> u64 {
        self.consumed
    }

    pub fn stats(&self) -> ReadStats {
        self.stats
    }

    /// The number of the last line read (0 before the first).
    pub fn line_number(&self) -> u64 {
        self.line
    }

    /// Reads the next line into `buf`. `Ok(None)` at the end; `Ok(Some(true))` when the line
    /// was too long (its bytes were dropped).
    fn read_line(&mut self) -> io::Result<Option<bool>> {
        self.buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                return Ok(any.then_some(too_long));
            }
            any = true;
            let (chunk_len, consumed, found) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (i, i + 1, true),
                None => (available.len(), available.len(), false),
            };
            if !too_long {
                // Allow one byte more for a '\r' before the '\n'.
                if self.buf.len() + chunk_len > self.max_line_bytes + 1 {
                    too_long = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(&available[..chunk_len]);
                }
            }
            self.reader.consume(consumed);
            self.consumed += consumed as u64;
            if found {
                return Ok(Some(too_long));
            }
        }
    }
}

impl<R: BufRead> Iterator for EventReader<R> {
    type Item = Result<Line, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let line = self.line + 1;
        let too_long = match self.read_line() {
            Ok(None) => {
                self.done = true;
                return None;
            }
            Ok(Some(too_long)) => too_long,
            Err(e) => {
                self.done = true;
                self.stats.rejected += 1;
                return Some(Err(LineError {
                    line,
                    error: EventError::Io {
                        message: e.to_string(),
                    },
                }));
            }
        };
        self.line = line;
        self.stats.lines += 1;
        let mut bytes = &self.buf[..];
        if bytes.last() == Some(&b'\r') {
            bytes = &bytes[..bytes.len() - 1];
        }
        if line == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        let result = if too_long || bytes.len() > self.max_line_bytes {
            Err(EventError::LineTooLong {
                limit: self.max_line_bytes,
            })
        } else {
            match std::str::from_utf8(bytes) {
                Ok(text) => parse_line(text),
                Err(e) => Err(EventError::NotUtf8 {
                    offset: e.valid_up_to(),
                }),
            }
        };
        Some(match result {
            Ok(Parsed::Event(event)) => {
                self.stats.events += 1;
                Ok(Line::Event { line, event })
            }
            Ok(Parsed::Skipped(reason)) => {
                match reason {
                    SkipReason::Blank => self.stats.blank += 1,
                    SkipReason::OtherServiceLog { .. } => self.stats.other_service_log += 1,
                }
                Ok(Line::Skipped { line, reason })
            }
            Err(error) => {
                self.stats.rejected += 1;
                Err(LineError { line, error })
            }
        })
    }
}

/// Reads one line (without its line ending).
pub fn parse_line(text: &str) -> Result<Parsed, EventError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(Parsed::Skipped(SkipReason::Blank));
    }
    let value: Value = serde_json::from_str(trimmed).map_err(|e| {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
        // Column relative to the line as given, not to the trimmed text.
        let column = e.column() + (text.len() - text.trim_start().len());
        let hint = if trimmed.starts_with('[') && !trimmed.starts_with("[{") {
            " (a human-format service-log line? only JSON service logs can be read)"
        } else {
            ""
        };
        EventError::BadJson {
            column,
            message,
            hint,
        }
    })?;
    let Value::Object(object) = value else {
        return Err(EventError::NotAnObject {
            got: type_name(&value),
        });
    };
    if let Some(msg) = object.get("msg") {
        let Value::String(msg) = msg else {
            return Err(EventError::BadServiceLog {
                field: "msg",
                expected: "a string",
                got: type_name(msg),
            });
        };
        if msg != CONNECTION_LOG_MSG {
            return Ok(Parsed::Skipped(SkipReason::OtherServiceLog {
                msg: msg.clone(),
            }));
        }
        return match object.get("fields") {
            Some(Value::Object(fields)) => parse_event_object(fields).map(Parsed::Event),
            Some(other) => Err(EventError::BadServiceLog {
                field: "fields",
                expected: "an object",
                got: type_name(other),
            }),
            None => Err(EventError::MissingField {
                field: "fields",
                found: None,
            }),
        };
    }
    parse_event_object(&object).map(Parsed::Event)
}

/// Reads an event from its JSON object (the NDJSON object, or a service-log line's `fields`).
pub fn parse_event_object(object: &Map<String, Value>) -> Result<ConnectionEvent, EventError> {
    let f = Fields(object);
    let ip = match (f.opt_string("Ip")?, f.opt_string("IP")?) {
        (Some(a), Some(b)) if a != b => return Err(EventError::IpConflict { ip: a, ip_upper: b }),
        (a, b) => a.or(b),
    };
    Ok(ConnectionEvent {
        id: f.uuid("ID")?,
        time: f.time("Time")?,
        organization_id: f.uuid("OrganizationID")?,
        workspace_owner_id: f.uuid("WorkspaceOwnerID")?,
        workspace_id: f.uuid("WorkspaceID")?,
        workspace_name: f.string("WorkspaceName")?.to_owned(),
        agent_name: f.string("AgentName")?.to_owned(),
        connection_type: f.string("Type")?.to_owned(),
        code: f.code("Code")?,
        ip,
        user_agent: f.opt_string("UserAgent")?,
        user_id: f.opt_uuid("UserID")?,
        slug_or_port: f.opt_string("SlugOrPort")?,
        connection_id: f.opt_uuid("ConnectionID")?,
        disconnect_reason: f.opt_string("DisconnectReason")?,
        status: f.status("ConnectionStatus")?,
    })
}

struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn required(&self, field: &'static str) -> Result<&Value, EventError> {
        self.0.get(field).ok_or_else(|| EventError::MissingField {
            field,
            found: self
                .0
                .keys()
                .find(|k| k.eq_ignore_ascii_case(field))
                .cloned(),
        })
    }

    fn string(&self, field: &'static str) -> Result<&str, EventError> {
        match self.required(field)? {
            Value::String(s) => Ok(s),
            other => Err(EventError::WrongType {
                field,
                expected: "a string",
                got: type_name(other),
            }),
        }
    }

    fn opt_str(&self, field: &'static str) -> Result<Option<&str>, EventError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(EventError::WrongType {
                field,
                expected: "a string or null",
                got: type_name(other),
            }),
        }
    }

    fn opt_string(&self, field: &'static str) -> Result<Option<String>, EventError> {
        self.opt_str(field).map(|s| s.map(str::to_owned))
    }

    fn uuid(&self, field: &'static str) -> Result<Uuid, EventError> {
        let s = self.string(field)?;
        if s.is_empty() {
            return Ok(Uuid::nil());
        }
        parse_uuid(field, s)
    }

    fn opt_uuid(&self, field: &'static str) -> Result<Option<Uuid>, EventError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(parse_uuid(field, s)?).filter(|u| !u.is_nil())),
            Some(other) => Err(EventError::WrongType {
                field,
                expected: "a UUID string or null",
                got: type_name(other),
            }),
        }
    }

    fn time(&self, field: &'static str) -> Result<UnixNanos, EventError> {
        let s = self.string(field)?;
        parse_time(s).map_err(|e| match e {
            TimeError::NotRfc3339 => EventError::InvalidTime {
                value: quote_value(s),
            },
            TimeError::OutOfRange => EventError::TimeOutOfRange {
                value: quote_value(s),
            },
        })
    }

    fn code(&self, field: &'static str) -> Result<Option<i32>, EventError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .and_then(|v| i32::try_from(v).ok())
                .map(Some)
                .ok_or_else(|| EventError::CodeOutOfRange {
                    value: n.to_string(),
                }),
            Some(other) => Err(EventError::WrongType {
                field,
                expected: "an integer or null",
                got: type_name(other),
            }),
        }
    }

    fn status(&self, field: &'static str) -> Result<ConnectionStatus, EventError> {
        match self.string(field)? {
            "connected" => Ok(ConnectionStatus::Connected),
            "disconnected" => Ok(ConnectionStatus::Disconnected),
            other => Err(EventError::UnknownStatus {
                value: quote_value(other),
            }),
        }
    }
}

fn parse_uuid(field: &'static str, s: &str) -> Result<Uuid, EventError> {
    Uuid::parse_str(s).map_err(|_| EventError::InvalidUuid {
        field,
        value: quote_value(s),
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value quoted for an error message, cut to a readable length.
fn quote_value(s: &str) -> String {
    const MAX_CHARS: usize = 80;
    if s.chars().count() <= MAX_CHARS {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(MAX_CHARS).collect();
        format!("{cut:?}… ({} bytes)", s.len())
    }
}

/// Why a time could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("not an RFC 3339 time")]
    NotRfc3339,
    #[error("time out of range for nanoseconds since the Unix epoch in 64 bits")]
    OutOfRange,
}

/// RFC 3339 with up to nanoseconds and any offset, to UTC nanoseconds since the Unix epoch.
pub fn parse_time(s: &str) -> Result<UnixNanos, TimeError> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| TimeError::NotRfc3339)?;
    i64::try_from(t.unix_timestamp_nanos()).map_err(|_| TimeError::OutOfRange)
}

/// Go's `time.RFC3339Nano` in UTC, as Coder's JSON writes times: `2025-07-10T10:14:38.942776145Z`,
/// `2025-07-03T06:57:16.1447Z`, `2025-07-03T06:57:16Z` (trailing zeros of the fraction dropped).
pub fn format_time(t: UnixNanos) -> String {
    let dt = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t))
        .expect("every i64 nanosecond count is a valid time");
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    let nanos = dt.nanosecond();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// The input format's object, fields in Coder's order (`serde_json` keeps that order when
/// writing through this struct; a `Value` sorts its keys).
#[derive(Serialize)]
struct WireEvent<'a> {
    #[serde(rename = "ID")]
    id: &'a Uuid,
    #[serde(rename = "Time")]
    time: String,
    #[serde(rename = "OrganizationID")]
    organization_id: &'a Uuid,
    #[serde(rename = "WorkspaceOwnerID")]
    workspace_owner_id: &'a Uuid,
    #[serde(rename = "WorkspaceID")]
    workspace_id: &'a Uuid,
    #[serde(rename = "WorkspaceName")]
    workspace_name: &'a str,
    #[serde(rename = "AgentName")]
    agent_name: &'a str,
    #[serde(rename = "Type")]
    connection_type: &'a str,
    #[serde(rename = "Code")]
    code: Option<i32>,
    #[serde(rename = "Ip")]
    ip: &'a str,
    #[serde(rename = "UserAgent")]
    user_agent: &'a str,
    #[serde(rename = "UserID")]
    user_id: Option<&'a Uuid>,
    #[serde(rename = "SlugOrPort")]
    slug_or_port: &'a str,
    #[serde(rename = "ConnectionID")]
    connection_id: Option<&'a Uuid>,
    #[serde(rename = "DisconnectReason")]
    disconnect_reason: &'a str,
    #[serde(rename = "ConnectionStatus")]
    status: &'static str,
}

impl<'a> WireEvent<'a> {
    fn new(e: &'a ConnectionEvent) -> Self {
        Self {
            id: &e.id,
            time: format_time(e.time),
            organization_id: &e.organization_id,
            workspace_owner_id: &e.workspace_owner_id,
            workspace_id: &e.workspace_id,
            workspace_name: &e.workspace_name,
            agent_name: &e.agent_name,
            connection_type: &e.connection_type,
            code: e.code,
            ip: e.ip.as_deref().unwrap_or(""),
            user_agent: e.user_agent.as_deref().unwrap_or(""),
            user_id: e.user_id.as_ref(),
            slug_or_port: e.slug_or_port.as_deref().unwrap_or(""),
            connection_id: e.connection_id.as_ref(),
            disconnect_reason: e.disconnect_reason.as_deref().unwrap_or(""),
            status: status_name(e.status),
        }
    }
}

/// `connected` or `disconnected`.
pub fn status_name(status: ConnectionStatus) -> &'static str {
    match status {
        ConnectionStatus::Connected => "connected",
        ConnectionStatus::Disconnected => "disconnected",
    }
}

/// The event in the input format, absent values written as Coder's service log writes them:
/// `null` for `Code`, `UserID` and `ConnectionID`, `""` for the strings.
pub fn event_to_json(event: &ConnectionEvent) -> Value {
    serde_json::to_value(WireEvent::new(event)).expect("an event always serialises")
}

/// The event as one NDJSON line (no line ending), fields in Coder's order.
pub fn event_to_line(event: &ConnectionEvent) -> String {
    serde_json::to_string(&WireEvent::new(event)).expect("an event always serialises")
}

/// Writes the event as one NDJSON line, with its line ending.
pub fn write_event_line<W: Write>(mut out: W, event: &ConnectionEvent) -> io::Result<()> {
    serde_json::to_writer(&mut out, &WireEvent::new(event))?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "a0f6e7b4-9f36-4c4b-8a2d-1f2e3d4c5b6a";
    const OWNER: &str = "6dea7b1c-0b4e-4f44-9d7a-0d1d1a2b3c4d";
    const WS: &str = "0e9d8c7b-6a5f-4e3d-8c1b-0a9f8e7d6c5b";
    const CONN: &str = "7a6f1b2c-3d4e-4f5a-8b9c-0d1e2f3a4b5c";

    fn agent_line() -> Value {
        serde_json::json!({
            "ID": "11111111-2222-4333-8444-555555555555",
            "Time": "2025-07-10T10:14:38.942776145Z",
            "OrganizationID": ORG,
            "WorkspaceOwnerID": OWNER,
            "WorkspaceID": WS,
            "WorkspaceName": "dev",
            "AgentName": "main",
            "Type": "ssh",
            "Code": null,
            "Ip": "fd7a:115c:a1e0:4c3d:9a1b:2c3d:4e5f:6a7b",
            "UserAgent": "",
            "UserID": null,
            "SlugOrPort": "",
            "ConnectionID": CONN,
            "DisconnectReason": "",
            "ConnectionStatus": "connected"
        })
    }

    fn parse_value(v: &Value) -> Result<Parsed, EventError> {
        parse_line(&v.to_string())
    }

    fn event(v: &Value) -> ConnectionEvent {
        match parse_value(v) {
            Ok(Parsed::Event(e)) => e,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    fn error(v: &Value) -> String {
        parse_value(v).expect_err("expected an error").to_string()
    }

    fn with(mut v: Value, key: &str, value: Value) -> Value {
        v.as_object_mut().unwrap().insert(key.to_owned(), value);
        v
    }

    fn without(mut v: Value, key: &str) -> Value {
        v.as_object_mut().unwrap().remove(key);
        v
    }

    #[test]
    fn reads_an_agent_event() {
        let e = event(&agent_line());
        assert_eq!(e.id.to_string(), "11111111-2222-4333-8444-555555555555");
        assert_eq!(e.time, 1_752_142_478_942_776_145);
        assert_eq!(e.organization_id.to_string(), ORG);
        assert_eq!(e.workspace_owner_id.to_string(), OWNER);
        assert_eq!(e.workspace_id.to_string(), WS);
        assert_eq!(e.workspace_name, "dev");
        assert_eq!(e.agent_name, "main");
        assert_eq!(e.connection_type, "ssh");
        assert_eq!(e.code, None);
        assert_eq!(
            e.ip.as_deref(),
            Some("fd7a:115c:a1e0:4c3d:9a1b:2c3d:4e5f:6a7b")
        );
        assert_eq!(e.user_agent, None);
        assert_eq!(e.user_id, None);
        assert_eq!(e.slug_or_port, None);
        assert_eq!(e.connection_id.unwrap().to_string(), CONN);
        assert_eq!(e.disconnect_reason, None);
        assert_eq!(e.status, ConnectionStatus::Connected);
    }

    #[test]
    fn reads_a_web_event_with_upper_ip() {
        let v = without(agent_line(), "Ip");
        let v = with(v, "IP", "127.0.0.1".into());
        let v = with(v, "Type", "workspace_app".into());
        let v = with(v, "Code", 200.into());
        let v = with(v, "UserAgent", "Mozilla/5.0".into());
        let v = with(v, "UserID", OWNER.into());
        let v = with(v, "SlugOrPort", "code-server".into());
        let v = with(v, "ConnectionID", Value::Null);
        let e = event(&v);
        assert_eq!(e.ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(e.code, Some(200));
        assert_eq!(e.user_agent.as_deref(), Some("Mozilla/5.0"));
        assert_eq!(e.user_id.unwrap().to_string(), OWNER);
        assert_eq!(e.slug_or_port.as_deref(), Some("code-server"));
        assert_eq!(e.connection_id, None);
    }

    #[test]
    fn absent_values() {
        let nil = "00000000-0000-0000-0000-000000000000";
        for absent in [Value::Null, "".into(), nil.into()] {
            let v = with(agent_line(), "ConnectionID", absent.clone());
            let v = with(v, "UserID", absent.clone());
            let e = event(&v);
            assert_eq!((e.connection_id, e.user_id), (None, None), "{absent}");
        }
        // Optional fields may be left out altogether.
        let mut v = agent_line();
        for key in [
            "Code",
            "Ip",
            "UserAgent",
            "UserID",
            "SlugOrPort",
            "ConnectionID",
            "DisconnectReason",
        ] {
            v = without(v, key);
        }
        let e = event(&v);
        assert_eq!((e.code, e.ip, e.connection_id), (None, None, None));
        // A required id given as "" is the nil UUID: the plugin judges it.
        assert!(
            event(&with(agent_line(), "WorkspaceID", "".into()))
                .workspace_id
                .is_nil()
        );
        // "localhost" and bad IPs pass through: the plugin handles them.
        assert_eq!(
            event(&with(agent_line(), "Ip", "localhost".into()))
                .ip
                .as_deref(),
            Some("localhost")
        );
        assert_eq!(
            event(&with(agent_line(), "Ip", "not-an-ip".into()))
                .ip
                .as_deref(),
            Some("not-an-ip")
        );
    }

    #[test]
    fn times_any_offset_and_precision() {
        let table: &[(&str, i64)] = &[
            ("2025-07-10T10:14:38Z", 1_752_142_478_000_000_000),
            ("2025-07-10T10:14:38.9Z", 1_752_142_478_900_000_000),
            ("2025-07-10T10:14:38.942776Z", 1_752_142_478_942_776_000),
            (
                "2025-07-10T12:14:38.942776145+02:00",
                1_752_142_478_942_776_145,
            ),
            (
                "2025-07-10T05:14:38.942776145-05:00",
                1_752_142_478_942_776_145,
            ),
            ("1970-01-01T00:00:00Z", 0),
            ("1969-12-31T23:59:59.999999999Z", -1),
            ("2262-04-11T23:47:16.854775807Z", i64::MAX),
            ("1677-09-21T00:12:43.145224192Z", i64::MIN),
            // RFC 3339 lets applications use a space or lower case letters.
            ("2025-07-10 10:14:38Z", 1_752_142_478_000_000_000),
            ("2025-07-10t10:14:38z", 1_752_142_478_000_000_000),
        ];
        for &(s, want) in table {
            assert_eq!(parse_time(s), Ok(want), "{s}");
        }
        assert_eq!(
            parse_time("2262-04-11T23:47:16.854775808Z"),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(
            parse_time("9999-12-31T23:59:59Z"),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(
            parse_time("1677-09-21T00:12:43.145224191Z"),
            Err(TimeError::OutOfRange)
        );
        for bad in [
            "2025-07-10",
            "2025-07-10T10:14Z",
            "10:14:38",
            "2025-07-10T10:14:38",
            "yesterday",
            "",
        ] {
            assert_eq!(parse_time(bad), Err(TimeError::NotRfc3339), "{bad}");
        }
    }

    #[test]
    fn formats_times_as_go() {
        assert_eq!(
            format_time(1_752_142_478_942_776_145),
            "2025-07-10T10:14:38.942776145Z"
        );
        assert_eq!(
            format_time(1_752_142_478_942_776_000),
            "2025-07-10T10:14:38.942776Z"
        );
        assert_eq!(
            format_time(1_752_142_478_900_000_000),
            "2025-07-10T10:14:38.9Z"
        );
        assert_eq!(
            format_time(1_752_142_478_000_000_000),
            "2025-07-10T10:14:38Z"
        );
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(-1), "1969-12-31T23:59:59.999999999Z");
        for t in [i64::MIN, i64::MAX, -1, 0, 1, 1_752_142_478_942_776_145] {
            assert_eq!(parse_time(&format_time(t)), Ok(t));
        }
    }

    #[test]
    fn precise_errors() {
        let table: Vec<(Value, &str)> = vec![
            (without(agent_line(), "ID"), "missing field `ID`"),
            (
                without(agent_line(), "ConnectionStatus"),
                "missing field `ConnectionStatus`",
            ),
            (
                with(
                    without(agent_line(), "WorkspaceName"),
                    "workspaceName",
                    "dev".into(),
                ),
                "missing field `WorkspaceName` (found `workspaceName`; field names are case-sensitive)",
            ),
            (
                with(agent_line(), "ID", "nope".into()),
                "`ID` is not a valid UUID: \"nope\"",
            ),
            (
                with(agent_line(), "ConnectionID", "123".into()),
                "`ConnectionID` is not a valid UUID: \"123\"",
            ),
            (
                with(agent_line(), "UserID", 5.into()),
                "wrong JSON type for `UserID`: expected a UUID string or null, got a number",
            ),
            (
                with(agent_line(), "ID", Value::Null),
                "wrong JSON type for `ID`: expected a string, got null",
            ),
            (
                with(agent_line(), "Time", "2025-07-10".into()),
                "`Time` is not RFC 3339: \"2025-07-10\"",
            ),
            (
                with(agent_line(), "Time", 1752142478.into()),
                "wrong JSON type for `Time`: expected a string, got a number",
            ),
            (
                with(agent_line(), "Time", "3000-01-01T00:00:00Z".into()),
                "`Time` is out of range: \"3000-01-01T00:00:00Z\" (must be between 1677-09-21T00:12:43.145224192Z and 2262-04-11T23:47:16.854775807Z)",
            ),
            (
                with(agent_line(), "ConnectionStatus", "open".into()),
                "unknown `ConnectionStatus` \"open\" (only \"connected\" and \"disconnected\")",
            ),
            (
                with(agent_line(), "ConnectionStatus", "Connected".into()),
                "unknown `ConnectionStatus` \"Connected\" (only \"connected\" and \"disconnected\")",
            ),
            (
                with(agent_line(), "Code", "200".into()),
                "wrong JSON type for `Code`: expected an integer or null, got a string",
            ),
            (
                with(agent_line(), "Code", 200.5.into()),
                "`Code` must be an integer in the 32-bit range, got 200.5",
            ),
            (
                with(agent_line(), "Code", 4_294_967_296_i64.into()),
                "`Code` must be an integer in the 32-bit range, got 4294967296",
            ),
            (
                with(agent_line(), "Code", true.into()),
                "wrong JSON type for `Code`: expected an integer or null, got a boolean",
            ),
            (
                with(agent_line(), "SlugOrPort", 8080.into()),
                "wrong JSON type for `SlugOrPort`: expected a string or null, got a number",
            ),
            (
                with(agent_line(), "WorkspaceName", serde_json::json!(["dev"])),
                "wrong JSON type for `WorkspaceName`: expected a string, got an array",
            ),
            (
                with(agent_line(), "IP", "10.0.0.1".into()),
                "`Ip` and `IP` disagree: \"fd7a:115c:a1e0:4c3d:9a1b:2c3d:4e5f:6a7b\" and \"10.0.0.1\"",
            ),
            (
                serde_json::json!([1, 2]),
                "expected a JSON object, got an array",
            ),
            (
                serde_json::json!("hello"),
                "expected a JSON object, got a string",
            ),
        ];
        for (v, want) in table {
            assert_eq!(error(&v), want, "{v}");
        }
        // Both Ip and IP set to the same value is fine.
        let v = with(
            agent_line(),
            "IP",
            "fd7a:115c:a1e0:4c3d:9a1b:2c3d:4e5f:6a7b".into(),
        );
        assert!(event(&v).ip.is_some());
    }

    #[test]
    fn bad_json_reports_the_column() {
        assert_eq!(
            parse_line(r#"{"ID": }"#).unwrap_err().to_string(),
            "bad JSON at column 8: expected value"
        );
        assert_eq!(
            parse_line(r#"  {"ID": "x""#).unwrap_err().to_string(),
            "bad JSON at column 12: EOF while parsing an object"
        );
        let human = "[API] 2025-07-03 06:57:16.157 [info]  coderd: connection_log  ID=...";
        assert!(
            parse_line(human)
                .unwrap_err()
                .to_string()
                .contains("human-format service-log line")
        );
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "x".repeat(10_000);
        let msg = error(&with(agent_line(), "ID", long.into()));
        assert!(msg.len() < 200, "{msg}");
        assert!(msg.ends_with("… (10000 bytes)"), "{msg}");
    }

    #[test]
    fn service_log_lines() {
        let fields = with(agent_line(), "request_id", "0d9b…".into());
        let line = serde_json::json!({
            "ts": "2025-07-10T10:14:38.95Z",
            "level": "INFO",
            "msg": "connection_log",
            "caller": "/home/coder/coder/enterprise/audit/backends/slog.go:38",
            "func": "github.com/coder/coder/v2/enterprise/audit/backends.(*SlogExporter).ExportStruct",
            "logger_names": ["coderd"],
            "fields": fields,
        });
        assert_eq!(event(&line), event(&agent_line()));
        let other = serde_json::json!({"ts": "2025-07-10T10:14:38.95Z", "level": "INFO", "msg": "started", "fields": {}});
        assert_eq!(
            parse_value(&other),
            Ok(Parsed::Skipped(SkipReason::OtherServiceLog {
                msg: "started".into()
            }))
        );
        let bad = serde_json::json!({"msg": "connection_log", "fields": "x"});
        assert_eq!(
            error(&bad),
            "wrong JSON type for `fields` of a service-log line: expected an object, got a string"
        );
        let missing = serde_json::json!({"msg": "connection_log"});
        assert_eq!(error(&missing), "missing field `fields`");
        let bad_fields =
            serde_json::json!({"msg": "connection_log", "fields": without(agent_line(), "Type")});
        assert_eq!(error(&bad_fields), "missing field `Type`");
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let v = with(
            agent_line(),
            "SomethingNew",
            serde_json::json!({"a": [1, 2]}),
        );
        assert_eq!(event(&v), event(&agent_line()));
    }

    #[test]
    fn reader_numbers_lines_and_never_stops_at_a_bad_one() {
        let good = agent_line().to_string();
        let service =
            serde_json::json!({"msg": "connection_log", "fields": agent_line()}).to_string();
        let input = format!(
            "\u{feff}{good}\r\n\n   \n{{\"ID\": 1}}\nnot json\n{{\"msg\":\"http request\"}}\n{service}\n{good}"
        );
        let mut reader = EventReader::new(input.as_bytes());
        let items: Vec<_> = reader.by_ref().collect();
        let summary: Vec<String> = items
            .iter()
            .map(|item| match item {
                Ok(Line::Event { line, .. }) => format!("{line}:event"),
                Ok(Line::Skipped { line, reason }) => format!("{line}:skip:{reason:?}"),
                Err(e) => e.to_string(),
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                "1:event".to_owned(),
                "2:skip:Blank".to_owned(),
                "3:skip:Blank".to_owned(),
                "line 4: wrong JSON type for `ID`: expected a string, got a number".to_owned(),
                "line 5: bad JSON at column 2: expected ident".to_owned(),
                "6:skip:OtherServiceLog { msg: \"http request\" }".to_owned(),
                "7:event".to_owned(),
                "8:event".to_owned(),
            ]
        );
        assert_eq!(
            reader.stats(),
            ReadStats {
                lines: 8,
                events: 3,
                blank: 2,
                other_service_log: 1,
                rejected: 2
            }
        );
        assert_eq!(reader.stats().skipped(), 3);
        assert_eq!(reader.line_number(), 8);
    }

    #[test]
    fn reader_caps_line_length() {
        let good = agent_line().to_string();
        // A 3 MiB line between two good ones, read through a small buffer.
        let huge = format!("{{\"ID\":\"{}\"}}", "a".repeat(3 << 20));
        let input = format!("{good}\n{huge}\n{good}\n");
        let reader = EventReader::new(std::io::BufReader::with_capacity(4096, input.as_bytes()));
        let items: Vec<_> = reader.collect();
        assert_eq!(items.len(), 3);
        assert!(matches!(items[0], Ok(Line::Event { line: 1, .. })));
        assert_eq!(
            items[1].clone().unwrap_err().to_string(),
            "line 2: line is longer than 1048576 bytes"
        );
        assert!(matches!(items[2], Ok(Line::Event { line: 3, .. })));

        // Exactly at the limit is fine; one more byte is not.
        let reader = EventReader::with_max_line_bytes("abc\r\nabcd\n\n".as_bytes(), 3);
        let items: Vec<_> = reader.collect();
        assert!(matches!(
            &items[0],
            Err(LineError {
                line: 1,
                error: EventError::BadJson { .. }
            })
        ));
        assert!(matches!(
            &items[1],
            Err(LineError {
                line: 2,
                error: EventError::LineTooLong { limit: 3 }
            })
        ));
        assert!(matches!(
            &items[2],
            Ok(Line::Skipped {
                line: 3,
                reason: SkipReason::Blank
            })
        ));
    }

    #[test]
    fn reader_reports_invalid_utf8_and_io_errors() {
        let input: &[u8] = b"\xff\xfe{}\n";
        let items: Vec<_> = EventReader::new(input).collect();
        assert_eq!(
            items[0].clone().unwrap_err().to_string(),
            "line 1: line is not valid UTF-8 (invalid byte at offset 0)"
        );

        struct Failing;
        impl std::io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let items: Vec<_> = EventReader::new(std::io::BufReader::new(Failing)).collect();
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0].clone().unwrap_err().to_string(),
            "line 1: read error: disk on fire"
        );
    }

    #[test]
    fn empty_input() {
        let mut reader = EventReader::new(&b""[..]);
        assert!(reader.next().is_none());
        assert_eq!(reader.stats(), ReadStats::default());
        // No trailing newline on the last line is fine.
        let good = agent_line().to_string();
        assert_eq!(EventReader::new(good.as_bytes()).count(), 1);
    }

    #[test]
    fn json_round_trip() {
        let full = ConnectionEvent {
            id: Uuid::parse_str("11111111-2222-4333-8444-555555555555").unwrap(),
            time: 1_752_142_478_942_776_145,
            organization_id: Uuid::parse_str(ORG).unwrap(),
            workspace_owner_id: Uuid::parse_str(OWNER).unwrap(),
            workspace_id: Uuid::parse_str(WS).unwrap(),
            workspace_name: "dev \"quoted\" ✓".into(),
            agent_name: "main".into(),
            connection_type: "VS-Code Insiders".into(),
            code: Some(-1),
            ip: Some("fd7a:115c:a1e0::1".into()),
            user_agent: Some("Mozilla/5.0 (X11)".into()),
            user_id: Some(Uuid::parse_str(OWNER).unwrap()),
            slug_or_port: Some("8080".into()),
            connection_id: Some(Uuid::parse_str(CONN).unwrap()),
            disconnect_reason: Some("client disconnected".into()),
            status: ConnectionStatus::Disconnected,
        };
        let bare = ConnectionEvent {
            code: None,
            ip: None,
            user_agent: None,
            user_id: None,
            slug_or_port: None,
            connection_id: None,
            disconnect_reason: None,
            status: ConnectionStatus::Connected,
            time: -1,
            ..full.clone()
        };
        for e in [full, bare] {
            let value = event_to_json(&e);
            assert_eq!(event(&value), e);
            let line = event_to_line(&e);
            assert_eq!(parse_line(&line), Ok(Parsed::Event(e.clone())));
            let mut buf = Vec::new();
            write_event_line(&mut buf, &e).unwrap();
            assert_eq!(buf, format!("{line}\n").into_bytes());
        }
    }

    #[test]
    fn json_output_uses_coder_names_and_order() {
        let e = event(&agent_line());
        let line = event_to_line(&e);
        let keys: Vec<&str> = [
            "ID",
            "Time",
            "OrganizationID",
            "WorkspaceOwnerID",
            "WorkspaceID",
            "WorkspaceName",
            "AgentName",
            "Type",
            "Code",
            "Ip",
            "UserAgent",
            "UserID",
            "SlugOrPort",
            "ConnectionID",
            "DisconnectReason",
            "ConnectionStatus",
        ]
        .into();
        let positions: Vec<usize> = keys
            .iter()
            .map(|k| line.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{line}");
        assert_eq!(event_to_json(&e), agent_line());
    }
}
