//! `[release.homebrew]` as the pipeline file writes it, and what `shipit check` checks of it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::names::{NameKind, name_problem};
use crate::config::{Loaded, Problem};
use crate::path;
pub use crate::publish::git::config::{CommitAuthor, TapConfig};

/// `[release.homebrew]`: a formula in a Homebrew tap, so `brew install owner/tap/name` works.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HomebrewConfig {
    /// The tap: `{ repo = "acme/homebrew-tap" }` (GitHub, token from `GITHUB_TOKEN`), or
    /// `{ url = "..." }` (https, ssh or a local path).
    pub tap: TapConfig,
    /// Formula name. Default: the project name.
    pub name: Option<String>,
    /// One-line description.
    pub description: Option<String>,
    /// Home page. Default: the GitHub repository's page.
    pub homepage: Option<String>,
    /// SPDX license. Default: the Cargo package's.
    pub license: Option<String>,
    /// Your own formula template (minijinja), relative to the pipeline file.
    pub template: Option<String>,
    /// Formulae it depends on.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Formulae it conflicts with.
    #[serde(default)]
    pub conflicts_with: Vec<String>,
    /// Text shown after installing.
    pub caveats: Option<String>,
    /// A service: the command `brew services` runs (first word is the installed binary).
    pub service: Option<Vec<String>>,
    /// Shell completions inside the archive, by shell: `{ bash = "completions/demo.bash" }`.
    #[serde(default)]
    pub completions: BTreeMap<String, String>,
    /// Man pages inside the archive.
    #[serde(default)]
    pub manpages: Vec<String>,
    /// Folder of the tap holding formulae. Default: `Formula`.
    pub folder: Option<String>,
    /// Branch to push to. Default: the tap's default branch.
    pub branch: Option<String>,
    /// Commit author, `{ name = "...", email = "..." }`. Default: shipit.
    pub commit_author: Option<CommitAuthor>,
    /// Push a branch and open a pull request instead of pushing to the branch: `true` (on
    /// the tap), or `{ repo = "owner/name" }` when the tap is your fork of that repository.
    pub pull_request: Option<crate::publish::git::pull_request::PullRequestConfig>,
    /// Publish pre-releases too.
    #[serde(default)]
    pub prerelease: bool,
}

/// Every problem of the section beyond its types, located.
pub fn check(loaded: &Loaded, brew: &HomebrewConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    problems.extend(crate::publish::git::pull_request::check(
        loaded,
        "homebrew",
        "tap",
        brew.tap.repo.as_deref(),
        brew.pull_request.as_ref(),
    ));
    if let Some(formula) = &brew.name {
        problems.extend(name_problem(
            NameKind::Project,
            formula,
            loaded.span_near(path!["release", "homebrew", "name"]),
        ));
    }
    problems
}
