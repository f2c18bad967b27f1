//! `[deploy.<env>]` turned into a [`DeployPlan`]: every duration parsed, the image rendered,
//! the rollout's phases laid out and the worst-case detection time stated, before anything
//! is touched.

use std::time::Duration;

use serde::Serialize;

use super::analysis::Thresholds;
use super::health::HealthSpec;
use super::runtime::{Archive, SignedSums};
use super::strategy::{Phase, Rollout};
use crate::config::{Batch, DeployConfig, DeployStrategy, Loaded, Problem, PrometheusCheck};
use crate::error::Error;
use crate::path;

/// Everything a deploy will do.
#[derive(Debug, Clone, Serialize)]
pub struct DeployPlan {
    /// The application (the project name).
    pub app: String,
    /// The environment.
    pub env: String,
    /// The strategy.
    pub strategy: DeployStrategy,
    /// Version deployed.
    pub version: String,
    /// Image run.
    pub image: String,
    /// Instances on each host.
    pub replicas: usize,
    /// Port inside the containers.
    pub port: u16,
    /// The runtime (`docker`, ...), one of `deploy::connect`'s.
    pub runtime: String,
    /// The runtime's own `[deploy.<env>.<runtime>]` table as written (checked by the
    /// runtime when the file was loaded), `null` when there is none.
    pub runtime_options: serde_json::Value,
    /// The folder the pipeline file is in: where relative paths in that table start.
    pub base: std::path::PathBuf,
    /// The release's Linux archives from the manifest, when it is of this version (what a
    /// host-based runtime installs).
    pub archives: Vec<Archive>,
    /// The release's signed checksums, when the manifest has them.
    #[serde(skip)]
    pub signed: Option<SignedSums>,
    /// The hosts, in the order a rollout moves them (for Docker, the engines' addresses).
    pub hosts: Vec<String>,
    /// Hosts a rolling update moves at once.
    pub batch: usize,
    /// The router (`haproxy`, ...), one of `deploy::connect`'s.
    pub router: String,
    /// Its value under `router = { <router> = ... }` as written (checked by the router when
    /// the file was loaded).
    pub router_options: serde_json::Value,
    /// Backend managed.
    pub backend: String,
    /// Blue-green preview: the backend the new color is shown on first, and for how long.
    pub preview: Option<Preview>,
    /// Host address containers are published on.
    pub publish_address: String,
    /// Container environment, `KEY=value`.
    pub env_vars: Vec<String>,
    /// Health checks.
    pub health: HealthSpec,
    /// The rollout's phases.
    pub phases: Vec<Phase>,
    /// Time between analysis samples.
    #[serde(with = "super::durations")]
    pub analysis_interval: Duration,
    /// Analysis limits.
    pub analysis: Thresholds,
    /// Optional Prometheus check.
    pub prometheus: Option<PrometheusCheck>,
    /// The longest a bad version takes traffic before it is rolled back.
    #[serde(with = "super::durations")]
    pub worst_case_detection: Duration,
    /// Longest wait for a retired container's in-flight requests.
    #[serde(with = "super::durations")]
    pub drain_timeout: Duration,
    /// How long to wait for another deploy's lock.
    #[serde(with = "super::durations")]
    pub lock_wait: Duration,
    /// The metrics file written after each deploy.
    pub metrics_file: std::path::PathBuf,
    /// The Pushgateway they are pushed to.
    pub pushgateway: Option<String>,
    /// Commands and a webhook around the rollout.
    pub hooks: Hooks,
    #[serde(skip)]
    health_deadline: Duration,
    #[serde(skip)]
    options: StrategyOptions,
}

/// The options of the plan's strategy, and only its own.
#[derive(Debug, Clone)]
enum StrategyOptions {
    /// Keep the old color warm this long after the switch.
    BlueGreen { scale_down_delay: Duration },
    /// Containers over and under the count while replacing, and each batch's analysis time.
    Rolling {
        max_surge: usize,
        max_unavailable: usize,
        pause: Duration,
    },
    /// Traffic percentages, with a pause after each.
    Canary { steps: Vec<u32>, pause: Duration },
    /// Instances swapped in place at a time, and each batch's analysis time.
    Reload { batch: usize, pause: Duration },
}

/// `hooks`, rendered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Hooks {
    /// Run before any traffic moves.
    pub pre: Vec<crate::template::ShellCommand>,
    /// Run once the new version takes all traffic.
    pub post: Vec<crate::template::ShellCommand>,
    /// Asked until it answers 2xx, before any traffic moves.
    pub gate: Option<String>,
    /// How long the gate and each command may take.
    #[serde(with = "super::durations")]
    pub timeout: Duration,
}

/// A blue-green preview.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// The preview backend.
    pub backend: String,
    /// How long.
    #[serde(with = "super::durations")]
    pub duration: Duration,
}

impl DeployPlan {
    /// A fresh state machine for this plan. With nothing serving (`first`) there is nothing
    /// to compare with or fall back to: start, check health and route, without the strategy's
    /// pauses.
    pub fn rollout(&self, first: bool) -> Rollout {
        let hooks = &self.hooks;
        self.strategy_rollout(first).with_hooks(
            !hooks.pre.is_empty() || hooks.gate.is_some(),
            !hooks.post.is_empty(),
        )
    }

    fn strategy_rollout(&self, first: bool) -> Rollout {
        let instances = self.instances();
        if first {
            return Rollout::blue_green(instances, Duration::ZERO, self.health_deadline, None);
        }
        match &self.options {
            StrategyOptions::BlueGreen { scale_down_delay } => Rollout::blue_green(
                instances,
                *scale_down_delay,
                self.health_deadline,
                self.preview.as_ref().map(|p| p.duration),
            ),
            StrategyOptions::Rolling {
                max_surge,
                max_unavailable,
                pause,
            } => Rollout::rolling(
                instances,
                *max_surge,
                *max_unavailable,
                *pause,
                self.health_deadline,
            ),
            StrategyOptions::Canary { steps, pause } => {
                Rollout::canary(instances, steps, *pause, self.health_deadline)
            }
            StrategyOptions::Reload { batch, pause } => {
                Rollout::reload(instances, *batch, *pause, self.health_deadline)
            }
        }
    }

    /// Instances of a revision across every host.
    pub fn instances(&self) -> usize {
        self.replicas * self.hosts.len().max(1)
    }

    /// The same deploy for another version, as a blue-green switch (what a rollback to a
    /// revision whose containers are gone runs).
    pub fn for_rollback(&self, version: &str, image: &str) -> DeployPlan {
        let mut plan = self.clone();
        plan.version = version.into();
        plan.image = image.into();
        plan.strategy = DeployStrategy::BlueGreen;
        plan.options = StrategyOptions::BlueGreen {
            scale_down_delay: Duration::ZERO,
        };
        plan.preview = None;
        plan.phases = plan.rollout(false).phases().to_vec();
        plan
    }
}

/// Plans a deploy of `version` to `env`.
pub fn plan(
    loaded: &Loaded,
    project: &str,
    env: &str,
    version: &str,
    vars: &minijinja::Value,
    dist: &std::path::Path,
) -> Result<DeployPlan, Error> {
    let Some(config) = loaded.file.deploy.get(env) else {
        let known: Vec<&str> = loaded.file.deploy.keys().map(String::as_str).collect();
        return Err(Error::Usage(if known.is_empty() {
            format!("{} has no [deploy.<env>] section", loaded.path.display())
        } else {
            format!(
                "{} has no [deploy.{env}]; environments: {}",
                loaded.path.display(),
                known.join(", ")
            )
        }));
    };
    let problem = |key: &str, message: String, help: &str| -> Error {
        let span = loaded
            .span(path!["deploy", env, key])
            .or_else(|| loaded.span(path!["deploy", env]));
        Error::Config(loaded.error(vec![Problem::new(message, span).label("here").help(help)]))
    };
    let context = minijinja::context! { version => version, ..vars.clone() };
    let render = |key: &str, text: &str| {
        crate::template::render(text, &context).map_err(|e| {
            problem(
                key,
                format!("bad template: {}", e.message),
                "templates may use `version`, `commit`, ...",
            )
        })
    };
    let runtime = config.runtime.clone().unwrap_or_else(|| "docker".into());
    let names = super::runtime::names();
    if !names.contains(&runtime.as_str()) {
        return Err(problem(
            "runtime",
            format!("unknown runtime `{runtime}`"),
            &format!("runtimes: {}", names.join(", ")),
        ));
    }
    // A host-based runtime runs the release itself: its "image" is the version.
    let image = match (&config.image, runtime.as_str()) {
        (_, "systemd") => version.to_string(),
        (Some(image), _) => {
            let image = render("image", image)?;
            crate::oci::reference::Reference::parse(&image).map_err(|e| {
                problem(
                    "image",
                    e.to_string(),
                    "write `registry/owner/name:{{ version }}`",
                )
            })?;
            image
        }
        (None, _) => {
            return Err(problem(
                "image",
                format!("the {runtime} runtime needs `image`"),
                "write image = \"registry/owner/name:{{ version }}\"",
            ));
        }
    };
    // The file was checked: `router` names one router.
    let (router, router_options) = config
        .router
        .options
        .iter()
        .find(|(k, _)| super::router::ROUTERS.iter().any(|r| r.name == k.as_str()))
        .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
        .ok_or_else(|| {
            problem(
                "router",
                "`router` names no router".into(),
                "add haproxy = \"unix:///run/haproxy/admin.sock\"",
            )
        })?;
    let mut env_vars = Vec::new();
    for (key, text) in &config.env {
        env_vars.push(format!("{key}={}", render("env", text)?));
    }
    let health = health_spec(config);
    let hosts = match (&config.hosts, &config.docker) {
        (Some(_), Some(_)) => {
            return Err(problem(
                "docker",
                "both `hosts` and `docker` name the hosts".into(),
                "keep one of them",
            ));
        }
        (Some(list), None) | (None, Some(list)) => list.0.clone(),
        (None, None) if runtime == "docker" => vec![crate::oci::engine::address(None)],
        (None, None) => {
            return Err(problem(
                "hosts",
                format!("the {runtime} runtime needs `hosts`"),
                "write hosts = [\"ssh://deploy@web-1\", ...]",
            ));
        }
    };
    if hosts.is_empty() {
        return Err(problem(
            "hosts",
            "no hosts".into(),
            "list at least one host",
        ));
    }
    let batch = batch_size(config.batch.as_ref(), hosts.len())
        .map_err(|message| problem("batch", message, "write a count (1) or a share (\"25%\")"))?;
    let replicas = config.replicas.unwrap_or(2);
    if replicas == 0 {
        return Err(problem(
            "replicas",
            "replicas must be at least 1".into(),
            "a service needs a container",
        ));
    }
    let steps = config
        .canary
        .steps
        .clone()
        .unwrap_or_else(|| vec![10, 50, 100]);
    if steps.is_empty()
        || steps.iter().any(|s| *s == 0 || *s > 100)
        || steps.windows(2).any(|w| w[0] >= w[1])
    {
        return Err(problem(
            "canary",
            format!("canary steps {steps:?} must rise from 1 to 100"),
            "write steps such as [10, 50, 100]",
        ));
    }
    let a = &config.analysis;
    let analysis_interval = or(a.interval, 5);
    let analysis = Thresholds {
        max_error_rate: a.max_error_rate.unwrap_or(0.01),
        max_response_ms: a.max_response_ms,
        failure_limit: a.failure_limit.unwrap_or(2).max(1),
        min_requests: a.min_requests.unwrap_or(10),
    };
    // How long a batch takes traffic before the next moves: by default long enough for the
    // analysis to catch a bad version.
    let batch_pause = |pause: Option<crate::config::Duration>| {
        pause.map_or(
            Rollout::worst_case_detection(analysis_interval, analysis.failure_limit)
                + analysis_interval,
            crate::config::Duration::get,
        )
    };
    let options = match config.strategy {
        DeployStrategy::BlueGreen => StrategyOptions::BlueGreen {
            scale_down_delay: or(config.blue_green.scale_down_delay, 30),
        },
        DeployStrategy::Rolling => {
            // Across hosts, a batch is every instance of `batch` hosts, started beside the
            // old ones before they leave.
            let surge = if hosts.len() > 1 || config.batch.is_some() {
                batch * replicas
            } else {
                1
            };
            let (max_surge, max_unavailable) = (
                config.rolling.max_surge.unwrap_or(surge),
                config.rolling.max_unavailable.unwrap_or(0),
            );
            if (max_surge, max_unavailable) == (0, 0) {
                return Err(problem(
                    "rolling",
                    "max_surge and max_unavailable cannot both be 0".into(),
                    "set max_surge = 1",
                ));
            }
            StrategyOptions::Rolling {
                max_surge,
                max_unavailable,
                pause: batch_pause(config.rolling.pause),
            }
        }
        DeployStrategy::Canary => StrategyOptions::Canary {
            steps,
            pause: or(config.canary.pause, 30),
        },
        // Runtimes that cannot reload are refused when the file is checked.
        DeployStrategy::Reload => StrategyOptions::Reload {
            batch: batch * replicas,
            pause: batch_pause(config.reload.pause),
        },
    };
    let mut plan = DeployPlan {
        app: project.to_string(),
        env: env.to_string(),
        strategy: config.strategy,
        version: version.to_string(),
        image,
        replicas,
        port: config.port,
        runtime_options: config
            .runtime_tables
            .get(&runtime)
            .and_then(|t| serde_json::to_value(t).ok())
            .unwrap_or_default(),
        base: loaded
            .path
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default(),
        archives: Vec::new(),
        signed: None,
        runtime,
        hosts,
        batch,
        router,
        router_options,
        backend: config.router.backend.clone(),
        preview: config
            .blue_green
            .preview_backend
            .as_ref()
            .map(|backend| Preview {
                backend: backend.clone(),
                duration: or(config.blue_green.preview, 30),
            }),
        publish_address: config
            .publish_address
            .clone()
            .unwrap_or_else(|| "127.0.0.1".into()),
        env_vars,
        worst_case_detection: Rollout::worst_case_detection(
            analysis_interval,
            analysis.failure_limit,
        ),
        health_deadline: health.deadline,
        health,
        phases: Vec::new(),
        analysis_interval,
        analysis,
        prometheus: a.prometheus.clone(),
        drain_timeout: or(config.drain_timeout, 30),
        lock_wait: or(config.lock_wait, 0),
        metrics_file: match &config.metrics.file {
            Some(file) => loaded.resolve(file),
            None => dist.join("deploy").join(format!("{env}.prom")),
        },
        hooks: hooks(config, &context, &problem)?,
        pushgateway: match &config.metrics.pushgateway {
            Some(url) => Some(
                reqwest::Url::parse(url)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .map(|_| url.trim_end_matches('/').to_string())
                    .ok_or_else(|| {
                        problem(
                            "metrics",
                            format!("`{url}` is not an http(s) URL"),
                            "write pushgateway = \"http://pushgateway:9091\"",
                        )
                    })?,
            ),
            None => None,
        },
        options,
    };
    if plan.runtime == "systemd" {
        (plan.archives, plan.signed) = release_files(dist, version);
    }
    plan.phases = plan.rollout(false).phases().to_vec();
    Ok(plan)
}

/// The Linux tar.gz archives and the signed checksums of the build in `dist`, when it is of
/// `version` (none otherwise: a host may still have that release from an earlier deploy).
fn release_files(dist: &std::path::Path, version: &str) -> (Vec<Archive>, Option<SignedSums>) {
    use crate::manifest::{ArtifactKind, Manifest};
    use crate::relpath::{RelPath, read_regular};
    let Ok(manifest) = Manifest::read(dist).map_err(|_| ()) else {
        return (Vec::new(), None);
    };
    if manifest.version != version {
        return (Vec::new(), None);
    }
    let archives = manifest
        .artifacts
        .iter()
        .filter(|a| a.kind == ArtifactKind::Archive && a.name.ends_with(".tar.gz"))
        .filter_map(|a| {
            let target = crate::targets::Target::parse(a.target.as_deref()?, "").ok()?;
            let path = RelPath::new(&a.path).ok()?.under(dist);
            (target.os == "linux").then(|| Archive {
                version: version.to_string(),
                path,
                target: target.triple,
                arch: target.arch,
                sha256: a.sha256.clone(),
                size: a.size,
            })
        })
        .collect();
    let read = |name: &str| {
        let artifact = manifest.artifacts.iter().find(|a| a.name == name)?;
        read_regular(dist, &RelPath::new(&artifact.path).ok()?, 1 << 20).ok()
    };
    let signed = read("SHA256SUMS")
        .zip(read("SHA256SUMS.minisig"))
        .map(|(sums, signature)| SignedSums { sums, signature });
    (archives, signed)
}

/// The section's hooks, rendered as `run` commands are (values through the environment).
fn hooks(
    config: &DeployConfig,
    context: &minijinja::Value,
    problem: &dyn Fn(&str, String, &str) -> Error,
) -> Result<Hooks, Error> {
    let h = &config.hooks;
    let render = |commands: &crate::config::StringList| {
        commands
            .0
            .iter()
            .map(|text| {
                crate::template::render_shell(text, context).map_err(|e| {
                    problem(
                        "hooks",
                        format!("bad hook command: {}", e.message),
                        e.hint.unwrap_or("hooks may use `version`, `commit`, ..."),
                    )
                })
            })
            .collect::<Result<Vec<_>, Error>>()
    };
    if let Some(gate) = &h.gate
        && !reqwest::Url::parse(gate).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
    {
        return Err(problem(
            "hooks",
            format!("the gate `{gate}` is not an http(s) URL"),
            "write gate = \"https://ci.example/approve\"",
        ));
    }
    Ok(Hooks {
        pre: render(&h.pre)?,
        post: render(&h.post)?,
        gate: h.gate.clone(),
        timeout: or(h.timeout, 600),
    })
}

/// Hosts moved at once: `batch` as a count (at most every host) or a share rounded up.
fn batch_size(batch: Option<&Batch>, hosts: usize) -> Result<usize, String> {
    match batch {
        None => Ok(1),
        Some(Batch::Count(0)) => Err("a batch moves at least one host".into()),
        Some(Batch::Count(n)) => Ok(usize::try_from(*n).unwrap_or(usize::MAX).min(hosts)),
        Some(Batch::Share(text)) => {
            let percent: u64 = text
                .strip_suffix('%')
                .and_then(|p| p.trim().parse().ok())
                .filter(|p| (1..=100).contains(p))
                .ok_or_else(|| format!("`{text}` is not a share from 1% to 100%"))?;
            let hosts = hosts as u64;
            Ok((hosts * percent).div_ceil(100).max(1) as usize)
        }
    }
}

/// A duration option of the section, or its default in seconds.
fn or(value: Option<crate::config::Duration>, default_secs: u64) -> Duration {
    value.map_or(
        Duration::from_secs(default_secs),
        crate::config::Duration::get,
    )
}

fn health_spec(config: &DeployConfig) -> HealthSpec {
    let h = &config.health;
    HealthSpec {
        path: h.path.clone().unwrap_or_else(|| "/healthz".into()),
        status: h.status.unwrap_or(200),
        host: h.host.clone(),
        interval: or(h.interval, 1),
        timeout: or(h.timeout, 2),
        healthy: h.healthy.unwrap_or(2),
        unhealthy: h.unhealthy.unwrap_or(3),
        deadline: or(h.deadline, 60),
    }
}

impl DeployPlan {
    /// What a deploy with this plan does, line by line (`--dry-run`).
    pub fn describe(&self) -> Vec<String> {
        let plan = self;
        let mut lines = Vec::new();
        let mut say = |text: String| lines.push(text);
        say(format!(
            "would deploy {} {} ({}) to {} with {}: {} replicas, port {}",
            plan.app, plan.version, plan.image, plan.env, plan.strategy, plan.replicas, plan.port
        ));
        say(format!(
            "{} on {}, router {} {} backend {}",
            plan.runtime,
            plan.hosts.join(", "),
            plan.router,
            plan.router_options
                .as_str()
                .map_or_else(|| plan.router_options.to_string(), String::from),
            plan.backend
        ));
        for (i, phase) in plan.phases.iter().enumerate() {
            say(format!("  {}. {phase}", i + 1));
        }
        say(format!(
            "health: {} every {} within {}; analysis every {}: a bad version is rolled back within {}",
            plan.health.path,
            humantime::format_duration(plan.health.interval),
            humantime::format_duration(plan.health.deadline),
            humantime::format_duration(plan.analysis_interval),
            humantime::format_duration(plan.worst_case_detection)
        ));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_count_hosts_or_share_them_rounding_up() {
        assert_eq!(batch_size(None, 3), Ok(1));
        assert_eq!(batch_size(Some(&Batch::Count(2)), 3), Ok(2));
        assert_eq!(batch_size(Some(&Batch::Count(9)), 3), Ok(3));
        assert_eq!(batch_size(Some(&Batch::Share("25%".into())), 3), Ok(1));
        assert_eq!(batch_size(Some(&Batch::Share("50%".into())), 3), Ok(2));
        assert_eq!(batch_size(Some(&Batch::Share("100%".into())), 3), Ok(3));
        assert!(batch_size(Some(&Batch::Count(0)), 3).is_err());
        for bad in ["0%", "101%", "25", "x%"] {
            assert!(
                batch_size(Some(&Batch::Share(bad.into())), 3).is_err(),
                "{bad}"
            );
        }
    }
}
