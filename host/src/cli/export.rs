//! `connlog export`: matching rows as service-log lines, API rows or CSV.

use std::io;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use super::context::{Io, OwnedDataDir};
use super::table::{Column, Table};
use super::{CliError, ExitStatus};
use crate::export::{ExportError, PageFormat, RowFormat, api_values, export};
use crate::model::{ConnectionLog, LogFields, LogFormat};
use crate::responses::{INVALID_QUERY_MESSAGE, validation_body};
use crate::service::ConnLog;

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
    let mut format: Box<dyn PageFormat> = match args.format.row_format(args.log_fields) {
        Some(rows) => Box::new(rows),
        None => Box::new(TableFormat(Table::new(&args.columns))),
    };
    match export(&shared, &actor, &args.q, format.as_mut(), io.out) {
        Ok(Ok(())) => Ok(ExitStatus::Success),
        Ok(Err(validations)) => {
            io.print(&validation_body(INVALID_QUERY_MESSAGE, &validations))?;
            Ok(ExitStatus::Usage)
        }
        // `connlog export … | head` is fine: the reader has what it wanted.
        Err(ExportError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitStatus::Success),
        Err(ExportError::Service(e)) => Err(e.into()),
        Err(e) => Err(CliError::Failed(e.to_string())),
    }
}

impl ExportFormat {
    /// The library's format for this one; `None` for the table, which is the CLI's own.
    fn row_format(self, fields: LogFields) -> Option<RowFormat> {
        match self {
            ExportFormat::Json => Some(RowFormat::ServiceLog(LogFormat::Json, fields)),
            ExportFormat::Human => Some(RowFormat::ServiceLog(LogFormat::Human, fields)),
            ExportFormat::Ndjson => Some(RowFormat::Ndjson),
            ExportFormat::Csv => Some(RowFormat::Csv),
            ExportFormat::Table => None,
        }
    }
}

/// `-o table`, streamed: widths fit the first page and only grow.
struct TableFormat(Table);

impl PageFormat for TableFormat {
    // Even an empty first page writes the header.
    fn page(
        &mut self,
        service: &mut ConnLog,
        rows: Vec<ConnectionLog>,
        out: &mut Vec<u8>,
    ) -> Result<(), ExportError> {
        let values = api_values(service, rows)?;
        out.extend_from_slice(self.0.page(&values).as_bytes());
        Ok(())
    }
}
