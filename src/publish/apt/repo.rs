//! A signed APT repository in a folder, updated in place: `pool/<component>/<l>/<name>/` holds
//! the packages, `dists/<suite>/<component>/binary-<arch>/Packages(.gz)` lists them,
//! `dists/<suite>/Release` sums the lists and is signed twice (`InRelease` clearsigned,
//! `Release.gpg` detached). The existing lists are read back, so one repository serves every
//! release: the same package again is a no-op, another file under the same name, version and
//! architecture is refused.
//!
//! The folder is untrusted input: it is read and written only through a [`Tree`] (no link it
//! holds is followed), every `Filename` read back must stay inside its pool, and package names
//! and architectures become paths only after Debian's grammar checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use md5::Md5;
use sha2::{Digest, Sha256};

use crate::file_error::FileError;
use crate::openpgp::{PgpError, PgpKey, PgpPublicKey};
use crate::package::debian::{self, DebianError, Stanza, compare_versions};
use crate::package::{PackageFormat, names};
use crate::publish::apt::config::word_problem;
use crate::publish::folder::{Tree, Updated};
use crate::publish::recheck::Finding;
use crate::relpath::{EntryKind, RelPath};

/// Where and how the repository is laid out.
#[derive(Debug, Clone)]
pub struct AptRepo {
    /// The repository's root folder.
    pub root: PathBuf,
    /// `stable`.
    pub suite: String,
    /// `main`.
    pub component: String,
    /// The `Origin` and `Label` of the Release file.
    pub origin: String,
    /// Versions kept per package and architecture; `None` keeps all.
    pub keep: Option<usize>,
}

/// Why the repository was not updated.
#[derive(Debug, thiserror::Error)]
pub enum AptError {
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] FileError),
    /// A package or an index could not be read.
    #[error(transparent)]
    Debian(#[from] DebianError),
    /// The same package name, version and architecture with other bytes.
    #[error(
        "{name} {version} ({arch}) is already in the repository with other content (SHA-256 {existing}); a published version cannot change: raise the version or the release"
    )]
    Conflict {
        /// Package.
        name: String,
        /// Version.
        version: String,
        /// Architecture.
        arch: String,
        /// The SHA-256 already listed.
        existing: String,
    },
    /// An index holds what a repository must not (a path out of the folder, a bad name).
    #[error("{0}")]
    Refused(String),
    /// Signing failed.
    #[error("cannot sign the Release file")]
    Sign(#[source] PgpError),
}

/// A package's name, version and architecture: one entry of the repository.
type EntryKey = (String, String, String);

/// An index entry: the package's control fields plus where it is and its sums.
#[derive(Debug, Clone)]
struct Listed {
    stanza: Stanza,
    name: String,
    version: String,
    arch: String,
    filename: String,
    sha256: String,
}

impl Listed {
    fn from_stanza(stanza: Stanza, index: &str) -> Result<Listed, AptError> {
        let field = |name: &str| {
            stanza
                .get(name)
                .map(str::to_owned)
                .ok_or_else(|| AptError::Refused(format!("{index}: an entry has no `{name}`")))
        };
        let listed = Listed {
            name: field("Package")?,
            version: field("Version")?,
            arch: field("Architecture")?,
            filename: field("Filename")?,
            sha256: field("SHA256")?,
            stanza: stanza.clone(),
        };
        names::check_name(PackageFormat::Deb, &listed.name)
            .and_then(|()| names::check_arch(PackageFormat::Deb, &listed.arch))
            .map_err(|why| AptError::Refused(format!("{index}: {why}")))?;
        if RelPath::new(&listed.filename).is_err() || !listed.filename.starts_with("pool/") {
            return Err(AptError::Refused(format!(
                "{index}: `Filename: {}` is not a path inside the repository's pool",
                listed.filename.escape_debug()
            )));
        }
        Ok(listed)
    }

    fn key(&self) -> EntryKey {
        (self.name.clone(), self.version.clone(), self.arch.clone())
    }
}

impl AptRepo {
    fn tree(&self) -> Tree<'_> {
        Tree::new(&self.root)
    }

    /// `dists/<suite>`, where the lists and the Release file are.
    fn dist(&self) -> String {
        format!("dists/{}", self.suite)
    }

    /// The list of one architecture, inside the repository.
    fn index(&self, arch: &str) -> String {
        format!("{}/{}/binary-{arch}/Packages", self.dist(), self.component)
    }

    /// Every entry of every architecture's index now in the folder.
    fn read_back(&self) -> Result<Vec<Listed>, AptError> {
        let folder = format!("{}/{}", self.dist(), self.component);
        let mut listed = Vec::new();
        for (name, kind) in self.tree().list(&folder)? {
            let Some(arch) = name.strip_prefix("binary-") else {
                continue;
            };
            if kind != EntryKind::Folder {
                return Err(AptError::Refused(format!(
                    "{folder}/{}: an index folder that is a link or not a folder",
                    name.escape_debug()
                )));
            }
            names::check_arch(PackageFormat::Deb, arch)
                .map_err(|why| AptError::Refused(format!("{folder}: {why}")))?;
            let index = self.index(arch);
            let Some(text) = self.tree().read_text(&index)? else {
                continue;
            };
            let stanzas =
                debian::parse(&text).map_err(|why| AptError::Refused(format!("{index}: {why}")))?;
            for stanza in stanzas {
                listed.push(Listed::from_stanza(stanza, &index)?);
            }
        }
        Ok(listed)
    }

    /// Adds the packages, applies `keep`, rewrites the indices and the signed Release.
    pub fn add(&self, debs: &[PathBuf], key: &PgpKey, now: u64) -> Result<Updated, AptError> {
        if let Some(why) = word_problem(&self.suite).or_else(|| word_problem(&self.component)) {
            return Err(AptError::Refused(why));
        }
        let tree = self.tree();
        let mut listed: BTreeMap<EntryKey, Listed> = BTreeMap::new();
        for entry in self.read_back()? {
            listed.insert(entry.key(), entry);
        }
        let mut updated = Updated::default();
        let mut to_copy: Vec<(&Path, String)> = Vec::new();
        for deb in debs {
            let mut stanza = debian::control_of(deb)?;
            let (bytes_md5, bytes_sha256, size) = sums(deb)?;
            let entry = |field: &str| stanza.get(field).unwrap_or_default().to_owned();
            let (name, version, arch) = (entry("Package"), entry("Version"), entry("Architecture"));
            names::check_name(PackageFormat::Deb, &name)
                .and_then(|()| names::check_arch(PackageFormat::Deb, &arch))
                .map_err(|why| AptError::Refused(format!("{}: {why}", deb.display())))?;
            let file_name = deb
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            RelPath::file_name(&file_name)
                .map_err(|e| AptError::Refused(format!("{}: {e}", deb.display())))?;
            let first = if name.starts_with("lib") && name.len() > 3 {
                &name[..4]
            } else {
                &name[..1]
            };
            let filename = format!("pool/{}/{first}/{name}/{file_name}", self.component);
            let key = (name.clone(), version.clone(), arch.clone());
            if let Some(existing) = listed.get(&key) {
                if existing.sha256 == bytes_sha256 {
                    updated.present.push(existing.filename.clone());
                    continue;
                }
                return Err(AptError::Conflict {
                    name,
                    version,
                    arch,
                    existing: existing.sha256.clone(),
                });
            }
            stanza.set("Filename", filename.clone());
            stanza.set("Size", size.to_string());
            stanza.set("MD5sum", bytes_md5);
            stanza.set("SHA256", bytes_sha256.clone());
            to_copy.push((deb, filename.clone()));
            updated.added.push(filename.clone());
            listed.insert(
                key,
                Listed {
                    stanza,
                    name,
                    version,
                    arch,
                    filename,
                    sha256: bytes_sha256,
                },
            );
        }
        if let Some(keep) = self.keep {
            let mut by_package: BTreeMap<(String, String), Vec<EntryKey>> = BTreeMap::new();
            for key in listed.keys() {
                by_package
                    .entry((key.0.clone(), key.2.clone()))
                    .or_default()
                    .push(key.clone());
            }
            for (_, mut versions) in by_package {
                versions.sort_by(|a, b| compare_versions(&b.1, &a.1));
                for old in versions.into_iter().skip(keep) {
                    if let Some(gone) = listed.remove(&old) {
                        updated.removed.push(gone.filename);
                    }
                }
            }
        }
        if updated.added.is_empty()
            && updated.removed.is_empty()
            && tree.is_file(&format!("{}/InRelease", self.dist()))
        {
            return Ok(updated);
        }
        // Packages first, then the lists, then the signed Release that names their sums.
        for (from, to) in &to_copy {
            tree.copy(from, to)?;
        }
        let arches: BTreeSet<String> = listed.values().map(|l| l.arch.clone()).collect();
        let mut index_files = Vec::new();
        for arch in &arches {
            let mut entries: Vec<&Listed> = listed.values().filter(|l| &l.arch == arch).collect();
            entries.sort_by(|a, b| {
                a.name
                    .cmp(&b.name)
                    .then_with(|| compare_versions(&a.version, &b.version))
            });
            let text: String = entries
                .iter()
                .map(|l| l.stanza.render())
                .collect::<Vec<_>>()
                .join("\n");
            let relative = format!("{}/binary-{arch}/Packages", self.component);
            let gz = crate::package::gzip_max(text.as_bytes());
            index_files.push((relative.clone(), text.into_bytes()));
            index_files.push((format!("{relative}.gz"), gz));
        }
        let dist = self.dist();
        for (relative, bytes) in &index_files {
            tree.write(&format!("{dist}/{relative}"), bytes)?;
        }
        let release = self.release(&arches, &index_files, now);
        let inrelease = key.clearsign(&release, now).map_err(AptError::Sign)?;
        let detached = key
            .sign_armored(release.as_bytes(), now)
            .map_err(AptError::Sign)?;
        tree.write(&format!("{dist}/Release"), release.as_bytes())?;
        tree.write(&format!("{dist}/Release.gpg"), detached.as_bytes())?;
        tree.write(&format!("{dist}/InRelease"), inrelease.as_bytes())?;
        tree.write(
            "key.asc",
            key.public_armored().map_err(AptError::Sign)?.as_bytes(),
        )?;
        tree.write("key.gpg", &key.public_binary().map_err(AptError::Sign)?)?;
        // Pool files no index names any more (`keep`).
        let named: BTreeSet<&str> = listed.values().map(|l| l.filename.as_str()).collect();
        for gone in &updated.removed {
            if !named.contains(gone.as_str()) {
                tree.remove(gone)?;
            }
        }
        Ok(updated)
    }

    /// The Release file: what the suite holds and the sums of every index.
    fn release(
        &self,
        arches: &BTreeSet<String>,
        index_files: &[(String, Vec<u8>)],
        now: u64,
    ) -> String {
        let mut text = format!(
            "Origin: {origin}\nLabel: {origin}\nSuite: {suite}\nCodename: {suite}\nDate: {date}\nArchitectures: {arches}\nComponents: {component}\nDescription: {origin} packages, published by shipit\n",
            origin = self.origin,
            suite = self.suite,
            date = crate::package::rfc2822(now),
            arches = arches.iter().cloned().collect::<Vec<_>>().join(" "),
            component = self.component,
        );
        text.push_str("MD5Sum:\n");
        for (relative, bytes) in index_files {
            text.push_str(&format!(
                " {} {:>8} {relative}\n",
                hex::encode(Md5::digest(bytes)),
                bytes.len()
            ));
        }
        text.push_str("SHA256:\n");
        for (relative, bytes) in index_files {
            text.push_str(&format!(
                " {} {:>8} {relative}\n",
                hex::encode(Sha256::digest(bytes)),
                bytes.len()
            ));
        }
        text
    }
}

impl AptRepo {
    /// What the repository holds of `debs`, read as apt reads it: `InRelease` checked against
    /// `key`, every index it names against its SHA-256, then each package's index entry and
    /// pool file against the package built.
    pub fn recheck(&self, debs: &[PathBuf], key: &PgpPublicKey) -> Result<Vec<Finding>, AptError> {
        let tree = self.tree();
        let mut findings = Vec::new();
        let inrelease = format!("{}/InRelease", self.dist());
        let signer = format!("signed by {}", key.fingerprint());
        let signed = tree
            .read_text(&inrelease)?
            .map(|text| key.verify_cleartext(&text));
        findings.push(Finding::new(
            &inrelease,
            &signer,
            match &signed {
                None => None,
                Some(Ok(_)) => Some(signer.clone()),
                Some(Err(_)) => Some("no valid signature by that key".into()),
            },
        ));
        if let Some(Ok(release)) = &signed {
            for (sha256, relative) in release_sums(release) {
                let index = format!("{}/{relative}", self.dist());
                let found = tree.sha256(&index)?;
                findings.push(Finding::sha256(index, &sha256, found.as_deref()));
            }
        }
        let listed = self.read_back()?;
        for deb in debs {
            let stanza = debian::control_of(deb)?;
            let (_, sha256, _) = sums(deb)?;
            let field = |name: &str| stanza.get(name).unwrap_or_default().to_owned();
            let key = (field("Package"), field("Version"), field("Architecture"));
            let name = deb
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Some(entry) = listed.iter().find(|l| l.key() == key) else {
                findings.push(Finding::sha256(name, &sha256, None));
                continue;
            };
            findings.push(Finding::sha256(
                format!("{name} as the index lists it"),
                &sha256,
                Some(&entry.sha256),
            ));
            let pool = tree.sha256(&entry.filename)?;
            findings.push(Finding::sha256(&entry.filename, &sha256, pool.as_deref()));
        }
        Ok(findings)
    }
}

/// The `SHA256:` section of a Release file as `(sum, path)` pairs.
fn release_sums(release: &str) -> Vec<(String, String)> {
    release
        .lines()
        .skip_while(|line| *line != "SHA256:")
        .skip(1)
        .take_while(|line| line.starts_with(' '))
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (sum, _, path) = (words.next()?, words.next()?, words.next()?);
            Some((sum.to_string(), path.to_string()))
        })
        .collect()
}

/// MD5 and SHA-256 (hex) and size of a file, read once.
fn sums(path: &Path) -> Result<(String, String, u64), AptError> {
    let mut file = std::fs::File::open(path).map_err(FileError::on("read", path))?;
    let (mut md5, mut sha256, mut size) = (Md5::new(), Sha256::new(), 0u64);
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut file, &mut buffer).map_err(FileError::on("read", path))?;
        if n == 0 {
            break;
        }
        md5.update(&buffer[..n]);
        sha256.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((
        hex::encode(md5.finalize()),
        hex::encode(sha256.finalize()),
        size,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(fields: &str) -> Result<Listed, AptError> {
        let stanza = debian::parse(fields).unwrap().remove(0);
        Listed::from_stanza(stanza, "Packages")
    }

    fn key() -> PgpKey {
        let (secret, _) = crate::openpgp::generate("Test <test@example.com>", None).unwrap();
        PgpKey::from_armored(&secret, None).unwrap()
    }

    #[test]
    fn keep_leaves_the_newest_versions_and_a_changed_package_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let repo = AptRepo {
            root: dir.path().join("repo"),
            suite: "stable".into(),
            component: "main".into(),
            origin: "demo".into(),
            keep: Some(2),
        };
        let key = key();
        let deb = |version: &str, extra: &str| {
            crate::package::test_package(PackageFormat::Deb, dir.path(), version, extra)
        };
        let mut last = Updated::default();
        for version in ["0.1.0", "0.10.0", "0.2.0"] {
            last = repo.add(&[deb(version, "")], &key, 1).unwrap();
        }
        assert_eq!(last.removed, ["pool/main/d/demo/demo_0.1.0-1_amd64.deb"]);
        let packages = std::fs::read_to_string(repo.root.join(repo.index("amd64"))).unwrap();
        assert!(packages.contains("Version: 0.10.0-1") && packages.contains("Version: 0.2.0-1"));
        assert!(!packages.contains("Version: 0.1.0-1"));
        assert!(
            !repo
                .root
                .join("pool/main/d/demo/demo_0.1.0-1_amd64.deb")
                .exists()
        );
        let again = repo.add(&[deb("0.2.0", "")], &key, 2).unwrap();
        assert_eq!(again.present, ["pool/main/d/demo/demo_0.2.0-1_amd64.deb"]);
        let changed = repo.add(&[deb("0.2.0", "changed")], &key, 3).unwrap_err();
        assert!(matches!(changed, AptError::Conflict { .. }), "{changed}");
        assert_eq!(
            std::fs::read_to_string(repo.root.join(repo.index("amd64"))).unwrap(),
            packages
        );
    }

    #[test]
    fn an_index_naming_a_file_outside_the_pool_or_a_bad_name_is_refused() {
        let entry = |name: &str, filename: &str| {
            format!(
                "Package: {name}\nVersion: 1\nArchitecture: amd64\nFilename: {filename}\nSHA256: 00\n"
            )
        };
        assert!(listed(&entry("demo", "pool/main/d/demo/demo_1_amd64.deb")).is_ok());
        assert!(listed(&entry("demo", "pool/../../etc/passwd")).is_err());
        assert!(listed(&entry("demo", "/etc/passwd")).is_err());
        let arch = "Package: demo\nVersion: 1\nArchitecture: x/../../..\nFilename: pool/x.deb\nSHA256: 00\n";
        assert!(listed(arch).is_err());
        assert!(listed(&entry("demo", "dists/stable/Release")).is_err());
        assert!(listed(&entry("../demo", "pool/main/d/demo/demo_1_amd64.deb")).is_err());
        assert!(listed("Package: demo\nVersion: 1\n").is_err());
    }
}
