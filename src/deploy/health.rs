//! HTTP health checks of new containers. [`Tracker`] is the pure part (thresholds of passes
//! and failures in a row); [`probe`] sends one request.

use std::time::Duration;

use serde::Serialize;

/// How containers are checked.
#[derive(Debug, Clone, Serialize)]
pub struct HealthSpec {
    /// Path requested.
    pub path: String,
    /// Status expected.
    pub status: u16,
    /// `Host` header, when set.
    pub host: Option<String>,
    /// Time between checks.
    #[serde(with = "crate::deploy::durations")]
    pub interval: Duration,
    /// Longest wait for an answer.
    #[serde(with = "crate::deploy::durations")]
    pub timeout: Duration,
    /// Passes in a row that make a container healthy.
    pub healthy: u32,
    /// Failures in a row that make it unhealthy, once it has answered at all.
    pub unhealthy: u32,
    /// Longest wait for every new container to be healthy.
    #[serde(with = "crate::deploy::durations")]
    pub deadline: Duration,
}

/// What a container's checks add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Not decided yet.
    Pending,
    /// Passed `healthy` checks in a row.
    Healthy,
    /// Failed `unhealthy` checks in a row after answering, with the last failure.
    Unhealthy(String),
}

/// Counts one container's results.
#[derive(Debug, Clone)]
pub struct Tracker {
    healthy: u32,
    unhealthy: u32,
    passes: u32,
    failures: u32,
    answered: bool,
    /// The last failure, for reports.
    pub last_failure: Option<String>,
}

impl Tracker {
    /// A tracker with the spec's thresholds.
    pub fn new(spec: &HealthSpec) -> Tracker {
        Tracker {
            healthy: spec.healthy.max(1),
            unhealthy: spec.unhealthy.max(1),
            passes: 0,
            failures: 0,
            answered: false,
            last_failure: None,
        }
    }

    /// Records one check. A refused connection while the service starts up is not yet a
    /// failure of the service; once it has answered, every failure counts.
    pub fn record(&mut self, result: Result<(), ProbeFailure>) -> Health {
        match result {
            Ok(()) => {
                self.answered = true;
                self.failures = 0;
                self.passes += 1;
            }
            Err(failure) => {
                self.answered |= failure.answered();
                self.passes = 0;
                if self.answered {
                    self.failures += 1;
                }
                self.last_failure = Some(failure.to_string());
            }
        }
        if self.passes >= self.healthy {
            Health::Healthy
        } else if self.failures >= self.unhealthy {
            Health::Unhealthy(self.last_failure.clone().unwrap_or_default())
        } else {
            Health::Pending
        }
    }
}

/// Why one health check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeFailure {
    /// The service answered with another status.
    #[error("{path} answered {status}")]
    Status {
        /// The health path.
        path: String,
        /// Its status.
        status: u16,
    },
    /// The service took the connection but did not answer in time.
    #[error("{path} did not answer within {after:?}")]
    Timeout {
        /// The health path.
        path: String,
        /// The check's timeout.
        after: Duration,
    },
    /// Nothing accepts connections at the address (yet).
    #[error("nothing accepts connections on {0}")]
    Refused(String),
}

impl ProbeFailure {
    /// Whether the service answered at all.
    pub fn answered(&self) -> bool {
        !matches!(self, ProbeFailure::Refused(_))
    }
}

/// One check of `address` (`host:port`).
pub async fn probe(
    client: &reqwest::Client,
    address: &str,
    spec: &HealthSpec,
) -> Result<(), ProbeFailure> {
    let url = format!("http://{address}{}", spec.path);
    let mut request = client.get(&url).timeout(spec.timeout);
    if let Some(host) = &spec.host {
        request = request.header(http::header::HOST, host);
    }
    match request.send().await {
        Ok(response) if response.status().as_u16() == spec.status => Ok(()),
        Ok(response) => Err(ProbeFailure::Status {
            path: spec.path.clone(),
            status: response.status().as_u16(),
        }),
        Err(e) if e.is_timeout() => Err(ProbeFailure::Timeout {
            path: spec.path.clone(),
            after: spec.timeout,
        }),
        Err(_) => Err(ProbeFailure::Refused(address.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> HealthSpec {
        HealthSpec {
            path: "/healthz".into(),
            status: 200,
            host: None,
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(1),
            healthy: 2,
            unhealthy: 3,
            deadline: Duration::from_secs(10),
        }
    }

    #[test]
    fn thresholds_count_in_a_row() {
        let mut t = Tracker::new(&spec());
        let refused = || Err(ProbeFailure::Refused("127.0.0.1:1".into()));
        let bad = || {
            Err(ProbeFailure::Status {
                path: "/healthz".into(),
                status: 503,
            })
        };
        // Refused connections while starting never make it unhealthy.
        for _ in 0..10 {
            assert_eq!(t.record(refused()), Health::Pending);
        }
        assert_eq!(t.record(Ok(())), Health::Pending);
        assert_eq!(t.record(bad()), Health::Pending);
        assert_eq!(t.record(Ok(())), Health::Pending);
        assert_eq!(t.record(Ok(())), Health::Healthy);
        let mut t = Tracker::new(&spec());
        assert_eq!(t.record(bad()), Health::Pending);
        assert_eq!(t.record(bad()), Health::Pending);
        assert_eq!(
            t.record(bad()),
            Health::Unhealthy("/healthz answered 503".into())
        );
    }
}
