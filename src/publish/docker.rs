//! `[release.docker]`: container images for the build's Linux binaries (assembled without an
//! engine) or from a Dockerfile (built by a Docker engine), pushed to one or more registries.
//!
//! [`plan`] decides everything (references, tags, platforms, files, config) and validates it
//! before any request; [`publish`] assembles the image into `dist/oci/<name>` and pushes it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use crate::config::{self, DockerConfig, Loaded, Port, Problem, RegistryAuth};
use crate::error::Error;
use crate::facts::Facts;
use crate::manifest::{ArtifactKind, Manifest, PublishedImage};
use crate::oci::auth::{self, Credentials};
use crate::oci::engine::{self, BuildPlatform, DockerfileBuild};
use crate::oci::image::{self, Base, ConfigSpec, LayerFile, PlatformSpec};
use crate::oci::layout::Layout;
use crate::oci::push::{self, BlobOutcome, PushOptions, human_bytes};
use crate::oci::reference::{self, Reference};
use crate::oci::registry::{self, Registry};
use crate::oci::{self, Descriptor, ImageIndex, ImageManifest, Platform};
use crate::path;
use crate::targets::Target;

/// Default blobs uploaded at once.
const DEFAULT_CONCURRENCY: usize = 4;
/// Default limit on total time spent waiting to retry.
const DEFAULT_MAX_RETRY: Duration = Duration::from_secs(600);
/// The user images on `scratch` run as: distroless's `nonroot`.
const NONROOT: &str = "65532:65532";

/// Everything a push will do, decided before any request.
#[derive(Debug, Clone, Serialize)]
pub struct ImagePlan {
    /// Repositories to push to.
    pub repositories: Vec<String>,
    /// Tags, validated.
    pub tags: Vec<String>,
    /// Tags left out, with why.
    pub skipped_tags: Vec<String>,
    /// How the image is made.
    pub source: ImageSource,
    /// The OCI layout it is assembled in.
    pub layout: PathBuf,
    /// Labels and index annotations (`org.opencontainers.image.*`).
    pub labels: BTreeMap<String, String>,
    /// Plain HTTP.
    pub insecure: bool,
    /// Chunk size for uploads, when chunked.
    pub chunk: Option<u64>,
    /// Blobs at once.
    pub concurrency: usize,
    /// For a nightly: how many nightly images to keep in each repository (older ones are
    /// deleted after the push).
    pub prune_keep: Option<usize>,
    #[serde(skip)]
    max_retry: Duration,
    #[serde(skip)]
    auth: Option<RegistryAuth>,
    #[serde(skip)]
    mtime: u64,
    #[serde(skip)]
    created: String,
}

/// How an image is made.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ImageSource {
    /// From the build's binaries, without an engine.
    Binaries {
        /// Base image, `None` for `scratch`.
        base: Option<String>,
        /// One image per platform.
        platforms: Vec<PlatformSpec>,
        /// Runtime settings.
        config: ConfigSpec,
    },
    /// From a Dockerfile, through a Docker engine.
    Dockerfile(DockerfileBuild),
}

/// Plans the images of `[release.docker]`.
pub fn plan(
    loaded: &Loaded,
    facts: &Facts,
    config: &DockerConfig,
    manifest: &Manifest,
    dist: &std::path::Path,
) -> Result<ImagePlan, Error> {
    let at = |key: &str| loaded.span(path!["release", "docker", key]);
    let problem = |message: String, span, help: &str| -> Error {
        Error::Config(loaded.error(vec![Problem::new(message, span).label("here").help(help)]))
    };
    let mut repositories = Vec::new();
    for (i, image) in config.image.0.iter().enumerate() {
        let reference = Reference::parse(image).map_err(|e| {
            let span = loaded
                .span(path!["release", "docker", "image", i])
                .or_else(|| at("image"));
            problem(
                e,
                span,
                "write `registry/owner/name`, such as `ghcr.io/acme/demo`",
            )
        })?;
        if reference.tag.is_some() || reference.digest.is_some() {
            return Err(problem(
                format!("`{image}` names a tag or digest; `image` is the repository only"),
                at("image"),
                "put tags in `tags = [...]`",
            ));
        }
        repositories.push(reference.to_string());
    }
    let vars = facts.template_vars();
    let prerelease = facts.version.contains('-');
    let templates = config.tags.clone().unwrap_or_else(|| {
        // A nightly also moves a `nightly` tag, the way the rolling GitHub release does.
        let moving = if facts.nightly { "nightly" } else { "latest" };
        vec!["{{ version }}".into(), moving.into()]
    });
    let mut tags: Vec<String> = Vec::new();
    let mut skipped_tags = Vec::new();
    for (i, text) in templates.iter().enumerate() {
        let span = loaded.span(path!["release", "docker", "tags", i]);
        let tag = crate::template::render(text, &vars).map_err(|e| {
            problem(
                format!("bad tag template: {}", e.message),
                span.clone(),
                "tags may use `version`, `major`, `minor`, `patch`, `commit`, ...",
            )
        })?;
        reference::check_tag(&tag).map_err(|e| {
            problem(
                format!("tag `{text}` gives {e}"),
                span.clone(),
                "tags are checked before anything is uploaded",
            )
        })?;
        if tag == "latest" && prerelease && !config.latest_on_prerelease {
            skipped_tags.push(format!(
                "latest (skipped: {} is a pre-release; set `latest_on_prerelease = true` to tag it)",
                facts.version
            ));
            continue;
        }
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.is_empty() {
        return Err(problem(
            "no tags to push".into(),
            at("tags"),
            "add a tag such as \"{{ version }}\"",
        ));
    }
    let created = humantime::format_rfc3339_seconds(
        UNIX_EPOCH + Duration::from_secs(facts.source_date_epoch),
    )
    .to_string();
    let mut labels = BTreeMap::from([
        (
            "org.opencontainers.image.title".to_string(),
            facts.project.clone(),
        ),
        (
            "org.opencontainers.image.version".into(),
            facts.version.clone(),
        ),
        (
            "org.opencontainers.image.revision".into(),
            facts.commit.clone(),
        ),
        ("org.opencontainers.image.created".into(), created.clone()),
    ]);
    if let Some(source) = source_url(loaded, facts) {
        labels.insert("org.opencontainers.image.source".into(), source);
    }
    if let Some(description) = &facts.cargo.description {
        labels.insert(
            "org.opencontainers.image.description".into(),
            description.clone(),
        );
    }
    if let Some(license) = &facts.cargo.license {
        labels.insert("org.opencontainers.image.licenses".into(), license.clone());
    }
    for (key, text) in &config.labels {
        let value = crate::template::render(text, &vars).map_err(|e| {
            problem(
                format!("bad label template: {}", e.message),
                loaded.span(path!["release", "docker", "labels", key.as_str()]),
                "labels may use `version`, `commit`, `date`, ...",
            )
        })?;
        labels.insert(key.clone(), value);
    }
    let platform_names = match &config.platforms {
        Some(names) => names.clone(),
        None => {
            let mut names: Vec<String> = manifest
                .artifacts
                .iter()
                .filter(|a| a.kind == ArtifactKind::Binary && a.os.as_deref() == Some("linux"))
                .filter_map(|a| a.target.clone())
                .collect();
            names.sort();
            names.dedup();
            names
        }
    };
    if platform_names.is_empty() {
        return Err(problem(
            "no platforms: the manifest has no Linux binaries".into(),
            at("platforms"),
            "add a Linux target (`linux-x64-musl`) to a cargo stage, or set `platforms`",
        ));
    }
    let source = match &config.dockerfile {
        Some(dockerfile) => {
            let mut platforms = Vec::new();
            for (i, name) in platform_names.iter().enumerate() {
                let span = loaded.span(path!["release", "docker", "platforms", i]);
                let (target, platform) = platform_of(name, facts).map_err(|e| problem(e, span, "platforms are Linux targets (`linux-x64-musl`) or `os/arch` (`linux/amd64`)"))?;
                platforms.push(BuildPlatform {
                    platform,
                    target: target.map(|t| t.name),
                });
            }
            let context = loaded.resolve(
                config
                    .context
                    .as_deref()
                    .unwrap_or_else(|| facts.cargo.root.to_str().unwrap_or(".")),
            );
            if !context.join(dockerfile).is_file() {
                return Err(problem(
                    format!("no Dockerfile at {}", context.join(dockerfile).display()),
                    at("dockerfile"),
                    "`dockerfile` is relative to `context` (default: the Cargo project's folder)",
                ));
            }
            let mut build_args = BTreeMap::new();
            for (key, text) in &config.build_args {
                let value = crate::template::render(text, &vars).map_err(|e| {
                    problem(
                        format!("bad build argument template: {}", e.message),
                        at("build_args"),
                        "build arguments may use `version`, `commit`, ...",
                    )
                })?;
                build_args.insert(key.clone(), value);
            }
            ImageSource::Dockerfile(DockerfileBuild {
                engine: config.engine.clone(),
                context,
                dockerfile: dockerfile.clone(),
                build_args,
                target: config.target.clone(),
                labels: labels.clone(),
                platforms,
                local_tag: format!(
                    "shipit/{}:{}",
                    facts.project.to_ascii_lowercase(),
                    facts.version.replace('+', "-")
                ),
            })
        }
        None => binaries_source(
            loaded,
            facts,
            config,
            manifest,
            dist,
            &platform_names,
            &labels,
            &vars,
        )?,
    };
    let chunk = match &config.chunk_size {
        Some(text) => Some(parse_size(text).map_err(|e| {
            problem(
                format!("chunk_size: {e}"),
                at("chunk_size"),
                "write a size such as \"16MiB\"",
            )
        })?),
        None => None,
    };
    let max_retry = match &config.max_retry_time {
        Some(text) => config::validate::parse_duration(text).map_err(|e| {
            problem(
                format!("max_retry_time: {e}"),
                at("max_retry_time"),
                "write a duration such as \"10m\"",
            )
        })?,
        None => DEFAULT_MAX_RETRY,
    };
    let name = repositories[0]
        .rsplit('/')
        .next()
        .unwrap_or("image")
        .to_string();
    Ok(ImagePlan {
        repositories,
        tags,
        skipped_tags,
        source,
        layout: dist.join("oci").join(name),
        labels,
        insecure: config.insecure,
        chunk,
        concurrency: config.concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1),
        prune_keep: config.keep.filter(|_| facts.nightly),
        max_retry,
        auth: config.auth.clone(),
        mtime: facts.source_date_epoch,
        created,
    })
}

#[allow(clippy::too_many_arguments)]
fn binaries_source(
    loaded: &Loaded,
    facts: &Facts,
    config: &DockerConfig,
    manifest: &Manifest,
    dist: &std::path::Path,
    platform_names: &[String],
    labels: &BTreeMap<String, String>,
    vars: &minijinja::Value,
) -> Result<ImageSource, Error> {
    let problem = |message: String, span, help: &str| -> Error {
        Error::Config(loaded.error(vec![Problem::new(message, span).label("here").help(help)]))
    };
    let at = |key: &str| loaded.span(path!["release", "docker", key]);
    let mut platforms = Vec::new();
    let mut names_in_image: Vec<String> = Vec::new();
    for (i, name) in platform_names.iter().enumerate() {
        let span = loaded
            .span(path!["release", "docker", "platforms", i])
            .or_else(|| at("image"));
        let (target, platform) = platform_of(name, facts).map_err(|e| {
            problem(
                e,
                span.clone(),
                "platforms are the Linux targets of a cargo stage, such as `linux-x64-musl`",
            )
        })?;
        let Some(target) = target else {
            return Err(problem(
                format!(
                    "`{name}` is a platform, not a build target; images without a Dockerfile are made from a target's binaries"
                ),
                span,
                "name the target, such as `linux-arm64-musl`",
            ));
        };
        let mut files = Vec::new();
        for artifact in manifest.artifacts.iter().filter(|a| {
            a.kind == ArtifactKind::Binary
                && a.target.as_deref() == Some(target.name.as_str())
                && config.binaries.as_ref().is_none_or(|b| b.contains(&a.name))
        }) {
            let source = dist.join(&artifact.path);
            // Contents are checked against the manifest as the layer is written.
            match std::fs::metadata(&source) {
                Ok(meta) if meta.len() == artifact.size => {}
                _ => {
                    return Err(Error::Usage(format!(
                        "{} changed or went missing since `shipit build`; build again",
                        source.display()
                    )));
                }
            }
            files.push(LayerFile {
                path: format!("usr/local/bin/{}", artifact.name),
                source,
                mode: 0o755,
                sha256: artifact.sha256.clone(),
            });
            if !names_in_image.contains(&artifact.name) {
                names_in_image.push(artifact.name.clone());
            }
        }
        if files.is_empty() {
            return Err(problem(
                format!("the manifest has no binaries for `{}`", target.name),
                span,
                "add the target to a cargo stage's `targets` and run `shipit build` again",
            ));
        }
        platforms.push(PlatformSpec {
            platform,
            target: target.name.clone(),
            files,
        });
    }
    let entrypoint = match &config.entrypoint {
        Some(entrypoint) => entrypoint.clone(),
        None => {
            let chosen = if names_in_image.len() == 1 {
                names_in_image.first()
            } else {
                names_in_image.iter().find(|n| **n == facts.project)
            };
            match chosen {
                Some(name) => vec![format!("/usr/local/bin/{name}")],
                None => {
                    return Err(problem(
                        format!(
                            "the image holds several binaries ({}); which one runs?",
                            names_in_image.join(", ")
                        ),
                        at("image"),
                        "set `entrypoint = [\"/usr/local/bin/<name>\"]`",
                    ));
                }
            }
        }
    };
    let mut env = Vec::new();
    for (key, text) in &config.env {
        let value = crate::template::render(text, vars).map_err(|e| {
            problem(
                format!("bad env template: {}", e.message),
                at("env"),
                "values may use `version`, `commit`, ...",
            )
        })?;
        env.push(format!("{key}={value}"));
    }
    let mut ports = Vec::new();
    for (i, port) in config.ports.iter().enumerate() {
        let text = match port {
            Port::Number(n) => format!("{n}/tcp"),
            Port::Text(t) if t.contains('/') => t.clone(),
            Port::Text(t) => format!("{t}/tcp"),
        };
        let (number, proto) = text.split_once('/').unwrap_or_default();
        if number.parse::<u16>().map_or(true, |n| n == 0)
            || !["tcp", "udp", "sctp"].contains(&proto)
        {
            return Err(problem(
                format!("`{text}` is not a port"),
                loaded.span(path!["release", "docker", "ports", i]),
                "write a number (8080) or \"8080/udp\"",
            ));
        }
        ports.push(text);
    }
    let base = match config.base.as_deref() {
        None | Some("scratch") => None,
        Some(text) => {
            Reference::parse(text).map_err(|e| {
                problem(
                    e,
                    at("base"),
                    "write a reference such as `registry/owner/base:tag`",
                )
            })?;
            Some(text.to_string())
        }
    };
    let user = config
        .user
        .clone()
        .or_else(|| base.is_none().then(|| NONROOT.to_string()));
    Ok(ImageSource::Binaries {
        base,
        platforms,
        config: ConfigSpec {
            entrypoint,
            cmd: config.cmd.clone(),
            user,
            workdir: config.workdir.clone(),
            env,
            ports,
            labels: labels.clone(),
        },
    })
}

/// A platform name: a build target (`linux-x64-musl`) or `os/arch[/variant]`.
fn platform_of(name: &str, facts: &Facts) -> Result<(Option<Target>, Platform), String> {
    if name.contains('/') {
        return Platform::parse(name).map(|p| (None, p)).ok_or_else(|| {
            format!("`{name}` is not a platform: write `os/arch`, such as `linux/amd64`")
        });
    }
    let target = Target::parse(name, &facts.host).map_err(|e| {
        let mut text = format!("unknown platform `{}`", e.name);
        if let Some(s) = e.suggestion {
            text.push_str(&format!(" (did you mean `{s}`?)"));
        }
        text
    })?;
    let platform = Platform::of_target(&target).ok_or_else(|| {
        format!("`{name}` is not a Linux target; container images run Linux binaries")
    })?;
    Ok((Some(target), platform))
}

/// Where the source lives, for `org.opencontainers.image.source`.
fn source_url(loaded: &Loaded, facts: &Facts) -> Option<String> {
    if let Some(github) = &loaded.file.release.github {
        let web =
            std::env::var("GITHUB_SERVER_URL").unwrap_or_else(|_| "https://github.com".into());
        return Some(format!("{}/{}", web.trim_end_matches('/'), github.repo));
    }
    facts.cargo.homepage.clone()
}

/// Parses `16MiB`, `512KiB`, `1048576`.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown unit `{other}`")),
    };
    match number * factor {
        0 => Err("must be more than zero".into()),
        n => Ok(n),
    }
}

/// Builds the image into its layout and pushes it to every repository.
pub async fn publish(
    plan: &ImagePlan,
    say: &(dyn Fn(String) + Sync),
    detail: &(dyn Fn(String) + Sync),
) -> Result<Vec<PublishedImage>, Error> {
    let failed = |e: String| Error::Failed(e);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let layout = Layout::create(&plan.layout)
        .map_err(|e| failed(format!("{}: {e}", plan.layout.display())))?;
    let inputs = serde_json::json!({
        "source": plan.source, "labels": plan.labels, "created": plan.created, "mtime": plan.mtime,
        "shipit": env!("CARGO_PKG_VERSION"),
    });
    if let Some(index) = assembled(plan, &layout, &inputs) {
        say(format!(
            "image {} (unchanged since it was assembled)",
            oci::short(&index.digest)
        ));
        let base = match &plan.source {
            ImageSource::Binaries {
                base: Some(base), ..
            } => Reference::parse(base).ok(),
            _ => None,
        };
        return push_everywhere(plan, &layout, &index, base, say, detail).await;
    }
    let (manifests, base_repo) = match &plan.source {
        ImageSource::Binaries {
            base,
            platforms,
            config,
        } => {
            let bases = match base {
                Some(base) => Some(pull_base(plan, base, platforms, &layout, say).await?),
                None => None,
            };
            let mut manifests = Vec::new();
            for spec in platforms {
                let base = bases.as_ref().map(|(_, b)| b[&spec.platform].clone());
                let (layout, spec, config, plan) =
                    (layout.clone(), spec.clone(), config.clone(), plan.clone());
                let manifest = tokio::task::spawn_blocking(move || {
                    image::assemble_platform(
                        &layout,
                        &spec,
                        &config,
                        base.as_ref(),
                        &plan.created,
                        plan.mtime,
                        threads,
                    )
                })
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
                .map_err(|e| failed(format!("cannot assemble the image: {e}")))?;
                detail(format!(
                    "assembled {} as {}",
                    manifest
                        .platform
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    oci::short(&manifest.digest)
                ));
                manifests.push(manifest);
            }
            (manifests, bases.map(|(r, _)| r))
        }
        ImageSource::Dockerfile(build) => (
            engine::build(build, &layout, threads, detail)
                .await
                .map_err(failed)?,
            None,
        ),
    };
    let platforms: BTreeMap<String, String> = manifests
        .iter()
        .map(|m| {
            (
                m.platform
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                m.digest.clone(),
            )
        })
        .collect();
    let index = image::assemble_index(&layout, manifests, plan.labels.clone())
        .and_then(|index| {
            layout.set_index(&index, &plan.tags[0])?;
            image::collect_garbage(&layout, &index)?;
            Ok(index)
        })
        .map_err(|e| failed(format!("cannot write {}: {e}", plan.layout.display())))?;
    say(format!(
        "image {} for {}",
        oci::short(&index.digest),
        platforms.keys().cloned().collect::<Vec<_>>().join(", ")
    ));
    if cacheable(plan) {
        let record =
            serde_json::json!({ "inputs": inputs, "files": file_stamps(plan), "index": index });
        // Only a speed-up: a record that cannot be written means assembling again next time.
        let _ = std::fs::write(plan.layout.join(INPUTS_FILE), record.to_string());
    }
    push_everywhere(plan, &layout, &index, base_repo, say, detail).await
}

/// Where the inputs of the last assembly are recorded, beside the layout's `index.json`.
const INPUTS_FILE: &str = "shipit-inputs.json";

/// Images from binaries are a pure function of their inputs, unless the base is a tag that
/// may have moved; Dockerfile builds are cached by the engine.
fn cacheable(plan: &ImagePlan) -> bool {
    match &plan.source {
        ImageSource::Binaries { base, .. } => base.as_deref().is_none_or(|b| b.contains('@')),
        ImageSource::Dockerfile(_) => false,
    }
}

/// The index assembled earlier from the same inputs, when every blob of it is still there.
fn assembled(plan: &ImagePlan, layout: &Layout, inputs: &serde_json::Value) -> Option<Descriptor> {
    if !cacheable(plan) {
        return None;
    }
    let text = std::fs::read_to_string(plan.layout.join(INPUTS_FILE)).ok()?;
    let record: serde_json::Value = serde_json::from_str(&text).ok()?;
    // The files' size and time stand for their contents, which were checked when the layer
    // was written from them.
    if &record["inputs"] != inputs || record["files"] != file_stamps(plan) {
        return None;
    }
    let index: Descriptor = serde_json::from_value(record["index"].clone()).ok()?;
    let complete = layout.has(&index)
        && push::walk(layout, &index)
            .ok()?
            .iter()
            .all(|blob| layout.has(blob));
    complete.then_some(index)
}

/// Size and modification time of every file an image is assembled from.
fn file_stamps(plan: &ImagePlan) -> serde_json::Value {
    let ImageSource::Binaries { platforms, .. } = &plan.source else {
        return serde_json::Value::Null;
    };
    platforms
        .iter()
        .flat_map(|p| &p.files)
        .map(|f| {
            let meta = std::fs::metadata(&f.source).ok();
            let modified = meta
                .as_ref()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_nanos().to_string());
            serde_json::json!([f.source, meta.map(|m| m.len()), modified])
        })
        .collect()
}

/// Pushes the assembled image to every repository of the plan.
async fn push_everywhere(
    plan: &ImagePlan,
    layout: &Layout,
    index: &Descriptor,
    base_repo: Option<Reference>,
    say: &(dyn Fn(String) + Sync),
    detail: &(dyn Fn(String) + Sync),
) -> Result<Vec<PublishedImage>, Error> {
    let failed = |e: String| Error::Failed(e);
    let platforms: BTreeMap<String, String> = push::walk(layout, index)
        .map_err(|e| failed(e.to_string()))?
        .into_iter()
        .filter_map(|d| Some((d.platform?.to_string(), d.digest)))
        .collect();
    let mut published = Vec::new();
    for repository in &plan.repositories {
        let reference = Reference::parse(repository).map_err(failed)?;
        let registry = connect(plan, &reference)?;
        let options = PushOptions {
            concurrency: plan.concurrency,
            chunk: plan.chunk,
            mount_from: base_repo
                .as_ref()
                .filter(|b| b.registry == reference.registry)
                .map(|b| b.repository.clone()),
        };
        let report = push::push(
            &registry,
            &reference.repository,
            layout,
            index,
            &plan.tags,
            &options,
            detail,
        )
        .await
        .map_err(|e| failed(e.to_string()))?;
        let uploaded = report.count(BlobOutcome::Uploaded);
        say(format!(
            "pushed {repository}@{}: {} blobs, {uploaded} uploaded ({}), {} mounted, {} already present; tags {}",
            oci::short(&index.digest),
            report.blobs.len(),
            human_bytes(report.bytes_sent),
            report.count(BlobOutcome::Mounted),
            report.count(BlobOutcome::Present),
            plan.tags.join(", ")
        ));
        if let Some(keep) = plan.prune_keep {
            let deleted =
                prune_nightlies(&registry, &reference.repository, keep, &plan.tags, detail)
                    .await
                    .map_err(|e| failed(format!("pruning old nightly images: {e}")))?;
            if !deleted.is_empty() {
                say(format!(
                    "deleted {} older nightly image{} from {repository} (keeping {keep}): {}",
                    deleted.len(),
                    if deleted.len() == 1 { "" } else { "s" },
                    deleted.join(", ")
                ));
            }
        }
        published.push(PublishedImage {
            repository: repository.clone(),
            digest: index.digest.clone(),
            tags: plan.tags.clone(),
            platforms: platforms.clone(),
            blobs_uploaded: uploaded,
            bytes_uploaded: report.bytes_sent,
        });
    }
    Ok(published)
}

/// Deletes the images of nightly tags older than the `keep` newest (the tags just pushed are
/// always kept). An image another kept tag also points at stays. Returns the tags deleted.
async fn prune_nightlies(
    registry: &Registry,
    repository: &str,
    keep: usize,
    pushed: &[String],
    detail: &(dyn Fn(String) + Sync),
) -> Result<Vec<String>, registry::RegistryError> {
    let tags = registry.tags(repository).await?;
    let mut nightly: Vec<(&str, &String)> = tags
        .iter()
        .filter_map(|t| Some((crate::facts::nightly_date(t)?, t)))
        .collect();
    // Newest first; the ones pushed now lead whatever their date says.
    nightly.sort_by(|a, b| (pushed.contains(b.1), b.0, b.1).cmp(&(pushed.contains(a.1), a.0, a.1)));
    let stale: Vec<&String> = nightly.iter().skip(keep.max(1)).map(|(_, t)| *t).collect();
    if stale.is_empty() {
        return Ok(Vec::new());
    }
    let mut protected = std::collections::BTreeSet::new();
    for tag in tags.iter().filter(|t| !stale.contains(t)) {
        if let Some(digest) = registry.manifest_digest(repository, tag).await? {
            protected.insert(digest);
        }
    }
    let mut deleted = Vec::new();
    for tag in stale {
        let Some(digest) = registry.manifest_digest(repository, tag).await? else {
            continue;
        };
        if protected.contains(&digest) {
            detail(format!("kept {tag}: a newer tag points at the same image"));
            continue;
        }
        registry.delete_manifest(repository, &digest).await?;
        deleted.push(tag.clone());
    }
    Ok(deleted)
}

/// A client for the registry of `reference`, with its credentials.
fn connect(plan: &ImagePlan, reference: &Reference) -> Result<Registry, Error> {
    let pipeline = match &plan.auth {
        Some(a) => Some(pipeline_credentials(a)?),
        None => None,
    };
    let credentials = auth::resolve(&reference.registry, pipeline).map_err(Error::Failed)?;
    Registry::new(
        &reference.registry,
        reference.api_host(),
        credentials,
        &registry::Options {
            insecure: plan.insecure,
            max_retry: plan.max_retry,
        },
    )
    .map_err(|e| Error::Failed(e.to_string()))
}

fn pipeline_credentials(auth: &RegistryAuth) -> Result<Credentials, Error> {
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::Usage(format!("[release.docker] auth: `{name}` is not set")))
    };
    let username = match (&auth.username, &auth.username_env) {
        (Some(name), _) => name.clone(),
        (None, Some(env)) => var(env)?,
        (None, None) => {
            return Err(Error::Usage(
                "[release.docker] auth: set `username` or `username_env`".into(),
            ));
        }
    };
    Ok(Credentials {
        username,
        secret: var(&auth.password_env)?,
        source: auth.password_env.clone(),
    })
}

/// Fetches the base image's manifest and config per platform, its layers into the layout.
async fn pull_base(
    plan: &ImagePlan,
    base: &str,
    platforms: &[PlatformSpec],
    layout: &Layout,
    say: &(dyn Fn(String) + Sync),
) -> Result<(Reference, BTreeMap<Platform, Base>), Error> {
    let failed = |e: String| Error::Failed(format!("base image {base}: {e}"));
    let reference = Reference::parse(base).map_err(failed)?;
    let registry = connect(plan, &reference)?;
    let repo = &reference.repository;
    let (media_type, bytes) = registry
        .manifest(repo, reference.target())
        .await
        .map_err(|e| failed(e.to_string()))?;
    let mut bases = BTreeMap::new();
    for spec in platforms {
        let manifest_bytes = if media_type == oci::INDEX || media_type == oci::DOCKER_LIST {
            let index: ImageIndex =
                serde_json::from_slice(&bytes).map_err(|e| failed(e.to_string()))?;
            let chosen = index
                .manifests
                .iter()
                .find(|m| {
                    m.platform
                        .as_ref()
                        .is_some_and(|p| spec.platform.matches(p))
                })
                .ok_or_else(|| failed(format!("it has no image for {}", spec.platform)))?;
            registry
                .manifest(repo, &chosen.digest)
                .await
                .map_err(|e| failed(e.to_string()))?
                .1
        } else {
            bytes.clone()
        };
        let manifest: ImageManifest =
            serde_json::from_slice(&manifest_bytes).map_err(|e| failed(e.to_string()))?;
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            fetch_blob(&registry, repo, blob, layout)
                .await
                .map_err(failed)?;
        }
        let config: serde_json::Value = serde_json::from_slice(
            &layout
                .read(&manifest.config.digest)
                .map_err(|e| failed(e.to_string()))?,
        )
        .map_err(|e| failed(e.to_string()))?;
        let theirs = Platform {
            architecture: config["architecture"].as_str().unwrap_or_default().into(),
            os: config["os"].as_str().unwrap_or_default().into(),
            variant: config["variant"].as_str().map(String::from),
        };
        if !spec.platform.matches(&theirs) {
            return Err(failed(format!("it is for {theirs}, not {}", spec.platform)));
        }
        bases.insert(spec.platform.clone(), Base { manifest, config });
    }
    say(format!("base image {base}"));
    Ok((reference, bases))
}

async fn fetch_blob(
    registry: &Registry,
    repo: &str,
    blob: &Descriptor,
    layout: &Layout,
) -> Result<(), String> {
    if layout.has(blob) {
        return Ok(());
    }
    let mut writer = layout.writer().map_err(|e| e.to_string())?;
    registry
        .download(repo, &blob.digest, &mut writer)
        .await
        .map_err(|e| e.to_string())?;
    let stored = writer.commit(&blob.media_type).map_err(|e| e.to_string())?;
    if stored.digest != blob.digest {
        let _ = std::fs::remove_file(
            layout
                .blob_path(&stored.digest)
                .map_err(|e| e.to_string())?,
        );
        return Err(format!(
            "blob {} arrived with digest {}",
            blob.digest, stored.digest
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 parsecs").is_err());
    }
}
