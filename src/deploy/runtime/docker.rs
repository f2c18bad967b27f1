//! The Docker runtime: the engine a service runs on, driven with bollard. Every container, the
//! lock and the revision records carry the `shipit.*` labels, so the live state is always read
//! back from the engine itself, whichever machine deployed last.

use std::collections::{BTreeMap, HashMap};

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::models::{
    ContainerCreateBody, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::TryStreamExt;
use futures_util::future::LocalBoxFuture;

use super::{APP, ENV, IMAGE, KIND, REVISION, VERSION};
use super::{Container, ContainerSpec, Control, Holder, Record, Runtime, RuntimeError};
use crate::oci::engine::EngineError;

/// What lock containers are made from (see `Engine::lock_image`).
const LOCK_IMAGE: &str = "shipit-lock:empty";

/// One engine.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    /// Where it is, for messages.
    pub address: String,
}

impl Engine {
    /// Connects as [`crate::oci::engine::connect`] does (like the docker CLI).
    pub async fn connect(address: Option<&str>) -> Result<Engine, EngineError> {
        let address = crate::oci::engine::address(address);
        let docker = crate::oci::engine::connect(Some(&address)).await?;
        Ok(Engine { docker, address })
    }

    /// Makes the image lock containers are created from, when the engine lacks it: an empty
    /// one, imported from an empty tar, so taking the lock needs no registry and nothing of the
    /// service being deployed.
    async fn lock_image(&self) -> Result<(), RuntimeError> {
        if self.docker.inspect_image(LOCK_IMAGE).await.is_ok() {
            return Ok(());
        }
        let (repo, tag) = LOCK_IMAGE.split_once(':').unwrap_or((LOCK_IMAGE, "latest"));
        let options = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(repo)
            .tag(tag)
            .build();
        // An empty tar archive: two zero blocks.
        let empty = bytes::Bytes::from(vec![0u8; 1024]);
        self.docker
            .create_image(Some(options), Some(bollard::body_full(empty)), None)
            .try_collect::<Vec<_>>()
            .await
            .map_err(self.failed("make the lock image"))?;
        Ok(())
    }

    /// The service container `name`, as listed now.
    async fn listed(&self, name: &str) -> Result<Container, RuntimeError> {
        self.list_by(&[(KIND, "service")], Some(name))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                RuntimeError::new(
                    format!("list {name}"),
                    &self.address,
                    std::io::Error::other("it vanished right after it started"),
                )
            })
    }

    /// Maps an engine error to a runtime error saying what was being done.
    fn failed(
        &self,
        action: impl Into<String>,
    ) -> impl FnOnce(bollard::errors::Error) -> RuntimeError + '_ {
        let action = action.into();
        move |e| RuntimeError::new(action, &self.address, e)
    }

    async fn list_by(
        &self,
        labels: &[(&str, &str)],
        name: Option<&str>,
    ) -> Result<Vec<Container>, RuntimeError> {
        let mut filters: HashMap<String, Vec<String>> = HashMap::from([(
            "label".to_string(),
            labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        )]);
        if let Some(name) = name {
            filters.insert("name".into(), vec![format!("^/{name}$")]);
        }
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(self.failed("list containers"))?;
        let mut containers: Vec<Container> = summaries
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
                let state = c.state.map(|s| s.to_string()).unwrap_or_default();
                let address = c
                    .ports
                    .unwrap_or_default()
                    .into_iter()
                    .find_map(|p| {
                        Some(format!(
                            "{}:{}",
                            p.ip.filter(|ip| !ip.is_empty())?,
                            p.public_port?
                        ))
                    })
                    .filter(|_| state == "running");
                Container {
                    name: c
                        .names
                        .and_then(|n| n.first().cloned())
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_string(),
                    revision: label(REVISION).parse().unwrap_or(0),
                    version: label(VERSION),
                    image: label(IMAGE),
                    state,
                    address,
                    host: self.address.clone(),
                }
            })
            .collect();
        containers.sort_by(|a, b| (a.revision, &a.name).cmp(&(b.revision, &b.name)));
        Ok(containers)
    }
}

impl Runtime for Engine {
    fn address(&self) -> &str {
        &self.address
    }

    /// Pulls `image` unless the engine has it.
    fn ensure_image<'a>(
        &'a self,
        image: &'a str,
        credentials: Option<(String, String)>,
    ) -> LocalBoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            if self.docker.inspect_image(image).await.is_ok() {
                return Ok(());
            }
            let credentials = credentials.map(|(username, password)| DockerCredentials {
                username: Some(username),
                password: Some(password),
                ..Default::default()
            });
            let options = CreateImageOptionsBuilder::default()
                .from_image(image)
                .build();
            self.docker
                .create_image(Some(options), None, credentials)
                .try_collect::<Vec<_>>()
                .await
                .map_err(self.failed(format!("pull {image}")))?;
            Ok(())
        })
    }

    /// Creates and starts a container; returns it with its published address.
    fn preflight(&self) -> LocalBoxFuture<'_, Result<(), RuntimeError>> {
        Box::pin(async move {
            self.docker
                .ping()
                .await
                .map_err(self.failed("reach the engine"))?;
            Ok(())
        })
    }

    fn start<'a>(
        &'a self,
        spec: &'a ContainerSpec,
    ) -> LocalBoxFuture<'a, Result<Container, RuntimeError>> {
        Box::pin(async move {
            let port = format!("{}/tcp", spec.port);
            let bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::from([(
                port.clone(),
                Some(vec![PortBinding {
                    host_ip: Some(spec.publish_address.clone()),
                    host_port: Some(String::new()),
                }]),
            )]);
            let body = ContainerCreateBody {
                image: Some(spec.image.clone()),
                env: Some(spec.env.clone()),
                labels: Some(spec.labels.clone().into_iter().collect()),
                exposed_ports: Some(vec![port]),
                host_config: Some(HostConfig {
                    port_bindings: Some(bindings),
                    restart_policy: Some(RestartPolicy {
                        name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                        maximum_retry_count: None,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let options = CreateContainerOptionsBuilder::default()
                .name(&spec.name)
                .build();
            let action = format!("start {}", spec.name);
            self.docker
                .create_container(Some(options), body)
                .await
                .map_err(self.failed(action.clone()))?;
            self.docker
                .start_container(&spec.name, None)
                .await
                .map_err(self.failed(action))?;
            self.listed(&spec.name).await
        })
    }

    fn stop<'a>(&'a self, name: &'a str) -> LocalBoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            // Drained already: a short grace for SIGTERM (a PID 1 without a handler ignores it).
            let options = StopContainerOptionsBuilder::default().t(2).build();
            // 304: already stopped.
            done_unless_other(self.docker.stop_container(name, Some(options)).await, 304)
                .map_err(self.failed(format!("stop {name}")))
        })
    }

    fn restart<'a>(&'a self, name: &'a str) -> LocalBoxFuture<'a, Result<Container, RuntimeError>> {
        Box::pin(async move {
            // 304: already running.
            done_unless_other(self.docker.start_container(name, None).await, 304)
                .map_err(self.failed(format!("restart {name}")))?;
            self.listed(name).await
        })
    }

    /// Every service container of `app` in `env`, running or not, by revision then name.
    fn containers<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<Container>, RuntimeError>> {
        Box::pin(async move {
            self.list_by(&[(APP, app), (ENV, env), (KIND, "service")], None)
                .await
        })
    }

    /// Stops and removes a container (already gone is fine).
    fn remove<'a>(&'a self, name: &'a str) -> LocalBoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let options = RemoveContainerOptionsBuilder::default().force(true).build();
            // 404: already gone.
            done_unless_other(self.docker.remove_container(name, Some(options)).await, 404)
                .map_err(self.failed(format!("remove {name}")))
        })
    }

    /// Takes the environment's lock: a container named for it (names are unique in an
    /// engine, so creating it is atomic), never started. `Err(holder labels)` when held.
    fn lock<'a>(
        &'a self,
        name: &'a str,
        labels: BTreeMap<String, String>,
    ) -> LocalBoxFuture<'a, Result<Result<(), Holder>, RuntimeError>> {
        Box::pin(async move {
            self.lock_image().await?;
            let body = ContainerCreateBody {
                image: Some(LOCK_IMAGE.into()),
                // Never started: a command only because the engine wants one.
                cmd: Some(vec!["shipit-lock".into()]),
                labels: Some(labels.into_iter().collect()),
                ..Default::default()
            };
            let options = CreateContainerOptionsBuilder::default().name(name).build();
            match self.docker.create_container(Some(options), body).await {
                Ok(_) => Ok(Ok(())),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 409, ..
                }) => {
                    let found = self.docker.inspect_container(name, None).await.ok();
                    let holder = Holder {
                        id: found.as_ref().and_then(|c| c.id.clone()),
                        labels: found
                            .and_then(|c| c.config)
                            .and_then(|c| c.labels)
                            .map(|l| l.into_iter().collect())
                            .unwrap_or_default(),
                    };
                    Ok(Err(holder))
                }
                Err(e) => Err(self.failed("take the deploy lock")(e)),
            }
        })
    }

    /// Removes the lock container `id` only (by id, not name): a lock another run has taken
    /// in the meantime has another id and stays. `Ok(false)` when it was already gone.
    fn remove_lock<'a>(&'a self, id: &'a str) -> LocalBoxFuture<'a, Result<bool, RuntimeError>> {
        Box::pin(async move {
            let options = RemoveContainerOptionsBuilder::default().force(true).build();
            match self.docker.remove_container(id, Some(options)).await {
                Ok(()) => Ok(true),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404 | 409,
                    ..
                }) => Ok(false),
                Err(e) => Err(self.failed("remove the stale lock")(e)),
            }
        })
    }

    fn holder<'a>(
        &'a self,
        name: &'a str,
    ) -> LocalBoxFuture<'a, Result<Option<Holder>, RuntimeError>> {
        Box::pin(async move {
            match self.docker.inspect_container(name, None).await {
                Ok(found) => Ok(Some(Holder {
                    id: found.id.clone(),
                    labels: found
                        .config
                        .and_then(|c| c.labels)
                        .map(|l| l.into_iter().collect())
                        .unwrap_or_default(),
                })),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => Ok(None),
                Err(e) => Err(self.failed("read the deploy lock")(e)),
            }
        })
    }

    /// The command is a labelled volume named for the environment: replaced whole, so a
    /// reader sees one command or none.
    fn set_control<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
        control: Option<&'a Control>,
    ) -> LocalBoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let name = format!("shipit-control-{app}-{env}");
            let removed = self
                .docker
                .remove_volume(
                    &name,
                    None::<bollard::query_parameters::RemoveVolumeOptions>,
                )
                .await;
            done_unless_other(removed, 404).map_err(self.failed("clear the operator's command"))?;
            let Some(control) = control else {
                return Ok(());
            };
            let request = VolumeCreateRequest {
                name: Some(name),
                labels: Some(HashMap::from([
                    (APP.to_string(), app.to_string()),
                    (ENV.into(), env.into()),
                    (KIND.into(), "control".into()),
                    ("shipit.command".into(), control.command.clone()),
                    ("shipit.by".into(), control.by.clone()),
                ])),
                ..Default::default()
            };
            self.docker
                .create_volume(request)
                .await
                .map_err(self.failed("leave the operator's command"))?;
            Ok(())
        })
    }

    fn control<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
    ) -> LocalBoxFuture<'a, Result<Option<Control>, RuntimeError>> {
        Box::pin(async move {
            let name = format!("shipit-control-{app}-{env}");
            match self.docker.inspect_volume(&name).await {
                Ok(volume) => {
                    let label = |k: &str| volume.labels.get(k).cloned().unwrap_or_default();
                    Ok(Some(Control {
                        command: label("shipit.command"),
                        by: label("shipit.by"),
                    }))
                }
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => Ok(None),
                Err(e) => Err(self.failed("read the operator's command")(e)),
            }
        })
    }

    /// Writes a record of a deploy attempt.
    fn add_record<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
        record: &'a Record,
    ) -> LocalBoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let mut labels = HashMap::from([
                (APP.to_string(), app.to_string()),
                (ENV.into(), env.into()),
                (KIND.into(), "record".into()),
                (REVISION.into(), record.revision.to_string()),
                (VERSION.into(), record.version.clone()),
                (IMAGE.into(), record.image.clone()),
                ("shipit.outcome".into(), record.outcome.clone()),
                ("shipit.by".into(), record.by.clone()),
                ("shipit.started".into(), record.started.clone()),
                ("shipit.finished".into(), record.finished.clone()),
                ("shipit.detail".into(), record.detail.clone()),
                (
                    "shipit.steps".into(),
                    serde_json::to_string(&record.steps).unwrap_or_default(),
                ),
            ]);
            if let Some(from) = record.from {
                labels.insert("shipit.from".into(), from.to_string());
            }
            let request = VolumeCreateRequest {
                name: Some(format!("shipit-{app}-{env}-r{}", record.revision)),
                labels: Some(labels),
                ..Default::default()
            };
            self.docker
                .create_volume(request)
                .await
                .map(|_| ())
                .map_err(self.failed("record the deploy"))
        })
    }

    /// Every record of `app` in `env`, oldest first.
    fn records<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<Record>, RuntimeError>> {
        Box::pin(async move {
            let filters: HashMap<String, Vec<String>> = HashMap::from([(
                "label".to_string(),
                vec![
                    format!("{APP}={app}"),
                    format!("{ENV}={env}"),
                    format!("{KIND}=record"),
                ],
            )]);
            let options = ListVolumesOptionsBuilder::default()
                .filters(&filters)
                .build();
            let volumes = self
                .docker
                .list_volumes(Some(options))
                .await
                .map_err(self.failed("read the deploy records"))?
                .volumes
                .unwrap_or_default();
            let mut records: Vec<Record> = volumes
                .into_iter()
                .map(|v| {
                    let label = |k: &str| v.labels.get(k).cloned().unwrap_or_default();
                    Record {
                        revision: label(REVISION).parse().unwrap_or(0),
                        version: label(VERSION),
                        image: label(IMAGE),
                        outcome: label("shipit.outcome"),
                        from: label("shipit.from").parse().ok(),
                        by: label("shipit.by"),
                        started: label("shipit.started"),
                        finished: label("shipit.finished"),
                        detail: label("shipit.detail"),
                        steps: serde_json::from_str(&label("shipit.steps")).unwrap_or_default(),
                    }
                })
                .collect();
            records.sort_by_key(|r| r.revision);
            Ok(records)
        })
    }
}

/// `result`, with the engine's answer `done` (304 already so, 404 already gone) taken as
/// success: the state asked for is the state the engine is in.
fn done_unless_other(
    result: Result<(), bollard::errors::Error>,
    done: u16,
) -> Result<(), bollard::errors::Error> {
    match result {
        Err(bollard::errors::Error::DockerResponseServerError { status_code, .. })
            if status_code == done =>
        {
            Ok(())
        }
        other => other,
    }
}
