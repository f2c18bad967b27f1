//! Where revisions run: the seam a deploy target implements (containers started and removed by
//! name and label, the environment's lock, the record of every attempt). Docker, through its
//! engine API, is the first; [`connect`] is where a runtime is chosen.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::LocalBoxFuture;

use super::engine::{Container, ContainerSpec, Engine, Holder, Record};
use super::error::DeployError;
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
    ) -> LocalBoxFuture<'a, Result<(), RuntimeError>>;

    /// Starts a container.
    fn start<'a>(
        &'a self,
        spec: &'a ContainerSpec,
    ) -> LocalBoxFuture<'a, Result<Container, RuntimeError>>;

    /// The environment's containers.
    fn containers<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<Container>, RuntimeError>>;

    /// Stops and removes a container (one already gone is fine).
    fn remove<'a>(&'a self, name: &'a str) -> LocalBoxFuture<'a, Result<(), RuntimeError>>;

    /// Takes the environment's lock atomically; `Err(holder)` when someone holds it.
    fn lock<'a>(
        &'a self,
        name: &'a str,
        image: &'a str,
        labels: BTreeMap<String, String>,
    ) -> LocalBoxFuture<'a, Result<Result<(), Holder>, RuntimeError>>;

    /// Removes a stale lock by id; false when it is not that lock any more.
    fn remove_lock<'a>(&'a self, id: &'a str) -> LocalBoxFuture<'a, Result<bool, RuntimeError>>;

    /// Records a deploy attempt.
    fn add_record<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
        record: &'a Record,
    ) -> LocalBoxFuture<'a, Result<(), RuntimeError>>;

    /// Every recorded attempt, oldest first.
    fn records<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<Record>, RuntimeError>>;
}

/// What a runtime could not do, with the error underneath.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} on {address}")]
pub struct RuntimeError {
    /// What was being done, e.g. `start demo-production-r3-1`.
    pub action: String,
    /// The runtime's address.
    pub address: String,
    /// Why.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl RuntimeError {
    /// `action` failed on the runtime at `address` because of `source`.
    pub fn new(
        action: impl Into<String>,
        address: &str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> RuntimeError {
        RuntimeError {
            action: action.into(),
            address: address.to_string(),
            source: Box::new(source),
        }
    }
}

/// The runtime `plan` deploys to.
pub async fn connect(plan: &DeployPlan) -> Result<Arc<dyn Runtime>, DeployError> {
    Ok(Arc::new(Engine::connect(plan.docker.as_deref()).await?))
}
