//! `[release.winget]` as the pipeline file writes it, and what `shipit check` checks of it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{Loaded, Problem};
use crate::path;
use crate::publish::git::config::{CommitAuthor, TapConfig};

/// `[release.winget]`: the multi-file manifests of a winget package, written to a repository
/// laid out like `microsoft/winget-pkgs` (`manifests/<l>/<Publisher>/<Name>/<version>/`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct WingetConfig {
    /// The repository: `{ repo = "acme/winget-pkgs" }` (GitHub, token from `GITHUB_TOKEN`) or
    /// `{ url = "..." }`.
    pub repository: TapConfig,
    /// `Publisher.Name`, winget's package identifier (`Acme.Demo`).
    pub identifier: String,
    /// The publisher's name. Default: the identifier's first part.
    pub publisher: Option<String>,
    /// The package's name. Default: the project name.
    pub name: Option<String>,
    /// One-line description. Default: Cargo's.
    pub description: Option<String>,
    /// License. Default: Cargo's.
    pub license: Option<String>,
    /// Home page. Default: Cargo's, else the GitHub repository's page.
    pub homepage: Option<String>,
    /// Branch to push to. Default: the repository's default branch.
    pub branch: Option<String>,
    /// Commit author, `{ name = "...", email = "..." }`. Default: shipit.
    pub commit_author: Option<CommitAuthor>,
    /// Push a branch and open a pull request instead of pushing to the branch: `true` (on
    /// the repository), or `{ repo = "microsoft/winget-pkgs" }` when the repository is your
    /// fork of that one.
    pub pull_request: Option<crate::publish::git::pull_request::PullRequestConfig>,
    /// Publish pre-releases too.
    #[serde(default)]
    pub prerelease: bool,
}

/// winget's identifier grammar: two to eight dot-separated parts of 1 to 32 characters, none
/// of `\ / : * ? " < > |`, whitespace or control characters.
pub fn identifier_problem(identifier: &str) -> Option<String> {
    let parts: Vec<&str> = identifier.split('.').collect();
    let part_ok = |p: &&str| {
        (1..=32).contains(&p.chars().count())
            && !p
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "\\/:*?\"<>|".contains(c))
    };
    let ok = (2..=8).contains(&parts.len()) && parts.iter().all(part_ok) && identifier.len() <= 128;
    (!ok).then(|| {
        format!("`{identifier}` is not a winget identifier: `Publisher.Name`, parts without spaces or `\\ / : * ? \" < > |`")
    })
}

/// Every problem of the section beyond its types, located.
pub fn check(loaded: &Loaded, winget: &WingetConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    problems.extend(crate::publish::git::pull_request::check(
        loaded,
        "winget",
        "repository",
        winget.repository.repo.as_deref(),
        winget.pull_request.as_ref(),
    ));
    if let Some(why) = identifier_problem(&winget.identifier) {
        problems.push(
            Problem::new(why, loaded.span(path!["release", "winget", "identifier"]))
                .help("for example `Acme.Demo`"),
        );
    }
    problems
}
