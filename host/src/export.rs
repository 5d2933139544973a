//! Every row a caller may read, streamed a page at a time, and the row formats written
//! from it: what `connlog export` and `GET /api/v2/connectionlog/export` share.

use std::io::{self, Write};

use serde_json::Value;

use crate::model::{
    Actor, ConnectionLog, LogFields, LogFormat, QueryError, QueryRequest, StorageError, Validation,
};
use crate::service::{self, ConnLog, ServiceError, SharedConnLog};

/// Rows per query while exporting.
pub const PAGE: u32 = 1000;

/// Why an export stopped. What was written before it stays written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("writing: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("storage error: {0}")]
    Storage(StorageError),
    #[error("the plugin returned a row that is not JSON: {0}")]
    NotJson(serde_json::Error),
}

/// How rows are written, a page at a time.
pub trait PageFormat {
    /// What comes before the first page, once the query is known to be valid.
    fn header(&mut self, _out: &mut Vec<u8>) {}

    /// One page of rows (the first may be empty).
    fn page(
        &mut self,
        service: &mut ConnLog,
        rows: Vec<ConnectionLog>,
        out: &mut Vec<u8>,
    ) -> Result<(), ExportError>;
}

/// Writes every row matching `q` that `actor` may read to `out`, newest first.
/// `Ok(Err(validations))` is an invalid `q`; nothing was written then.
///
/// Pages are asked by offset, and the service is locked for one page at a time: the page
/// is written out after the lock is released, so a long export, or a slow reader at the
/// other end of `out`, never holds up ingest or other queries. Rows stored meanwhile may
/// shift the pages; a row at or above the last one written (by connect time, then id) is
/// then one already written, or one newer than the export, and is skipped. So a concurrent
/// ingest never makes an export write a row twice or skip a row that existed when it
/// started; rows stored during the export appear only if they sort below the rows written
/// so far.
pub fn export(
    shared: &SharedConnLog,
    actor: &Actor,
    q: &str,
    format: &mut dyn PageFormat,
    out: &mut dyn Write,
) -> Result<Result<(), Vec<Validation>>, ExportError> {
    let mut offset = 0u32;
    let mut last: Option<(i64, u128)> = None;
    let mut buf = Vec::new();
    loop {
        let request = QueryRequest {
            q: q.to_owned(),
            limit: PAGE,
            offset,
        };
        let mut service = service::lock(shared);
        let page = match service.query(actor.clone(), request)? {
            Ok(page) => page,
            Err(QueryError::InvalidQuery(validations)) => return Ok(Err(validations)),
            Err(QueryError::Storage(e)) => return Err(ExportError::Storage(e)),
        };
        if offset == 0 {
            format.header(&mut buf);
        }
        let n = page.rows.len() as u32;
        let rows: Vec<ConnectionLog> = page
            .rows
            .into_iter()
            .filter(|row| last.is_none_or(|l| (row.connect_time, row.id.as_u128()) < l))
            .collect();
        if let Some(row) = rows.last() {
            last = Some((row.connect_time, row.id.as_u128()));
        }
        format.page(&mut service, rows, &mut buf)?;
        drop(service);
        out.write_all(&buf)?;
        buf.clear();
        offset = offset.saturating_add(n);
        if n < PAGE || u64::from(offset) >= page.count {
            return Ok(Ok(()));
        }
    }
}

/// The formats written row by row, with no state across pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowFormat {
    /// Coder's service-log lines (JSON or human) of the events that rebuild each row: a
    /// connect line, then a disconnect line when the row has one (only the disconnect for
    /// a disconnect-only row), and one line for a web or tunnel row.
    ServiceLog(LogFormat, LogFields),
    /// One API row per line, as in `GET /api/v2/connectionlog`.
    Ndjson,
    /// A header, then the API row flattened, one per line ([`CSV_COLUMNS`]).
    Csv,
}

impl PageFormat for RowFormat {
    fn header(&mut self, out: &mut Vec<u8>) {
        if *self == RowFormat::Csv {
            out.extend_from_slice(csv_header().as_bytes());
            out.push(b'\n');
        }
    }

    fn page(
        &mut self,
        service: &mut ConnLog,
        rows: Vec<ConnectionLog>,
        out: &mut Vec<u8>,
    ) -> Result<(), ExportError> {
        match *self {
            RowFormat::ServiceLog(log_format, fields) => {
                for row in rows {
                    for event in service.row_events(row)? {
                        // Stamped with the event's own time, so that exports are stable.
                        let at = event.time;
                        writeln!(
                            out,
                            "{}",
                            service.service_log_line(event, log_format, fields, at)?
                        )?;
                    }
                }
            }
            RowFormat::Ndjson => {
                for line in service.api_rows(rows)? {
                    writeln!(out, "{line}")?;
                }
            }
            RowFormat::Csv => {
                for value in api_values(service, rows)? {
                    writeln!(out, "{}", csv_record(&value))?;
                }
            }
        }
        Ok(())
    }
}

/// The rows as the API's JSON values.
pub fn api_values(
    service: &mut ConnLog,
    rows: Vec<ConnectionLog>,
) -> Result<Vec<Value>, ExportError> {
    service
        .api_rows(rows)?
        .iter()
        .map(|line| serde_json::from_str(line).map_err(ExportError::NotJson))
        .collect()
}

/// The value at `path` in a row as text; `None` when absent or null.
pub fn text_at(row: &Value, path: &[&str]) -> Option<String> {
    let mut v = row;
    for key in path {
        v = v.get(key)?;
    }
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The CSV columns: the API row, flattened. Each is its header and the path to its value
/// in the row's JSON; an absent value is empty.
pub const CSV_COLUMNS: [(&str, &[&str]); 24] = [
    ("id", &["id"]),
    ("connect_time", &["connect_time"]),
    ("organization_id", &["organization", "id"]),
    ("organization_name", &["organization", "name"]),
    ("workspace_owner_id", &["workspace_owner_id"]),
    ("workspace_owner_username", &["workspace_owner_username"]),
    ("workspace_id", &["workspace_id"]),
    ("workspace_name", &["workspace_name"]),
    ("agent_name", &["agent_name"]),
    ("ip", &["ip"]),
    ("type", &["type"]),
    ("connection_method", &["connection_method"]),
    ("app_name", &["app_name"]),
    ("app_display_name", &["app_display_name"]),
    ("connection_id", &["ssh_info", "connection_id"]),
    ("disconnect_time", &["ssh_info", "disconnect_time"]),
    ("disconnect_reason", &["ssh_info", "disconnect_reason"]),
    ("exit_code", &["ssh_info", "exit_code"]),
    ("client_session_id", &["ssh_info", "client_session_id"]),
    ("user_id", &["web_info", "user", "id"]),
    ("username", &["web_info", "user", "username"]),
    ("user_agent", &["web_info", "user_agent"]),
    ("slug_or_port", &["web_info", "slug_or_port"]),
    ("status_code", &["web_info", "status_code"]),
];

fn csv_header() -> String {
    CSV_COLUMNS.map(|(name, _)| name).join(",")
}

fn csv_record(row: &Value) -> String {
    CSV_COLUMNS
        .iter()
        .map(|(_, path)| csv_field(&text_at(row, path).unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(",")
}

/// RFC 4180: quoted when it holds a comma, a quote or a line break; quotes doubled. A
/// leading `=`, `+`, `-` or `@` is kept as is (the values are data, not formulas, and
/// changing them would break round trips); open CSVs from untrusted sources with care.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn csv_flattens_an_api_row() {
        let row = serde_json::json!({
            "id": "r1", "connect_time": "2025-07-10T10:14:38Z",
            "organization": {"id": "o1", "name": "coder"},
            "type": "workspace_app",
            "web_info": {"user_agent": "Mozilla/5.0 (X11, Linux)", "user": null,
                         "slug_or_port": "code-server", "status_code": 200}
        });
        let record = csv_record(&row);
        assert!(record.split(',').count() >= CSV_COLUMNS.len());
        assert!(csv_header().starts_with("id,connect_time,organization_id,"));
        assert!(record.starts_with("r1,2025-07-10T10:14:38Z,o1,coder,"));
        assert!(record.ends_with(",,\"Mozilla/5.0 (X11, Linux)\",code-server,200"));
    }
}
