//! `uses = "checksum"`: a `SHA256SUMS` (optionally `SHA512SUMS`, and a `.sha256` per file) for
//! the artifacts of the stages it needs.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Context, Expansion, Kind, StageRef};
use crate::checksum::{Algorithm, ChecksumSpec};
use crate::config::Problem;
use crate::manifest::ArtifactKind;
use crate::plan::{PlannedArtifact, Unit};
use crate::tasks::Task;

/// Options of `uses = "checksum"`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ChecksumOptions {
    /// Name of the SHA-256 checksum file. Default: `SHA256SUMS`.
    pub file: Option<String>,
    /// Also write a SHA-512 checksum file (`SHA512SUMS`, or this name).
    pub sha512: Option<Sha512Choice>,
    /// Also write `<artifact>.sha256` beside each artifact.
    #[serde(default)]
    pub per_artifact: bool,
}

/// `sha512 = true` or `sha512 = "NAME"`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Sha512Choice {
    /// On or off, with the default name.
    Enabled(bool),
    /// On, with this file name.
    Named(String),
}

/// The `checksum` kind.
pub struct Checksum;

impl Kind for Checksum {
    type Options = ChecksumOptions;
    const NAME: &'static str = "checksum";
    const ABOUT: &'static str = "write SHA256SUMS for the artifacts of the stages it needs";

    fn check(&self, stage: &StageRef<'_>, options: &ChecksumOptions) -> Vec<Problem> {
        let mut problems = Vec::new();
        if let Some(file) = &options.file
            && (file.is_empty() || file.contains('/'))
        {
            problems.push(
                Problem::new(format!("`{file}` is not a file name"), stage.span("file"))
                    .label("a plain file name")
                    .help("the checksum file is written at the top of the dist folder"),
            );
        }
        if let Some(Sha512Choice::Named(name)) = &options.sha512 {
            let word = matches!(
                name.to_ascii_lowercase().as_str(),
                "yes" | "no" | "true" | "false" | "on" | "off" | "1" | "0"
            );
            if word || crate::relpath::RelPath::file_name(name).is_err() {
                problems.push(
                    Problem::new(
                        format!("`sha512 = \"{}\"` would name the file `{}`", name.escape_debug(), name.escape_debug()),
                        stage.span("sha512"),
                    )
                    .label("a file name, or true")
                    .help("write `sha512 = true` for SHA512SUMS, or a file name such as \"SHA512SUMS.txt\""),
                );
            }
        }
        problems.extend(super::needs_none(
            stage,
            "a checksum stage lists the artifacts of the stages it needs, and needs none",
            "package",
        ));
        problems
    }

    fn expand(
        &self,
        stage: &StageRef<'_>,
        options: ChecksumOptions,
        context: &Context<'_>,
    ) -> Result<Expansion, Vec<Problem>> {
        let files: Vec<(String, std::path::PathBuf)> = context
            .needed_artifacts(stage)
            .into_iter()
            .filter(|a| !matches!(a.kind, ArtifactKind::Checksum | ArtifactKind::Signature))
            .map(|a| (a.path.clone(), context.dist_path(&a.path)))
            .collect();
        if files.is_empty() {
            return Err(vec![
                Problem::new(
                    "the stages this checksum stage needs produce no artifacts",
                    stage.span("needs"),
                )
                .help("need the stage that builds or packages the release files"),
            ]);
        }
        let mut outputs = vec![(
            options.file.clone().unwrap_or_else(|| "SHA256SUMS".into()),
            Algorithm::Sha256,
        )];
        match &options.sha512 {
            Some(Sha512Choice::Enabled(true)) => {
                outputs.push(("SHA512SUMS".into(), Algorithm::Sha512))
            }
            Some(Sha512Choice::Named(name)) => outputs.push((name.clone(), Algorithm::Sha512)),
            _ => {}
        }
        let mut expansion = Expansion::default();
        for (index, (name, algorithm)) in outputs.into_iter().enumerate() {
            // Per-artifact files are written once, with SHA-256.
            let per_file = options.per_artifact && index == 0;
            let mut artifacts = vec![PlannedArtifact {
                name: name.clone(),
                kind: ArtifactKind::Checksum,
                path: name.clone(),
                source: None,
                target: None,
                normalize: None,
            }];
            if per_file {
                for (path, _) in &files {
                    let single = format!("{path}.{}", algorithm.extension());
                    artifacts.push(PlannedArtifact::written(
                        single,
                        ArtifactKind::Checksum,
                        None,
                    ));
                }
            }
            let spec = ChecksumSpec {
                output: context.dist_path(&name),
                algorithm,
                files: files.clone(),
                per_file,
            };
            expansion
                .units
                .push(Unit::task(None, Task::Checksum(spec), artifacts));
        }
        if expansion.units.len() > 1 {
            for unit in &mut expansion.units {
                unit.label = unit.artifacts.first().map(|a| a.name.clone());
            }
        }
        Ok(expansion)
    }
}
