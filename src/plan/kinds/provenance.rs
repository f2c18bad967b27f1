//! `uses = "provenance"`: a SLSA provenance v1 statement of every artifact of the stages before
//! it, signed with the release's minisign key as a DSSE envelope (see [`crate::provenance`]),
//! written into dist as `<project>-<version>.intoto.jsonl`.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Context, Expansion, Kind, StageRef};
use crate::config::validate::template_problem;
use crate::config::{KeyConfig, Problem};
use crate::manifest::ArtifactKind;
use crate::plan::{PlannedArtifact, Unit};
use crate::provenance::ProvenanceSpec;
use crate::tasks::{KeySource, ProvenanceTask, Task};
use crate::{path, template};

/// Options of `uses = "provenance"`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ProvenanceOptions {
    /// The minisign secret key that signs (an Ed25519 key; the sign stage's): `{ env = "...", password_env = "..." }` or `{ file = "...", password_env = "..." }`.
    pub key: Option<KeyConfig>,
    /// File name in dist (template). Default: `{{ project }}-{{ version }}.intoto.jsonl`.
    pub output: Option<String>,
}

/// The `provenance` kind.
pub struct Provenance;

impl Kind for Provenance {
    type Options = ProvenanceOptions;
    const NAME: &'static str = "provenance";
    const ABOUT: &'static str =
        "signed SLSA provenance (in-toto, DSSE) of every artifact before it";

    fn check(&self, stage: &StageRef<'_>, options: &ProvenanceOptions) -> Vec<Problem> {
        let mut problems = Vec::new();
        problems.extend(super::sign::key_problem(
            stage,
            options.key.as_ref(),
            "a provenance stage",
        ));
        problems.extend(super::needs_none(
            stage,
            "a provenance stage needs the stages whose artifacts it describes",
            "checksum",
        ));
        problems
    }

    fn expand(
        &self,
        stage: &StageRef<'_>,
        options: ProvenanceOptions,
        context: &Context<'_>,
    ) -> Result<Expansion, Vec<Problem>> {
        let facts = context.facts;
        let output = match &options.output {
            Some(text) => template::render(text, &facts.template_vars()).map_err(|e| {
                vec![template_problem(
                    stage.loaded,
                    path!["stages", stage.name, "output"],
                    text,
                    e,
                )]
            })?,
            None => format!("{}-{}.intoto.jsonl", facts.project, facts.version),
        };
        let upstream = context.upstream_artifacts(stage);
        let mut subjects: Vec<(String, std::path::PathBuf)> = upstream
            .iter()
            .map(|a| (a.path.clone(), context.dist_path(&a.path)))
            .collect();
        subjects.sort();
        subjects.dedup();
        if subjects.is_empty() {
            return Err(vec![
                Problem::new(
                    "the stages this provenance stage needs write no artifacts",
                    stage.span("needs"),
                )
                .help("need the stages whose files are released, such as `checksum`"),
            ]);
        }
        let mut targets: Vec<String> = upstream
            .iter()
            .filter_map(|a| a.target.as_ref().map(|t| t.name.clone()))
            .collect();
        targets.sort();
        targets.dedup();
        let pipeline = stage
            .loaded
            .path
            .strip_prefix(&facts.cargo.workspace_root)
            .unwrap_or(&stage.loaded.path)
            .display()
            .to_string();
        let external = json!({
            "pipeline": {
                "path": pipeline,
                "digest": { "sha256": hex::encode(Sha256::digest(stage.loaded.text.as_bytes())) },
            },
            "project": facts.project,
            "version": facts.version,
            "tag": facts.tag,
            "targets": targets,
            "snapshot": facts.snapshot,
            "nightly": facts.nightly,
            "source_date_epoch": facts.source_date_epoch,
        });
        // shipit's version pins the zig and cargo-zigbuild it provisions, and how it builds:
        // `shipit reproduce` says when it differs.
        let internal = json!({
            "rustc": facts.rustc,
            "host": facts.host,
            "shipit": env!("CARGO_PKG_VERSION"),
        });
        let env = |name: &str| facts.env.get(name).filter(|v| !v.is_empty()).cloned();
        let server = env("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
        let repository =
            env("GITHUB_REPOSITORY").or_else(|| crate::github_urls::release_repo(stage.loaded));
        let mut source = json!({ "name": "source", "digest": { "gitCommit": facts.commit } });
        if let Some(repo) = &repository {
            source["uri"] = json!(format!("git+{server}/{repo}"));
        }
        let mut dependencies = vec![source];
        let lock = facts.cargo.workspace_root.join("Cargo.lock");
        if let Ok(bytes) = std::fs::read(&lock) {
            dependencies.push(json!({
                "name": "Cargo.lock",
                "digest": { "sha256": hex::encode(Sha256::digest(&bytes)) },
            }));
        }
        let on_actions = env("GITHUB_ACTIONS").as_deref() == Some("true");
        let builder_id = match env("GITHUB_WORKFLOW_REF").filter(|_| on_actions) {
            Some(workflow) => format!("{server}/{workflow}"),
            None => "https://github.com/shipit-rs/shipit/local".to_owned(),
        };
        let invocation_id = match (&repository, env("GITHUB_RUN_ID")) {
            (Some(repo), Some(run)) if on_actions => Some(format!(
                "{server}/{repo}/actions/runs/{run}/attempts/{}",
                env("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into())
            )),
            _ => None,
        };
        let key = options.key.clone().unwrap_or_default();
        let spec = ProvenanceSpec {
            subjects,
            output: context.dist_path(&output),
            external,
            internal,
            dependencies: Value::Array(dependencies),
            builder_id,
            invocation_id,
        };
        Ok(Expansion {
            units: vec![Unit::task(
                None,
                Task::Provenance(Box::new(ProvenanceTask {
                    spec,
                    stage: stage.name.to_string(),
                    key: KeySource::from_config(&key, stage.loaded),
                })),
                vec![PlannedArtifact::written(output, ArtifactKind::File, None)],
            )],
            requires: Vec::new(),
        })
    }
}
