//! `[release.docker]`: container images for the build's Linux binaries (assembled without an
//! engine) or from a Dockerfile (built by a Docker engine), pushed to one or more registries.
//!
//! [`plan`] decides everything (references, tags, platforms, files, config) and validates it
//! before any request; [`publish`] assembles the image into `dist/oci/<name>` and pushes it.

mod channel;
pub mod config;
mod error;
mod plan;
mod signing;

pub use channel::Docker;
pub use error::DockerError;
pub use plan::{ImagePlan, ImageSource, plan};

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use crate::manifest::{Manifest, PublishedImage};
use crate::oci::auth::{self, Credentials};
use crate::oci::engine;
use crate::oci::image::{self, Base, PlatformSpec};
use crate::oci::layout::Layout;
use crate::oci::push::{self, BlobOutcome, PushOptions, human_bytes};
use crate::oci::reference::Reference;
use crate::oci::registry::{self, Registry};
use crate::oci::{self, Descriptor, ImageIndex, ImageManifest, Platform};
use crate::publish::recheck::Finding;
use config::RegistryAuth;

/// Builds the image into its layout and pushes it to every repository.
pub async fn publish(
    plan: &ImagePlan,
    say: &(dyn Fn(String) + Sync),
    detail: &(dyn Fn(String) + Sync),
) -> Result<Vec<PublishedImage>, DockerError> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let layout = Layout::create(&plan.layout).map_err(|source| DockerError::Layout {
        path: plan.layout.clone(),
        source,
    })?;
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
                .map_err(|e| DockerError::Internal(e.to_string()))?
                .map_err(DockerError::Assemble)?;
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
                .map_err(DockerError::Engine)?,
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
        .map_err(|source| DockerError::Layout {
            path: plan.layout.clone(),
            source,
        })?;
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
) -> Result<Vec<PublishedImage>, DockerError> {
    let platforms: BTreeMap<String, String> = push::walk(layout, index)
        .map_err(|source| DockerError::Layout {
            path: plan.layout.clone(),
            source,
        })?
        .into_iter()
        .filter_map(|d| Some((d.platform?.to_string(), d.digest)))
        .collect();
    let signing = match &plan.sign {
        Some(signer) => Some(signing::Signing::open(signer).await?),
        None => None,
    };
    let mut published = Vec::new();
    for repository in &plan.repositories {
        let reference = Reference::parse(repository).map_err(DockerError::reference(repository))?;
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
        .map_err(DockerError::registry(format!("pushing {repository}")))?;
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
                    .map_err(DockerError::registry(format!(
                        "pruning old nightly images of {repository}"
                    )))?;
            if !deleted.is_empty() {
                say(format!(
                    "deleted {} older nightly image{} from {repository} (keeping {keep}): {}",
                    deleted.len(),
                    if deleted.len() == 1 { "" } else { "s" },
                    deleted.join(", ")
                ));
            }
        }
        let name = reference.name();
        let repo = oci::signature::Repository {
            registry: &registry,
            path: &reference.repository,
            name: &name,
        };
        let signatures = match &signing {
            Some(signing) => {
                let mut digests = vec![index.digest.clone()];
                digests.extend(platforms.values().cloned());
                signing
                    .sign_all(&repo, &digests, layout, &options, say, detail)
                    .await?
            }
            None => Vec::new(),
        };
        let sboms = attach_sboms(plan, &repo, &platforms, layout, &options, say, detail).await?;
        published.push(PublishedImage {
            sboms,
            repository: repository.clone(),
            digest: index.digest.clone(),
            tags: plan.tags.clone(),
            platforms: platforms.clone(),
            blobs_uploaded: uploaded,
            bytes_uploaded: report.bytes_sent,
            signatures,
        });
    }
    Ok(published)
}

/// Attaches each platform's SBOMs to its manifest (`sha256-<digest>.sbom`); the tags.
#[allow(clippy::too_many_arguments)]
async fn attach_sboms(
    plan: &ImagePlan,
    repo: &oci::signature::Repository<'_>,
    platforms: &BTreeMap<String, String>,
    layout: &Layout,
    options: &PushOptions,
    say: &(dyn Fn(String) + Sync),
    detail: &(dyn Fn(String) + Sync),
) -> Result<Vec<String>, DockerError> {
    let mut tags = Vec::new();
    for (platform, files) in &plan.sboms {
        let Some(digest) = platforms.get(platform) else {
            continue;
        };
        let documents = files
            .iter()
            .map(|(media_type, path)| {
                std::fs::read(path)
                    .map(|bytes| (media_type.clone(), bytes))
                    .map_err(|e| DockerError::Read(path.clone(), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tag = oci::signature::attach_sboms(repo, digest, &documents, layout, options, detail)
            .await
            .map_err(DockerError::registry(format!(
                "attaching the SBOMs of {platform} to {}",
                repo.name
            )))?;
        say(format!(
            "attached {} SBOM(s) to {}@{} ({platform}, {tag})",
            documents.len(),
            repo.name,
            oci::short(digest)
        ));
        tags.push(tag);
    }
    Ok(tags)
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
/// What each registry holds of the images the manifest records: every tag resolves to the
/// index pushed (the digest of the bytes the registry serves, not the header it sends), each
/// platform manifest is there by its digest, and, when the images are signed, each carries a
/// signature by the key that verifies and names it.
pub async fn recheck(plan: &ImagePlan, manifest: &Manifest) -> Result<Vec<Finding>, DockerError> {
    let checking = plan
        .sign
        .as_ref()
        .map(signing::Checking::open)
        .transpose()?;
    let layout = Layout::create(&plan.layout).map_err(|source| DockerError::Layout {
        path: plan.layout.clone(),
        source,
    })?;
    let mut findings = Vec::new();
    for repository in &plan.repositories {
        let reference = Reference::parse(repository).map_err(DockerError::reference(repository))?;
        let registry = connect(plan, &reference)?;
        let path = &reference.repository;
        let Some(image) = manifest
            .published
            .docker
            .iter()
            .find(|i| &i.repository == repository)
        else {
            findings.push(Finding::new(repository.clone(), "a pushed image", None));
            continue;
        };
        let served = |r: &str| {
            let (registry, path, r) = (&registry, path, r.to_owned());
            async move {
                let reading = || DockerError::registry(format!("reading {repository}@{r}"));
                match registry
                    .manifest_digest(path, &r)
                    .await
                    .map_err(reading())?
                {
                    Some(_) => {
                        let (_, bytes) = registry.manifest(path, &r).await.map_err(reading())?;
                        Ok::<_, DockerError>(Some(oci::sha256_digest(&bytes)))
                    }
                    None => Ok(None),
                }
            }
        };
        for tag in &image.tags {
            findings.push(Finding::new(
                format!("{repository}:{tag}"),
                &image.digest,
                served(tag).await?,
            ));
        }
        for (platform, digest) in &image.platforms {
            findings.push(Finding::new(
                format!("{repository}@{} ({platform})", oci::short(digest)),
                digest,
                served(digest).await?,
            ));
        }
        if let Some(checking) = &checking {
            let name = reference.name();
            let repo = oci::signature::Repository {
                registry: &registry,
                path,
                name: &name,
            };
            let mut digests = vec![image.digest.clone()];
            digests.extend(image.platforms.values().cloned());
            for digest in digests {
                let checked = oci::signature::check(&repo, &digest, &checking.verifier(), &layout)
                    .await
                    .map_err(DockerError::registry(format!(
                        "reading the signature of {repository}@{digest}"
                    )))?;
                let expected = format!("signed ({})", crate::cosign::signature_tag(&digest));
                // A keyless signature's detail also names who signed: the check is whether it holds.
                let found = match checked.ok {
                    true => expected.clone(),
                    false => checked.detail,
                };
                findings.push(Finding::new(
                    format!("{repository}@{} signature", oci::short(&digest)),
                    expected,
                    Some(found),
                ));
            }
        }
    }
    Ok(findings)
}

fn connect(plan: &ImagePlan, reference: &Reference) -> Result<Registry, DockerError> {
    let pipeline = match &plan.auth {
        Some(a) => Some(pipeline_credentials(a)?),
        None => None,
    };
    let credentials = auth::resolve(&reference.registry, pipeline).map_err(|source| {
        DockerError::Credentials {
            registry: reference.registry.clone(),
            source,
        }
    })?;
    Registry::new(
        &reference.registry,
        reference.api_host(),
        credentials,
        &registry::Options {
            insecure: plan.insecure,
            max_retry: plan.max_retry,
        },
    )
    .map_err(DockerError::registry(format!(
        "connecting to {}",
        reference.registry
    )))
}

fn pipeline_credentials(auth: &RegistryAuth) -> Result<Credentials, DockerError> {
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| DockerError::Auth(format!("`{name}` is not set")))
    };
    let username = match (&auth.username, &auth.username_env) {
        (Some(name), _) => name.clone(),
        (None, Some(env)) => var(env)?,
        (None, None) => {
            return Err(DockerError::Auth("set `username` or `username_env`".into()));
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
) -> Result<(Reference, BTreeMap<Platform, Base>), DockerError> {
    let document = |source| DockerError::BaseDocument {
        base: base.to_string(),
        source,
    };
    let fetching = || DockerError::registry(format!("fetching the base image {base}"));
    let reference = Reference::parse(base).map_err(DockerError::reference(base))?;
    let registry = connect(plan, &reference)?;
    let repo = &reference.repository;
    let (media_type, bytes) = registry
        .manifest(repo, reference.target())
        .await
        .map_err(fetching())?;
    let mut bases = BTreeMap::new();
    for spec in platforms {
        let manifest_bytes = if media_type == oci::INDEX || media_type == oci::DOCKER_LIST {
            let index: ImageIndex = serde_json::from_slice(&bytes).map_err(document)?;
            let chosen = index
                .manifests
                .iter()
                .find(|m| {
                    m.platform
                        .as_ref()
                        .is_some_and(|p| spec.platform.matches(p))
                })
                .ok_or_else(|| DockerError::Base {
                    base: base.to_string(),
                    why: format!("it has no image for {}", spec.platform),
                })?;
            registry
                .manifest(repo, &chosen.digest)
                .await
                .map_err(fetching())?
                .1
        } else {
            bytes.clone()
        };
        let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes).map_err(document)?;
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            fetch_blob(&registry, repo, blob, layout)
                .await
                .map_err(fetching())?;
        }
        let config: serde_json::Value =
            serde_json::from_slice(&layout.read(&manifest.config.digest).map_err(|source| {
                DockerError::Layout {
                    path: plan.layout.clone(),
                    source,
                }
            })?)
            .map_err(document)?;
        let theirs = Platform {
            architecture: config["architecture"].as_str().unwrap_or_default().into(),
            os: config["os"].as_str().unwrap_or_default().into(),
            variant: config["variant"].as_str().map(String::from),
        };
        if !spec.platform.matches(&theirs) {
            return Err(DockerError::Base {
                base: base.to_string(),
                why: format!("it is for {theirs}, not {}", spec.platform),
            });
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
) -> Result<(), registry::RegistryError> {
    if layout.has(blob) {
        return Ok(());
    }
    let local = |e: std::io::Error| registry::RegistryError::Io(e.to_string());
    let mut writer = layout.writer().map_err(local)?;
    registry
        .download(repo, &blob.digest, blob.size, &mut writer)
        .await?;
    let stored = writer.commit(&blob.media_type).map_err(local)?;
    if stored.digest != blob.digest {
        let _ = std::fs::remove_file(layout.blob_path(&stored.digest).map_err(local)?);
        return Err(registry::RegistryError::DigestMismatch {
            registry: registry.name().to_string(),
            what: format!("blob {}", blob.digest),
            theirs: blob.digest.clone(),
            ours: stored.digest,
        });
    }
    Ok(())
}
