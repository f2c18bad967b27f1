//! Linux packages, written natively: `.deb` (an `ar` archive of gzip-compressed tars) and
//! `.rpm` (the `rpm` crate). A [`PackageSpec`] is plain data made when the plan is made; the
//! writers only read the files it names. The same spec gives the same bytes: every time is
//! `SOURCE_DATE_EPOCH`, entries are sorted, owners are root, compression is deterministic, and
//! an rpm signature is made at that same time with a deterministic algorithm.

mod deb;
pub mod debian;
pub mod elfdeps;
pub mod names;
mod rpm;
pub mod scripts;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::file_error::FileError;
use crate::openpgp::PgpKey;

/// The two package formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageFormat {
    /// Debian and Ubuntu.
    Deb,
    /// Fedora, RHEL, openSUSE.
    Rpm,
}

impl PackageFormat {
    /// The file extension without its dot.
    pub fn extension(self) -> &'static str {
        match self {
            PackageFormat::Deb => "deb",
            PackageFormat::Rpm => "rpm",
        }
    }
}

/// How an rpm's payload is compressed.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// zstd level 3 on every core: fast and small; rpm 4.14 and later (RHEL 8+, Fedora 31+,
    /// openSUSE 15+).
    #[default]
    Zstd,
    /// gzip level 6: what every rpm reads, CentOS 7 included.
    Gzip,
}

/// What a package says about itself, already in its format's terms (version and architecture
/// mapped).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Metadata {
    /// Package name.
    pub name: String,
    /// Upstream version in the format's syntax (`1.2.0~rc.1`).
    pub version: String,
    /// Debian revision / rpm release.
    pub release: String,
    /// `amd64`, `x86_64`, ...
    pub arch: String,
    /// `Name <email>`.
    pub maintainer: String,
    /// One line.
    pub summary: String,
    /// More lines, if any.
    pub description: String,
    /// SPDX expression.
    pub license: String,
    /// Project home page.
    pub homepage: Option<String>,
    /// Debian section / rpm group.
    pub section: String,
    /// Debian priority.
    pub priority: String,
    /// Relations, each already in the format's syntax (`libc6 (>= 2.31)`).
    pub depends: Vec<String>,
    /// Recommended packages.
    pub recommends: Vec<String>,
    /// Conflicting packages.
    pub conflicts: Vec<String>,
    /// Virtual packages provided.
    pub provides: Vec<String>,
    /// Packages replaced.
    pub replaces: Vec<String>,
}

/// One thing the package installs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    /// A file copied from the project or the build.
    File {
        /// Where it comes from.
        src: PathBuf,
        /// Kept when edited, across upgrades (conffile / `%config(noreplace)`).
        config: bool,
    },
    /// A file gzipped at level 9 as it is packed (man pages).
    Gzipped {
        /// Where it comes from.
        src: PathBuf,
    },
    /// Bytes shipit writes (copyright, changelog).
    Generated {
        /// The content.
        #[serde(skip)]
        bytes: Vec<u8>,
    },
    /// A directory, even if empty.
    Dir,
    /// A symbolic link.
    Symlink {
        /// What it points to.
        target: String,
    },
}

/// An installed path, its mode and content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Absolute, normalised path (`/usr/bin/demo`).
    pub dst: String,
    /// Permission bits.
    pub mode: u32,
    /// What it is.
    pub content: Content,
}

/// A systemd unit the package installs and manages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Systemd {
    /// The unit's file name (`demo.service`).
    pub unit: String,
    /// Enable it on install.
    pub enable: bool,
    /// Start it on install, restart it on upgrade.
    pub start: bool,
}

/// Maintainer scripts the user wrote, by path; shipit's own snippets go around them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserScripts {
    /// Before unpacking.
    pub preinst: Option<PathBuf>,
    /// After unpacking.
    pub postinst: Option<PathBuf>,
    /// Before removing.
    pub prerm: Option<PathBuf>,
    /// After removing.
    pub postrm: Option<PathBuf>,
}

/// Everything needed to write one package.
#[derive(Debug, Clone, Serialize)]
pub struct PackageSpec {
    /// deb or rpm.
    pub format: PackageFormat,
    /// The file to write.
    pub output: PathBuf,
    /// Its metadata.
    pub meta: Metadata,
    /// What it installs (parents are added).
    pub entries: Vec<Entry>,
    /// The unit it manages, if any.
    pub systemd: Option<Systemd>,
    /// The user's maintainer scripts.
    pub scripts: UserScripts,
    /// Every time in the package (Unix seconds).
    pub mtime: u64,
    /// Binaries are statically linked (musl): Debian's lintian is told it is on purpose.
    pub static_binaries: bool,
    /// The stage whose OpenPGP key signs it (rpm).
    pub signed_by: Option<String>,
    /// The rpm payload's compression (a deb's data is always gzip).
    pub compression: Compression,
}

/// Why a package was not written.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] FileError),
    /// The rpm writer refused the package.
    #[error("cannot write the rpm: {0}")]
    Rpm(#[source] ::rpm::Error),
    /// The package could not be signed.
    #[error("cannot sign the package")]
    Sign(#[source] crate::openpgp::PgpError),
    /// The spec holds something the format cannot say.
    #[error("{0}")]
    Refused(String),
}

/// Writes the package (signed with `key` when it is an rpm and one is given), compressing on
/// up to `threads` threads; returns how many entries it holds.
pub fn write(
    spec: &PackageSpec,
    key: Option<&PgpKey>,
    threads: usize,
) -> Result<usize, PackageError> {
    match spec.format {
        PackageFormat::Deb => deb::write(spec, threads),
        PackageFormat::Rpm => rpm::write(spec, key),
    }
}

/// Checks a relation in the format's own syntax: Debian's `name (>= 1.0) | other`, rpm's
/// `name >= 1.0`.
pub fn check_relation(format: PackageFormat, relation: &str) -> Result<(), String> {
    match format {
        PackageFormat::Deb => names::check_relation(relation),
        PackageFormat::Rpm => {
            names::check_relation(relation).and_then(|()| rpm::check_relation(relation))
        }
    }
}

/// The entries with every parent folder added (mode 0755) and sorted by path.
fn complete(entries: &[Entry]) -> Result<BTreeMap<String, Entry>, PackageError> {
    let mut all = BTreeMap::new();
    for entry in entries {
        if all.insert(entry.dst.clone(), entry.clone()).is_some() {
            return Err(PackageError::Refused(format!(
                "two entries install {}",
                entry.dst
            )));
        }
    }
    let parents: Vec<String> = all
        .keys()
        .flat_map(|path| {
            let mut parents = Vec::new();
            let mut current = Path::new(path.as_str()).parent();
            while let Some(parent) = current.filter(|p| *p != Path::new("/")) {
                parents.push(parent.to_string_lossy().into_owned());
                current = parent.parent();
            }
            parents
        })
        .collect();
    for parent in parents {
        all.entry(parent.clone()).or_insert(Entry {
            dst: parent,
            mode: 0o755,
            content: Content::Dir,
        });
    }
    Ok(all)
}

/// Reads a file the spec names.
/// A source file's bytes, opened as [`crate::archive::open_source`] opens it (never a FIFO).
fn read(path: &Path) -> Result<Vec<u8>, PackageError> {
    let mut bytes = Vec::new();
    crate::archive::open_source(path)
        .and_then(|mut file| std::io::Read::read_to_end(&mut file, &mut bytes))
        .map_err(|e| FileError::on("read", path)(e))?;
    Ok(bytes)
}

/// The year of a Unix time.
pub fn year(unix: u64) -> String {
    rfc2822(unix).split(' ').nth(3).unwrap_or("1970").to_owned()
}

/// `Thu, 01 Jan 1970 00:00:00 +0000` for Unix seconds (the changelog's date line).
pub fn rfc2822(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix / 86_400;
    let seconds = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// gzip at level 9 without a name or time in the header (what Debian wants for man pages and
/// changelogs, and reproducible).
pub fn gzip_max(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

/// A small package for tests: `name` at `version`, one file holding the version (so two
/// versions differ), written into `dir`.
#[cfg(test)]
pub fn test_package(format: PackageFormat, dir: &Path, version: &str, extra: &str) -> PathBuf {
    let (arch, file) = match format {
        PackageFormat::Deb => ("amd64", format!("demo_{version}-1_amd64.deb")),
        PackageFormat::Rpm => ("x86_64", format!("demo-{version}-1.x86_64.rpm")),
    };
    let spec = PackageSpec {
        format,
        output: dir.join(file),
        meta: Metadata {
            name: "demo".into(),
            version: version.into(),
            release: "1".into(),
            arch: arch.into(),
            maintainer: "Test <test@example.com>".into(),
            summary: "a test package".into(),
            description: "It holds its version.".into(),
            license: "MIT".into(),
            section: "utils".into(),
            priority: "optional".into(),
            ..Metadata::default()
        },
        entries: vec![Entry {
            dst: "/usr/share/demo/version".into(),
            mode: 0o644,
            content: Content::Generated {
                bytes: format!("{version}{extra}").into_bytes(),
            },
        }],
        systemd: None,
        scripts: UserScripts::default(),
        mtime: 1_700_000_000,
        static_binaries: false,
        signed_by: None,
        compression: Compression::default(),
    };
    write(&spec, None, 1).unwrap();
    spec.output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc2822() {
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc2822(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 +0000");
        assert_eq!(rfc2822(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(year(1_700_000_000), "2023");
    }

    #[test]
    fn parents_are_added_once_and_entries_sorted() {
        let file = |dst: &str| Entry {
            dst: dst.into(),
            mode: 0o644,
            content: Content::Generated { bytes: vec![] },
        };
        let all = complete(&[file("/usr/share/doc/x/copyright"), file("/usr/bin/x")]).unwrap();
        let paths: Vec<&str> = all.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "/usr",
                "/usr/bin",
                "/usr/bin/x",
                "/usr/share",
                "/usr/share/doc",
                "/usr/share/doc/x",
                "/usr/share/doc/x/copyright"
            ]
        );
        assert!(complete(&[file("/a"), file("/a")]).is_err());
    }
}
