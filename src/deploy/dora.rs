//! DORA figures from an environment's deploy records, over a window ending now:
//! - deployment frequency: promoted deploys per day;
//! - change failure rate: attempts that were rolled back or failed, out of every attempt
//!   that ran to a decision (interrupted ones are left out: nothing was decided);
//! - time to restore: for each failed attempt, from its start until the service ran a good
//!   version again (the end of its own undo, which shipit records as the attempt's end),
//!   as the mean and the longest.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::runtime::Record;

/// The figures over one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// The window's length.
    #[serde(with = "super::durations")]
    pub window: Duration,
    /// Attempts in the window (records whose start falls in it).
    pub attempts: usize,
    /// Of which promoted.
    pub promoted: usize,
    /// Of which rolled back or failed.
    pub failed: usize,
    /// Promoted deploys per day.
    pub deploys_per_day: f64,
    /// `failed / (promoted + failed)`, 0 when there were none.
    pub change_failure_rate: f64,
    /// Mean time to restore, seconds (`None`: no failure in the window).
    pub mean_time_to_restore_seconds: Option<f64>,
    /// The longest time to restore, seconds.
    pub max_time_to_restore_seconds: Option<f64>,
}

fn parse(time: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(time).ok()
}

/// The figures of `records` in the `window` that ends at `now`.
pub fn figures(records: &[Record], window: Duration, now: SystemTime) -> Figures {
    let since = now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut promoted = 0;
    let mut failed = 0;
    let mut attempts = 0;
    let mut restores = Vec::new();
    for record in records {
        let Some(started) = parse(&record.started) else {
            continue;
        };
        if started < since || started > now {
            continue;
        }
        attempts += 1;
        match record.outcome.as_str() {
            "promoted" => promoted += 1,
            "rolled-back" | "failed" => {
                failed += 1;
                if let Some(finished) = parse(&record.finished) {
                    restores.push(finished.duration_since(started).unwrap_or_default());
                }
            }
            _ => {}
        }
    }
    let days = window.as_secs_f64() / 86_400.0;
    let decided = promoted + failed;
    let secs: Vec<f64> = restores.iter().map(Duration::as_secs_f64).collect();
    Figures {
        window,
        attempts,
        promoted,
        failed,
        deploys_per_day: if days > 0.0 {
            promoted as f64 / days
        } else {
            0.0
        },
        change_failure_rate: if decided > 0 {
            failed as f64 / decided as f64
        } else {
            0.0
        },
        mean_time_to_restore_seconds: (!secs.is_empty())
            .then(|| secs.iter().sum::<f64>() / secs.len() as f64),
        max_time_to_restore_seconds: secs.iter().copied().reduce(f64::max),
    }
}

/// The history as a table, then the figures, for people.
pub fn render(records: &[Record], figures: &Figures) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<5} {:<14} {:<20} {:<21} {:<21} by",
        "rev", "version", "outcome", "started", "finished"
    )];
    for r in records {
        lines.push(format!(
            "r{:<4} {:<14} {:<20} {:<21} {:<21} {}",
            r.revision, r.version, r.outcome, r.started, r.finished, r.by
        ));
    }
    let seconds = |s: Option<f64>| {
        s.map_or("none".to_string(), |s| {
            humantime::format_duration(Duration::from_secs(s.round() as u64)).to_string()
        })
    };
    lines.extend([
        format!(
            "over the last {}: {} attempts, {} promoted, {} failed",
            humantime::format_duration(figures.window),
            figures.attempts,
            figures.promoted,
            figures.failed
        ),
        format!(
            "  deployment frequency   {:.2} a day",
            figures.deploys_per_day
        ),
        format!(
            "  change failure rate    {:.1}%",
            figures.change_failure_rate * 100.0
        ),
        format!(
            "  time to restore        mean {}, longest {}",
            seconds(figures.mean_time_to_restore_seconds),
            seconds(figures.max_time_to_restore_seconds)
        ),
    ]);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(revision: u64, outcome: &str, started: &str, finished: &str) -> Record {
        Record {
            revision,
            version: format!("0.{revision}.0"),
            image: String::new(),
            outcome: outcome.into(),
            from: None,
            by: "ci@runner".into(),
            started: started.into(),
            finished: finished.into(),
            detail: String::new(),
            steps: Vec::new(),
        }
    }

    /// Seven days of known deploys, counted by hand: 4 promoted, 2 rolled back (restored in
    /// 60 s and 180 s), 1 failed (restored in 30 s), 1 interrupted, and one older than the
    /// window. Frequency 4/7 a day, failure rate 3/7, mean restore 90 s, longest 180 s.
    #[test]
    fn figures_of_a_known_week_match_a_hand_count() {
        let records = [
            record(
                1,
                "promoted",
                "2026-11-20T10:00:00Z",
                "2026-11-20T10:05:00Z",
            ),
            record(
                2,
                "promoted",
                "2026-12-01T10:00:00Z",
                "2026-12-01T10:04:00Z",
            ),
            record(
                3,
                "rolled-back",
                "2026-12-02T09:00:00Z",
                "2026-12-02T09:01:00Z",
            ),
            record(
                4,
                "promoted",
                "2026-12-02T11:00:00Z",
                "2026-12-02T11:03:00Z",
            ),
            record(
                5,
                "interrupted",
                "2026-12-03T08:00:00Z",
                "2026-12-03T08:00:30Z",
            ),
            record(6, "failed", "2026-12-04T12:00:00Z", "2026-12-04T12:00:30Z"),
            record(
                7,
                "rolled-back",
                "2026-12-05T16:00:00Z",
                "2026-12-05T16:03:00Z",
            ),
            record(
                8,
                "promoted",
                "2026-12-06T09:00:00Z",
                "2026-12-06T09:02:00Z",
            ),
            record(
                9,
                "promoted",
                "2026-12-07T09:00:00Z",
                "2026-12-07T09:02:00Z",
            ),
        ];
        let now = parse("2026-12-07T12:00:00Z").unwrap();
        let f = figures(&records, Duration::from_secs(7 * 86_400), now);
        assert_eq!((f.attempts, f.promoted, f.failed), (8, 4, 3));
        assert!((f.deploys_per_day - 4.0 / 7.0).abs() < 1e-9, "{f:?}");
        assert!((f.change_failure_rate - 3.0 / 7.0).abs() < 1e-9, "{f:?}");
        assert_eq!(f.mean_time_to_restore_seconds, Some(90.0));
        assert_eq!(f.max_time_to_restore_seconds, Some(180.0));
    }

    #[test]
    fn an_empty_window_says_nothing_failed() {
        let f = figures(&[], Duration::from_secs(86_400), SystemTime::now());
        assert_eq!((f.attempts, f.change_failure_rate), (0, 0.0));
        assert_eq!(f.mean_time_to_restore_seconds, None);
    }
}
