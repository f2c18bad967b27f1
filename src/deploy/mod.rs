//! Deploys: moving a running service to a new image version without dropping requests.
//!
//! The router ([`haproxy`]) and the rollout strategies ([`strategy`], pure state machines) are
//! the parts every strategy shares.

pub mod analysis;
pub mod haproxy;
pub mod strategy;
