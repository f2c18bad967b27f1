//! Deploys: moving a running service to a new image version without dropping requests.
//!
//! The router ([`haproxy`]) and the rollout strategies ([`strategy`], pure state machines) are
//! the parts every strategy shares.

pub mod analysis;
pub mod engine;
pub mod haproxy;
pub mod health;
pub mod plan;
pub mod prometheus;
pub mod run;
pub mod strategy;

/// Durations as `1m 30s` in printed plans.
pub(crate) mod durations {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}
