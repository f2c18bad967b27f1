//! Facts about the project being built: name and version from cargo metadata, commit and tag
//! from git, the date, the host. Gathered once per run; templates and the plan read them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::Loaded;

/// What `shipit` knows about the project at the start of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    /// Project name.
    pub project: String,
    /// The version being built: `X.Y.Z`, `X.Y.Z-snapshot.<short_commit>`, or
    /// `X.Y.Z-nightly.YYYYMMDD.<short_commit>` (valid semver and a valid OCI tag).
    pub version: String,
    /// The release tag: the tag prefix and the version (`v1.2.3`, or `1.2.3` for bare tags).
    pub tag: String,
    /// Full commit hash, or `unknown` outside a git repository.
    pub commit: String,
    /// Abbreviated commit hash.
    pub short_commit: String,
    /// Current branch, if on one.
    pub branch: Option<String>,
    /// The build date, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// What release tags put before the version (`v`, or `""` for bare tags).
    pub tag_prefix: String,
    /// The build time, RFC 3339 (UTC). `SOURCE_DATE_EPOCH` fixes it for reproducible builds.
    pub timestamp: String,
    /// The time written into archives and signatures, for reproducible output:
    /// `SOURCE_DATE_EPOCH`, else the commit's time, else 1980-01-01.
    pub source_date_epoch: u64,
    /// HEAD carries the release tag.
    pub tag_build: bool,
    /// A nightly build.
    pub nightly: bool,
    /// A snapshot build (`--snapshot`).
    pub snapshot: bool,
    /// The host's Rust target triple.
    pub host: String,
    /// `rustc -vV` of the active toolchain (part of every build's cache key).
    pub rustc: String,
    /// The active toolchain's folder (`rustc --print sysroot`), remapped out of binaries.
    #[serde(skip)]
    pub sysroot: Option<PathBuf>,
    /// Cargo's home (`CARGO_HOME`, else `~/.cargo`), remapped out of binaries.
    #[serde(skip)]
    pub cargo_home: Option<PathBuf>,
    /// Cargo facts.
    pub cargo: CargoFacts,
    /// The environment, for `env.NAME` in templates and `when.env`.
    #[serde(skip)]
    pub env: BTreeMap<String, String>,
}

/// What cargo metadata says about the project.
#[derive(Debug, Clone, Serialize)]
pub struct CargoFacts {
    /// The Cargo manifest.
    pub manifest: PathBuf,
    /// The folder holding the manifest.
    pub root: PathBuf,
    /// Cargo's target directory (honours `CARGO_TARGET_DIR`).
    pub target_dir: PathBuf,
    /// Binaries of the root package.
    pub binaries: Vec<String>,
    /// The workspace's root folder.
    pub workspace_root: PathBuf,
    /// Every workspace member with its binaries.
    pub packages: Vec<PackageFacts>,
    /// The root package's description.
    pub description: Option<String>,
    /// Its SPDX license.
    pub license: Option<String>,
    /// Its home page (or repository).
    pub homepage: Option<String>,
    /// Its `authors` (`Name <email>`).
    pub authors: Vec<String>,
    /// Its README file (Cargo's `readme`, else `README.md` beside the manifest when present).
    pub readme: Option<PathBuf>,
}

/// A workspace member.
#[derive(Debug, Clone, Serialize)]
pub struct PackageFacts {
    /// Package name.
    pub name: String,
    /// Its binary targets.
    pub binaries: Vec<String>,
    /// Its features (optional dependencies' implicit ones included).
    pub features: Vec<String>,
}

/// 1980-01-01, the earliest time a zip can hold: used when there is neither
/// `SOURCE_DATE_EPOCH` nor a commit.
pub const REPRODUCIBLE_FALLBACK_EPOCH: u64 = 315_532_800;

/// How the run was asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct FactsOptions {
    /// `--snapshot`: version `X.Y.Z-snapshot.<short_commit>`, no tag required.
    pub snapshot: bool,
    /// `--nightly`, or a scheduled GitHub Actions run.
    pub nightly: bool,
}

/// Why facts could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    /// cargo metadata failed.
    #[error("cannot read Cargo metadata from {}: {message}", manifest.display())]
    Cargo {
        /// The manifest.
        manifest: PathBuf,
        /// cargo's explanation.
        message: String,
    },
    /// `SOURCE_DATE_EPOCH` is set to something that is not a usable time.
    #[error("SOURCE_DATE_EPOCH=`{value}` is unusable: {why}; unset it, or set seconds since 1970")]
    SourceDateEpoch {
        /// The value (its start).
        value: String,
        /// What is wrong.
        why: String,
    },
    /// HEAD is tagged with a version different from Cargo's.
    #[error("tag `{tag}` at HEAD does not match version {version} in {}", manifest.display())]
    TagMismatch {
        /// The tag found.
        tag: String,
        /// Cargo's version.
        version: String,
        /// The manifest.
        manifest: PathBuf,
    },
}

impl Facts {
    /// Gathers the facts for a loaded pipeline.
    pub fn gather(loaded: &Loaded, options: FactsOptions) -> Result<Facts, FactsError> {
        let manifest = loaded.resolve(loaded.file.project.cargo.as_deref().unwrap_or("Cargo.toml"));
        // Stage commands run in their own folders, so every path handed to them is absolute.
        let manifest = std::path::absolute(&manifest)
            .map(|p| crate::config::normalize(&p))
            .unwrap_or(manifest);
        let metadata = cargo_metadata::MetadataCommand::new()
            .manifest_path(&manifest)
            .no_deps()
            .exec()
            .map_err(|e| FactsError::Cargo {
                manifest: manifest.clone(),
                message: first_line(&e.to_string()),
            })?;
        let package = metadata
            .root_package()
            .or_else(|| metadata.workspace_packages().into_iter().next())
            .ok_or_else(|| FactsError::Cargo {
                manifest: manifest.clone(),
                message: "the workspace has no packages".to_string(),
            })?;
        let root = manifest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let bins_of = |p: &cargo_metadata::Package| -> Vec<String> {
            p.targets
                .iter()
                .filter(|t| t.is_bin())
                .map(|t| t.name.clone())
                .collect()
        };
        let binaries = bins_of(package);
        let packages = metadata
            .workspace_packages()
            .into_iter()
            .map(|p| PackageFacts {
                name: p.name.to_string(),
                binaries: bins_of(p),
                features: p.features.keys().cloned().collect(),
            })
            .collect();
        let cargo_version = package.version.to_string();
        let env: BTreeMap<String, String> = std::env::vars().collect();

        let git = Git::new(&root);
        let commit = git
            .run(&["rev-parse", "HEAD"])
            .unwrap_or_else(|| "unknown".into());
        let short_commit = if commit == "unknown" {
            commit.clone()
        } else {
            commit.chars().take(7).collect()
        };
        let nightly = options.nightly
            || env
                .get(crate::env_vars::GITHUB_EVENT_NAME)
                .is_some_and(|e| e == "schedule");
        let configured_prefix = loaded.file.project.tag_prefix.clone();
        let head_tag = head_release_tag(&git, &env, configured_prefix.as_deref());
        let mut tag_build = false;
        // The project's scheme: as configured, else as the tag at HEAD (or the latest release
        // tag before it) is written, else `v`.
        let mut tag_prefix = configured_prefix
            .clone()
            .or_else(|| head_tag.as_ref().map(|(_, prefix)| prefix.clone()))
            .or_else(|| latest_release_prefix(&git))
            .unwrap_or_else(|| "v".into());
        // Snapshots and nightlies are not releases of a tag, so a tag at HEAD does not bind them.
        if let Some((tag, prefix)) = head_tag.filter(|_| !options.snapshot && !nightly) {
            let tagged = &tag[prefix.len()..];
            if tagged != cargo_version {
                return Err(FactsError::TagMismatch {
                    tag,
                    version: cargo_version,
                    manifest,
                });
            }
            tag_prefix = prefix;
            tag_build = true;
        }
        let epoch = source_date_epoch(&env)?;
        let build_time = epoch
            .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap_or_else(SystemTime::now);
        let version = if options.snapshot {
            format!("{cargo_version}-snapshot.{}", prerelease_id(&short_commit))
        } else if nightly {
            let day =
                humantime::format_rfc3339_seconds(build_time).to_string()[..10].replace('-', "");
            format!(
                "{cargo_version}-nightly.{day}.{}",
                prerelease_id(&short_commit)
            )
        } else {
            cargo_version
        };
        let branch = env
            .get(crate::env_vars::GITHUB_HEAD_REF)
            .filter(|b| !b.is_empty())
            .cloned()
            .or_else(|| git.run(&["symbolic-ref", "--short", "-q", "HEAD"]))
            .or_else(|| {
                match env
                    .get(crate::env_vars::GITHUB_REF_TYPE)
                    .map(String::as_str)
                {
                    Some("branch") => env.get(crate::env_vars::GITHUB_REF_NAME).cloned(),
                    _ => None,
                }
            });
        let timestamp = humantime::format_rfc3339_seconds(build_time).to_string();
        let rustc = rustc_version();
        let source_date_epoch = epoch
            .or_else(|| {
                git.run(&["log", "-1", "--format=%ct"])
                    .and_then(|t| t.parse().ok())
            })
            .unwrap_or(REPRODUCIBLE_FALLBACK_EPOCH);

        Ok(Facts {
            project: loaded
                .file
                .project
                .name
                .clone()
                .unwrap_or_else(|| package.name.to_string()),
            tag: format!("{tag_prefix}{version}"),
            tag_prefix,
            version,
            commit,
            short_commit,
            branch,
            date: timestamp[..10].to_string(),
            timestamp,
            source_date_epoch,
            tag_build,
            nightly,
            snapshot: options.snapshot,
            host: host_triple(&rustc),
            rustc,
            sysroot: rustc_sysroot(),
            cargo_home: home::cargo_home().ok(),
            cargo: CargoFacts {
                manifest: manifest.clone(),
                root,
                target_dir: metadata.target_directory.clone().into_std_path_buf(),
                binaries,
                workspace_root: metadata.workspace_root.clone().into_std_path_buf(),
                packages,
                description: package.description.clone(),
                license: package.license.clone(),
                homepage: package
                    .homepage
                    .clone()
                    .or_else(|| package.repository.clone()),
                authors: package.authors.clone(),
                readme: package
                    .readme
                    .as_ref()
                    .map(|r| {
                        package
                            .manifest_path
                            .parent()
                            .map_or(r.clone().into_std_path_buf(), |dir| {
                                dir.join(r).into_std_path_buf()
                            })
                    })
                    .or_else(|| Some(manifest.with_file_name("README.md")))
                    .filter(|p| p.is_file()),
            },
            env,
        })
    }

    /// Template variables shared by every template of the run.
    pub fn template_vars(&self) -> minijinja::Value {
        let (major, minor, patch, prerelease) = version_parts(&self.version);
        minijinja::context! {
            project => self.project,
            version => self.version,
            major => major,
            minor => minor,
            patch => patch,
            prerelease => prerelease,
            tag => self.tag,
            commit => self.commit,
            short_commit => self.short_commit,
            date => self.date,
            branch => self.branch.clone().unwrap_or_default(),
            nightly => self.nightly,
            snapshot => self.snapshot,
            env => self.env,
        }
    }
}

/// The date of a nightly version or tag: `0.4.0-nightly.20261123.3c2b19e` (what
/// `--nightly` builds) or `nightly-20261123` give `20261123`; anything else `None`.
pub fn nightly_date(tag: &str) -> Option<&str> {
    let rest = match tag.split_once("-nightly.") {
        Some((_, rest)) => rest,
        None => tag.strip_prefix("nightly-")?,
    };
    let date = rest.split(['.', '-']).next()?;
    (date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit())).then_some(date)
}

/// `1.2.3-rc.1+build` as `("1", "2", "3", "rc.1")`; missing parts are empty.
pub fn version_parts(version: &str) -> (String, String, String, String) {
    let core_and_pre = version.split('+').next().unwrap_or_default();
    let (core, pre) = core_and_pre.split_once('-').unwrap_or((core_and_pre, ""));
    let mut numbers = core.split('.').map(String::from);
    (
        numbers.next().unwrap_or_default(),
        numbers.next().unwrap_or_default(),
        numbers.next().unwrap_or_default(),
        pre.to_string(),
    )
}

/// The `v*` tag on HEAD, from git or from GitHub Actions' ref on tag pushes.
/// The release tag at HEAD with the prefix it is written with: `prefix` when configured, else
/// `v1.2.3` or a bare `1.2.3`. A release tag is the prefix followed by a digit.
fn head_release_tag(
    git: &Git,
    env: &BTreeMap<String, String>,
    prefix: Option<&str>,
) -> Option<(String, String)> {
    let prefixes: Vec<&str> = match prefix {
        Some(p) => vec![p],
        None => vec!["v", ""],
    };
    let split = |tag: &str| {
        prefixes
            .iter()
            .find(|p| {
                tag.strip_prefix(**p)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            })
            .map(|p| (tag.to_string(), p.to_string()))
    };
    if env
        .get(crate::env_vars::GITHUB_REF_TYPE)
        .is_some_and(|t| t == "tag")
        && let Some(found) = env
            .get(crate::env_vars::GITHUB_REF_NAME)
            .and_then(|n| split(n))
    {
        return Some(found);
    }
    git.run(&["tag", "--points-at", "HEAD"])
        .and_then(|tags| tags.lines().find_map(split))
}

/// The prefix of the latest release tag reachable from HEAD (`v1.2.3` -> `v`, `1.2.3` -> ``),
/// when there is one.
fn latest_release_prefix(git: &Git) -> Option<String> {
    ["v[0-9]*", "[0-9]*"]
        .iter()
        .filter_map(|pattern| {
            let tag = git.run(&["describe", "--tags", "--abbrev=0", "--match", pattern])?;
            // How far back it is: the nearer scheme wins when a project changed schemes.
            let distance: usize = git
                .run(&["rev-list", "--count", &format!("{tag}..HEAD")])?
                .parse()
                .ok()?;
            let prefix = if pattern.starts_with('v') { "v" } else { "" };
            Some((distance, prefix.to_string()))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, prefix)| prefix)
}

/// `id` as a semver pre-release identifier: an all-digit commit prefix such as `0123456` would
/// be a number with a leading zero, which semver forbids, so it gets a `g` (as `git describe`).
fn prerelease_id(id: &str) -> String {
    if id.len() > 1 && id.starts_with('0') && id.chars().all(|c| c.is_ascii_digit()) {
        format!("g{id}")
    } else {
        id.to_string()
    }
}

/// The last second of year 9999: later times cannot be written as RFC 3339 dates.
pub const MAX_SOURCE_DATE_EPOCH: u64 = 253_402_300_799;

/// `SOURCE_DATE_EPOCH` when set: seconds since 1970, up to the end of year 9999. An unusable
/// value is an error, not ignored: ignoring it would silently make the build unreproducible.
fn source_date_epoch(env: &BTreeMap<String, String>) -> Result<Option<u64>, FactsError> {
    let Some(text) = env.get(crate::env_vars::SOURCE_DATE_EPOCH) else {
        return Ok(None);
    };
    let invalid = |why: &str| FactsError::SourceDateEpoch {
        value: text.chars().take(40).collect(),
        why: why.to_string(),
    };
    let digits = text.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("it is not a whole number of seconds since 1970"));
    }
    match digits.parse::<u64>() {
        Ok(secs) if secs <= MAX_SOURCE_DATE_EPOCH => Ok(Some(secs)),
        _ => Err(invalid("it is after the year 9999")),
    }
}

/// `rustc -vV` of the active toolchain; empty when rustc does not run.
pub fn rustc_version() -> String {
    Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default()
}

/// `rustc --print sysroot` of the active toolchain.
pub fn rustc_sysroot() -> Option<PathBuf> {
    Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        .filter(|p| p.is_absolute())
}

/// The `commit-hash:` of `rustc -vV` output.
pub fn rustc_commit(rustc_version: &str) -> Option<&str> {
    rustc_version
        .lines()
        .find_map(|l| l.strip_prefix("commit-hash: "))
        .filter(|c| c.chars().all(|c| c.is_ascii_hexdigit()) && !c.is_empty())
}

/// The host triple in `rustc -vV` output, falling back to the one shipit was built for.
pub fn host_triple(rustc_version: &str) -> String {
    rustc_version
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .unwrap_or_else(|| env!("SHIPIT_BUILD_TARGET").to_string())
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(text)
        .to_string()
}

/// Runs git in a folder; `None` when git fails (not a repository, no commits).
pub(crate) struct Git<'a> {
    dir: &'a Path,
}

impl<'a> Git<'a> {
    pub(crate) fn new(dir: &'a Path) -> Self {
        Git { dir }
    }

    /// git's trimmed stdout; `None` on failure or empty output (stderr is discarded).
    pub(crate) fn run(&self, args: &[&str]) -> Option<String> {
        let dir = if self.dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            self.dir
        };
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !text.is_empty()).then_some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_prefixes_are_valid_semver_identifiers() {
        assert_eq!(prerelease_id("3c2b19e"), "3c2b19e");
        assert_eq!(prerelease_id("1234567"), "1234567");
        assert_eq!(prerelease_id("0123456"), "g0123456");
        assert_eq!(prerelease_id("unknown"), "unknown");
    }

    #[test]
    fn nightly_dates() {
        assert_eq!(
            nightly_date("0.4.0-nightly.20261123.3c2b19e"),
            Some("20261123")
        );
        assert_eq!(
            nightly_date("v0.4.0-nightly.20261123.3c2b19e"),
            Some("20261123")
        );
        assert_eq!(nightly_date("nightly-20261123"), Some("20261123"));
        assert_eq!(nightly_date("nightly-20261123-3c2b19e"), Some("20261123"));
        assert_eq!(nightly_date("nightly"), None);
        assert_eq!(nightly_date("0.4.0"), None);
        assert_eq!(nightly_date("0.4.0-nightly.2026.x"), None);
    }

    #[test]
    fn version_parts_for_tags() {
        let parts = |v| {
            let (a, b, c, d) = version_parts(v);
            [a, b, c, d].join("|")
        };
        assert_eq!(parts("1.2.3"), "1|2|3|");
        assert_eq!(parts("1.2.3-rc.1+build.5"), "1|2|3|rc.1");
        assert_eq!(
            parts("0.1.0-nightly.20261123.abc1234"),
            "0|1|0|nightly.20261123.abc1234"
        );
    }
}
