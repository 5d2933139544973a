//! `connlog query`: what `GET /api/v2/connectionlog` would answer.

use std::sync::Arc;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::context::{Io, OwnedDataDir};
use super::table::{Column, Table};
use super::{CliError, ExitStatus};
use crate::model::QueryRequest;
use crate::service;

/// Print exactly the JSON body Coder's `GET /api/v2/connectionlog` returns, or with
/// `-o table` its rows as a table for people, as `coder list -o table` does.
///
/// The table's times are the connect times in UTC, to the second; DURATION is `ongoing` for
/// a session not yet disconnected; CODE is the HTTP status (or tunnel decision), else the
/// exit code. Values longer than 48 characters are cut (`…`) and control characters are
/// escaped: use JSON for the whole values.
///
/// An invalid query prints Coder's 400 body and exits 2.
///
/// Examples:
///   connlog query --as auditor
///   connlog query --as auditor -o table
///   connlog query --as admin -o table -c time,who,method,app,client_session_id -q 'method:ssh'
///   connlog query --as admin -q 'method:ssh status:ongoing' --limit 20
///   connlog query --as admin -q 'workspace_owner:me connected_after:"2025-07-01T00:00:00Z"'
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
#[command(verbatim_doc_comment)]
pub struct QueryArgs {
    /// Coder's filter language.
    #[arg(short, long, default_value = "")]
    pub q: String,
    /// Rows per page; 0 means 100, as in Coder.
    #[arg(long, default_value_t = 0)]
    pub limit: u32,
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
    /// Who is asking: a username or user id from the directory.
    #[arg(long = "as", value_name = "USER")]
    pub actor: String,
    /// `json`, Coder's body as it is, or `table`, its rows for people.
    #[arg(short, long, value_enum, default_value = "json")]
    #[serde(default)]
    pub output: Output,
    /// The table's columns, comma-separated or repeated (table output only)
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
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    #[default]
    Json,
    Table,
}

pub fn execute(
    owned: &Arc<OwnedDataDir>,
    args: &QueryArgs,
    io: &mut Io,
) -> Result<ExitStatus, CliError> {
    if !args.columns.is_empty() && args.output != Output::Table {
        return Err(CliError::Usage(
            "-c/--column chooses the columns of a table: add -o table".into(),
        ));
    }
    let actor = owned.actor(&args.actor)?;
    let shared = owned.service()?;
    let request = QueryRequest {
        q: args.q.clone(),
        limit: args.limit,
        offset: args.offset,
    };
    let answer = service::lock(&shared).api_page(actor, request)?;
    match super::answer_or_invalid(answer)? {
        Ok(body) if args.output == Output::Table => {
            let body: Value = serde_json::from_str(&body).map_err(|e| {
                CliError::Failed(format!("the plugin returned a body that is not JSON: {e}"))
            })?;
            let rows = body["connection_logs"]
                .as_array()
                .map_or(&[][..], Vec::as_slice);
            let table = Table::new(&args.columns).page(rows);
            io.print(table.strip_suffix('\n').unwrap_or(&table))?;
            Ok(ExitStatus::Success)
        }
        Ok(body) => {
            io.print(&body)?;
            Ok(ExitStatus::Success)
        }
        Err(body) => {
            io.print(&body)?;
            Ok(ExitStatus::Usage)
        }
    }
}
