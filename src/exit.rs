//! Process exit codes: the one place they are defined.

/// How a `shipit` invocation ended, as seen by the calling shell or CI system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything asked for was done.
    Success,
    /// A stage, publish or deploy failed.
    Failed,
    /// The command line or the pipeline file is wrong; nothing was attempted.
    Usage,
    /// A bug in shipit itself.
    Internal,
    /// A deploy failed its checks and was rolled back.
    RolledBack,
    /// Interrupted by Ctrl-C or SIGTERM; children were stopped.
    Interrupted,
}

impl ExitCode {
    /// The numeric status handed to the operating system.
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Failed => 1,
            ExitCode::Usage => 2,
            ExitCode::Internal => 3,
            ExitCode::RolledBack => 4,
            ExitCode::Interrupted => 130,
        }
    }
}
