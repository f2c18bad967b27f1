//! The deploy lock of an environment: a never-started container named for it, so taking it is
//! atomic in the engine whichever machine deploys; its labels say who holds it. A lock whose
//! process is gone on this machine is taken over.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::engine;
use super::error::DeployError;
use super::run::Deployer;

impl Deployer<'_> {
    /// Takes the environment's lock, waiting up to `lock_wait`; a lock left by a killed run on
    /// this machine is taken over.
    pub async fn lock(&self, image: &str) -> Result<Lock, DeployError> {
        let plan = self.plan;
        let name = format!("shipit-lock-{}-{}", plan.app, plan.env);
        let host = hostname();
        let labels = BTreeMap::from([
            (engine::APP.to_string(), plan.app.clone()),
            (engine::ENV.into(), plan.env.clone()),
            (engine::KIND.into(), "lock".into()),
            ("shipit.by".into(), who()),
            ("shipit.host".into(), host.clone()),
            ("shipit.pid".into(), std::process::id().to_string()),
            ("shipit.started".into(), now_rfc3339()),
        ]);
        let until = Instant::now() + plan.lock_wait;
        loop {
            match self.engine.lock(&name, image, labels.clone()).await? {
                Ok(()) => return Ok(Lock { name }),
                Err(engine::Holder { id, labels: holder }) => {
                    let pid: Option<i32> = holder.get("shipit.pid").and_then(|p| p.parse().ok());
                    let same_host = holder.get("shipit.host") == Some(&host);
                    if same_host
                        && let (Some(pid), Some(id)) = (pid, id)
                        && !process_alive(pid)
                    {
                        // By id: if another run took the stale lock over first, its new lock
                        // has another id and is left alone (then it is a live holder).
                        if self.engine.remove_lock(&id).await? {
                            self.say(format!(
                                "taking over a stale deploy lock (pid {pid} is gone)"
                            ));
                        }
                        continue;
                    }
                    if Instant::now() >= until {
                        return Err(DeployError::Refused(format!(
                            "another deploy of {} to {} holds the lock: {} on {}, pid {}, since {}; it is released when that run ends{}",
                            plan.app,
                            plan.env,
                            holder.get("shipit.by").map_or("?", String::as_str),
                            holder.get("shipit.host").map_or("?", String::as_str),
                            holder.get("shipit.pid").map_or("?", String::as_str),
                            holder.get("shipit.started").map_or("?", String::as_str),
                            if plan.lock_wait.is_zero() {
                                " (set `lock_wait` to wait for it)"
                            } else {
                                ""
                            }
                        )));
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = self.cancel.cancelled() => {
                            return Err("interrupted while waiting for the deploy lock".into());
                        }
                    }
                }
            }
        }
    }

    /// Releases the lock.
    pub async fn unlock(&self, lock: Lock) -> Result<(), DeployError> {
        Ok(self.engine.remove(&lock.name).await?)
    }
}

/// Whether process `pid` of this machine runs. `EPERM` means it runs as another user: alive.
fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        // 0 and negative pids name process groups; such a label was not written by shipit.
        return true;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(nix::Error::EPERM) => true,
        Err(_) => false,
    }
}

/// A held deploy lock.
#[derive(Debug)]
pub struct Lock {
    name: String,
}

pub(super) fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

/// `user@host`, for records and locks.
pub(super) fn who() -> String {
    let user = std::env::var(crate::env_vars::GITHUB_ACTOR)
        .ok()
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| "unknown".into());
    format!("{user}@{}", hostname())
}

pub(super) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_of_another_user_is_alive() {
        // pid 1 runs as root; to anyone else kill(1, 0) is EPERM, which must mean alive.
        assert!(process_alive(1));
        assert!(process_alive(std::process::id() as i32));
        assert!(process_alive(0) && process_alive(-1));
        assert!(!process_alive(i32::MAX));
    }
}
