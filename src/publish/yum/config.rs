//! `[release.yum]` as the pipeline file writes it, and what `shipit check` checks of it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{KeyConfig, Loaded, Problem};
use crate::path;
use crate::publish::apt::config::{GitLocation, key_problems, location_problems, word_problem};

/// `[release.yum]`: a signed YUM/DNF repository holding the `.rpm` packages of every release.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct YumConfig {
    /// The repository's folder (made when missing), relative to the pipeline file; serve it
    /// with any web server.
    pub path: Option<String>,
    /// Or a git repository holding it, pushed like the Homebrew tap: `{ url = "...", branch = "gh-pages" }` (GitHub Pages serves it).
    pub git: Option<GitLocation>,
    /// The OpenPGP key that signs `repomd.xml`: `{ env = "...", password_env = "..." }`.
    pub key: KeyConfig,
    /// Versions kept per package and architecture; older ones leave the repository. Default: all.
    pub keep: Option<usize>,
    /// The repository's id in the `.repo` file users install. Default: the project name.
    pub id: Option<String>,
    /// The address users reach the repository at, for the `.repo` file. Default: the folder as a `file://` address.
    pub url: Option<String>,
}

/// Every problem of the section beyond its types, located.
pub fn check(loaded: &Loaded, yum: &YumConfig) -> Vec<Problem> {
    let mut problems = key_problems(loaded, "yum", &yum.key, yum.keep);
    problems.extend(location_problems(
        loaded, "yum", &yum.path, &yum.git, &yum.url,
    ));
    if let Some(why) = yum.id.as_deref().and_then(word_problem) {
        problems.push(
            Problem::new(why, loaded.span(path!["release", "yum", "id"]))
                .help("it is the `[id]` of the .repo file"),
        );
    }
    problems
}
