//! Cargo builds of several targets in one invocation. The units of a stage that share a
//! [`crate::plan::Batch`] group each check their own cache, then meet here: the ones that must
//! build join, and one `cargo ... --target a --target b` builds them all, sharing one job queue
//! and the host's build scripts and proc-macros. cargo's JSON messages say which files it made,
//! so when the invocation fails, each unit learns whether its own binaries came out anyway,
//! and the errors of the crates that made nothing for its platform end its log; its log holds
//! the whole build's output. Invocations sharing a target folder never overlap (cargo would only wait for its
//! lock), and `--keep-going` lets the targets that compile finish when another does not.

use std::collections::{BTreeSet, HashMap};

use tokio::sync::oneshot;

use super::log::Log;
use super::process::{Failure, describe_status, each_line, pump, supervise};
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
        if meeting.reported < meeting.expected || meeting.joined.is_empty() {
            return None;
        }
        // In plan order, whatever order they arrived in: the same command every time.
        let mut joined = std::mem::take(&mut meeting.joined);
        joined.sort_by_key(|j| j.index);
        Some(joined)
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
        let lock = units[0].batch.as_ref().map(|b| b.lock.clone());
        let _held = match &lock {
            Some(folder) => tokio::select! {
                held = context.folder_lock(folder).lock_owned() => Some(held),
                _ = self.cancel.cancelled() => return all(Failure::Cancelled),
            },
            None => None,
        };
        let builders: Vec<(&Joined, &Unit)> = members
            .iter()
            .zip(units.iter().copied())
            .filter(|(_, u)| u.batch.as_ref().is_some_and(|b| b.assemble.is_empty()))
            .collect();
        // Nothing to compile when only universal binaries of cached slices are missing.
        let run = if builders.is_empty() {
            None
        } else {
            match self.cargo(&builders).await {
                Ok(run) => Some(run),
                Err(failure) => return all(failure),
            }
        };
        units
            .iter()
            .zip(members)
            .map(|(unit, member)| {
                let assemble = unit.batch.as_ref().map_or(&[][..], |b| &b.assemble[..]);
                if !assemble.is_empty() {
                    return assemble_universal(assemble, run.as_ref(), &member.log);
                }
                // Cargo ran: this unit is one of the builders.
                match run.as_ref() {
                    Some(run) => verdict(unit, member, run),
                    None => Err(Failure::Failed("internal error: cargo did not run".into())),
                }
            })
            .collect()
    }

    /// Runs one cargo for every builder's target; what it produced and how it ended.
    async fn cargo(&self, builders: &[(&Joined, &Unit)]) -> Result<CargoRun, Failure> {
        let (stage, context) = (&self.stage, &self.context);
        let units: Vec<&Unit> = builders.iter().map(|(_, u)| *u).collect();
        let argv = merged_argv(&units)
            .filter(|argv| !argv.is_empty())
            .ok_or_else(|| {
                Failure::Failed("internal error: a batched unit is not one cargo command".into())
            })?;
        let deadline = stage.timeout.map(|t| tokio::time::Instant::now() + t);
        let step = crate::plan::Step::exec(argv.clone());
        let logs: Vec<Arc<Log>> = builders.iter().map(|(m, _)| m.log.clone()).collect();
        for (member, unit) in builders {
            let lane = Lane::of(stage, unit);
            context
                .reporter
                .report(&Event::StepStarted { lane, step: &step });
            member.log.line(&format!("$ {}", step.command));
        }
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .envs(&stage.env)
            // Units of one batch share their settings; what is per target (the C flags `cc`
            // reads for each triple) is named per target, so every unit's is kept.
            .envs(units.iter().flat_map(|u| &u.env));
        let lane = Lane::of(stage, units[0]).owned();
        let heard = Arc::new(Mutex::new(Heard::default()));
        let status = supervise(
            command,
            stage,
            &step,
            deadline,
            &self.cancel,
            |child, readers| {
                if let Some(out) = child.stdout.take() {
                    readers.spawn(read_messages(out, logs.clone(), heard.clone()));
                }
                if let Some(err) = child.stderr.take() {
                    readers.spawn(pump(err, logs.clone(), context.reporter.clone(), lane));
                }
            },
        )
        .await?;
        let heard = std::mem::take(&mut *heard.lock().unwrap_or_else(|e| e.into_inner()));
        Ok(match status {
            Ok(status) => CargoRun {
                // cargo built every target (a universal binary it assembles itself comes
                // after its messages, under a name none of them gives).
                success: status.success(),
                how: format!("`{}` {}", step.command, describe_status(status)),
                heard,
            },
            Err(e) => CargoRun {
                success: false,
                how: format!("`{}` could not be waited for: {e}", step.command),
                heard,
            },
        })
    }
}

/// Whether cargo built a builder's target: every binary named in its messages (or cargo
/// succeeded for all); if not, its own compiler errors end its log.
fn verdict(unit: &Unit, member: &Joined, run: &CargoRun) -> Result<(), Failure> {
    if run.success {
        return Ok(());
    }
    let missing: Vec<&PathBuf> = unit
        .artifacts
        .iter()
        .filter_map(|a| a.source.as_ref())
        .filter(|source| !run.heard.produced.contains(*source))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let target = unit.label.as_deref().unwrap_or("its target");
    // Its own errors last in its log, where the failure report quotes it from.
    let platform = missing[0].parent().and_then(Path::parent);
    let errors = platform
        .map(|p| run.heard.errors_for(p))
        .unwrap_or_default();
    if !errors.is_empty() {
        member
            .log
            .line(&format!("# shipit: the compiler's errors for {target}:"));
        for line in errors.iter().flat_map(|e| e.trim_end().lines()) {
            member.log.line(line);
        }
    }
    let missing: Vec<String> = missing.iter().map(|m| m.display().to_string()).collect();
    Err(Failure::Failed(format!(
        "cargo made no {} for {target} ({})",
        missing.join(", "),
        run.how
    )))
}

/// How one cargo invocation ended.
struct CargoRun {
    success: bool,
    how: String,
    heard: Heard,
}

/// Writes each universal binary from its slices (as `lipo -create`), once they are built: by
/// this invocation, or earlier when their cache held.
fn assemble_universal(
    assemble: &[crate::plan::Assembly],
    run: Option<&CargoRun>,
    log: &Log,
) -> Result<(), Failure> {
    for universal in assemble {
        let built = |slice: &PathBuf| match run {
            Some(run) if !run.success => run.heard.produced.contains(slice),
            _ => slice.is_file(),
        };
        if let Some(slice) = universal.slices.iter().find(|s| !built(s)) {
            let how = run.map_or(String::new(), |r| format!(" ({})", r.how));
            return Err(Failure::Failed(format!(
                "the slice {} of {} was not built{how}",
                slice.display(),
                universal.output.display()
            )));
        }
        let fail =
            |what: String| Failure::Failed(format!("{}: {what}", universal.output.display()));
        let slices: Vec<Vec<u8>> = universal
            .slices
            .iter()
            .map(|s| {
                std::fs::read(s).map_err(|e| fail(format!("cannot read {}: {e}", s.display())))
            })
            .collect::<Result<_, _>>()?;
        let views: Vec<&[u8]> = slices.iter().map(Vec::as_slice).collect();
        let fat = crate::lipo::universal(&views).map_err(|e| fail(e.to_string()))?;
        if let Some(parent) = universal.output.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| fail(format!("cannot create {}: {e}", parent.display())))?;
        }
        let partial = universal.output.with_extension("partial");
        std::fs::write(&partial, &fat)
            .and_then(|()| {
                std::fs::set_permissions(
                    &partial,
                    std::os::unix::fs::PermissionsExt::from_mode(0o755),
                )
            })
            .and_then(|()| std::fs::rename(&partial, &universal.output))
            .map_err(|e| fail(format!("cannot write it: {e}")))?;
        log.line(&format!(
            "# shipit: assembled {} from {}",
            universal.output.display(),
            universal
                .slices
                .iter()
                .map(|s| s.display().to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        ));
    }
    Ok(())
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
    // Only the members cargo builds come here (not universal binaries assembled after).
    let at = argv
        .windows(2)
        .position(|pair| pair[0] == "--target" && pair[1] == *own)?;
    let mut merged: Vec<String> = argv[..at].to_vec();
    for unit in units {
        merged.extend(["--target".to_string(), unit.batch.as_ref()?.target.clone()]);
    }
    merged.extend(argv[at + 2..].iter().cloned());
    merged.extend([
        "--message-format=json".to_string(),
        "--keep-going".to_string(),
    ]);
    Some(merged)
}

/// What cargo's messages said during one invocation.
#[derive(Default)]
struct Heard {
    /// Every file it made.
    produced: BTreeSet<PathBuf>,
    /// The files made for each crate (package and crate target), to tell the platforms apart.
    made: HashMap<(String, String), Vec<PathBuf>>,
    /// Each compiler error, rendered, with the crate it came from.
    errors: Vec<((String, String), String)>,
}

/// Reads cargo's JSON messages: the files of every `compiler-artifact`, and every compiler
/// message (rendered into the logs as it comes; errors kept to tell whose they are at the
/// end); a line that is not a message (a build script's stray output) goes to the logs.
async fn read_messages(
    stream: impl AsyncRead + Unpin,
    logs: Vec<Arc<Log>>,
    heard: Arc<Mutex<Heard>>,
) {
    #[derive(serde::Deserialize)]
    struct Message {
        reason: String,
        #[serde(default)]
        package_id: String,
        #[serde(default)]
        target: Option<CrateTarget>,
        #[serde(default)]
        filenames: Vec<PathBuf>,
        #[serde(default)]
        executable: Option<PathBuf>,
        #[serde(default)]
        message: Option<Diagnostic>,
    }
    #[derive(serde::Deserialize)]
    struct CrateTarget {
        name: String,
    }
    #[derive(serde::Deserialize)]
    struct Diagnostic {
        #[serde(default)]
        rendered: Option<String>,
        #[serde(default)]
        level: String,
    }
    let to_logs = |text: &str| {
        for line in text.trim_end_matches(['\n', '\r']).lines() {
            for log in &logs {
                log.line(line);
            }
        }
    };
    each_line(stream, |line| {
        match serde_json::from_slice::<Message>(line) {
            Ok(message) => {
                let key = (
                    message.package_id,
                    message.target.map(|t| t.name).unwrap_or_default(),
                );
                let mut heard = heard.lock().unwrap_or_else(|e| e.into_inner());
                match message.reason.as_str() {
                    "compiler-artifact" => {
                        heard.produced.extend(message.filenames.iter().cloned());
                        heard.produced.extend(message.executable);
                        heard.made.entry(key).or_default().extend(message.filenames);
                    }
                    "compiler-message" => {
                        let Some(diagnostic) = message.message else {
                            return;
                        };
                        let Some(rendered) = diagnostic.rendered else {
                            return;
                        };
                        to_logs(&rendered);
                        if diagnostic.level == "error" {
                            heard.errors.push((key, rendered));
                        }
                    }
                    _ => {}
                }
            }
            Err(_) => to_logs(&String::from_utf8_lossy(line)),
        }
    })
    .await;
}

impl Heard {
    /// The compiler errors of crates that made nothing under `platform` (the target's own
    /// folder in the target folder): cargo does not say which platform a message is for, but
    /// a crate that failed for one platform made its files for the others.
    fn errors_for(&self, platform: &Path) -> Vec<&str> {
        self.errors
            .iter()
            .filter(|(key, _)| {
                !self
                    .made
                    .get(key)
                    .is_some_and(|files| files.iter().any(|f| f.starts_with(platform)))
            })
            .map(|(_, rendered)| rendered.as_str())
            .collect()
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
            assemble: Vec::new(),
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
             --message-format=json --keep-going"
        );
    }
}
