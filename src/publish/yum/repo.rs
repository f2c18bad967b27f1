//! A signed YUM/DNF repository in a folder, updated in place: `packages/` holds the rpms,
//! `repodata/` the primary, filelists and other metadata (createrepo's formats, gzipped, named
//! by their SHA-256), `repodata/repomd.xml` sums them and `repomd.xml.asc` signs it. The
//! metadata is made again from the packages' headers each time, so one repository serves
//! every release: the same package again is a no-op, another file with the same name,
//! version, release and architecture is refused.
//!
//! The folder is untrusted input: it is read and written only through a [`Tree`] (no link it
//! holds is followed), only regular `packages/*.rpm` files are read, every header value is
//! escaped into the XML, and package file names and architectures are checked before they
//! become paths.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::file_error::FileError;
use crate::openpgp::{PgpError, PgpKey};
use crate::package::{PackageFormat, names};
use crate::publish::folder::{Tree, Updated};
use crate::quote::xml as esc;
use crate::relpath::{EntryKind, RelPath};

/// Where and how the repository is laid out.
#[derive(Debug, Clone)]
pub struct YumRepo {
    /// The repository's root folder.
    pub root: PathBuf,
    /// Versions kept per package and architecture; `None` keeps all.
    pub keep: Option<usize>,
}

/// Why the repository was not updated.
#[derive(Debug, thiserror::Error)]
pub enum YumError {
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] FileError),
    /// A package's header could not be read.
    #[error("{}: not an rpm shipit can read", path.display())]
    Rpm {
        /// The package.
        path: PathBuf,
        /// Why.
        #[source]
        source: rpm::Error,
    },
    /// The same name, version, release and architecture with other bytes.
    #[error(
        "{nevra} is already in the repository with other content (SHA-256 {existing}); a published version cannot change: raise the version or the release"
    )]
    Conflict {
        /// `name-version-release.arch`.
        nevra: String,
        /// The SHA-256 already there.
        existing: String,
    },
    /// A file name that cannot be a package in the repository.
    #[error("{0}")]
    Refused(String),
    /// Signing failed.
    #[error("cannot sign repomd.xml")]
    Sign(#[source] PgpError),
}

/// One package as the metadata describes it.
struct Described {
    href: String,
    sha256: String,
    size: u64,
    metadata: rpm::PackageMetadata,
}

impl Described {
    /// Reads a package from the repository (`href`) or from the dist folder (`path`).
    fn read(tree: Option<&Tree<'_>>, path: &Path, href: String) -> Result<Described, YumError> {
        let rpm_error = |source| YumError::Rpm {
            path: path.to_path_buf(),
            source,
        };
        let read_error = FileError::on("read", path);
        let (mut file, size) = match tree {
            Some(tree) => tree
                .open(&href)?
                .ok_or_else(|| read_error(std::io::Error::from(std::io::ErrorKind::NotFound)))?,
            None => {
                let file = std::fs::File::open(path).map_err(FileError::on("read", path))?;
                let size = file.metadata().map_err(FileError::on("read", path))?.len();
                (file, size)
            }
        };
        let sha256 = crate::checksum::hash_reader(&mut file, crate::checksum::Algorithm::Sha256)
            .map_err(FileError::on("read", path))?;
        std::io::Seek::rewind(&mut file).map_err(FileError::on("read", path))?;
        let metadata = rpm::PackageMetadata::parse(&mut std::io::BufReader::new(file)).map_err(
            |e| match e {
                rpm::Error::Io(source) => YumError::Io(FileError::on("read", path)(source)),
                other => rpm_error(other),
            },
        )?;
        // Every field the metadata needs is read now: a package missing one is refused here,
        // not halfway through writing.
        for field in [
            metadata.get_name(),
            metadata.get_version(),
            metadata.get_arch(),
        ] {
            field.map_err(rpm_error)?;
        }
        names::check_arch(PackageFormat::Rpm, metadata.get_arch().unwrap_or_default())
            .map_err(|why| YumError::Refused(format!("{}: {why}", path.display())))?;
        Ok(Described {
            href,
            sha256,
            size,
            metadata,
        })
    }

    fn nevra(&self) -> String {
        let m = &self.metadata;
        format!(
            "{}-{}-{}.{}",
            m.get_name().unwrap_or_default(),
            m.get_version().unwrap_or_default(),
            m.get_release().unwrap_or_default(),
            m.get_arch().unwrap_or_default()
        )
    }
}

impl YumRepo {
    /// The packages now in `packages/`: its regular `.rpm` files.
    fn read_back(&self) -> Result<Vec<Described>, YumError> {
        let tree = Tree::new(&self.root);
        let mut found = Vec::new();
        for (name, kind) in tree.list("packages")? {
            if kind == EntryKind::File && name.ends_with(".rpm") {
                let href = format!("packages/{name}");
                found.push(Described::read(Some(&tree), &self.root.join(&href), href)?);
            }
        }
        Ok(found)
    }

    /// Adds the packages, applies `keep`, writes the metadata and signs it.
    pub fn add(&self, rpms: &[PathBuf], key: &PgpKey, now: u64) -> Result<Updated, YumError> {
        let tree = Tree::new(&self.root);
        let mut listed: BTreeMap<String, Described> = BTreeMap::new();
        for described in self.read_back()? {
            listed.insert(described.nevra(), described);
        }
        let mut updated = Updated::default();
        let mut to_copy = Vec::new();
        for path in rpms {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            RelPath::file_name(&name)
                .map_err(|e| YumError::Refused(format!("{}: {e}", path.display())))?;
            let href = format!("packages/{name}");
            let described = Described::read(None, path, href.clone())?;
            let nevra = described.nevra();
            if let Some(existing) = listed.get(&nevra) {
                if existing.sha256 == described.sha256 {
                    updated.present.push(existing.href.clone());
                    continue;
                }
                return Err(YumError::Conflict {
                    nevra,
                    existing: existing.sha256.clone(),
                });
            }
            to_copy.push((path, href.clone()));
            updated.added.push(href);
            listed.insert(nevra, described);
        }
        if let Some(keep) = self.keep {
            let mut by_package: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
            for (nevra, d) in &listed {
                let m = &d.metadata;
                by_package
                    .entry((
                        m.get_name().unwrap_or_default().into(),
                        m.get_arch().unwrap_or_default().into(),
                    ))
                    .or_default()
                    .push(nevra.clone());
            }
            for (_, mut nevras) in by_package {
                nevras.sort_by(|a, b| {
                    let evr = |n: &String| listed[n].metadata.get_evr().ok();
                    evr(b).cmp(&evr(a))
                });
                for old in nevras.into_iter().skip(keep) {
                    if let Some(gone) = listed.remove(&old) {
                        updated.removed.push(gone.href);
                    }
                }
            }
        }
        let repomd_path = "repodata/repomd.xml";
        if updated.added.is_empty() && updated.removed.is_empty() && tree.is_file(repomd_path) {
            return Ok(updated);
        }
        for (from, to) in &to_copy {
            tree.copy(from, to)?;
        }
        let packages: Vec<&Described> = listed.values().collect();
        let old_data = existing_data(&tree)?;
        let mut data = Vec::new();
        for (kind, xml) in [
            ("primary", primary(&packages)),
            ("filelists", filelists(&packages)),
            ("other", other(&packages)),
        ] {
            let gz = crate::package::gzip_max(xml.as_bytes());
            let sum = hex::encode(Sha256::digest(&gz));
            let href = format!("repodata/{sum}-{kind}.xml.gz");
            tree.write(&href, &gz)?;
            data.push(DataFile {
                kind,
                href,
                sum,
                size: gz.len(),
                open_sum: hex::encode(Sha256::digest(xml.as_bytes())),
                open_size: xml.len(),
            });
        }
        let repomd = repomd(&data, now);
        let signature = key
            .sign_armored(repomd.as_bytes(), now)
            .map_err(YumError::Sign)?;
        tree.write(repomd_path, repomd.as_bytes())?;
        tree.write("repodata/repomd.xml.asc", signature.as_bytes())?;
        tree.write(
            "key.asc",
            key.public_armored().map_err(YumError::Sign)?.as_bytes(),
        )?;
        // Metadata and packages nothing names any more.
        let kept: Vec<&str> = data.iter().map(|d| d.href.as_str()).collect();
        for old in old_data.iter().filter(|o| !kept.contains(&o.as_str())) {
            tree.remove(old)?;
        }
        for gone in &updated.removed {
            tree.remove(gone)?;
        }
        Ok(updated)
    }
}

/// The metadata files `repodata/` holds now (regular files only: a link is never removed
/// through).
fn existing_data(tree: &Tree<'_>) -> Result<Vec<String>, FileError> {
    Ok(tree
        .list("repodata")?
        .into_iter()
        .filter(|(name, kind)| *kind == EntryKind::File && name.ends_with(".xml.gz"))
        .map(|(name, _)| format!("repodata/{name}"))
        .collect())
}

struct DataFile {
    kind: &'static str,
    href: String,
    sum: String,
    size: usize,
    open_sum: String,
    open_size: usize,
}

fn repomd(data: &[DataFile], now: u64) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n  <revision>{now}</revision>\n"
    );
    for d in data {
        let _ = write!(
            xml,
            "  <data type=\"{}\">\n    <checksum type=\"sha256\">{}</checksum>\n    <open-checksum type=\"sha256\">{}</open-checksum>\n    <location href=\"{}\"/>\n    <timestamp>{now}</timestamp>\n    <size>{}</size>\n    <open-size>{}</open-size>\n  </data>\n",
            d.kind, d.sum, d.open_sum, d.href, d.size, d.open_size
        );
    }
    xml.push_str("</repomd>\n");
    xml
}

/// `epoch="0" ver="1.2" rel="1"` of a package.
fn version_attrs(m: &rpm::PackageMetadata) -> String {
    format!(
        "epoch=\"{}\" ver=\"{}\" rel=\"{}\"",
        m.get_epoch().unwrap_or(0),
        esc(m.get_version().unwrap_or_default()),
        esc(m.get_release().unwrap_or_default())
    )
}

/// `<rpm:entry .../>` for a dependency (`[epoch:]version[-release]` split as createrepo does).
fn entry(dependency: &rpm::Dependency) -> String {
    let flags = dependency.flags
        & (rpm::DependencyFlags::LESS
            | rpm::DependencyFlags::GREATER
            | rpm::DependencyFlags::EQUAL);
    let name = esc(&dependency.name);
    let flag = match flags.bits() {
        2 => "LT",
        4 => "GT",
        8 => "EQ",
        10 => "LE",
        12 => "GE",
        _ => return format!("<rpm:entry name=\"{name}\"/>"),
    };
    let (epoch, rest) = match dependency.version.split_once(':') {
        Some((e, rest)) => (e, rest),
        None => ("0", dependency.version.as_str()),
    };
    let (ver, rel) = match rest.split_once('-') {
        Some((v, r)) => (v, Some(r)),
        None => (rest, None),
    };
    let rel = rel
        .map(|r| format!(" rel=\"{}\"", esc(r)))
        .unwrap_or_default();
    format!(
        "<rpm:entry name=\"{name}\" flags=\"{flag}\" epoch=\"{}\" ver=\"{}\"{rel}/>",
        esc(epoch),
        esc(ver)
    )
}

fn relations(xml: &mut String, tag: &str, list: Result<Vec<rpm::Dependency>, rpm::Error>) {
    let list: Vec<rpm::Dependency> = list
        .unwrap_or_default()
        .into_iter()
        .filter(|d| !d.name.starts_with("rpmlib("))
        .collect();
    if list.is_empty() {
        return;
    }
    let _ = writeln!(xml, "      <rpm:{tag}>");
    for dependency in &list {
        let _ = writeln!(xml, "        {}", entry(dependency));
    }
    let _ = writeln!(xml, "      </rpm:{tag}>");
}

/// Each file of a package: its path and whether it is a folder.
fn files(m: &rpm::PackageMetadata) -> Vec<(String, bool)> {
    m.get_file_entries()
        .unwrap_or_default()
        .iter()
        .map(|f| {
            (
                f.path().to_string_lossy().into_owned(),
                f.mode().file_type() == rpm::FileType::Dir,
            )
        })
        .collect()
}

fn primary(packages: &[&Described]) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"{}\">\n",
        packages.len()
    );
    for d in packages {
        let m = &d.metadata;
        let offsets = m.get_package_segment_offsets();
        let build = m.get_build_time().unwrap_or(0);
        let _ = write!(
            xml,
            "<package type=\"rpm\">\n  <name>{}</name>\n  <arch>{}</arch>\n  <version {}/>\n  <checksum type=\"sha256\" pkgid=\"YES\">{}</checksum>\n  <summary>{}</summary>\n  <description>{}</description>\n  <packager>{}</packager>\n  <url>{}</url>\n  <time file=\"{build}\" build=\"{build}\"/>\n  <size package=\"{}\" installed=\"{}\" archive=\"{}\"/>\n  <location href=\"{}\"/>\n  <format>\n    <rpm:license>{}</rpm:license>\n    <rpm:vendor>{}</rpm:vendor>\n    <rpm:group>{}</rpm:group>\n    <rpm:buildhost>{}</rpm:buildhost>\n    <rpm:sourcerpm>{}</rpm:sourcerpm>\n    <rpm:header-range start=\"{}\" end=\"{}\"/>\n",
            esc(m.get_name().unwrap_or_default()),
            esc(m.get_arch().unwrap_or_default()),
            version_attrs(m),
            d.sha256,
            esc(m.get_summary().unwrap_or_default()),
            esc(m.get_description().unwrap_or_default()),
            esc(m.get_packager().unwrap_or_default()),
            esc(m.get_url().unwrap_or_default()),
            d.size,
            m.get_installed_size().unwrap_or(0),
            d.size.saturating_sub(offsets.payload),
            esc(&d.href),
            esc(m.get_license().unwrap_or_default()),
            esc(m.get_vendor().unwrap_or_default()),
            esc(m.get_group().unwrap_or_default()),
            esc(m.get_build_host().unwrap_or_default()),
            esc(m.get_source_rpm().unwrap_or_default()),
            offsets.header,
            offsets.payload,
        );
        let mut format = String::new();
        relations(&mut format, "provides", m.get_provides());
        relations(&mut format, "requires", m.get_requires());
        relations(&mut format, "conflicts", m.get_conflicts());
        relations(&mut format, "obsoletes", m.get_obsoletes());
        relations(&mut format, "recommends", m.get_recommends());
        xml.push_str(
            &format
                .replace("\n      ", "\n    ")
                .replacen("      <", "    <", 1),
        );
        // Like createrepo, primary lists the files dnf resolves dependencies on; filelists
        // has the rest.
        for (path, dir) in files(m) {
            if path.starts_with("/etc/") || path.contains("/bin/") || path.contains("/sbin/") {
                let kind = if dir { " type=\"dir\"" } else { "" };
                let _ = writeln!(xml, "    <file{kind}>{}</file>", esc(&path));
            }
        }
        xml.push_str("  </format>\n</package>\n");
    }
    xml.push_str("</metadata>\n");
    xml
}

/// A per-package metadata file (`filelists`, `other`): each package's id, name, architecture
/// and version, then what `body` writes.
fn per_package(
    root: &str,
    namespace: &str,
    packages: &[&Described],
    body: impl Fn(&mut String, &Described),
) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"http://linux.duke.edu/metadata/{namespace}\" packages=\"{}\">\n",
        packages.len()
    );
    for d in packages {
        let m = &d.metadata;
        let _ = writeln!(
            xml,
            "<package pkgid=\"{}\" name=\"{}\" arch=\"{}\">\n  <version {}/>",
            d.sha256,
            esc(m.get_name().unwrap_or_default()),
            esc(m.get_arch().unwrap_or_default()),
            version_attrs(m)
        );
        body(&mut xml, d);
        xml.push_str("</package>\n");
    }
    let _ = writeln!(xml, "</{root}>");
    xml
}

fn filelists(packages: &[&Described]) -> String {
    per_package("filelists", "filelists", packages, |xml, d| {
        for (path, dir) in files(&d.metadata) {
            let kind = if dir { " type=\"dir\"" } else { "" };
            let _ = writeln!(xml, "  <file{kind}>{}</file>", esc(&path));
        }
    })
}

fn other(packages: &[&Described]) -> String {
    per_package("otherdata", "other", packages, |xml, d| {
        for change in d.metadata.get_changelog_entries().unwrap_or_default() {
            let _ = writeln!(
                xml,
                "  <changelog author=\"{}\" date=\"{}\">{}</changelog>",
                esc(&change.name),
                change.timestamp,
                esc(&change.description)
            );
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::PackageFormat;

    #[test]
    fn keep_leaves_the_newest_version_and_a_changed_package_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let repo = YumRepo {
            root: dir.path().join("repo"),
            keep: Some(1),
        };
        let (secret, _) = crate::openpgp::generate("Test <test@example.com>", None).unwrap();
        let key = PgpKey::from_armored(&secret, None).unwrap();
        let rpm = |version: &str, extra: &str| {
            crate::package::test_package(PackageFormat::Rpm, dir.path(), version, extra)
        };
        repo.add(&[rpm("0.9.0", "")], &key, 1).unwrap();
        let updated = repo.add(&[rpm("0.10.0", "")], &key, 2).unwrap();
        assert_eq!(updated.removed, ["packages/demo-0.9.0-1.x86_64.rpm"]);
        assert!(!repo.root.join("packages/demo-0.9.0-1.x86_64.rpm").exists());
        let changed = repo.add(&[rpm("0.10.0", "changed")], &key, 3).unwrap_err();
        assert!(matches!(changed, YumError::Conflict { .. }), "{changed}");
        let repomd = std::fs::read_to_string(repo.root.join("repodata/repomd.xml")).unwrap();
        let data: Vec<&str> = repomd.matches("<data type=").collect();
        assert_eq!(data.len(), 3);
        let files = std::fs::read_dir(repo.root.join("repodata"))
            .unwrap()
            .count();
        assert_eq!(files, 5, "old metadata files are removed");
    }

    #[test]
    fn header_values_cannot_break_out_of_the_xml() {
        assert_eq!(esc("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;");
        let dependency = rpm::Dependency::greater_eq("glibc", "1:2.31-4");
        assert_eq!(
            entry(&dependency),
            "<rpm:entry name=\"glibc\" flags=\"GE\" epoch=\"1\" ver=\"2.31\" rel=\"4\"/>"
        );
        assert_eq!(
            entry(&rpm::Dependency::any("x<y")),
            "<rpm:entry name=\"x&lt;y\"/>"
        );
    }
}
