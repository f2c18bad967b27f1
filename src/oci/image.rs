//! Assembles images into a layout without a Docker engine, as ko does: one reproducible layer
//! holding the build's binaries on top of `scratch` or a base image, a config, a manifest per
//! platform, and an index over them. Same inputs, same digests.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::layout::{HashingWriter, Layout};
use super::{CONFIG, Descriptor, INDEX, ImageIndex, ImageManifest, LAYER_GZIP, MANIFEST, Platform};
use crate::archive::pgzip::ParallelGzWriter;

/// `PATH` for images on `scratch`, as Docker's default.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Deflate level for layers (gzip's default).
const LEVEL: u32 = 6;

/// The image config's runtime settings, planned from the pipeline.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfigSpec {
    /// Entrypoint; empty keeps the base image's.
    pub entrypoint: Vec<String>,
    /// Default arguments; `None` keeps the base image's (cleared when the entrypoint is set).
    pub cmd: Option<Vec<String>>,
    /// `user[:group]`; `None` keeps the base image's.
    pub user: Option<String>,
    /// Working directory; `None` keeps the base image's.
    pub workdir: Option<String>,
    /// `KEY=value`, replacing the base image's value of the same key.
    pub env: Vec<String>,
    /// Exposed ports: `8080/tcp`.
    pub ports: Vec<String>,
    /// Labels, merged over the base image's.
    pub labels: BTreeMap<String, String>,
}

/// A file to add to the image.
#[derive(Debug, Clone, Serialize)]
pub struct LayerFile {
    /// Path inside the image, without the leading `/`.
    pub path: String,
    /// The file on disk.
    pub source: PathBuf,
    /// Permission bits.
    pub mode: u32,
    /// SHA-256 of the contents, as the manifest records it (part of the assembly's inputs).
    pub sha256: String,
}

/// One platform's image: what to add on top of the base.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformSpec {
    /// The platform.
    pub platform: Platform,
    /// The build target the files come from.
    pub target: String,
    /// Files for the layer.
    pub files: Vec<LayerFile>,
}

/// A base image for one platform, its blobs already in the layout.
#[derive(Debug, Clone)]
pub struct Base {
    /// Its manifest.
    pub manifest: ImageManifest,
    /// Its config.
    pub config: Value,
}

/// Builds one platform's image and returns its manifest's descriptor (with the platform set).
pub fn assemble_platform(
    layout: &Layout,
    spec: &PlatformSpec,
    settings: &ConfigSpec,
    base: Option<&Base>,
    created: &str,
    mtime: u64,
    threads: usize,
) -> io::Result<Descriptor> {
    let (layer, diff_id) = write_layer(layout, &spec.files, mtime, threads)?;
    let config = image_config(
        &spec.platform,
        settings,
        base.map(|b| &b.config),
        &diff_id,
        created,
    );
    let config_bytes = serde_json::to_vec(&config).map_err(io::Error::other)?;
    let config = layout.put(CONFIG, &config_bytes)?;
    let mut layers: Vec<Descriptor> = base
        .map(|b| b.manifest.layers.iter().map(oci_layer).collect())
        .unwrap_or_default();
    layers.push(layer);
    let mut descriptor = put_manifest(layout, config, layers)?;
    descriptor.platform = Some(spec.platform.clone());
    Ok(descriptor)
}

/// Stores an OCI image manifest over `config` and `layers`.
pub fn put_manifest(
    layout: &Layout,
    config: Descriptor,
    layers: Vec<Descriptor>,
) -> io::Result<Descriptor> {
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: MANIFEST.into(),
        config,
        layers,
        annotations: BTreeMap::new(),
    };
    let bytes = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
    layout.put(MANIFEST, &bytes)
}

/// Writes the index over `manifests` and returns its descriptor.
pub fn assemble_index(
    layout: &Layout,
    manifests: Vec<Descriptor>,
    annotations: BTreeMap<String, String>,
) -> io::Result<Descriptor> {
    let index = ImageIndex {
        schema_version: 2,
        media_type: INDEX.into(),
        manifests,
        annotations,
    };
    let bytes = serde_json::to_vec(&index).map_err(io::Error::other)?;
    layout.put(INDEX, &bytes)
}

/// Deletes blobs nothing under `root` refers to, so a layout does not grow with every build.
pub fn collect_garbage(layout: &Layout, root: &Descriptor) -> io::Result<()> {
    let mut keep = BTreeSet::new();
    for blob in super::push::walk(layout, root)? {
        keep.insert(blob.digest);
    }
    keep.insert(root.digest.clone());
    for entry in std::fs::read_dir(layout.root().join("blobs/sha256"))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !keep.contains(&format!("sha256:{name}")) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Docker layer types name the same bytes as OCI's.
fn oci_layer(layer: &Descriptor) -> Descriptor {
    let mut layer = layer.clone();
    if layer.media_type == super::DOCKER_LAYER_GZIP {
        layer.media_type = LAYER_GZIP.into();
    }
    layer
}

/// Writes the layer: a reproducible tar (sorted, parent folders included, fixed time and
/// owner), gzip-compressed. Returns the blob and the uncompressed digest.
fn write_layer(
    layout: &Layout,
    files: &[LayerFile],
    mtime: u64,
    threads: usize,
) -> io::Result<(Descriptor, String)> {
    let mut entries: BTreeMap<String, Option<&LayerFile>> = BTreeMap::new();
    for file in files {
        let path = file.path.trim_start_matches('/');
        let mut parent = String::new();
        for part in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, p)| p)
        {
            parent.push_str(part);
            parent.push('/');
            entries.entry(parent.clone()).or_insert(None);
        }
        entries.insert(path.to_string(), Some(file));
    }
    let gz = ParallelGzWriter::new(layout.writer()?, LEVEL, threads)?;
    let mut tar = tar::Builder::new(HashingWriter::new(gz));
    tar.mode(tar::HeaderMode::Deterministic);
    for (path, file) in &entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("")?;
        header.set_groupname("")?;
        match file {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, path, io::empty())?;
            }
            Some(file) => {
                let source = File::open(&file.source).map_err(|e| {
                    io::Error::new(e.kind(), format!("{}: {e}", file.source.display()))
                })?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(file.mode);
                header.set_size(source.metadata()?.len());
                // Hashed as it is read: what goes into the image is what the build recorded.
                let mut reader = HashingReader::new(source);
                tar.append_data(&mut header, path, &mut reader)?;
                let sha256 = reader.finish();
                if !file.sha256.is_empty() && sha256 != file.sha256 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} changed since `shipit build` (it no longer matches dist/manifest.json); build again",
                            file.source.display()
                        ),
                    ));
                }
            }
        }
    }
    let (gz, diff_id) = tar.into_inner()?.finish();
    let mut blob = gz.finish()?;
    blob.flush()?;
    Ok((blob.commit(LAYER_GZIP)?, diff_id))
}

/// Hashes what is read through it.
struct HashingReader<R> {
    inner: R,
    hash: sha2::Sha256,
}

impl<R: io::Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hash: sha2::Digest::new(),
        }
    }

    /// Lowercase hex SHA-256 of everything read.
    fn finish(self) -> String {
        hex::encode(sha2::Digest::finalize(self.hash))
    }
}

impl<R: io::Read> io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.hash, &buf[..n]);
        Ok(n)
    }
}

/// The image config: the base's (or an empty one) with our layer and settings on top.
fn image_config(
    platform: &Platform,
    settings: &ConfigSpec,
    base: Option<&Value>,
    diff_id: &str,
    created: &str,
) -> Value {
    let mut config = base.cloned().unwrap_or_else(|| json!({}));
    let Some(top) = config.as_object_mut() else {
        return config;
    };
    top.insert("architecture".into(), json!(platform.architecture));
    top.insert("os".into(), json!(platform.os));
    match &platform.variant {
        Some(v) => top.insert("variant".into(), json!(v)),
        None => top.remove("variant"),
    };
    top.insert("created".into(), json!(created));
    let run = top
        .entry("config")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    top.insert(
        "config".into(),
        Value::Object(run_config(run, settings, base.is_none())),
    );
    let mut diff_ids = top
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    diff_ids.push(json!(diff_id));
    top.insert(
        "rootfs".into(),
        json!({ "type": "layers", "diff_ids": diff_ids }),
    );
    let mut history = top
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    history.push(json!({ "created": created, "created_by": "shipit", "comment": "binaries" }));
    top.insert("history".into(), Value::Array(history));
    config
}

fn run_config(
    mut run: Map<String, Value>,
    settings: &ConfigSpec,
    scratch: bool,
) -> Map<String, Value> {
    let mut env: Vec<String> = run
        .get("Env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if scratch && !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(DEFAULT_PATH.into());
    }
    for pair in &settings.env {
        let key = pair.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(pair.clone());
    }
    run.insert("Env".into(), json!(env));
    if !settings.entrypoint.is_empty() {
        run.insert("Entrypoint".into(), json!(settings.entrypoint));
        // As in a Dockerfile: a new entrypoint drops the base image's default arguments.
        run.remove("Cmd");
    }
    if let Some(cmd) = &settings.cmd {
        run.insert("Cmd".into(), json!(cmd));
    }
    if let Some(user) = &settings.user {
        run.insert("User".into(), json!(user));
    }
    if let Some(dir) = &settings.workdir {
        run.insert("WorkingDir".into(), json!(dir));
    }
    if !settings.ports.is_empty() {
        let ports = run.entry("ExposedPorts").or_insert_with(|| json!({}));
        if let Some(ports) = ports.as_object_mut() {
            for port in &settings.ports {
                ports.insert(port.clone(), json!({}));
            }
        }
    }
    if !settings.labels.is_empty() {
        let labels = run.entry("Labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            for (k, v) in &settings.labels {
                labels.insert(k.clone(), json!(v));
            }
        }
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &std::path::Path) -> PlatformSpec {
        std::fs::write(dir.join("demo"), b"#!/bin/sh\necho demo\n").unwrap();
        PlatformSpec {
            platform: Platform::parse("linux/amd64").unwrap(),
            target: "linux-x64-musl".into(),
            files: vec![LayerFile {
                path: "usr/local/bin/demo".into(),
                source: dir.join("demo"),
                mode: 0o755,
                sha256: String::new(),
            }],
        }
    }

    #[test]
    fn same_inputs_same_digests() {
        let src = tempfile::tempdir().unwrap();
        let spec = spec(src.path());
        let settings = ConfigSpec {
            entrypoint: vec!["/usr/local/bin/demo".into()],
            user: Some("65532:65532".into()),
            ports: vec!["8080/tcp".into()],
            ..Default::default()
        };
        let digest = |threads| {
            let dir = tempfile::tempdir().unwrap();
            let layout = Layout::create(dir.path()).unwrap();
            let m = assemble_platform(
                &layout,
                &spec,
                &settings,
                None,
                "2026-01-01T00:00:00Z",
                1,
                threads,
            )
            .unwrap();
            let manifest: ImageManifest =
                serde_json::from_slice(&layout.read(&m.digest).unwrap()).unwrap();
            let config: Value =
                serde_json::from_slice(&layout.read(&manifest.config.digest).unwrap()).unwrap();
            (m.digest, config)
        };
        let (a, config) = digest(1);
        let (b, _) = digest(4);
        assert_eq!(a, b);
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["config"]["Entrypoint"][0], "/usr/local/bin/demo");
        assert_eq!(config["config"]["Env"][0], DEFAULT_PATH);
        assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_file_changed_since_the_build_is_refused() {
        let src = tempfile::tempdir().unwrap();
        let mut spec = spec(src.path());
        spec.files[0].sha256 = "0".repeat(64);
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let err = write_layer(&layout, &spec.files, 7, 1).unwrap_err();
        assert!(
            err.to_string().contains("changed since `shipit build`"),
            "{err}"
        );
    }

    #[test]
    fn layer_holds_parents_and_modes() {
        let src = tempfile::tempdir().unwrap();
        let spec = spec(src.path());
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let (layer, diff_id) = write_layer(&layout, &spec.files, 7, 2).unwrap();
        let file = File::open(layout.blob_path(&layer.digest).unwrap()).unwrap();
        let mut raw = Vec::new();
        io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(file), &mut raw).unwrap();
        assert_eq!(super::super::sha256_digest(&raw), diff_id);
        let mut archive = tar::Archive::new(&raw[..]);
        let listed: Vec<(String, u32)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            listed,
            [
                ("usr/".to_string(), 0o755),
                ("usr/local/".into(), 0o755),
                ("usr/local/bin/".into(), 0o755),
                ("usr/local/bin/demo".into(), 0o755)
            ]
        );
    }

    #[test]
    fn base_settings_are_kept_or_replaced() {
        let base = json!({
            "architecture": "amd64", "os": "linux",
            "config": { "Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "User": "nobody", "Labels": {"x": "1"} },
            "rootfs": { "type": "layers", "diff_ids": ["sha256:base"] },
            "history": [{ "created_by": "base" }]
        });
        let settings = ConfigSpec {
            entrypoint: vec!["/app".into()],
            env: vec!["A=2".into()],
            labels: [("y".to_string(), "2".to_string())].into(),
            ..Default::default()
        };
        let platform = Platform::parse("linux/arm64/v8").unwrap();
        let c = image_config(&platform, &settings, Some(&base), "sha256:ours", "T");
        assert_eq!(c["config"]["Env"], json!(["PATH=/bin", "A=2"]));
        assert_eq!(c["config"].get("Cmd"), None);
        assert_eq!(c["config"]["User"], "nobody");
        assert_eq!(c["config"]["Labels"], json!({"x": "1", "y": "2"}));
        assert_eq!(
            c["rootfs"]["diff_ids"],
            json!(["sha256:base", "sha256:ours"])
        );
        assert_eq!(c["variant"], "v8");
        assert_eq!(c["history"].as_array().unwrap().len(), 2);
    }
}
