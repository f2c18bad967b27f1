//! A gate against the RustSec advisory database: the Cargo.lock of the packages built,
//! checked against a local copy of the database (the `rustsec` crate reads it and matches
//! versions). A vulnerability at or above `fail_on` fails the stage unless an `ignore` entry
//! names it and has not expired; advisories without a CVSS score count as high. Yanked crates
//! (read from the registry's sparse index when it answers), unmaintained and unsound ones are
//! reported as warnings, and so is a database older than 90 days. The report is written as
//! JSON, whatever the verdict.

mod index;

use std::path::{Path, PathBuf};

use rustsec::advisory::Severity;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A database older than this many days is reported.
pub const MAX_DB_AGE_DAYS: u64 = 90;

/// The severity at which the gate closes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// CVSS 0.1 and up.
    Low,
    /// 4.0 and up.
    Medium,
    /// 7.0 and up (and advisories without a score).
    High,
    /// 9.0 and up.
    Critical,
}

impl Level {
    fn of(severity: Option<Severity>) -> Level {
        match severity {
            Some(Severity::Critical) => Level::Critical,
            Some(Severity::High) | None => Level::High,
            Some(Severity::Medium) => Level::Medium,
            Some(Severity::Low) | Some(Severity::None) => Level::Low,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

/// An advisory let through, until a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct IgnoreRule {
    /// `RUSTSEC-YYYY-NNNN`.
    pub id: String,
    /// The last day it is ignored (`YYYY-MM-DD`); after it, the advisory fails again.
    pub until: Option<String>,
    /// Why it is acceptable.
    pub reason: String,
}

/// An audit to run, planned before the run.
#[derive(Debug, Clone, Serialize)]
pub struct AuditSpec {
    /// The advisory database folder (a clone of rustsec/advisory-db).
    pub db: PathBuf,
    /// The git URL the folder is cloned from and updated from, when `db` named one.
    pub db_url: Option<String>,
    /// The lock file.
    pub lockfile: PathBuf,
    /// The gate.
    pub fail_on: Level,
    /// Advisories let through.
    pub ignore: Vec<IgnoreRule>,
    /// The sparse index yanked versions are read from; `None` skips the check.
    pub index: Option<String>,
    /// Where the JSON report goes.
    pub report: PathBuf,
}

/// What happened to one vulnerability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Status {
    /// At or above the gate: the stage fails.
    Failing,
    /// Below the gate.
    Below,
    /// Ignored, with the rule's reason.
    Ignored {
        /// Why.
        reason: String,
    },
    /// Its ignore rule expired: the stage fails.
    Expired {
        /// The rule's last day.
        until: String,
    },
}

/// One vulnerable package.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Advisory id.
    pub id: String,
    /// Crate.
    pub package: String,
    /// Its version in the lock file.
    pub version: String,
    /// The advisory's title.
    pub title: String,
    /// `low` .. `critical`.
    pub severity: &'static str,
    /// The CVSS base score, when the advisory has one.
    pub score: Option<f64>,
    /// Versions affected (`>=1.0.0, <1.2.4`).
    pub affected: String,
    /// Versions that fix it.
    pub fixed: Vec<String>,
    /// What happened to it.
    #[serde(flatten)]
    pub status: Status,
}

/// A warning: a yanked, unmaintained or unsound crate, or an old database.
#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    /// `yanked`, `unmaintained`, `unsound`, `notice`, `database`.
    pub kind: String,
    /// What it is about.
    pub text: String,
}

/// The stage's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The gate.
    pub fail_on: &'static str,
    /// Vulnerabilities, failing first.
    pub findings: Vec<Finding>,
    /// Warnings.
    pub warnings: Vec<Warning>,
    /// Advisories in the database.
    pub advisories: usize,
    /// Packages in the lock file.
    pub packages: usize,
    /// Whether the gate is open.
    pub passed: bool,
}

/// Why the audit could not run, or failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The database could not be read.
    #[error("cannot read the advisory database {}: {message}", path.display())]
    Database {
        /// Where.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The lock file could not be read.
    #[error("cannot read {}: {message} (a library without one: `cargo generate-lockfile`)", path.display())]
    Lockfile {
        /// Where.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The report could not be written.
    #[error(transparent)]
    File(#[from] crate::file_error::FileError),
    /// Vulnerabilities at or above the gate.
    #[error("{}", failed_text(.0))]
    Failed(Box<Report>),
}

fn failed_text(report: &Report) -> String {
    let failing: Vec<String> = report
        .findings
        .iter()
        .filter(|f| matches!(f.status, Status::Failing | Status::Expired { .. }))
        .map(|f| {
            let expired = match &f.status {
                Status::Expired { until } => format!(" (its ignore expired after {until})"),
                _ => String::new(),
            };
            format!(
                "{} in {} {} ({}{}): {}; affected {}; fixed in {}{expired}",
                f.id,
                f.package,
                f.version,
                f.severity,
                f.score.map(|s| format!(" {s:.1}")).unwrap_or_default(),
                f.title,
                f.affected,
                if f.fixed.is_empty() {
                    "no release yet".to_owned()
                } else {
                    f.fixed.join(", ")
                }
            )
        })
        .collect();
    format!(
        "{} at or above `{}`: {}",
        crate::words::count(failing.len(), "vulnerability", "vulnerabilities"),
        report.fail_on,
        failing.join("; ")
    )
}

/// Whether `db` names a git repository to clone rather than a folder.
pub fn is_url(db: &str) -> bool {
    ["https://", "http://", "file://", "ssh://", "git@"]
        .iter()
        .any(|scheme| db.starts_with(scheme))
}

/// The folder the database of `db` is read from: the folder itself (relative to `base`), or
/// for a URL its clone in shipit's cache.
pub fn database_location(db: &str, base: &Path) -> PathBuf {
    if is_url(db) {
        use sha2::Digest;
        let name = hex::encode(&sha2::Sha256::digest(db.as_bytes())[..8]);
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        cache.join("shipit").join("advisory-db").join(name)
    } else {
        base.join(db)
    }
}

/// Clones the database, or brings an earlier clone up to date; a failed update of an
/// existing clone is a warning (the audit runs on what is there).
fn fetch(url: &str, dir: &Path) -> Result<Option<Warning>, AuditError> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
    };
    let dir_text = dir.to_string_lossy().into_owned();
    if dir.join(".git").is_dir() {
        let pulled = git(&["-C", &dir_text, "pull", "--ff-only", "--quiet"]);
        return Ok(match pulled {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(Warning {
                kind: "database".into(),
                text: format!(
                    "could not update the advisory database from {url}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            }),
            Err(e) => Some(Warning {
                kind: "database".into(),
                text: format!("could not run git to update the advisory database: {e}"),
            }),
        });
    }
    if let Some(parent) = dir.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let cloned = git(&["clone", "--quiet", "--depth", "1", url, &dir_text]);
    match cloned {
        Ok(out) if out.status.success() => Ok(None),
        Ok(out) => Err(AuditError::Database {
            path: dir.to_owned(),
            message: format!(
                "cloning {url}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        }),
        Err(e) => Err(AuditError::Database {
            path: dir.to_owned(),
            message: format!("cannot run git: {e}"),
        }),
    }
}

/// Today, `YYYY-MM-DD` (UTC): expiry is about the real date, not the build's.
fn today() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()[..10].to_owned()
}

/// Days from `from` to `to` (both `YYYY-MM-DD`); `None` when one does not parse.
fn days_between(from: &str, to: &str) -> Option<i64> {
    let at = |d: &str| {
        humantime::parse_rfc3339(&format!("{d}T00:00:00Z"))
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs() as i64 / 86_400)
    };
    Some(at(to)? - at(from)?)
}

/// When the database was last updated: its git commit when it is a clone, else its newest
/// advisory's date.
fn database_date(db: &Path, database: &rustsec::Database) -> Option<String> {
    // Only the database's own clone counts, not a repository it happens to sit in.
    let from_git = std::process::Command::new("git")
        .arg("-C")
        .arg(db)
        .args(["log", "-1", "--format=%cs"])
        .output()
        .ok()
        .filter(|o| o.status.success() && db.join(".git").exists())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|d| d.len() == 10);
    from_git.or_else(|| {
        database
            .iter()
            .map(|a| a.metadata.date.as_str().to_owned())
            .max()
    })
}

/// Runs the audit and writes the report; an error when the gate closes.
pub fn run(spec: &AuditSpec) -> Result<Report, AuditError> {
    let fetched = match &spec.db_url {
        Some(url) => fetch(url, &spec.db)?,
        None => None,
    };
    let database = rustsec::Database::open(&spec.db).map_err(|e| AuditError::Database {
        path: spec.db.clone(),
        message: e.to_string(),
    })?;
    let lockfile = rustsec::Lockfile::load(&spec.lockfile).map_err(|e| AuditError::Lockfile {
        path: spec.lockfile.clone(),
        message: e.to_string(),
    })?;
    let today = today();
    let settings = rustsec::report::Settings {
        informational_warnings: vec![
            rustsec::advisory::Informational::Unmaintained,
            rustsec::advisory::Informational::Unsound,
            rustsec::advisory::Informational::Notice,
        ],
        ..Default::default()
    };
    let generated = rustsec::report::Report::generate(&database, &lockfile, &settings);
    let mut findings: Vec<Finding> = generated
        .vulnerabilities
        .list
        .iter()
        .map(|v| {
            let level = Level::of(v.advisory.cvss.as_ref().map(|c| c.severity()));
            let id = v.advisory.id.to_string();
            let status = match spec.ignore.iter().find(|r| r.id == id) {
                Some(rule) => match &rule.until {
                    Some(until) if days_between(&today, until).is_none_or(|d| d < 0) => {
                        Status::Expired {
                            until: until.clone(),
                        }
                    }
                    _ => Status::Ignored {
                        reason: rule.reason.clone(),
                    },
                },
                None if level >= spec.fail_on => Status::Failing,
                None => Status::Below,
            };
            let ranges = rustsec::osv::ranges_for_advisory(&v.versions);
            let affected: Vec<String> = ranges
                .iter()
                .map(|r| match (&r.introduced, &r.fixed) {
                    (None, None) => "every version".to_owned(),
                    (None, Some(fixed)) => format!("<{fixed}"),
                    (Some(from), None) => format!(">={from}"),
                    (Some(from), Some(fixed)) => format!(">={from}, <{fixed}"),
                })
                .collect();
            Finding {
                id,
                package: v.package.name.to_string(),
                version: v.package.version.to_string(),
                title: v.advisory.title.clone(),
                severity: level.as_str(),
                score: v.advisory.cvss.as_ref().map(|c| c.score()),
                affected: if affected.is_empty() {
                    "every version".to_owned()
                } else {
                    affected.join(" or ")
                },
                fixed: v.versions.patched().iter().map(|r| r.to_string()).collect(),
                status,
            }
        })
        .collect();
    findings.sort_by_key(|f| {
        (
            !matches!(f.status, Status::Failing | Status::Expired { .. }),
            f.id.clone(),
        )
    });
    let mut warnings: Vec<Warning> = generated
        .warnings
        .iter()
        .flat_map(|(kind, list)| list.iter().map(move |w| (kind, w)))
        .map(|(kind, w)| Warning {
            kind: serde_json::to_value(kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "notice".into()),
            text: format!(
                "{} {}{}",
                w.package.name,
                w.package.version,
                w.advisory
                    .as_ref()
                    .map(|a| format!(": {} ({})", a.title, a.id))
                    .unwrap_or_default()
            ),
        })
        .collect();
    warnings.extend(fetched);
    if let Some(date) = database_date(&spec.db, &database)
        && let Some(age) = days_between(&date, &today)
        && age > MAX_DB_AGE_DAYS as i64
    {
        warnings.push(Warning {
            kind: "database".into(),
            text: format!(
                "the advisory database was last updated {date}, {age} days ago (more than {MAX_DB_AGE_DAYS}): update it"
            ),
        });
    }
    if let Some(index) = &spec.index {
        warnings.extend(index::yanked(index, &lockfile));
    }
    let passed = !findings
        .iter()
        .any(|f| matches!(f.status, Status::Failing | Status::Expired { .. }));
    let report = Report {
        fail_on: spec.fail_on.as_str(),
        findings,
        warnings,
        advisories: database.iter().count(),
        packages: lockfile.packages.len(),
        passed,
    };
    let json = format!(
        "{:#}\n",
        serde_json::to_value(&report).unwrap_or(serde_json::Value::Null)
    );
    if let Some(parent) = spec.report.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&spec.report, json)
        .map_err(crate::file_error::FileError::on("write", &spec.report))?;
    if passed {
        Ok(report)
    } else {
        Err(AuditError::Failed(Box::new(report)))
    }
}

/// The report as a table, for the stage's log.
pub fn table(report: &Report) -> String {
    let mut out = format!(
        "{} checked against {} advisories (gate: {})\n",
        crate::words::count(report.packages, "package", "packages"),
        report.advisories,
        report.fail_on
    );
    if report.findings.is_empty() {
        out.push_str("no vulnerabilities\n");
    } else {
        out.push_str(&format!(
            "{:<18} {:<20} {:<10} {:<9} {:<24} {}\n",
            "ADVISORY", "CRATE", "VERSION", "SEVERITY", "FIXED IN", "STATUS"
        ));
        for f in &report.findings {
            let status = match &f.status {
                Status::Failing => "FAILS".to_owned(),
                Status::Below => "below the gate".to_owned(),
                Status::Ignored { reason } => format!("ignored: {reason}"),
                Status::Expired { until } => format!("FAILS: ignore expired after {until}"),
            };
            out.push_str(&format!(
                "{:<18} {:<20} {:<10} {:<9} {:<24} {status}\n",
                f.id,
                f.package,
                f.version,
                f.severity,
                f.fixed.join(", ")
            ));
        }
    }
    for w in &report.warnings {
        out.push_str(&format!("warning ({}): {}\n", w.kind, w.text));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_and_unscored_advisories_count_as_high() {
        assert!(Level::Low < Level::Medium && Level::High < Level::Critical);
        assert_eq!(Level::of(None), Level::High);
        assert_eq!(Level::of(Some(Severity::None)), Level::Low);
    }

    #[test]
    fn days_between_dates() {
        assert_eq!(days_between("2026-01-01", "2026-04-01"), Some(90));
        assert_eq!(days_between("2026-01-02", "2026-01-01"), Some(-1));
        assert_eq!(days_between("nope", "2026-01-01"), None);
    }
}
