//! `[release.docker]` turned into an [`ImagePlan`]: references, tags, platforms, files and
//! config, all validated (with locations) before any request.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use super::config::{DockerConfig, Port, RegistryAuth};
use crate::config::{self, Loaded, Problem};
use crate::error::Error;
use crate::facts::Facts;
use crate::invalid::Invalid;
use crate::manifest::{ArtifactKind, Manifest};
use crate::oci::Platform;
use crate::oci::engine::{BuildPlatform, DockerfileBuild};
use crate::oci::image::{ConfigSpec, LayerFile, PlatformSpec};
use crate::oci::reference::{self, Reference};
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
    pub(super) max_retry: Duration,
    #[serde(skip)]
    pub(super) auth: Option<RegistryAuth>,
    #[serde(skip)]
    pub(super) mtime: u64,
    #[serde(skip)]
    pub(super) created: String,
    /// What signs each pushed manifest.
    #[serde(skip)]
    pub(super) sign: Option<ImageSigner>,
    /// SBOM files (media type, path) of each platform's target, attached to its manifest.
    pub sboms: BTreeMap<String, Vec<(String, PathBuf)>>,
}

/// What signs the images.
#[derive(Debug, Clone)]
pub(super) enum ImageSigner {
    /// A cosign key.
    Key(crate::tasks::KeySource),
    /// Keyless, through Sigstore; each signature is checked against the trusted root (the
    /// public-good one when unset and the endpoints are the public-good ones).
    Keyless {
        endpoints: crate::sigstore::Endpoints,
        trusted_root: Option<PathBuf>,
    },
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
                e.to_string(),
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
                let (target, platform) = platform_of(name, facts).map_err(|e| problem(e.to_string(), span, "platforms are Linux targets (`linux-x64-musl`) or `os/arch` (`linux/amd64`)"))?;
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
    let chunk = config.chunk_size.map(config::Size::bytes);
    let max_retry = config
        .max_retry_time
        .map_or(DEFAULT_MAX_RETRY, config::Duration::get);
    let Some(first) = repositories.first() else {
        return Err(problem(
            "`image` lists no repository".to_string(),
            at("image"),
            "name at least one, such as `image = \"ghcr.io/acme/demo\"`",
        ));
    };
    let name = first.rsplit('/').next().unwrap_or("image").to_string();
    let sboms = platform_sboms(&source, manifest, dist);
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
        sign: config
            .sign
            .as_ref()
            .and_then(|s| match (s.keyless(), &s.key) {
                (Some(instance), _) => {
                    let defaults = crate::sigstore::Endpoints::default();
                    Some(ImageSigner::Keyless {
                        endpoints: crate::sigstore::Endpoints {
                            fulcio: instance.fulcio.unwrap_or(defaults.fulcio),
                            rekor: instance.rekor.unwrap_or(defaults.rekor),
                        },
                        trusted_root: instance.trusted_root.as_deref().map(|f| loaded.resolve(f)),
                    })
                }
                (None, Some(key)) => Some(ImageSigner::Key(crate::tasks::KeySource::from_config(
                    key, loaded,
                ))),
                (None, None) => None,
            }),
        sboms,
    })
}

/// The build's SBOMs for each platform of the image, by the platform's target.
fn platform_sboms(
    source: &ImageSource,
    manifest: &Manifest,
    dist: &std::path::Path,
) -> BTreeMap<String, Vec<(String, PathBuf)>> {
    let targets: Vec<(String, String)> = match source {
        ImageSource::Binaries { platforms, .. } => platforms
            .iter()
            .map(|p| (p.platform.to_string(), p.target.clone()))
            .collect(),
        ImageSource::Dockerfile(build) => build
            .platforms
            .iter()
            .filter_map(|p| Some((p.platform.to_string(), p.target.clone()?)))
            .collect(),
    };
    let mut sboms = BTreeMap::new();
    for (platform, target) in targets {
        let files: Vec<(String, PathBuf)> = manifest
            .artifacts
            .iter()
            .filter(|a| {
                a.kind == crate::manifest::ArtifactKind::Sbom
                    && a.target.as_deref() == Some(target.as_str())
            })
            .map(|a| {
                let media_type = if a.name.ends_with(".spdx.json") {
                    "application/spdx+json"
                } else {
                    "application/vnd.cyclonedx+json"
                };
                (media_type.to_owned(), dist.join(&a.path))
            })
            .collect();
        if !files.is_empty() {
            sboms.insert(platform, files);
        }
    }
    sboms
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
                e.to_string(),
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
                    e.to_string(),
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
fn platform_of(name: &str, facts: &Facts) -> Result<(Option<Target>, Platform), Invalid> {
    if name.contains('/') {
        return Platform::parse(name).map(|p| (None, p)).ok_or_else(|| {
            Invalid::new(format!(
                "`{name}` is not a platform: write `os/arch`, such as `linux/amd64`"
            ))
        });
    }
    let target = Target::parse(name, &facts.host).map_err(|e| {
        let mut text = format!("unknown platform `{}`", e.name);
        if let Some(s) = e.suggestion {
            text.push_str(&format!(" (did you mean `{s}`?)"));
        }
        Invalid::new(text)
    })?;
    let platform = Platform::of_target(&target).ok_or_else(|| {
        Invalid::new(format!(
            "`{name}` is not a Linux target; container images run Linux binaries"
        ))
    })?;
    Ok((Some(target), platform))
}

/// Where the source lives, for `org.opencontainers.image.source`.
fn source_url(loaded: &Loaded, facts: &Facts) -> Option<String> {
    if let Ok(Some(github)) = crate::publish::github::config::section(loaded) {
        let web = crate::publish::github::server_url();
        return Some(format!("{}/{}", web.trim_end_matches('/'), github.repo));
    }
    facts.cargo.homepage.clone()
}
