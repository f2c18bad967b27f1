//! Undoing a rollout that cannot go on: the same best-effort steps for a failed health check,
//! a rollback, an error half-way and an interrupt. All or nothing across hosts: the old
//! containers a rolling update already stopped start again before the new ones leave.

use super::*;

impl Deployer<'_> {
    /// Says what an undo could not do, if anything.
    pub(super) fn report_unwind(&self, problems: Vec<String>) {
        if !problems.is_empty() {
            self.tell(
                Level::Warn,
                format!("the undo could not: {}", problems.join("; ")),
            );
        }
    }

    /// The preview emptied, the stopped old containers started and healthy again, traffic
    /// back to the old revision at once, the new containers drained and removed: every step
    /// tried whatever fails before it. Returns what failed.
    pub(super) async fn unwind(&self, plan: &DeployPlan, moved: &Moved) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = self.preview(plan, &moved.fresh, false).await {
            problems.push(format!("empty the preview backend ({e})"));
        }
        let backend = &self.plan.backend;
        let mut restored = 0;
        for old in &moved.retired {
            match self.restore(old).await {
                Ok(()) => restored += 1,
                Err(e) => problems.push(format!("start {} again ({})", old.name, e.chain())),
            }
        }
        for old in &moved.stable {
            if let Err(e) = self.router.set_weight(backend, &old.name, FULL).await {
                problems.push(format!("route all traffic to {} ({e})", old.name));
            }
        }
        let instances = moved.stable.len() + moved.retired.len() + moved.fresh.len();
        for old in &moved.reloaded {
            match self.reload_back(old, instances > 1).await {
                Ok(()) => restored += 1,
                Err(e) => problems.push(format!("reload {} back ({})", old.name, e.chain())),
            }
        }
        let swapped = |f: &&Fresh| moved.reloaded.iter().any(|r| r.name == f.container.name);
        for f in moved.fresh.iter().filter(|f| !swapped(f)) {
            if let Err(e) = self.retire_server(&f.container.name).await {
                problems.push(format!("take {} off the router ({e})", f.container.name));
            }
            let removed = match self.fleet.on(&f.container.host) {
                Ok(host) => host.remove(&f.container.name).await,
                Err(e) => Err(e),
            };
            match removed {
                Ok(()) => self.step(&f.container.host, format!("removed {}", f.container.name)),
                Err(e) => problems.push(format!("remove {} ({e})", f.container.name)),
            }
        }
        let old = moved
            .stable
            .first()
            .or(moved.retired.first())
            .or(moved.reloaded.first());
        let removed = moved.fresh.len().saturating_sub(moved.reloaded.len());
        self.say(format!(
            "{removed} new container{} removed{}; {}",
            if removed == 1 { "" } else { "s" },
            if restored > 0 {
                format!(", {restored} old one(s) back on their release")
            } else {
                String::new()
            },
            match old {
                None => "no earlier revision was serving".to_string(),
                Some(old) => format!("revision {} serves all traffic", old.revision),
            }
        ));
        problems
    }

    /// Starts a stopped old container again and gives it its full share once healthy.
    async fn restore(&self, old: &Container) -> Result<(), DeployError> {
        let container = self.fleet.on(&old.host)?.restart(&old.name).await?;
        let address = container
            .address
            .clone()
            .ok_or_else(|| format!("{} restarted without a published port", old.name))?;
        let backend = &self.plan.backend;
        self.router
            .add_server(backend, &old.name, &address, 0)
            .await?;
        self.await_back(&old.name, &address).await?;
        self.step(
            &old.host,
            format!("started {} (revision {}) again", old.name, old.revision),
        );
        Ok(())
    }

    /// Sends an instance a reload swapped back to its old release (taken out of the rotation
    /// first unless it is the only one), and gives it its full share once healthy.
    async fn reload_back(&self, old: &Container, others_serve: bool) -> Result<(), DeployError> {
        if others_serve {
            self.quiesce(&old.name).await?;
        }
        let container = self
            .fleet
            .on(&old.host)?
            .reload(&old.name, &old.image, old.revision)
            .await?;
        let address = container
            .address
            .clone()
            .ok_or_else(|| format!("{} reloaded without a published port", old.name))?;
        self.await_back(&old.name, &address).await?;
        self.step(
            &old.host,
            format!(
                "reloaded {} back on {} (revision {})",
                old.name, old.version, old.revision
            ),
        );
        Ok(())
    }

    /// Waits until the old instance at `address` is healthy, then gives it its full share.
    async fn await_back(&self, name: &str, address: &str) -> Result<(), DeployError> {
        let mut tracker = Tracker::new(&self.plan.health);
        let deadline = self.clock.now() + self.plan.health.deadline;
        loop {
            match tracker.record(health::probe(&self.http, address, &self.plan.health).await) {
                Health::Healthy => break,
                Health::Unhealthy(why) => return Err(why.into()),
                Health::Pending if self.clock.now() >= deadline => {
                    return Err(format!(
                        "not healthy within {}",
                        humantime::format_duration(self.plan.health.deadline)
                    )
                    .into());
                }
                Health::Pending => self.clock.sleep(self.plan.health.interval).await,
            }
        }
        self.router
            .set_weight(&self.plan.backend, name, FULL)
            .await?;
        Ok(())
    }
}
