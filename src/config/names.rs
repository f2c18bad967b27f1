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

/// The problem of `value` as a name of `kind`, at `span`, if it breaks the grammar.
pub fn name_problem(
    kind: NameKind,
    value: &str,
    span: Option<std::ops::Range<usize>>,
) -> Option<Problem> {
    let why = kind.check(value).err()?;
    Some(
        Problem::new(
            format!("`{}` is not a valid name: {why}", value.escape_debug()),
            span,
        )
        .label("bad name")
        .help("names reach file names, scripts and the router; SECURITY.md says why"),
    )
}

/// The problem of `repo` as a GitHub `owner/name`, at `span`.
pub fn repo_problem(repo: &str, span: Option<std::ops::Range<usize>>) -> Option<Problem> {
    let why = check_repo(repo).err()?;
    Some(
        Problem::new(format!("`{}` {why}", repo.escape_debug()), span)
            .label("not a repository")
            .help("write the GitHub repository as `owner/name`, such as `acme/demo`"),
    )
}

/// Every name problem of the file's own sections (channels check theirs).
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
    let mut name = |kind: NameKind, at: &[Seg<'_>], value: &str, key_itself: bool| {
        let span = if key_itself {
            loaded.key_span(at).or_else(|| loaded.span_near(at))
        } else {
            loaded.span_near(at)
        };
        problems.extend(name_problem(kind, value, span));
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
