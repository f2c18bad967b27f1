//! Where revisions run: the seam a deploy target implements (containers started and removed by
//! name and label, the environment's lock, the record of every attempt). Docker, through its
//! engine API, is the first; [`connect`] is where a runtime is chosen.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::LocalBoxFuture;

use super::engine::{Container, ContainerSpec, Engine, Holder, Record};
use super::plan::DeployPlan;

/// A place that runs an environment's containers and keeps its records.
pub trait Runtime {
    /// Where it is, for messages.
    fn address(&self) -> &str;

    /// Makes `image` present (pulling it with `credentials` when needed).
    fn ensure_image<'a>(
        &'a self,
        image: &'a str,
        credentials: Option<(String, String)>,
    ) -> LocalBoxFuture<'a, Result<(), String>>;

    /// Starts a container.
    fn start<'a>(
        &'a self,
        spec: &'a ContainerSpec,
    ) -> LocalBoxFuture<'a, Result<Container, String>>;

    /// The environment's containers.
    fn containers<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<Container>, String>>;

    /// Stops and removes a container (one already gone is fine).
    fn remove<'a>(&'a self, name: &'a str) -> LocalBoxFuture<'a, Result<(), String>>;

    /// Takes the environment's lock atomically; `Err(holder)` when someone holds it.
    fn lock<'a>(
        &'a self,
        name: &'a str,
        image: &'a str,
        labels: BTreeMap<String, String>,
    ) -> LocalBoxFuture<'a, Result<Result<(), Holder>, String>>;

    /// Removes a stale lock by id; false when it is not that lock any more.
    fn remove_lock<'a>(&'a self, id: &'a str) -> LocalBoxFuture<'a, Result<bool, String>>;

    /// Records a deploy attempt.
    fn add_record<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
        record: &'a Record,
    ) -> LocalBoxFuture<'a, Result<(), String>>;

    /// Every recorded attempt, oldest first.
    fn records<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<Record>, String>>;
}

/// The runtime `plan` deploys to.
pub async fn connect(plan: &DeployPlan) -> Result<Arc<dyn Runtime>, String> {
    Ok(Arc::new(Engine::connect(plan.docker.as_deref()).await?))
}
