//! `connlog export`: matching rows as service-log lines, API rows or CSV.

use std::io::{self, Write};
use std::sync::Arc;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::context::{Io, OwnedDataDir};
use super::table::{Column, Table, text_at};
use super::{CliError, ExitStatus};
use crate::model::{Actor, ConnectionLog, LogFields, LogFormat, QueryRequest};
use crate::service::{self, ConnLog, SharedConnLog};

/// Rows per query while exporting.
const PAGE: u32 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum ExportFormat {
    /// Coder's JSON service-log lines: the events that rebuild each row (`connlog ingest` reads them back).
    Json,
    /// Coder's human service-log lines, as `coder server` writes them.
    Human,
    /// One API row per line, as in `GET /api/v2/connectionlog`.
    Ndjson,
    /// A header, then one row per line.
    Csv,
    /// The rows for people, as `connlog query -o table` shows them (see -c).
    Table,
}

/// Stream the rows a user may see, newest first, in one of five formats.
///
/// `json` and `human` are Coder's service-log formats: a connect line, then a disconnect
/// line when the row has one (only the disconnect for a disconnect-only row), and one line
/// for a web or tunnel row. The line that defines the row carries the row's id; the others
/// carry ids derived from it, so exports are stable. Ingesting a `json` export into an
/// empty data directory gives the same rows.
///
/// `table` is `connlog query -o table`'s table, streamed: its columns fit the first
/// 1,000 rows and widen, never shrink, when a later page holds a wider value. `-o` is short
/// for `--format` (and `--output` its other name), so `-o table` reads as in `query`.
///
/// An invalid query prints Coder's 400 body and exits 2.
///
/// Examples:
///   connlog export --format csv --as auditor > connections.csv
///   connlog export -o table --as auditor -q 'status:ongoing' | less -S
///   connlog export -o table -c time,who,app,duration,disconnect_reason --as admin
///   connlog export --format ndjson --as admin -q 'method:ssh status:completed'
///   connlog --log-fields seed export --format human --as admin
///   connlog export --format json --as admin | connlog --data ./copy ingest -
///   connlog export --format human --as coder-auditor -q 'connected_after:"2025-07-01T00:00:00Z"'
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
#[command(verbatim_doc_comment)]
pub struct ExportArgs {
    /// What to write. `-o` (and `--output`) name it too, so that `export -o table` and
    /// `query -o table` read alike.
    #[arg(short = 'o', long, visible_alias = "output", value_enum)]
    pub format: ExportFormat,
    /// Coder's filter language, as in `connlog query`.
    #[arg(short, long, default_value = "")]
    pub q: String,
    /// Who is asking: a username or user id from the directory.
    #[arg(long = "as", value_name = "USER")]
    pub actor: String,
    /// The table's columns, as in `connlog query` (table format only)
    /// [default: time,who,workspace,agent,method,app,duration,code,ip].
    #[arg(
        short = 'c',
        long = "column",
        value_enum,
        value_delimiter = ',',
        value_name = "COLUMN"
    )]
    #[serde(default)]
    pub columns: Vec<Column>,
    /// The global `--log-fields`, carried to whichever process runs the export.
    #[arg(skip)]
    #[serde(default)]
    pub log_fields: LogFields,
}

pub fn execute(
    owned: &Arc<OwnedDataDir>,
    args: &ExportArgs,
    io: &mut Io,
) -> Result<ExitStatus, CliError> {
    if !args.columns.is_empty() && args.format != ExportFormat::Table {
        return Err(CliError::Usage(
            "-c/--column chooses the columns of a table: add -o table".into(),
        ));
    }
    let actor = owned.actor(&args.actor)?;
    let shared = owned.service()?;
    match export(&shared, actor, args, io.out) {
        Ok(Ok(())) => Ok(ExitStatus::Success),
        Ok(Err(body)) => {
            io.print(&body)?;
            Ok(ExitStatus::Usage)
        }
        // `connlog export … | head` is fine: the reader has what it wanted.
        Err(ExportError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitStatus::Success),
        Err(ExportError::Io(e)) => Err(CliError::Failed(format!("writing: {e}"))),
        Err(ExportError::Service(e)) => Err(e),
    }
}

pub enum ExportError {
    Io(io::Error),
    Service(CliError),
}

impl From<io::Error> for ExportError {
    fn from(e: io::Error) -> Self {
        ExportError::Io(e)
    }
}

impl From<crate::service::ServiceError> for ExportError {
    fn from(e: crate::service::ServiceError) -> Self {
        ExportError::Service(e.into())
    }
}

/// Writes every matching row to `out`. `Ok(Err(body))` is Coder's 400 body for an invalid
/// query (nothing was written then).
///
/// The service is locked for one page at a time, and the page is written out after the
/// lock is released, so a long export (or a slow reader) through a server never holds up
/// its other requests. Rows stored meanwhile may shift the pages: a row at or above the
/// last one written is a row already written (or newer than the export), and is skipped.
pub fn export(
    shared: &SharedConnLog,
    actor: Actor,
    args: &ExportArgs,
    out: &mut dyn Write,
) -> Result<Result<(), String>, ExportError> {
    let format = args.format;
    let mut table = Table::new(&args.columns);
    let mut offset = 0u32;
    let mut last: Option<(i64, u128)> = None;
    let mut buf = Vec::new();
    loop {
        let request = QueryRequest {
            q: args.q.clone(),
            limit: PAGE,
            offset,
        };
        let mut service = service::lock(shared);
        let page = match super::answer_or_invalid(service.query(actor.clone(), request)?)
            .map_err(ExportError::Service)?
        {
            Ok(page) => page,
            Err(body) => return Ok(Err(body)),
        };
        // The header only once the query is known to be valid.
        if offset == 0 && format == ExportFormat::Csv {
            writeln!(buf, "{}", csv_header())?;
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
        write_rows(
            &mut service,
            rows,
            format,
            args.log_fields,
            &mut table,
            &mut buf,
        )?;
        drop(service);
        out.write_all(&buf)?;
        buf.clear();
        offset = offset.saturating_add(n);
        if n < PAGE || u64::from(offset) >= page.count {
            return Ok(Ok(()));
        }
    }
}

fn write_rows(
    service: &mut ConnLog,
    rows: Vec<ConnectionLog>,
    format: ExportFormat,
    fields: LogFields,
    table: &mut Table,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    match format {
        ExportFormat::Json | ExportFormat::Human => {
            let log_format = if format == ExportFormat::Json {
                LogFormat::Json
            } else {
                LogFormat::Human
            };
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
        ExportFormat::Ndjson => {
            for line in service.api_rows(rows)? {
                writeln!(out, "{line}")?;
            }
        }
        ExportFormat::Csv => {
            for value in api_values(service, rows)? {
                writeln!(out, "{}", csv_record(&value))?;
            }
        }
        // Even an empty first page writes the header.
        ExportFormat::Table => {
            let values = api_values(service, rows)?;
            out.write_all(table.page(&values).as_bytes())?;
        }
    }
    Ok(())
}

/// The rows as the API's JSON values.
fn api_values(service: &mut ConnLog, rows: Vec<ConnectionLog>) -> Result<Vec<Value>, ExportError> {
    service
        .api_rows(rows)?
        .iter()
        .map(|line| {
            serde_json::from_str(line).map_err(|e| {
                ExportError::Service(CliError::Failed(format!(
                    "the plugin returned a row that is not JSON: {e}"
                )))
            })
        })
        .collect()
}

/// The CSV columns: the API row, flattened. Each is its header and the path to its value
/// in the row's JSON; an absent value is empty.
const CSV_COLUMNS: [(&str, &[&str]); 24] = [
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
