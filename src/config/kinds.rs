//! What config knows of stage kinds and release channels: only what the layers that define
//! them hand in (names, schemas as plain data, and a check), so config never imports a kind or
//! a channel, and a new one never edits config.

use std::ops::Range;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Loaded, Problem, StageConfig};
use crate::path;

/// One stage kind, as config sees it.
#[derive(Debug, Clone)]
pub struct KindInfo {
    /// The name used in `uses = "<name>"`.
    pub name: &'static str,
    /// One line about what it does.
    pub about: &'static str,
    /// JSON Schema of the options it reads from its stage table.
    pub options: Value,
    /// Names of those options.
    pub option_names: Vec<String>,
}

/// One release channel, as config sees it: a `[release.<name>]` section.
#[derive(Debug, Clone)]
pub struct ChannelInfo {
    /// The section's name.
    pub name: &'static str,
    /// One line about what it publishes.
    pub about: &'static str,
    /// JSON Schema of its section.
    pub schema: Value,
}

/// A deploy runtime or router, as config sees it: its own options, kept raw and read only by
/// it (a runtime's `[deploy.<env>.<name>]` table when `runtime = "<name>"`; a router's value
/// under its key in `router = { <name> = ..., backend = "..." }`).
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// The name used in `runtime = "<name>"`, or the router's key.
    pub name: &'static str,
    /// One line about what it is.
    pub about: &'static str,
    /// JSON Schema of its options.
    pub schema: Value,
}

/// What the layers above config add to the pipeline file: the stage kinds a pipeline may name
/// in `uses`, and the release channels it may configure under `[release]`.
pub trait Extensions: Sync {
    /// Every kind.
    fn kinds(&self) -> &[KindInfo];

    /// Checks the options of `stage`, whose kind is `kind` (one of [`Extensions::kinds`]),
    /// without project facts; every problem located.
    fn check(&self, kind: &str, stage: &StageRef<'_>) -> Vec<Problem>;

    /// Every release channel.
    fn channels(&self) -> &[ChannelInfo] {
        &[]
    }

    /// Checks the `[release.<channel>]` section (one of [`Extensions::channels`]) without
    /// project facts; every problem located.
    fn check_channel(&self, channel: &str, loaded: &Loaded) -> Vec<Problem> {
        let _ = (channel, loaded);
        Vec::new()
    }

    /// Every deploy runtime.
    fn runtimes(&self) -> &[TableInfo] {
        &[]
    }

    /// Checks the `[deploy.<env>.<runtime>]` table (`runtime` one of
    /// [`Extensions::runtimes`]) without project facts; every problem located.
    fn check_runtime(&self, runtime: &str, env: &str, loaded: &Loaded) -> Vec<Problem> {
        let _ = (runtime, env, loaded);
        Vec::new()
    }

    /// Every deploy router.
    fn routers(&self) -> &[TableInfo] {
        &[]
    }

    /// Checks router `router`'s options in `[deploy.<env>]` (`router` one of
    /// [`Extensions::routers`]) without project facts; every problem located.
    fn check_router(&self, router: &str, env: &str, loaded: &Loaded) -> Vec<Problem> {
        let _ = (router, env, loaded);
        Vec::new()
    }

    /// The pipeline file's JSON Schema with these kinds' options and channels' sections
    /// ([`super::schema::build`]); built once by the implementation, as the unknown-key check
    /// reads it on every load.
    fn pipeline_schema(&self) -> &Value;

    /// The kind called `name`.
    fn find(&self, name: &str) -> Option<&KindInfo> {
        self.kinds().iter().find(|k| k.name == name)
    }
}

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
    /// Reads a kind's options from the stage table; type errors come back located, every one
    /// of them.
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
    pub fn span(&self, key: &str) -> Option<Range<usize>> {
        self.loaded
            .span(path!["stages", self.name, key])
            .or_else(|| self.loaded.key_span(path!["stages", self.name]))
    }

    /// Span of item `index` of the list option `key`.
    pub fn item_span(&self, key: &str, index: usize) -> Option<Range<usize>> {
        self.loaded
            .span_near(path!["stages", self.name, key, index])
    }
}
