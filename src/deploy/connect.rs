//! Where a deploy's runtime and router are chosen, as `publish::channels()` chooses channels:
//! the one place that names the implementations. A new runtime or router is a file behind its
//! trait plus one line here.

use std::sync::Arc;

use super::error::DeployError;
use super::plan::DeployPlan;
use super::router::{Router, haproxy::Haproxy};
use super::runtime::{Runtime, docker::Engine};

/// The runtimes a pipeline may name in `runtime = "..."`.
pub const RUNTIMES: &[&str] = &["docker"];

/// One runtime per host of `plan`, in the plan's order.
pub async fn runtimes(plan: &DeployPlan) -> Result<Vec<Arc<dyn Runtime>>, DeployError> {
    let mut hosts: Vec<Arc<dyn Runtime>> = Vec::new();
    for host in &plan.hosts {
        hosts.push(match plan.runtime.as_str() {
            _ => Arc::new(Engine::connect(Some(host)).await?),
        });
    }
    Ok(hosts)
}

/// The router `plan` routes through.
pub fn router(plan: &DeployPlan) -> Arc<dyn Router> {
    Arc::new(Haproxy::new(plan.router.clone()))
}
