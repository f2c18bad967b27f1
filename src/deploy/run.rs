//! Runs a deploy: reads the live state from the engine and the router, takes the
//! environment's lock, and walks the plan's [`Rollout`] by performing each action it asks for
//! and reporting back. Rolls back by itself on failed health, failed analysis or a passed
//! deadline: traffic returns to the stable containers (never scaled down before the new ones
//! proved themselves) and the new ones are drained and removed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::analysis::{Analysis, Counters};
use super::engine::{self, Container, ContainerSpec, Engine, Record};
use super::haproxy::{Haproxy, Server};
use super::health::{self, Health, Tracker};
use super::plan::DeployPlan;
use super::strategy::{Action, Event, Phase, Traffic};
use crate::ui::Level;

/// Weight of a server in full rotation.
const FULL: u32 = 100;
/// HAProxy's largest weight.
const MAX_WEIGHT: u32 = 256;

/// How a deploy or rollback ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// The new revision serves all traffic.
    Promoted {
        /// Its number.
        revision: u64,
    },
    /// The new revision was removed; the stable one serves.
    RolledBack {
        /// The revision that failed.
        revision: u64,
        /// Why.
        reason: String,
    },
    /// Ctrl-C / SIGTERM: undone like a rollback.
    Interrupted {
        /// The revision that was stopped.
        revision: u64,
    },
}

/// The live state of an environment.
#[derive(Debug, Clone, Serialize)]
pub struct State {
    /// Service containers, every revision.
    pub containers: Vec<Container>,
    /// The backend's servers.
    pub servers: Vec<ServerView>,
    /// Deploy records, oldest first.
    pub records: Vec<Record>,
}

/// A router server, as status shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ServerView {
    /// Name.
    pub name: String,
    /// `addr:port`.
    pub address: String,
    /// Weight.
    pub weight: u32,
    /// `ready`, `drain` or `maint`.
    pub admin: String,
}

impl State {
    fn server(&self, name: &str) -> Option<&ServerView> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// Running containers the router sends traffic to.
    pub fn serving(&self) -> Vec<&Container> {
        self.containers
            .iter()
            .filter(|c| c.state == "running")
            .filter(|c| {
                self.server(&c.name)
                    .is_some_and(|s| s.weight > 0 && s.admin == "ready")
            })
            .collect()
    }

    /// The highest revision number used so far.
    fn last_revision(&self) -> u64 {
        let containers = self.containers.iter().map(|c| c.revision);
        let records = self.records.iter().map(|r| r.revision);
        containers.chain(records).max().unwrap_or(0)
    }
}

/// The weights (new, stable) per server that give the new revision `percent` of requests.
pub fn split_weights(percent: u32, new: usize, stable: usize) -> (u32, u32) {
    if stable == 0 || percent >= 100 {
        return (FULL, 0);
    }
    if new == 0 || percent == 0 {
        return (0, FULL);
    }
    let (p, n, s) = (percent as f64, new as f64, stable as f64);
    // n * w_new / (n * w_new + s * w_stable) = p / 100
    let w_new = (p * s * FULL as f64 / ((100.0 - p) * n)).round();
    if w_new <= MAX_WEIGHT as f64 {
        return ((w_new as u32).max(1), FULL);
    }
    let w_stable = ((100.0 - p) * n * MAX_WEIGHT as f64 / (p * s)).round();
    (MAX_WEIGHT, (w_stable as u32).max(1))
}

/// A new container during a rollout.
struct Fresh {
    container: Container,
    tracker: Tracker,
    healthy: bool,
}

/// Drives deploys of one environment.
pub struct Deployer<'a> {
    plan: &'a DeployPlan,
    engine: Engine,
    router: Haproxy,
    http: reqwest::Client,
    say: &'a (dyn Fn(Level, String) + Sync),
    cancel: CancellationToken,
}

impl<'a> Deployer<'a> {
    /// Connects to the engine and the router, and checks the backend exists.
    pub async fn connect(
        plan: &'a DeployPlan,
        say: &'a (dyn Fn(Level, String) + Sync),
        cancel: CancellationToken,
    ) -> Result<Deployer<'a>, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let engine = Engine::connect(plan.docker.as_deref()).await?;
        let router = Haproxy::new(plan.router.clone());
        router
            .servers(&plan.backend)
            .await
            .map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Deployer {
            plan,
            engine,
            router,
            http,
            say,
            cancel,
        })
    }

    fn say(&self, text: String) {
        (self.say)(Level::Info, text)
    }

    /// Reads the environment's containers, servers and records.
    pub async fn state(&self) -> Result<State, String> {
        let plan = self.plan;
        let containers = self.engine.containers(&plan.app, &plan.env).await?;
        let servers: Vec<Server> = self
            .router
            .servers(&plan.backend)
            .await
            .map_err(|e| e.to_string())?;
        let servers = servers
            .into_iter()
            .map(|s| ServerView {
                admin: if s.in_maintenance() {
                    "maint"
                } else if s.admin_state & 0x08 != 0 {
                    "drain"
                } else {
                    "ready"
                }
                .into(),
                name: s.name,
                address: format!("{}:{}", s.addr, s.port),
                weight: s.weight,
            })
            .collect();
        let records = self.engine.records(&plan.app, &plan.env).await?;
        Ok(State {
            containers,
            servers,
            records,
        })
    }

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

    /// Pulls the plan's image (with the registry credentials shipit would push with).
    pub async fn pull(&self, image: &str) -> Result<(), String> {
        let credentials = crate::oci::reference::Reference::parse(image)
            .ok()
            .and_then(|r| crate::oci::auth::resolve(&r.registry, None).ok().flatten())
            .map(|c| (c.username, c.secret));
        self.engine.ensure_image(image, credentials).await
    }

    /// Deploys the plan's version; `Err` only when the deploy could not run at all.
    pub async fn deploy(&self) -> Result<(Outcome, State), String> {
        let plan = self.plan;
        self.pull(&plan.image).await?;
        let lock = self.lock(&plan.image).await?;
        let result = self.deploy_locked(plan).await;
        self.unlock(lock).await?;
        result
    }

    async fn deploy_locked(&self, plan: &DeployPlan) -> Result<(Outcome, State), String> {
        let state = self.state().await?;
        let serving: Vec<Container> = state.serving().into_iter().cloned().collect();
        let mut revisions: Vec<u64> = serving.iter().map(|c| c.revision).collect();
        revisions.dedup();
        if revisions.len() > 1 {
            return Err(format!(
                "revisions {revisions:?} are both serving (an interrupted rollout?): run `shipit rollback --env {}` first",
                plan.env
            ));
        }
        self.remove_strays(&state, &serving).await?;
        let revision = state.last_revision() + 1;
        let from = serving.first().map(|c| c.revision);
        let started = now_rfc3339();
        self.say(format!(
            "deploying {} {} to {} as revision {revision} ({}{})",
            plan.app,
            plan.version,
            plan.env,
            plan.strategy,
            from.map(|r| format!(", replacing revision {r}"))
                .unwrap_or_default()
        ));
        let outcome = self.roll_out(plan, revision, serving).await?;
        self.record(plan, revision, from, started, &outcome, None)
            .await?;
        Ok((outcome, self.state().await?))
    }

    /// Records how the attempt at `revision` ended (in the engine, for status and rollback).
    async fn record(
        &self,
        plan: &DeployPlan,
        revision: u64,
        from: Option<u64>,
        started: String,
        outcome: &Outcome,
        detail: Option<String>,
    ) -> Result<(), String> {
        let (label, reason) = match outcome {
            Outcome::Promoted { .. } => ("promoted", String::new()),
            Outcome::RolledBack { reason, .. } => ("rolled-back", reason.clone()),
            Outcome::Interrupted { .. } => ("interrupted", String::new()),
        };
        let record = Record {
            revision,
            version: plan.version.clone(),
            image: plan.image.clone(),
            outcome: label.into(),
            from,
            by: who(),
            started,
            finished: now_rfc3339(),
            detail: detail.unwrap_or(reason),
        };
        self.engine.add_record(&plan.app, &plan.env, &record).await
    }

    /// Removes containers that serve nothing (left by a killed run) and servers whose
    /// container is gone.
    async fn remove_strays(&self, state: &State, serving: &[Container]) -> Result<(), String> {
        for container in &state.containers {
            if !serving.iter().any(|s| s.name == container.name) {
                self.say(format!(
                    "removing {} (revision {}, not serving)",
                    container.name, container.revision
                ));
                if state.server(&container.name).is_some() {
                    self.retire_server(&container.name).await?;
                }
                self.engine.remove(&container.name).await?;
            }
        }
        for server in &state.servers {
            let managed = server
                .name
                .starts_with(&format!("{}-{}-r", self.plan.app, self.plan.env));
            if managed && !state.containers.iter().any(|c| c.name == server.name) {
                self.retire_server(&server.name).await?;
            }
        }
        Ok(())
    }

    /// Walks the rollout for `revision` with `stable` serving.
    async fn roll_out(
        &self,
        plan: &DeployPlan,
        revision: u64,
        mut stable: Vec<Container>,
    ) -> Result<Outcome, String> {
        // With nothing serving there is nothing to compare with or fall back to: start,
        // check health and route, without the strategy's pauses.
        let mut rollout = if stable.is_empty() {
            self.say("nothing serves yet: starting, checking health and routing at once".into());
            super::strategy::Rollout::blue_green(
                plan.replicas,
                Duration::ZERO,
                plan.health.deadline,
                None,
            )
        } else {
            plan.rollout()
        };
        let mut fresh: Vec<Fresh> = Vec::new();
        let mut analysis = Analysis::new(plan.analysis.clone());
        let mut next_sample = Instant::now();
        let mut routed = false;
        let mut phase: Option<Phase> = None;
        let mut action = rollout.advance(Event::Begin, Instant::now());
        loop {
            if self.cancel.is_cancelled() {
                self.preview(plan, &fresh, false).await?;
                self.undo(&stable, &fresh).await?;
                return Ok(Outcome::Interrupted { revision });
            }
            let event = match action {
                Action::Perform(ref p) => {
                    phase = Some(p.clone());
                    match p {
                        Phase::StartNew { count } => {
                            for _ in 0..*count {
                                let n = fresh.len() + 1;
                                fresh.push(self.start(plan, revision, n).await?);
                            }
                            Event::Done
                        }
                        Phase::AwaitHealthy => self.check_health(&mut fresh).await,
                        Phase::Route { traffic } => {
                            self.route(*traffic, &stable, &fresh).await?;
                            if !routed {
                                routed = true;
                                analysis = Analysis::new(plan.analysis.clone());
                                analysis.observe(self.counters(&fresh).await?);
                                next_sample = Instant::now() + plan.analysis_interval;
                            }
                            Event::Done
                        }
                        Phase::Preview { duration } => {
                            self.preview(plan, &fresh, true).await?;
                            self.say(format!(
                                "showing revision {revision} on the preview backend for {}",
                                humantime::format_duration(*duration)
                            ));
                            Event::Done
                        }
                        Phase::Pause { duration } => {
                            self.say(format!(
                                "pausing {} with the analysis running",
                                humantime::format_duration(*duration)
                            ));
                            Event::Done
                        }
                        Phase::RetireStable { count } => {
                            let n = (*count).min(stable.len());
                            for old in stable.drain(..n).collect::<Vec<_>>() {
                                self.retire(&old).await?;
                            }
                            Event::Done
                        }
                    }
                }
                Action::WaitUntil(until) => {
                    if phase == Some(Phase::AwaitHealthy) {
                        self.pause(
                            plan.health
                                .interval
                                .min(until.saturating_duration_since(Instant::now())),
                        )
                        .await;
                        self.check_health(&mut fresh).await
                    } else {
                        let wake = if routed {
                            until.min(next_sample)
                        } else {
                            until
                        };
                        self.pause(wake.saturating_duration_since(Instant::now()))
                            .await;
                        if routed && Instant::now() >= next_sample {
                            next_sample = Instant::now() + plan.analysis_interval;
                            match self.sample(&mut analysis, &fresh, revision).await? {
                                Some(reason) => Event::AnalysisFailed(reason),
                                None => Event::Tick,
                            }
                        } else {
                            Event::Tick
                        }
                    }
                }
                Action::Promote => {
                    self.preview(plan, &fresh, false).await?;
                    self.say(format!(
                        "revision {revision} ({}) serves all traffic",
                        plan.version
                    ));
                    return Ok(Outcome::Promoted { revision });
                }
                Action::Rollback { ref reason } => {
                    (self.say)(
                        Level::Warn,
                        format!("rolling back revision {revision}: {reason}"),
                    );
                    for sample in analysis.samples.iter().filter(|s| s.requests > 0) {
                        (self.say)(
                            Level::Info,
                            format!(
                                "  measured: {} requests, {} failed, {} ms average{}",
                                sample.requests,
                                sample.errors,
                                sample.response_ms,
                                sample
                                    .failure
                                    .as_ref()
                                    .map(|f| format!(" ({f})"))
                                    .unwrap_or_default()
                            ),
                        );
                    }
                    self.preview(plan, &fresh, false).await?;
                    self.undo(&stable, &fresh).await?;
                    return Ok(Outcome::RolledBack {
                        revision,
                        reason: reason.clone(),
                    });
                }
            };
            action = rollout.advance(event, Instant::now());
        }
    }

    /// Adds the new containers to the preview backend (`show`), or takes them off it.
    async fn preview(&self, plan: &DeployPlan, fresh: &[Fresh], show: bool) -> Result<(), String> {
        let Some(preview) = &plan.preview else {
            return Ok(());
        };
        let on_it = self
            .router
            .servers(&preview.backend)
            .await
            .map_err(|e| e.to_string())?;
        for f in fresh {
            let name = &f.container.name;
            let present = on_it.iter().any(|s| s.name == *name);
            if show && !present {
                let address = f.container.address.clone().unwrap_or_default();
                self.router
                    .add_server(&preview.backend, name, &address, FULL)
                    .await
                    .map_err(|e| e.to_string())?;
            } else if !show && present {
                self.retire_server_of(&preview.backend, name).await?;
            }
        }
        Ok(())
    }

    /// Sleeps, waking early on Ctrl-C.
    async fn pause(&self, duration: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(duration) => {}
            _ = self.cancel.cancelled() => {}
        }
    }

    /// Starts container `n` of `revision` and registers it with the router at weight 0.
    async fn start(&self, plan: &DeployPlan, revision: u64, n: usize) -> Result<Fresh, String> {
        let name = format!("{}-{}-r{revision}-{n}", plan.app, plan.env);
        let labels = BTreeMap::from([
            (engine::APP.to_string(), plan.app.clone()),
            (engine::ENV.into(), plan.env.clone()),
            (engine::KIND.into(), "service".into()),
            (engine::REVISION.into(), revision.to_string()),
            (engine::VERSION.into(), plan.version.clone()),
            (engine::IMAGE.into(), plan.image.clone()),
            (engine::COLOR.into(), engine::color(revision).into()),
        ]);
        let container = self
            .engine
            .start(&ContainerSpec {
                name: name.clone(),
                image: plan.image.clone(),
                env: plan.env_vars.clone(),
                port: plan.port,
                publish_address: plan.publish_address.clone(),
                labels,
            })
            .await?;
        let address = container
            .address
            .clone()
            .ok_or_else(|| format!("{name} started without a published port"))?;
        self.router
            .add_server(&plan.backend, &name, &address, 0)
            .await
            .map_err(|e| e.to_string())?;
        self.say(format!("started {name} on {address}"));
        Ok(Fresh {
            container,
            tracker: Tracker::new(&plan.health),
            healthy: false,
        })
    }

    /// One round of health checks of the new containers not yet healthy.
    async fn check_health(&self, fresh: &mut [Fresh]) -> Event {
        for f in fresh.iter_mut().filter(|f| !f.healthy) {
            let address = f.container.address.clone().unwrap_or_default();
            match f
                .tracker
                .record(health::probe(&self.http, &address, &self.plan.health).await)
            {
                Health::Healthy => {
                    f.healthy = true;
                    self.say(format!("{} is healthy", f.container.name));
                }
                Health::Unhealthy(why) => {
                    return Event::Unhealthy(format!("{}: {why}", f.container.name));
                }
                Health::Pending => {}
            }
        }
        if fresh.iter().all(|f| f.healthy) {
            Event::Healthy
        } else {
            Event::Tick
        }
    }

    /// Sets the router's weights for `traffic`: new servers first, so there is always
    /// somewhere to send a request.
    async fn route(
        &self,
        traffic: Traffic,
        stable: &[Container],
        fresh: &[Fresh],
    ) -> Result<(), String> {
        let backend = &self.plan.backend;
        let (w_new, w_stable) = match traffic {
            Traffic::Percent(p) => split_weights(p, fresh.len(), stable.len()),
            Traffic::Even => (FULL, FULL),
        };
        for f in fresh {
            self.router
                .set_weight(backend, &f.container.name, w_new)
                .await
                .map_err(|e| e.to_string())?;
        }
        for old in stable {
            self.router
                .set_weight(backend, &old.name, w_stable)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.say(match traffic {
            Traffic::Percent(p) => format!("routing {p}% of requests to the new revision"),
            Traffic::Even => "new containers take their share of requests".to_string(),
        });
        Ok(())
    }

    /// The new servers' counters, summed.
    async fn counters(&self, fresh: &[Fresh]) -> Result<Counters, String> {
        let stats = self
            .router
            .stats(&self.plan.backend)
            .await
            .map_err(|e| e.to_string())?;
        let mut total = Counters::default();
        let mut weighted_ms = 0;
        for s in stats
            .iter()
            .filter(|s| fresh.iter().any(|f| f.container.name == s.name))
        {
            total.responses += s.responses;
            total.errors += s.errors_5xx + s.connection_errors;
            weighted_ms = weighted_ms.max(s.response_ms);
        }
        total.response_ms = weighted_ms;
        Ok(total)
    }

    /// One analysis sample (and the Prometheus check, when configured).
    async fn sample(
        &self,
        analysis: &mut Analysis,
        fresh: &[Fresh],
        revision: u64,
    ) -> Result<Option<String>, String> {
        if let Some(reason) = analysis.observe(self.counters(fresh).await?) {
            return Ok(Some(reason));
        }
        if let Some(check) = &self.plan.prometheus {
            let value =
                super::prometheus::query(&self.http, check, &self.plan.version, revision).await?;
            if value > check.max {
                return Ok(Some(format!(
                    "the Prometheus query gave {value} (> {})",
                    check.max
                )));
            }
        }
        Ok(None)
    }

    /// Drains a container's server, waits for its in-flight requests, removes both.
    async fn retire(&self, container: &Container) -> Result<(), String> {
        self.retire_server(&container.name).await?;
        self.engine.remove(&container.name).await?;
        self.say(format!(
            "removed {} (revision {})",
            container.name, container.revision
        ));
        Ok(())
    }

    /// Drains a server of the managed backend and deletes it once idle.
    async fn retire_server(&self, name: &str) -> Result<(), String> {
        self.retire_server_of(&self.plan.backend, name).await
    }

    /// Drains a server and deletes it from `backend` once idle (or at `drain_timeout`).
    async fn retire_server_of(&self, backend: &str, name: &str) -> Result<(), String> {
        let err = |e: super::haproxy::RouterError| e.to_string();
        self.router
            .set_weight(backend, name, 0)
            .await
            .map_err(err)?;
        self.router.drain(backend, name).await.map_err(err)?;
        let deadline = Instant::now() + self.plan.drain_timeout;
        loop {
            let stats = self.router.stats(backend).await.map_err(err)?;
            let busy = stats
                .iter()
                .find(|s| s.name == name)
                .map_or(0, |s| s.current);
            if busy == 0 {
                break;
            }
            if Instant::now() >= deadline {
                (self.say)(
                    Level::Warn,
                    format!(
                        "{name} still has {busy} requests after the drain timeout; closing them"
                    ),
                );
                let _ = self
                    .router
                    .command(&format!("shutdown sessions server {backend}/{name}"))
                    .await;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut attempts = 0;
        loop {
            match self.router.remove_server(backend, name).await {
                Ok(()) => return Ok(()),
                Err(e) if attempts < 20 => {
                    attempts += 1;
                    tracing::debug!("{e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Traffic back to `stable` at once, the new containers drained and removed.
    async fn undo(&self, stable: &[Container], fresh: &[Fresh]) -> Result<(), String> {
        let backend = &self.plan.backend;
        for old in stable {
            self.router
                .set_weight(backend, &old.name, FULL)
                .await
                .map_err(|e| e.to_string())?;
        }
        for f in fresh {
            self.retire_server(&f.container.name).await?;
            self.engine.remove(&f.container.name).await?;
        }
        self.say(format!(
            "{} new container{} removed; {}",
            fresh.len(),
            if fresh.len() == 1 { "" } else { "s" },
            if stable.is_empty() {
                "no earlier revision was serving".to_string()
            } else {
                format!("revision {} serves all traffic", stable[0].revision)
            }
        ));
        Ok(())
    }

    /// Returns to revision `to` (default: the one before the revision serving), with every
    /// other container drained and removed. Keeps serving containers of `to` when it has
    /// them; otherwise deploys its version again as a new revision.
    pub async fn rollback(&self, to: Option<u64>) -> Result<(Outcome, State), String> {
        let state = self.state().await?;
        let serving: Vec<Container> = state.serving().into_iter().cloned().collect();
        let promoted: Vec<&Record> = state
            .records
            .iter()
            .filter(|r| r.outcome == "promoted")
            .collect();
        let current = serving.iter().map(|c| c.revision).max();
        let last_promoted = promoted.last().map(|r| r.revision);
        let target = match to {
            Some(to) => state
                .records
                .iter()
                .find(|r| r.revision == to)
                .ok_or_else(|| {
                    format!(
                        "there is no revision {to} of {} in {}",
                        self.plan.app, self.plan.env
                    )
                })?,
            // An interrupted rollout (serving revision newer than the last promoted one) goes
            // back to the last promoted revision; otherwise to the one before it.
            None => {
                let interrupted = matches!((current, last_promoted), (Some(c), Some(p)) if c > p)
                    || serving.iter().any(|c| Some(c.revision) != current);
                let before = if interrupted {
                    last_promoted.map(|p| p + 1)
                } else {
                    current.or(last_promoted)
                };
                promoted
                    .iter()
                    .rev()
                    .find(|r| before.is_none_or(|b| r.revision < b))
                    .copied()
                    .ok_or_else(|| {
                        format!(
                            "{} in {} has no earlier revision to roll back to",
                            self.plan.app, self.plan.env
                        )
                    })?
            }
        };
        let image = target.image.clone();
        self.pull(&image).await?;
        let lock = self.lock(&image).await?;
        let result = self.rollback_locked(&state, target.clone(), serving).await;
        self.unlock(lock).await?;
        result
    }

    async fn rollback_locked(
        &self,
        state: &State,
        target: Record,
        serving: Vec<Container>,
    ) -> Result<(Outcome, State), String> {
        let kept: Vec<Container> = state
            .containers
            .iter()
            .filter(|c| {
                c.revision == target.revision
                    && c.state == "running"
                    && state.server(&c.name).is_some()
            })
            .cloned()
            .collect();
        let mut healthy = Vec::new();
        for c in &kept {
            let address = c.address.clone().unwrap_or_default();
            if health::probe(&self.http, &address, &self.plan.health)
                .await
                .is_ok()
            {
                healthy.push(c.clone());
            }
        }
        if !healthy.is_empty() {
            self.say(format!(
                "revision {} ({}) is still running: sending all traffic to it",
                target.revision, target.version
            ));
            for c in &healthy {
                self.router
                    .set_weight(&self.plan.backend, &c.name, FULL)
                    .await
                    .map_err(|e| e.to_string())?;
                self.router
                    .ready(&self.plan.backend, &c.name)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            for c in state
                .containers
                .iter()
                .filter(|c| !healthy.iter().any(|h| h.name == c.name))
            {
                if state.server(&c.name).is_some() {
                    self.retire_server(&c.name).await?;
                }
                self.engine.remove(&c.name).await?;
                self.say(format!("removed {} (revision {})", c.name, c.revision));
            }
            self.engine
                .add_record(
                    &self.plan.app,
                    &self.plan.env,
                    &Record {
                        revision: state.last_revision() + 1,
                        version: target.version.clone(),
                        image: target.image.clone(),
                        outcome: format!("rollback-to-r{}", target.revision),
                        from: serving.iter().map(|c| c.revision).max(),
                        by: who(),
                        started: now_rfc3339(),
                        finished: now_rfc3339(),
                        detail: String::new(),
                    },
                )
                .await?;
            return Ok((
                Outcome::Promoted {
                    revision: target.revision,
                },
                self.state().await?,
            ));
        }
        // The target's containers are gone: deploy its version again, blue-green, over
        // whatever serves now (one revision, after strays are removed).
        self.say(format!(
            "revision {} ({}) is not running: deploying it again",
            target.revision, target.version
        ));
        let newest = serving.iter().map(|c| c.revision).max();
        let keep: Vec<Container> = serving
            .iter()
            .filter(|c| Some(c.revision) == newest)
            .cloned()
            .collect();
        for c in serving.iter().filter(|c| Some(c.revision) != newest) {
            self.retire_server(&c.name).await?;
            self.engine.remove(&c.name).await?;
        }
        self.remove_strays(state, &serving).await?;
        let plan = self.plan.for_rollback(&target.version, &target.image);
        let rollback = Deployer {
            plan: &plan,
            engine: self.engine.clone(),
            router: self.router.clone(),
            http: self.http.clone(),
            say: self.say,
            cancel: self.cancel.clone(),
        };
        let revision = state.last_revision() + 1;
        let started = now_rfc3339();
        let outcome = rollback.roll_out(&plan, revision, keep).await?;
        let detail = format!("rollback to revision {}", target.revision);
        self.record(&plan, revision, newest, started, &outcome, Some(detail))
            .await?;
        Ok((outcome, self.state().await?))
    }
}

/// A held deploy lock.
#[derive(Debug)]
pub struct Lock {
    name: String,
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

/// `user@host`, for records and locks.
fn who() -> String {
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

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_give_the_share_asked_for() {
        let share = |p, n, s| {
            let (wn, ws) = split_weights(p, n, s);
            100.0 * (n as f64 * wn as f64) / (n as f64 * wn as f64 + s as f64 * ws as f64)
        };
        for (p, n, s) in [
            (10, 2, 2),
            (50, 2, 2),
            (10, 1, 3),
            (90, 1, 3),
            (1, 2, 2),
            (99, 3, 1),
        ] {
            assert!(
                (share(p, n, s) - p as f64).abs() < 1.0,
                "{p}% of {n}+{s}: {}",
                share(p, n, s)
            );
        }
        assert_eq!(split_weights(100, 2, 2), (100, 0));
        assert_eq!(split_weights(10, 2, 0), (100, 0));
        assert_eq!(split_weights(0, 2, 2), (0, 100));
    }
}
