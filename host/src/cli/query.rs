//! `connlog query`: what `GET /api/v2/connectionlog` would answer.

use clap::Args;
use connlog_guest::model::QueryRequest;

use super::{CliError, ExitStatus, GlobalOptions};

/// Print exactly the JSON body Coder's `GET /api/v2/connectionlog` returns.
///
/// An invalid query prints Coder's 400 body and exits 2.
///
/// Examples:
///   connlog query --as auditor
///   connlog query --as admin -q 'type:ssh status:ongoing' --limit 20
///   connlog query --as admin -q 'workspace_owner:me connected_after:"2025-07-01T00:00:00Z"'
#[derive(Args, Debug)]
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

pub fn run(global: &GlobalOptions, args: &QueryArgs) -> Result<ExitStatus, CliError> {
    let (mut service, actor) = global.open_as(&args.actor)?;
    let request = QueryRequest {
        q: args.q.clone(),
        limit: args.limit,
        offset: args.offset,
    };
    match super::answer_or_invalid(service.api_page(actor, request)?)? {
        Ok(body) => {
            println!("{body}");
            Ok(ExitStatus::Success)
        }
        Err(body) => {
            println!("{body}");
            Ok(ExitStatus::Usage)
        }
    }
}
