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
    /// Work failed because of an error that has causes (each is reported, `Caused by:`).
    #[error(transparent)]
    Work(Box<dyn std::error::Error + Send + Sync>),
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
            Error::Failed(_) | Error::Work(_) | Error::StagesFailed => ExitCode::Failed,
            Error::Interrupted => ExitCode::Interrupted,
            Error::Internal(_) => ExitCode::Internal,
        }
    }
}

impl Error {
    /// Failed work, keeping `error`'s causes for the report.
    pub fn work(error: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Work(Box::new(error))
    }

    /// The messages of the errors that caused this one, outermost first.
    pub fn causes(&self) -> Vec<String> {
        causes(self)
    }
}

/// The messages of the errors that caused `error`, outermost first.
pub fn causes(error: &dyn std::error::Error) -> Vec<String> {
    let mut causes = Vec::new();
    let mut next = error.source();
    while let Some(cause) = next {
        causes.push(cause.to_string());
        next = cause.source();
    }
    causes
}

/// `error` with every cause after it, on one line: for a failure reason, a record or a
/// warning, where there is no room for `Caused by:` lines.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    for cause in causes(error) {
        text.push_str(": ");
        text.push_str(&cause);
    }
    text
}

impl From<LoadError> for Error {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Config(c) => Error::Config(c),
            other => Error::Usage(other.to_string()),
        }
    }
}

impl From<FactsError> for Error {
    fn from(e: FactsError) -> Self {
        Error::Usage(e.to_string())
    }
}
