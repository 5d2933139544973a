//! `connlog token`: API tokens for the REST API.

use std::sync::Arc;

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use super::context::{Io, OwnedDataDir};
use super::{CliError, ExitStatus};
use crate::directory::DirectoryError;

/// API tokens for `connlog serve` (the `Coder-Session-Token` header).
#[derive(Subcommand, Clone, Debug, Serialize, Deserialize)]
pub enum TokenCommand {
    Create(CreateArgs),
    Revoke(RevokeArgs),
}

/// Issue an API token for a user and print it once.
///
/// Only a hash of the token is stored in the directory file: the plain token cannot be
/// shown again. Send it as the `Coder-Session-Token` header.
///
/// Examples:
///   connlog token create --user admin
///   TOKEN=$(connlog token create --user auditor)
///   curl -H "Coder-Session-Token: $TOKEN" http://127.0.0.1:3000/api/v2/connectionlog
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
#[command(verbatim_doc_comment)]
pub struct CreateArgs {
    /// A username or user id from the directory.
    #[arg(long, value_name = "NAME")]
    pub user: String,
}

/// Delete an API token.
///
/// Example:
///   connlog token revoke Xk2aB9cD0e
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
#[command(verbatim_doc_comment)]
pub struct RevokeArgs {
    /// The token, or its id (the part before the `-`).
    pub token: String,
}

pub fn execute(
    owned: &Arc<OwnedDataDir>,
    command: &TokenCommand,
    io: &mut Io,
) -> Result<ExitStatus, CliError> {
    let global = &owned.global;
    // Commands run concurrently through a server: one read-modify-write of the file at a time.
    let _writing = owned.directory_file_lock();
    let path = global.directory_path();
    if !path.exists() {
        return Err(CliError::Data(format!(
            "no directory file at {}: run `connlog simulate` first, or pass --directory FILE",
            path.display()
        )));
    }
    let mut directory = global.load_directory()?;
    match command {
        TokenCommand::Create(args) => {
            let token = directory.create_token(&args.user).map_err(|e| match e {
                DirectoryError::UnknownUser(_) | DirectoryError::DeletedUser(_) => {
                    CliError::Usage(e.to_string())
                }
                other => CliError::Data(other.to_string()),
            })?;
            directory
                .save(&path)
                .map_err(|e| CliError::Data(e.to_string()))?;
            io.print(&token)?;
            Ok(ExitStatus::Success)
        }
        TokenCommand::Revoke(args) => {
            let id = args.token.split('-').next().unwrap_or_default();
            if !directory.revoke_token(id) {
                return Err(CliError::Usage(format!("no token with id {id:?}")));
            }
            directory
                .save(&path)
                .map_err(|e| CliError::Data(e.to_string()))?;
            io.note(&format!("revoked token {id}"));
            Ok(ExitStatus::Success)
        }
    }
}
