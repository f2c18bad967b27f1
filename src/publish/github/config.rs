//! `[release.github]` as the pipeline file writes it, and what `shipit check` checks of it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::bounds::{self, CONCURRENCY, KEEP};
use crate::config::names::repo_problem;
use crate::config::{Duration, Loaded, Problem};
use crate::path;

/// The channel's name: its section is `[release.github]`.
pub const NAME: &str = crate::github_urls::SECTION;

/// `[release.github]`, which other channels build on (its repository, its download
/// addresses); `None` when the file has none.
pub fn section(loaded: &Loaded) -> Result<Option<GithubConfig>, crate::error::Error> {
    crate::publish::section(loaded, NAME)
}

/// `[release.github]`: publish the manifest's artifacts as a GitHub Release.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct GithubConfig {
    /// `owner/name` of the repository.
    pub repo: String,
    /// Leave the release as a draft (it is always a draft while assets upload).
    #[serde(default)]
    pub draft: bool,
    /// `"auto"` (from the version's pre-release part), `true` or `false`. Default: `"auto"`.
    pub prerelease: Option<Prerelease>,
    /// Mark as the latest release: `"true"`, `"false"` or `"legacy"`. Default: `"true"`, `"false"` for pre-releases.
    pub make_latest: Option<String>,
    /// Release title (template). Default: `{{ project }} {{ version }}`.
    pub name: Option<String>,
    /// Template file for the release notes, relative to the pipeline file. Default: shipit's
    /// (the CHANGELOG section, else commits since the previous tag).
    pub notes: Option<String>,
    /// Replace an existing asset of the same name whose size differs (else that is an error).
    #[serde(default)]
    pub replace: bool,
    /// Uploads at once. Default: 4.
    pub concurrency: Option<usize>,
    /// Longest total time spent waiting to retry a request (`0s`: never retry). Default: `10m`.
    pub max_retry_time: Option<Duration>,
    /// Nightly runs keep this many dated nightly releases (tags `nightly-YYYYMMDD-<commit>`,
    /// `vX.Y.Z-nightly.YYYYMMDD.*` or `nightly-YYYYMMDD`) besides the rolling `nightly` one,
    /// and delete older ones with their tags. Default: keep all.
    pub keep: Option<usize>,
    /// How nightly runs release: `{ mode = "rolling" }` (the default: one `nightly` release
    /// whose files are replaced and whose tag moves) or `{ mode = "tagged" }` (a release per
    /// nightly, `nightly-YYYYMMDD-<commit>`, never changed once published: the mode for a
    /// repository with immutable releases).
    pub nightly: Option<NightlyConfig>,
}

/// `nightly = { mode = ... }`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct NightlyConfig {
    /// `"rolling"` or `"tagged"`.
    pub mode: NightlyMode,
}

/// How nightlies are released.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NightlyMode {
    /// One `nightly` release, its files replaced and its tag moved each night.
    #[default]
    Rolling,
    /// A new release and tag per nightly; published releases are never changed.
    Tagged,
}

impl GithubConfig {
    /// How nightlies are released.
    pub fn nightly_mode(&self) -> NightlyMode {
        self.nightly.as_ref().map(|n| n.mode).unwrap_or_default()
    }
}

/// `prerelease = "auto" | true | false`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Prerelease {
    /// Decided by hand.
    Fixed(bool),
    /// `"auto"`: a version like `1.2.0-rc.1` is a pre-release.
    Auto(AutoWord),
}

/// The word `auto`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AutoWord {
    /// `auto`.
    Auto,
}

/// Every problem of the section beyond its types, located.
pub fn check(loaded: &Loaded, github: &GithubConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    problems.extend(repo_problem(
        &github.repo,
        loaded.span(path!["release", NAME, "repo"]),
    ));
    problems.extend(bounds::int_problem(
        loaded,
        path!["release", NAME, "concurrency"],
        bounds::as_u64(github.concurrency),
        CONCURRENCY,
    ));
    problems.extend(bounds::int_problem(
        loaded,
        path!["release", NAME, "keep"],
        bounds::as_u64(github.keep),
        KEEP,
    ));
    problems
}
