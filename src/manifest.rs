//! `dist/manifest.json`: what a build produced. Publishers and deployers read only this file,
//! so a release can be built on one machine and published from another.

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The manifest format version this shipit writes and reads.
pub const SCHEMA: u32 = 1;
/// The manifest's file name inside the dist folder.
pub const FILE_NAME: &str = "manifest.json";

/// The record of one build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version; always [`SCHEMA`].
    pub schema: u32,
    /// Project name.
    pub project: String,
    /// Version built.
    pub version: String,
    /// Release tag.
    pub tag: String,
    /// Commit built.
    pub commit: String,
    /// Build time, RFC 3339.
    pub date: String,
    /// Every file produced.
    pub artifacts: Vec<Artifact>,
    /// For one part of a split build: the targets it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Vec<String>>,
    /// Where it was published, filled in by `shipit release`.
    #[serde(default, skip_serializing_if = "Published::is_empty")]
    pub published: Published,
    /// Targets whose build failed under `build --keep-going`: the release goes out without
    /// them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

/// Addresses of a published release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The GitHub release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<PublishedRelease>,
    /// Container images, one per repository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub docker: Vec<PublishedImage>,
    /// What every other channel recorded, by channel name, in the channel's own shape: a new
    /// channel records here without a field of its own.
    #[serde(flatten)]
    pub channels: std::collections::BTreeMap<String, serde_json::Value>,
}

impl Published {
    /// Nothing published yet.
    pub fn is_empty(&self) -> bool {
        self.github.is_none() && self.docker.is_empty() && self.channels.is_empty()
    }

    /// Whether `channel` has published all of this version: it left a record, and not one
    /// that says it stopped half-way (`"complete": false`).
    pub fn is_whole(&self, channel: &str) -> bool {
        match channel {
            "github" => self.github.is_some(),
            "docker" => !self.docker.is_empty(),
            other => self
                .channels
                .get(other)
                .is_some_and(|r| r.get("complete") != Some(&serde_json::Value::Bool(false))),
        }
    }

    /// Records what `channel` published (replacing an earlier record of it).
    pub fn record(&mut self, channel: &str, record: serde_json::Value) {
        self.channels.insert(channel.to_string(), record);
    }
}

/// An image pushed to a repository.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedImage {
    /// `registry/repository`.
    pub repository: String,
    /// Digest of the image index.
    pub digest: String,
    /// Tags pointing at it.
    pub tags: Vec<String>,
    /// Manifest digest per platform (`linux/amd64`).
    pub platforms: std::collections::BTreeMap<String, String>,
    /// Blobs this push uploaded.
    pub blobs_uploaded: usize,
    /// Blob bytes this push sent.
    pub bytes_uploaded: u64,
    /// The cosign signature tags (`sha256-<hex>.sig`) of the index and each platform manifest,
    /// when the images are signed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<String>,
    /// The tags (`sha256-<hex>.sbom`) the platform manifests' SBOMs are attached under.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sboms: Vec<String>,
}

/// A release page and its download addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedRelease {
    /// The release page.
    pub url: String,
    /// Download address of each asset, by name.
    pub assets: std::collections::BTreeMap<String, String>,
}

/// One file produced by the build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// File name.
    pub name: String,
    /// Path relative to the dist folder, `/`-separated.
    pub path: String,
    /// What it is.
    pub kind: ArtifactKind,
    /// Target name (alias or triple), for per-target artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Operating system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// Architecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the contents, lowercase hex.
    pub sha256: String,
}

/// Kinds of artifacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    /// An executable.
    Binary,
    /// A tar.gz or zip of binaries and files.
    Archive,
    /// A Linux package (.deb, .rpm).
    Package,
    /// A software bill of materials (CycloneDX or SPDX JSON).
    Sbom,
    /// A checksums file.
    Checksum,
    /// A signature.
    Signature,
    /// Anything else.
    File,
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArtifactKind::Binary => "binary",
            ArtifactKind::Archive => "archive",
            ArtifactKind::Package => "package",
            ArtifactKind::Sbom => "sbom",
            ArtifactKind::Checksum => "checksum",
            ArtifactKind::Signature => "signature",
            ArtifactKind::File => "file",
        })
    }
}

/// Why a manifest could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// File access failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Not a manifest.
    #[error("{} is not a shipit manifest: {source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// Written by a different shipit.
    #[error("{} has manifest schema {found}; this shipit reads schema {SCHEMA}", path.display())]
    Schema {
        /// The file.
        path: PathBuf,
        /// The schema it claims.
        found: u32,
    },
}

impl Manifest {
    /// Reads and checks `dist/manifest.json`.
    pub fn read(dist: &Path) -> Result<Manifest, ManifestError> {
        let path = dist.join(FILE_NAME);
        let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Io {
            path: path.clone(),
            source,
        })?;
        Manifest::from_text(path, &text)
    }

    /// Reads the manifest of a folder shipit did not write (a split build's part): a regular
    /// file, not a link, and not over 64 MiB.
    pub fn read_untrusted(dist: &Path) -> Result<Manifest, ManifestError> {
        const MAX_LEN: u64 = 64 << 20;
        let path = dist.join(FILE_NAME);
        let io_err = |source| ManifestError::Io {
            path: path.clone(),
            source,
        };
        let name = crate::relpath::RelPath::file_name(FILE_NAME)
            .map_err(io::Error::other)
            .map_err(io_err)?;
        let (file, len) = crate::relpath::open_regular(dist, &name).map_err(io_err)?;
        if len > MAX_LEN {
            return Err(io_err(io::Error::other(format!(
                "{len} bytes, over {MAX_LEN}"
            ))));
        }
        let mut text = String::new();
        file.take(MAX_LEN)
            .read_to_string(&mut text)
            .map_err(io_err)?;
        Manifest::from_text(path, &text)
    }

    /// Parses and checks a manifest's text (`path` names it in errors).
    pub fn from_text(path: PathBuf, text: &str) -> Result<Manifest, ManifestError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|source| ManifestError::Invalid {
                path: path.clone(),
                source,
            })?;
        let found = value
            .get("schema")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0) as u32;
        if found != SCHEMA {
            return Err(ManifestError::Schema { path, found });
        }
        serde_json::from_value(value).map_err(|source| ManifestError::Invalid { path, source })
    }

    /// Writes `dist/manifest.json` atomically (temp file + rename), so readers never see half a file.
    pub fn write(&self, dist: &Path) -> Result<PathBuf, ManifestError> {
        let path = dist.join(FILE_NAME);
        let io_err = |source| ManifestError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dist).map_err(io_err)?;
        let tmp = dist.join(format!(".{FILE_NAME}.tmp"));
        // Serializing plain data fails only on a non-string map key, which a manifest has none of.
        let mut text =
            serde_json::to_string_pretty(self).map_err(|e| io_err(std::io::Error::other(e)))?;
        text.push('\n');
        std::fs::write(&tmp, text).map_err(io_err)?;
        std::fs::rename(&tmp, &path).map_err(io_err)?;
        Ok(path)
    }
}

/// Size and SHA-256 of a file, read in chunks (constant memory).
pub fn hash_file(path: &Path) -> io::Result<(u64, String)> {
    hash_reader(std::fs::File::open(path)?)
}

/// Size and SHA-256 (lowercase hex) of everything `file` reads, streamed.
pub fn hash_reader(mut file: impl Read) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            schema: SCHEMA,
            project: "demo".into(),
            version: "1.2.3".into(),
            tag: "v1.2.3".into(),
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            date: "2026-11-23T00:00:00Z".into(),
            published: Default::default(),
            missing: Vec::new(),
            split: None,
            artifacts: vec![Artifact {
                name: "demo".into(),
                path: "linux-x64/demo".into(),
                kind: ArtifactKind::Binary,
                target: Some("linux-x64".into()),
                os: Some("linux".into()),
                arch: Some("x64".into()),
                size: 3,
                sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
            }],
        }
    }

    #[test]
    fn round_trips_through_disk() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = sample();
        manifest.write(dir.path()).unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap(), manifest);
        assert!(!dir.path().join(".manifest.json.tmp").exists());
    }

    #[test]
    fn rejects_other_schemas() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), r#"{"schema": 2}"#).unwrap();
        assert!(matches!(
            Manifest::read(dir.path()),
            Err(ManifestError::Schema { found: 2, .. })
        ));
    }

    #[test]
    fn hashes_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("abc");
        std::fs::write(&file, "abc").unwrap();
        assert_eq!(
            hash_file(&file).unwrap(),
            (3, sample().artifacts[0].sha256.clone())
        );
    }
}
