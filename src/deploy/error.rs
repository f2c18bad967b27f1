//! Why a deploy, a status or a rollback could not be done: typed where the cause is the
//! runtime, the router or the engine connection, so callers and reports keep the chain.

use super::prometheus::PrometheusError;
use super::router::RouterError;
use super::runtime::RuntimeError;
use crate::oci::engine::EngineError;

/// Why a deploy could not go on.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The runtime (where revisions run) failed to do something.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The router refused a command or could not be reached.
    #[error(transparent)]
    Router(#[from] RouterError),
    /// No engine answers where the environment runs.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The Prometheus query of the analysis failed.
    #[error(transparent)]
    Prometheus(#[from] PrometheusError),
    /// A step of the deploy failed because of the error under it.
    #[error("{step}")]
    Step {
        /// The step, e.g. `cannot read the state after the rollout`.
        step: String,
        /// Why.
        #[source]
        source: Box<DeployError>,
    },
    /// What the deploy refuses or cannot do by its own rules: the lock is held, there is no
    /// revision to return to, a health check never passed.
    #[error("{0}")]
    Refused(String),
}

impl DeployError {
    /// This error as the cause of a failed `step`.
    pub fn during(self, step: impl Into<String>) -> DeployError {
        DeployError::Step {
            step: step.into(),
            source: Box::new(self),
        }
    }
}

impl DeployError {
    /// The message with every cause after it, on one line (for records and warnings).
    pub fn chain(&self) -> String {
        crate::error::chain(self)
    }
}

/// The preflight refusal: which of `total` hosts cannot take the deploy (address, why).
pub fn preflight(failed: &[(String, String)], total: usize) -> DeployError {
    let reasons: Vec<String> = failed
        .iter()
        .map(|(h, why)| format!("{h}: {why}"))
        .collect();
    DeployError::Refused(format!(
        "preflight: {} of {total} host(s) cannot take the deploy, nothing was changed: {}",
        failed.len(),
        reasons.join("; ")
    ))
}

impl From<&str> for DeployError {
    fn from(message: &str) -> Self {
        DeployError::Refused(message.to_string())
    }
}

impl From<String> for DeployError {
    fn from(message: String) -> Self {
        DeployError::Refused(message)
    }
}
