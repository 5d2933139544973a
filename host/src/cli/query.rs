//! `connlog query`: what `GET /api/v2/connectionlog` would answer.

use std::sync::Arc;

use clap::Args;
use serde::{Deserialize, Serialize};

use super::context::{Io, OwnedDataDir};
use super::{CliError, ExitStatus};
use crate::model::QueryRequest;
use crate::service;

/// Print exactly the JSON body Coder's `GET /api/v2/connectionlog` returns.
///
/// An invalid query prints Coder's 400 body and exits 2.
///
/// Examples:
///   connlog query --as auditor
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
}

pub fn execute(
    owned: &Arc<OwnedDataDir>,
    args: &QueryArgs,
    io: &mut Io,
) -> Result<ExitStatus, CliError> {
    let actor = owned.actor(&args.actor)?;
    let shared = owned.service()?;
    let request = QueryRequest {
        q: args.q.clone(),
        limit: args.limit,
        offset: args.offset,
    };
    let answer = service::lock(&shared).api_page(actor, request)?;
    match super::answer_or_invalid(answer)? {
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
