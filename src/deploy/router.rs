//! What sends traffic to revisions: the seam a router implements (servers added, weighed,
//! drained and removed in a backend, and their counters). HAProxy, through its runtime API, is
//! the first; [`connect`] is where a router is chosen.

use std::sync::Arc;

use futures_util::future::LocalBoxFuture;

use super::haproxy::{Haproxy, RouterError, Server, Stats};
use super::plan::DeployPlan;

/// A router with backends of weighted servers.
pub trait Router {
    /// The servers of `backend`.
    fn servers<'a>(
        &'a self,
        backend: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<Server>, RouterError>>;

    /// Adds a server, in maintenance until [`Router::ready`].
    fn add_server<'a>(
        &'a self,
        backend: &'a str,
        name: &'a str,
        addr: &'a str,
        weight: u32,
    ) -> LocalBoxFuture<'a, Result<(), RouterError>>;

    /// Sets a server's weight.
    fn set_weight<'a>(
        &'a self,
        backend: &'a str,
        name: &'a str,
        weight: u32,
    ) -> LocalBoxFuture<'a, Result<(), RouterError>>;

    /// Stops new requests to a server; those in flight finish.
    fn drain<'a>(
        &'a self,
        backend: &'a str,
        name: &'a str,
    ) -> LocalBoxFuture<'a, Result<(), RouterError>>;

    /// Lets a server take requests.
    fn ready<'a>(
        &'a self,
        backend: &'a str,
        name: &'a str,
    ) -> LocalBoxFuture<'a, Result<(), RouterError>>;

    /// Removes a server.
    fn remove_server<'a>(
        &'a self,
        backend: &'a str,
        name: &'a str,
    ) -> LocalBoxFuture<'a, Result<(), RouterError>>;

    /// Closes the connections still open to a server (after the drain timeout).
    fn close_sessions<'a>(
        &'a self,
        backend: &'a str,
        name: &'a str,
    ) -> LocalBoxFuture<'a, Result<(), RouterError>>;

    /// Counters of every server of `backend`.
    fn stats<'a>(&'a self, backend: &'a str)
    -> LocalBoxFuture<'a, Result<Vec<Stats>, RouterError>>;
}

/// The router `plan` routes through.
pub fn connect(plan: &DeployPlan) -> Arc<dyn Router> {
    Arc::new(Haproxy::new(plan.router.clone()))
}
