//! Exit codes, one meaning each, and the error that carries them.

use std::process::ExitCode;

use crate::plugin::PluginError;

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: everything worked.
    Success,
    /// 1: some input was rejected (the rest was stored), or the operation failed.
    Rejected,
    /// 2: the command line or the query was invalid (Coder's 400).
    Usage,
    /// 3: the plugin was refused: not a plugin, or another contract version.
    Plugin,
    /// 4: the data directory, store or directory file is unusable.
    Data,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Rejected => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Plugin => 3,
            ExitStatus::Data => 4,
        }
    }

    /// The status a code means; an unknown code is a failure.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => ExitStatus::Success,
            2 => ExitStatus::Usage,
            3 => ExitStatus::Plugin,
            4 => ExitStatus::Data,
            _ => ExitStatus::Rejected,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Plugin(PluginError),
    #[error("{0}")]
    Data(String),
    #[error("{0}")]
    Failed(String),
    /// A failure the directory's owner reported for a command it ran for us.
    #[error("{message}")]
    Reported { status: ExitStatus, message: String },
}

impl CliError {
    pub fn status(&self) -> ExitStatus {
        match self {
            CliError::Usage(_) => ExitStatus::Usage,
            CliError::Plugin(PluginError::Trapped { .. } | PluginError::Poisoned) => {
                ExitStatus::Rejected
            }
            CliError::Plugin(_) => ExitStatus::Plugin,
            CliError::Data(_) => ExitStatus::Data,
            CliError::Failed(_) => ExitStatus::Rejected,
            CliError::Reported { status, .. } => *status,
        }
    }

    /// Sorts a failure to open the service into plugin and data problems.
    pub fn from_open_error(error: anyhow::Error) -> Self {
        match error.downcast::<PluginError>() {
            Ok(plugin) => CliError::from(plugin),
            Err(other) => CliError::Data(format!("{other:#}")),
        }
    }
}

/// A store's failure that is not sorted any finer: the store is unusable (exit 4).
impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        CliError::Data(format!("{error:#}"))
    }
}

impl From<crate::service::ServiceError> for CliError {
    fn from(error: crate::service::ServiceError) -> Self {
        match error {
            crate::service::ServiceError::Plugin(p) => CliError::from(p),
            other => CliError::Failed(other.to_string()),
        }
    }
}

impl From<PluginError> for CliError {
    /// Settings are the operator's flags: refusing them is a usage error.
    fn from(error: PluginError) -> Self {
        match error {
            PluginError::SettingsRefused { .. } => CliError::Usage(error.to_string()),
            other => CliError::Plugin(other),
        }
    }
}
