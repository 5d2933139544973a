//! Reading the event input format: one NDJSON line at a time into a [`ConnectionEvent`], or a
//! precise reason why not.

use std::io::{self, BufRead};

use connlog_vocabulary::{LegacyType, normalize_app_name, upgrade};

use super::json::{Json, Object};
use super::time::{TimeError, parse_time};
use crate::model::{ConnectionEvent, ConnectionMethod, ConnectionStatus, UnixNanos, Uuid};

/// The longest line accepted, in bytes, without its line ending.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The field that tells Coder's current line from the seed's.
const METHOD: &str = "ConnectionMethod";

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
    #[error("missing field `{field}`{}{}", alternative(.field), case_hint(.found))]
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
    #[error("unknown `ConnectionMethod` {value} (one of {})", method_names())]
    UnknownMethod { value: String },
    #[error(
        "`Type` must name a connection type; {value} is empty once control characters and surrounding spaces are removed"
    )]
    EmptyType { value: String },
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

/// The field a missing one may be replaced by: the seed's `Type` for `ConnectionMethod`.
fn alternative(field: &str) -> &'static str {
    if field == METHOD {
        " (or the seed's `Type`)"
    } else {
        ""
    }
}

fn method_names() -> String {
    let names: Vec<&str> = ConnectionMethod::ALL.iter().map(|m| m.as_str()).collect();
    names.join(", ")
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
            let (chunk_len, consumed, found) = match memchr::memchr(b'\n', available) {
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
    let value: Json = serde_json::from_str(trimmed).map_err(|e| {
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
    let Json::Object(object) = value else {
        return Err(EventError::NotAnObject {
            got: value.type_name(),
        });
    };
    if let Some(msg) = object.get("msg") {
        let Json::String(msg) = msg else {
            return Err(EventError::BadServiceLog {
                field: "msg",
                expected: "a string",
                got: msg.type_name(),
            });
        };
        if msg != CONNECTION_LOG_MSG {
            return Ok(Parsed::Skipped(SkipReason::OtherServiceLog {
                msg: msg.to_string(),
            }));
        }
        return match object.get("fields") {
            Some(Json::Object(fields)) => parse_event_object(fields).map(Parsed::Event),
            Some(other) => Err(EventError::BadServiceLog {
                field: "fields",
                expected: "an object",
                got: other.type_name(),
            }),
            None => Err(EventError::MissingField {
                field: "fields",
                found: None,
            }),
        };
    }
    parse_event_object(&object).map(Parsed::Event)
}

/// Reads an event from its JSON object (the NDJSON object, or a service-log line's `fields`),
/// in either generation of Coder's fields (see [`connection_method`]).
fn parse_event_object(object: &Object) -> Result<ConnectionEvent, EventError> {
    let f = Fields(object);
    let ip = match (f.opt_string("Ip")?, f.opt_string("IP")?) {
        (Some(a), Some(b)) if a != b => return Err(EventError::IpConflict { ip: a, ip_upper: b }),
        (a, b) => a.or(b),
    };
    // Fields are checked in Coder's order, so that the first error reported is the first.
    let id = f.uuid("ID")?;
    let time = f.time("Time")?;
    let organization_id = f.uuid("OrganizationID")?;
    let workspace_owner_id = f.uuid("WorkspaceOwnerID")?;
    let workspace_id = f.uuid("WorkspaceID")?;
    let workspace_name = f.string("WorkspaceName")?.to_owned();
    let agent_name = f.string("AgentName")?.to_owned();
    let (connection_method, app_name_or_port) = connection_method(&f)?;
    Ok(ConnectionEvent {
        id,
        time,
        organization_id,
        workspace_owner_id,
        workspace_id,
        workspace_name,
        agent_name,
        connection_method,
        code: f.code("Code")?,
        ip,
        user_agent: f.opt_string("UserAgent")?,
        user_id: f.opt_uuid("UserID")?,
        app_name_or_port,
        connection_id: f.opt_uuid("ConnectionID")?,
        disconnect_reason: f.opt_string("DisconnectReason")?,
        client_session_id: f.opt_string("ClientSessionID")?,
        status: f.status("ConnectionStatus")?,
    })
}

/// The method and the app (or slug, or port) of either generation:
/// - Coder's current line: `ConnectionMethod`, exactly one of the five methods, and
///   `AppNameOrPort` (a line that has only the seed's `SlugOrPort` is read from that). A
///   `Type` beside a `ConnectionMethod` is ignored, as Coder ignores an agent's legacy type
///   once a method is given.
/// - The seed's line: `Type` and `SlugOrPort`, mapped as migration 000614 maps them. The
///   `Type` is classified by its normalised name, so ` Workspace_App ` is a web event as the
///   plugin always classified it; any other name is an app reported over SSH, passed on raw
///   for the plugin to normalise.
fn connection_method(f: &Fields) -> Result<(ConnectionMethod, Option<String>), EventError> {
    if f.0.contains_key(METHOD) {
        let name = f.string(METHOD)?;
        let method = ConnectionMethod::parse(name).ok_or_else(|| EventError::UnknownMethod {
            value: quote_value(name),
        })?;
        let app_field = if f.0.contains_key("AppNameOrPort") {
            "AppNameOrPort"
        } else {
            "SlugOrPort"
        };
        return Ok((method, f.opt_string(app_field)?));
    }
    if !f.0.contains_key("Type") {
        return Err(EventError::MissingField {
            field: METHOD,
            found: f.key_like(METHOD).or_else(|| f.key_like("Type")),
        });
    }
    let raw = f.string("Type")?;
    let slug = f.opt_str("SlugOrPort")?;
    // Empty once control characters are dropped and spaces trimmed (Coder would store the
    // app `unknown`; a line this broken is refused instead).
    if raw.chars().all(|c| c.is_control() || c.is_whitespace()) {
        return Err(EventError::EmptyType {
            value: quote_value(raw),
        });
    }
    let normalized = normalize_app_name(raw);
    let connection_type = if LegacyType::parse(&normalized).is_some() {
        normalized.as_str()
    } else {
        raw
    };
    let (method, app) = upgrade(connection_type, slug);
    Ok((method, app.map(str::to_owned)))
}

struct Fields<'a, 'line>(&'a Object<'line>);

impl<'line> Fields<'_, 'line> {
    fn required(&self, field: &'static str) -> Result<&Json<'line>, EventError> {
        self.0.get(field).ok_or_else(|| EventError::MissingField {
            field,
            found: self.key_like(field),
        })
    }

    /// A key spelled like `field` but for its case.
    fn key_like(&self, field: &str) -> Option<String> {
        self.0
            .keys()
            .find(|k| k.eq_ignore_ascii_case(field))
            .map(str::to_owned)
    }

    fn string(&self, field: &'static str) -> Result<&str, EventError> {
        match self.required(field)? {
            Json::String(s) => Ok(s),
            other => Err(EventError::WrongType {
                field,
                expected: "a string",
                got: other.type_name(),
            }),
        }
    }

    fn opt_str(&self, field: &'static str) -> Result<Option<&str>, EventError> {
        match self.0.get(field) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) if s.is_empty() => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(other) => Err(EventError::WrongType {
                field,
                expected: "a string or null",
                got: other.type_name(),
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
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) if s.is_empty() => Ok(None),
            Some(Json::String(s)) => Ok(Some(parse_uuid(field, s)?).filter(|u| !u.is_nil())),
            Some(other) => Err(EventError::WrongType {
                field,
                expected: "a UUID string or null",
                got: other.type_name(),
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
            None | Some(Json::Null) => Ok(None),
            Some(Json::Number(n)) => n
                .as_i64()
                .and_then(|v| i32::try_from(v).ok())
                .map(Some)
                .ok_or_else(|| EventError::CodeOutOfRange {
                    value: n.to_string(),
                }),
            Some(other) => Err(EventError::WrongType {
                field,
                expected: "an integer or null",
                got: other.type_name(),
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
