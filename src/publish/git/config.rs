//! How the git-backed channels (Homebrew taps, Scoop buckets, winget repositories) name their
//! repository and the author of their commits in the pipeline file.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a git-backed channel's repository lives (a tap, a bucket, a fork of winget-pkgs).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TapConfig {
    /// `owner/name` on GitHub.
    pub repo: Option<String>,
    /// A clone URL or a local path; overrides the one made from `repo`.
    pub url: Option<String>,
    /// The variable holding the token for this repository, whatever its host. Without it, the
    /// GitHub token goes only to an https remote on GitHub's host.
    pub token_env: Option<String>,
}

impl TapConfig {
    /// `url`, `repo` and `token_env`, as [`crate::publish::git::GitRemote::for_channel`] takes them.
    pub fn parts(&self) -> (Option<&str>, Option<&str>, Option<&str>) {
        (
            self.url.as_deref(),
            self.repo.as_deref(),
            self.token_env.as_deref(),
        )
    }
}

/// A git identity.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CommitAuthor {
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
}
