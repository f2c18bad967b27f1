//! Dockerfile builds through a Docker engine (bollard): one build per platform, each exported
//! (`docker save`) into the image layout with reproducibly gzipped layers, so the push goes
//! through the same registry client as daemonless images.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::layout::{HashingWriter, Layout};
use super::{CONFIG, Descriptor, LAYER_GZIP, Platform};
use crate::archive::pgzip::ParallelGzWriter;

/// Lines of build output kept for an error message.
const TAIL: usize = 15;

/// A Dockerfile build, planned.
#[derive(Debug, Clone, Serialize)]
pub struct DockerfileBuild {
    /// Engine address (`unix:///var/run/docker.sock`, `tcp://...`); default `DOCKER_HOST`.
    pub engine: Option<String>,
    /// The context folder.
    pub context: PathBuf,
    /// The Dockerfile, relative to the context.
    pub dockerfile: String,
    /// `--build-arg`s.
    pub build_args: BTreeMap<String, String>,
    /// `--target` stage.
    pub target: Option<String>,
    /// Labels added to the image.
    pub labels: BTreeMap<String, String>,
    /// Platforms to build, one build each.
    pub platforms: Vec<BuildPlatform>,
    /// Local name for the built images (`shipit/<project>:<version>`), suffixed per platform.
    pub local_tag: String,
}

/// One platform of a Dockerfile build.
#[derive(Debug, Clone, Serialize)]
pub struct BuildPlatform {
    /// The platform.
    pub platform: Platform,
    /// The build target it was named by, passed as the `SHIPIT_TARGET` build argument so a
    /// Dockerfile can `COPY dist/${SHIPIT_TARGET}/...`.
    pub target: Option<String>,
}

impl BuildPlatform {
    /// The build arguments BuildKit sets (`TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`,
    /// `TARGETVARIANT`), which the classic builder does not, plus `SHIPIT_TARGET`.
    pub fn build_args(&self) -> BTreeMap<String, String> {
        let p = &self.platform;
        let mut args = BTreeMap::from([
            ("TARGETPLATFORM".to_string(), p.to_string()),
            ("TARGETOS".into(), p.os.clone()),
            ("TARGETARCH".into(), p.architecture.clone()),
            (
                "TARGETVARIANT".into(),
                p.variant.clone().unwrap_or_default(),
            ),
        ]);
        if let Some(target) = &self.target {
            args.insert("SHIPIT_TARGET".into(), target.clone());
        }
        args
    }
}

/// The engine address the docker CLI would use: the one given, else `DOCKER_HOST`, else the
/// local socket.
pub fn address(engine: Option<&str>) -> String {
    engine
        .map(String::from)
        .or_else(|| std::env::var(crate::env_vars::DOCKER_HOST).ok())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into())
}

/// Why the Docker engine could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No engine answers at the address (or it is not one).
    #[error("the Docker engine at {address} does not answer (is dockerd running?)")]
    Unreachable {
        /// Where it was looked for.
        address: String,
        /// What the connection said.
        #[source]
        source: bollard::errors::Error,
    },
    /// The engine answered a request with an error.
    #[error("the Docker engine could not {action}")]
    Request {
        /// What was asked, e.g. `export acme:1.0`.
        action: String,
        /// The engine's answer.
        #[source]
        source: bollard::errors::Error,
    },
    /// A Dockerfile build failed; the message holds the build's last output.
    #[error("{0}")]
    Build(String),
    /// A local file (the build context, the exported image) could not be written or read.
    #[error("{what}")]
    Io {
        /// Which file, doing what.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// What the engine exported is not an image it could have exported.
    #[error("the exported image is malformed: {0}")]
    Malformed(String),
    /// The build context could not be assembled.
    #[error(transparent)]
    Context(#[from] super::context::ContextError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> EngineError {
    let what = what.into();
    move |source| EngineError::Io { what, source }
}

/// Connects like the docker CLI: `unix://`, `tcp://` (TLS when `DOCKER_TLS_VERIFY` is set),
/// `ssh://user@host`, and agrees on an API version with the engine.
pub async fn connect(engine: Option<&str>) -> Result<Docker, EngineError> {
    let address = address(engine);
    let unreachable = |source| EngineError::Unreachable {
        address: address.clone(),
        source,
    };
    Docker::connect_with_host(&address)
        .map_err(unreachable)?
        .negotiate_version()
        .await
        .map_err(unreachable)
}

/// Builds every platform and stores the images in `layout`; returns their manifests.
pub async fn build(
    spec: &DockerfileBuild,
    layout: &Layout,
    threads: usize,
    say: &(dyn Fn(String) + Sync),
) -> Result<Vec<Descriptor>, EngineError> {
    let docker = connect(spec.engine.as_deref()).await?;
    let context_file =
        tempfile::NamedTempFile::new().map_err(io("cannot create the build context file"))?;
    let files = {
        let out = std::io::BufWriter::new(context_file.as_file());
        super::context::write_context(&spec.context, &spec.dockerfile, out)?
    };
    say(format!(
        "build context {}: {files} files",
        spec.context.display()
    ));
    let mut manifests = Vec::new();
    for build in &spec.platforms {
        let platform = &build.platform;
        let tag = format!(
            "{}-{}",
            spec.local_tag,
            platform.to_string().replace('/', "-")
        );
        build_one(&docker, spec, build, &tag, context_file.path(), say).await?;
        let mut manifest = export(&docker, &tag, layout, threads).await?;
        manifest.platform = Some(platform.clone());
        say(format!(
            "built {platform} as {}",
            super::short(&manifest.digest)
        ));
        manifests.push(manifest);
    }
    Ok(manifests)
}

async fn build_one(
    docker: &Docker,
    spec: &DockerfileBuild,
    build: &BuildPlatform,
    tag: &str,
    context: &std::path::Path,
    say: &(dyn Fn(String) + Sync),
) -> Result<(), EngineError> {
    let platform = &build.platform;
    let mut args: HashMap<String, String> = build.build_args().into_iter().collect();
    args.extend(spec.build_args.clone());
    let labels: HashMap<&str, &str> = spec
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut options = BuildImageOptionsBuilder::default()
        .dockerfile(&spec.dockerfile)
        .t(tag)
        .rm(true)
        .forcerm(true)
        // The classic builder's cache ignores the platform: a step cached for amd64 would be
        // reused for arm64. Several platforms are built without it.
        .nocache(spec.platforms.len() > 1)
        .buildargs(&args)
        .labels(&labels)
        .platform(&platform.to_string());
    if let Some(target) = &spec.target {
        options = options.target(target);
    }
    let file = tokio::fs::File::open(context)
        .await
        .map_err(io("cannot read the build context file"))?;
    let body = bollard::body_try_stream(tokio_util::io::ReaderStream::new(file));
    let mut stream = docker.build_image(options.build(), None, Some(body));
    let mut tail: Vec<String> = Vec::new();
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| failure(platform, &e.to_string(), &tail))?;
        if let Some(text) = &info.stream {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                say(format!("[{platform}] {line}"));
                tail.push(line.to_string());
                if tail.len() > TAIL {
                    tail.remove(0);
                }
            }
        }
        if let Some(detail) = info.error_detail {
            let message = detail.message.unwrap_or_default();
            return Err(failure(platform, &message, &tail));
        }
    }
    Ok(())
}

fn failure(platform: &Platform, message: &str, tail: &[String]) -> EngineError {
    let mut text = format!(
        "the Dockerfile build for {platform} failed: {}",
        message.trim()
    );
    if message.contains("does not match the specified platform") {
        text.push_str(
            "\n  hint: the engine's classic builder loses the platform on `FROM scratch` when a \
             step without files (ARG, ENV, LABEL) comes before the first COPY; move those steps \
             after it, or build with a BuildKit engine",
        );
    }
    if !tail.is_empty() {
        text.push_str("\n  last output:");
        for line in tail {
            text.push_str("\n    ");
            text.push_str(line);
        }
    }
    EngineError::Build(text)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SavedImage {
    config: String,
    layers: Vec<String>,
}

/// Exports `tag` (`docker save`) and stores it in the layout: its config as is, its layers
/// gzipped, under an OCI manifest.
async fn export(
    docker: &Docker,
    tag: &str,
    layout: &Layout,
    threads: usize,
) -> Result<Descriptor, EngineError> {
    let saved = tempfile::tempdir().map_err(io("cannot create a folder for the exported image"))?;
    let archive = saved.path().join("image.tar");
    {
        let mut out =
            std::fs::File::create(&archive).map_err(io("cannot write the exported image"))?;
        let mut stream = docker.export_image(tag);
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|source| EngineError::Request {
                action: format!("export {tag}"),
                source,
            })?
        {
            out.write_all(&chunk)
                .map_err(io("cannot write the exported image"))?;
        }
    }
    let layout = layout.clone();
    let dir = saved.path().to_path_buf();
    tokio::task::spawn_blocking(move || store_saved(&archive, &dir, &layout, threads))
        .await
        .map_err(|e| io("storing the exported image stopped")(std::io::Error::other(e)))?
}

fn store_saved(
    archive: &std::path::Path,
    dir: &std::path::Path,
    layout: &Layout,
    threads: usize,
) -> Result<Descriptor, EngineError> {
    let unpacked = dir.join("image");
    tar::Archive::new(std::fs::File::open(archive).map_err(io("cannot read the exported image"))?)
        .unpack(&unpacked)
        .map_err(io("cannot unpack the exported image"))?;
    let read = |rel: &str| {
        std::fs::read(unpacked.join(rel)).map_err(io(format!("exported image: cannot read {rel}")))
    };
    let saved: Vec<SavedImage> = serde_json::from_slice(&read("manifest.json")?)
        .map_err(|e| EngineError::Malformed(format!("manifest.json: {e}")))?;
    let saved = saved
        .into_iter()
        .next()
        .ok_or_else(|| EngineError::Malformed("no manifest".into()))?;
    let config_bytes = read(&saved.config)?;
    let config_json: Value = serde_json::from_slice(&config_bytes)
        .map_err(|e| EngineError::Malformed(format!("config: {e}")))?;
    let diff_ids: Vec<&str> = config_json["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let store = io("cannot store the exported image's layers");
    let mut layers = Vec::new();
    for (i, rel) in saved.layers.iter().enumerate() {
        let mut source = std::fs::File::open(unpacked.join(rel))
            .map_err(io(format!("exported image: cannot read {rel}")))?;
        let gz = ParallelGzWriter::new(
            layout.writer().map_err(io("cannot store a layer"))?,
            6,
            threads,
        )
        .map_err(io("cannot store a layer"))?;
        let mut hashing = HashingWriter::new(gz);
        std::io::copy(&mut source, &mut hashing).map_err(io("cannot store a layer"))?;
        let (gz, diff_id) = hashing.finish();
        if diff_ids.get(i).is_some_and(|d| *d != diff_id) {
            return Err(EngineError::Malformed(format!(
                "layer {rel} does not match the image config"
            )));
        }
        let blob = gz.finish().map_err(io("cannot store a layer"))?;
        layers.push(
            blob.commit(LAYER_GZIP)
                .map_err(io("cannot store a layer"))?,
        );
    }
    let config = layout
        .put(CONFIG, &config_bytes)
        .map_err(io("cannot store the image config"))?;
    super::image::put_manifest(layout, config, layers).map_err(store)
}
