//! The errors a command can end with, each mapped to its exit code.

use crate::config::{ConfigError, LoadError};
use crate::exit::ExitCode;
use crate::facts::FactsError;

/// How a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline file has problems (each located).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The command line or environment is unusable.
    #[error("{0}")]
    Usage(String),
    /// Work was attempted and failed.
    #[error("{0}")]
    Failed(String),
    /// One or more stages failed; each was reported in detail as it ended.
    #[error("one or more stages failed")]
    StagesFailed,
    /// Ctrl-C or SIGTERM.
    #[error("interrupted")]
    Interrupted,
    /// A bug in shipit.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config(_) | Error::Usage(_) => ExitCode::Usage,
            Error::Failed(_) | Error::StagesFailed => ExitCode::Failed,
            Error::Interrupted => ExitCode::Interrupted,
            Error::Internal(_) => ExitCode::Internal,
        }
    }
}

impl From<LoadError> for Error {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Config(c) => Error::Config(c),
            read @ LoadError::Read { .. } => Error::Usage(read.to_string()),
        }
    }
}

impl From<FactsError> for Error {
    fn from(e: FactsError) -> Self {
        Error::Usage(e.to_string())
    }
}
