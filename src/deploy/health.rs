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

    /// Records one check; `Err` holds why it failed and whether the service answered at all
    /// (a refused connection while it starts up is not yet a failure of the service).
    pub fn record(&mut self, result: Result<(), (String, bool)>) -> Health {
        match result {
            Ok(()) => {
                self.answered = true;
                self.failures = 0;
                self.passes += 1;
            }
            Err((why, answered)) => {
                self.answered |= answered;
                self.passes = 0;
                if self.answered {
                    self.failures += 1;
                }
                self.last_failure = Some(why);
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

/// One check of `address` (`host:port`): `Err((why, answered))`.
pub async fn probe(
    client: &reqwest::Client,
    address: &str,
    spec: &HealthSpec,
) -> Result<(), (String, bool)> {
    let url = format!("http://{address}{}", spec.path);
    let mut request = client.get(&url).timeout(spec.timeout);
    if let Some(host) = &spec.host {
        request = request.header(http::header::HOST, host);
    }
    match request.send().await {
        Ok(response) if response.status().as_u16() == spec.status => Ok(()),
        Ok(response) => Err((
            format!("{} answered {}", spec.path, response.status().as_u16()),
            true,
        )),
        Err(e) if e.is_timeout() => Err((
            format!("{} did not answer within {:?}", spec.path, spec.timeout),
            true,
        )),
        Err(_) => Err((format!("nothing accepts connections on {address}"), false)),
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
        let refused = || Err(("refused".to_string(), false));
        let bad = || Err(("/healthz answered 503".to_string(), true));
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
