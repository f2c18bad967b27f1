//! `shipit release --merge`: the parts of a build split across machines (`shipit build
//! --split`) become one dist folder, checked, checksummed and signed once.

use std::collections::BTreeMap;

use super::Session;
use crate::config;
use crate::error::Error;
use crate::facts::Facts;
use crate::manifest::Manifest;
use crate::plan;
use crate::relpath::{self, RelPath};
use crate::ui::{self, Event, Level};

/// `--merge`: checks that the parts of a split build agree and together cover every target
/// exactly once, copies them into dist, then runs the checksum and sign stages once and writes
/// the combined manifest.
pub(super) fn merge(
    session: &Session,
    loaded: &config::Loaded,
    facts: &Facts,
    parts: &[std::path::PathBuf],
) -> Result<(), Error> {
    let mut plan = plan::build(loaded, facts)?;
    let expected = plan::targets(&plan);
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    let mut merged: Vec<crate::manifest::Artifact> = Vec::new();
    let mut manifests = Vec::new();
    for part in parts {
        let name = part.display().to_string();
        let manifest = Manifest::read_untrusted(part).map_err(|e| Error::Usage(e.to_string()))?;
        for (what, found, want) in [
            ("project", &manifest.project, &facts.project),
            ("version", &manifest.version, &facts.version),
            ("commit", &manifest.commit, &facts.commit),
        ] {
            if found != want {
                return Err(Error::Usage(format!(
                    "{name} was built for {what} {found}, but this release is {what} {want}: parts must come from one commit and version"
                )));
            }
        }
        let targets = manifest.split.clone().unwrap_or_else(|| {
            let mut all: Vec<String> = manifest
                .artifacts
                .iter()
                .filter_map(|a| a.target.clone())
                .collect();
            all.dedup();
            all
        });
        for target in targets {
            if !expected.contains(&target) {
                return Err(Error::Usage(format!(
                    "{name} claims target `{}`, which this pipeline does not build",
                    target.escape_debug()
                )));
            }
            if let Some(first) = owner.insert(target.clone(), name.clone()) {
                return Err(Error::Usage(format!(
                    "target `{target}` is in both {first} and {name}: each target belongs to one part"
                )));
            }
        }
        manifests.push((part.clone(), name, manifest));
    }
    let missing: Vec<&String> = expected
        .iter()
        .filter(|t| !owner.contains_key(*t))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "no part holds target(s) {}: build them with `shipit build --split --targets ...`",
            missing
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    // What the plan expects each part to bring: the artifacts of the stages that ran in the
    // parts (not checksum or sign), by path, with their target.
    let mut planned: BTreeMap<String, Option<String>> = BTreeMap::new();
    for stage in plan
        .stages
        .iter()
        .filter(|s| !matches!(s.kind.as_str(), "checksum" | "sign") && s.skip.is_none())
    {
        for artifact in stage.artifacts() {
            let target = artifact.target.as_ref().map(|t| t.name.clone());
            planned.insert(artifact.path.clone(), target);
        }
    }
    let checked = check_parts(&manifests, &owner, &planned)?;
    let reporter = ui::reporter(session.ui, session.printer.clone());
    if session.cli.global.dry_run {
        reporter.report(&Event::Message {
            level: Level::Info,
            text: &format!(
                "the {} parts agree and cover every target; would copy them into {}, write checksums and signatures, then publish",
                parts.len(),
                plan.dist.display()
            ),
        });
        return Ok(());
    }
    let merged_in = stage_and_move(&plan.dist, &checked)?;
    merged.extend(merged_in);
    // Only the stages that work on the whole set run now.
    for stage in &mut plan.stages {
        if !matches!(stage.kind.as_str(), "checksum" | "sign") && stage.skip.is_none() {
            stage.skip = Some("built by the parts being merged".into());
        }
    }
    let options = crate::executor::ExecOptions {
        jobs: 2,
        ..Default::default()
    };
    let report = super::build::execute(session, &plan, options, &reporter)?;
    merged.extend(report.artifacts());
    merged.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = Manifest {
        schema: crate::manifest::SCHEMA,
        project: facts.project.clone(),
        version: facts.version.clone(),
        tag: facts.tag.clone(),
        commit: facts.commit.clone(),
        date: manifests[0].2.date.clone(),
        artifacts: merged,
        published: Default::default(),
        split: None,
    };
    manifest
        .write(&plan.dist)
        .map_err(|e| Error::Failed(e.to_string()))?;
    reporter.report(&Event::Message {
        level: Level::Info,
        text: &format!(
            "merged {} parts into {} ({} artifacts)",
            parts.len(),
            plan.dist.display(),
            manifest.artifacts.len()
        ),
    });
    Ok(())
}

/// One artifact of a part, checked against the plan: where it is and what it must hash to.
struct Checked<'a> {
    part: &'a std::path::Path,
    part_name: &'a str,
    path: RelPath,
    artifact: &'a crate::manifest::Artifact,
}

/// Every artifact of every part must be one the plan expects for that part's own targets (and
/// every expected one must be there); paths are safe relative paths. Nothing is read yet.
fn check_parts<'a>(
    manifests: &'a [(std::path::PathBuf, String, Manifest)],
    owner: &BTreeMap<String, String>,
    planned: &BTreeMap<String, Option<String>>,
) -> Result<Vec<Checked<'a>>, Error> {
    let mut checked = Vec::new();
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (dir, name, manifest) in manifests {
        for artifact in &manifest.artifacts {
            let path =
                RelPath::new(&artifact.path).map_err(|e| Error::Usage(format!("{name}: {e}")))?;
            let owned_by_part = match planned.get(path.as_str()) {
                Some(Some(target)) => {
                    artifact.target.as_deref() == Some(target.as_str())
                        && owner.get(target).is_some_and(|o| o == name)
                }
                Some(None) => artifact.target.is_none(),
                None => false,
            };
            if !owned_by_part {
                return Err(Error::Usage(format!(
                    "{name} holds `{path}`, which the plan does not expect from this part's \
                     targets; a part brings only the artifacts of its own targets"
                )));
            }
            if let Some(first) = seen.insert(artifact.path.as_str(), name.as_str()) {
                return Err(Error::Usage(format!(
                    "`{path}` is in both {first} and {name}"
                )));
            }
            checked.push(Checked {
                part: dir,
                part_name: name,
                path,
                artifact,
            });
        }
    }
    let missing: Vec<&String> = planned
        .keys()
        .filter(|p| !seen.contains_key(p.as_str()))
        .collect();
    if let Some(first) = missing.first() {
        return Err(Error::Usage(format!(
            "no part holds `{first}` ({} planned artifact(s) missing): a part lost an asset",
            missing.len()
        )));
    }
    Ok(checked)
}

/// Copies every artifact into a staging folder inside dist while hashing it (no links followed,
/// regular files only), and moves them into place only when every one matches its part's
/// manifest. On failure dist holds none of them.
fn stage_and_move(
    dist: &std::path::Path,
    checked: &[Checked<'_>],
) -> Result<Vec<crate::manifest::Artifact>, Error> {
    std::fs::create_dir_all(dist)
        .map_err(|e| Error::Failed(format!("cannot create {}: {e}", dist.display())))?;
    let staging = tempfile::Builder::new()
        .prefix(".shipit-merge-")
        .tempdir_in(dist)
        .map_err(|e| {
            Error::Failed(format!(
                "cannot create a staging folder in {}: {e}",
                dist.display()
            ))
        })?;
    for item in checked {
        let to = item.path.under(staging.path());
        let copied = relpath::open_regular(item.part, &item.path).and_then(|(from, _)| {
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)?;
            }
            copy_hashed(from, &to)
        });
        match copied {
            Ok((size, sha)) if size == item.artifact.size && sha == item.artifact.sha256 => {}
            Ok(_) => {
                return Err(Error::Usage(format!(
                    "{} in {} does not match that part's manifest",
                    item.path, item.part_name
                )));
            }
            Err(e) => {
                return Err(Error::Usage(format!(
                    "cannot take {} from {}: {e}",
                    item.path, item.part_name
                )));
            }
        }
    }
    let mut moved: Vec<std::path::PathBuf> = Vec::new();
    for item in checked {
        let to = item.path.under(dist);
        let result = to
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::rename(item.path.under(staging.path()), &to));
        if let Err(e) = result {
            // Undo: dist holds all of the merge or none of it.
            for path in &moved {
                let _ = std::fs::remove_file(path);
            }
            return Err(Error::Failed(format!(
                "cannot move {} into dist: {e}",
                item.path
            )));
        }
        moved.push(to);
    }
    Ok(checked.iter().map(|c| c.artifact.clone()).collect())
}

/// Copies `from` to a new file `to`, returning the size and SHA-256 of what was written.
fn copy_hashed(mut from: std::fs::File, to: &std::path::Path) -> std::io::Result<(u64, String)> {
    use sha2::Digest;
    use std::io::{Read, Write};
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        size += n as u64;
    }
    out.sync_all()?;
    Ok((size, hex::encode(hasher.finalize())))
}
