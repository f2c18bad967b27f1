//! The pipeline file as written: plain data, faithful to the TOML, nothing resolved yet.
//!
//! Durations and sizes are typed while the file is read ([`super::values`]); templates, targets
//! and stage references stay strings here, `config::validate` checks them and `plan` resolves
//! them.

use std::collections::BTreeMap;
use std::fmt;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::values::Duration;

/// A shipit pipeline file (`shipit.toml`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields, title = "shipit pipeline")]
pub struct PipelineFile {
    /// Version of the pipeline file format. Must be `1`.
    pub version: u32,
    /// The project being built.
    #[serde(default)]
    pub project: ProjectConfig,
    /// Environment variables for every stage (values are templates).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The stages of the build, keyed by name. `needs` orders them into a graph.
    #[serde(default)]
    pub stages: IndexMap<String, StageConfig>,
    /// Where `shipit release` publishes.
    #[serde(default)]
    pub release: ReleaseConfig,
    /// Environments `shipit deploy --env <name>` can deploy to.
    #[serde(default)]
    pub deploy: BTreeMap<String, DeployConfig>,
}

/// `[project]`: what is built and where the output goes.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Project name. Default: the Cargo package name.
    pub name: Option<String>,
    /// Path to the Cargo manifest, relative to the pipeline file. Default: `Cargo.toml`.
    pub cargo: Option<String>,
    /// Output folder, relative to the pipeline file. Default: `dist`.
    pub dist: Option<String>,
    /// What release tags put before the version: `"v"` (`v1.2.3`, the default), `""` for bare
    /// tags (`1.2.3`), `"mytool-v"` in a monorepo. A tag at HEAD of either form `v1.2.3` or
    /// `1.2.3` is recognised when this is not set.
    pub tag_prefix: Option<String>,
}

/// `[stages.<name>]`: one node of the build graph.
///
/// A stage either runs shell commands (`run`) or is a built-in kind (`uses`); the options of
/// built-in kinds live in the same table and are read by the kind itself.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct StageConfig {
    /// What this stage is for, shown by `shipit plan`.
    pub description: Option<String>,
    /// Shell commands, run in order with `sh -c`; each is a template.
    pub run: Option<Commands>,
    /// A built-in stage kind, such as `cargo`.
    pub uses: Option<String>,
    /// Stages that must succeed before this one starts.
    #[serde(default)]
    pub needs: StringList,
    /// Longest time one attempt may take, e.g. `90s`, `10m`, `1h30m`. The whole process group is killed after it.
    pub timeout: Option<Duration>,
    /// How many times to retry a failed attempt.
    #[serde(default)]
    pub retries: u32,
    /// Delay before the first retry, doubled for each further one. Default: `1s`.
    pub backoff: Option<Duration>,
    /// Environment variables for this stage (values are templates).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working folder, relative to the pipeline file. Default: the Cargo project's folder.
    pub dir: Option<String>,
    /// Run this stage only when every condition given holds.
    pub when: Option<WhenConfig>,
}

/// `when = { ... }`: conditions under which a stage runs. All given conditions must hold.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct WhenConfig {
    /// Branch name globs, e.g. `"main"` or `["main", "release/*"]`.
    pub branch: Option<Patterns>,
    /// Tag globs, e.g. `"v*"`. Holds only on a tag build.
    pub tag: Option<Patterns>,
    /// Names of environment variables that must be set and non-empty.
    pub env: Option<Patterns>,
    /// `true`: only in nightly builds; `false`: never in nightly builds.
    pub nightly: Option<bool>,
}

/// `[release]`: one section per release channel, as written. Each channel reads and checks
/// its own section (`Extensions::check_channel`, `Loaded::channel_section`); config knows the
/// channels only through that seam.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct ReleaseConfig(
    #[schemars(with = "BTreeMap<String, serde_json::Value>")] pub IndexMap<String, toml::Value>,
);

impl ReleaseConfig {
    /// Whether `release` re-reads every channel after publishing (`check`, default `true`).
    pub fn check_after(&self) -> bool {
        self.0
            .get(RELEASE_CHECK_KEY)
            .and_then(toml::Value::as_bool)
            .unwrap_or(true)
    }
}

/// `[release] check = false`: the one key of `[release]` that is not a channel.
pub const RELEASE_CHECK_KEY: &str = "check";

/// `[deploy.<env>]`: how the service runs in one environment and how new versions roll out.
//
// Unknown keys are found by the schema walk (`keys.rs`), which knows the runtimes' tables.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct DeployConfig {
    /// `"blue-green"`, `"rolling"`, `"canary"` or (for `runtime = "systemd"`) `"reload"`.
    pub strategy: DeployStrategy,
    /// The image to run, for container runtimes (template; `version` is the version
    /// deployed): `"ghcr.io/acme/demo:{{ version }}"`.
    pub image: Option<String>,
    /// Containers of the service. Default: 2.
    pub replicas: Option<usize>,
    /// The port the service listens on inside its container.
    pub port: u16,
    /// Where the service runs: `"docker"` (the default: containers of `image`) or
    /// `"systemd"` (the release archive unpacked on each host, run as a unit).
    pub runtime: Option<String>,
    /// The Docker engines, addressed like the docker CLI: `unix:///var/run/docker.sock`,
    /// `tcp://host:2376` (TLS from `DOCKER_TLS_VERIFY` / `DOCKER_CERT_PATH`), `ssh://user@host`;
    /// one, or a list for several hosts. Default: `DOCKER_HOST`, else the local socket.
    pub docker: Option<StringList>,
    /// The hosts, in the order rollouts move them (for `runtime = "docker"`, the same as
    /// `docker`: engine addresses).
    pub hosts: Option<StringList>,
    /// Hosts moved at once by a rolling update: a count (`1`, the default) or a share of
    /// them (`"25%"`, rounded up).
    pub batch: Option<Batch>,
    /// The router: `{ haproxy = "unix:///run/haproxy/admin.sock", backend = "demo" }`.
    pub router: RouterConfig,
    /// The host address container ports are published on (what the router connects to).
    /// Default: `127.0.0.1`.
    pub publish_address: Option<String>,
    /// Environment of the containers (templates).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// HTTP health checks of new containers.
    #[serde(default)]
    pub health: HealthConfig,
    /// Blue-green options.
    #[serde(default)]
    pub blue_green: BlueGreenConfig,
    /// Rolling update options.
    #[serde(default)]
    pub rolling: RollingConfig,
    /// Canary options.
    #[serde(default)]
    pub canary: CanaryConfig,
    /// In-place reload options.
    #[serde(default)]
    pub reload: ReloadConfig,
    /// Analysis of the new version under traffic.
    #[serde(default)]
    pub analysis: AnalysisConfig,
    /// Longest wait for a retired container's in-flight requests. Default: `30s`.
    pub drain_timeout: Option<Duration>,
    /// How long a deploy waits for another one on the same environment. Default: `0s` (fail).
    pub lock_wait: Option<Duration>,
    /// Where each deploy's Prometheus metrics go.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Commands and a webhook around the rollout.
    #[serde(default)]
    pub hooks: HooksConfig,
    /// The runtimes' own tables (`[deploy.<env>.systemd]`), as written: each runtime reads
    /// and checks its own (`Extensions::check_runtime`, `Loaded::runtime_table`).
    #[serde(flatten)]
    #[schemars(skip)]
    pub runtime_tables: BTreeMap<String, toml::Value>,
}

/// `hooks = { pre = [...], post = [...], gate = "https://..." }`: a failing hook rolls back.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    /// Shell commands (templates, quoted as `run` stages are) run when the new version is
    /// healthy, before any traffic moves to it.
    #[serde(default)]
    pub pre: StringList,
    /// Shell commands run once the new version takes all traffic, while the old one can
    /// still be returned to.
    #[serde(default)]
    pub post: StringList,
    /// A URL asked (`GET`) until it answers 2xx, before any traffic moves.
    pub gate: Option<String>,
    /// How long the gate and each command may take. Default: `10m`.
    pub timeout: Option<Duration>,
}

/// `metrics = { file = "...", pushgateway = "http://..." }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// The text-format file written after every deploy, relative to the pipeline file.
    /// Default: `<dist>/deploy/<env>.prom`.
    pub file: Option<String>,
    /// A Pushgateway the metrics are pushed to (`PUT`, group `job="shipit"`, app, env).
    pub pushgateway: Option<String>,
}

/// Rollout strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeployStrategy {
    /// A full new set, all traffic switched at once.
    BlueGreen,
    /// Replicas replaced in batches.
    Rolling,
    /// Traffic moved to the new version in weighted steps, with analysis between.
    Canary,
    /// Each running instance swapped to the new release in place and sent its unit's reload,
    /// a batch of hosts at a time (runtimes that can, such as systemd).
    Reload,
}

impl std::fmt::Display for DeployStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeployStrategy::BlueGreen => "blue-green",
            DeployStrategy::Rolling => "rolling",
            DeployStrategy::Canary => "canary",
            DeployStrategy::Reload => "reload",
        })
    }
}

/// How many hosts a rolling update moves at once.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Batch {
    /// This many hosts.
    Count(u64),
    /// This share of the hosts, e.g. `"25%"`.
    Share(String),
}

/// `router = { <router> = ..., backend = "..." }`, e.g. `haproxy = "unix:///..."`.
//
// Unknown keys are found by the schema walk, which knows the routers' keys.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct RouterConfig {
    /// The backend whose servers shipit manages.
    pub backend: String,
    /// The router's key and its options, as written: one router, which reads and checks
    /// them (`Extensions::check_router`).
    #[serde(flatten)]
    #[schemars(skip)]
    pub options: BTreeMap<String, toml::Value>,
}

/// `health = { ... }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Path checked. Default: `/healthz`.
    pub path: Option<String>,
    /// Status expected. Default: 200.
    pub status: Option<u16>,
    /// `Host` header sent.
    pub host: Option<String>,
    /// Time between checks. Default: `1s`.
    pub interval: Option<Duration>,
    /// Longest wait for one answer. Default: `2s`.
    pub timeout: Option<Duration>,
    /// Passed checks in a row that make a container healthy. Default: 2.
    pub healthy: Option<u32>,
    /// Failed checks in a row (after it first answered) that make it unhealthy. Default: 3.
    pub unhealthy: Option<u32>,
    /// Longest wait for every new container to be healthy. Default: `60s`.
    pub deadline: Option<Duration>,
}

/// `blue_green = { ... }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlueGreenConfig {
    /// How long the old color stays warm (and the analysis runs) after the switch. Default: `30s`.
    pub scale_down_delay: Option<Duration>,
    /// A second HAProxy backend (of the same runtime API) where the healthy new color is shown
    /// before the switch, for a look or a smoke test.
    pub preview_backend: Option<String>,
    /// How long the preview lasts. Default: `30s`.
    pub preview: Option<Duration>,
}

/// `rolling = { ... }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollingConfig {
    /// New containers started beyond `replicas` at a time. Default: 1.
    pub max_surge: Option<usize>,
    /// Containers that may be missing at a time. Default: 0.
    pub max_unavailable: Option<usize>,
    /// How long each batch takes traffic, with the analysis running, before the next one
    /// moves. Default: the analysis's worst-case detection time plus one interval.
    pub pause: Option<Duration>,
}

/// `reload = { ... }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReloadConfig {
    /// How long each reloaded batch takes traffic, with the analysis running, before the next
    /// one moves. Default: the analysis's worst-case detection time plus one interval.
    pub pause: Option<Duration>,
}

/// `canary = { ... }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// Traffic shares of the new version, in percent. Default: `[10, 50, 100]`.
    pub steps: Option<Vec<u32>>,
    /// Pause after each step. Default: `30s`.
    pub pause: Option<Duration>,
}

/// `analysis = { ... }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Time between samples. Default: `5s`.
    pub interval: Option<Duration>,
    /// Failed samples in a row that roll back. Default: 2.
    pub failure_limit: Option<u32>,
    /// Largest share of 5xx answers and connection errors. Default: 0.01.
    pub max_error_rate: Option<f64>,
    /// Slowest average response time of the new servers, milliseconds (HAProxy's `rtime`).
    pub max_response_ms: Option<u64>,
    /// Fewer requests than this in a sample say nothing. Default: 10.
    pub min_requests: Option<u64>,
    /// A Prometheus query whose value must stay at or under `max`.
    pub prometheus: Option<PrometheusCheck>,
}

/// `prometheus = { url = "http://127.0.0.1:9090", query = "...", max = 0.5 }`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusCheck {
    /// The server.
    pub url: String,
    /// An instant query returning one number (template: `version`, `revision`).
    pub query: String,
    /// Largest value allowed.
    pub max: f64,
}

/// One string or a list of strings; `run = "make"` means `run = ["make"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct StringList(#[schemars(with = "OneOrMany")] pub Vec<String>);

/// Shell commands of a `run` stage.
pub type Commands = StringList;
/// Glob patterns or names.
pub type Patterns = StringList;

#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;

        impl<'de> Visitor<'de> for ListVisitor {
            type Value = StringList;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringList, E> {
                Ok(StringList(vec![v.to_owned()]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringList, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(StringList(items))
            }
        }

        deserializer.deserialize_any(ListVisitor)
    }
}
