//! A plan cut down to some targets (`build --split --targets`), and the targets a plan builds.

use std::path::PathBuf;

use super::{Plan, StepCommand, Unit};
use crate::targets::Target;
use crate::tasks::Task;

/// `--target` names a target no stage builds.
#[derive(Debug, thiserror::Error)]
#[error("target `{name}` is not built by this pipeline; its targets: {known}")]
pub struct UnknownTarget {
    /// As given.
    pub name: String,
    /// The targets the pipeline builds.
    pub known: String,
}

/// Keeps only the units building `targets` (names as aliases or triples); stages of other
/// units are untouched. Errors name a target that no stage builds.
pub fn restrict_targets(plan: &mut Plan, targets: &[String]) -> Result<(), UnknownTarget> {
    let unit_target =
        |unit: &Unit| -> Option<Target> { unit.artifacts.iter().find_map(|a| a.target.clone()) };
    let known: std::collections::BTreeSet<String> = plan
        .stages
        .iter()
        .flat_map(|s| s.units.iter())
        .filter_map(unit_target)
        .map(|t| t.name)
        .collect();
    let wanted: Vec<String> = targets
        .iter()
        .map(|name| {
            plan.stages
                .iter()
                .flat_map(|s| s.units.iter())
                .filter_map(unit_target)
                .find(|t| t.name == *name || t.triple == *name)
                .map(|t| t.name)
                .ok_or_else(|| UnknownTarget {
                    name: name.clone(),
                    known: known.iter().cloned().collect::<Vec<_>>().join(", "),
                })
        })
        .collect::<Result<_, _>>()?;
    for stage in &mut plan.stages {
        stage
            .units
            .retain(|unit| unit_target(unit).is_none_or(|t| wanted.contains(&t.name)));
        // A universal binary whose slices this part does not build is compiled whole on its
        // own (never assembled from stale slices of an earlier build).
        let sources: Vec<PathBuf> = stage
            .units
            .iter()
            .flat_map(|u| u.artifacts.iter().filter_map(|a| a.source.clone()))
            .collect();
        for unit in &mut stage.units {
            let label = unit.label.clone().unwrap_or_default();
            if let Some(batch) = &mut unit.batch
                && batch
                    .assemble
                    .iter()
                    .any(|a| a.slices.iter().any(|s| !sources.contains(s)))
            {
                batch.assemble.clear();
                batch.group = format!("zig {label}");
                batch.apart = Some("its slices are not built in this part".into());
            }
        }
    }
    Ok(())
}

/// One part of a split build (`build --split --targets`): only `targets` are built, and the
/// checksums and signatures are left to `shipit release --merge`, which makes them once.
pub fn split(plan: &mut Plan, targets: &[String]) -> Result<(), UnknownTarget> {
    restrict_targets(plan, targets)?;
    for stage in &mut plan.stages {
        if matches!(stage.kind.as_str(), "checksum" | "sign") && stage.skip.is_none() {
            stage.skip = Some(
                "a split build: checksums and signatures are made once, by `shipit release --merge`"
                    .into(),
            );
        }
    }
    Ok(())
}

/// The plan as a stranger without the project's keys builds it (`build --without-keys`, what
/// `shipit reproduce` runs): stages that sign (with a minisign key, or keyless through
/// Sigstore: signatures, provenance) are skipped, and packages are written unsigned. Returns the stages skipped.
pub fn without_keys(plan: &mut Plan) -> Vec<String> {
    let mut skipped = Vec::new();
    for stage in &mut plan.stages {
        let signs = stage
            .units
            .iter()
            .flat_map(|u| u.steps.iter())
            .any(|step| matches!(&step.command, StepCommand::Task(task) if task.signs()));
        if signs && stage.skip.is_none() {
            stage.skip = Some("--without-keys: its signatures are the release's own".into());
            skipped.push(stage.name.clone());
        }
        for step in stage.units.iter_mut().flat_map(|u| u.steps.iter_mut()) {
            if let StepCommand::Task(Task::Package(task)) = &mut step.command {
                task.key = None;
                task.spec.signed_by = None;
            }
        }
    }
    skipped
}

/// Every target the plan builds, by name, in plan order.
pub fn targets(plan: &Plan) -> Vec<String> {
    let mut names = Vec::new();
    for artifact in plan.stages.iter().flat_map(|s| s.artifacts()) {
        if let Some(t) = &artifact.target
            && !names.contains(&t.name)
        {
            names.push(t.name.clone());
        }
    }
    names
}
