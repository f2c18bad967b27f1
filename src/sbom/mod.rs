//! Software bills of materials: what is linked into one target's binaries, as CycloneDX 1.6
//! and SPDX 2.3 JSON. The graph is cargo's own resolve for that platform and those features
//! (`cargo metadata --filter-platform`), walked from the packages built along normal
//! dependency edges only, so dev- and build-only dependencies and other platforms' crates are
//! left out: the same set `cargo tree -e normal --target <triple>` prints. Checksums come from
//! Cargo.lock, licences from the packages, and the binaries are listed with their digests.
//! The documents carry no clock time but SOURCE_DATE_EPOCH, and their ids are derived from
//! their content, so a rebuild writes the same bytes.

mod compiled;
mod cyclonedx;
mod spdx_doc;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::file_error::FileError;

/// An SBOM format.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// CycloneDX 1.6 JSON (`.cdx.json`).
    Cyclonedx,
    /// SPDX 2.3 JSON (`.spdx.json`).
    Spdx,
}

impl Format {
    /// The file name ending.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Cyclonedx => ".cdx.json",
            Format::Spdx => ".spdx.json",
        }
    }
}

/// One target's SBOMs to write.
#[derive(Debug, Clone, Serialize)]
pub struct SbomSpec {
    /// The project (the SBOM's subject).
    pub project: String,
    /// Its version.
    pub version: String,
    /// The target's name (`linux-x64-musl`).
    pub target: String,
    /// Its Rust triple.
    pub triple: String,
    /// The Cargo manifest.
    pub manifest: PathBuf,
    /// Workspace packages built (empty: the root package).
    pub packages: Vec<String>,
    /// Features enabled.
    pub features: Vec<String>,
    /// Built without the default features.
    pub no_default_features: bool,
    /// The binaries: file name and path.
    pub binaries: Vec<(String, PathBuf)>,
    /// The documents: format and path.
    pub outputs: Vec<(Format, PathBuf)>,
    /// The documents' time (Unix seconds).
    pub timestamp: u64,
}

/// Why no SBOM was written.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// cargo could not resolve the graph.
    #[error("cargo metadata for {triple} failed: {message}")]
    Metadata {
        /// The target.
        triple: String,
        /// What cargo said.
        message: String,
    },
    /// A package to start from is not in the workspace.
    #[error("the workspace has no package `{0}`")]
    NoPackage(String),
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// Cargo.lock does not parse.
    #[error("cannot read {}: {message}", path.display())]
    Lockfile {
        /// The lock file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// A package in the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// Crate name.
    pub name: String,
    /// Version.
    pub version: String,
    /// `pkg:cargo/<name>@<version>`.
    pub purl: String,
    /// SPDX licence expression, when the package declares one that parses.
    pub license: Option<String>,
    /// SHA-256 from Cargo.lock (registry packages).
    pub sha256: Option<String>,
    /// Where it comes from: `registry+...`, `git+...`, or `None` for a path.
    pub source: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// The components it depends on (normal edges), by purl.
    pub depends_on: Vec<String>,
}

/// A binary of the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryFile {
    /// File name.
    pub name: String,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// SHA-1, lowercase hex (SPDX requires it of files).
    pub sha1: String,
}

/// Everything a document says.
#[derive(Debug, Clone)]
pub struct Bom {
    /// The subject: the project.
    pub subject: Component,
    /// Everything linked in besides the subject, sorted by purl.
    pub components: Vec<Component>,
    /// The target's binaries.
    pub binaries: Vec<BinaryFile>,
    /// The target's name and triple.
    pub target: (String, String),
    /// RFC 3339 time.
    pub created: String,
}

impl Bom {
    /// A name unique to these contents, for document ids: the SHA-256 of every purl, digest
    /// and binary it lists.
    fn content_id(&self) -> String {
        let mut hasher = Sha256::new();
        for c in std::iter::once(&self.subject).chain(&self.components) {
            hasher.update(c.purl.as_bytes());
            hasher.update(c.sha256.as_deref().unwrap_or("").as_bytes());
        }
        for b in &self.binaries {
            hasher.update(b.name.as_bytes());
            hasher.update(b.sha256.as_bytes());
        }
        hasher.update(self.target.1.as_bytes());
        hex::encode(hasher.finalize())
    }
}

/// `pkg:cargo/<name>@<version>`.
pub fn purl(name: &str, version: &str) -> String {
    format!("pkg:cargo/{name}@{version}")
}

/// A Cargo `license` field as an SPDX expression (`MIT/Apache-2.0` becomes
/// `MIT OR Apache-2.0`); `None` when it does not parse.
pub fn license_expression(text: &str) -> Option<String> {
    let canonical = spdx::Expression::canonicalize(text).ok()?;
    let text = canonical.unwrap_or_else(|| text.to_owned());
    spdx::Expression::parse(&text).ok().map(|_| text)
}

/// Resolves the graph and writes the documents; returns how many components they list.
pub fn write(spec: &SbomSpec) -> Result<usize, SbomError> {
    let bom = resolve(spec)?;
    for (format, path) in &spec.outputs {
        let text = match format {
            Format::Cyclonedx => cyclonedx::render(&bom),
            Format::Spdx => spdx_doc::render(&bom, &spec.project),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(FileError::on("create", parent))?;
        }
        std::fs::write(path, text).map_err(FileError::on("write", path))?;
    }
    Ok(bom.components.len())
}

/// The graph of `spec`'s target, from cargo.
pub fn resolve(spec: &SbomSpec) -> Result<Bom, SbomError> {
    let failed = |message: String| SbomError::Metadata {
        triple: spec.triple.clone(),
        message,
    };
    let mut command = cargo_metadata::MetadataCommand::new();
    command.manifest_path(&spec.manifest);
    if spec.no_default_features {
        command.features(cargo_metadata::CargoOpt::NoDefaultFeatures);
    }
    if !spec.features.is_empty() {
        command.features(cargo_metadata::CargoOpt::SomeFeatures(
            spec.features.clone(),
        ));
    }
    // The universal macOS build links both architectures' graphs; they are the same crates.
    let platform = spec
        .triple
        .replace(crate::targets::UNIVERSAL_DARWIN, "aarch64-apple-darwin");
    command.other_options(vec![
        "--filter-platform".to_owned(),
        platform.clone(),
        "--locked".to_owned(),
    ]);
    let metadata = command
        .exec()
        .map_err(|e| failed(e.to_string().lines().next().unwrap_or("").to_owned()))?;
    let resolve = metadata
        .resolve
        .as_ref()
        .ok_or_else(|| failed("no resolve graph in cargo's answer".into()))?;
    let packages: BTreeMap<&cargo_metadata::PackageId, &cargo_metadata::Package> =
        metadata.packages.iter().map(|p| (&p.id, p)).collect();
    let nodes: BTreeMap<&cargo_metadata::PackageId, &cargo_metadata::Node> =
        resolve.nodes.iter().map(|n| (&n.id, n)).collect();

    let roots: Vec<&cargo_metadata::Package> = if spec.packages.is_empty() {
        vec![
            metadata
                .root_package()
                .or_else(|| metadata.workspace_packages().into_iter().next())
                .ok_or_else(|| SbomError::NoPackage(spec.project.clone()))?,
        ]
    } else {
        spec.packages
            .iter()
            .map(|name| {
                metadata
                    .workspace_packages()
                    .into_iter()
                    .find(|p| p.name.as_str() == name)
                    .ok_or_else(|| SbomError::NoPackage(name.clone()))
            })
            .collect::<Result<_, _>>()?
    };

    // Normal edges only, breadth first from the packages built.
    let normal_deps = |id: &cargo_metadata::PackageId| -> Vec<&cargo_metadata::PackageId> {
        nodes
            .get(id)
            .map(|node| {
                node.deps
                    .iter()
                    .filter(|d| {
                        d.dep_kinds
                            .iter()
                            .any(|k| k.kind == cargo_metadata::DependencyKind::Normal)
                    })
                    .map(|d| &d.pkg)
                    .collect()
            })
            .unwrap_or_default()
    };
    // cargo metadata's resolve has every platform's features on; cargo tree says which of
    // its packages this platform really compiles.
    let root_names: Vec<&str> = roots.iter().map(|p| p.name.as_str()).collect();
    let built = compiled::compiled(spec, &platform, &root_names)?;
    let is_built = |id: &cargo_metadata::PackageId| {
        packages
            .get(id)
            .is_some_and(|p| built.contains(&(p.name.to_string(), p.version.to_string())))
    };
    let normal_deps = |id: &cargo_metadata::PackageId| -> Vec<&cargo_metadata::PackageId> {
        normal_deps(id)
            .into_iter()
            .filter(|d| is_built(d))
            .collect()
    };
    let mut seen: BTreeSet<&cargo_metadata::PackageId> = BTreeSet::new();
    let mut queue: VecDeque<&cargo_metadata::PackageId> = roots.iter().map(|p| &p.id).collect();
    while let Some(id) = queue.pop_front() {
        if seen.insert(id) {
            queue.extend(normal_deps(id));
        }
    }

    let checksums = lock_checksums(&metadata.workspace_root.clone().into_std_path_buf())?;
    let component = |package: &cargo_metadata::Package| {
        let mut depends_on: Vec<String> = normal_deps(&package.id)
            .into_iter()
            .filter_map(|id| packages.get(id))
            .map(|p| purl(&p.name, &p.version.to_string()))
            .collect();
        depends_on.sort();
        depends_on.dedup();
        let source = package.source.as_ref().map(|s| s.repr.clone());
        let version = package.version.to_string();
        Component {
            purl: purl(&package.name, &version),
            license: package.license.as_deref().and_then(license_expression),
            sha256: source.as_ref().and_then(|s| {
                checksums
                    .get(&(package.name.to_string(), version.clone(), s.clone()))
                    .cloned()
            }),
            name: package.name.to_string(),
            version,
            source,
            description: package.description.clone(),
            depends_on,
        }
    };
    let root_ids: BTreeSet<&cargo_metadata::PackageId> = roots.iter().map(|p| &p.id).collect();
    let mut components: Vec<Component> = seen
        .iter()
        .filter(|id| !root_ids.contains(*id) || roots.len() > 1)
        .filter_map(|id| packages.get(*id))
        .map(|p| component(p))
        .collect();
    components.sort_by(|a, b| a.purl.cmp(&b.purl));
    components.dedup_by(|a, b| a.purl == b.purl);

    let mut subject = if roots.len() == 1 {
        component(roots[0])
    } else {
        Component {
            name: spec.project.clone(),
            version: spec.version.clone(),
            purl: purl(&spec.project, &spec.version),
            license: None,
            sha256: None,
            source: None,
            description: None,
            depends_on: roots
                .iter()
                .map(|p| purl(&p.name, &p.version.to_string()))
                .collect(),
        }
    };
    // The release's version, which the tag names, whatever the root package says.
    subject.version = spec.version.clone();
    subject.purl = purl(&subject.name, &spec.version);

    let mut binaries = Vec::new();
    for (name, path) in &spec.binaries {
        let bytes = std::fs::read(path).map_err(FileError::on("read", path))?;
        binaries.push(BinaryFile {
            name: name.clone(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            sha1: hex::encode(sha1::Sha1::digest(&bytes)),
        });
    }
    binaries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Bom {
        subject,
        components,
        binaries,
        target: (spec.target.clone(), spec.triple.clone()),
        created: rfc3339(spec.timestamp),
    })
}

/// `(name, version, source) -> checksum` of every package Cargo.lock pins (none without one).
fn lock_checksums(
    workspace_root: &Path,
) -> Result<BTreeMap<(String, String, String), String>, SbomError> {
    let path = workspace_root.join("Cargo.lock");
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let lock = rustsec::Lockfile::load(&path).map_err(|e| SbomError::Lockfile {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(lock
        .packages
        .into_iter()
        .filter_map(|p| {
            let checksum = p.checksum?.to_string();
            let source = p.source?.to_string();
            Some((
                (p.name.to_string(), p.version.to_string(), source),
                checksum,
            ))
        })
        .collect())
}

/// RFC 3339 (UTC, seconds) of a Unix time.
fn rfc3339(unix: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix))
        .to_string()
}

/// A UUID (version 4 layout) derived from `hex` (at least 32 hex digits), for ids that must
/// stay the same for the same contents.
fn uuid_from(hex: &str) -> String {
    let h = &hex[..32];
    let variant = (u8::from_str_radix(&h[16..17], 16).unwrap_or(0) & 0x3) | 0x8;
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        variant,
        &h[17..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_licences_become_spdx_expressions() {
        assert_eq!(
            license_expression("MIT/Apache-2.0").as_deref(),
            Some("MIT OR Apache-2.0")
        );
        assert_eq!(
            license_expression("MIT OR Apache-2.0").as_deref(),
            Some("MIT OR Apache-2.0")
        );
        assert_eq!(
            license_expression("(MIT OR Apache-2.0) AND Unicode-3.0").as_deref(),
            Some("(MIT OR Apache-2.0) AND Unicode-3.0")
        );
        assert_eq!(license_expression("my own licence"), None);
    }

    #[test]
    fn derived_uuids_have_the_version_and_variant_bits() {
        let id = uuid_from(&"ab".repeat(32));
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!("89ab".contains(&id[19..20]), "{id}");
        assert_eq!(id, uuid_from(&"ab".repeat(32)));
    }
}
