//! The analysis of a new revision under traffic: every interval the router's counters for the
//! new servers are compared with the previous reading; a sample fails on too many 5xx answers
//! or too slow responses, and `failure_limit` failed samples in a row trip it. Pure: the
//! caller reads the counters and keeps the time.

use serde::Serialize;

/// Counters summed over the new revision's servers, as the router reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Responses, all time.
    pub responses: u64,
    /// 5xx responses and connection errors, all time.
    pub errors: u64,
    /// Average response time now, milliseconds.
    pub response_ms: u64,
}

/// Limits a sample must stay within.
#[derive(Debug, Clone, Serialize)]
pub struct Thresholds {
    /// Largest share of failed requests (0.0 to 1.0).
    pub max_error_rate: f64,
    /// Slowest average response time, milliseconds.
    pub max_response_ms: Option<u64>,
    /// Failed samples in a row that trip the analysis.
    pub failure_limit: u32,
    /// Fewer requests than this in an interval say nothing either way.
    pub min_requests: u64,
}

/// One interval's reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Requests in the interval.
    pub requests: u64,
    /// Failed ones.
    pub errors: u64,
    /// Average response time, milliseconds.
    pub response_ms: u64,
    /// Why it failed; `None` when it passed or said nothing.
    pub failure: Option<String>,
}

/// A running analysis.
#[derive(Debug, Clone)]
pub struct Analysis {
    thresholds: Thresholds,
    last: Option<Counters>,
    consecutive: u32,
    /// Every sample taken, for the report.
    pub samples: Vec<Sample>,
}

impl Analysis {
    /// A new analysis; the first reading only sets the baseline.
    pub fn new(thresholds: Thresholds) -> Analysis {
        Analysis {
            thresholds,
            last: None,
            consecutive: 0,
            samples: Vec::new(),
        }
    }

    /// Takes a reading; returns why the analysis tripped, if it did.
    pub fn observe(&mut self, now: Counters) -> Option<String> {
        let last = self.last.replace(now)?;
        let requests = now.responses.saturating_sub(last.responses);
        let errors = now.errors.saturating_sub(last.errors);
        let t = &self.thresholds;
        let failure = if requests < t.min_requests.max(1) {
            None
        } else if errors as f64 / requests as f64 > t.max_error_rate {
            Some(format!(
                "{errors} of {requests} requests failed ({:.1}% > {:.1}%)",
                100.0 * errors as f64 / requests as f64,
                100.0 * t.max_error_rate
            ))
        } else {
            t.max_response_ms
                .filter(|max| now.response_ms > *max)
                .map(|max| {
                    format!(
                        "responses took {} ms on average (> {max} ms)",
                        now.response_ms
                    )
                })
        };
        let judged = requests >= t.min_requests.max(1);
        self.samples.push(Sample {
            requests,
            errors,
            response_ms: now.response_ms,
            failure: failure.clone(),
        });
        match failure {
            Some(why) => {
                self.consecutive += 1;
                (self.consecutive >= t.failure_limit.max(1))
                    .then(|| format!("{why}, {} samples in a row", self.consecutive))
            }
            None => {
                if judged {
                    self.consecutive = 0;
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis(limit: u32) -> Analysis {
        Analysis::new(Thresholds {
            max_error_rate: 0.01,
            max_response_ms: Some(500),
            failure_limit: limit,
            min_requests: 10,
        })
    }

    fn at(responses: u64, errors: u64, response_ms: u64) -> Counters {
        Counters {
            responses,
            errors,
            response_ms,
        }
    }

    #[test]
    fn trips_after_the_limit_of_failures_in_a_row() {
        let mut a = analysis(2);
        assert_eq!(a.observe(at(0, 0, 5)), None);
        assert_eq!(a.observe(at(100, 30, 5)), None);
        let tripped = a.observe(at(200, 60, 5)).unwrap();
        assert_eq!(
            tripped,
            "30 of 100 requests failed (30.0% > 1.0%), 2 samples in a row"
        );
    }

    #[test]
    fn a_good_sample_resets_and_a_quiet_one_says_nothing() {
        let mut a = analysis(2);
        a.observe(at(0, 0, 5));
        assert_eq!(a.observe(at(100, 50, 5)), None);
        assert_eq!(a.observe(at(200, 50, 5)), None);
        assert_eq!(a.observe(at(300, 100, 5)), None);
        // Too few requests: neither a failure nor a reset.
        assert_eq!(a.observe(at(303, 103, 5)), None);
        assert!(a.observe(at(403, 153, 5)).is_some());
    }

    #[test]
    fn slow_responses_fail_too() {
        let mut a = analysis(1);
        a.observe(at(0, 0, 5));
        assert_eq!(
            a.observe(at(100, 0, 900)).unwrap(),
            "responses took 900 ms on average (> 500 ms), 1 samples in a row"
        );
    }
}
