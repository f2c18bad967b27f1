//! `shipit release --merge`: the parts of a build split across machines (`shipit build
//! --split`) become one dist folder, checked, checksummed and signed once.

use std::collections::BTreeMap;

use super::Session;
use crate::config;
use crate::error::Error;
use crate::facts::Facts;
use crate::manifest::Manifest;
use crate::merge::{check_parts, stage_and_move};
use crate::plan;
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
    let mut planned: BTreeMap<String, plan::PlannedArtifact> = BTreeMap::new();
    for stage in plan
        .stages
        .iter()
        .filter(|s| !matches!(s.kind.as_str(), "checksum" | "sign") && s.skip.is_none())
    {
        for artifact in stage.artifacts() {
            planned.insert(artifact.path.clone(), artifact.clone());
        }
    }
    let checked = check_parts(&manifests, &owner, &planned)?;
    // The keys before any copying: a missing key or a wrong password stops the merge with
    // dist untouched (and `--dry-run` says so too).
    super::build::signing_keys(&plan, &mut crate::tasks::TaskContext::default())?;
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
        started: Some(session.started),
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
        missing: Vec::new(),
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
