//! `shipit rollback`: back to an earlier revision, by rerouting to its containers when they
//! still run and are healthy, else by deploying its version again.

use super::error::DeployError;
use super::health;
use super::run::Deployer;
use super::runtime::{Container, Record};
use super::state::{FULL, Outcome, State};
use super::who::{now_rfc3339, who};

impl Deployer<'_> {
    /// Returns to revision `to` (default: the one before the revision serving), with every
    /// other container drained and removed. Keeps serving containers of `to` when it has
    /// them; otherwise deploys its version again as a new revision.
    pub async fn rollback(&self, to: Option<u64>) -> Result<(Outcome, State), DeployError> {
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
        self.preflight(&image).await?;
        let lock = self.lock().await?;
        let began = self.begin_measure().await;
        let result = self.rollback_locked(&state, target.clone(), serving).await;
        if let Ok((outcome, _)) = &result {
            self.publish_metrics(outcome, began).await;
        }
        self.unlock(lock).await?;
        result
    }

    async fn rollback_locked(
        &self,
        state: &State,
        target: Record,
        serving: Vec<Container>,
    ) -> Result<(Outcome, State), DeployError> {
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
                    .await?;
                self.router.ready(&self.plan.backend, &c.name).await?;
            }
            for c in state
                .containers
                .iter()
                .filter(|c| !healthy.iter().any(|h| h.name == c.name))
            {
                if state.server(&c.name).is_some() {
                    self.retire_server(&c.name).await?;
                }
                self.fleet.remove(c).await?;
                self.step(
                    &c.host,
                    format!("removed {} (revision {})", c.name, c.revision),
                );
            }
            let failed = self
                .fleet
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
                        steps: self.steps(),
                    },
                )
                .await;
            if let Some(e) = failed.into_iter().next() {
                return Err(e.into());
            }
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
            self.fleet.remove(c).await?;
        }
        self.remove_strays(state, &serving).await?;
        let plan = self.plan.for_rollback(&target.version, &target.image);
        let rollback = Deployer {
            plan: &plan,
            fleet: self.fleet.clone(),
            router: self.router.clone(),
            http: self.http.clone(),
            reporter: self.reporter,
            cancel: self.cancel.clone(),
            clock: self.clock.clone(),
            journal: Default::default(),
            detection: Default::default(),
        };
        let revision = state.last_revision() + 1;
        let started = now_rfc3339();
        let outcome = rollback.roll_out(&plan, revision, keep).await;
        if let Ok(mut journal) = self.journal.lock() {
            journal.extend(rollback.steps());
        }
        let detail = format!("rollback to revision {}", target.revision);
        if let Err(e) = self
            .record(&plan, revision, newest, started, &outcome, Some(detail))
            .await
        {
            self.tell(
                crate::events::Level::Warn,
                format!(
                    "cannot record revision {revision}'s outcome in the engine: {}",
                    e.chain()
                ),
            );
        }
        Ok((outcome, self.state().await?))
    }
}
