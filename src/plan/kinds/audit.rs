//! `uses = "audit"`: the workspace's Cargo.lock against the RustSec advisory database (see
//! [`crate::audit`]); the stage fails on a vulnerability at or above `fail_on`, and its report
//! is an artifact.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Context, Expansion, Kind, StageRef};
use crate::audit::{AuditSpec, IgnoreRule, Level};
use crate::config::Problem;
use crate::config::validate::template_problem;
use crate::manifest::ArtifactKind;
use crate::plan::{PlannedArtifact, Unit};
use crate::tasks::Task;
use crate::{path, template};

/// Options of `uses = "audit"`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct AuditOptions {
    /// The advisory database: a folder (a clone of github.com/rustsec/advisory-db, relative to the pipeline file) or a git URL (cloned, then pulled, into shipit's cache).
    pub db: Option<String>,
    /// Fail on vulnerabilities at or above this severity: `low`, `medium`, `high` or `critical` (advisories without a CVSS score count as high). Default: `low`.
    pub fail_on: Option<Level>,
    /// Advisories let through: `[{ id = "RUSTSEC-2024-0001", until = "2027-01-01", reason = "..." }]`; once `until` has passed they fail again.
    #[serde(default)]
    pub ignore: Vec<IgnoreRule>,
    /// The sparse index yanked crates are read from; `""` skips that check. Default: `https://index.crates.io/`.
    pub index: Option<String>,
    /// The report's file name in dist (template). Default: `{{ project }}-{{ version }}-audit.json`.
    pub report: Option<String>,
}

/// The `audit` kind.
pub struct Audit;

/// `RUSTSEC-YYYY-NNNN`.
fn is_advisory_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    parts.len() == 3
        && parts[0] == "RUSTSEC"
        && parts[1].len() == 4
        && parts[2].len() == 4
        && parts[1..]
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// `YYYY-MM-DD`, a real date.
fn is_date(text: &str) -> bool {
    text.len() == 10 && humantime::parse_rfc3339(&format!("{text}T00:00:00Z")).is_ok()
}

impl Kind for Audit {
    type Options = AuditOptions;
    const NAME: &'static str = "audit";
    const ABOUT: &'static str = "a gate: Cargo.lock against the RustSec advisory database";

    fn check(&self, stage: &StageRef<'_>, options: &AuditOptions) -> Vec<Problem> {
        let mut problems = Vec::new();
        if options.db.as_deref().is_none_or(|d| d.trim().is_empty()) {
            problems.push(
                Problem::new("an audit stage needs the advisory database: `db`", stage.span("uses"))
                    .help("a clone of https://github.com/rustsec/advisory-db, `db = \"advisory-db\"`, or its git URL"),
            );
        }
        for (i, rule) in options.ignore.iter().enumerate() {
            let at = stage
                .loaded
                .span_near(path!["stages", stage.name, "ignore", i]);
            if !is_advisory_id(&rule.id) {
                problems.push(Problem::new(
                    format!("`{}` is not an advisory id (`RUSTSEC-YYYY-NNNN`)", rule.id),
                    at.clone(),
                ));
            }
            if let Some(until) = &rule.until
                && !is_date(until)
            {
                problems.push(Problem::new(
                    format!("`until = \"{until}\"` is not a date (`YYYY-MM-DD`)"),
                    at.clone(),
                ));
            }
            if rule.reason.trim().is_empty() {
                problems.push(
                    Problem::new("an ignored advisory needs a `reason`", at)
                        .help("say why it does not affect this project"),
                );
            }
        }
        problems
    }

    fn expand(
        &self,
        stage: &StageRef<'_>,
        options: AuditOptions,
        context: &Context<'_>,
    ) -> Result<Expansion, Vec<Problem>> {
        let facts = context.facts;
        let db = options.db.unwrap_or_default();
        let report = match &options.report {
            Some(text) => template::render(text, &facts.template_vars()).map_err(|e| {
                vec![template_problem(
                    stage.loaded,
                    path!["stages", stage.name, "report"],
                    text,
                    e,
                )]
            })?,
            None => format!("{}-{}-audit.json", facts.project, facts.version),
        };
        let spec = AuditSpec {
            db: crate::audit::database_location(&db, &stage.loaded.base_dir),
            db_url: crate::audit::is_url(&db).then(|| db.clone()),
            lockfile: facts.cargo.workspace_root.join("Cargo.lock"),
            fail_on: options.fail_on.unwrap_or(Level::Low),
            ignore: options.ignore,
            index: match options.index {
                Some(index) if index.is_empty() => None,
                Some(index) => Some(index),
                None => Some("https://index.crates.io/".into()),
            },
            report: context.dist_path(&report),
        };
        Ok(Expansion {
            units: vec![Unit::task(
                None,
                Task::Audit(Box::new(spec)),
                vec![PlannedArtifact::written(report, ArtifactKind::File, None)],
            )],
            requires: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_dates_are_checked() {
        assert!(is_advisory_id("RUSTSEC-2024-0001"));
        assert!(!is_advisory_id("RUSTSEC-24-1"));
        assert!(!is_advisory_id("CVE-2024-0001"));
        assert!(is_date("2027-01-01"));
        assert!(!is_date("2027-13-01"));
        assert!(!is_date("soon"));
    }
}
