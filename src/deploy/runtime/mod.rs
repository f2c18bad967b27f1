//! Where revisions run: the seam a deploy target implements (instances started and removed by
//! name and label, the environment's lock, the record of every attempt), in its own types.
//! Docker, through its engine API, is the first ([`docker`]); `deploy::connect` is where a
//! runtime is chosen.

pub mod docker;
pub mod systemd;

use crate::config::{Loaded, Problem};

/// A runtime as the pipeline file names it: `runtime = "<name>"`, and the schema and check of
/// its own `[deploy.<env>.<name>]` table when it reads one.
pub struct Kind {
    /// The name.
    pub name: &'static str,
    /// Where it runs a service, in one line.
    pub about: &'static str,
    /// JSON Schema of its table, when it has one.
    pub options: Option<fn() -> serde_json::Value>,
    /// Every problem of its table in environment `env`, located.
    pub check: fn(&Loaded, &str) -> Vec<Problem>,
    /// Whether it swaps a running instance in place ([`Runtime::reload`]), for
    /// `strategy = "reload"`.
    pub reloads: bool,
}

/// The runtimes a pipeline may name in `runtime = "..."`, each chosen in `deploy::connect`.
pub const RUNTIMES: &[Kind] = &[
    Kind {
        name: "docker",
        about: "containers of `image` on Docker engines",
        options: None,
        check: |_, _| Vec::new(),
        reloads: false,
    },
    Kind {
        name: "systemd",
        about: "the release archive unpacked on plain Linux hosts over ssh, run as a unit",
        options: Some(|| schemars::schema_for!(systemd::Options).to_value()),
        check: systemd::check,
        reloads: true,
    },
];

/// Every problem of environment `env` for runtime `kind`: its own table's, and a strategy it
/// cannot carry out.
pub fn check(kind: &Kind, loaded: &Loaded, env: &str) -> Vec<Problem> {
    let mut problems = (kind.check)(loaded, env);
    let strategy = loaded.file.deploy.get(env).map(|d| d.strategy);
    if strategy == Some(crate::config::DeployStrategy::Reload) && !kind.reloads {
        let reloading: Vec<&str> = RUNTIMES
            .iter()
            .filter(|k| k.reloads)
            .map(|k| k.name)
            .collect();
        problems.push(
            Problem::new(
                format!(
                    "the {} runtime cannot swap a running instance in place",
                    kind.name
                ),
                loaded.span(crate::path!["deploy", env, "strategy"]),
            )
            .label("here")
            .help(format!(
                "use \"rolling\" (a new instance beside the old one), or runtime = \"{}\"",
                reloading.join("\" or \"")
            )),
        );
    }
    problems
}

/// The names of [`RUNTIMES`].
pub fn names() -> Vec<&'static str> {
    RUNTIMES.iter().map(|k| k.name).collect()
}

use std::collections::BTreeMap;

use futures_util::future::LocalBoxFuture;

use serde::Serialize;

/// The application a container belongs to.
pub const APP: &str = "shipit.app";
/// The environment.
pub const ENV: &str = "shipit.env";
/// `service`, `lock` or `record`.
pub const KIND: &str = "shipit.kind";
/// The revision number.
pub const REVISION: &str = "shipit.revision";
/// The version deployed.
pub const VERSION: &str = "shipit.version";
/// The image reference.
pub const IMAGE: &str = "shipit.image";
/// `blue` or `green`: revisions alternate, so the old and the new set always differ.
pub const COLOR: &str = "shipit.color";

/// The color of a revision.
pub fn color(revision: u64) -> &'static str {
    if revision % 2 == 1 { "blue" } else { "green" }
}

/// A service container as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Container {
    /// Name (also its server name in the router).
    pub name: String,
    /// Revision it belongs to.
    pub revision: u64,
    /// Version it runs.
    pub version: String,
    /// Image.
    pub image: String,
    /// `running`, `exited`, ...
    pub state: String,
    /// `address:port` the router reaches it on, when running and published.
    pub address: Option<String>,
    /// The runtime it runs on ([`Runtime::address`]): which host, in a fleet.
    pub host: String,
}

/// What to run.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerSpec {
    /// Container name.
    pub name: String,
    /// Image.
    pub image: String,
    /// `KEY=value`.
    pub env: Vec<String>,
    /// Port inside the container.
    pub port: u16,
    /// Host address to publish it on.
    pub publish_address: String,
    /// `shipit.*` labels.
    pub labels: BTreeMap<String, String>,
}

/// A record of one deploy attempt (for Docker a labelled volume, for systemd a file on the
/// host: immutable, listable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Record {
    /// Revision.
    pub revision: u64,
    /// Version.
    pub version: String,
    /// Image.
    pub image: String,
    /// `promoted`, `rolled-back`, `failed`.
    pub outcome: String,
    /// Revision it replaced, if any.
    pub from: Option<u64>,
    /// Who ran it (`user@host`).
    pub by: String,
    /// When it started and ended (RFC 3339).
    pub started: String,
    /// When it ended.
    pub finished: String,
    /// What was measured, or why it failed.
    pub detail: String,
    /// What was done on each host, in order.
    pub steps: Vec<Step>,
}

/// One thing a deploy did on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Step {
    /// The host ([`Runtime::address`]).
    pub host: String,
    /// What, e.g. `started demo-production-r3-1`.
    pub did: String,
}

/// An operator's command to a running deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Control {
    /// `pause`, `resume`, `promote` or `abort`.
    pub command: String,
    /// Who gave it (`user@host`).
    pub by: String,
}

/// Who holds a lock: its container id and labels.
#[derive(Debug, Clone, Default)]
pub struct Holder {
    /// The lock container's id.
    pub id: Option<String>,
    /// Its labels (`shipit.by`, `shipit.host`, `shipit.pid`, `shipit.started`).
    pub labels: BTreeMap<String, String>,
}

/// A place that runs an environment's containers and keeps its records.
pub trait Runtime {
    /// Where it is, for messages.
    fn address(&self) -> &str;

    /// Checks the host can take a deploy (reached, the runtime answering), before anything
    /// on any host changes.
    fn preflight(&self) -> LocalBoxFuture<'_, Result<(), RuntimeError>>;

    /// Makes `image` present (pulling it with `credentials` when needed).
    fn ensure_image<'a>(
        &'a self,
        image: &'a str,
        credentials: Option<(String, String)>,
    ) -> LocalBoxFuture<'a, Result<(), RuntimeError>>;

    /// Starts a container.
    fn start<'a>(
        &'a self,
        spec: &'a ContainerSpec,
    ) -> LocalBoxFuture<'a, Result<Container, RuntimeError>>;

    /// The environment's containers.
    fn containers<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<Container>, RuntimeError>>;

    /// Stops and removes a container (one already gone is fine).
    fn remove<'a>(&'a self, name: &'a str) -> LocalBoxFuture<'a, Result<(), RuntimeError>>;

    /// Stops a container and keeps it, as the rollback point of a rollout that replaces it:
    /// [`Runtime::restart`] brings it back as it was.
    fn stop<'a>(&'a self, name: &'a str) -> LocalBoxFuture<'a, Result<(), RuntimeError>>;

    /// Starts a stopped container again; its address may have changed.
    fn restart<'a>(&'a self, name: &'a str) -> LocalBoxFuture<'a, Result<Container, RuntimeError>>;

    /// Swaps the running instance `name` to `image` in place (`strategy = "reload"`),
    /// labelled `revision`, and says what runs now; its address stays. One that no longer
    /// runs is started on `image`; one already on it is left alone, so the undo can call this
    /// with the old image whatever happened. Only runtimes whose [`Kind::reloads`] say so.
    fn reload<'a>(
        &'a self,
        name: &'a str,
        image: &'a str,
        revision: u64,
    ) -> LocalBoxFuture<'a, Result<Container, RuntimeError>> {
        let _ = (image, revision);
        Box::pin(async move {
            Err(RuntimeError::new(
                format!("reload {name}"),
                self.address(),
                std::io::Error::other("this runtime cannot swap a running instance in place"),
            ))
        })
    }

    /// Takes the lock `name` atomically, holding `labels` (who, where, since when);
    /// `Err(holder)` when someone holds it. Needs nothing of the service (no image, no unit).
    fn lock<'a>(
        &'a self,
        name: &'a str,
        labels: BTreeMap<String, String>,
    ) -> LocalBoxFuture<'a, Result<Result<(), Holder>, RuntimeError>>;

    /// Who holds the lock `name`, if anyone.
    fn holder<'a>(
        &'a self,
        name: &'a str,
    ) -> LocalBoxFuture<'a, Result<Option<Holder>, RuntimeError>>;

    /// Leaves an operator's command for the running deploy of `app` in `env` (`None`:
    /// clears it). It replaces any command not yet read.
    fn set_control<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
        control: Option<&'a Control>,
    ) -> LocalBoxFuture<'a, Result<(), RuntimeError>>;

    /// The operator's command waiting for the running deploy, if any.
    fn control<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
    ) -> LocalBoxFuture<'a, Result<Option<Control>, RuntimeError>>;

    /// Removes a stale lock by id; false when it is not that lock any more.
    fn remove_lock<'a>(&'a self, id: &'a str) -> LocalBoxFuture<'a, Result<bool, RuntimeError>>;

    /// Records a deploy attempt.
    fn add_record<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
        record: &'a Record,
    ) -> LocalBoxFuture<'a, Result<(), RuntimeError>>;

    /// Every recorded attempt, oldest first.
    fn records<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<Record>, RuntimeError>>;
}

/// A release archive from the manifest that a host-based runtime installs, with where its
/// bytes are here.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Archive {
    /// The version it is.
    pub version: String,
    /// Its target's triple.
    pub target: String,
    /// Its architecture, as `targets` names them (`x64`, `arm64`, ...).
    pub arch: String,
    /// The file here.
    pub path: std::path::PathBuf,
    /// SHA-256, lowercase hex, from the manifest.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
}

/// The release's signed checksums (`SHA256SUMS` and its minisign signature), as bytes.
#[derive(Debug, Clone)]
pub struct SignedSums {
    /// `SHA256SUMS`.
    pub sums: Vec<u8>,
    /// `SHA256SUMS.minisig`.
    pub signature: Vec<u8>,
}

/// What a runtime could not do, with the error underneath.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} on {address}")]
pub struct RuntimeError {
    /// What was being done, e.g. `start demo-production-r3-1`.
    pub action: String,
    /// The runtime's address.
    pub address: String,
    /// Why.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl RuntimeError {
    /// `action` failed on the runtime at `address` because of `source`.
    pub fn new(
        action: impl Into<String>,
        address: &str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> RuntimeError {
        RuntimeError {
            action: action.into(),
            address: address.to_string(),
            source: Box::new(source),
        }
    }
}
