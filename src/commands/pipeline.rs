//! What a pipeline file may hold beyond config's own keys, assembled where every layer is
//! visible: the plan layer's stage kinds and the publish layer's release channels, handed to
//! `config::load` through its one seam.

use serde_json::Value;

use crate::config::{ChannelInfo, Extensions, KindInfo, Loaded, Problem, StageRef, TableInfo};
use crate::deploy::router::ROUTERS;
use crate::deploy::runtime::RUNTIMES;
use crate::plan::kinds::BUILTINS;
use crate::publish;

/// Every built-in stage kind and release channel.
pub struct Pipeline;

/// What every command loads pipeline files with.
pub const PIPELINE: &Pipeline = &Pipeline;

impl Extensions for Pipeline {
    fn kinds(&self) -> &[KindInfo] {
        BUILTINS.kinds()
    }

    fn check(&self, kind: &str, stage: &StageRef<'_>) -> Vec<Problem> {
        BUILTINS.check(kind, stage)
    }

    fn channels(&self) -> &[ChannelInfo] {
        publish::channel_infos()
    }

    fn check_channel(&self, channel: &str, loaded: &Loaded) -> Vec<Problem> {
        publish::find(channel)
            .map(|c| c.check(loaded))
            .unwrap_or_default()
    }

    fn runtimes(&self) -> &[TableInfo] {
        static RUNTIME_INFOS: std::sync::OnceLock<Vec<TableInfo>> = std::sync::OnceLock::new();
        RUNTIME_INFOS.get_or_init(|| {
            RUNTIMES
                .iter()
                .filter_map(|k| {
                    Some(TableInfo {
                        name: k.name,
                        about: k.about,
                        schema: (k.options?)(),
                    })
                })
                .collect()
        })
    }

    fn check_runtime(&self, runtime: &str, env: &str, loaded: &Loaded) -> Vec<Problem> {
        RUNTIMES
            .iter()
            .find(|k| k.name == runtime)
            .map(|k| crate::deploy::runtime::check(k, loaded, env))
            .unwrap_or_default()
    }

    fn routers(&self) -> &[TableInfo] {
        static ROUTER_INFOS: std::sync::OnceLock<Vec<TableInfo>> = std::sync::OnceLock::new();
        ROUTER_INFOS.get_or_init(|| {
            ROUTERS
                .iter()
                .map(|k| TableInfo {
                    name: k.name,
                    about: k.about,
                    schema: (k.options)(),
                })
                .collect()
        })
    }

    fn check_router(&self, router: &str, env: &str, loaded: &Loaded) -> Vec<Problem> {
        ROUTERS
            .iter()
            .find(|k| k.name == router)
            .map(|k| (k.check)(loaded, env))
            .unwrap_or_default()
    }

    fn pipeline_schema(&self) -> &Value {
        static SCHEMA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
        SCHEMA.get_or_init(|| {
            crate::config::schema::build(
                self.kinds(),
                self.channels(),
                self.runtimes(),
                self.routers(),
            )
        })
    }
}
