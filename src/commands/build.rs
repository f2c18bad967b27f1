//! `shipit build`: load, plan, execute, write the manifest.

use tokio_util::sync::CancellationToken;

use super::Session;
use crate::cli::BuildArgs;
use crate::error::Error;
use std::sync::Arc;

use crate::executor::{self, ExecOptions, RunReport};
use crate::exit::ExitCode;
use crate::facts::{Facts, FactsOptions};
use crate::manifest::{self, Manifest};
use crate::plan::StepCommand;
use crate::tasks::{Task, TaskContext};
use crate::toolchain::Provision;
use crate::ui::{self, Event, Level, Reporter};
use crate::{config, plan};

/// Runs the pipeline.
pub fn run(session: &Session, args: &BuildArgs) -> Result<ExitCode, Error> {
    let global = &session.cli.global;
    let loaded = config::load(&global.pipeline, super::PIPELINE)?;
    let facts = Facts::gather(&loaded, FactsOptions::from(&args.version))?;
    let mut plan = plan::build(&loaded, &facts)?;
    if args.split {
        plan::restrict_targets(&mut plan, &args.targets)
            .map_err(|e| Error::Usage(e.to_string()))?;
        for stage in &mut plan.stages {
            if matches!(stage.kind.as_str(), "checksum" | "sign") && stage.skip.is_none() {
                stage.skip = Some(
                    "a split build: checksums and signatures are made once, by `shipit release --merge`"
                        .into(),
                );
            }
        }
    }
    let reporter = ui::reporter(session.ui, session.printer.clone());
    let provision = match (global.dry_run, args.no_provision) {
        (true, _) => Provision::DryRun,
        (false, true) => Provision::Forbidden,
        (false, false) => Provision::Allowed,
    };
    let announce = |text: &str| {
        reporter.report(&Event::Message {
            level: Level::Info,
            text,
        })
    };
    plan.prepare_tools(provision, &announce)
        .map_err(|e| Error::Failed(e.to_string()))?;
    let options = ExecOptions {
        jobs: args
            .jobs
            .map(usize::from)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        keep_going: args.keep_going,
        dry_run: global.dry_run,
        no_cache: args.no_cache,
        tasks: TaskContext::default(),
        started: Some(session.started),
    };
    let mut report = run_plan(session, &plan, options.clone(), &reporter)?;
    let mut missing = Vec::new();
    if !report.succeeded() && args.keep_going && !options.dry_run {
        // Some targets failed: the later stages run again for those that built (their
        // builds are cached), so what did build is packaged, checksummed and signed.
        let (built, failed) = target_outcomes(&plan, &report);
        if built.is_empty() || failed.is_empty() || !only_targets_failed(&plan, &report) {
            return Err(Error::StagesFailed);
        }
        reporter.report(&Event::Message {
            level: Level::Warn,
            text: &format!(
                "{} failed; packaging the targets that built ({}) so they can be released",
                failed.join(", "),
                built.join(", ")
            ),
        });
        plan = plan::build_for(&loaded, &facts, Some(&built))?;
        plan.prepare_tools(provision, &announce)
            .map_err(|e| Error::Failed(e.to_string()))?;
        report = run_plan(session, &plan, options.clone(), &reporter)?;
        if !report.succeeded() {
            return Err(Error::StagesFailed);
        }
        missing = failed;
    } else if !report.succeeded() {
        return Err(Error::StagesFailed);
    }
    if options.dry_run {
        return Ok(ExitCode::Success);
    }
    let manifest = Manifest {
        schema: manifest::SCHEMA,
        project: plan.project.clone(),
        version: plan.version.clone(),
        tag: plan.tag.clone(),
        commit: plan.commit.clone(),
        date: plan.date.clone(),
        artifacts: report.artifacts(),
        published: Default::default(),
        split: args.split.then(|| plan::targets(&plan)),
        missing: missing.clone(),
    };
    let path = manifest
        .write(&plan.dist)
        .map_err(|e| Error::Failed(e.to_string()))?;
    reporter.report(&Event::Message {
        level: Level::Info,
        text: &format!(
            "wrote {} ({} artifacts)",
            path.display(),
            manifest.artifacts.len()
        ),
    });
    let manifest_path = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
    super::github_output(&[
        ("version", manifest.version.clone()),
        ("manifest", manifest_path.display().to_string()),
    ])?;
    if !missing.is_empty() {
        // The run still failed: the release it allows lacks these targets.
        reporter.report(&Event::Message {
            level: Level::Warn,
            text: &format!(
                "the manifest lacks {} (failed above); `shipit release` publishes the others",
                missing.join(", ")
            ),
        });
        return Err(Error::StagesFailed);
    }
    Ok(ExitCode::Success)
}

/// The targets of the plan's cargo stages that built, and those that failed.
fn target_outcomes(plan: &plan::Plan, report: &RunReport) -> (Vec<String>, Vec<String>) {
    let (mut built, mut failed) = (Vec::new(), Vec::new());
    for stage in plan.stages.iter().filter(|s| s.kind == "cargo") {
        let Some(done) = report.stages.iter().find(|r| r.stage == stage.name) else {
            continue;
        };
        for unit in &done.units {
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
    (built, failed)
}

/// Whether every failure of the run is a cargo target's (or a stage blocked behind one):
/// only then is building the rest worth it.
fn only_targets_failed(plan: &plan::Plan, report: &RunReport) -> bool {
    report.stages.iter().all(|r| {
        let cargo = plan
            .stages
            .iter()
            .any(|s| s.name == r.stage && s.kind == "cargo");
        !r.outcome.status.is_failure()
            || cargo
            || matches!(r.outcome.status, crate::report::StageStatus::Blocked { .. })
    })
}

/// Runs a plan (signing keys loaded first, Ctrl-C handled) and reports it; an error unless
/// every stage succeeded or was skipped.
pub(super) fn execute(
    session: &Session,
    plan: &plan::Plan,
    options: ExecOptions,
    reporter: &Arc<dyn Reporter>,
) -> Result<RunReport, Error> {
    let report = run_plan(session, plan, options, reporter)?;
    if !report.succeeded() {
        return Err(Error::StagesFailed);
    }
    Ok(report)
}

/// Runs a plan and reports it, failed stages and all; an error only when it could not run or
/// was interrupted.
fn run_plan(
    session: &Session,
    plan: &plan::Plan,
    mut options: ExecOptions,
    reporter: &Arc<dyn Reporter>,
) -> Result<RunReport, Error> {
    // Keys are loaded (and passwords checked) before anything runs, in a dry run too.
    signing_keys(plan, &mut options.tasks)?;
    let runtime = super::runtime()?;
    let masker = session.printer.masker_arc();
    let report = runtime.block_on(async {
        let interrupt = CancellationToken::new();
        tokio::spawn(super::cancel_on_signal(interrupt.clone()));
        reporter.report(&Event::RunStarted {
            project: &plan.project,
            version: &plan.version,
            stages: plan.stages.len(),
            dry_run: options.dry_run,
        });
        executor::execute(plan, &options, reporter.clone(), masker, interrupt).await
    });
    let report = report.map_err(|e| Error::Failed(e.to_string()))?;
    reporter.report(&Event::RunFinished(&report));
    // Killed children are already reaped; do not wait on the signal task.
    runtime.shutdown_background();
    if report.interrupted {
        return Err(Error::Interrupted);
    }
    Ok(report)
}

/// Loads and decrypts every signing key the plan will use, before any work starts: a missing
/// key or a wrong password is a usage error (exit 2), not a failure halfway through.
pub(super) fn signing_keys(plan: &plan::Plan, tasks: &mut TaskContext) -> Result<(), Error> {
    for stage in plan.stages.iter().filter(|s| s.skip.is_none()) {
        let usage =
            |e: crate::tasks::KeyError| Error::Usage(format!("stage `{}`: {e}", stage.name));
        for step in stage.units.iter().flat_map(|u| u.steps.iter()) {
            match &step.command {
                StepCommand::Task(task) if task.minisign_key().is_some() => {
                    if let Some((stage, source)) = task.minisign_key() {
                        tasks
                            .keys
                            .insert(stage.to_owned(), source.load().map_err(usage)?);
                    }
                }
                StepCommand::Task(Task::Package(task)) => {
                    if let (Some(source), Some(signer)) = (&task.key, &task.spec.signed_by)
                        && !tasks.pgp_keys.contains_key(signer)
                    {
                        let key = source.load_pgp().map_err(usage)?;
                        tasks.pgp_keys.insert(signer.clone(), key);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}
