//! Publishing to a git repository: a Homebrew tap's formula (clone, write, commit only when it
//! changed, push, and on a lost race rebase and push again), or a whole folder such as an
//! APT/YUM repository on a GitHub Pages branch (on a lost race: reset to the winner's commit and
//! make the change again, since a signed index cannot be merged as text). The token travels in
//! each git call's environment, never its command line or the repository's config, and only to
//! the host it is for ([`token_for`]). Every git call gives up on a transfer slower than 1 KiB/s
//! for a minute and is killed at a deadline (`SHIPIT_GIT_TIMEOUT`), so a server that accepts
//! and never answers cannot hang a release.

pub mod config;
pub mod pull_request;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine;

/// Where and how to push.
#[derive(Clone)]
pub struct GitRemote {
    /// Clone URL or local path.
    pub url: String,
    /// A token for https GitHub remotes.
    pub token: Option<String>,
    /// Branch to push to; `None` for the tap's default branch.
    pub branch: Option<String>,
    /// The folder files are written to (a tap's `Formula`).
    pub folder: String,
    /// Commit author name and email.
    pub author: (String, String),
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// The formula was already up to date; nothing committed.
    Unchanged,
    /// A commit was pushed to `branch`.
    Committed {
        /// The branch pushed.
        branch: String,
        /// Pushes it took (more than one when another push won a race).
        attempts: u32,
    },
    /// A commit was pushed to a branch of its own, for a pull request into `base`.
    Proposed {
        /// The branch pushed.
        branch: String,
        /// The branch the commit was made on.
        base: String,
    },
}

/// Pushes that lost a race are rebased and retried this many times.
const PUSH_ATTEMPTS: u32 = 6;

/// How long one git call may take unless `SHIPIT_GIT_TIMEOUT` says otherwise.
const GIT_TIMEOUT: Duration = Duration::from_secs(600);

/// The token a remote at `url` gets: the channel's own `token_env` when it names one (the
/// variable must then be set), else the first set of `github_vars`, and that only when `url` is
/// https on the GitHub server's origin (`GITHUB_SERVER_URL`, else github.com; host and port). Any other remote
/// gets no token: ssh keys and credential helpers work as they always do.
pub fn token_for(
    url: &str,
    token_env: Option<&str>,
    github_vars: &[&str],
) -> Result<Option<String>, crate::error::Error> {
    if let Some(name) = token_env {
        return match std::env::var(name) {
            Ok(token) if !token.trim().is_empty() => Ok(Some(token)),
            _ => Err(crate::error::Error::Usage(format!(
                "`token_env = \"{name}\"` names a variable that is not set"
            ))),
        };
    }
    let origin = |text: &str| {
        reqwest::Url::parse(text)
            .ok()
            .filter(|u| u.scheme() == "https" && u.host_str().is_some())
            .map(|u| u.origin())
    };
    let github = origin(&crate::publish::github::server_url());
    if github.is_none() || origin(url) != github {
        return Ok(None);
    }
    Ok(github_vars
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|t| !t.trim().is_empty())))
}

/// The deadline of one git call.
fn git_timeout() -> Duration {
    std::env::var(crate::env_vars::SHIPIT_GIT_TIMEOUT)
        .ok()
        .and_then(|t| humantime::parse_duration(t.trim()).ok())
        .unwrap_or(GIT_TIMEOUT)
}

/// `url` without any `user:password@` part, for messages.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) if !userinfo.contains('/') => format!("{scheme}://***@{host}"),
            _ => url.to_string(),
        },
        None => url.to_string(),
    }
}

impl std::fmt::Debug for GitRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitRemote")
            .field("url", &self.display_url())
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("branch", &self.branch)
            .field("folder", &self.folder)
            .finish_non_exhaustive()
    }
}

impl GitRemote {
    /// A channel's repository from its section (`url`, a local path relative to the pipeline
    /// file, or `repo` on GitHub, and `token_env`); the commit author or shipit's; the token
    /// [`token_for`] gives it.
    pub fn for_channel(
        loaded: &crate::config::Loaded,
        channel: &str,
        (url, repo, token_env): (Option<&str>, Option<&str>, Option<&str>),
        author: Option<(String, String)>,
    ) -> Result<GitRemote, crate::error::Error> {
        let web = crate::publish::github::server_url();
        let url = match (url, repo) {
            (Some(url), _) if url.contains("://") || url.contains('@') => url.to_owned(),
            (Some(path), _) => loaded.resolve(path).display().to_string(),
            (None, Some(repo)) => format!("{}/{repo}.git", web.trim_end_matches('/')),
            (None, None) => {
                return Err(crate::error::Error::Usage(format!(
                    "[release.{channel}] needs the repository: `repo = \"owner/name\"` or `url`"
                )));
            }
        };
        let github = [crate::env_vars::GITHUB_TOKEN, crate::env_vars::GH_TOKEN];
        Ok(GitRemote {
            token: token_for(&url, token_env, &github)?,
            url,
            branch: None,
            folder: String::new(),
            author: author
                .unwrap_or_else(|| ("shipit".into(), "shipit@users.noreply.github.com".into())),
        })
    }

    /// The tap's address as shown to people: credentials removed.
    pub fn display_url(&self) -> String {
        redact_url(&self.url)
    }

    /// git, with the token as an extra header (never in a URL or the config) when there is one.
    fn git(&self, dir: Option<&Path>, args: &[&str]) -> Result<String, GitFailed> {
        let mut command = Command::new("git");
        if let Some(dir) = dir {
            command.arg("-C").arg(dir);
        }
        if let Some(token) = self
            .token
            .as_deref()
            .filter(|_| self.url.starts_with("https://"))
        {
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
            crate::secrets::register(&basic);
            // Through git's environment, never its command line (`/proc/*/cmdline` is readable
            // by every local user), after whatever entries the caller's environment holds.
            let count = std::env::var("GIT_CONFIG_COUNT")
                .ok()
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0);
            command
                .env("GIT_CONFIG_COUNT", (count + 1).to_string())
                .env(format!("GIT_CONFIG_KEY_{count}"), "http.extraHeader")
                .env(
                    format!("GIT_CONFIG_VALUE_{count}"),
                    format!("Authorization: Basic {basic}"),
                );
        }
        command
            .args(["-c", "commit.gpgsign=false"])
            .args([
                "-c",
                "http.lowSpeedLimit=1024",
                "-c",
                "http.lowSpeedTime=60",
            ])
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0");
        let deadline = git_timeout();
        let out = crate::child::output_within(&mut command, deadline)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::TimedOut => std::io::Error::new(
                    e.kind(),
                    format!(
                        "git did not finish within {} (SHIPIT_GIT_TIMEOUT)",
                        humantime::format_duration(deadline)
                    ),
                ),
                _ => e,
            })
            .map_err(GitFailed::Spawn)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(GitFailed::Refused(
                stderr.trim().replace(&self.url, &self.display_url()),
            ))
        }
    }

    /// Clones the tap, writes `Formula/<name>.rb`, commits if it changed, and pushes to the
    /// branch (rebasing on a lost race) or, with `pr_branch`, to that branch instead.
    pub fn publish(
        &self,
        name: &str,
        text: &str,
        message: &str,
        pr_branch: Option<&str>,
    ) -> Result<Pushed, TapError> {
        self.publish_file(&format!("{name}.rb"), text, message, pr_branch)
    }

    /// Clones the repository, writes `<folder>/<file>`, commits if it changed, and pushes to
    /// the branch (rebasing on a lost race) or, with `pr_branch`, to that branch instead.
    pub fn publish_file(
        &self,
        file: &str,
        text: &str,
        message: &str,
        pr_branch: Option<&str>,
    ) -> Result<Pushed, TapError> {
        let work = tempfile::tempdir().map_err(|e| TapError::Io("create a folder".into(), e))?;
        let dir = work.path().join("tap");
        let dir_arg = dir.to_string_lossy().into_owned();
        self.git(None, &["clone", "--quiet", &self.url, &dir_arg])
            .map_err(TapError::step(format!(
                "clone the tap {}",
                self.display_url()
            )))?;
        let branch = match &self.branch {
            Some(branch) => {
                // The branch may not exist yet in an empty tap.
                let _ = self.git(Some(&dir), &["checkout", "--quiet", "-B", branch]);
                branch.clone()
            }
            None => self
                .git(Some(&dir), &["symbolic-ref", "--short", "HEAD"])
                .unwrap_or_else(|_| "main".to_string()),
        };
        // The clone is the remote's content: the file is read and written without following
        // a link it holds.
        let relative = format!("{}/{file}", self.folder);
        let rel = crate::relpath::RelPath::new(&relative)
            .map_err(|e| TapError::Io(format!("write {relative}"), std::io::Error::other(e)))?;
        let old = crate::relpath::open_regular(&dir, &rel)
            .ok()
            .and_then(|(file, _)| {
                std::io::read_to_string(std::io::Read::take(file, 64 << 20)).ok()
            });
        if old.is_some_and(|old| old == text) {
            return Ok(Pushed::Unchanged);
        }
        crate::relpath::write_under(&dir, &rel, &mut text.as_bytes(), 0o644)
            .map_err(|e| TapError::Io(format!("write {relative}"), e))?;
        self.git(Some(&dir), &["add", &relative])
            .map_err(TapError::step("add the formula"))?;
        let identity = self.identity();
        self.commit(&dir, message, "commit the formula")?;

        if let Some(pr_branch) = pr_branch {
            return self.propose(&dir, pr_branch, branch);
        }
        let mut last = None;
        for attempt in 1..=PUSH_ATTEMPTS {
            match self.push(&dir, &branch) {
                Ok(()) => {
                    return Ok(Pushed::Committed {
                        branch,
                        attempts: attempt,
                    });
                }
                Err(e) => last = Some(e),
            }
            // Someone pushed first: replay the commit on top of theirs and try again.
            let mut rebase: Vec<&str> = identity.iter().map(String::as_str).collect();
            rebase.extend(["pull", "--quiet", "--rebase", "origin", &branch]);
            self.git(Some(&dir), &rebase)
                .map_err(TapError::step(format!("rebase on the tap's {branch}")))?;
        }
        Err(TapError::Step {
            step: format!("push to the tap's {branch} after {PUSH_ATTEMPTS} attempts"),
            source: last.unwrap_or(GitFailed::Refused(String::new())),
        })
    }
}

impl GitRemote {
    /// Clones `branch` (made as an empty orphan branch when the remote has none), or the default
    /// branch without one.
    fn checkout(&self, dir: &Path) -> Result<String, TapError> {
        let dir_arg = dir.to_string_lossy().into_owned();
        let clone = |extra: &[&str]| {
            let mut args = vec!["clone", "--quiet"];
            args.extend(extra);
            args.extend([self.url.as_str(), dir_arg.as_str()]);
            self.git(None, &args)
        };
        match &self.branch {
            Some(branch) => {
                if clone(&["--branch", branch]).is_ok() {
                    return Ok(branch.clone());
                }
                let _ = std::fs::remove_dir_all(dir);
                clone(&[]).map_err(TapError::step(format!("clone {}", self.display_url())))?;
                self.git(Some(dir), &["checkout", "--quiet", "--orphan", branch])
                    .map_err(TapError::step(format!("make the branch {branch}")))?;
                self.git(Some(dir), &["rm", "-rfq", "--ignore-unmatch", "."])
                    .map_err(TapError::step(format!("empty the branch {branch}")))?;
                Ok(branch.clone())
            }
            None => {
                clone(&[]).map_err(TapError::step(format!("clone {}", self.display_url())))?;
                Ok(self
                    .git(Some(dir), &["symbolic-ref", "--short", "HEAD"])
                    .unwrap_or_else(|_| "main".to_string()))
            }
        }
    }

    fn identity(&self) -> [String; 4] {
        let (author, email) = &self.author;
        [
            "-c".to_string(),
            format!("user.name={author}"),
            "-c".to_string(),
            format!("user.email={email}"),
        ]
    }

    /// Pushes the checkout's `HEAD`, a commit on `base`, to the pull request's branch,
    /// replacing an earlier run's.
    fn propose(&self, dir: &Path, pr_branch: &str, base: String) -> Result<Pushed, TapError> {
        let target = format!("HEAD:refs/heads/{pr_branch}");
        self.git(
            Some(dir),
            &["push", "--quiet", "--force", "origin", &target],
        )
        .map_err(TapError::step(format!("push the branch {pr_branch}")))?;
        Ok(Pushed::Proposed {
            branch: pr_branch.to_string(),
            base,
        })
    }

    /// Pushes the checkout's `HEAD` to `branch`.
    fn push(&self, dir: &Path, branch: &str) -> Result<(), GitFailed> {
        let target = format!("HEAD:refs/heads/{branch}");
        self.git(Some(dir), &["push", "--quiet", "origin", &target])
            .map(drop)
    }

    /// Commits what is staged, as the configured author.
    fn commit(&self, dir: &Path, message: &str, step: &'static str) -> Result<(), TapError> {
        let identity = self.identity();
        let mut commit: Vec<&str> = identity.iter().map(String::as_str).collect();
        commit.extend(["commit", "--quiet", "-m", message]);
        self.git(Some(dir), &commit).map_err(TapError::step(step))?;
        Ok(())
    }

    /// A fresh clone of the branch as it is on the remote now, for reading back what was
    /// pushed (`release --check`); `branch` overrides the configured one (a pull request's).
    /// The folder files are in is `folder` inside it.
    pub fn read_copy(&self, branch: Option<&str>) -> Result<ReadCopy, TapError> {
        let work = tempfile::tempdir().map_err(|e| TapError::Io("create a folder".into(), e))?;
        let dir = work.path().join("checkout");
        let remote = GitRemote {
            branch: branch.map(str::to_owned).or_else(|| self.branch.clone()),
            ..self.clone()
        };
        remote.checkout(&dir)?;
        Ok(ReadCopy {
            folder: dir.join(&self.folder),
            _work: work,
        })
    }

    /// Clones the branch, lets `edit` change the checkout's folder, commits what changed and
    /// pushes. When another push won the race, the checkout is reset to the winner's commit
    /// and `edit` runs again on it, so both changes land. With `pr_branch`, the commit goes
    /// to that branch instead (replacing it), for a pull request.
    pub fn publish_folder<E>(
        &self,
        message: &str,
        pr_branch: Option<&str>,
        mut edit: impl FnMut(&Path) -> Result<(), E>,
    ) -> Result<Pushed, TapError>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let work = tempfile::tempdir().map_err(|e| TapError::Io("create a folder".into(), e))?;
        let dir = work.path().join("checkout");
        let branch = self.checkout(&dir)?;
        let mut last = None;
        for attempt in 1..=PUSH_ATTEMPTS {
            edit(&dir.join(&self.folder)).map_err(|e| TapError::Edit(Box::new(e)))?;
            self.git(Some(&dir), &["add", "-A"])
                .map_err(TapError::step("add the changes"))?;
            let status = self
                .git(Some(&dir), &["status", "--porcelain"])
                .map_err(TapError::step("read the checkout's status"))?;
            if status.is_empty() {
                return Ok(Pushed::Unchanged);
            }
            self.commit(&dir, message, "commit the changes")?;
            if let Some(pr_branch) = pr_branch {
                return self.propose(&dir, pr_branch, branch);
            }
            match self.push(&dir, &branch) {
                Ok(()) => {
                    return Ok(Pushed::Committed {
                        branch,
                        attempts: attempt,
                    });
                }
                Err(e) => last = Some(e),
            }
            self.git(Some(&dir), &["fetch", "--quiet", "origin", &branch])
                .map_err(TapError::step(format!("fetch the newer {branch}")))?;
            self.git(Some(&dir), &["reset", "--quiet", "--hard", "FETCH_HEAD"])
                .map_err(TapError::step(format!("reset to the newer {branch}")))?;
        }
        Err(TapError::Step {
            step: format!("push to {branch} after {PUSH_ATTEMPTS} attempts"),
            source: last.unwrap_or(GitFailed::Refused(String::new())),
        })
    }
}

/// A clone made to read from, removed when dropped.
pub struct ReadCopy {
    /// The folder the channel writes its files to, inside the clone.
    pub folder: std::path::PathBuf,
    _work: tempfile::TempDir,
}

/// A git command that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum GitFailed {
    /// git could not be run, or did not finish in time.
    #[error("cannot run git")]
    Spawn(#[source] std::io::Error),
    /// git refused; what it said (the tap's address without credentials).
    #[error("{0}")]
    Refused(String),
}

/// Why nothing was pushed.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// Changing the checkout failed.
    #[error("cannot update the checkout")]
    Edit(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A local folder or file could not be made.
    #[error("cannot {0}")]
    Io(String, #[source] std::io::Error),
    /// A git step failed.
    #[error("cannot {step}")]
    Step {
        /// The step.
        step: String,
        /// What git said.
        #[source]
        source: GitFailed,
    },
}

impl TapError {
    fn step(step: impl Into<String>) -> impl FnOnce(GitFailed) -> TapError {
        let step = step.into();
        move |source| TapError::Step { step, source }
    }
}
