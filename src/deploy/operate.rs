//! `shipit deploy pause|resume|promote|abort`: an operator's command to the deploy that holds
//! the environment's lock, left where that deploy reads it (the runtime of the fleet's first
//! host, as the lock), never a signal to a process that may run on another machine. The
//! running deploy reads it while it waits, and clears it.

use super::error::DeployError;
use super::run::Deployer;
use super::runtime::Control;
use super::strategy::Event;
use super::who::who;
use crate::events::Level;

/// What an operator can ask of a running deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Hold where it is (its analysis still running).
    Pause,
    /// Go on.
    Resume,
    /// Skip the pauses left.
    Promote,
    /// Roll back.
    Abort,
}

impl Command {
    /// Its name, as written in the command.
    pub fn name(self) -> &'static str {
        match self {
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Promote => "promote",
            Command::Abort => "abort",
        }
    }
}

impl Deployer<'_> {
    /// Leaves `command` for the running deploy; says whose deploy it reaches.
    pub async fn operate(&self, command: Command) -> Result<String, DeployError> {
        let plan = self.plan;
        let first = &*self.fleet.hosts()[0];
        let name = format!("shipit-lock-{}-{}", plan.app, plan.env);
        let Some(holder) = first.holder(&name).await? else {
            return Err(DeployError::Refused(format!(
                "no deploy of {} to {} is running: there is nothing to {}",
                plan.app,
                plan.env,
                command.name()
            )));
        };
        let control = Control {
            command: command.name().into(),
            by: who(),
        };
        first
            .set_control(&plan.app, &plan.env, Some(&control))
            .await?;
        let label = |k: &str| holder.labels.get(k).map_or("?", String::as_str);
        Ok(format!(
            "asked the deploy of {} to {} ({} on {}, pid {}) to {}",
            plan.app,
            plan.env,
            label("shipit.by"),
            label("shipit.host"),
            label("shipit.pid"),
            command.name()
        ))
    }

    /// Clears a command left before this deploy began (it was meant for another one).
    pub(super) async fn clear_operator(&self) -> Result<(), DeployError> {
        let plan = self.plan;
        Ok(self.fleet.hosts()[0]
            .set_control(&plan.app, &plan.env, None)
            .await?)
    }

    /// The operator's command waiting for this deploy, as an event of its rollout (read
    /// once: cleared as it is taken).
    pub(super) async fn operator(&self) -> Result<Option<Event>, DeployError> {
        let plan = self.plan;
        let first = &*self.fleet.hosts()[0];
        let Some(control) = first.control(&plan.app, &plan.env).await? else {
            return Ok(None);
        };
        first.set_control(&plan.app, &plan.env, None).await?;
        let event = match control.command.as_str() {
            "pause" => Event::Pause,
            "resume" => Event::Resume,
            "promote" => Event::Promote,
            "abort" => Event::Abort(control.by.clone()),
            other => {
                self.tell(
                    Level::Warn,
                    format!("ignoring an unknown operator command `{other}`"),
                );
                return Ok(None);
            }
        };
        self.tell(
            Level::Warn,
            format!("{} asked to {} the rollout", control.by, control.command),
        );
        Ok(Some(event))
    }
}
