//! Running one attempt of a unit: a command in its own process group (killed whole on a
//! timeout or cancellation, output pumped into the log), or a task shipit does itself.

use super::log::Log;
use super::*;

/// Delay before attempt `attempt + 1`: `base`, doubled per earlier retry, capped.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(MAX_BACKOFF)
}

#[derive(Debug, Clone)]
pub(super) enum Failure {
    Failed(String),
    TimedOut(Duration),
    Cancelled,
}

impl Failure {
    pub(super) fn describe(&self) -> String {
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
pub(super) async fn run_attempt(
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
            StepCommand::Shell(shell) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(&shell.script);
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
        command.envs(&stage.env).envs(&unit.env);
        // Template values last, so no stage variable can stand in for one.
        if let StepCommand::Shell(shell) = &step.command {
            command.envs(shell.env());
        }
        let status = supervise(command, stage, step, deadline, cancel, |child, readers| {
            for stream in [
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn AsyncRead + Unpin + Send>),
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn AsyncRead + Unpin + Send>),
            ]
            .into_iter()
            .flatten()
            {
                readers.spawn(pump(
                    stream,
                    vec![log.clone()],
                    context.reporter.clone(),
                    lane.owned(),
                ));
            }
        })
        .await?;
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

/// Starts `command` (its environment already set) in the stage's folder, in a process group of its own,
/// lets `read` take its output streams, and waits for it within `deadline`: on a timeout or
/// cancellation the whole group is stopped. Output readers are drained either way.
pub(super) async fn supervise(
    mut command: Command,
    stage: &PlannedStage,
    step: &crate::plan::Step,
    deadline: Option<tokio::time::Instant>,
    cancel: &CancellationToken,
    read: impl FnOnce(&mut tokio::process::Child, &mut JoinSet<()>),
) -> Result<std::io::Result<ExitStatus>, Failure> {
    command
        .current_dir(&stage.dir)
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
    read(&mut child, &mut readers);
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
    if outcome.is_err()
        && let Some(pgid) = pgid
    {
        kill_group(pgid, &mut child).await;
    }
    drain(readers).await;
    outcome
}

/// Runs a built-in task on a blocking thread, within the stage's deadline.
pub(super) async fn run_task(
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
        tokio::task::spawn_blocking(move || task.run(&tasks).map_err(|e| crate::error::chain(&e)))
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
pub(super) async fn kill_group(pgid: Pid, child: &mut tokio::process::Child) {
    let _ = killpg(pgid, Signal::SIGTERM);
    let _ = tokio::time::timeout(KILL_GRACE, child.wait()).await;
    let _ = killpg(pgid, Signal::SIGKILL);
    let _ = child.wait().await;
}

pub(super) async fn drain(mut readers: JoinSet<()>) {
    let all = async { while readers.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_GRACE, all).await.is_err() {
        readers.abort_all();
    }
}

/// Calls `each` with every line of `stream` (with its line break), until it ends.
pub(super) async fn each_line(stream: impl AsyncRead + Unpin, mut each: impl FnMut(&[u8])) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => each(&buf),
        }
    }
}

/// Copies a stream into the unit logs line by line (lossy UTF-8, secrets masked).
pub(super) async fn pump(
    stream: impl AsyncRead + Unpin,
    logs: Vec<Arc<Log>>,
    reporter: Arc<dyn Reporter>,
    lane: (String, Option<String>),
) {
    each_line(stream, |line| {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\n', '\r']);
        let mut masked = String::new();
        for log in &logs {
            masked = log.line(text);
        }
        reporter.report(&Event::Output {
            lane: Lane {
                stage: &lane.0,
                unit: lane.1.as_deref(),
            },
            line: &masked,
        });
    })
    .await;
}

pub(super) fn describe_status(status: ExitStatus) -> String {
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
