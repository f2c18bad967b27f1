//! Built-in stage kinds (`uses = "..."`). Each kind is one file implementing [`Builtin`]:
//! it declares its options, checks them, and expands a stage into steps and artifacts.

mod archive;
mod audit;
mod cargo;
mod checksum;
mod generate;
mod installer;
mod package;
mod provenance;
mod sbom;
mod sign;

use std::path::Path;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use crate::config::StageRef;
use crate::config::{Extensions, KindInfo, Problem};
use crate::facts::Facts;
use crate::plan::{PlannedArtifact, PlannedStage, Unit};
use crate::toolchain::Requirement;

/// What a built-in stage turns into: units of work and the tools they need.
#[derive(Debug, Clone, Default)]
pub struct Expansion {
    /// Independent units (one per target for `cargo`), run in parallel.
    pub units: Vec<Unit>,
    /// Tools to have in place before the stage runs.
    pub requires: Vec<Requirement>,
}

/// A built-in stage kind.
pub trait Builtin: Send + Sync {
    /// The name used in `uses = "<name>"`.
    fn name(&self) -> &'static str;
    /// One line about what it does.
    fn about(&self) -> &'static str;
    /// JSON Schema of the options it reads from its stage table.
    fn options_schema(&self) -> schemars::Schema;
    /// Names of its options.
    fn option_names(&self) -> Vec<String> {
        self.options_schema()
            .as_object()
            .and_then(|o| o.get("properties"))
            .and_then(|p| p.as_object())
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }
    /// Checks the options without project facts (for `shipit check`).
    fn check(&self, stage: &StageRef<'_>) -> Vec<Problem>;
    /// Expands the stage for this run.
    fn expand(
        &self,
        stage: &StageRef<'_>,
        context: &Context<'_>,
    ) -> Result<Expansion, Vec<Problem>>;
}

/// A built-in kind with typed options; every `Kind` is a [`Builtin`], which reads the options
/// from the stage table (type errors located) before calling it.
pub trait Kind: Send + Sync {
    /// Its options, read from the stage table.
    type Options: DeserializeOwned + JsonSchema + Default;
    /// The name used in `uses = "<name>"`.
    const NAME: &'static str;
    /// One line about what it does.
    const ABOUT: &'static str;
    /// Checks the options without project facts.
    fn check(&self, stage: &StageRef<'_>, options: &Self::Options) -> Vec<Problem>;
    /// Expands the stage for this run.
    fn expand(
        &self,
        stage: &StageRef<'_>,
        options: Self::Options,
        context: &Context<'_>,
    ) -> Result<Expansion, Vec<Problem>>;
}

impl<K: Kind> Builtin for K {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn about(&self) -> &'static str {
        K::ABOUT
    }

    fn options_schema(&self) -> schemars::Schema {
        schemars::schema_for!(K::Options)
    }

    fn check(&self, stage: &StageRef<'_>) -> Vec<Problem> {
        match stage.options::<K::Options>() {
            Ok(options) => Kind::check(self, stage, &options),
            Err(problems) => problems,
        }
    }

    fn expand(
        &self,
        stage: &StageRef<'_>,
        context: &Context<'_>,
    ) -> Result<Expansion, Vec<Problem>> {
        let options = stage.options::<K::Options>()?;
        Kind::expand(self, stage, options, context)
    }
}

/// What a stage can see while it is expanded: the run's facts, the dist folder, and the stages
/// planned before it (everything it needs comes first).
pub struct Context<'a> {
    /// Facts of the run.
    pub facts: &'a Facts,
    /// The dist folder.
    pub dist: &'a Path,
    /// Stages already planned.
    pub planned: &'a [PlannedStage],
    /// When set, the targets builds are limited to (by name).
    pub only_targets: Option<&'a [String]>,
}

impl Context<'_> {
    /// Artifacts of the stages `stage` lists in `needs`.
    pub fn needed_artifacts(&self, stage: &StageRef<'_>) -> Vec<&PlannedArtifact> {
        self.planned
            .iter()
            .filter(|p| stage.config.needs.0.contains(&p.name))
            .flat_map(|p| p.artifacts())
            .collect()
    }

    /// Artifacts of every stage `stage` depends on, directly or not, in plan order.
    pub fn upstream_artifacts(&self, stage: &StageRef<'_>) -> Vec<&PlannedArtifact> {
        let mut wanted: Vec<&str> = stage.config.needs.0.iter().map(String::as_str).collect();
        let mut upstream = std::collections::BTreeSet::new();
        while let Some(name) = wanted.pop() {
            if upstream.insert(name)
                && let Some(p) = self.planned.iter().find(|p| p.name == name)
            {
                wanted.extend(p.needs.iter().map(String::as_str));
            }
        }
        self.planned
            .iter()
            .filter(|p| upstream.contains(p.name.as_str()))
            .flat_map(|p| p.artifacts())
            .collect()
    }

    /// A path inside the dist folder.
    pub fn dist_path(&self, relative: &str) -> std::path::PathBuf {
        self.dist.join(relative)
    }
}

/// The problem of a stage that works on other stages' output but `needs` none: `why`, and
/// the stage to add.
fn needs_none(stage: &StageRef<'_>, why: impl Into<String>, example: &str) -> Option<Problem> {
    stage.config.needs.0.is_empty().then(|| {
        Problem::new(why, stage.span("uses")).help(format!("add `needs = [\"{example}\"]`"))
    })
}

/// The built-in kinds, as config needs to know them: what [`crate::config::load`] takes.
pub const BUILTINS: &Builtins = &Builtins;

/// The built-in kinds behind config's [`Extensions`] seam.
pub struct Builtins;

impl Extensions for Builtins {
    fn kinds(&self) -> &[KindInfo] {
        static KINDS: std::sync::OnceLock<Vec<KindInfo>> = std::sync::OnceLock::new();
        KINDS.get_or_init(|| {
            builtins()
                .iter()
                .map(|k| KindInfo {
                    name: k.name(),
                    about: k.about(),
                    options: k.options_schema().to_value(),
                    option_names: k.option_names(),
                })
                .collect()
        })
    }

    fn check(&self, kind: &str, stage: &StageRef<'_>) -> Vec<Problem> {
        find(kind).map(|k| k.check(stage)).unwrap_or_default()
    }

    fn pipeline_schema(&self) -> &Value {
        static SCHEMA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
        SCHEMA.get_or_init(|| crate::config::schema::build(self.kinds(), &[], &[], &[]))
    }
}

/// Every built-in kind.
pub fn builtins() -> &'static [&'static dyn Builtin] {
    &[
        &cargo::Cargo,
        &archive::Archive,
        &checksum::Checksum,
        &sign::Sign,
        &generate::Generate,
        &installer::Installer,
        &package::DEB,
        &package::RPM,
        &sbom::Sbom,
        &provenance::Provenance,
        &audit::Audit,
    ]
}

/// The built-in kind called `name`.
pub fn find(name: &str) -> Option<&'static dyn Builtin> {
    builtins().iter().copied().find(|k| k.name() == name)
}
