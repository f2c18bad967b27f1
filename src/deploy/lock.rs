//! The deploy lock of an environment: a never-started container named for it, so taking it is
//! atomic in the engine whichever machine deploys; its labels say who holds it. A lock whose
//! process is gone on this machine is taken over.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::engine;
use super::run::Deployer;

impl Deployer<'_> {
    /// Takes the environment's lock, waiting up to `lock_wait`; a lock left by a killed run on
    /// this machine is taken over.
    pub async fn lock(&self, image: &str) -> Result<Lock, String> {
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
                Err(holder) => {
                    let pid: Option<i32> = holder.get("shipit.pid").and_then(|p| p.parse().ok());
                    let same_host = holder.get("shipit.host") == Some(&host);
                    let alive = pid.is_some_and(|pid| {
                        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
                    });
                    if same_host && !alive {
                        self.say(format!(
                            "taking over a stale deploy lock (pid {} is gone)",
                            pid.map(|p| p.to_string()).unwrap_or_default()
                        ));
                        self.engine.remove(&name).await?;
                        continue;
                    }
                    if Instant::now() >= until {
                        return Err(format!(
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
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// Releases the lock.
    pub async fn unlock(&self, lock: Lock) -> Result<(), String> {
        self.engine.remove(&lock.name).await
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
    let user = std::env::var("GITHUB_ACTOR")
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
