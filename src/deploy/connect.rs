//! Where a deploy's runtime and router are chosen, as `publish::channels()` chooses channels:
//! the one place that names the implementations. A new runtime or router is a file behind its
//! trait plus one line here.

use std::sync::Arc;

use super::error::DeployError;
use super::plan::DeployPlan;
use super::router::{Router, haproxy::Haproxy};
use super::runtime::{Runtime, docker::Engine};

/// One runtime per host of `plan`, in the plan's order; every host that cannot be reached
/// is named (the preflight's first half: nothing has changed yet).
pub async fn runtimes(plan: &DeployPlan) -> Result<Vec<Arc<dyn Runtime>>, DeployError> {
    let mut hosts: Vec<Arc<dyn Runtime>> = Vec::new();
    let mut failed = Vec::new();
    for host in &plan.hosts {
        let connected: Result<Arc<dyn Runtime>, DeployError> = match plan.runtime.as_str() {
            "docker" => Engine::connect(Some(host))
                .await
                .map(|e| Arc::new(e) as Arc<dyn Runtime>)
                .map_err(DeployError::from),
            other => Err(DeployError::Refused(format!("unknown runtime `{other}`"))),
        };
        match connected {
            Ok(runtime) => hosts.push(runtime),
            Err(e) => failed.push((host.clone(), e)),
        }
    }
    // One host: its own error, with its causes, says it all.
    if plan.hosts.len() == 1
        && let Some((_, e)) = failed.pop()
    {
        return Err(e);
    }
    if !failed.is_empty() {
        let failed: Vec<(String, String)> =
            failed.into_iter().map(|(h, e)| (h, e.chain())).collect();
        return Err(super::error::preflight(&failed, plan.hosts.len()));
    }
    Ok(hosts)
}

/// The router `plan` routes through.
pub fn router(plan: &DeployPlan) -> Arc<dyn Router> {
    Arc::new(Haproxy::new(plan.router.clone()))
}
