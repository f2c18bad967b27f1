//! The environment's hooks: `pre` commands and the gate before any traffic moves, `post`
//! commands once the new version takes it all. Commands run with `sh -c` as `run` stages do
//! (template values in `SHIPIT_VALUE_n` variables, never in the script), each within the
//! hooks' timeout; the gate is asked every few seconds until it answers 2xx.

use std::process::Command;

use super::*;
use crate::deploy::strategy::HookPoint;
use crate::template::ShellCommand;

/// Time between two asks of the gate.
const GATE_EVERY: Duration = Duration::from_secs(2);

impl Deployer<'_> {
    /// Runs the hooks at `when`: [`Event::Done`], or why one failed.
    pub(super) async fn run_hooks(&self, when: HookPoint, revision: u64) -> Event {
        let hooks = &self.plan.hooks;
        let commands = match when {
            HookPoint::Pre => &hooks.pre,
            HookPoint::Post => &hooks.post,
        };
        for command in commands {
            self.say(format!("hook: $ {}", command.script));
            if let Err(why) = self.run_hook(command, revision).await {
                return Event::HookFailed(format!("`{}`: {why}", command.script));
            }
        }
        if when == HookPoint::Pre
            && let Some(gate) = &hooks.gate
            && let Err(why) = self.await_gate(gate).await
        {
            return Event::HookFailed(why);
        }
        Event::Done
    }

    async fn run_hook(&self, shell: &ShellCommand, revision: u64) -> Result<(), String> {
        let plan = self.plan;
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(&shell.script)
            .env("SHIPIT_DEPLOY_APP", &plan.app)
            .env("SHIPIT_DEPLOY_ENV", &plan.env)
            .env("SHIPIT_DEPLOY_VERSION", &plan.version)
            .env("SHIPIT_DEPLOY_REVISION", revision.to_string())
            .envs(shell.env());
        let timeout = plan.hooks.timeout;
        let out =
            tokio::task::spawn_blocking(move || crate::child::output_within(&mut command, timeout))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::TimedOut => format!(
                        "still running after {} (killed)",
                        humantime::format_duration(timeout)
                    ),
                    _ => format!("cannot run it: {e}"),
                })?;
        for line in String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
        {
            self.say(format!("hook: {line}"));
        }
        if out.status.success() {
            Ok(())
        } else {
            Err(match out.status.code() {
                Some(code) => format!("exit {code}"),
                None => "killed by a signal".into(),
            })
        }
    }

    /// Asks the gate until it answers 2xx, within the hooks' timeout.
    async fn await_gate(&self, gate: &str) -> Result<(), String> {
        let deadline = self.clock.now() + self.plan.hooks.timeout;
        self.say(format!("waiting for the gate {gate} to answer 2xx"));
        loop {
            let last = match self.http.get(gate).send().await {
                Ok(answer) if answer.status().is_success() => {
                    self.say(format!("the gate opened ({})", answer.status()));
                    return Ok(());
                }
                Ok(answer) => answer.status().to_string(),
                Err(e) => crate::error::chain(&e),
            };
            if self.clock.now() >= deadline || self.cancel.is_cancelled() {
                return Err(format!(
                    "the gate {gate} did not open within {} (last: {last})",
                    humantime::format_duration(self.plan.hooks.timeout)
                ));
            }
            self.pause(GATE_EVERY).await;
        }
    }
}
