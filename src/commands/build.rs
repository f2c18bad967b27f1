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
use crate::tasks::TaskContext;
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
        plan::split(&mut plan, &args.targets).map_err(|e| Error::Usage(e.to_string()))?;
    }
    let reporter = ui::reporter(session.ui, session.printer.clone());
    if args.without_keys {
        let skipped = plan::without_keys(&mut plan);
        reporter.report(&Event::Message {
            level: Level::Info,
            text: &format!(
                "--without-keys: packages unsigned{}",
                match skipped.is_empty() {
                    true => String::new(),
                    false => format!(", skipping {}", skipped.join(", ")),
                }
            ),
        });
    }
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
        let builds: Vec<&str> = plan
            .stages
            .iter()
            .filter(|s| s.kind == "cargo")
            .map(|s| s.name.as_str())
            .collect();
        let Some((built, failed)) = report.target_outcomes(&builds) else {
            return Err(Error::StagesFailed);
        };
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

/// Loads every signing key the plan will use (see [`executor::signing_keys`]); a missing key
/// or a wrong password is a usage error (exit 2).
pub(super) fn signing_keys(plan: &plan::Plan, tasks: &mut TaskContext) -> Result<(), Error> {
    executor::signing_keys(plan, tasks).map_err(|e| Error::Usage(e.to_string()))
}
