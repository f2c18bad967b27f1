//! Where a deploy's runtime and router are chosen, as `publish::channels()` chooses channels:
//! the one place that names the implementations. A new runtime or router is a file behind its
//! trait plus one line here.

use std::sync::Arc;

use super::error::DeployError;
use super::plan::DeployPlan;
use super::router::{Router, haproxy::Haproxy};
use super::runtime::{Runtime, docker::Engine, systemd::Systemd};

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
            "systemd" => systemd(plan, host).map(|h| Arc::new(h) as Arc<dyn Runtime>),
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
pub fn router(plan: &DeployPlan) -> Result<Arc<dyn Router>, DeployError> {
    let refused = |e: crate::invalid::Invalid| DeployError::Refused(format!("router: {e}"));
    match plan.router.as_str() {
        "haproxy" => Ok(Arc::new(
            Haproxy::from_options(&plan.router_options).map_err(refused)?,
        )),
        other => Err(DeployError::Refused(format!("unknown router `{other}`"))),
    }
}

/// The systemd runtime on `host`, from the plan's `[deploy.<env>.systemd]` table.
fn systemd(plan: &DeployPlan, host: &str) -> Result<Systemd, DeployError> {
    let options = match &plan.runtime_options {
        serde_json::Value::Null => Default::default(),
        table => serde_json::from_value(table.clone())
            .map_err(|e| DeployError::Refused(format!("[deploy.{}.systemd]: {e}", plan.env)))?,
    };
    Ok(Systemd::new(
        host,
        &plan.app,
        &options,
        &plan.base,
        plan.archives.clone(),
        plan.signed.clone(),
    )?)
}

/// What `shipit deploy --init` prints: the router's starter configuration, then the unit
/// template of each systemd environment (of `env`, or of every one).
pub fn starter(loaded: &crate::config::Loaded, env: Option<&str>) -> String {
    let mut text = super::router::haproxy::starter_config(loaded, env);
    let app = loaded.file.project.name.as_deref().unwrap_or("app");
    for (name, config) in &loaded.file.deploy {
        if env.is_some_and(|e| e != name) || config.runtime.as_deref() != Some("systemd") {
            continue;
        }
        let options = loaded
            .runtime_table(name, "systemd")
            .ok()
            .flatten()
            .unwrap_or_default();
        text.push('\n');
        text.push_str(&super::runtime::systemd::unit::template(app, &options));
    }
    text
}
