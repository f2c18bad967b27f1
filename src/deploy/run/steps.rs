//! The rollout's single steps on the fleet and the router: starting and health-checking new
//! instances, routing, the preview, analysis samples, and retiring old instances.

use super::*;

impl Deployer<'_> {
    /// Adds the new containers to the preview backend (`show`), or takes them off it.
    pub(super) async fn preview(
        &self,
        plan: &DeployPlan,
        fresh: &[Fresh],
        show: bool,
    ) -> Result<(), DeployError> {
        let Some(preview) = &plan.preview else {
            return Ok(());
        };
        let on_it = self.router.servers(&preview.backend).await?;
        for f in fresh {
            let name = &f.container.name;
            let present = on_it.iter().any(|s| s.name == *name);
            if show && !present {
                let address = f.container.address.clone().unwrap_or_default();
                self.router
                    .add_server(&preview.backend, name, &address, FULL)
                    .await?;
            } else if !show && present {
                self.retire_server_of(&preview.backend, name).await?;
            }
        }
        Ok(())
    }

    /// Sleeps, waking early on Ctrl-C.
    pub(super) async fn pause(&self, duration: Duration) {
        tokio::select! {
            _ = self.clock.sleep(duration) => {}
            _ = self.cancel.cancelled() => {}
        }
    }

    /// Starts container `n` of `revision` and registers it with the router at weight 0.
    pub(super) async fn start(
        &self,
        plan: &DeployPlan,
        revision: u64,
        n: usize,
    ) -> Result<Fresh, DeployError> {
        let name = format!("{}-{}-r{revision}-{n}", plan.app, plan.env);
        let host = self.fleet.place(n, plan.replicas);
        let started = self.start_named(plan, revision, &name, host).await;
        if started.is_err() {
            // Not in `fresh` yet, so the undo would not see it: removed here.
            let _ = host.remove(&name).await;
        }
        started
    }

    pub(super) async fn start_named(
        &self,
        plan: &DeployPlan,
        revision: u64,
        name: &str,
        host: &dyn runtime::Runtime,
    ) -> Result<Fresh, DeployError> {
        let name = name.to_string();
        let labels = BTreeMap::from([
            (runtime::APP.to_string(), plan.app.clone()),
            (runtime::ENV.into(), plan.env.clone()),
            (runtime::KIND.into(), "service".into()),
            (runtime::REVISION.into(), revision.to_string()),
            (runtime::VERSION.into(), plan.version.clone()),
            (runtime::IMAGE.into(), plan.image.clone()),
            (runtime::COLOR.into(), runtime::color(revision).into()),
        ]);
        let container = host
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
            .await?;
        self.step(&container.host, format!("started {name} at {address}"));
        Ok(Fresh {
            container,
            tracker: Tracker::new(&plan.health),
            healthy: false,
            before: Counters::default(),
        })
    }

    /// Swaps `count` stable instances to the new version in place. While another instance
    /// serves, each is taken out of the rotation and left idle first, so a service whose
    /// reload drops connections loses none.
    pub(super) async fn reload(
        &self,
        plan: &DeployPlan,
        revision: u64,
        count: usize,
        moved: &mut Moved,
    ) -> Result<(), DeployError> {
        let n = count.min(moved.stable.len());
        let batch: Vec<Container> = moved.stable.drain(..n).collect();
        moved.reloaded.extend(batch.iter().cloned());
        let others_serve = !moved.stable.is_empty() || !moved.fresh.is_empty();
        if others_serve {
            for old in &batch {
                self.quiesce(&old.name).await?;
            }
        }
        for old in &batch {
            let before = self.server_counters(&old.name).await?;
            let container = self
                .fleet
                .on(&old.host)?
                .reload(&old.name, &plan.image, revision)
                .await?;
            self.step(
                &old.host,
                format!(
                    "reloaded {} on {} (revision {revision})",
                    old.name, plan.version
                ),
            );
            moved.fresh.push(Fresh {
                container,
                tracker: Tracker::new(&plan.health),
                healthy: false,
                before,
            });
        }
        Ok(())
    }

    /// Takes a server of the managed backend out of the rotation and waits until it is idle
    /// (or `drain_timeout` passed); it stays registered.
    pub(super) async fn quiesce(&self, name: &str) -> Result<(), DeployError> {
        let backend = &self.plan.backend;
        self.router.set_weight(backend, name, 0).await?;
        self.await_idle(backend, name).await
    }

    /// One server's counters now.
    async fn server_counters(&self, name: &str) -> Result<Counters, DeployError> {
        let stats = self.router.stats(&self.plan.backend).await?;
        Ok(stats
            .iter()
            .find(|s| s.name == name)
            .map(|s| Counters {
                responses: s.responses,
                errors: s.errors_5xx + s.connection_errors,
                response_ms: 0,
            })
            .unwrap_or_default())
    }

    /// One round of health checks of the new containers not yet healthy.
    pub(super) async fn check_health(&self, fresh: &mut [Fresh]) -> Event {
        for f in fresh.iter_mut().filter(|f| !f.healthy) {
            let address = f.container.address.clone().unwrap_or_default();
            match f
                .tracker
                .record(health::probe(&self.http, &address, &self.plan.health).await)
            {
                Health::Healthy => {
                    f.healthy = true;
                    self.step(
                        &f.container.host,
                        format!("{} is healthy", f.container.name),
                    );
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
    pub(super) async fn route(
        &self,
        traffic: Traffic,
        stable: &[Container],
        fresh: &[Fresh],
    ) -> Result<(), DeployError> {
        let backend = &self.plan.backend;
        let (w_new, w_stable) = match traffic {
            Traffic::Percent(p) => split_weights(p, fresh.len(), stable.len()),
            Traffic::Even => (FULL, FULL),
        };
        for f in fresh {
            self.router
                .set_weight(backend, &f.container.name, w_new)
                .await?;
        }
        for old in stable {
            self.router.set_weight(backend, &old.name, w_stable).await?;
        }
        self.say(match traffic {
            Traffic::Percent(p) => format!("routing {p}% of requests to the new revision"),
            Traffic::Even => "new containers take their share of requests".to_string(),
        });
        Ok(())
    }

    /// The new servers' counters, summed.
    pub(super) async fn counters(&self, fresh: &[Fresh]) -> Result<Counters, DeployError> {
        let stats = self.router.stats(&self.plan.backend).await?;
        let mut total = Counters::default();
        let mut weighted_ms = 0;
        for f in fresh {
            let Some(s) = stats.iter().find(|s| s.name == f.container.name) else {
                continue;
            };
            total.responses += s.responses.saturating_sub(f.before.responses);
            total.errors += (s.errors_5xx + s.connection_errors).saturating_sub(f.before.errors);
            weighted_ms = weighted_ms.max(s.response_ms);
        }
        total.response_ms = weighted_ms;
        Ok(total)
    }

    /// One analysis sample (and the Prometheus check, when configured).
    pub(super) async fn sample(
        &self,
        analysis: &mut Analysis,
        fresh: &[Fresh],
        revision: u64,
    ) -> Result<Option<String>, DeployError> {
        let verdict = analysis.observe(self.counters(fresh).await?);
        if let Some(sample) = analysis.samples.last() {
            self.reporter.report(&UiEvent::DeploySample {
                revision,
                requests: sample.requests,
                errors: sample.errors,
                response_ms: sample.response_ms,
                failure: sample.failure.as_deref(),
            });
        }
        if let Some(reason) = verdict {
            return Ok(Some(reason));
        }
        if let Some(check) = &self.plan.prometheus {
            let value =
                crate::deploy::prometheus::query(&self.http, check, &self.plan.version, revision)
                    .await?;
            if value > check.max {
                return Ok(Some(format!(
                    "the Prometheus query gave {value} (> {})",
                    check.max
                )));
            }
        }
        Ok(None)
    }

    /// Drains a container's server, waits for its in-flight requests, removes the server
    /// and stops the container: kept until the rollout ends, to return to.
    pub(super) async fn retire(&self, container: &Container) -> Result<(), DeployError> {
        self.retire_server(&container.name).await?;
        self.fleet
            .on(&container.host)?
            .stop(&container.name)
            .await?;
        self.step(
            &container.host,
            format!(
                "stopped {} (revision {})",
                container.name, container.revision
            ),
        );
        Ok(())
    }

    /// Waits until `name` on `backend` has no request in flight; at `drain_timeout` its
    /// sessions are closed.
    async fn await_idle(&self, backend: &str, name: &str) -> Result<(), DeployError> {
        let deadline = self.clock.now() + self.plan.drain_timeout;
        loop {
            let stats = self.router.stats(backend).await?;
            let busy = stats
                .iter()
                .find(|s| s.name == name)
                .map_or(0, |s| s.current);
            if busy == 0 {
                return Ok(());
            }
            if self.clock.now() >= deadline {
                self.tell(
                    Level::Warn,
                    format!(
                        "{name} still has {busy} requests after the drain timeout; closing them"
                    ),
                );
                let _ = self.router.close_sessions(backend, name).await;
                return Ok(());
            }
            self.clock.sleep(Duration::from_millis(100)).await;
        }
    }

    /// Drains a server of the managed backend and deletes it once idle.
    pub(in crate::deploy) async fn retire_server(&self, name: &str) -> Result<(), DeployError> {
        self.retire_server_of(&self.plan.backend, name).await
    }

    /// Drains a server and deletes it from `backend` once idle (or at `drain_timeout`).
    pub(in crate::deploy) async fn retire_server_of(
        &self,
        backend: &str,
        name: &str,
    ) -> Result<(), DeployError> {
        let err = |e: crate::deploy::router::RouterError| e.to_string();
        self.router
            .set_weight(backend, name, 0)
            .await
            .map_err(err)?;
        self.router.drain(backend, name).await.map_err(err)?;
        self.await_idle(backend, name).await?;
        let mut attempts = 0;
        loop {
            match self.router.remove_server(backend, name).await {
                Ok(()) => return Ok(()),
                Err(e) if attempts < 20 => {
                    attempts += 1;
                    tracing::debug!("{e}; retrying");
                    self.clock.sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
