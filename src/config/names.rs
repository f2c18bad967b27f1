//! Grammars of the names a pipeline file gives: project, stage, environment, router backend,
//! formula, variable and image names. Names end up in file names, Ruby, YAML and HAProxy
//! runtime-API commands; a name that fits its grammar cannot break out of any of them, and
//! each writer escapes on top of that.

use super::{Loaded, Problem, Seg};
use crate::invalid::Invalid;
use crate::path;

/// One kind of name, with its grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// `project.name`, a Homebrew formula name: letters, digits, `.`, `_`, `+`, `-`.
    Project,
    /// A stage or a deploy environment: letters, digits, `_`, `-`.
    Identifier,
    /// An HAProxy backend or server: letters, digits, `.`, `_`, `:`, `-`.
    Backend,
    /// An environment variable: a letter or `_`, then letters, digits, `_`.
    Variable,
}

/// The longest name of any kind.
pub const MAX_LEN: usize = 128;

impl NameKind {
    fn allows(self, c: char, first: bool) -> bool {
        match self {
            NameKind::Project => c.is_ascii_alphanumeric() || (!first && "._+-".contains(c)),
            NameKind::Identifier => c.is_ascii_alphanumeric() || c == '_' || (!first && c == '-'),
            NameKind::Backend => {
                c.is_ascii_alphanumeric() || c == '_' || (!first && ".:-".contains(c))
            }
            NameKind::Variable => {
                c.is_ascii_alphabetic() || c == '_' || (!first && c.is_ascii_digit())
            }
        }
    }

    fn describe(self) -> &'static str {
        match self {
            NameKind::Project => {
                "letters, digits, `.`, `_`, `+` and `-`, starting with a letter or digit"
            }
            NameKind::Identifier => "letters, digits, `_` and `-`, not starting with `-`",
            NameKind::Backend => {
                "letters, digits, `.`, `_`, `:` and `-`, starting with a letter, digit or `_`"
            }
            NameKind::Variable => "letters, digits and `_`, not starting with a digit",
        }
    }

    /// Whether `name` fits this grammar; why not otherwise.
    pub fn check(self, name: &str) -> Result<(), Invalid> {
        if name.is_empty() {
            return Err("it is empty".into());
        }
        if name.len() > MAX_LEN {
            return Err(format!("it is longer than {MAX_LEN} characters").into());
        }
        if let Some((i, c)) = name
            .chars()
            .enumerate()
            .find(|&(i, c)| !self.allows(c, i == 0))
        {
            return Err(format!(
                "{} at position {} is not allowed; use {}",
                c.escape_debug(),
                i + 1,
                self.describe()
            )
            .into());
        }
        Ok(())
    }
}

/// A GitHub repository, `owner/name`, that is not a placeholder left from `shipit init`.
pub fn check_repo(repo: &str) -> Result<(), Invalid> {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 100
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    match repo.split_once('/') {
        Some((owner, name)) if part_ok(owner) && part_ok(name) => {
            if owner == "OWNER" || name == "REPO" {
                Err("is the placeholder `shipit init` writes when it finds no GitHub remote".into())
            } else {
                Ok(())
            }
        }
        _ => Err("is not `owner/name`".into()),
    }
}

/// Every name problem in the file.
pub fn check(loaded: &Loaded, problems: &mut Vec<Problem>) {
    let file = &loaded.file;
    if let Some(prefix) = &file.project.tag_prefix
        && !prefix.is_empty()
        && let Err(why) = NameKind::Project.check(prefix)
    {
        problems.push(
            Problem::new(
                format!(
                    "`{}` is not a usable tag prefix: {why}",
                    prefix.escape_debug()
                ),
                loaded.span(path!["project", "tag_prefix"]),
            )
            .label("bad prefix")
            .help("a tag prefix is `v`, `\"\"` for bare version tags, or something like `tool-v`"),
        );
    }
    if let Some(docker) = &file.release.docker {
        if docker.image.0.is_empty() {
            problems.push(
                Problem::new(
                    "`image` lists no repository",
                    loaded.span(path!["release", "docker", "image"]),
                )
                .label("empty")
                .help("name at least one, such as `image = \"ghcr.io/acme/demo\"`"),
            );
        }
        check_docker_tags(loaded, docker.tags.as_deref().unwrap_or_default(), problems);
        for (i, image) in docker.image.0.iter().enumerate() {
            if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
                problems.push(
                    Problem::new(
                        format!("`{}` is not an image repository", image.escape_debug()),
                        loaded.span_near(path!["release", "docker", "image", i]),
                    )
                    .label("bad name")
                    .help("write `registry/owner/name`, such as `ghcr.io/acme/demo`"),
                );
            }
        }
    }
    const GITHUB_REPO: &[Seg<'static>] =
        &[Seg::Key("release"), Seg::Key("github"), Seg::Key("repo")];
    const TAP_REPO: &[Seg<'static>] = &[
        Seg::Key("release"),
        Seg::Key("homebrew"),
        Seg::Key("tap"),
        Seg::Key("repo"),
    ];
    let repos = [
        file.release
            .github
            .as_ref()
            .map(|g| (GITHUB_REPO, g.repo.as_str())),
        file.release
            .homebrew
            .as_ref()
            .and_then(|h| h.tap.repo.as_deref())
            .map(|r| (TAP_REPO, r)),
    ];
    for (at, repo) in repos.into_iter().flatten() {
        if let Err(why) = check_repo(repo) {
            problems.push(
                Problem::new(format!("`{}` {why}", repo.escape_debug()), loaded.span(at))
                    .label("not a repository")
                    .help("write the GitHub repository as `owner/name`, such as `acme/demo`"),
            );
        }
    }
    let mut name = |kind: NameKind, at: &[Seg<'_>], value: &str, key_itself: bool| {
        if let Err(why) = kind.check(value) {
            let span = if key_itself {
                loaded.key_span(at).or_else(|| loaded.span_near(at))
            } else {
                loaded.span_near(at)
            };
            problems.push(
                Problem::new(
                    format!("`{}` is not a valid name: {why}", value.escape_debug()),
                    span,
                )
                .label("bad name")
                .help("names reach file names, scripts and the router; SECURITY.md says why"),
            );
        }
    };
    if let Some(project) = &file.project.name {
        name(NameKind::Project, path!["project", "name"], project, false);
    }
    for var in file.env.keys() {
        name(NameKind::Variable, path!["env", var.as_str()], var, true);
    }
    for (stage, config) in &file.stages {
        name(
            NameKind::Identifier,
            path!["stages", stage.as_str()],
            stage,
            true,
        );
        for var in config.env.keys() {
            let at = path!["stages", stage.as_str(), "env", var.as_str()];
            name(NameKind::Variable, at, var, true);
        }
    }
    if let Some(brew) = &file.release.homebrew
        && let Some(formula) = &brew.name
    {
        name(
            NameKind::Project,
            path!["release", "homebrew", "name"],
            formula,
            false,
        );
    }
    for (env, deploy) in &file.deploy {
        let env = env.as_str();
        name(NameKind::Identifier, path!["deploy", env], env, true);
        let backend = &deploy.router.backend;
        name(
            NameKind::Backend,
            path!["deploy", env, "router", "backend"],
            backend,
            false,
        );
        if let Some(preview) = &deploy.blue_green.preview_backend {
            let at = path!["deploy", env, "blue_green", "preview_backend"];
            name(NameKind::Backend, at, preview, false);
        }
        for var in deploy.env.keys() {
            name(
                NameKind::Variable,
                path!["deploy", env, "env", var.as_str()],
                var,
                true,
            );
        }
    }
}

/// Tag templates rendered with sample values (a release `1.2.3` on `main`): a tag that breaks the
/// OCI grammar whatever the version (`{{ version }}+build`) is reported by `shipit check`, located,
/// instead of at release time. The real values are checked again before anything is uploaded.
fn check_docker_tags(loaded: &Loaded, tags: &[String], problems: &mut Vec<Problem>) {
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let sample = minijinja::context! {
        project => "project", version => "1.2.3", major => 1, minor => 2, patch => 3,
        prerelease => "", tag => "v1.2.3", commit => "0123456789abcdef0123456789abcdef01234567",
        short_commit => "0123456", date => "2026-01-01", branch => "main", nightly => false,
        snapshot => false, env => env,
    };
    for (i, text) in tags.iter().enumerate() {
        let span = loaded.span_near(path!["release", "docker", "tags", i]);
        let problem = match crate::template::render(text, &sample) {
            Ok(tag) => match crate::oci::reference::check_tag(&tag) {
                Ok(()) => continue,
                Err(why) => Problem::new(format!("tag `{text}` gives {why}"), span)
                    .label("not an image tag")
                    .help("tags are letters, digits, `_`, `.` and `-`, at most 128, not starting with `.` or `-`"),
            },
            Err(e) => Problem::new(format!("bad tag template: {}", e.message), span)
                .label("here")
                .help("tags may use `version`, `major`, `minor`, `patch`, `prerelease`, `commit`, `short_commit`, `branch`, `env.NAME`"),
        };
        problems.push(problem);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammars_refuse_what_breaks_out() {
        for bad in ["a\nb", "a;b", "../x", "a b", "", "-x", "a/b", "a$(id)"] {
            assert!(NameKind::Identifier.check(bad).is_err(), "{bad:?}");
            assert!(NameKind::Backend.check(bad).is_err(), "{bad:?}");
        }
        for bad in ["demo\nclass X", "x\"", ".hidden", "a/b"] {
            assert!(NameKind::Project.check(bad).is_err(), "{bad:?}");
        }
        assert!(NameKind::Project.check("my-tool_2.0+x").is_ok());
        assert!(NameKind::Identifier.check("build-linux_1").is_ok());
        assert!(NameKind::Backend.check("be_demo.v2:web").is_ok());
        assert!(NameKind::Variable.check("RUST_LOG").is_ok());
        assert!(NameKind::Variable.check("1X").is_err());
    }
}
