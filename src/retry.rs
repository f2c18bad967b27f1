//! When and how long to wait before retrying a request to a hosted API: server errors,
//! connection failures, 429 and GitHub's rate limits (`Retry-After`, `x-ratelimit-reset`),
//! with exponential backoff inside a bounded total wait.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, StatusCode};

/// First backoff delay.
const BASE: Duration = Duration::from_millis(500);
/// Longest single backoff delay.
const MAX_DELAY: Duration = Duration::from_secs(60);

/// What to do about a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Do not retry: the request itself is wrong (4xx) or it succeeded.
    Final,
    /// Retry after this long.
    After(Duration),
}

/// Decides about a response.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &str, attempt: u32) -> Verdict {
    if status.is_success() {
        return Verdict::Final;
    }
    let retry_after = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let rate_limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN
            && (retry_after.is_some()
                || headers
                    .get("x-ratelimit-remaining")
                    .is_some_and(|v| v.as_bytes() == b"0")
                || body.to_ascii_lowercase().contains("rate limit")));
    if rate_limited {
        if let Some(wait) = retry_after {
            return Verdict::After(wait);
        }
        if let Some(reset) = headers
            .get("x-ratelimit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            return Verdict::After(Duration::from_secs(reset.saturating_sub(now).max(1)));
        }
        // A secondary rate limit without a hint: GitHub asks for at least a minute.
        return Verdict::After(backoff(attempt).max(Duration::from_secs(60)));
    }
    if status.is_server_error() {
        return Verdict::After(retry_after.unwrap_or_else(|| backoff(attempt)));
    }
    Verdict::Final
}

/// Delay before attempt `attempt + 1` after a connection failure or server error.
pub fn backoff(attempt: u32) -> Duration {
    BASE.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(MAX_DELAY)
}

/// A budget of waiting time shared by every retry of a run.
#[derive(Debug)]
pub struct Budget {
    left: std::sync::Mutex<Duration>,
}

impl Budget {
    /// A budget of `total`.
    pub fn new(total: Duration) -> Budget {
        Budget {
            left: std::sync::Mutex::new(total),
        }
    }

    /// Takes `wait` from the budget; `false` when it would be exceeded.
    pub fn spend(&self, wait: Duration) -> bool {
        let Ok(mut left) = self.left.lock() else {
            return false;
        };
        if wait > *left {
            return false;
        }
        *left -= wait;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn server_errors_back_off_and_client_errors_are_final() {
        assert_eq!(
            classify(StatusCode::BAD_GATEWAY, &HeaderMap::new(), "", 1),
            Verdict::After(BASE)
        );
        assert_eq!(
            classify(StatusCode::BAD_GATEWAY, &HeaderMap::new(), "", 3),
            Verdict::After(BASE * 4)
        );
        assert_eq!(
            classify(StatusCode::UNPROCESSABLE_ENTITY, &HeaderMap::new(), "", 1),
            Verdict::Final
        );
        assert_eq!(
            classify(
                StatusCode::FORBIDDEN,
                &HeaderMap::new(),
                "Resource not accessible",
                1
            ),
            Verdict::Final
        );
    }

    #[test]
    fn rate_limits_honour_retry_after_and_reset() {
        let h = headers(&[("retry-after", "7")]);
        assert_eq!(
            classify(
                StatusCode::FORBIDDEN,
                &h,
                "You have exceeded a secondary rate limit",
                1
            ),
            Verdict::After(Duration::from_secs(7))
        );
        let soon = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 30;
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &soon.to_string()),
        ]);
        match classify(StatusCode::FORBIDDEN, &h, "", 1) {
            Verdict::After(d) => {
                assert!(d <= Duration::from_secs(30) && d >= Duration::from_secs(28))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), "", 1),
            Verdict::After(Duration::from_secs(60))
        );
    }

    #[test]
    fn the_budget_bounds_total_waiting() {
        let budget = Budget::new(Duration::from_secs(10));
        assert!(budget.spend(Duration::from_secs(6)));
        assert!(!budget.spend(Duration::from_secs(6)));
        assert!(budget.spend(Duration::from_secs(4)));
    }
}
