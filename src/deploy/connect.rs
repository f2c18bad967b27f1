//! Where a deploy's runtime and router are chosen, as `publish::channels()` chooses channels:
//! the one place that names the implementations. A new runtime or router is a file behind its
//! trait plus one line here.

use std::sync::Arc;

use super::error::DeployError;
use super::plan::DeployPlan;
use super::router::{Router, haproxy::Haproxy};
use super::runtime::{Runtime, docker::Engine};

/// The runtime `plan` deploys to.
pub async fn runtime(plan: &DeployPlan) -> Result<Arc<dyn Runtime>, DeployError> {
    Ok(Arc::new(Engine::connect(plan.docker.as_deref()).await?))
}

/// The router `plan` routes through.
pub fn router(plan: &DeployPlan) -> Arc<dyn Router> {
    Arc::new(Haproxy::new(plan.router.clone()))
}
