//! `uses = "sign"`: minisign signatures for the checksum files of the stages it needs (or for
//! every artifact), plus the public key beside them.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Context, Expansion, Kind, StageRef};
use crate::config::validate::template_problem;
use crate::config::{KeyConfig, Problem};
use crate::manifest::ArtifactKind;
use crate::plan::{PlannedArtifact, Unit};
use crate::tasks::{KeySource, KeylessSpec, SignSpec, Task};
use crate::{path, template};

/// Options of `uses = "sign"`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SignOptions {
    /// The secret key: `{ file = "...", password_env = "..." }` or `{ env = "...", password_env = "..." }`.
    pub key: Option<KeyConfig>,
    /// What to sign: `"checksums"` (the checksum files of the stages it needs) or `"all"` (every artifact so far, too). Default: `"checksums"`.
    pub artifacts: Option<What>,
    /// File name of the public key written to the dist folder (template); `""` for none. Default: `{{ project }}.pub`.
    pub public_key: Option<String>,
}

/// What to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum What {
    /// The checksum files of the stages it needs.
    Checksums,
    /// Every artifact of every stage before it.
    All,
}

/// The problem of a stage's minisign `key` option (`what` names the stage in the message):
/// missing, or not exactly one of `file` and `env`.
pub(super) fn key_problem(
    stage: &StageRef<'_>,
    key: Option<&KeyConfig>,
    what: &str,
) -> Option<Problem> {
    match key {
        Some(key) if key.sigstore.is_some() => {
            let keyless = key.keyless().is_some();
            if what != "a sign stage" && keyless {
                Some(
                    Problem::new(format!("{what} cannot sign keyless"), stage.span("key"))
                        .help("`sigstore` is for `uses = \"sign\"` stages; give this one a minisign key"),
                )
            } else if keyless && (key.file.is_some() || key.env.is_some()) {
                Some(
                    Problem::new("`key` is either a minisign key or `sigstore`, not both", stage.span("key"))
                        .help("drop `file`/`env` to sign keyless, or `sigstore` to sign with the key"),
                )
            } else if !keyless && key.file.is_some() == key.env.is_some() {
                Some(
                    Problem::new("`sigstore = false` and no key", stage.span("key"))
                        .help("set `file` or `env`, or `sigstore = true`"),
                )
            } else {
                None
            }
        }
        None => Some(
            Problem::new(format!("{what} needs a `key`"), stage.span("uses"))
                .help("add `key = { env = \"SHIPIT_SIGNING_KEY\", password_env = \"SHIPIT_SIGNING_PASSWORD\" }`; `shipit keygen` makes one"),
        ),
        Some(key) if key.file.is_some() == key.env.is_some() => Some(
            Problem::new("`key` needs exactly one of `file` and `env`", stage.span("key"))
                .label("where is the key?")
                .help("`file` for a key file, `env` for a variable holding its text"),
        ),
        Some(_) => None,
    }
}

/// The `sign` kind.
pub struct Sign;

impl Kind for Sign {
    type Options = SignOptions;
    const NAME: &'static str = "sign";
    const ABOUT: &'static str = "sign checksum files (or every artifact) with a minisign key";

    fn check(&self, stage: &StageRef<'_>, options: &SignOptions) -> Vec<Problem> {
        let mut problems = Vec::new();
        problems.extend(key_problem(stage, options.key.as_ref(), "a sign stage"));
        problems.extend(super::needs_none(
            stage,
            "a sign stage needs the stage that writes checksums",
            "checksum",
        ));
        problems
    }

    fn expand(
        &self,
        stage: &StageRef<'_>,
        options: SignOptions,
        context: &Context<'_>,
    ) -> Result<Expansion, Vec<Problem>> {
        let key = options.key.clone().unwrap_or_default();
        let what = options.artifacts.unwrap_or(What::Checksums);
        let to_sign: Vec<&PlannedArtifact> = match what {
            What::Checksums => context
                .needed_artifacts(stage)
                .into_iter()
                .filter(|a| a.kind == ArtifactKind::Checksum)
                .collect(),
            What::All => context
                .upstream_artifacts(stage)
                .into_iter()
                .filter(|a| a.kind != ArtifactKind::Signature)
                .collect(),
        };
        if to_sign.is_empty() {
            return Err(vec![
                Problem::new(
                    "nothing to sign: the stages this sign stage needs write no checksum files",
                    stage.span("needs"),
                )
                .help("need the `uses = \"checksum\"` stage, or set `artifacts = \"all\"`"),
            ]);
        }
        let public_key = match &options.public_key {
            Some(text) => template::render(text, &context.facts.template_vars()).map_err(|e| {
                vec![template_problem(
                    stage.loaded,
                    path!["stages", stage.name, "public_key"],
                    text,
                    e,
                )]
            })?,
            None => format!("{}.pub", context.facts.project),
        };
        if let Some(instance) = key.keyless() {
            return Ok(keyless(stage, context, &to_sign, &instance));
        }
        let mut artifacts: Vec<PlannedArtifact> = to_sign
            .iter()
            .map(|a| {
                PlannedArtifact::written(
                    format!("{}.minisig", a.path),
                    ArtifactKind::Signature,
                    a.target.clone(),
                )
            })
            .collect();
        if !public_key.is_empty() {
            artifacts.push(PlannedArtifact {
                name: public_key.clone(),
                kind: ArtifactKind::File,
                path: public_key.clone(),
                source: None,
                target: None,
                normalize: None,
            });
        }
        let spec = SignSpec {
            stage: stage.name.to_string(),
            key: KeySource::from_config(&key, stage.loaded),
            files: to_sign.iter().map(|a| context.dist_path(&a.path)).collect(),
            public_key: (!public_key.is_empty()).then(|| context.dist_path(&public_key)),
            timestamp: context.facts.source_date_epoch,
        };
        Ok(Expansion {
            units: vec![Unit::task(None, Task::Sign(spec), artifacts)],
            requires: Vec::new(),
        })
    }
}

/// A keyless sign stage: one Sigstore bundle beside each file, no key file.
fn keyless(
    stage: &StageRef<'_>,
    context: &Context<'_>,
    to_sign: &[&PlannedArtifact],
    instance: &crate::config::SigstoreInstance,
) -> Expansion {
    let defaults = crate::sigstore::Endpoints::default();
    let spec = KeylessSpec {
        stage: stage.name.to_string(),
        files: to_sign.iter().map(|a| context.dist_path(&a.path)).collect(),
        endpoints: crate::sigstore::Endpoints {
            fulcio: instance.fulcio.clone().unwrap_or(defaults.fulcio),
            rekor: instance.rekor.clone().unwrap_or(defaults.rekor),
        },
        trusted_root: instance
            .trusted_root
            .as_deref()
            .map(|f| stage.loaded.resolve(f)),
    };
    let artifacts = to_sign
        .iter()
        .map(|a| {
            PlannedArtifact::written(
                crate::sigstore::bundle::file_name(&a.path),
                ArtifactKind::Signature,
                a.target.clone(),
            )
        })
        .collect();
    Expansion {
        units: vec![Unit::task(None, Task::Keyless(spec), artifacts)],
        requires: Vec::new(),
    }
}
