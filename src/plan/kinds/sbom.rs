//! `uses = "sbom"`: for each target a `cargo` stage it needs builds, CycloneDX 1.6 and SPDX 2.3
//! JSON of exactly what is linked into that target's binaries (see [`crate::sbom`]), written
//! into dist as artifacts, so they are checksummed, signed and released with the rest.

use schemars::JsonSchema;
use serde::Deserialize;

use super::cargo::CargoOptions;
use super::{Context, Expansion, Kind, StageRef};
use crate::config::Problem;
use crate::manifest::ArtifactKind;
use crate::plan::{PlannedArtifact, Unit};
use crate::sbom::{Format, SbomSpec};
use crate::tasks::Task;

/// Options of `uses = "sbom"`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SbomOptions {
    /// Formats to write: `cyclonedx` (`.cdx.json`), `spdx` (`.spdx.json`). Default: both.
    pub formats: Option<Vec<Format>>,
}

/// The `sbom` kind.
pub struct Sbom;

impl Kind for Sbom {
    type Options = SbomOptions;
    const NAME: &'static str = "sbom";
    const ABOUT: &'static str =
        "CycloneDX and SPDX SBOMs of what is linked into each target's binaries";

    fn check(&self, stage: &StageRef<'_>, options: &SbomOptions) -> Vec<Problem> {
        let mut problems = Vec::new();
        if options.formats.as_ref().is_some_and(Vec::is_empty) {
            problems.push(
                Problem::new("`formats` is empty", stage.span("formats"))
                    .help("leave it out for both, or list `cyclonedx` and/or `spdx`"),
            );
        }
        problems.extend(super::needs_none(
            stage,
            "an SBOM stage needs the cargo stage that builds the binaries",
            "build",
        ));
        problems
    }

    fn expand(
        &self,
        stage: &StageRef<'_>,
        options: SbomOptions,
        context: &Context<'_>,
    ) -> Result<Expansion, Vec<Problem>> {
        let facts = context.facts;
        let mut formats = options
            .formats
            .unwrap_or_else(|| vec![Format::Cyclonedx, Format::Spdx]);
        formats.sort_by_key(|f| f.extension());
        formats.dedup();
        let mut units = Vec::new();
        for need in &stage.config.needs.0 {
            let Some(config) = stage.loaded.file.stages.get(need) else {
                continue;
            };
            if config.uses.as_deref() != Some("cargo") {
                continue;
            }
            let cargo: CargoOptions = StageRef {
                name: need,
                config,
                loaded: stage.loaded,
            }
            .options()?;
            let built = context
                .planned
                .iter()
                .filter(|p| &p.name == need)
                .flat_map(|p| p.artifacts())
                .filter(|a| a.kind == ArtifactKind::Binary);
            let mut by_target: std::collections::BTreeMap<
                String,
                (crate::targets::Target, Vec<_>),
            > = std::collections::BTreeMap::new();
            for artifact in built {
                let Some(target) = &artifact.target else {
                    continue;
                };
                by_target
                    .entry(target.name.clone())
                    .or_insert_with(|| (target.clone(), Vec::new()))
                    .1
                    .push((artifact.name.clone(), context.dist_path(&artifact.path)));
            }
            for (name, (target, binaries)) in by_target {
                let features = cargo
                    .overrides
                    .get(&name)
                    .and_then(|o| o.features.clone())
                    .unwrap_or_else(|| cargo.features.clone());
                let stem = format!("{}-{}-{name}", facts.project, facts.version);
                let outputs: Vec<(Format, std::path::PathBuf)> = formats
                    .iter()
                    .map(|f| (*f, context.dist_path(&format!("{stem}{}", f.extension()))))
                    .collect();
                let artifacts = formats
                    .iter()
                    .map(|f| {
                        PlannedArtifact::written(
                            format!("{stem}{}", f.extension()),
                            ArtifactKind::Sbom,
                            Some(target.clone()),
                        )
                    })
                    .collect();
                let spec = SbomSpec {
                    project: facts.project.clone(),
                    version: facts.version.clone(),
                    target: name.clone(),
                    triple: target.triple.clone(),
                    manifest: facts.cargo.manifest.clone(),
                    packages: cargo.packages.clone().unwrap_or_default(),
                    features,
                    no_default_features: cargo.no_default_features,
                    binaries,
                    outputs,
                    timestamp: facts.source_date_epoch,
                };
                units.push(Unit::task(
                    Some(name),
                    Task::Sbom(Box::new(spec)),
                    artifacts,
                ));
            }
        }
        if units.is_empty() {
            return Err(vec![
                Problem::new(
                    "none of the stages this SBOM stage needs is a cargo stage that builds binaries",
                    stage.span("needs"),
                )
                .help("list the `uses = \"cargo\"` stage in `needs`"),
            ]);
        }
        Ok(Expansion {
            units,
            requires: Vec::new(),
        })
    }
}
