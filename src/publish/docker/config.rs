//! `[release.docker]` as the pipeline file writes it, and what `shipit check` checks of it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::bounds::{self, CONCURRENCY, KEEP};
use crate::config::{Duration, Loaded, Problem, Size, StringList};
use crate::path;

/// `[release.docker]`: container images pushed to an OCI registry.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DockerConfig {
    /// Image repository, or several: `"ghcr.io/acme/demo"`, `["ghcr.io/acme/demo", "docker.io/acme/demo"]`.
    pub image: StringList,
    /// Build targets to make images for, one platform each (`linux-x64-musl` is linux/amd64).
    /// Default: every Linux target the build produced.
    pub platforms: Option<Vec<String>>,
    /// Tags (templates). Default: `["{{ version }}", "latest"]`.
    pub tags: Option<Vec<String>>,
    /// Also tag pre-releases `latest`.
    #[serde(default)]
    pub latest_on_prerelease: bool,
    /// Base image: `"scratch"` (default) or a reference pulled from its registry.
    pub base: Option<String>,
    /// Binaries to put in `/usr/local/bin`. Default: all of the target's.
    pub binaries: Option<Vec<String>>,
    /// Entrypoint. Default: the binary named like the project (or the only one).
    pub entrypoint: Option<Vec<String>>,
    /// Default arguments.
    pub cmd: Option<Vec<String>>,
    /// `user[:group]` to run as. Default on `scratch`: `65532:65532` (non-root).
    pub user: Option<String>,
    /// Working directory.
    pub workdir: Option<String>,
    /// Environment of the container (templates).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Exposed ports: `[8080, "9090/udp"]`.
    #[serde(default)]
    pub ports: Vec<Port>,
    /// Labels (templates), over the `org.opencontainers.image.*` ones shipit sets.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Build with this Dockerfile through a Docker engine instead (relative to `context`).
    pub dockerfile: Option<String>,
    /// Build context folder, relative to the pipeline file. Default: the Cargo project's folder.
    pub context: Option<String>,
    /// Build arguments (templates).
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    /// Dockerfile stage to build.
    pub target: Option<String>,
    /// Docker engine address. Default: `DOCKER_HOST`, else the local socket.
    pub engine: Option<String>,
    /// Registry credentials: `{ username = "...", password_env = "REGISTRY_PASSWORD" }`.
    pub auth: Option<RegistryAuth>,
    /// The registries speak plain HTTP (never use this over a network you do not trust).
    #[serde(default)]
    pub insecure: bool,
    /// Upload blobs larger than this in chunks of this size (`"16MiB"`). Default: one request.
    pub chunk_size: Option<Size>,
    /// Blobs uploaded at once. Default: 4.
    pub concurrency: Option<usize>,
    /// Longest total time spent waiting to retry (`0s`: never retry). Default: `10m`.
    pub max_retry_time: Option<Duration>,
    /// Sign each pushed image (the index and every platform manifest) as cosign's keyed
    /// signing does: `{ key = { env = "COSIGN_KEY", password_env = "COSIGN_PASSWORD" } }`, a
    /// key from `shipit keygen --cosign`.
    pub sign: Option<ImageSigning>,
    /// Nightly runs keep this many nightly images (tags `X.Y.Z-nightly.YYYYMMDD.*`) and delete
    /// older ones. Default: keep all.
    pub keep: Option<usize>,
}

/// `sign` of `[release.docker]`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ImageSigning {
    /// The cosign key: `{ file = "cosign.key", password_env = "..." }` or `{ env = "...", password_env = "..." }`.
    pub key: Option<crate::config::KeyConfig>,
    /// Keyless, through Sigstore, as `cosign sign` without a key does: `true` for the
    /// public-good instance, or `{ fulcio = "...", rekor = "...", trusted_root = "..." }`.
    pub sigstore: Option<crate::config::SigstoreKey>,
}

impl ImageSigning {
    /// The Sigstore instance, when signing is keyless.
    pub fn keyless(&self) -> Option<crate::config::SigstoreInstance> {
        crate::config::KeyConfig {
            sigstore: self.sigstore.clone(),
            ..Default::default()
        }
        .keyless()
    }
}

/// A port, as a number (`8080`, TCP) or text (`"53/udp"`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Port {
    /// A TCP port.
    Number(u16),
    /// `port[/tcp|udp|sctp]`.
    Text(String),
}

/// Registry credentials named in the pipeline. The password is always read from the environment.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RegistryAuth {
    /// User name.
    pub username: Option<String>,
    /// Variable holding the user name.
    pub username_env: Option<String>,
    /// Variable holding the password or token.
    pub password_env: String,
}

/// Every problem of the section beyond its types, located.
pub fn check(loaded: &Loaded, docker: &DockerConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    if docker.image.0.is_empty() {
        problems.push(
            Problem::new(
                "`image` lists no repository",
                loaded.span(path!["release", "docker", "image"]),
            )
            .label("empty")
            .help("name at least one, such as `image = \"ghcr.io/acme/demo\"`"),
        );
    }
    check_tags(
        loaded,
        docker.tags.as_deref().unwrap_or_default(),
        &mut problems,
    );
    if let Some(sign) = &docker.sign {
        match (&sign.key, sign.keyless()) {
            (Some(key), None) if key.file.is_some() == key.env.is_some() => problems.push(
                Problem::new(
                    "`sign.key` needs exactly one of `file` and `env`",
                    loaded.span_near(path!["release", "docker", "sign", "key"]),
                )
                .help("a key from `shipit keygen --cosign`: `key = { env = \"COSIGN_KEY\", password_env = \"COSIGN_PASSWORD\" }`"),
            ),
            (Some(_), Some(_)) | (None, None) => problems.push(
                Problem::new(
                    "`sign` needs a `key` or `sigstore = true`, not both",
                    loaded.span_near(path!["release", "docker", "sign"]),
                )
                .help("`sign = { key = { env = \"COSIGN_KEY\", password_env = \"COSIGN_PASSWORD\" } }`, or `sign = { sigstore = true }` to sign keyless"),
            ),
            _ => {}
        }
    }
    for (i, image) in docker.image.0.iter().enumerate() {
        if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            problems.push(
                Problem::new(
                    format!("`{}` is not an image repository", image.escape_debug()),
                    loaded.span_near(path!["release", "docker", "image", i]),
                )
                .label("bad name")
                .help("write `registry/owner/name`, such as `ghcr.io/acme/demo`"),
            );
        }
    }
    problems.extend(bounds::int_problem(
        loaded,
        path!["release", "docker", "concurrency"],
        bounds::as_u64(docker.concurrency),
        CONCURRENCY,
    ));
    problems.extend(bounds::int_problem(
        loaded,
        path!["release", "docker", "keep"],
        bounds::as_u64(docker.keep),
        KEEP,
    ));
    problems
}

/// Tag templates rendered with sample values (a release `1.2.3` on `main`): a tag that breaks the
/// OCI grammar whatever the version (`{{ version }}+build`) is reported by `shipit check`, located,
/// instead of at release time. The real values are checked again before anything is uploaded.
fn check_tags(loaded: &Loaded, tags: &[String], problems: &mut Vec<Problem>) {
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let sample = minijinja::context! {
        project => "project", version => "1.2.3", major => 1, minor => 2, patch => 3,
        prerelease => "", tag => "v1.2.3", commit => "0123456789abcdef0123456789abcdef01234567",
        short_commit => "0123456", date => "2026-01-01", branch => "main", nightly => false,
        snapshot => false, env => env,
    };
    for (i, text) in tags.iter().enumerate() {
        let span = loaded.span_near(path!["release", "docker", "tags", i]);
        let problem = match crate::template::render(text, &sample) {
            Ok(tag) => match crate::oci::reference::check_tag(&tag) {
                Ok(()) => continue,
                Err(why) => Problem::new(format!("tag `{text}` gives {why}"), span)
                    .label("not an image tag")
                    .help("tags are letters, digits, `_`, `.` and `-`, at most 128, not starting with `.` or `-`"),
            },
            Err(e) => Problem::new(format!("bad tag template: {}", e.message), span)
                .label("here")
                .help("tags may use `version`, `major`, `minor`, `patch`, `prerelease`, `commit`, `short_commit`, `branch`, `env.NAME`"),
        };
        problems.push(problem);
    }
}
