//! Cargo builds of several targets in one invocation. The units of a stage that share a
//! [`crate::plan::Batch`] group each check their own cache, then meet here: the ones that must
//! build join, and one `cargo ... --target a --target b` builds them all, sharing one job queue
//! and the host's build scripts and proc-macros. cargo's JSON messages say which files it made,
//! so when the invocation fails, each unit learns whether its own binaries came out anyway;
//! its log holds the whole build's output. Invocations sharing a target folder never overlap (cargo would only wait for its
//! lock), and `--keep-going` lets the targets that compile finish when another does not.

use std::collections::{BTreeSet, HashMap};

use tokio::sync::oneshot;

use super::log::Log;
use super::process::{Failure, describe_status, drain, kill_group, pump};
use super::*;

/// Where a group's units meet.
pub(super) struct Rendezvous {
    stage: Arc<PlannedStage>,
    context: Arc<RunContext>,
    cancel: CancellationToken,
    state: Mutex<Meeting>,
}

#[derive(Default)]
struct Meeting {
    expected: usize,
    reported: usize,
    joined: Vec<Joined>,
}

/// A unit that must build, waiting for the group's invocation.
struct Joined {
    index: usize,
    log: Arc<Log>,
    reply: oneshot::Sender<Result<(), Failure>>,
}

/// One unit's place in a group: it either joins, or declines when dropped (cached, cancelled).
pub(super) struct Member {
    rendezvous: Arc<Rendezvous>,
    reported: bool,
}

impl Rendezvous {
    /// A meeting of `members` units of `stage`.
    pub(super) fn new(
        stage: Arc<PlannedStage>,
        context: Arc<RunContext>,
        cancel: CancellationToken,
        members: usize,
    ) -> Arc<Rendezvous> {
        Arc::new(Rendezvous {
            stage,
            context,
            cancel,
            state: Mutex::new(Meeting {
                expected: members,
                ..Meeting::default()
            }),
        })
    }

    /// A place for one member.
    pub(super) fn member(self: &Arc<Self>) -> Member {
        Member {
            rendezvous: self.clone(),
            reported: false,
        }
    }

    /// Counts one member in; when it is the last, returns everyone who joined (the build to
    /// run now).
    fn report(&self, joined: Option<Joined>) -> Option<Vec<Joined>> {
        let mut meeting = self.state.lock().unwrap_or_else(|e| e.into_inner());
        meeting.reported += 1;
        meeting.joined.extend(joined);
        (meeting.reported == meeting.expected && !meeting.joined.is_empty())
            .then(|| std::mem::take(&mut meeting.joined))
    }

    /// Builds every joined unit's target in one invocation and tells each how it went.
    async fn run(self: Arc<Self>, members: Vec<Joined>) {
        let results = self.build(&members).await;
        for (member, result) in members.into_iter().zip(results) {
            let _ = member.reply.send(result);
        }
    }

    async fn build(&self, members: &[Joined]) -> Vec<Result<(), Failure>> {
        let (stage, context) = (&self.stage, &self.context);
        let all = |failure: Failure| members.iter().map(|_| Err(failure.clone())).collect();
        let units: Vec<&Unit> = members.iter().map(|m| &stage.units[m.index]).collect();
        let Some(argv) = merged_argv(&units) else {
            return all(Failure::Failed(
                "internal error: a batched unit is not one cargo command".into(),
            ));
        };
        let lock = units[0].batch.as_ref().map(|b| b.lock.clone());
        let deadline = stage.timeout.map(|t| tokio::time::Instant::now() + t);
        let _held = match &lock {
            Some(folder) => tokio::select! {
                held = context.folder_lock(folder).lock_owned() => Some(held),
                _ = self.cancel.cancelled() => return all(Failure::Cancelled),
            },
            None => None,
        };
        let step = crate::plan::Step::exec(argv.clone());
        let logs: Vec<Arc<Log>> = members.iter().map(|m| m.log.clone()).collect();
        for (member, unit) in members.iter().zip(&units) {
            let lane = Lane::of(stage, unit);
            context
                .reporter
                .report(&Event::StepStarted { lane, step: &step });
            member.log.line(&format!("$ {}", step.command));
        }
        let (program, args) = argv.split_first().expect("a cargo command");
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(&stage.dir)
            .envs(&stage.env)
            .envs(&units[0].env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                return all(Failure::Failed(format!(
                    "cannot start `{}` in {}: {e}",
                    step.command,
                    stage.dir.display()
                )));
            }
        };
        let pgid = child.id().map(|id| Pid::from_raw(id as i32));
        let lane = Lane::of(stage, units[0]).owned();
        let produced = Arc::new(Mutex::new(BTreeSet::new()));
        let mut readers = JoinSet::new();
        if let Some(out) = child.stdout.take() {
            readers.spawn(read_messages(out, logs.clone(), produced.clone()));
        }
        if let Some(err) = child.stderr.take() {
            readers.spawn(pump(err, logs.clone(), context.reporter.clone(), lane));
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
            _ = self.cancel.cancelled() => Err(Failure::Cancelled),
        };
        let status = match outcome {
            Ok(status) => status,
            Err(failure) => {
                if let Some(pgid) = pgid {
                    kill_group(pgid, &mut child).await;
                }
                drain(readers).await;
                return all(failure);
            }
        };
        drain(readers).await;
        let how = match status {
            // cargo built every target (a universal macOS binary is assembled after cargo's
            // messages, under a name none of them gives).
            Ok(status) if status.success() => return members.iter().map(|_| Ok(())).collect(),
            Ok(status) => describe_status(status),
            Err(e) => format!("could not be waited for: {e}"),
        };
        let produced = produced.lock().unwrap_or_else(|e| e.into_inner());
        units
            .iter()
            .map(|unit| {
                let missing: Vec<String> = unit
                    .artifacts
                    .iter()
                    .filter_map(|a| a.source.as_ref())
                    .filter(|source| !produced.contains(*source))
                    .map(|source| source.display().to_string())
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    let target = unit.label.as_deref().unwrap_or("its target");
                    Err(Failure::Failed(format!(
                        "cargo made no {} for {target} (`{}` {how})",
                        missing.join(", "),
                        step.command
                    )))
                }
            })
            .collect()
    }
}

impl Member {
    /// Waits for the group's invocation to build this unit (`index` of the stage).
    pub(super) async fn join(mut self, index: usize, log: Arc<Log>) -> Result<(), Failure> {
        self.reported = true;
        let (reply, answer) = oneshot::channel();
        let joined = Joined { index, log, reply };
        if let Some(members) = self.rendezvous.report(Some(joined)) {
            self.rendezvous.clone().run(members).await;
        }
        answer.await.unwrap_or(Err(Failure::Cancelled))
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if !self.reported
            && let Some(members) = self.rendezvous.report(None)
        {
            // The last to report declined: the build starts without it.
            tokio::spawn(self.rendezvous.clone().run(members));
        }
    }
}

/// The first unit's command with every joined unit's `--target`, cargo's JSON messages (so the
/// files each target produced are known) and `--keep-going`.
fn merged_argv(units: &[&Unit]) -> Option<Vec<String>> {
    let first = units.first()?;
    let Some(StepCommand::Exec(argv)) = first.steps.first().map(|s| &s.command) else {
        return None;
    };
    let own = &first.batch.as_ref()?.target;
    let at = argv
        .windows(2)
        .position(|pair| pair[0] == "--target" && pair[1] == *own)?;
    let mut merged: Vec<String> = argv[..at].to_vec();
    for unit in units {
        merged.extend(["--target".to_string(), unit.batch.as_ref()?.target.clone()]);
    }
    merged.extend(argv[at + 2..].iter().cloned());
    merged.extend([
        "--message-format=json-render-diagnostics".to_string(),
        "--keep-going".to_string(),
    ]);
    Some(merged)
}

/// Reads cargo's JSON messages: the files of every `compiler-artifact` go into `produced`;
/// a line that is not a message (a build script's stray output) goes to the logs.
async fn read_messages(
    stream: impl AsyncRead + Unpin,
    logs: Vec<Arc<Log>>,
    produced: Arc<Mutex<BTreeSet<PathBuf>>>,
) {
    #[derive(serde::Deserialize)]
    struct Message {
        reason: String,
        #[serde(default)]
        filenames: Vec<PathBuf>,
        #[serde(default)]
        executable: Option<PathBuf>,
    }
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => match serde_json::from_slice::<Message>(&buf) {
                Ok(message) if message.reason == "compiler-artifact" => {
                    let mut produced = produced.lock().unwrap_or_else(|e| e.into_inner());
                    produced.extend(message.filenames);
                    produced.extend(message.executable);
                }
                Ok(_) => {}
                Err(_) => {
                    let text = String::from_utf8_lossy(&buf);
                    for log in &logs {
                        log.line(text.trim_end_matches(['\n', '\r']));
                    }
                }
            },
        }
    }
}

impl RunContext {
    /// The lock of `folder`: cargo invocations working in it take it one at a time.
    pub(super) fn folder_lock(&self, folder: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.folder_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(folder.to_path_buf()).or_default().clone()
    }
}

/// The units of a stage by batch group, each group's members in plan order.
pub(super) fn groups(stage: &PlannedStage) -> HashMap<String, Vec<usize>> {
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, unit) in stage.units.iter().enumerate() {
        if let Some(batch) = &unit.batch {
            groups.entry(batch.group.clone()).or_default().push(index);
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Batch, Step};

    fn unit(target: &str) -> Unit {
        let mut unit = Unit::single(vec![Step::exec(
            [
                "cargo",
                "zigbuild",
                "--profile",
                "release",
                "--target",
                target,
                "--locked",
            ]
            .map(String::from)
            .to_vec(),
        )]);
        unit.batch = Some(Batch {
            group: "zig".into(),
            apart: None,
            target: target.into(),
            lock: PathBuf::from("/t"),
        });
        unit
    }

    #[test]
    fn one_command_carries_every_target_in_order() {
        let (a, b) = (
            unit("x86_64-unknown-linux-musl"),
            unit("x86_64-pc-windows-gnu"),
        );
        assert_eq!(
            merged_argv(&[&a, &b]).unwrap().join(" "),
            "cargo zigbuild --profile release --target x86_64-unknown-linux-musl \
             --target x86_64-pc-windows-gnu --locked \
             --message-format=json-render-diagnostics --keep-going"
        );
    }
}
