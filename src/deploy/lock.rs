//! The deploy lock of an environment, through [`Runtime::lock`](super::runtime::Runtime::lock)
//! alone: taken atomically in the runtime whichever machine deploys (for Docker, a
//! never-started container named for it); its labels say who holds it. A lock whose
//! process is gone on this machine is taken over.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::DeployError;
use super::run::Deployer;
use super::runtime::{self, Holder, Runtime};
use super::who::{hostname, now_rfc3339, who};
use crate::events::Level;

impl Deployer<'_> {
    /// Takes the environment's lock on every host, in the fleet's order (so two deploys
    /// never hold half each for long: the second stops at the first host it finds held),
    /// waiting up to `lock_wait`; a lock left by a killed run on this machine is taken over.
    pub async fn lock(&self) -> Result<Lock, DeployError> {
        let plan = self.plan;
        let mut lock = Lock {
            name: format!("shipit-lock-{}-{}", plan.app, plan.env),
            hosts: Vec::new(),
        };
        let labels = BTreeMap::from([
            (runtime::APP.to_string(), plan.app.clone()),
            (runtime::ENV.into(), plan.env.clone()),
            (runtime::KIND.into(), "lock".into()),
            ("shipit.by".into(), who()),
            ("shipit.host".into(), hostname()),
            ("shipit.pid".into(), std::process::id().to_string()),
            ("shipit.started".into(), now_rfc3339()),
        ]);
        let until = self.clock.now() + plan.lock_wait;
        for host in self.fleet.hosts() {
            if let Err(e) = self.lock_on(&**host, &lock.name, &labels, until).await {
                if let Err(left) = self.unlock(lock).await {
                    self.tell(
                        Level::Warn,
                        format!("cannot release the deploy lock: {}", left.chain()),
                    );
                }
                return Err(e);
            }
            lock.hosts.push(host.address().to_string());
        }
        Ok(lock)
    }

    /// Takes the lock `name` on one host.
    async fn lock_on(
        &self,
        host: &dyn Runtime,
        name: &str,
        labels: &BTreeMap<String, String>,
        until: std::time::Instant,
    ) -> Result<(), DeployError> {
        let plan = self.plan;
        let me = hostname();
        loop {
            match host.lock(name, labels.clone()).await? {
                Ok(()) => return Ok(()),
                Err(Holder { id, labels: holder }) => {
                    let pid: Option<i32> = holder.get("shipit.pid").and_then(|p| p.parse().ok());
                    let same_host = holder.get("shipit.host") == Some(&me);
                    if same_host
                        && let (Some(pid), Some(id)) = (pid, id)
                        && !process_alive(pid)
                    {
                        // By id: if another run took the stale lock over first, its new lock
                        // has another id and is left alone (then it is a live holder).
                        if host.remove_lock(&id).await? {
                            self.say(format!(
                                "taking over a stale deploy lock on {} (pid {pid} is gone)",
                                host.address()
                            ));
                        }
                        continue;
                    }
                    if self.clock.now() >= until {
                        return Err(DeployError::Refused(format!(
                            "another deploy of {} to {} holds the lock on {}: {} on {}, pid {}, since {}; it is released when that run ends{}",
                            plan.app,
                            plan.env,
                            host.address(),
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
                        _ = self.clock.sleep(Duration::from_millis(500)) => {}
                        _ = self.cancel.cancelled() => {
                            return Err("interrupted while waiting for the deploy lock".into());
                        }
                    }
                }
            }
        }
    }

    /// Releases the lock on every host that holds it (in reverse order), trying them all.
    pub async fn unlock(&self, lock: Lock) -> Result<(), DeployError> {
        let mut first_error = None;
        for host in lock.hosts.iter().rev() {
            let released = match self.fleet.on(host) {
                Ok(runtime) => release(runtime, &lock.name).await,
                Err(e) => Err(e),
            };
            if let Err(e) = released {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), |e| Err(e.into()))
    }
}

/// Removes the lock `name` on `host` while it is this process's (by its id, so a lock another
/// run took over in the meantime stays).
async fn release(host: &dyn Runtime, name: &str) -> Result<(), runtime::RuntimeError> {
    let Some(holder) = host.holder(name).await? else {
        return Ok(());
    };
    let ours = holder.labels.get("shipit.pid") == Some(&std::process::id().to_string())
        && holder.labels.get("shipit.host") == Some(&hostname());
    if let (true, Some(id)) = (ours, holder.id) {
        host.remove_lock(&id).await?;
    }
    Ok(())
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
    /// The hosts it is held on, in the order taken.
    hosts: Vec<String>,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_util::future::LocalBoxFuture;

    use super::*;
    use crate::deploy::clock::{Clock, ManualClock};
    use crate::deploy::runtime::{Container, ContainerSpec, Record, Runtime, RuntimeError};

    /// A runtime whose lock a live process on this machine holds, forever.
    struct Held;

    fn not_here<T>() -> LocalBoxFuture<'static, Result<T, RuntimeError>> {
        Box::pin(async {
            Err(RuntimeError::new(
                "do this",
                "memory",
                std::io::Error::other("not in this test"),
            ))
        })
    }

    impl Runtime for Held {
        fn address(&self) -> &str {
            "memory"
        }
        fn ensure_image<'a>(
            &'a self,
            _: &'a str,
            _: Option<(String, String)>,
        ) -> LocalBoxFuture<'a, Result<(), RuntimeError>> {
            not_here()
        }
        fn start<'a>(
            &'a self,
            _: &'a ContainerSpec,
        ) -> LocalBoxFuture<'a, Result<Container, RuntimeError>> {
            not_here()
        }
        fn containers<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
        ) -> LocalBoxFuture<'a, Result<Vec<Container>, RuntimeError>> {
            not_here()
        }
        fn remove<'a>(&'a self, _: &'a str) -> LocalBoxFuture<'a, Result<(), RuntimeError>> {
            not_here()
        }
        fn lock<'a>(
            &'a self,
            _: &'a str,
            _: BTreeMap<String, String>,
        ) -> LocalBoxFuture<'a, Result<Result<(), Holder>, RuntimeError>> {
            Box::pin(async {
                Ok(Err(Holder {
                    id: Some("lock".into()),
                    labels: BTreeMap::from([
                        ("shipit.host".into(), hostname()),
                        ("shipit.pid".into(), std::process::id().to_string()),
                        ("shipit.by".into(), "someone".into()),
                    ]),
                }))
            })
        }
        fn remove_lock<'a>(&'a self, _: &'a str) -> LocalBoxFuture<'a, Result<bool, RuntimeError>> {
            not_here()
        }
        fn preflight(&self) -> LocalBoxFuture<'_, Result<(), RuntimeError>> {
            not_here()
        }
        fn holder<'a>(
            &'a self,
            _: &'a str,
        ) -> LocalBoxFuture<'a, Result<Option<Holder>, RuntimeError>> {
            not_here()
        }
        fn set_control<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: Option<&'a crate::deploy::runtime::Control>,
        ) -> LocalBoxFuture<'a, Result<(), RuntimeError>> {
            not_here()
        }
        fn control<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
        ) -> LocalBoxFuture<'a, Result<Option<crate::deploy::runtime::Control>, RuntimeError>>
        {
            not_here()
        }
        fn stop<'a>(&'a self, _: &'a str) -> LocalBoxFuture<'a, Result<(), RuntimeError>> {
            not_here()
        }
        fn restart<'a>(
            &'a self,
            _: &'a str,
        ) -> LocalBoxFuture<'a, Result<Container, RuntimeError>> {
            not_here()
        }
        fn add_record<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: &'a Record,
        ) -> LocalBoxFuture<'a, Result<(), RuntimeError>> {
            not_here()
        }
        fn records<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
        ) -> LocalBoxFuture<'a, Result<Vec<Record>, RuntimeError>> {
            not_here()
        }
    }

    struct Quiet;

    impl crate::events::Reporter for Quiet {
        fn report(&self, _: &crate::events::Event<'_>) {}
    }

    /// The executor waits on the clock it is given: an hour's `lock_wait` against a lock that
    /// is never released runs its whole course (every retry every 500 ms) on a manual clock,
    /// in no time, and ends naming the holder.
    #[tokio::test]
    async fn an_hour_of_lock_wait_runs_on_the_clock_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"tiny\"\nversion = \"1.0.0\"\n",
        )
        .unwrap();
        let text = "version = 1\n[deploy.production]\nstrategy = \"rolling\"\n\
                    image = \"127.0.0.1:9/acme/tiny:1\"\nport = 8080\nlock_wait = \"1h\"\n\
                    router = { haproxy = \"tcp://127.0.0.1:9\", backend = \"tiny\" }\n";
        let loaded = crate::config::load_str(
            &dir.path().join("shipit.toml"),
            text.to_string(),
            crate::plan::kinds::BUILTINS,
        )
        .unwrap();
        let plan = crate::deploy::plan::plan(
            &loaded,
            "tiny",
            "production",
            "1.0.0",
            &minijinja::Value::UNDEFINED,
            dir.path(),
        )
        .unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let clock = Arc::new(ManualClock::new());
        let start = clock.now();
        let deployer = Deployer {
            plan: &plan,
            fleet: std::rc::Rc::new(crate::deploy::fleet::Fleet::new(vec![Arc::new(Held)])),
            router: crate::deploy::connect::router(&plan).unwrap(),
            http: reqwest::Client::new(),
            reporter: &Quiet,
            cancel: tokio_util::sync::CancellationToken::new(),
            clock: clock.clone(),
            journal: Default::default(),
            detection: Default::default(),
        };
        // Waiting on the machine's clock instead would take the whole hour: fail in seconds.
        let error = tokio::time::timeout(Duration::from_secs(10), deployer.lock())
            .await
            .expect("the lock wait ran on the machine's clock, not the one given")
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("holds the lock on memory: someone on"),
            "{error}"
        );
        let waited = clock.now() - start;
        assert!(waited >= Duration::from_secs(3600), "{waited:?}");
        assert!(waited < Duration::from_secs(3601), "{waited:?}");
    }

    #[test]
    fn a_process_of_another_user_is_alive() {
        // pid 1 runs as root; to anyone else kill(1, 0) is EPERM, which must mean alive.
        assert!(process_alive(1));
        assert!(process_alive(std::process::id() as i32));
        assert!(process_alive(0) && process_alive(-1));
        assert!(!process_alive(i32::MAX));
    }
}
