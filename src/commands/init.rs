//! `shipit init`: a commented starter pipeline for the Cargo project in this folder.

use std::path::Path;
use std::process::Command;

use super::Session;
use crate::cli::InitArgs;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::targets::ALIASES;

const TEMPLATE: &str = include_str!("../../templates/shipit.toml.j2");

/// Writes `shipit.toml` (or the `--pipeline` path); never overwrites. With `--binstall`,
/// prints the cargo-binstall block for the same targets instead.
pub fn run(session: &Session, args: &InitArgs) -> Result<ExitCode, Error> {
    if args.binstall {
        let key = match &args.key {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
                let key = crate::minisign::PublicKey::from_text(&text)
                    .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
                key.to_text().lines().nth(1).map(str::to_owned)
            }
            None => None,
        };
        let targets: Vec<crate::targets::Target> = starter_targets()
            .into_iter()
            .filter_map(|alias| crate::targets::Target::parse(alias, "").ok())
            .collect();
        session
            .printer
            .out(crate::installer::binstall::block(&targets, key.as_deref()).trim_end());
        return Ok(ExitCode::Success);
    }
    let out = &session.cli.global.pipeline;
    if out.exists() {
        return Err(Error::Usage(format!(
            "{} already exists; shipit init does not overwrite it (remove it first, or pass --pipeline <new file>)",
            out.display()
        )));
    }
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(&args.manifest)
        .no_deps()
        .exec()
        .map_err(|e| {
            Error::Usage(format!(
                "cannot read {}: {}",
                args.manifest.display(),
                e.to_string().lines().next().unwrap_or("")
            ))
        })?;
    let package = metadata.root_package().ok_or_else(|| {
        Error::Usage(format!(
            "{} is a virtual workspace; point --manifest at a package",
            args.manifest.display()
        ))
    })?;
    let binaries: Vec<String> = package
        .targets
        .iter()
        .filter(|t| t.is_bin())
        .map(|t| t.name.clone())
        .collect();
    let manifest_dir = args
        .manifest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let repo = github_repo(manifest_dir);
    let out_dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let cargo_rel = pathdiff(&args.manifest, out_dir);

    // What users type is the binary's name (`rg`, not `ripgrep`; `foo`, not `foo-cli`): with one
    // binary the project, its archives and its packages are named after it.
    let name = match binaries.as_slice() {
        [only] => only.clone(),
        _ => package.name.to_string(),
    };
    let targets = starter_targets();
    // `--locked` fails a project that has no Cargo.lock yet (a fresh `cargo new`).
    let locked = metadata.workspace_root.join("Cargo.lock").exists();
    let text = minijinja::Environment::new()
        .render_str(
            TEMPLATE,
            minijinja::context! {
                name => name.clone(),
                version => package.version.to_string(),
                cargo => cargo_rel,
                binaries => binaries,
                targets => targets,
                repo => repo.clone(),
                locked => locked,
            },
        )
        .map_err(|e| Error::Internal(format!("init template: {e}")))?;
    let text = format!("{}\n", text.trim_end());
    std::fs::write(out, text)
        .map_err(|e| Error::Failed(format!("cannot write {}: {e}", out.display())))?;
    session.printer.err(&format!(
        "wrote {} for {name} {}{}; next: `shipit check --pipeline {0}`, then `shipit build --pipeline {0}`",
        out.display(),
        package.version,
        if name == package.name.as_str() {
            String::new()
        } else {
            format!(" (named after its binary; the package is {})", package.name)
        }
    ));
    if repo.is_none() {
        session.printer.err(&format!(
            "to release on GitHub, uncomment [release.github] in {} and set repo = \"owner/name\" (no GitHub `origin` remote was found)",
            out.display()
        ));
    }
    Ok(ExitCode::Success)
}

/// The starter's targets: static musl binaries for Linux; one binary per macOS architecture
/// (a universal one is an opt-in: it doubles the download for everyone).
fn starter_targets() -> Vec<&'static str> {
    ALIASES
        .iter()
        .map(|(alias, _)| *alias)
        .filter(|a| !matches!(*a, "linux-x64" | "linux-arm64" | "darwin-universal"))
        .collect()
}

/// `owner/name` of the `origin` remote when it is on GitHub.
fn github_repo(dir: &Path) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["remote", "get-url", "origin"])
        .output()
        .ok()?;
    parse_github_remote(String::from_utf8_lossy(&out.stdout).trim())
}

/// Parses `https://github.com/o/r(.git)`, `git@github.com:o/r.git` and `ssh://git@github.com/o/r`.
pub fn parse_github_remote(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://github.com/")
        .or_else(|| url.strip_prefix("http://github.com/"))
        .or_else(|| url.strip_prefix("git@github.com:"))
        .or_else(|| url.strip_prefix("ssh://git@github.com/"))?;
    let rest = rest.trim_end_matches('/').trim_end_matches(".git");
    let mut parts = rest.split('/');
    let (owner, name) = (parts.next()?, parts.next()?);
    (parts.next().is_none() && !owner.is_empty() && !name.is_empty())
        .then(|| format!("{owner}/{name}"))
}

/// `path` relative to `base` when both are relative and simple; else `path` as given.
fn pathdiff(path: &Path, base: &Path) -> String {
    if base == Path::new(".") {
        return path.display().to_string();
    }
    let depth = base.components().count();
    let mut rel = "../".repeat(depth);
    rel.push_str(&path.display().to_string());
    rel
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_github_remotes() {
        assert_eq!(
            parse_github_remote("https://github.com/acme/demo.git").as_deref(),
            Some("acme/demo")
        );
        assert_eq!(
            parse_github_remote("git@github.com:acme/demo.git").as_deref(),
            Some("acme/demo")
        );
        assert_eq!(
            parse_github_remote("ssh://git@github.com/acme/demo").as_deref(),
            Some("acme/demo")
        );
        assert_eq!(parse_github_remote("https://gitlab.com/acme/demo"), None);
        assert_eq!(parse_github_remote("https://github.com/acme"), None);
    }
}
