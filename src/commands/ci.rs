//! `shipit ci github`: a GitHub Actions workflow generated from the pipeline, and a check that
//! the committed one is current.
//!
//! The generated file records a hash of its own content. `--check` compares the file with what
//! would be generated now: equal passes; different and still carrying the hash of its content
//! means the pipeline moved on (regenerate); different content under the recorded hash means
//! someone edited it, which passes only with `--allow-edits`.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Session;
use crate::cli::CiGithubArgs;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::facts::{Facts, FactsOptions};
use crate::plan::kinds;
use crate::{config, plan};

const TEMPLATE: &str = include_str!("../../templates/ci/github-release.yml.j2");
const HASH_PREFIX: &str = "# shipit-content-sha256: ";

/// Runs `shipit ci github`.
pub fn github(session: &Session, args: &CiGithubArgs) -> Result<ExitCode, Error> {
    let global = &session.cli.global;
    let loaded = config::load(&global.pipeline, kinds::BUILTINS)?;
    let facts = Facts::gather(
        &loaded,
        FactsOptions {
            snapshot: true,
            nightly: false,
        },
    )?;
    let plan = plan::build(&loaded, &facts)?;
    let images = loaded.file.release.docker.is_some();
    let text = render(&global.pipeline, &plan, &facts, images, args)?;
    let existing = std::fs::read_to_string(&args.output).ok();
    let regenerate = format!(
        "shipit ci github --pipeline {}{}",
        global.pipeline.display(),
        if args.output == Path::new(".github/workflows/release.yml") {
            String::new()
        } else {
            format!(" --output {}", args.output.display())
        }
    );
    match (&existing, args.check) {
        (Some(current), _) if *current == text => {
            if !global.dry_run && global.verbosity() >= 0 {
                session
                    .printer
                    .err(&format!("{} is up to date", args.output.display()));
            }
            Ok(ExitCode::Success)
        }
        (Some(current), true) => {
            if edited_by_hand(current) {
                if args.allow_edits {
                    session.printer.err(&format!(
                        "{} was edited by hand; accepted (--allow-edits)",
                        args.output.display()
                    ));
                    return Ok(ExitCode::Success);
                }
                return Err(Error::Failed(format!(
                    "{} was edited by hand and differs from what `{regenerate}` writes; regenerate it, or pass --allow-edits to keep your edits",
                    args.output.display()
                )));
            }
            Err(Error::Failed(format!(
                "{} is out of date with {}; regenerate it with `{regenerate}`",
                args.output.display(),
                global.pipeline.display()
            )))
        }
        (None, true) => Err(Error::Failed(format!(
            "{} does not exist; write it with `{regenerate}`",
            args.output.display()
        ))),
        (current, false) => {
            if let Some(current) = current.as_deref()
                && edited_by_hand(current)
                && !args.allow_edits
            {
                // A workflow shipit never wrote is the project's own: point at a new file
                // first, since --allow-edits would replace it.
                let own = !current.contains(HASH_PREFIX);
                return Err(Error::Usage(if own {
                    format!(
                        "{} exists and was not written by shipit; write the workflow beside it with \
                         `--output .github/workflows/shipit-release.yml`, or pass --allow-edits to replace it",
                        args.output.display()
                    )
                } else {
                    format!(
                        "{} was edited by hand; pass --allow-edits to overwrite your edits, or \
                         `--output <another file>`",
                        args.output.display()
                    )
                }));
            }
            if global.dry_run {
                session.printer.out(&text);
                return Ok(ExitCode::Success);
            }
            if let Some(parent) = args.output.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    Error::Failed(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            std::fs::write(&args.output, &text).map_err(|e| {
                Error::Failed(format!("cannot write {}: {e}", args.output.display()))
            })?;
            session
                .printer
                .err(&format!("wrote {}", args.output.display()));
            Ok(ExitCode::Success)
        }
    }
}

/// The workflow text, ending with the hash of everything above it.
/// The workflow text; `images`: the release pushes container images (GHCR needs
/// `packages: write`).
fn render(
    pipeline: &Path,
    plan: &plan::Plan,
    facts: &Facts,
    images: bool,
    args: &CiGithubArgs,
) -> Result<String, Error> {
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
                action => args.action,
                cron => args.cron,
                branch => default_branch(&facts.cargo.root),
                tag_glob => format!("{}[0-9]*", facts.tag_prefix),
                tag_ref => format!("refs/tags/{}", facts.tag_prefix),
                secrets => secret_variables(plan),
                images => images,
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
/// name for their key and password (`SHIPIT_SIGNING_KEY` is only the starter's choice).
fn secret_variables(plan: &plan::Plan) -> Vec<String> {
    let mut names: Vec<String> = plan
        .stages
        .iter()
        .flat_map(|s| s.units.iter().flat_map(|u| u.steps.iter()))
        .filter_map(|step| match &step.command {
            plan::StepCommand::Task(crate::tasks::Task::Sign(spec)) => Some(&spec.key),
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
fn edited_by_hand(text: &str) -> bool {
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
