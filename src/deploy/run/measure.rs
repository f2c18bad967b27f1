//! The figures of a deploy or rollback ([`crate::deploy::metrics::Report`]), written to the
//! plan's metrics file and pushed to its Pushgateway when it ends. Metrics never change the
//! outcome: what cannot be written or pushed is a warning.

use std::time::{Instant, SystemTime};

use super::*;
use crate::deploy::metrics::{self, Report};

/// When an attempt began, and the router's error count then.
pub(in crate::deploy) struct Began {
    at: SystemTime,
    instant: Instant,
    errors: Option<u64>,
}

impl Deployer<'_> {
    /// Notes the start of an attempt.
    pub(in crate::deploy) async fn begin_measure(&self) -> Began {
        Began {
            at: SystemTime::now(),
            instant: self.clock.now(),
            errors: self.router_errors().await,
        }
    }

    /// Errors the backend has answered with, all time (none when the router cannot say).
    async fn router_errors(&self) -> Option<u64> {
        let totals = self.router.totals(&self.plan.backend).await.ok()?;
        Some(totals.errors_5xx)
    }

    /// Writes the attempt's metrics file, and pushes it when a Pushgateway is set.
    pub(in crate::deploy) async fn publish_metrics(&self, outcome: &Outcome, began: Began) {
        let (revision, label) = match outcome {
            Outcome::Promoted { revision } => (*revision, "promoted"),
            Outcome::RolledBack { revision, .. } => (*revision, "rolled-back"),
            Outcome::Interrupted { revision } => (*revision, "interrupted"),
            Outcome::Failed { revision, .. } => (*revision, "failed"),
        };
        let steps = self.steps();
        let errors = self.router_errors().await;
        let report = Report {
            app: self.plan.app.clone(),
            env: self.plan.env.clone(),
            version: self.plan.version.clone(),
            revision,
            outcome: label.into(),
            started: began.at,
            duration: self.clock.now().saturating_duration_since(began.instant),
            detection: self.detection.lock().ok().and_then(|d| *d),
            failed_requests: match (began.errors, errors) {
                (Some(before), Some(after)) => after.saturating_sub(before),
                _ => 0,
            },
            hosts: self
                .fleet
                .hosts()
                .iter()
                .map(|h| {
                    let address = h.address().to_string();
                    let n = steps.iter().filter(|s| s.host == address).count();
                    (address, n)
                })
                .collect(),
        };
        let file = &self.plan.metrics_file;
        let written = write_whole(file, report.render().as_bytes());
        match written {
            Ok(()) => self.say(format!("metrics written to {}", file.display())),
            Err(e) => self.tell(
                Level::Warn,
                format!("cannot write the metrics to {}: {e}", file.display()),
            ),
        }
        if let Some(gateway) = &self.plan.pushgateway {
            match metrics::push(&self.http, gateway, &report).await {
                Ok(()) => self.say(format!("metrics pushed to {gateway}")),
                Err(e) => self.tell(
                    Level::Warn,
                    format!(
                        "cannot push the metrics to {gateway}: {}",
                        crate::error::chain(&e)
                    ),
                ),
            }
        }
    }
}

/// Writes `file` whole or not at all (a scraper never reads half of it): a temporary file
/// beside it, renamed over it.
fn write_whole(file: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = file.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}
