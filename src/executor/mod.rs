//! Runs a [`Plan`]: stages in dependency order with bounded parallelism, each command in its
//! own process group, timeouts and cancellation that kill the whole group, retries with
//! exponential backoff, and a log file per stage.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::binfmt;
use crate::cache::{self, Stamp};
use crate::events::{Event, Lane, Reporter};
use crate::manifest::{Artifact, ArtifactKind, hash_file};
use crate::plan::{Plan, PlannedStage, StepCommand, Unit};
use crate::secrets::Masker;
use crate::tasks::{Task, TaskContext};

/// Lines of output kept for the failure report.
pub const TAIL_LINES: usize = 20;
/// How long a process group gets between SIGTERM and SIGKILL.
mod batch;
mod hints;
mod keys;
mod log;
mod process;
mod unit;

pub use keys::{StageKeyError, signing_keys};

pub use crate::report::{Outcome, RunReport, StageReport, StageStatus, UnitReport};

pub use process::backoff;
use unit::{run_unit, would_build};

const KILL_GRACE: Duration = Duration::from_secs(2);
/// How long to wait for output after a command exits (a stray background child may hold the pipe).
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// Longest wait between two retries.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Stages running at once.
    pub jobs: usize,
    /// Keep running independent stages after a failure.
    pub keep_going: bool,
    /// Show what would run; run nothing, write nothing.
    pub dry_run: bool,
    /// Run cached units anyway (`--no-cache`).
    pub no_cache: bool,
    /// Keys and settings for built-in tasks.
    pub tasks: TaskContext,
    /// When the command began: the run's reported time counts from it, so key decryption and
    /// tool checks before the first stage are included. `None`: from the first stage.
    pub started: Option<Instant>,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot create {}: {source}", path.display())]
pub struct ExecError {
    path: PathBuf,
    source: std::io::Error,
}

/// Shared by every stage of a run.
struct RunContext {
    dist: PathBuf,
    logs: PathBuf,
    reporter: Arc<dyn Reporter>,
    masker: Arc<Masker>,
    /// One permit per command that may run at once, across all stages and units.
    slots: Arc<Semaphore>,
    keep_going: bool,
    no_cache: bool,
    tasks: Arc<TaskContext>,
    /// Folders only one command at a time works in (cargo's target folders).
    folder_locks: Mutex<std::collections::HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
}

/// Runs the plan. `interrupt` is cancelled on Ctrl-C; every running process group is then stopped.
pub async fn execute(
    plan: &Plan,
    options: &ExecOptions,
    reporter: Arc<dyn Reporter>,
    masker: Arc<Masker>,
    interrupt: CancellationToken,
) -> Result<RunReport, ExecError> {
    let started = options.started.unwrap_or_else(Instant::now);
    let logs = plan.dist.join("logs");
    if !options.dry_run {
        std::fs::create_dir_all(&logs).map_err(|source| ExecError {
            path: logs.clone(),
            source,
        })?;
    }
    let jobs = options.jobs.max(1);
    let context = Arc::new(RunContext {
        dist: plan.dist.clone(),
        logs,
        reporter: reporter.clone(),
        masker,
        slots: Arc::new(Semaphore::new(jobs)),
        keep_going: options.keep_going,
        no_cache: options.no_cache,
        tasks: Arc::new(TaskContext {
            threads: jobs,
            ..options.tasks.clone()
        }),
        folder_locks: Mutex::default(),
    });
    // Cancelled on an interrupt, or on the first failure unless --keep-going.
    let stop = interrupt.child_token();
    let mut reports: BTreeMap<String, StageReport> = BTreeMap::new();
    let mut running: JoinSet<StageReport> = JoinSet::new();
    let mut started_names: Vec<String> = Vec::new();

    loop {
        // Settle everything decidable without running (skips, blocks, dry runs), then start
        // what is ready, up to the job limit.
        let mut changed = true;
        while changed {
            changed = false;
            for stage in &plan.stages {
                if reports.contains_key(&stage.name) || started_names.contains(&stage.name) {
                    continue;
                }
                let mut waiting = false;
                let mut blocker = None;
                for need in &stage.needs {
                    match reports.get(need) {
                        None => waiting = true,
                        Some(r) if !r.outcome.status.lets_dependents_run() => {
                            blocker = Some(need.clone())
                        }
                        Some(_) => {}
                    }
                }
                let decided = if let Some(by) = blocker {
                    Some(StageStatus::Blocked { by })
                } else if waiting {
                    None
                } else if stop.is_cancelled() {
                    Some(StageStatus::Cancelled)
                } else if let Some(reason) = &stage.skip {
                    Some(StageStatus::Skipped {
                        reason: reason.clone(),
                    })
                } else if options.dry_run {
                    for line in crate::plan::batch_summary(stage) {
                        reporter.report(&Event::Message {
                            level: crate::events::Level::Info,
                            text: &format!("{}: {line}", stage.name),
                        });
                    }
                    for unit in &stage.units {
                        let lane = Lane::of(stage, unit);
                        if let Some(note) = would_build(stage, unit, options.no_cache) {
                            reporter.report(&Event::Message {
                                level: crate::events::Level::Info,
                                text: &format!("{lane}: {note}"),
                            });
                        }
                        for step in &unit.steps {
                            reporter.report(&Event::StepStarted { lane, step });
                        }
                    }
                    Some(StageStatus::Planned)
                } else if running.len() < jobs {
                    started_names.push(stage.name.clone());
                    running.spawn(run_stage(
                        stage.clone(),
                        context.clone(),
                        stop.child_token(),
                    ));
                    None
                } else {
                    None
                };
                if let Some(status) = decided {
                    let report = StageReport::settled(&stage.name, status);
                    reporter.report(&Event::StageFinished(&report));
                    reports.insert(stage.name.clone(), report);
                    changed = true;
                }
            }
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            Some(joined) = running.join_next() => {
                let report = joined.unwrap_or_else(|e| StageReport::settled(
                    "?",
                    StageStatus::Failed { reason: format!("internal error: {e}") },
                ));
                if report.outcome.status.is_failure() && !options.keep_going {
                    stop.cancel();
                }
                reporter.report(&Event::StageFinished(&report));
                reports.insert(report.stage.clone(), report);
            }
            _ = stop.cancelled(), if !stop.is_cancelled() => {}
        }
    }

    let stages = plan
        .stages
        .iter()
        .filter_map(|s| reports.remove(&s.name))
        .collect();
    Ok(RunReport {
        stages,
        elapsed: started.elapsed(),
        interrupted: interrupt.is_cancelled(),
    })
}

/// Runs a stage's units in parallel, started in order as slots free up (fail-fast unless
/// --keep-going), and sums them up.
async fn run_stage(
    stage: PlannedStage,
    context: Arc<RunContext>,
    cancel: CancellationToken,
) -> StageReport {
    let started = Instant::now();
    let stage = Arc::new(stage);
    let digests: Digests = Arc::default();
    let siblings = cancel.child_token();
    let mut running = JoinSet::new();
    let mut finished: Vec<(usize, UnitReport)> = Vec::new();
    let groups = batch::groups(&stage);
    let mut started_units = vec![false; stage.units.len()];
    loop {
        let next = started_units.iter().position(|s| !s);
        let can_start = next.is_some() && !siblings.is_cancelled();
        tokio::select! {
            biased;
            Some(joined) = running.join_next(), if !running.is_empty() => {
                let (index, report) = joined.unwrap_or_else(|e| {
                    (usize::MAX, UnitReport::ended(None, StageStatus::Failed {
                        reason: format!("internal error: {e}"),
                    }))
                });
                if report.outcome.status.is_failure() && !context.keep_going {
                    siblings.cancel();
                }
                if report.label.is_some() {
                    context.reporter.report(&Event::UnitFinished {
                        stage: &stage.name,
                        report: &report,
                    });
                }
                finished.push((index, report));
            }
            permit = context.slots.clone().acquire_owned(), if can_start => {
                let Ok(permit) = permit else { break };
                let Some(next) = next else { break };
                // A batch group starts together on one slot: one cargo builds all of it.
                let members = stage.units[next]
                    .batch
                    .as_ref()
                    .and_then(|b| groups.get(&b.group))
                    .cloned()
                    .unwrap_or_else(|| vec![next]);
                let rendezvous = stage.units[next].batch.as_ref().map(|_| {
                    batch::Rendezvous::new(
                        stage.clone(),
                        context.clone(),
                        siblings.clone(),
                        members.len(),
                    )
                });
                let mut permit = Some(permit);
                for index in members {
                    started_units[index] = true;
                    running.spawn(run_unit(
                        stage.clone(),
                        index,
                        context.clone(),
                        siblings.child_token(),
                        digests.clone(),
                        permit.take(),
                        rendezvous.as_ref().map(|r| r.member()),
                    ));
                }
            }
            _ = siblings.cancelled(), if can_start => {}
            else => break,
        }
    }
    // Units never started because a sibling failed or the run was stopped.
    for (index, _) in started_units.iter().enumerate().filter(|(_, s)| !**s) {
        let report = UnitReport::ended(stage.units[index].label.clone(), StageStatus::Cancelled);
        if report.label.is_some() {
            context.reporter.report(&Event::UnitFinished {
                stage: &stage.name,
                report: &report,
            });
        }
        finished.push((index, report));
    }
    finished.sort_by_key(|(index, _)| *index);
    let units: Vec<UnitReport> = finished.into_iter().map(|(_, r)| r).collect();
    summarize(&stage.name, units, started.elapsed())
}

/// A stage's report from its units': the first failure decides, else cancelled, else cached
/// when every unit was, else succeeded.
fn summarize(stage: &str, units: Vec<UnitReport>, elapsed: Duration) -> StageReport {
    let mut report = StageReport::settled(stage, StageStatus::Succeeded);
    report.outcome.elapsed = elapsed;
    report.outcome.attempts = units.iter().map(|u| u.outcome.attempts).max().unwrap_or(0);
    report.outcome.artifacts = units
        .iter()
        .flat_map(|u| u.outcome.artifacts.clone())
        .collect();
    let failed = units.iter().find(|u| u.outcome.status.is_failure());
    let cancelled = units
        .iter()
        .any(|u| u.outcome.status == StageStatus::Cancelled);
    let all_cached = !units.is_empty()
        && units
            .iter()
            .all(|u| u.outcome.status == StageStatus::Cached);
    if let Some(unit) = failed {
        report.outcome.status = match (&unit.label, &unit.outcome.status) {
            (Some(label), StageStatus::Failed { reason }) => StageStatus::Failed {
                reason: format!("{label}: {reason}"),
            },
            (_, status) => status.clone(),
        };
        report.outcome.log = unit.outcome.log.clone();
        report.outcome.tail = unit.outcome.tail.clone();
    } else if cancelled {
        report.outcome.status = StageStatus::Cancelled;
    } else if all_cached {
        report.outcome.status = StageStatus::Cached;
    }
    if units.len() == 1 && units[0].label.is_none() {
        report.outcome.log = units[0].outcome.log.clone();
    } else {
        report.units = units;
    }
    report
}

/// Digests of input folders, shared by a stage's units so sources are hashed once (a failure
/// to hash them too, so it is reported once per unit without walking the folders again).
type Digests =
    Arc<tokio::sync::Mutex<BTreeMap<Vec<PathBuf>, Result<cache::Inputs, Arc<std::io::Error>>>>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_millis(100);
        assert_eq!(backoff(base, 1), Duration::from_millis(100));
        assert_eq!(backoff(base, 2), Duration::from_millis(200));
        assert_eq!(backoff(base, 4), Duration::from_millis(800));
        assert_eq!(backoff(base, 40), MAX_BACKOFF);
    }
}
