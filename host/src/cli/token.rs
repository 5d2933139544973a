//! `connlog token`: API tokens for the REST API.

use std::sync::Arc;

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use super::context::{Io, OwnedDataDir};
use super::{CliError, ExitStatus};
use crate::directory::{Directory, DirectoryError, write_atomic};

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
    let no_file = || {
        CliError::Data(format!(
            "no directory file at {}: run `connlog simulate` first, or pass --directory FILE",
            path.display()
        ))
    };
    // A replica edits the shared directory, and its file follows.
    if let Some(shared) = owned.running_service() {
        let mut service = crate::service::lock(&shared);
        if let Some(pg) = service.shared_store() {
            let (text, changed) = pg.edit_directory(|current| {
                let text = match current {
                    Some(text) => text.to_owned(),
                    None => std::fs::read_to_string(&path).map_err(|_| no_file())?,
                };
                let mut directory = Directory::from_json(&text, &path)
                    .map_err(|e| CliError::Data(e.to_string()))?;
                let changed = apply(&mut directory, command)?;
                Ok::<_, CliError>((directory.to_json(), changed))
            })?;
            write_atomic(&path, text.as_bytes())
                .map_err(|e| CliError::Data(format!("writing {}: {e}", path.display())))?;
            return report(changed, io);
        }
    }
    if !path.exists() {
        return Err(no_file());
    }
    let mut directory = global.load_directory()?;
    let changed = apply(&mut directory, command)?;
    directory
        .save(&path)
        .map_err(|e| CliError::Data(e.to_string()))?;
    report(changed, io)
}

/// What a token command changed.
enum Changed {
    Created(String),
    Revoked(String),
}

fn apply(directory: &mut Directory, command: &TokenCommand) -> Result<Changed, CliError> {
    match command {
        TokenCommand::Create(args) => directory
            .create_token(&args.user)
            .map(Changed::Created)
            .map_err(|e| match e {
                DirectoryError::UnknownUser(_) | DirectoryError::DeletedUser(_) => {
                    CliError::Usage(e.to_string())
                }
                other => CliError::Data(other.to_string()),
            }),
        TokenCommand::Revoke(args) => {
            let id = args.token.split('-').next().unwrap_or_default();
            if !directory.revoke_token(id) {
                return Err(CliError::Usage(format!("no token with id {id:?}")));
            }
            Ok(Changed::Revoked(id.to_owned()))
        }
    }
}

fn report(changed: Changed, io: &mut Io) -> Result<ExitStatus, CliError> {
    match changed {
        Changed::Created(token) => io.print(&token)?,
        Changed::Revoked(id) => io.note(&format!("revoked token {id}")),
    }
    Ok(ExitStatus::Success)
}
