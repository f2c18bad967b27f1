//! The documented bound of every number a pipeline file can hold, checked by `shipit check`
//! (and before every command) so that no arithmetic on a user's number wraps, overflows a
//! clock or panics later; durations and sizes are bounded as they are read
//! ([`super::values`]). README "Limits" lists the same table.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::{Loaded, Problem, Seg};
use crate::path;

/// The longest duration any key accepts: a week.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
/// The largest size any key accepts (`chunk_size`): 4 GiB.
pub const MAX_SIZE: u64 = 4 << 30;
/// `retries` of a stage.
pub const RETRIES: RangeInclusive<u64> = 0..=100;
/// Uploads or blobs sent at once.
pub const CONCURRENCY: RangeInclusive<u64> = 1..=64;
/// Nightly releases or images kept.
pub const KEEP: RangeInclusive<u64> = 1..=10_000;
/// Containers of a deployed service, and the surge/unavailable counts of a rolling update.
pub const REPLICAS: RangeInclusive<u64> = 1..=1_000;
/// `rolling.max_surge` and `rolling.max_unavailable`.
pub const SURGE: RangeInclusive<u64> = 0..=1_000;
/// HTTP status codes.
pub const STATUS: RangeInclusive<u64> = 100..=599;
/// Checks in a row (`healthy`, `unhealthy`, `failure_limit`).
pub const IN_A_ROW: RangeInclusive<u64> = 1..=1_000;
/// A canary step, in percent.
pub const PERCENT: RangeInclusive<u64> = 1..=100;
/// Canary steps.
pub const MAX_STEPS: usize = 100;
/// `analysis.max_response_ms`: an hour.
pub const RESPONSE_MS: RangeInclusive<u64> = 1..=3_600_000;
/// `analysis.min_requests`.
pub const MIN_REQUESTS: RangeInclusive<u64> = 0..=1_000_000_000;
/// A TCP port.
pub const PORT: RangeInclusive<u64> = 1..=65_535;

/// Every bound problem in the file.
pub fn check(loaded: &Loaded, problems: &mut Vec<Problem>) {
    let mut c = Checker { loaded, problems };
    let file = &loaded.file;
    for (name, stage) in &file.stages {
        c.int(
            path!["stages", name.as_str(), "retries"],
            Some(u64::from(stage.retries)),
            RETRIES,
        );
    }
    for (env, deploy) in &file.deploy {
        let env = env.as_str();
        c.int(
            path!["deploy", env, "replicas"],
            as_u64(deploy.replicas),
            REPLICAS,
        );
        c.int(
            path!["deploy", env, "port"],
            Some(u64::from(deploy.port)),
            PORT,
        );
        let health = &deploy.health;
        c.int(
            path!["deploy", env, "health", "status"],
            health.status.map(u64::from),
            STATUS,
        );
        c.int(
            path!["deploy", env, "health", "healthy"],
            health.healthy.map(u64::from),
            IN_A_ROW,
        );
        c.int(
            path!["deploy", env, "health", "unhealthy"],
            health.unhealthy.map(u64::from),
            IN_A_ROW,
        );
        c.int(
            path!["deploy", env, "rolling", "max_surge"],
            as_u64(deploy.rolling.max_surge),
            SURGE,
        );
        c.int(
            path!["deploy", env, "rolling", "max_unavailable"],
            as_u64(deploy.rolling.max_unavailable),
            SURGE,
        );
        if let Some(steps) = &deploy.canary.steps {
            if steps.len() > MAX_STEPS {
                c.problem(
                    path!["deploy", env, "canary", "steps"],
                    format!("{} canary steps; at most {MAX_STEPS}", steps.len()),
                );
            }
            for (i, step) in steps.iter().enumerate().take(MAX_STEPS) {
                c.int(
                    path!["deploy", env, "canary", "steps", i],
                    Some(u64::from(*step)),
                    PERCENT,
                );
            }
        }
        let analysis = &deploy.analysis;
        c.int(
            path!["deploy", env, "analysis", "failure_limit"],
            analysis.failure_limit.map(u64::from),
            IN_A_ROW,
        );
        c.int(
            path!["deploy", env, "analysis", "max_response_ms"],
            analysis.max_response_ms,
            RESPONSE_MS,
        );
        c.int(
            path!["deploy", env, "analysis", "min_requests"],
            analysis.min_requests,
            MIN_REQUESTS,
        );
        if let Some(rate) = analysis.max_error_rate
            && !(0.0..=1.0).contains(&rate)
        {
            c.problem(
                path!["deploy", env, "analysis", "max_error_rate"],
                format!("`max_error_rate` is {rate}; it is a share from 0 to 1"),
            );
        }
        if let Some(check) = &analysis.prometheus
            && !check.max.is_finite()
        {
            c.problem(
                path!["deploy", env, "analysis", "prometheus", "max"],
                "`max` must be a finite number".to_string(),
            );
        }
    }
}

/// The problem of `value` at `at` when it is outside `range` (for sections their owners check,
/// such as a release channel's).
pub fn int_problem(
    loaded: &Loaded,
    at: &[Seg<'_>],
    value: Option<u64>,
    range: RangeInclusive<u64>,
) -> Option<Problem> {
    let mut problems = Vec::new();
    Checker {
        loaded,
        problems: &mut problems,
    }
    .int(at, value, range);
    problems.pop()
}

/// A count as the bounds compare it.
pub fn as_u64(value: Option<usize>) -> Option<u64> {
    value.map(|v| u64::try_from(v).unwrap_or(u64::MAX))
}

struct Checker<'a> {
    loaded: &'a Loaded,
    problems: &'a mut Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, at: &[Seg<'_>], message: String) {
        let key = at
            .iter()
            .rev()
            .find_map(|s| match s {
                Seg::Key(k) => Some(*k),
                Seg::Index(_) => None,
            })
            .unwrap_or("value");
        self.problems.push(
            Problem::new(message, self.loaded.span_near(at))
                .label("out of range")
                .help(format!(
                    "README \"Limits\" lists the range of `{key}` and of every other number"
                )),
        );
    }

    fn int(&mut self, at: &[Seg<'_>], value: Option<u64>, range: RangeInclusive<u64>) {
        if let Some(v) = value
            && !range.contains(&v)
        {
            let key = match at.last() {
                Some(Seg::Key(k)) => format!("`{k}`"),
                _ => "this value".to_string(),
            };
            self.problem(
                at,
                format!(
                    "{key} is {v}; it must be from {} to {}",
                    range.start(),
                    range.end()
                ),
            );
        }
    }
}
