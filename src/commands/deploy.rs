//! `shipit deploy`, `shipit deploy status` and `shipit rollback`.

use tokio_util::sync::CancellationToken;

use super::Session;
use crate::cli::{DeployAction, DeployArgs, RollbackArgs};
use crate::config::{self, Loaded};
use crate::deploy::error::DeployError;
use crate::deploy::operate::Command;
use crate::deploy::plan::{self, DeployPlan};
use crate::deploy::run::Deployer;
use crate::deploy::state::{Outcome, State};
use crate::error::Error;
use crate::exit::ExitCode;
use crate::facts::{Facts, FactsOptions};
use crate::manifest::Manifest;
use crate::ui::{self, Event, Level, Reporter};

/// Runs `shipit deploy` (or `deploy status`, `deploy --init`).
pub fn run(session: &Session, args: &DeployArgs) -> Result<ExitCode, Error> {
    let global = &session.cli.global;
    let loaded = config::load(&global.pipeline, super::PIPELINE)?;
    if args.init {
        session.printer.out(&crate::deploy::connect::starter(
            &loaded,
            args.env.as_deref(),
        ));
        return Ok(ExitCode::Success);
    }
    let reporter = ui::reporter(session.ui, session.printer.clone());
    if let Some(DeployAction::Status { env }) = &args.action {
        let plan = plan_for(&loaded, env, None)?;
        let state = with_deployer(&plan, &*reporter, async |d| d.state().await)?;
        show_state(session, &plan, &state);
        return Ok(ExitCode::Success);
    }
    let operator = match &args.action {
        Some(DeployAction::Pause { env }) => Some((env, Command::Pause)),
        Some(DeployAction::Resume { env }) => Some((env, Command::Resume)),
        Some(DeployAction::Promote { env }) => Some((env, Command::Promote)),
        Some(DeployAction::Abort { env }) => Some((env, Command::Abort)),
        _ => None,
    };
    if let Some((env, command)) = operator {
        let plan = plan_for(&loaded, env, None)?;
        let said = with_deployer(&plan, &*reporter, async |d| d.operate(command).await)?;
        say(&*reporter, Level::Info, said);
        return Ok(ExitCode::Success);
    }
    if let Some(DeployAction::History { env, window }) = &args.action {
        let plan = plan_for(&loaded, env, None)?;
        let state = with_deployer(&plan, &*reporter, async |d| d.state().await)?;
        show_history(session, &state, *window);
        return Ok(ExitCode::Success);
    }
    let env = args.env.as_deref().unwrap_or_default();
    let plan = plan_for(&loaded, env, args.version.as_deref())?;
    if global.dry_run {
        describe(&plan, &*reporter);
        return Ok(ExitCode::Success);
    }
    let (outcome, state) = with_deployer(&plan, &*reporter, async |d| d.deploy().await)?;
    finish(session, &plan, outcome, &state, &*reporter)
}

/// Runs `shipit rollback`.
pub fn rollback(session: &Session, args: &RollbackArgs) -> Result<ExitCode, Error> {
    let global = &session.cli.global;
    let loaded = config::load(&global.pipeline, super::PIPELINE)?;
    let reporter = ui::reporter(session.ui, session.printer.clone());
    let plan = plan_for(&loaded, &args.env, None)?;
    if global.dry_run {
        say(
            &*reporter,
            Level::Info,
            format!(
                "would return {} in {} to revision {}, draining every other container",
                plan.app,
                plan.env,
                args.to
                    .map_or("before the one serving".to_string(), |r| r.to_string())
            ),
        );
        return Ok(ExitCode::Success);
    }
    let to = args.to;
    let (outcome, state) = with_deployer(&plan, &*reporter, async |d| d.rollback(to).await)?;
    finish(session, &plan, outcome, &state, &*reporter)
}

fn say(reporter: &dyn Reporter, level: Level, text: String) {
    reporter.report(&Event::Message { level, text: &text });
}

/// The plan for `env`: the version asked for, else the manifest's, else the project's.
fn plan_for(loaded: &Loaded, env: &str, version: Option<&str>) -> Result<DeployPlan, Error> {
    let facts = Facts::gather(loaded, FactsOptions::default())?;
    let dist = crate::plan::dist_dir(loaded, &facts);
    let version = match version {
        Some(v) => v.to_string(),
        None => Manifest::read(&dist)
            .map(|m| m.version)
            .unwrap_or_else(|_| facts.version.clone()),
    };
    plan::plan(
        loaded,
        &facts.project,
        env,
        &version,
        &facts.template_vars(),
        &dist,
    )
}

/// Connects a [`Deployer`] and runs `work` with it; Ctrl-C / SIGTERM cancel it (a rollout in
/// progress is then undone before it returns).
fn with_deployer<T>(
    plan: &DeployPlan,
    reporter: &dyn Reporter,
    work: impl AsyncFnOnce(&Deployer<'_>) -> Result<T, DeployError>,
) -> Result<T, Error> {
    let runtime = super::runtime()?;
    let result = runtime.block_on(async {
        let cancel = CancellationToken::new();
        tokio::spawn(super::cancel_on_signal(cancel.clone()));
        let clock = std::sync::Arc::new(crate::deploy::clock::SystemClock);
        let deployer = Deployer::connect(plan, reporter, cancel, clock).await?;
        work(&deployer).await
    });
    runtime.shutdown_background();
    result.map_err(Error::work)
}

fn finish(
    session: &Session,
    plan: &DeployPlan,
    outcome: Outcome,
    state: &State,
    reporter: &dyn Reporter,
) -> Result<ExitCode, Error> {
    if session.ui.json {
        let value =
            serde_json::json!({ "event": "deploy_finished", "result": outcome, "state": state });
        session.printer.out(&value.to_string());
    }
    let (level, text) = outcome.summary(&plan.app, &plan.env, state);
    say(reporter, level, text);
    Ok(match outcome {
        Outcome::Promoted { .. } => ExitCode::Success,
        Outcome::RolledBack { .. } => ExitCode::RolledBack,
        Outcome::Interrupted { .. } => ExitCode::Interrupted,
        Outcome::Failed { .. } => ExitCode::Failed,
    })
}

/// `--dry-run`: the plan, nothing touched.
fn describe(plan: &DeployPlan, reporter: &dyn Reporter) {
    for line in plan.describe() {
        say(reporter, Level::Info, line);
    }
}

fn show_state(session: &Session, plan: &DeployPlan, state: &State) {
    if session.ui.json {
        session
            .printer
            .out(&serde_json::to_string(state).unwrap_or_default());
        return;
    }
    for line in state.render(&plan.app, &plan.env, &plan.backend) {
        session.printer.out(&line);
    }
}

/// `deploy history`: the records, newest last, and the DORA figures of the window.
fn show_history(session: &Session, state: &State, window: std::time::Duration) {
    let figures =
        crate::deploy::dora::figures(&state.records, window, std::time::SystemTime::now());
    if session.ui.json {
        let value = serde_json::json!({ "records": state.records, "dora": figures });
        session.printer.out(&value.to_string());
        return;
    }
    for line in crate::deploy::dora::render(&state.records, &figures) {
        session.printer.out(&line);
    }
}
