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
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::binfmt;
use crate::cache::{self, Stamp};
use crate::manifest::{Artifact, ArtifactKind, hash_file};
use crate::plan::{Plan, PlannedStage, StepCommand, Unit};
use crate::secrets::Masker;
use crate::tasks::{Task, TaskContext};
use crate::ui::{Event, Lane, Reporter};

/// Lines of output kept for the failure report.
pub const TAIL_LINES: usize = 20;
/// How long a process group gets between SIGTERM and SIGKILL.
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
}

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
    /// Artifacts it produced.
    #[serde(skip)]
    pub artifacts: Vec<Artifact>,
}

impl Outcome {
    /// Work that ended without running.
    fn ended(status: StageStatus) -> Outcome {
        Outcome {
            status,
            elapsed: Duration::ZERO,
            attempts: 0,
            log: None,
            tail: Vec::new(),
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
    fn settled(stage: &str, status: StageStatus) -> StageReport {
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
    fn ended(label: Option<String>, status: StageStatus) -> UnitReport {
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
}

/// Runs the plan. `interrupt` is cancelled on Ctrl-C; every running process group is then stopped.
pub async fn execute(
    plan: &Plan,
    options: &ExecOptions,
    reporter: Arc<dyn Reporter>,
    masker: Arc<Masker>,
    interrupt: CancellationToken,
) -> Result<RunReport, ExecError> {
    let started = Instant::now();
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
                    for unit in &stage.units {
                        let lane = Lane::of(stage, unit);
                        if let Some(note) = would_build(stage, unit, options.no_cache) {
                            reporter.report(&Event::Message {
                                level: crate::ui::Level::Info,
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
    let mut next = 0;
    loop {
        let can_start = next < stage.units.len() && !siblings.is_cancelled();
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
                running.spawn(run_unit(
                    stage.clone(),
                    next,
                    context.clone(),
                    siblings.child_token(),
                    digests.clone(),
                    permit,
                ));
                next += 1;
            }
            _ = siblings.cancelled(), if can_start => {}
            else => break,
        }
    }
    // Units never started because a sibling failed or the run was stopped.
    for index in next..stage.units.len() {
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

/// Digests of input folders, shared by a stage's units so sources are hashed once.
type Digests = Arc<tokio::sync::Mutex<BTreeMap<Vec<PathBuf>, Result<String, String>>>>;

/// Runs one unit: reuse it from the cache when its inputs are unchanged, else run its attempts,
/// then collect (and verify) its artifacts.
async fn run_unit(
    stage: Arc<PlannedStage>,
    index: usize,
    context: Arc<RunContext>,
    cancel: CancellationToken,
    digests: Digests,
    _slot: OwnedSemaphorePermit,
) -> (usize, UnitReport) {
    let started = Instant::now();
    let unit = &stage.units[index];
    let lane = Lane::of(&stage, unit);
    let log_name = match &unit.label {
        Some(label) => format!("{}-{label}.log", stage.name),
        None => format!("{}.log", stage.name),
    };
    let log_path = context.logs.join(log_name);
    let mut report = UnitReport::ended(unit.label.clone(), StageStatus::Succeeded);
    report.outcome.log = Some(log_path.clone());
    // A unit that may be cached keeps its log: a cached run appends a line to the log of the
    // build that made the output, and a real build starts it over.
    let log = match Log::open(&log_path, context.masker.clone(), unit.cache.is_some()) {
        Ok(log) => Arc::new(log),
        Err(e) => {
            report.outcome.status = StageStatus::Failed {
                reason: format!("cannot create {}: {e}", log_path.display()),
            };
            return (index, report);
        }
    };
    if cancel.is_cancelled() {
        report.outcome.status = StageStatus::Cancelled;
        return (index, report);
    }

    let mut building_because: Option<String> = None;
    let fingerprint = match &unit.cache {
        Some(key) => {
            let digest = {
                let mut digests = digests.lock().await;
                match digests.get(&key.inputs) {
                    Some(known) => known.clone(),
                    None => {
                        let (inputs, exclude) = (key.inputs.clone(), key.exclude.clone());
                        let digest = tokio::task::spawn_blocking(move || {
                            cache::digest_inputs(&inputs, &exclude).map_err(|e| e.to_string())
                        })
                        .await
                        .unwrap_or_else(|e| Err(e.to_string()));
                        digests.insert(key.inputs.clone(), digest.clone());
                        digest
                    }
                }
            };
            match digest {
                Ok(digest) => Some(cache::fingerprint(key, &stage.env, unit, &digest)),
                Err(e) => {
                    building_because = Some(format!("cannot hash the inputs, building: {e}"));
                    None
                }
            }
        }
        None => None,
    };
    if let (Some(key), Some(fingerprint)) = (&unit.cache, &fingerprint)
        && !context.no_cache
    {
        let outputs: Vec<PathBuf> = unit
            .artifacts
            .iter()
            .filter_map(|a| a.source.clone())
            .collect();
        let fresh = Stamp::read(&key.stamp).is_some_and(|s| s.is_fresh(fingerprint, &outputs));
        if fresh {
            log.line(&format!(
                "# shipit: {}: inputs unchanged; reusing the output of the build logged above",
                humantime::format_rfc3339_seconds(std::time::SystemTime::now())
            ));
            match collect_artifacts(unit, &context.dist) {
                Ok(artifacts) => {
                    report.outcome.artifacts = artifacts;
                    report.outcome.status = StageStatus::Cached;
                    report.outcome.elapsed = started.elapsed();
                    return (index, report);
                }
                Err(reason) => {
                    building_because = Some(format!(
                        "cannot reuse the cached output ({reason}); building"
                    ));
                }
            }
        }
    }

    if unit.cache.is_some() {
        log.restart();
    }
    if let Some(reason) = building_because {
        log.line(&format!("# shipit: {reason}"));
    }
    let attempts = stage.retries.saturating_add(1);
    for attempt in 1..=attempts {
        report.outcome.attempts = attempt;
        context.reporter.report(&Event::Started {
            lane,
            attempt,
            attempts,
        });
        log.line(&format!(
            "# shipit: {lane}, attempt {attempt} of {attempts}",
        ));
        let failure = match run_attempt(&stage, unit, lane, &context, &log, &cancel).await {
            Ok(()) => match collect_artifacts(unit, &context.dist) {
                Ok(artifacts) => {
                    report.outcome.artifacts = artifacts;
                    report.outcome.status = StageStatus::Succeeded;
                    break;
                }
                Err(reason) => Failure::Failed(reason),
            },
            Err(failure) => failure,
        };
        log.line(&format!("# shipit: {}", failure.describe()));
        report.outcome.status = match failure {
            Failure::Cancelled => StageStatus::Cancelled,
            Failure::TimedOut(after) => StageStatus::TimedOut {
                after_ms: after.as_millis() as u64,
            },
            Failure::Failed(reason) => StageStatus::Failed { reason },
        };
        if report.outcome.status == StageStatus::Cancelled {
            break;
        }
        if attempt < attempts {
            let delay = backoff(stage.backoff, attempt);
            let reason = match &report.outcome.status {
                StageStatus::TimedOut { .. } => "timed out".to_string(),
                StageStatus::Failed { reason } => reason.clone(),
                other => other.word().to_string(),
            };
            context.reporter.report(&Event::Retrying {
                lane,
                attempt: attempt + 1,
                delay,
                reason: &reason,
            });
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = cancel.cancelled() => {
                    report.outcome.status = StageStatus::Cancelled;
                    break;
                }
            }
        }
    }
    if report.outcome.status == StageStatus::Succeeded
        && let (Some(key), Some(fingerprint)) = (&unit.cache, fingerprint)
    {
        let outputs: Vec<PathBuf> = unit
            .artifacts
            .iter()
            .filter_map(|a| a.source.clone())
            .collect();
        if let Err(e) = Stamp::record(fingerprint, &outputs).and_then(|s| s.write(&key.stamp)) {
            log.line(&format!(
                "# shipit: cannot record the cache stamp {}: {e}",
                key.stamp.display()
            ));
        }
    }
    if report.outcome.status.is_failure() {
        report.outcome.tail = log.tail();
    }
    report.outcome.elapsed = started.elapsed();
    (index, report)
}

/// For `--dry-run`: whether a unit with a cache would be reused, or why it would run.
fn would_build(stage: &PlannedStage, unit: &Unit, no_cache: bool) -> Option<String> {
    let key = unit.cache.as_ref()?;
    if no_cache {
        return Some("would build (--no-cache)".into());
    }
    let Some(stamp) = Stamp::read(&key.stamp) else {
        return Some("would build: never built here before".into());
    };
    let digest = match cache::digest_inputs(&key.inputs, &key.exclude) {
        Ok(digest) => digest,
        Err(e) => return Some(format!("would build: cannot hash its inputs ({e})")),
    };
    let fingerprint = cache::fingerprint(key, &stage.env, unit, &digest);
    let outputs: Vec<PathBuf> = unit
        .artifacts
        .iter()
        .filter_map(|a| a.source.clone())
        .collect();
    Some(match stamp.staleness(&fingerprint, &outputs) {
        None => "cached: inputs unchanged, output intact".into(),
        Some(why) => format!("would build: {why}"),
    })
}

/// Delay before attempt `attempt + 1`: `base`, doubled per earlier retry, capped.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(MAX_BACKOFF)
}

#[derive(Debug)]
enum Failure {
    Failed(String),
    TimedOut(Duration),
    Cancelled,
}

impl Failure {
    fn describe(&self) -> String {
        match self {
            Failure::Failed(reason) => reason.clone(),
            Failure::TimedOut(after) => format!(
                "timed out after {}; process group killed",
                humantime::format_duration(*after)
            ),
            Failure::Cancelled => "cancelled; process group killed".to_string(),
        }
    }
}

/// Runs every step of a unit once, within the stage's timeout.
async fn run_attempt(
    stage: &PlannedStage,
    unit: &Unit,
    lane: Lane<'_>,
    context: &RunContext,
    log: &Arc<Log>,
    cancel: &CancellationToken,
) -> Result<(), Failure> {
    let deadline = stage.timeout.map(|t| tokio::time::Instant::now() + t);
    for step in &unit.steps {
        context.reporter.report(&Event::StepStarted { lane, step });
        log.line(&format!("$ {}", step.command));
        if let StepCommand::Task(task) = &step.command {
            run_task(task, stage, context, log, cancel, deadline).await?;
            continue;
        }
        let mut command = match &step.command {
            StepCommand::Shell(script) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(script);
                c
            }
            StepCommand::Exec(argv) => {
                let Some((program, args)) = argv.split_first() else {
                    continue;
                };
                let mut c = Command::new(program);
                c.args(args);
                c
            }
            StepCommand::Task(_) => unreachable!("tasks ran above"),
        };
        command
            .current_dir(&stage.dir)
            .envs(&stage.env)
            .envs(&unit.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| {
            Failure::Failed(format!(
                "cannot start `{}` in {}: {e}",
                step.command,
                stage.dir.display()
            ))
        })?;
        let pgid = child.id().map(|id| Pid::from_raw(id as i32));
        let mut readers = JoinSet::new();
        if let Some(out) = child.stdout.take() {
            readers.spawn(pump(
                out,
                log.clone(),
                context.reporter.clone(),
                lane.owned(),
            ));
        }
        if let Some(err) = child.stderr.take() {
            readers.spawn(pump(
                err,
                log.clone(),
                context.reporter.clone(),
                lane.owned(),
            ));
        }
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            status = child.wait() => Ok(status),
            _ = sleep => Err(Failure::TimedOut(stage.timeout.unwrap_or_default())),
            _ = cancel.cancelled() => Err(Failure::Cancelled),
        };
        let status = match outcome {
            Ok(status) => status,
            Err(failure) => {
                if let Some(pgid) = pgid {
                    kill_group(pgid, &mut child).await;
                }
                drain(readers).await;
                return Err(failure);
            }
        };
        drain(readers).await;
        let status =
            status.map_err(|e| Failure::Failed(format!("waiting for `{}`: {e}", step.command)))?;
        if !status.success() {
            return Err(Failure::Failed(format!(
                "`{}` {}",
                step.command,
                describe_status(status)
            )));
        }
    }
    Ok(())
}

/// Runs a built-in task on a blocking thread, within the stage's deadline.
async fn run_task(
    task: &Task,
    stage: &PlannedStage,
    context: &RunContext,
    log: &Arc<Log>,
    cancel: &CancellationToken,
    deadline: Option<tokio::time::Instant>,
) -> Result<(), Failure> {
    let job = {
        let task = task.clone();
        let tasks = context.tasks.clone();
        tokio::task::spawn_blocking(move || task.run(&tasks))
    };
    let sleep = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        joined = job => joined.unwrap_or_else(|e| Err(format!("internal error: {e}"))),
        _ = sleep => return Err(Failure::TimedOut(stage.timeout.unwrap_or_default())),
        _ = cancel.cancelled() => return Err(Failure::Cancelled),
    };
    match outcome {
        Ok(summary) => {
            log.line(&summary);
            Ok(())
        }
        Err(reason) => {
            log.line(&format!("error: {reason}"));
            Err(Failure::Failed(reason))
        }
    }
}

/// SIGTERM to the whole group, a grace period, then SIGKILL to whatever is left.
async fn kill_group(pgid: Pid, child: &mut tokio::process::Child) {
    let _ = killpg(pgid, Signal::SIGTERM);
    let _ = tokio::time::timeout(KILL_GRACE, child.wait()).await;
    let _ = killpg(pgid, Signal::SIGKILL);
    let _ = child.wait().await;
}

async fn drain(mut readers: JoinSet<()>) {
    let all = async { while readers.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_GRACE, all).await.is_err() {
        readers.abort_all();
    }
}

/// Copies a stream into the stage log line by line (lossy UTF-8, secrets masked).
async fn pump(
    stream: impl AsyncRead + Unpin,
    log: Arc<Log>,
    reporter: Arc<dyn Reporter>,
    lane: (String, Option<String>),
) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                let text = text.trim_end_matches(['\n', '\r']);
                let masked = log.line(text);
                reporter.report(&Event::Output {
                    lane: Lane {
                        stage: &lane.0,
                        unit: lane.1.as_deref(),
                    },
                    line: &masked,
                });
            }
        }
    }
}

fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(s) => format!("was killed by {s}"),
            Err(_) => format!("was killed by signal {signal}"),
        },
        _ => "failed".to_string(),
    }
}

/// Copies built files into the dist folder, checks that binaries are for their target, and
/// records size and hash.
fn collect_artifacts(unit: &Unit, dist: &Path) -> Result<Vec<Artifact>, String> {
    let mut artifacts = Vec::with_capacity(unit.artifacts.len());
    for planned in &unit.artifacts {
        let dest = dist.join(&planned.path);
        if let Some(source) = &planned.source {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            std::fs::copy(source, &dest).map_err(|e| {
                format!(
                    "expected artifact {} was not produced: {e}",
                    source.display()
                )
            })?;
        }
        if let Some(epoch) = planned.reproducible_time {
            binfmt::normalize_timestamp(&dest, epoch)?;
        }
        if let (ArtifactKind::Binary, Some(target)) = (planned.kind, &planned.target)
            && let Err(mismatch) = binfmt::verify(&dest, target)
        {
            // A binary for the wrong platform must not stay where publishers look.
            let _ = std::fs::remove_file(&dest);
            return Err(mismatch);
        }
        let (size, sha256) = hash_file(&dest)
            .map_err(|e| format!("cannot read artifact {}: {e}", dest.display()))?;
        artifacts.push(Artifact {
            name: planned.name.clone(),
            path: planned.path.clone(),
            kind: planned.kind,
            target: planned.target.as_ref().map(|t| t.name.clone()),
            os: planned.target.as_ref().map(|t| t.os.clone()),
            arch: planned.target.as_ref().map(|t| t.arch.clone()),
            size,
            sha256,
        });
    }
    Ok(artifacts)
}

/// A stage's log file plus the last lines, for failure reports. Every line is masked first.
struct Log {
    file: Mutex<std::io::BufWriter<std::fs::File>>,
    tail: Mutex<VecDeque<String>>,
    masker: Arc<Masker>,
}

impl Log {
    /// Opens the log at `path`: emptied, or kept and appended to (`append`).
    fn open(path: &Path, masker: Arc<Masker>, append: bool) -> std::io::Result<Log> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(path)?;
        Ok(Log {
            file: Mutex::new(std::io::BufWriter::new(file)),
            tail: Mutex::new(VecDeque::with_capacity(TAIL_LINES)),
            masker,
        })
    }

    /// Empties the log: a new build's log replaces the old one.
    fn restart(&self) {
        if let Ok(mut file) = self.file.lock() {
            let _ = file.flush();
            let _ = file.get_ref().set_len(0);
        }
    }

    /// Appends a line; returns it masked.
    fn line(&self, text: &str) -> String {
        let masked = self.masker.mask(text).into_owned();
        if let Ok(mut file) = self.file.lock() {
            let _ = writeln!(file, "{masked}");
            let _ = file.flush();
        }
        if !masked.starts_with("# shipit:")
            && let Ok(mut tail) = self.tail.lock()
        {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(masked.clone());
        }
        masked
    }

    fn tail(&self) -> Vec<String> {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }
}

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
