//! What sends traffic to revisions: the seam a router implements (servers added, weighed,
//! drained and removed in a backend, and their counters), in its own types. HAProxy, through
//! its runtime API, is the first ([`haproxy`]); `deploy::connect` is where a router is chosen.

pub mod haproxy;

use futures_util::future::LocalBoxFuture;

use crate::config::{Loaded, Problem};

/// A router a pipeline may name by its key in `router = { <name> = ..., backend = "..." }`.
pub struct Kind {
    /// The key.
    pub name: &'static str,
    /// What it is, in one line.
    pub about: &'static str,
    /// JSON Schema of the key's value.
    pub options: fn() -> serde_json::Value,
    /// Every problem of its value in environment `env`, located.
    pub check: fn(&Loaded, &str) -> Vec<Problem>,
}

/// The routers, each chosen in `deploy::connect`.
pub const ROUTERS: &[Kind] = &[Kind {
    name: "haproxy",
    about: "HAProxy's runtime API, `unix:///run/haproxy/admin.sock` or `tcp://127.0.0.1:9999` \
            (the stats socket, with `level admin`)",
    options: || serde_json::json!({ "type": "string" }),
    check: haproxy::check,
}];

/// A server of a backend, as `show servers state` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Server name.
    pub name: String,
    /// Address.
    pub addr: String,
    /// Port.
    pub port: u16,
    /// Operational state: 0 stopped, 1 starting, 2 running, 3 stopping.
    pub op_state: u8,
    /// Administrative state bits: 0x01 forced maintenance, 0x08 forced drain, ...
    pub admin_state: u8,
    /// User weight.
    pub weight: u32,
}

impl Server {
    /// Put in maintenance by an operator (takes no traffic at all).
    pub fn in_maintenance(&self) -> bool {
        self.admin_state & 0x01 != 0
    }

    /// Draining (no new requests, in-flight ones finish).
    pub fn draining(&self) -> bool {
        self.admin_state & 0x08 != 0 || self.weight == 0
    }
}

/// Per-server counters from `show stat`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Server name.
    pub name: String,
    /// Sessions open now (in-flight requests, for HTTP/1 without keep-alive).
    pub current: u64,
    /// Requests answered, all time.
    pub responses: u64,
    /// 5xx answers, all time.
    pub errors_5xx: u64,
    /// Connection errors, all time.
    pub connection_errors: u64,
    /// Average response time over the last 1024 requests, milliseconds.
    pub response_ms: u64,
    /// `UP`, `DOWN`, `MAINT`, `DRAIN`, `no check`.
    pub status: String,
}

/// Why a runtime API command failed.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The socket could not be reached.
    #[error("cannot reach HAProxy's runtime API at {address}")]
    Unreachable {
        /// The address.
        address: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// HAProxy refused the command.
    #[error("HAProxy refused `{command}`: {answer}")]
    Refused {
        /// The command.
        command: String,
        /// Its answer.
        answer: String,
    },
}

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

    /// The backend's own counters, summed over every server it has had (`name` is the
    /// backend's): what clients saw, whichever servers came and went.
    fn totals<'a>(&'a self, backend: &'a str) -> LocalBoxFuture<'a, Result<Stats, RouterError>>;
}
