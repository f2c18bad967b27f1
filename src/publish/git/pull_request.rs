//! Pull-request mode of the channels that push to a git repository (Homebrew, Scoop, winget):
//! the change goes to a branch of its own, and a pull request proposes it, either on the same
//! repository (`pull_request = true`) or, from your fork, on the repository you forked
//! (`pull_request = { repo = "microsoft/winget-pkgs" }`), which is how winget-pkgs and most
//! shared buckets take contributions.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::names::repo_problem;
use crate::config::{Loaded, Problem};
use crate::error::Error;
use crate::path;
use crate::publish::git::Pushed;
use crate::publish::github::{self, Client};

/// `pull_request`: `true` for one on the channel's own repository, or the repository the
/// channel's repository is a fork of.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum PullRequestConfig {
    /// `true`: push a branch and open a pull request on the same repository; `false`: push
    /// to the branch.
    Enabled(bool),
    /// Push a branch to the channel's repository (your fork) and open the pull request on
    /// `repo`.
    #[schemars(title = "upstream")]
    Upstream {
        /// `owner/name` the pull request is opened on.
        repo: String,
        /// Its branch to merge into. Default: its default branch.
        base: Option<String>,
    },
}

/// A pull request to open once its branch is pushed.
#[derive(Debug, Clone, Serialize)]
pub struct PullRequest {
    /// `owner/name` it is opened on.
    pub repo: String,
    /// Owner of the fork the branch is pushed to, when it comes from a fork.
    pub fork_owner: Option<String>,
    /// The branch merged into; `None` for the branch the checkout was on (same repository) or
    /// the upstream's default branch.
    pub base: Option<String>,
    /// The branch pushed.
    pub branch: String,
    api_url: String,
    #[serde(skip)]
    max_retry: Duration,
}

impl PullRequest {
    /// The pull request of `[release.<channel>]`, whose repository is `own_repo` (`owner/name`
    /// on GitHub, if given), proposing `branch`; `None` when the section asks for none.
    pub fn plan(
        loaded: &Loaded,
        channel: &str,
        config: Option<&PullRequestConfig>,
        own_repo: Option<&str>,
        branch: String,
    ) -> Result<Option<PullRequest>, Error> {
        let (repo, fork_owner, base) = match config {
            None | Some(PullRequestConfig::Enabled(false)) => return Ok(None),
            Some(PullRequestConfig::Enabled(true)) => {
                let Some(own) = own_repo else {
                    return Err(Error::Usage(format!(
                        "[release.{channel}] pull_request = true needs the repository's `repo = \"owner/name\"`, to open the pull request on"
                    )));
                };
                (own.to_owned(), None, None)
            }
            Some(PullRequestConfig::Upstream { repo, base }) => {
                let Some((owner, _)) = own_repo.and_then(|r| r.split_once('/')) else {
                    return Err(Error::Usage(format!(
                        "[release.{channel}] a pull request from a fork needs the fork's `repo = \"owner/name\"`"
                    )));
                };
                (repo.clone(), Some(owner.to_owned()), base.clone())
            }
        };
        let release = crate::publish::github::config::section(loaded)?;
        Ok(Some(PullRequest {
            repo,
            fork_owner,
            base,
            branch,
            api_url: github::api_url(),
            max_retry: release
                .as_ref()
                .map_or(github::DEFAULT_MAX_RETRY, github::max_retry),
        }))
    }

    /// Opens it (`checkout_base` is the branch the pushed commit was made on); what to tell
    /// the user.
    pub async fn open(
        &self,
        checkout_base: &str,
        title: &str,
        body: &str,
    ) -> Result<String, Error> {
        let token = github::token().unwrap_or_default();
        let client = Client::new(&self.api_url, &token, self.max_retry)?;
        let base = match (&self.base, &self.fork_owner) {
            (Some(base), _) => base.clone(),
            (None, None) => checkout_base.to_owned(),
            (None, Some(_)) => client.default_branch(&self.repo).await?,
        };
        let head = match &self.fork_owner {
            Some(owner) => format!("{owner}:{}", self.branch),
            None => self.branch.clone(),
        };
        let url = client
            .open_pull_request(&self.repo, &head, &base, title, body)
            .await?;
        Ok(match url {
            Some(url) => format!("opened {url}"),
            None => format!("a pull request for {head} is already open on {}", self.repo),
        })
    }
}

/// Tells what a push of `what` (`bucket/demo.json`) to `place` (`the bucket`) did, once it
/// changed something, and opens the pull request when the commit went to a branch of its own.
/// `unchanged` is what to say when nothing changed.
pub async fn report(
    pushed: &Pushed,
    pull: Option<&PullRequest>,
    what: &str,
    place: &str,
    title: &str,
    unchanged: String,
    say: &dyn Fn(String),
) -> Result<(), Error> {
    match pushed {
        Pushed::Unchanged => say(unchanged),
        Pushed::Committed { branch, attempts } => say(format!(
            "pushed {what} to {place}'s {branch}{}",
            if *attempts > 1 {
                " (rebased on newer commits)"
            } else {
                ""
            }
        )),
        Pushed::Proposed { branch, base } => {
            say(format!("pushed {what} to {place}'s branch {branch}"));
            if let Some(pull) = pull {
                let body = format!("{title}, released by shipit.");
                say(pull.open(base, title, &body).await?);
            }
        }
    }
    Ok(())
}

/// Problems of a git channel's repository (`[release.<channel>] <key> = { repo = ... }`, its
/// `repo` given here) and its `pull_request`: a `repo` or an upstream that is not `owner/name`.
pub fn check(
    loaded: &Loaded,
    channel: &str,
    key: &str,
    repository: Option<&str>,
    config: Option<&PullRequestConfig>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(repo) = repository {
        problems.extend(repo_problem(
            repo,
            loaded.span(path!["release", channel, key, "repo"]),
        ));
    }
    if let Some(PullRequestConfig::Upstream { repo, .. }) = config {
        problems.extend(repo_problem(
            repo,
            loaded.span(path!["release", channel, "pull_request", "repo"]),
        ));
    }
    problems
}
