//! What a run reports: how each stage and unit ended, with its artifacts and log. Plain data
//! the executor fills and the output layer (`ui`) shows; neither depends on the other for it.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::manifest::Artifact;

/// How a stage ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StageStatus {
    /// Every command succeeded and its artifacts were collected.
    Succeeded,
    /// Its inputs were unchanged since the last good run; its artifacts were reused.
    Cached,
    /// A command failed on its last attempt.
    Failed {
        /// What failed.
        reason: String,
    },
    /// The last attempt ran out of time; its process group was killed.
    TimedOut {
        /// The limit, in milliseconds.
        after_ms: u64,
    },
    /// Its `when` conditions did not hold.
    Skipped {
        /// Which condition.
        reason: String,
    },
    /// A stage it needs did not succeed.
    Blocked {
        /// That stage.
        by: String,
    },
    /// Stopped (or never started) because of another failure or an interrupt.
    Cancelled,
    /// Dry run: would have run.
    Planned,
}

impl StageStatus {
    /// Whether stages that need this one may run.
    pub fn lets_dependents_run(&self) -> bool {
        matches!(
            self,
            StageStatus::Succeeded
                | StageStatus::Cached
                | StageStatus::Skipped { .. }
                | StageStatus::Planned
        )
    }

    /// Whether this counts as a failure of the run.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            StageStatus::Failed { .. } | StageStatus::TimedOut { .. }
        )
    }

    /// One word for tables and logs.
    pub fn word(&self) -> &'static str {
        match self {
            StageStatus::Succeeded => "succeeded",
            StageStatus::Cached => "cached",
            StageStatus::Failed { .. } => "failed",
            StageStatus::TimedOut { .. } => "timed out",
            StageStatus::Skipped { .. } => "skipped",
            StageStatus::Blocked { .. } => "blocked",
            StageStatus::Cancelled => "cancelled",
            StageStatus::Planned => "planned",
        }
    }
}

/// How a stage, or one unit of it, ended.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// How it ended.
    #[serde(flatten)]
    pub status: StageStatus,
    /// Wall time over all attempts.
    #[serde(rename = "elapsed_ms", serialize_with = "ms")]
    pub elapsed: Duration,
    /// Attempts made.
    pub attempts: u32,
    /// Its log file (absent in dry runs and for work that never started).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
    /// The last lines of output, for failures.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tail: Vec<String>,
    /// What to do about a failure shipit recognises (a missing macOS SDK).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Artifacts it produced.
    #[serde(skip)]
    pub artifacts: Vec<Artifact>,
}

impl Outcome {
    /// Work that ended without running.
    pub(crate) fn ended(status: StageStatus) -> Outcome {
        Outcome {
            status,
            elapsed: Duration::ZERO,
            attempts: 0,
            log: None,
            tail: Vec::new(),
            hint: None,
            artifacts: Vec::new(),
        }
    }
}

/// The result of one stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// Stage name.
    pub stage: String,
    /// How it ended (for a stage with units: the first failure, else all cached, else done).
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Its labelled units (one per target for `cargo`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<UnitReport>,
}

impl StageReport {
    /// A stage that ended without running.
    pub(crate) fn settled(stage: &str, status: StageStatus) -> StageReport {
        StageReport {
            stage: stage.to_string(),
            outcome: Outcome::ended(status),
            units: Vec::new(),
        }
    }
}

/// The result of one unit of a stage.
#[derive(Debug, Clone, Serialize)]
pub struct UnitReport {
    /// Its label (the target, for `cargo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl UnitReport {
    /// A unit that ended without running its commands.
    pub(crate) fn ended(label: Option<String>, status: StageStatus) -> UnitReport {
        UnitReport {
            label,
            outcome: Outcome::ended(status),
        }
    }
}

fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// The result of a whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Per stage, in plan order.
    pub stages: Vec<StageReport>,
    /// Wall time.
    #[serde(rename = "elapsed_ms", serialize_with = "ms")]
    pub elapsed: Duration,
    /// Stopped by Ctrl-C or SIGTERM.
    pub interrupted: bool,
}

impl RunReport {
    /// Every stage succeeded, was skipped, or (dry run) was planned.
    pub fn succeeded(&self) -> bool {
        !self.interrupted
            && self
                .stages
                .iter()
                .all(|s| s.outcome.status.lets_dependents_run())
    }

    /// The targets the `builds` stages (their units labelled by target) built, and those
    /// that failed, in order; `None` unless every failure of the run is such a target's (or a
    /// stage blocked behind one), when building the rest is worth it (`build --keep-going`).
    pub fn target_outcomes(&self, builds: &[&str]) -> Option<(Vec<String>, Vec<String>)> {
        let (mut built, mut failed) = (Vec::new(), Vec::new());
        for stage in &self.stages {
            let is_build = builds.contains(&stage.stage.as_str());
            if !is_build {
                let failure = stage.outcome.status.is_failure()
                    && !matches!(stage.outcome.status, StageStatus::Blocked { .. });
                if failure {
                    return None;
                }
                continue;
            }
            for unit in &stage.units {
                let Some(target) = &unit.label else { continue };
                let list = if unit.outcome.status.is_failure() {
                    &mut failed
                } else {
                    &mut built
                };
                if !list.contains(target) {
                    list.push(target.clone());
                }
            }
        }
        built.retain(|t| !failed.contains(t));
        (!built.is_empty() && !failed.is_empty()).then_some((built, failed))
    }

    /// All artifacts, ordered by path.
    pub fn artifacts(&self) -> Vec<Artifact> {
        let mut all: Vec<Artifact> = self
            .stages
            .iter()
            .flat_map(|s| s.outcome.artifacts.clone())
            .collect();
        all.sort_by(|a, b| a.path.cmp(&b.path));
        all
    }
}
