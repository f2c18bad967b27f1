//! `[release.apt]` as the pipeline file writes it, and what `shipit check` checks of it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{KeyConfig, Loaded, Problem};
use crate::path;

/// `[release.apt]`: a signed APT repository holding the `.deb` packages of every release.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AptConfig {
    /// The repository's folder (made when missing), relative to the pipeline file; serve it
    /// with any web server.
    pub path: Option<String>,
    /// Or a git repository holding it, pushed like the Homebrew tap: `{ url = "...", branch = "gh-pages" }` (GitHub Pages serves it).
    pub git: Option<GitLocation>,
    /// The suite (`dists/<suite>`). Default: `stable`.
    pub suite: Option<String>,
    /// The component. Default: `main`.
    pub component: Option<String>,
    /// The OpenPGP key that signs the Release file: `{ env = "...", password_env = "..." }`.
    pub key: KeyConfig,
    /// Versions kept per package and architecture; older ones leave the index and the pool. Default: all.
    pub keep: Option<usize>,
    /// The `Origin` and `Label` of the Release file. Default: the project name.
    pub origin: Option<String>,
    /// The address users reach the repository at, for the `sources` line printed at the end. Default: the folder as a `file:` address.
    pub url: Option<String>,
}

/// A repository kept in git (shared by `[release.apt]` and `[release.yum]`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct GitLocation {
    /// A clone URL (https, ssh) or a local path; an https remote on GitHub's host gets
    /// `GITHUB_TOKEN`, any other only the token `token_env` names.
    pub url: String,
    /// The variable holding the token for this repository, whatever its host.
    pub token_env: Option<String>,
    /// The branch. Default: the repository's default branch; made when missing.
    pub branch: Option<String>,
    /// A folder inside the branch. Default: its root.
    pub folder: Option<String>,
}

/// A suite, component or origin: one word that becomes a path part and a Release field.
pub fn word_problem(word: &str) -> Option<String> {
    let ok = !word.is_empty()
        && word.len() <= 64
        && word.starts_with(|c: char| c.is_ascii_alphanumeric())
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b));
    (!ok).then(|| format!("`{word}` must be letters, digits, `-`, `_`, `.` and `+`"))
}

/// Every problem of the section beyond its types, located.
pub fn check(loaded: &Loaded, apt: &AptConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (key, value) in [
        ("suite", &apt.suite),
        ("component", &apt.component),
        ("origin", &apt.origin),
    ] {
        if let Some(why) = value.as_deref().and_then(word_problem) {
            problems.push(
                Problem::new(why, loaded.span(path!["release", "apt", key]))
                    .help("it is a folder name in the repository and a Release field"),
            );
        }
    }
    problems.extend(key_problems(loaded, "apt", &apt.key, apt.keep));
    problems.extend(location_problems(
        loaded, "apt", &apt.path, &apt.git, &apt.url,
    ));
    problems
}

/// What the two repository channels check alike: the key is named one way, `keep` is 1 or
/// more.
pub fn key_problems(
    loaded: &Loaded,
    channel: &str,
    key: &KeyConfig,
    keep: Option<usize>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if key.file.is_some() == key.env.is_some() {
        problems.push(
            Problem::new(
                "`key` needs exactly one of `file` and `env`",
                loaded.span_near(path!["release", channel, "key"]),
            )
            .help("`env` names a variable holding the armored OpenPGP key; `shipit keygen --pgp` makes one"),
        );
    }
    if keep == Some(0) {
        problems.push(
            Problem::new(
                "`keep` must be 1 or more",
                loaded.span(path!["release", channel, "keep"]),
            )
            .help("leave it out to keep every version"),
        );
    }
    problems
}

/// Exactly one of `path` and `git`; a git repository needs the `url` users reach it at; a
/// folder inside the branch stays inside it.
pub fn location_problems(
    loaded: &Loaded,
    channel: &str,
    path: &Option<String>,
    git: &Option<GitLocation>,
    url: &Option<String>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if path.is_some() == git.is_some() {
        problems.push(
            Problem::new(
                "the repository needs exactly one of `path` and `git`",
                loaded.span_near(path!["release", channel]),
            )
            .help("`path = \"../repo\"` for a folder, `git = { url = \"...\", branch = \"gh-pages\" }` for a git branch"),
        );
    }
    if let Some(git) = git {
        if url.is_none() {
            problems.push(
                Problem::new(
                    "a repository in git needs `url`, the address users reach it at",
                    loaded.span_near(path!["release", channel, "git"]),
                )
                .help("for GitHub Pages: `url = \"https://owner.github.io/name\"`"),
            );
        }
        if let Some(folder) = &git.folder
            && let Err(e) = crate::relpath::RelPath::new(folder)
        {
            problems.push(Problem::new(
                format!("`git.folder` {e}"),
                loaded.span_near(path!["release", channel, "git", "folder"]),
            ));
        }
    }
    problems
}
