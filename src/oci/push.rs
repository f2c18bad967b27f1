//! Pushes an image from a layout: blobs first (skipping those present, mounting from a base
//! image's repository when possible), then the platform manifests and the index by digest,
//! and tags last, so a failed push never leaves a tag pointing at half an image.

use std::collections::BTreeSet;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Serialize;

use super::layout::Layout;
use super::registry::{Registry, RegistryError};
use super::{Descriptor, INDEX, ImageIndex, ImageManifest, short};

/// What happened to one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlobOutcome {
    /// The repository had it.
    Present,
    /// Mounted from another repository of the registry.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Blobs at once.
    pub concurrency: usize,
    /// Blobs larger than this go up in chunks of this size; `None`: one request per blob.
    pub chunk: Option<u64>,
    /// A repository of the same registry to mount missing blobs from (the base image's).
    pub mount_from: Option<String>,
}

/// What a push did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PushReport {
    /// Blobs, with what happened to each.
    pub blobs: Vec<(String, u64, BlobOutcome)>,
    /// Blob bytes sent.
    pub bytes_sent: u64,
    /// Manifests stored (the others were there).
    pub manifests_put: usize,
    /// Tags set or moved (the others already pointed at this image).
    pub tags_put: Vec<String>,
}

impl PushReport {
    /// How many blobs had `outcome`.
    pub fn count(&self, outcome: BlobOutcome) -> usize {
        self.blobs.iter().filter(|b| b.2 == outcome).count()
    }
}

/// Every blob `root` refers to, manifests included, children before parents.
pub fn walk(layout: &Layout, root: &Descriptor) -> std::io::Result<Vec<Descriptor>> {
    let bytes = layout.read(&root.digest)?;
    let bad = |e: serde_json::Error| std::io::Error::other(format!("{}: {e}", root.digest));
    let mut out = Vec::new();
    if root.media_type == INDEX || root.media_type == super::DOCKER_LIST {
        let index: ImageIndex = serde_json::from_slice(&bytes).map_err(bad)?;
        for manifest in &index.manifests {
            out.extend(walk(layout, manifest)?);
            out.push(manifest.clone());
        }
    } else {
        let manifest: ImageManifest = serde_json::from_slice(&bytes).map_err(bad)?;
        out.push(manifest.config.clone());
        out.extend(manifest.layers.iter().cloned());
    }
    Ok(out)
}

/// Pushes the image `root` from `layout` to `repository` and tags it with `tags`.
pub async fn push(
    registry: &Registry,
    repository: &str,
    layout: &Layout,
    root: &Descriptor,
    tags: &[String],
    options: &PushOptions,
    say: &(dyn Fn(String) + Sync),
) -> Result<PushReport, RegistryError> {
    let io = |e: std::io::Error| RegistryError::Io(e.to_string());
    registry.login(repository).await?;
    let everything = walk(layout, root).map_err(io)?;
    let manifests: Vec<&Descriptor> = everything
        .iter()
        .filter(|d| super::MANIFEST_TYPES.contains(&d.media_type.as_str()))
        .collect();
    let mut seen = BTreeSet::new();
    let blobs: Vec<&Descriptor> = everything
        .iter()
        .filter(|d| !super::MANIFEST_TYPES.contains(&d.media_type.as_str()))
        .filter(|d| seen.insert(d.digest.clone()))
        .collect();
    for blob in &blobs {
        if !layout.has(blob) {
            return Err(RegistryError::Io(format!(
                "{} is missing blob {} (build the image again)",
                layout.root().display(),
                blob.digest
            )));
        }
    }
    let before = registry.bytes_sent();
    let outcomes: Vec<(String, u64, BlobOutcome)> = stream::iter(blobs)
        .map(|blob| async move {
            let outcome = registry
                .retrying(|| ensure_blob(registry, repository, layout, blob, options))
                .await?;
            say(format!(
                "blob {} ({}) {}",
                short(&blob.digest),
                human_bytes(blob.size),
                match outcome {
                    BlobOutcome::Present => "already present",
                    BlobOutcome::Mounted => "mounted",
                    BlobOutcome::Uploaded => "uploaded",
                }
            ));
            Ok::<_, RegistryError>((blob.digest.clone(), blob.size, outcome))
        })
        .buffer_unordered(options.concurrency.max(1))
        .try_collect()
        .await?;
    let mut report = PushReport {
        blobs: outcomes,
        bytes_sent: registry.bytes_sent() - before,
        ..Default::default()
    };
    // Children before parents: a registry refuses a manifest whose blobs it lacks.
    for manifest in manifests.into_iter().chain(std::iter::once(root)) {
        if registry
            .manifest_digest(repository, &manifest.digest)
            .await?
            .as_deref()
            == Some(manifest.digest.as_str())
        {
            continue;
        }
        let bytes = Bytes::from(layout.read(&manifest.digest).map_err(io)?);
        registry
            .put_manifest(repository, &manifest.digest, &manifest.media_type, bytes)
            .await?;
        report.manifests_put += 1;
    }
    let root_bytes = Bytes::from(layout.read(&root.digest).map_err(io)?);
    for tag in tags {
        if registry.manifest_digest(repository, tag).await?.as_deref() == Some(root.digest.as_str())
        {
            continue;
        }
        registry
            .put_manifest(repository, tag, &root.media_type, root_bytes.clone())
            .await?;
        report.tags_put.push(tag.clone());
    }
    Ok(report)
}

async fn ensure_blob(
    registry: &Registry,
    repository: &str,
    layout: &Layout,
    blob: &Descriptor,
    options: &PushOptions,
) -> Result<BlobOutcome, RegistryError> {
    if registry
        .blob_size(repository, &blob.digest)
        .await?
        .is_some()
    {
        return Ok(BlobOutcome::Present);
    }
    let session = match &options.mount_from {
        Some(from) if from != repository => {
            match registry.mount(repository, &blob.digest, from).await? {
                None => return Ok(BlobOutcome::Mounted),
                Some(session) => Some(session),
            }
        }
        _ => None,
    };
    let path = layout
        .blob_path(&blob.digest)
        .map_err(|e| RegistryError::Io(e.to_string()))?;
    registry
        .upload(
            repository,
            &blob.digest,
            &path,
            blob.size,
            options.chunk,
            session,
        )
        .await?;
    Ok(BlobOutcome::Uploaded)
}

/// `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
