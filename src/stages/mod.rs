//! Built-in stage kinds (`uses = "..."`). Each kind is one file implementing [`Builtin`]:
//! it declares its options, checks them, and expands a stage into steps and artifacts.

mod archive;
mod cargo;
mod checksum;
mod sign;

use std::path::Path;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::config::{Loaded, Problem, StageConfig};
use crate::facts::Facts;
use crate::path;
use crate::plan::{PlannedArtifact, PlannedStage, Unit};
use crate::toolchain::Requirement;

/// A stage of the pipeline file, with access to its own table for reading options.
pub struct StageRef<'a> {
    /// The stage's name.
    pub name: &'a str,
    /// Its common settings.
    pub config: &'a StageConfig,
    /// The file it comes from.
    pub loaded: &'a Loaded,
}

impl StageRef<'_> {
    /// Reads this kind's options from the stage table; type errors come back located, every
    /// one of them.
    pub fn options<T: DeserializeOwned + Default>(&self) -> Result<T, Vec<Problem>> {
        Ok(self
            .loaded
            .deserialize_table_at(
                path!["stages", self.name],
                &format!("stage `{}`", self.name),
            )?
            .unwrap_or_default())
    }

    /// Span of the option `key`'s value, or of the stage header when it is absent.
    pub fn span(&self, key: &str) -> Option<std::ops::Range<usize>> {
        self.loaded
            .span(path!["stages", self.name, key])
            .or_else(|| self.loaded.key_span(path!["stages", self.name]))
    }

    /// Span of item `index` of the list option `key`.
    pub fn item_span(&self, key: &str, index: usize) -> Option<std::ops::Range<usize>> {
        self.loaded
            .span_near(path!["stages", self.name, key, index])
    }
}

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

/// The option names of every built-in kind, by kind, computed once (from the schemas).
pub fn option_names() -> &'static [(&'static str, Vec<String>)] {
    static NAMES: std::sync::OnceLock<Vec<(&'static str, Vec<String>)>> =
        std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        builtins()
            .iter()
            .map(|k| (k.name(), k.option_names()))
            .collect()
    })
}

/// Every built-in kind.
pub fn builtins() -> &'static [&'static dyn Builtin] {
    &[
        &cargo::Cargo,
        &archive::Archive,
        &checksum::Checksum,
        &sign::Sign,
    ]
}

/// The built-in kind called `name`.
pub fn find(name: &str) -> Option<&'static dyn Builtin> {
    builtins().iter().copied().find(|k| k.name() == name)
}
