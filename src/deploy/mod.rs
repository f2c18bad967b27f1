//! Deploys: moving a running service to a new image version without dropping requests.
//!
//! Data flows one way: the pipeline's `[deploy.<env>]` becomes a [`plan::DeployPlan`]; its
//! [`strategy::Rollout`] (a pure state machine) says what to do next; [`run::Deployer`] does
//! it on a [`runtime::Runtime`] (the Docker [`runtime::docker`] engine) and a
//! [`router::Router`] (the [`router::haproxy`] runtime API), both chosen in [`connect`], with
//! [`health`] checks and the
//! [`analysis`] of router counters, and leaves [`state`] that status and [`rollback`] read
//! back. The [`lock`] keeps two deploys of one environment apart; [`who`] says who, where and
//! when.

pub mod analysis;
pub mod clock;
pub mod connect;
pub mod dora;
pub mod error;
pub mod fleet;
pub mod health;
pub mod lock;
pub mod metrics;
pub mod operate;
pub mod plan;
pub mod prometheus;
pub mod rollback;
pub mod router;
pub mod run;
pub mod runtime;
pub mod state;
pub mod strategy;
pub mod who;

/// Durations as `1m 30s` in printed plans.
pub(crate) mod durations {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}
