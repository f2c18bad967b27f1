//! The plan: every stage in order, with its rendered commands and the artifacts it will
//! produce, decided before anything runs. A plain value: printed by `shipit plan`, run by the
//! executor, compared in tests.

mod artifact;
mod coverage;
pub mod kinds;
mod restrict;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Serialize;

use crate::config::validate::template_problem;
use crate::config::{ConfigError, Loaded, Problem, Seg, StageConfig};
use crate::facts::Facts;
use crate::tasks::Task;
use crate::toolchain::{self, Announce, Provision, Requirement, ToolError};
use crate::{dag, path, template};
use kinds::StageRef;

pub use artifact::PlannedArtifact;
pub use restrict::{UnknownTarget, split, targets, without_keys};

/// Default delay before the first retry.
const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);

/// Everything a run will do.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Project name.
    pub project: String,
    /// Version being built.
    pub version: String,
    /// Release tag.
    pub tag: String,
    /// Commit being built.
    pub commit: String,
    /// Source date, RFC 3339: `SOURCE_DATE_EPOCH`, else the commit's time (never the wall clock).
    pub date: String,
    /// Where artifacts, logs and the manifest go.
    pub dist: PathBuf,
    /// Stages in the order they may start: each after everything it needs.
    pub stages: Vec<PlannedStage>,
}

/// One stage, ready to run.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedStage {
    /// Stage name.
    pub name: String,
    /// What it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `run`, or the built-in kind.
    pub kind: String,
    /// Stages that must succeed first.
    pub needs: Vec<String>,
    /// Why it will be skipped, when its `when` conditions do not hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip: Option<String>,
    /// Working folder.
    pub dir: PathBuf,
    /// Extra environment for its commands.
    pub env: BTreeMap<String, String>,
    /// Longest time one attempt may take.
    #[serde(with = "millis_opt")]
    pub timeout: Option<Duration>,
    /// Retries after a failed attempt.
    pub retries: u32,
    /// Delay before the first retry; doubled each time.
    #[serde(with = "millis")]
    pub backoff: Duration,
    /// Tools it needs before it can run (zig, Rust standard libraries); see [`crate::toolchain`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Requirement>,
    /// Its work: one unit for a `run` stage, one per target for `cargo`. Units run in parallel.
    pub units: Vec<Unit>,
}

/// An independent piece of a stage's work, with its own commands, log, artifacts and cache.
#[derive(Debug, Clone, Serialize)]
pub struct Unit {
    /// What it is for, e.g. the target; `None` for a stage's only unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Environment on top of the stage's.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Commands in order.
    pub steps: Vec<Step>,
    /// Files it produces.
    pub artifacts: Vec<PlannedArtifact>,
    /// When set, the unit is skipped while its inputs are unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheKey>,
    /// When set, the unit's one step is a cargo build that runs together with the other units
    /// of its stage in the same group: one invocation with each of their `--target`s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<Batch>,
}

/// How a cargo unit joins one invocation with others: the units of a stage with the same
/// `group` have the same command but for `--target`, so one cargo builds them all, sharing one
/// job queue and the host's build scripts and proc-macros.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Batch {
    /// The invocation it joins, within its stage.
    pub group: String,
    /// Why its group is not the stage's main one (shown by `shipit plan`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apart: Option<String>,
    /// This unit's `--target` value.
    pub target: String,
    /// The folder the invocation works in (cargo's target folder, which cargo locks): no two
    /// invocations that share it run at once, so none waits on cargo's lock.
    pub lock: PathBuf,
    /// For a universal macOS binary whose slices other members build: cargo does not build it,
    /// each file is assembled from its slices once they are built.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assemble: Vec<Assembly>,
}

/// A universal binary and the single-architecture builds it is made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assembly {
    /// Where the universal binary goes.
    pub output: PathBuf,
    /// The slices, built by other members of the batch.
    pub slices: Vec<PathBuf>,
}

/// What decides a unit's output, so an unchanged unit need not run again.
#[derive(Debug, Clone, Serialize)]
pub struct CacheKey {
    /// Everything but the source files: command, flags, toolchain versions, target.
    pub identity: Vec<String>,
    /// Folders whose files are inputs (walked honouring `.gitignore`).
    pub inputs: Vec<PathBuf>,
    /// Folders inside `inputs` that are outputs, not inputs.
    pub exclude: Vec<PathBuf>,
    /// Where the fingerprint of the last good run is kept.
    pub stamp: PathBuf,
}

impl Unit {
    /// A unit whose one step is shipit's own `task`, writing `artifacts`.
    pub fn task(label: Option<String>, task: Task, artifacts: Vec<PlannedArtifact>) -> Unit {
        Unit {
            label,
            artifacts,
            ..Unit::single(vec![Step::task(task)])
        }
    }

    /// A stage's only unit.
    pub fn single(steps: Vec<Step>) -> Unit {
        Unit {
            label: None,
            env: BTreeMap::new(),
            steps,
            artifacts: Vec::new(),
            cache: None,
            batch: None,
        }
    }
}

impl Plan {
    /// Makes every tool the runnable stages need present ([`toolchain::provide`]), then binds
    /// the stages to what was found: `PATH` for stages that need zig, tool versions in their
    /// cache keys.
    pub fn prepare_tools(
        &mut self,
        mode: Provision,
        announce: &dyn Announce,
    ) -> Result<(), ToolError> {
        let needed: std::collections::BTreeSet<Requirement> = self
            .stages
            .iter()
            .filter(|s| s.skip.is_none())
            .flat_map(|s| s.requires.iter().cloned())
            .collect();
        let Some(zigbuild) = toolchain::provide(&needed, mode, announce)? else {
            return Ok(());
        };
        let path = toolchain::search_path(zigbuild.path_prefix.as_deref());
        for stage in &mut self.stages {
            if !stage.requires.contains(&Requirement::Zigbuild) {
                continue;
            }
            if let (Some(_), Some(path)) = (&zigbuild.path_prefix, &path) {
                stage
                    .env
                    .insert("PATH".into(), path.to_string_lossy().into_owned());
            }
            for unit in &mut stage.units {
                if let Some(cache) = &mut unit.cache {
                    cache.identity.push(zigbuild.fingerprint());
                }
            }
        }
        Ok(())
    }
}

impl PlannedStage {
    /// Every artifact of every unit.
    pub fn artifacts(&self) -> impl Iterator<Item = &PlannedArtifact> {
        self.units.iter().flat_map(|u| u.artifacts.iter())
    }
}

/// One command of a unit.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// What to run.
    #[serde(flatten)]
    pub command: StepCommand,
}

/// How a step's command is run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepCommand {
    /// A script for `sh -c`, with the template values it refers to.
    Shell(template::ShellCommand),
    /// A program and its arguments, without a shell.
    Exec(Vec<String>),
    /// Work shipit does itself (archive, checksum, sign).
    Task(Task),
}

impl Step {
    /// A shell command.
    pub fn shell(script: impl Into<template::ShellCommand>) -> Step {
        Step {
            command: StepCommand::Shell(script.into()),
        }
    }

    /// Built-in work.
    pub fn task(task: Task) -> Step {
        Step {
            command: StepCommand::Task(task),
        }
    }

    /// A program with arguments.
    pub fn exec(argv: Vec<String>) -> Step {
        Step {
            command: StepCommand::Exec(argv),
        }
    }
}

impl fmt::Display for StepCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepCommand::Shell(command) => f.write_str(&command.script),
            StepCommand::Exec(argv) => f.write_str(&shell_words::join(argv)),
            StepCommand::Task(task) => write!(f, "{task}"),
        }
    }
}

/// The dist folder: `project.dist` relative to the pipeline file, else `dist` beside Cargo.toml.
pub fn dist_dir(loaded: &Loaded, facts: &Facts) -> PathBuf {
    match &loaded.file.project.dist {
        Some(dist) => loaded.resolve(dist),
        None => facts.cargo.root.join("dist"),
    }
}

/// Builds the plan for a validated pipeline file and this run's facts.
pub fn build(loaded: &Loaded, facts: &Facts) -> Result<Plan, ConfigError> {
    build_for(loaded, facts, None)
}

/// The plan with the cargo stages building only `targets` (when given), and every later
/// stage planned for what those build: `build --keep-going` packages, checksums and signs the
/// targets that built after others failed.
pub fn build_for(
    loaded: &Loaded,
    facts: &Facts,
    targets: Option<&[String]>,
) -> Result<Plan, ConfigError> {
    let file = &loaded.file;
    let mut problems = Vec::new();
    let vars = facts.template_vars();
    let dist = dist_dir(loaded, facts);

    let mut global_env = BTreeMap::new();
    for (name, value) in &file.env {
        if let Some(v) = render(
            loaded,
            path!["env", name.as_str()],
            value,
            &vars,
            &mut problems,
        ) {
            global_env.insert(name.clone(), v);
        }
    }

    let graph: IndexMap<&str, Vec<&str>> = file
        .stages
        .iter()
        .map(|(name, stage)| {
            (
                name.as_str(),
                stage.needs.0.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let order = dag::order(&graph).map_err(|cycle| {
        loaded.error(vec![Problem::new(
            format!("dependency cycle: {}", cycle.join(" -> ")),
            None,
        )])
    })?;

    let planner = Planner {
        loaded,
        facts,
        vars,
        global_env,
        dist: dist.clone(),
        targets,
    };
    let mut planned: Vec<PlannedStage> = Vec::with_capacity(order.len());
    for name in order {
        let stage = &file.stages[name];
        match plan_stage(&planner, name, stage, &planned) {
            Ok(stage) => planned.push(stage),
            Err(mut p) => problems.append(&mut p),
        }
    }
    problems.extend(collisions(loaded, &planned));
    problems.extend(coverage::uncovered(loaded, &planned));
    if !problems.is_empty() {
        return Err(loaded.error(problems));
    }
    Ok(Plan {
        project: facts.project.clone(),
        version: facts.version.clone(),
        tag: facts.tag.clone(),
        commit: facts.commit.clone(),
        // The source date (SOURCE_DATE_EPOCH, else the commit's time), not the wall clock: the
        // manifest of an unchanged tree is the same file on every run.
        date: humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(facts.source_date_epoch),
        )
        .to_string(),
        dist,
        stages: planned,
    })
}

/// What every stage is planned with.
struct Planner<'a> {
    loaded: &'a Loaded,
    facts: &'a Facts,
    vars: minijinja::Value,
    global_env: BTreeMap<String, String>,
    dist: PathBuf,
    /// Only these targets (`build_for`).
    targets: Option<&'a [String]>,
}

fn plan_stage(
    planner: &Planner<'_>,
    name: &str,
    stage: &StageConfig,
    planned: &[PlannedStage],
) -> Result<PlannedStage, Vec<Problem>> {
    let Planner {
        loaded,
        facts,
        vars,
        global_env,
        dist,
        targets,
    } = planner;
    let (loaded, facts, vars, dist) = (*loaded, *facts, vars, dist.as_path());
    let mut problems = Vec::new();
    let mut env = global_env.clone();
    for (var, value) in &stage.env {
        if let Some(v) = render(
            loaded,
            path!["stages", name, "env", var.as_str()],
            value,
            vars,
            &mut problems,
        ) {
            env.insert(var.clone(), v);
        }
    }
    let dir = match &stage.dir {
        Some(dir) => render(
            loaded,
            path!["stages", name, "dir"],
            dir,
            vars,
            &mut problems,
        )
        .map(|d| loaded.resolve(&d))
        .unwrap_or_default(),
        None => facts.cargo.root.clone(),
    };

    let (kind, units, requires) = match (&stage.run, &stage.uses) {
        (Some(run), _) => {
            let steps = run
                .0
                .iter()
                .enumerate()
                .filter_map(|(i, cmd)| {
                    render_with(
                        template::render_shell,
                        loaded,
                        path!["stages", name, "run", i],
                        cmd,
                        vars,
                        &mut problems,
                    )
                })
                .map(Step::shell)
                .collect();
            ("run".to_string(), vec![Unit::single(steps)], Vec::new())
        }
        (None, Some(uses)) => {
            let builtin = kinds::find(uses)
                .ok_or_else(|| vec![Problem::new(format!("unknown stage kind `{uses}`"), None)])?;
            let stage_ref = StageRef {
                name,
                config: stage,
                loaded,
            };
            let context = kinds::Context {
                facts,
                dist,
                planned,
                only_targets: *targets,
            };
            match builtin.expand(&stage_ref, &context) {
                Ok(expansion) => (uses.clone(), expansion.units, expansion.requires),
                Err(mut p) => {
                    problems.append(&mut p);
                    (uses.clone(), Vec::new(), Vec::new())
                }
            }
        }
        (None, None) => (String::new(), vec![Unit::single(Vec::new())], Vec::new()),
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(PlannedStage {
        name: name.to_string(),
        description: stage.description.clone(),
        kind,
        needs: stage.needs.0.clone(),
        skip: stage.when.as_ref().and_then(|w| skip_reason(w, facts)),
        dir,
        env,
        timeout: stage.timeout.map(crate::config::Duration::get),
        retries: stage.retries,
        backoff: stage
            .backoff
            .map_or(DEFAULT_BACKOFF, crate::config::Duration::get),
        requires,
        units,
    })
}

/// Two artifacts at one path would overwrite each other, and an artifact path that is not a
/// safe relative path would leave dist: both refused before anything is written.
fn collisions(loaded: &Loaded, planned: &[PlannedStage]) -> Vec<Problem> {
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    let mut problems = Vec::new();
    for stage in planned {
        for artifact in stage.artifacts() {
            if let Err(e) = crate::relpath::RelPath::new(&artifact.path) {
                problems.push(
                    Problem::new(
                        format!("stage `{}` would write outside dist: {e}", stage.name),
                        loaded.key_span(path!["stages", stage.name.as_str()]),
                    )
                    .label("escapes dist")
                    .help("artifact names are relative paths inside dist, without `..`"),
                );
                continue;
            }
            if let Some(why) = reserved(&artifact.path) {
                problems.push(
                    Problem::new(
                        format!(
                            "stage `{}` would write `{}`, {why}",
                            stage.name, artifact.path
                        ),
                        loaded.key_span(path!["stages", stage.name.as_str()]),
                    )
                    .label("reserved name")
                    .help("give the artifact another `name` template or output folder"),
                );
                continue;
            }
            match owners.get(artifact.path.as_str()) {
                Some(first) => problems.push(
                    Problem::new(
                        format!(
                            "stage `{}` would write `{}`, which stage `{first}` also writes",
                            stage.name, artifact.path
                        ),
                        loaded.key_span(path!["stages", stage.name.as_str()]),
                    )
                    .label("artifact name collides")
                    .help("give one of them another `name` template or output folder"),
                ),
                None => {
                    owners.insert(&artifact.path, &stage.name);
                }
            }
        }
    }
    problems
}

/// Why `path` inside dist belongs to shipit itself, if it does: the manifest, and the logs.
fn reserved(path: &str) -> Option<&'static str> {
    if path == crate::manifest::FILE_NAME {
        Some("where shipit writes the manifest of the build")
    } else if path.split('/').next() == Some("logs") {
        Some("inside `logs/`, where shipit writes each stage's log")
    } else {
        None
    }
}

/// Renders a template from the file; a located problem when rendering fails.
fn render(
    loaded: &Loaded,
    at: &[Seg<'_>],
    text: &str,
    vars: &minijinja::Value,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    render_with(template::render, loaded, at, text, vars, problems)
}

/// [`render`] with a chosen renderer ([`template::render_shell`] for command lines).
fn render_with<T>(
    renderer: fn(&str, &minijinja::Value) -> Result<T, template::TemplateError>,
    loaded: &Loaded,
    at: &[Seg<'_>],
    text: &str,
    vars: &minijinja::Value,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    match renderer(text, vars) {
        Ok(out) => Some(out),
        Err(e) => {
            problems.push(template_problem(loaded, at, text, e));
            None
        }
    }
}

/// Why a stage's `when` conditions do not hold, or `None` when they all do.
pub fn skip_reason(when: &crate::config::WhenConfig, facts: &Facts) -> Option<String> {
    let matches = |patterns: &crate::config::StringList, value: &str| {
        patterns
            .0
            .iter()
            .any(|p| globset::Glob::new(p).is_ok_and(|g| g.compile_matcher().is_match(value)))
    };
    if let Some(branches) = &when.branch {
        match &facts.branch {
            Some(branch) if matches(branches, branch) => {}
            Some(branch) => return Some(format!("branch `{branch}` does not match `when.branch`")),
            None => return Some("not on a branch".to_string()),
        }
    }
    if let Some(tags) = &when.tag {
        if !facts.tag_build {
            return Some("not a tag build".to_string());
        }
        if !matches(tags, &facts.tag) {
            return Some(format!("tag `{}` does not match `when.tag`", facts.tag));
        }
    }
    if let Some(vars) = &when.env
        && let Some(missing) = vars
            .0
            .iter()
            .find(|v| facts.env.get(*v).is_none_or(|x| x.is_empty()))
    {
        return Some(format!("`{missing}` is not set"));
    }
    match when.nightly {
        Some(true) if !facts.nightly => Some("not a nightly build".to_string()),
        Some(false) if facts.nightly => Some("a nightly build".to_string()),
        _ => None,
    }
}

mod display;

pub use display::batch_summary;

mod millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

mod millis_opt {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }
}
