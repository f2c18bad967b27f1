//! `[release.scoop]` as the pipeline file writes it, and what `shipit check` checks of it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::names::{NameKind, name_problem};
use crate::config::{Loaded, Problem};
use crate::path;
use crate::publish::git::config::{CommitAuthor, TapConfig};

/// `[release.scoop]`: a manifest in a Scoop bucket, so `scoop install <bucket>/<name>` works.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ScoopConfig {
    /// The bucket: `{ repo = "acme/scoop-bucket" }` (GitHub, token from `GITHUB_TOKEN`), or
    /// `{ url = "..." }` (https, ssh or a local path).
    pub bucket: TapConfig,
    /// Manifest name. Default: the project name.
    pub name: Option<String>,
    /// One-line description. Default: Cargo's.
    pub description: Option<String>,
    /// Home page. Default: Cargo's, else the GitHub repository's page.
    pub homepage: Option<String>,
    /// SPDX license. Default: Cargo's.
    pub license: Option<String>,
    /// Folder of the bucket holding manifests. Default: `bucket`.
    pub folder: Option<String>,
    /// Branch to push to. Default: the bucket's default branch.
    pub branch: Option<String>,
    /// Commit author, `{ name = "...", email = "..." }`. Default: shipit.
    pub commit_author: Option<CommitAuthor>,
    /// Push a branch and open a pull request instead of pushing to the branch: `true` (on
    /// the bucket), or `{ repo = "owner/name" }` when the bucket is your fork of that one.
    pub pull_request: Option<crate::publish::git::pull_request::PullRequestConfig>,
    /// Publish pre-releases too.
    #[serde(default)]
    pub prerelease: bool,
}

/// Every problem of the section beyond its types, located.
pub fn check(loaded: &Loaded, scoop: &ScoopConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    problems.extend(crate::publish::git::pull_request::check(
        loaded,
        "scoop",
        "bucket",
        scoop.bucket.repo.as_deref(),
        scoop.pull_request.as_ref(),
    ));
    if let Some(name) = &scoop.name {
        problems.extend(name_problem(
            NameKind::Project,
            name,
            loaded.span_near(path!["release", "scoop", "name"]),
        ));
    }
    if let Some(folder) = &scoop.folder
        && let Err(e) = crate::relpath::RelPath::new(folder)
    {
        problems.push(Problem::new(
            format!("`folder` {e}"),
            loaded.span(path!["release", "scoop", "folder"]),
        ));
    }
    problems
}
