//! What one deploy measured, as Prometheus text-format metrics: written to a file after every
//! deploy or rollback, and pushed to a Pushgateway when the environment names one. Label
//! values come from data (versions, host addresses) and are escaped as the format says.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde::Serialize;

/// One deploy's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The application.
    pub app: String,
    /// The environment.
    pub env: String,
    /// The version deployed.
    pub version: String,
    /// The revision of the attempt.
    pub revision: u64,
    /// `promoted`, `rolled-back`, `interrupted` or `failed`.
    pub outcome: String,
    /// When it started.
    pub started: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// From the new version's first routed request to the decision to roll back.
    pub detection: Option<Duration>,
    /// Requests the router answered with an error (5xx or a failed connection) during it.
    pub failed_requests: u64,
    /// Per host: its address and what was done on it.
    pub hosts: Vec<(String, usize)>,
}

/// Escapes a label value for the text format: backslash, double quote and line feed.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

impl Report {
    /// The text format, one gauge per figure, every sample labelled with app and env.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let base = format!(
            "app=\"{}\",env=\"{}\"",
            escape(&self.app),
            escape(&self.env)
        );
        let mut gauge = |name: &str, help: &str, samples: Vec<(String, f64)>| {
            let _ = writeln!(out, "# HELP shipit_deploy_{name} {help}");
            let _ = writeln!(out, "# TYPE shipit_deploy_{name} gauge");
            for (labels, value) in samples {
                let _ = writeln!(out, "shipit_deploy_{name}{{{base}{labels}}} {value}");
            }
        };
        let started = self
            .started
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let of = format!(
            ",version=\"{}\",revision=\"{}\",outcome=\"{}\"",
            escape(&self.version),
            self.revision,
            escape(&self.outcome)
        );
        gauge(
            "info",
            "The last deploy: its version, revision and outcome (always 1).",
            vec![(of, 1.0)],
        );
        gauge(
            "started_timestamp_seconds",
            "When the last deploy started, Unix time.",
            vec![(String::new(), started)],
        );
        gauge(
            "duration_seconds",
            "How long the last deploy took.",
            vec![(String::new(), self.duration.as_secs_f64())],
        );
        gauge(
            "success",
            "1 when the last deploy was promoted, else 0.",
            vec![(String::new(), f64::from(self.outcome == "promoted"))],
        );
        gauge(
            "rolled_back",
            "1 when the last deploy was rolled back or undone, else 0.",
            vec![(String::new(), f64::from(self.outcome != "promoted"))],
        );
        gauge(
            "detection_seconds",
            "From the new version's first request to the rollback decision (0: none).",
            vec![(
                String::new(),
                self.detection.unwrap_or_default().as_secs_f64(),
            )],
        );
        gauge(
            "failed_requests",
            "Requests the router answered with an error during the last deploy.",
            vec![(String::new(), self.failed_requests as f64)],
        );
        gauge(
            "host_steps",
            "Steps the last deploy took on each host.",
            self.hosts
                .iter()
                .map(|(host, steps)| (format!(",host=\"{}\"", escape(host)), *steps as f64))
                .collect(),
        );
        out
    }
}

/// The Pushgateway URL of `app` in `env`'s group: label values base64url-encoded (the
/// gateway's `@base64` form), so no value can add a path segment.
pub fn group_url(gateway: &str, app: &str, env: &str) -> String {
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}/metrics/job/shipit/app@base64/{}/env@base64/{}",
        gateway.trim_end_matches('/'),
        b64(app),
        b64(env)
    )
}

/// Replaces the group's metrics on the Pushgateway with `report`'s (`PUT`).
pub async fn push(
    http: &reqwest::Client,
    gateway: &str,
    report: &Report,
) -> Result<(), reqwest::Error> {
    http.put(group_url(gateway, &report.app, &report.env))
        .header("content-type", "text/plain; version=0.0.4")
        .body(report.render())
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            app: "demo".into(),
            env: "production".into(),
            version: "1.0.0\"} evil 1\n".into(),
            revision: 3,
            outcome: "rolled-back".into(),
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            duration: Duration::from_millis(42_500),
            detection: Some(Duration::from_secs(3)),
            failed_requests: 0,
            hosts: vec![("unix:///a.sock".into(), 4), ("ssh://d@web-2".into(), 2)],
        }
    }

    /// A version from data cannot close its label or start a line of its own.
    #[test]
    fn label_values_from_data_are_escaped() {
        let text = report().render();
        assert!(
            text.contains(r#"version="1.0.0\"} evil 1\n",revision="3""#),
            "{text}"
        );
        assert!(!text.lines().any(|l| l.starts_with(" evil")), "{text}");
        assert!(
            text.contains("shipit_deploy_duration_seconds{app=\"demo\",env=\"production\"} 42.5")
        );
        assert!(text.contains(
            "shipit_deploy_host_steps{app=\"demo\",env=\"production\",host=\"ssh://d@web-2\"} 2"
        ));
    }

    #[test]
    fn group_urls_carry_values_as_base64() {
        assert_eq!(
            group_url("http://127.0.0.1:9091/", "demo", "../x/y"),
            "http://127.0.0.1:9091/metrics/job/shipit/app@base64/ZGVtbw/env@base64/Li4veC95"
        );
    }
}
