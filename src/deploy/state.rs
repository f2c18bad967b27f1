//! The live state of an environment, read back from the engine and the router, and how a
//! deploy ended.

use serde::Serialize;

use super::runtime::{Container, Record};
use crate::events::Level;

/// Weight of a server in full rotation.
pub(super) const FULL: u32 = 100;
/// HAProxy's largest weight.
const MAX_WEIGHT: u32 = 256;

/// How a deploy or rollback ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// The new revision serves all traffic.
    Promoted {
        /// Its number.
        revision: u64,
    },
    /// The new revision was removed; the stable one serves.
    RolledBack {
        /// The revision that failed.
        revision: u64,
        /// Why.
        reason: String,
    },
    /// Ctrl-C / SIGTERM: undone like a rollback.
    Interrupted {
        /// The revision that was stopped.
        revision: u64,
    },
    /// The engine, router or analysis failed half-way: undone like a rollback, as far as
    /// it would go.
    Failed {
        /// The revision that was being rolled out.
        revision: u64,
        /// What failed (and what the undo could not do).
        reason: String,
    },
}

impl Outcome {
    /// The line that says how it ended, and how loudly.
    pub fn summary(&self, app: &str, env: &str, state: &State) -> (Level, String) {
        match self {
            Outcome::Promoted { revision } => {
                let version = state
                    .containers
                    .iter()
                    .find(|c| c.revision == *revision)
                    .map(|c| c.version.as_str())
                    .unwrap_or_default();
                (
                    Level::Info,
                    format!("{app} {version} is live in {env} (revision {revision})"),
                )
            }
            Outcome::RolledBack { revision, reason } => (
                Level::Error,
                format!("revision {revision} was rolled back: {reason}"),
            ),
            Outcome::Interrupted { revision } => (
                Level::Warn,
                format!("interrupted: revision {revision} was removed"),
            ),
            Outcome::Failed { revision, reason } => (
                Level::Error,
                format!("revision {revision} failed and was undone: {reason}"),
            ),
        }
    }
}

/// The live state of an environment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct State {
    /// Service containers, every revision.
    pub containers: Vec<Container>,
    /// The backend's servers.
    pub servers: Vec<ServerView>,
    /// Deploy records, oldest first.
    pub records: Vec<Record>,
}

/// A router server, as status shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ServerView {
    /// Name.
    pub name: String,
    /// `addr:port`.
    pub address: String,
    /// Weight.
    pub weight: u32,
    /// `ready`, `drain` or `maint`.
    pub admin: String,
}

impl State {
    pub(super) fn server(&self, name: &str) -> Option<&ServerView> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// Running containers the router sends traffic to.
    pub fn serving(&self) -> Vec<&Container> {
        self.containers
            .iter()
            .filter(|c| c.state == "running")
            .filter(|c| {
                self.server(&c.name)
                    .is_some_and(|s| s.weight > 0 && s.admin == "ready")
            })
            .collect()
    }

    /// The highest revision number used so far.
    pub(super) fn last_revision(&self) -> u64 {
        let containers = self.containers.iter().map(|c| c.revision);
        let records = self.records.iter().map(|r| r.revision);
        containers.chain(records).max().unwrap_or(0)
    }
}

/// The weights (new, stable) per server that give the new revision `percent` of requests.
pub fn split_weights(percent: u32, new: usize, stable: usize) -> (u32, u32) {
    if stable == 0 || percent >= 100 {
        return (FULL, 0);
    }
    if new == 0 || percent == 0 {
        return (0, FULL);
    }
    let (p, n, s) = (percent as f64, new as f64, stable as f64);
    // n * w_new / (n * w_new + s * w_stable) = p / 100
    let w_new = (p * s * FULL as f64 / ((100.0 - p) * n)).round();
    if w_new <= MAX_WEIGHT as f64 {
        return ((w_new as u32).max(1), FULL);
    }
    let w_stable = ((100.0 - p) * n * MAX_WEIGHT as f64 / (p * s)).round();
    (MAX_WEIGHT, (w_stable as u32).max(1))
}

impl State {
    /// Containers by revision, router weights and the latest attempts, line by line
    /// (`shipit deploy status`).
    pub fn render(&self, app: &str, env: &str, backend: &str) -> Vec<String> {
        let state = self;
        let serving = state.serving();
        let mut lines = Vec::new();
        let mut out = |text: String| lines.push(text);
        out(format!("{app} in {env} (backend {backend}):"));
        if state.containers.is_empty() {
            out("  no containers".into());
        }
        let several = state
            .containers
            .iter()
            .any(|c| c.host != state.containers[0].host);
        let mut host = None;
        for c in &state.containers {
            if several && host != Some(&c.host) {
                host = Some(&c.host);
                out(format!(" on {}:", c.host));
            }
            let server = state.servers.iter().find(|s| s.name == c.name);
            out(format!(
                "  revision {:<3} {:<5} {:<12} {:<28} {:<8} {}{}",
                c.revision,
                super::runtime::color(c.revision),
                c.version,
                c.name,
                c.state,
                server.map_or("not routed".to_string(), |s| format!(
                    "weight {} {}",
                    s.weight, s.admin
                )),
                if serving.iter().any(|s| s.name == c.name) {
                    "  (serving)"
                } else {
                    ""
                }
            ));
        }
        for s in state
            .servers
            .iter()
            .filter(|s| !state.containers.iter().any(|c| c.name == s.name))
        {
            out(format!(
                "  server {} {} weight {} (not a shipit container)",
                s.name, s.address, s.weight
            ));
        }
        if !state.records.is_empty() {
            out("history:".into());
        }
        for r in state.records.iter().rev().take(10) {
            out(format!(
                "  r{:<3} {:<12} {:<20} {:<9} by {} at {}{}",
                r.revision,
                r.version,
                r.outcome,
                r.from.map(|f| format!("from r{f}")).unwrap_or_default(),
                r.by,
                r.finished,
                if r.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", r.detail)
                }
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_give_the_share_asked_for() {
        let share = |p, n, s| {
            let (wn, ws) = split_weights(p, n, s);
            100.0 * (n as f64 * wn as f64) / (n as f64 * wn as f64 + s as f64 * ws as f64)
        };
        for (p, n, s) in [
            (10, 2, 2),
            (50, 2, 2),
            (10, 1, 3),
            (90, 1, 3),
            (1, 2, 2),
            (99, 3, 1),
        ] {
            assert!(
                (share(p, n, s) - p as f64).abs() < 1.0,
                "{p}% of {n}+{s}: {}",
                share(p, n, s)
            );
        }
        assert_eq!(split_weights(100, 2, 2), (100, 0));
        assert_eq!(split_weights(10, 2, 0), (100, 0));
        assert_eq!(split_weights(0, 2, 2), (0, 100));
    }
}
