//! The GitHub Actions release workflow `shipit ci github` writes for a pipeline: pull requests
//! and pushes build, a schedule builds nightlies, release tags release; split across runners
//! by target. Every value is written as a YAML scalar, and the file records a hash of its own
//! content so that edits by hand are told apart from a pipeline that moved on.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::facts::Facts;
use crate::plan;

const TEMPLATE: &str = include_str!("../templates/ci/github-release.yml.j2");
/// How the generated file records the hash of its content.
pub const HASH_PREFIX: &str = "# shipit-content-sha256: ";

/// What the workflow is made from besides the plan.
pub struct Options<'a> {
    /// The pipeline file, as the workflow's steps name it.
    pub pipeline: &'a Path,
    /// The release pushes container images (GHCR needs `packages: write`).
    pub images: bool,
    /// The shipit action the steps use (`owner/repo@ref`).
    pub action: &'a str,
    /// When the nightly build runs (cron, UTC).
    pub cron: &'a str,
    /// The release job attests every released file (GitHub artifact attestations: the only
    /// job given `id-token: write` and `attestations: write`).
    pub attestations: bool,
}

/// Whether the plan signs keyless: the job that signs needs an OIDC token.
fn signs_keyless(plan: &plan::Plan) -> bool {
    plan.stages
        .iter()
        .flat_map(|s| s.units.iter().flat_map(|u| u.steps.iter()))
        .any(|step| {
            matches!(
                &step.command,
                plan::StepCommand::Task(crate::tasks::Task::Keyless(_))
            )
        })
}

/// The workflow text, ending with the hash of everything above it.
pub fn render(plan: &plan::Plan, facts: &Facts, options: &Options<'_>) -> Result<String, Error> {
    let pipeline = options.pipeline;
    let targets = plan::targets(plan);
    if targets.is_empty() {
        return Err(Error::Usage(format!(
            "{} builds no targets (no `uses = \"cargo\"` stage), so there is no build matrix",
            pipeline.display()
        )));
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    let dist = relative(&plan.dist, &cwd);
    let mut env = minijinja::Environment::new();
    // Every value becomes one YAML scalar, quoted unless it is plainly safe: a target, path or
    // `--cron` value cannot add keys or steps to the workflow.
    env.set_formatter(|out, _state, value| {
        let text = value.to_string();
        let scalar = if value.is_safe() {
            text
        } else {
            yaml_scalar(&text)
        };
        out.write_str(&scalar)
            .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()))
    });
    let body = env
        .render_str(
            TEMPLATE,
            minijinja::context! {
                pipeline => pipeline.display().to_string(),
                targets => targets,
                dist => dist.display().to_string(),
                action => options.action,
                cron => options.cron,
                branch => default_branch(&facts.cargo.root),
                tag_glob => format!("{}[0-9]*", facts.tag_prefix),
                tag_ref => format!("refs/tags/{}", facts.tag_prefix),
                secrets => secret_variables(plan),
                images => options.images,
                attestations => options.attestations,
                id_token => options.attestations || signs_keyless(plan),
            },
        )
        .map_err(|e| Error::Internal(format!("workflow template: {e}")))?;
    let body = format!("{}\n", body.trim_end());
    Ok(format!("{body}{HASH_PREFIX}{}\n", content_hash(&body)))
}

/// `text` as a YAML scalar: as it is when that reads back as the same string, else a
/// double-quoted (JSON) string, which YAML reads exactly.
fn yaml_scalar(text: &str) -> String {
    let plain = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./@+-".contains(c))
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        )
        && text.parse::<f64>().is_err();
    if plain {
        text.to_string()
    } else {
        serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
    }
}

/// The repository's default branch: what `origin/HEAD` points at, else the branch checked
/// out, else `main`.
fn default_branch(dir: &Path) -> String {
    let git = crate::facts::Git::new(dir);
    git.run(&["symbolic-ref", "--short", "-q", "refs/remotes/origin/HEAD"])
        .and_then(|b| b.strip_prefix("origin/").map(str::to_owned))
        .or_else(|| git.run(&["symbolic-ref", "--short", "-q", "HEAD"]))
        .unwrap_or_else(|| "main".into())
}

/// The variables the release job needs from the repository's secrets: those the sign stages
/// and provenance stages name for their key and password (`SHIPIT_SIGNING_KEY` is only the starter's choice).
fn secret_variables(plan: &plan::Plan) -> Vec<String> {
    let mut names: Vec<String> = plan
        .stages
        .iter()
        .flat_map(|s| s.units.iter().flat_map(|u| u.steps.iter()))
        .filter_map(|step| match &step.command {
            plan::StepCommand::Task(task) => task.minisign_key().map(|(_, key)| key),
            _ => None,
        })
        .flat_map(|key| [key.env.clone(), key.password_env.clone()])
        .flatten()
        .filter(|name| crate::config::names::NameKind::Variable.check(name).is_ok())
        .filter(|name| name != "GITHUB_TOKEN")
        .collect();
    names.sort();
    names.dedup();
    names
}

fn content_hash(body: &str) -> String {
    hex::encode(Sha256::digest(body.as_bytes()))
}

/// A generated file whose content no longer matches the hash it records.
pub fn edited_by_hand(text: &str) -> bool {
    match text.rfind(HASH_PREFIX) {
        Some(at) => {
            let recorded = text[at + HASH_PREFIX.len()..].trim();
            content_hash(&text[..at]) != recorded
        }
        // Not written by shipit (or the hash line was removed): treat as hand-made.
        None => true,
    }
}

/// `path` relative to `base` when it is inside it.
fn relative(path: &Path, base: &Path) -> PathBuf {
    path.strip_prefix(base)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_scalars_never_add_keys() {
        assert_eq!(yaml_scalar("linux-x64-musl"), "linux-x64-musl");
        assert_eq!(yaml_scalar("owner/action@v1"), "owner/action@v1");
        assert_eq!(yaml_scalar("0 3 * * *"), "\"0 3 * * *\"");
        assert_eq!(yaml_scalar("a\n  evil: key"), "\"a\\n  evil: key\"");
        assert_eq!(yaml_scalar("on"), "\"on\"");
        assert_eq!(yaml_scalar("1.0"), "\"1.0\"");
    }

    #[test]
    fn edits_are_told_from_regeneration() {
        let body = "name: x\n";
        let file = format!("{body}{HASH_PREFIX}{}\n", content_hash(body));
        assert!(!edited_by_hand(&file));
        assert!(edited_by_hand(&file.replace("name: x", "name: y")));
        assert!(edited_by_hand("name: hand-made\n"));
    }
}
