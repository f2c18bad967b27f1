//! Runs a deploy: reads the live state from the engine and the router, takes the
//! environment's lock, and walks the plan's [`Rollout`](super::strategy::Rollout) by performing each action it asks for
//! and reporting back. Rolls back by itself on failed health, failed analysis or a passed
//! deadline: traffic returns to the stable containers (never scaled down before the new ones
//! proved themselves) and the new ones are drained and removed.

mod hooks;
mod measure;
mod steps;
mod unwind;

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::analysis::{Analysis, Counters};
use super::clock::Clock;
use std::sync::Arc;

use super::error::DeployError;
use super::fleet::Fleet;
use super::health::{self, Health, Tracker};
use super::plan::DeployPlan;
use super::router::{Router, Server};
use super::runtime::{self, Container, ContainerSpec, Record, Step};
use super::state::{FULL, Outcome, ServerView, State, split_weights};
use super::strategy::{Action, Event, Phase, Traffic};
use super::who::{now_rfc3339, who};
use crate::events::{Event as UiEvent, Level, Reporter};

/// What a rollout has moved so far, for its undo.
struct Moved {
    /// Old containers still serving.
    stable: Vec<Container>,
    /// Old containers stopped on the way (a rolling update's earlier batches), started
    /// again by the undo so every host returns; removed once the rollout is promoted.
    retired: Vec<Container>,
    /// New containers (reloaded ones too, under their old names).
    fresh: Vec<Fresh>,
    /// Old instances as they were before a reload swapped them in place (listed before the
    /// swap, so the undo sends back even one whose reload failed half-way).
    reloaded: Vec<Container>,
}

/// A new container during a rollout.
struct Fresh {
    container: Container,
    tracker: Tracker,
    healthy: bool,
    /// Its server's counters when it joined the new revision (a reloaded instance's earlier
    /// requests were the old version's): the analysis counts from here.
    before: Counters,
}

/// Drives deploys of one environment.
pub struct Deployer<'a> {
    pub(super) plan: &'a DeployPlan,
    pub(super) fleet: std::rc::Rc<Fleet>,
    pub(super) router: Arc<dyn Router>,
    pub(super) http: reqwest::Client,
    pub(super) reporter: &'a dyn Reporter,
    pub(super) cancel: CancellationToken,
    pub(super) clock: Arc<dyn Clock>,
    /// What this run did on each host, for its record.
    pub(super) journal: std::sync::Mutex<Vec<Step>>,
    /// From the new version's first routed request to the rollback decision, when rolled back.
    pub(super) detection: std::sync::Mutex<Option<Duration>>,
}

impl<'a> Deployer<'a> {
    /// Connects to the engine and the router, and checks the backend exists. Time is read
    /// and waited on through `clock`.
    pub async fn connect(
        plan: &'a DeployPlan,
        reporter: &'a dyn Reporter,
        cancel: CancellationToken,
        clock: Arc<dyn Clock>,
    ) -> Result<Deployer<'a>, DeployError> {
        let fleet = std::rc::Rc::new(Fleet::new(super::connect::runtimes(plan).await?));
        let router = super::connect::router(plan)?;
        router.servers(&plan.backend).await?;
        // Every request has an end: health probes set their own shorter timeout, the
        // Prometheus check uses these.
        let http = crate::http::builder()
            .pool_max_idle_per_host(0)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| DeployError::Refused(format!("cannot make an HTTP client: {e}")))?;
        Ok(Deployer {
            plan,
            fleet,
            router,
            http,
            reporter,
            cancel,
            clock,
            journal: Default::default(),
            detection: Default::default(),
        })
    }

    /// Says what was done on `host`, and keeps it for the record.
    pub(super) fn step(&self, host: &str, did: String) {
        self.say(format!("{did} on {host}"));
        if let Ok(mut journal) = self.journal.lock() {
            journal.push(Step {
                host: host.to_string(),
                did,
            });
        }
    }

    /// The steps kept so far.
    pub(super) fn steps(&self) -> Vec<Step> {
        self.journal.lock().map(|j| j.clone()).unwrap_or_default()
    }

    pub(super) fn say(&self, text: String) {
        self.tell(Level::Info, text)
    }

    /// A line at `level`.
    pub(super) fn tell(&self, level: Level, text: String) {
        self.reporter
            .report(&UiEvent::Message { level, text: &text });
    }

    /// Reads the environment's containers, servers and records.
    pub async fn state(&self) -> Result<State, DeployError> {
        let plan = self.plan;
        let containers = self.fleet.containers(&plan.app, &plan.env).await?;
        let servers: Vec<Server> = self.router.servers(&plan.backend).await?;
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
        let records = self.fleet.records(&plan.app, &plan.env).await?;
        Ok(State {
            containers,
            servers,
            records,
        })
    }

    /// Every host reached and checked, and `image` present on each, before anything changes:
    /// one that cannot take the deploy stops it, named with the reason.
    pub async fn preflight(&self, image: &str) -> Result<(), DeployError> {
        let failed = self.fleet.preflight().await;
        if !failed.is_empty() {
            let failed: Vec<(String, String)> = failed
                .iter()
                .map(|e| (e.address.clone(), crate::error::chain(e)))
                .collect();
            return Err(super::error::preflight(&failed, self.fleet.hosts().len()));
        }
        self.pull(image).await
    }

    /// Pulls the plan's image (with the registry credentials shipit would push with).
    pub async fn pull(&self, image: &str) -> Result<(), DeployError> {
        let credentials = crate::oci::reference::Reference::parse(image)
            .ok()
            .and_then(|r| crate::oci::auth::resolve(&r.registry, None).ok().flatten())
            .map(|c| (c.username, c.secret));
        Ok(self.fleet.ensure_image(image, credentials).await?)
    }

    /// Deploys the plan's version; `Err` only when the deploy could not run at all.
    pub async fn deploy(&self) -> Result<(Outcome, State), DeployError> {
        let plan = self.plan;
        self.preflight(&plan.image).await?;
        let lock = self.lock().await?;
        let began = self.begin_measure().await;
        let result = self.deploy_locked(plan).await;
        if let Ok((outcome, _)) = &result {
            self.publish_metrics(outcome, began).await;
        }
        // The outcome stands whatever happens to the lock; a lock left behind is named.
        if let Err(e) = self.unlock(lock).await {
            self.tell(
                Level::Warn,
                format!(
                    "cannot release the deploy lock ({}); the next deploy will name it",
                    e.chain()
                ),
            );
        }
        result
    }

    async fn deploy_locked(&self, plan: &DeployPlan) -> Result<(Outcome, State), DeployError> {
        let state = self.state().await?;
        let serving: Vec<Container> = state.serving().into_iter().cloned().collect();
        let mut revisions: Vec<u64> = serving.iter().map(|c| c.revision).collect();
        revisions.dedup();
        if revisions.len() > 1 {
            return Err(DeployError::Refused(format!(
                "revisions {revisions:?} are both serving (an interrupted rollout?): run `shipit rollback --env {}` first",
                plan.env
            )));
        }
        self.remove_strays(&state, &serving).await?;
        self.clear_operator().await?;
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
        let outcome = self.roll_out(plan, revision, serving).await;
        if let Err(e) = self
            .record(plan, revision, from, started, &outcome, None)
            .await
        {
            self.tell(
                Level::Warn,
                format!(
                    "cannot record revision {revision}'s outcome in the engine: {}",
                    e.chain()
                ),
            );
        }
        // The outcome stands even when the state cannot be read back any more.
        let state = self.state().await.unwrap_or_else(|e| {
            self.tell(
                Level::Warn,
                format!("cannot read the state after the rollout: {}", e.chain()),
            );
            State::default()
        });
        Ok((outcome, state))
    }

    /// Records how the attempt at `revision` ended (in the engine, for status and rollback).
    pub(super) async fn record(
        &self,
        plan: &DeployPlan,
        revision: u64,
        from: Option<u64>,
        started: String,
        outcome: &Outcome,
        detail: Option<String>,
    ) -> Result<(), DeployError> {
        let (label, reason) = match outcome {
            Outcome::Promoted { .. } => ("promoted", String::new()),
            Outcome::RolledBack { reason, .. } => ("rolled-back", reason.clone()),
            Outcome::Interrupted { .. } => ("interrupted", String::new()),
            Outcome::Failed { reason, .. } => ("failed", reason.clone()),
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
            steps: self.steps(),
        };
        let failed = self.fleet.add_record(&plan.app, &plan.env, &record).await;
        if failed.len() == self.fleet.hosts().len() {
            return Err(failed.into_iter().next().map_or_else(
                || DeployError::Refused("no host to record on".into()),
                DeployError::from,
            ));
        }
        for e in failed {
            self.tell(
                Level::Warn,
                format!(
                    "cannot record revision {revision} on {}: {}",
                    e.address,
                    crate::error::chain(&e)
                ),
            );
        }
        Ok(())
    }

    /// Removes containers that serve nothing (left by a killed run) and servers whose
    /// container is gone.
    pub(super) async fn remove_strays(
        &self,
        state: &State,
        serving: &[Container],
    ) -> Result<(), DeployError> {
        for container in &state.containers {
            if !serving.iter().any(|s| s.name == container.name) {
                self.say(format!(
                    "removing {} (revision {}, not serving)",
                    container.name, container.revision
                ));
                if state.server(&container.name).is_some() {
                    self.retire_server(&container.name).await?;
                }
                self.fleet.remove(container).await?;
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

    /// Walks the rollout for `revision` with `stable` serving. Never leaves it half-done: an
    /// engine, router or analysis error on the way undoes it as a failed check would (going on
    /// past the undo's own errors) and ends as [`Outcome::Failed`].
    pub(super) async fn roll_out(
        &self,
        plan: &DeployPlan,
        revision: u64,
        stable: Vec<Container>,
    ) -> Outcome {
        let mut done = Moved {
            stable,
            retired: Vec::new(),
            fresh: Vec::new(),
            reloaded: Vec::new(),
        };
        match self.walk(plan, revision, &mut done).await {
            Ok(outcome) => outcome,
            Err(error) => {
                let error = error.chain();
                self.tell(
                    Level::Error,
                    format!("revision {revision} failed half-way: {error}; undoing it"),
                );
                let problems = self.unwind(plan, &done).await;
                let reason = if problems.is_empty() {
                    error
                } else {
                    format!("{error}; the undo could not: {}", problems.join("; "))
                };
                Outcome::Failed { revision, reason }
            }
        }
    }

    /// The rollout's steps; `moved` always says what runs and what was stopped, for the undo.
    async fn walk(
        &self,
        plan: &DeployPlan,
        revision: u64,
        moved: &mut Moved,
    ) -> Result<Outcome, DeployError> {
        if moved.stable.is_empty() {
            self.say("nothing serves yet: starting, checking health and routing at once".into());
        }
        let mut rollout = plan.rollout(moved.stable.is_empty());
        let mut analysis = Analysis::new(plan.analysis.clone());
        let mut next_sample = self.clock.now();
        let mut routed = false;
        let mut routed_at = None;
        let mut phase: Option<Phase> = None;
        let mut action = rollout.advance(Event::Begin, self.clock.now());
        loop {
            if self.cancel.is_cancelled() {
                self.report_unwind(self.unwind(plan, moved).await);
                return Ok(Outcome::Interrupted { revision });
            }
            let event = match action {
                Action::Perform(ref p) => {
                    phase = Some(p.clone());
                    self.reporter.report(&UiEvent::DeployPhase {
                        revision,
                        phase: &p.to_string(),
                    });
                    match p {
                        Phase::StartNew { count } => {
                            for _ in 0..*count {
                                let n = moved.fresh.len() + 1;
                                moved.fresh.push(self.start(plan, revision, n).await?);
                            }
                            Event::Done
                        }
                        Phase::AwaitHealthy => self.check_health(&mut moved.fresh).await,
                        Phase::Route { traffic } => {
                            self.route(*traffic, &moved.stable, &moved.fresh).await?;
                            if !routed {
                                routed = true;
                                routed_at = Some(self.clock.now());
                                analysis = Analysis::new(plan.analysis.clone());
                                analysis.observe(self.counters(&moved.fresh).await?);
                                next_sample = self.clock.now() + plan.analysis_interval;
                            }
                            Event::Done
                        }
                        Phase::Preview { duration } => {
                            self.preview(plan, &moved.fresh, true).await?;
                            self.say(format!(
                                "showing revision {revision} on the preview backend for {}",
                                humantime::format_duration(*duration)
                            ));
                            Event::Done
                        }
                        Phase::Hooks { when } => self.run_hooks(*when, revision).await,
                        Phase::Pause { duration } => {
                            self.say(format!(
                                "pausing {} with the analysis running",
                                humantime::format_duration(*duration)
                            ));
                            Event::Done
                        }
                        Phase::Reload { count } => {
                            self.reload(plan, revision, *count, moved).await?;
                            Event::Done
                        }
                        Phase::RetireStable { count } => {
                            let n = (*count).min(moved.stable.len());
                            for _ in 0..n {
                                // Out of `stable` only once stopped: the undo must see it.
                                self.retire(&moved.stable[0]).await?;
                                moved.retired.push(moved.stable.remove(0));
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
                                .min(until.saturating_duration_since(self.clock.now())),
                        )
                        .await;
                        // A later batch's health wait: the routed ones stay under analysis.
                        let failed = if routed && self.clock.now() >= next_sample {
                            next_sample = self.clock.now() + plan.analysis_interval;
                            self.sample(&mut analysis, &moved.fresh, revision).await?
                        } else {
                            None
                        };
                        match failed {
                            Some(reason) => Event::AnalysisFailed(reason),
                            None => self.check_health(&mut moved.fresh).await,
                        }
                    } else {
                        // At least once a second: the operator's commands are read here.
                        let wake = until.min(self.clock.now() + Duration::from_secs(1));
                        let wake = if routed { wake.min(next_sample) } else { wake };
                        self.pause(wake.saturating_duration_since(self.clock.now()))
                            .await;
                        let sampled = if routed && self.clock.now() >= next_sample {
                            next_sample = self.clock.now() + plan.analysis_interval;
                            self.sample(&mut analysis, &moved.fresh, revision)
                                .await?
                                .map(Event::AnalysisFailed)
                        } else {
                            None
                        };
                        match sampled {
                            Some(failed) => failed,
                            None => self.operator().await?.unwrap_or(Event::Tick),
                        }
                    }
                }
                Action::Promote => {
                    self.preview(plan, &moved.fresh, false).await?;
                    for old in moved.retired.drain(..) {
                        self.fleet.remove(&old).await?;
                        self.step(&old.host, format!("removed {}", old.name));
                    }
                    self.say(format!(
                        "revision {revision} ({}) serves all traffic",
                        plan.version
                    ));
                    return Ok(Outcome::Promoted { revision });
                }
                Action::Rollback { ref reason } => {
                    if let (Some(at), Ok(mut detection)) = (routed_at, self.detection.lock()) {
                        *detection = Some(self.clock.now().saturating_duration_since(at));
                    }
                    self.tell(
                        Level::Warn,
                        format!("rolling back revision {revision}: {reason}"),
                    );
                    for sample in analysis.samples.iter().filter(|s| s.requests > 0) {
                        self.tell(
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
                    self.report_unwind(self.unwind(plan, moved).await);
                    return Ok(Outcome::RolledBack {
                        revision,
                        reason: reason.clone(),
                    });
                }
            };
            action = rollout.advance(event, self.clock.now());
        }
    }
}
