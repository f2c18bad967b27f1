//! The vocabulary work code speaks while it runs: typed [`Event`]s sent to a [`Reporter`].
//! The executor, publishers and deploys emit them; `ui` implements [`Reporter`] and decides how
//! they look. It sits below all of them, so none imports the screen.

use std::time::Duration;

use crate::plan::{PlannedStage, Step, Unit};
use crate::report::{RunReport, StageReport, UnitReport};

/// Something that happened during a run.
#[derive(Debug)]
pub enum Event<'a> {
    /// A run begins.
    RunStarted {
        /// What is being built.
        project: &'a str,
        /// Its version.
        version: &'a str,
        /// Stages in the plan.
        stages: usize,
        /// Nothing will be executed.
        dry_run: bool,
    },
    /// An attempt of a stage (or of one of its units) begins.
    Started {
        /// Where.
        lane: Lane<'a>,
        /// 1-based attempt.
        attempt: u32,
        /// Attempts allowed.
        attempts: u32,
    },
    /// A command begins (or, in a dry run, would begin).
    StepStarted {
        /// Where.
        lane: Lane<'a>,
        /// The command.
        step: &'a Step,
    },
    /// One line of a command's output (already masked).
    Output {
        /// Where.
        lane: Lane<'a>,
        /// The line.
        line: &'a str,
    },
    /// An attempt failed and another follows after `delay`.
    Retrying {
        /// Where.
        lane: Lane<'a>,
        /// The attempt about to start.
        attempt: u32,
        /// Wait before it.
        delay: Duration,
        /// Why the previous attempt failed.
        reason: &'a str,
    },
    /// A labelled unit of a stage (a target) ended: built, cached or failed.
    UnitFinished {
        /// Its stage.
        stage: &'a str,
        /// How it went.
        report: &'a UnitReport,
    },
    /// A stage ended, was skipped or blocked.
    StageFinished(&'a StageReport),
    /// The run ended.
    RunFinished(&'a RunReport),
    /// A release channel ended: what it recorded in the manifest, or why it failed or was
    /// skipped.
    ChannelFinished {
        /// The channel (`docker`, `github`, `homebrew`).
        channel: &'a str,
        /// What it published, as recorded, when it succeeded.
        record: Option<&'a serde_json::Value>,
        /// Why it failed or was skipped.
        error: Option<&'a str>,
    },
    /// `release --check`: what a channel holds of one file, against what was published.
    Rechecked {
        /// The channel.
        channel: &'a str,
        /// The file, package or image tag.
        file: &'a str,
        /// The digest it should have (`sha256:<hex>`, or npm's `sha512-<base64>`).
        expected: &'a str,
        /// The digest the channel answers with; `None` when it does not hold the file.
        found: Option<&'a str>,
    },
    /// A channel's upload of one file: begun, done, or not needed.
    Upload {
        /// The channel (`github`).
        channel: &'a str,
        /// The file's name.
        name: &'a str,
        /// Its size in bytes.
        size: u64,
        /// Where it is.
        state: UploadState,
    },
    /// An image was pushed to a repository, with its tags.
    ImagePushed {
        /// `registry/owner/name`.
        repository: &'a str,
        /// The digest of what was pushed (an index for several platforms).
        digest: &'a str,
        /// The tags it carries.
        tags: &'a [String],
    },
    /// A deploy begins a step of its rollout (`route 10% of requests to the new version`).
    DeployPhase {
        /// The revision being rolled out.
        revision: u64,
        /// The step.
        phase: &'a str,
    },
    /// The analysis read the new revision's counters for one interval.
    DeploySample {
        /// The revision being rolled out.
        revision: u64,
        /// Requests in the interval.
        requests: u64,
        /// Failed ones.
        errors: u64,
        /// Average response time, milliseconds.
        response_ms: u64,
        /// Why the sample failed, when it did.
        failure: Option<&'a str>,
    },
    /// A note for the user.
    Message {
        /// How important.
        level: Level,
        /// What to say.
        text: &'a str,
    },
}

/// How far an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadState {
    /// Sending.
    Started,
    /// Sent and accepted, after this long.
    Done {
        /// How long it took.
        elapsed: Duration,
    },
    /// The same file was already there: nothing sent.
    Present,
    /// Given up on (the channel's error says why).
    Failed,
}

/// Where work happens: a stage, or one unit (target) of it. Shown as `build` or `build linux-x64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lane<'a> {
    /// The stage.
    pub stage: &'a str,
    /// The unit's label, for stages with several units.
    pub unit: Option<&'a str>,
}

impl<'a> Lane<'a> {
    /// The lane of `unit` in `stage`.
    pub fn of(stage: &'a PlannedStage, unit: &'a Unit) -> Lane<'a> {
        Lane {
            stage: &stage.name,
            unit: unit.label.as_deref(),
        }
    }

    /// An owned copy, for tasks that outlive the borrow.
    pub fn owned(&self) -> (String, Option<String>) {
        (self.stage.to_string(), self.unit.map(str::to_string))
    }
}

impl std::fmt::Display for Lane<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.unit {
            Some(unit) => write!(f, "{} {unit}", self.stage),
            None => f.write_str(self.stage),
        }
    }
}

/// Importance of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Details, shown with `-v`.
    Debug,
    /// Normal progress.
    Info,
    /// Something to look at.
    Warn,
    /// Something failed.
    Error,
}

/// Receives events and shows them.
pub trait Reporter: Send + Sync {
    /// Shows one event.
    fn report(&self, event: &Event<'_>);
}
