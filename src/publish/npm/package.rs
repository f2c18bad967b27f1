//! The npm packages of a release, built in memory: one per platform (`os`, `cpu`, `libc`) with
//! its binaries under `bin/`, and the root package with `optionalDependencies` on all of them
//! and a launcher per binary. Tarballs are laid out as `npm pack` lays them out (`package/`,
//! npm's fixed 1985 date, no owners), so the same build gives the same bytes and so the same
//! integrity, which is how a re-run recognises what it published before.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use serde_json::{Map, Value, json};
use sha2::Digest;

use super::NpmError;
use crate::error::Error;
use crate::manifest::{ArtifactKind, Manifest};
use crate::targets::Target;

/// The date `npm pack` gives every entry (1985-10-26T08:15:00Z).
const NPM_EPOCH: u64 = 499_162_500;

/// A package ready to publish.
#[derive(Debug, Clone)]
pub struct NpmPackage {
    /// Its name.
    pub name: String,
    /// Its `package.json` (what the registry lists as the version's manifest).
    pub manifest: Value,
    /// The `.tgz`.
    pub tarball: Vec<u8>,
    /// `sha512-<base64>`, as the registry records it.
    pub integrity: String,
    /// SHA-1, lowercase hex (`dist.shasum`).
    pub shasum: String,
}

/// One platform package: where npm installs it, and the binaries it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// Package name (`@acme/demo-linux-x64`).
    pub package: String,
    /// npm's `os` (`process.platform`).
    pub os: &'static str,
    /// npm's `cpu` values (`process.arch`).
    pub cpu: Vec<&'static str>,
    /// npm's `libc`, when the binaries need one.
    pub libc: Option<&'static str>,
    /// The binaries: file name inside `bin/`, path under dist.
    pub binaries: Vec<(String, String)>,
}

/// What the root and platform packages share.
#[derive(Debug, Clone)]
pub struct Common {
    /// The root package's name.
    pub name: String,
    /// The version.
    pub version: String,
    /// One-line description.
    pub description: String,
    /// SPDX license.
    pub license: Option<String>,
    /// Home page.
    pub homepage: Option<String>,
    /// `https://github.com/owner/name`, when there is one.
    pub repository: Option<String>,
}

impl Common {
    /// The fields every package.json carries.
    fn fields(&self, name: &str, description: &str) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("name".into(), json!(name));
        fields.insert("version".into(), json!(self.version));
        fields.insert("description".into(), json!(description));
        if let Some(license) = &self.license {
            fields.insert("license".into(), json!(license));
        }
        if let Some(homepage) = &self.homepage {
            fields.insert("homepage".into(), json!(homepage));
        }
        if let Some(repository) = &self.repository {
            fields.insert(
                "repository".into(),
                json!({"type": "git", "url": format!("git+{repository}.git")}),
            );
        }
        fields
    }
}

/// npm's `os` for a target's OS.
fn npm_os(os: &str) -> Option<&'static str> {
    Some(match os {
        "linux" => "linux",
        "darwin" => "darwin",
        "windows" => "win32",
        "freebsd" => "freebsd",
        "netbsd" => "netbsd",
        "illumos" => "sunos",
        _ => return None,
    })
}

/// npm's `cpu` values for a target's architecture.
fn npm_cpu(arch: &str) -> Option<Vec<&'static str>> {
    Some(match arch {
        "x64" => vec!["x64"],
        "arm64" => vec!["arm64"],
        "universal" => vec!["x64", "arm64"],
        "x86" => vec!["ia32"],
        "arm" => vec!["arm"],
        "riscv64" => vec!["riscv64"],
        "ppc64le" => vec!["ppc64"],
        "s390x" => vec!["s390x"],
        "loong64" => vec!["loong64"],
        _ => return None,
    })
}

/// The platform packages of the build's binaries (only those in `only`, when given), named
/// `<name>-<os>-<cpu>`; a Linux architecture built for both glibc and musl gets `-gnu` and
/// `-musl` packages with npm's `libc` field, while a musl-only build (static) has no `libc`,
/// so it installs on either.
pub fn platforms(
    name: &str,
    manifest: &Manifest,
    only: Option<&[String]>,
) -> Result<Vec<Platform>, Error> {
    let mut by_target: BTreeMap<String, (Target, Vec<(String, String)>)> = BTreeMap::new();
    for artifact in &manifest.artifacts {
        if artifact.kind != ArtifactKind::Binary {
            continue;
        }
        let Some(target) = artifact
            .target
            .as_deref()
            .and_then(|t| Target::parse(t, "").ok())
        else {
            continue;
        };
        let stem = artifact
            .name
            .strip_suffix(target.exe_suffix())
            .unwrap_or(&artifact.name);
        if only.is_some_and(|only| !only.iter().any(|b| b == stem)) {
            continue;
        }
        by_target
            .entry(target.triple.clone())
            .or_insert_with(|| (target.clone(), Vec::new()))
            .1
            .push((artifact.name.clone(), artifact.path.clone()));
    }
    let libc_of = |t: &Target| {
        (t.os == "linux").then(|| {
            if t.triple.contains("-musl") {
                "musl"
            } else {
                "glibc"
            }
        })
    };
    let mut platforms: Vec<Platform> = by_target
        .into_values()
        .filter_map(|(target, mut binaries)| {
            binaries.sort();
            let os = npm_os(&target.os)?;
            Some(Platform {
                package: format!("{name}-{os}-{}", target.arch),
                os,
                cpu: npm_cpu(&target.arch)?,
                libc: libc_of(&target),
                binaries,
            })
        })
        .collect();
    let siblings: Vec<usize> = platforms
        .iter()
        .map(|p| {
            platforms
                .iter()
                .filter(|q| q.os == p.os && q.cpu == p.cpu)
                .count()
        })
        .collect();
    for (platform, siblings) in platforms.iter_mut().zip(siblings) {
        match platform.libc {
            // Both libcs built for this OS and architecture: each package says which it needs.
            Some(libc) if siblings > 1 => {
                platform
                    .package
                    .push_str(if libc == "musl" { "-musl" } else { "-gnu" })
            }
            // A lone musl build is static: it runs on glibc systems too.
            Some("musl") => platform.libc = None,
            _ => {}
        }
    }
    let unique: std::collections::BTreeSet<&String> =
        platforms.iter().map(|p| &p.package).collect();
    if unique.len() != platforms.len() {
        return Err(Error::Usage(
            "[release.npm]: two targets map to one npm platform; build one target per OS, architecture and libc".into(),
        ));
    }
    Ok(platforms)
}

/// A platform package: its binaries under `bin/`, executable.
pub fn platform_package(
    common: &Common,
    platform: &Platform,
    dist: &Path,
) -> Result<NpmPackage, NpmError> {
    let mut fields = common.fields(
        &platform.package,
        &format!(
            "The {} build of {} (installed by it; not meant to be installed alone)",
            platform
                .package
                .rsplit_once(&format!("{}-", common.name))
                .map_or("", |(_, s)| s),
            common.name
        ),
    );
    fields.insert("os".into(), json!([platform.os]));
    fields.insert("cpu".into(), json!(platform.cpu));
    if let Some(libc) = platform.libc {
        fields.insert("libc".into(), json!([libc]));
    }
    fields.insert("files".into(), json!(["bin"]));
    // Package managers that keep packages zipped (Yarn PnP) must unpack this one to run it.
    fields.insert("preferUnplugged".into(), json!(true));
    let mut files = Vec::new();
    for (file, path) in &platform.binaries {
        let bytes = std::fs::read(dist.join(path)).map_err(|e| NpmError::Read(path.clone(), e))?;
        files.push((format!("bin/{file}"), bytes, 0o755));
    }
    pack(&platform.package, Value::Object(fields), files)
}

/// The root package: `optionalDependencies` on every platform package at this version, and
/// `bin/<name>.js` for each binary.
pub fn root_package(
    common: &Common,
    platforms: &[Platform],
    keywords: &[String],
    readme: Option<Vec<u8>>,
) -> Result<NpmPackage, NpmError> {
    let mut fields = common.fields(&common.name, &common.description);
    if !keywords.is_empty() {
        fields.insert("keywords".into(), json!(keywords));
    }
    let mut names: Vec<&str> = platforms
        .iter()
        .flat_map(|p| &p.binaries)
        .map(|(file, _)| file.strip_suffix(".exe").unwrap_or(file))
        .collect();
    names.sort();
    names.dedup();
    let bin: Map<String, Value> = names
        .iter()
        .map(|n| ((*n).to_owned(), json!(format!("bin/{n}.js"))))
        .collect();
    fields.insert("bin".into(), Value::Object(bin));
    let optional: Map<String, Value> = platforms
        .iter()
        .map(|p| (p.package.clone(), json!(common.version)))
        .collect();
    fields.insert("optionalDependencies".into(), Value::Object(optional));
    fields.insert("files".into(), json!(["bin"]));
    let mut files: Vec<(String, Vec<u8>, u32)> = names
        .iter()
        .map(|n| {
            (
                format!("bin/{n}.js"),
                launcher(n, platforms).into_bytes(),
                0o755,
            )
        })
        .collect();
    if let Some(readme) = readme {
        files.push(("README.md".into(), readme, 0o644));
    }
    pack(&common.name, Value::Object(fields), files)
}

/// The launcher of binary `bin`: the platform table, most specific first (a libc-specific
/// package before a general one).
pub fn launcher(bin: &str, platforms: &[Platform]) -> String {
    let mut table: Vec<&Platform> = platforms.iter().collect();
    table.sort_by_key(|p| (p.libc.is_none(), p.cpu.len(), p.package.clone()));
    let table: Vec<Value> = table
        .iter()
        .map(|p| json!({"package": p.package, "os": p.os, "cpu": p.cpu, "libc": p.libc}))
        .collect();
    // JSON text is a JavaScript literal; names were checked, so nothing here is code.
    include_str!("launcher.js")
        .replace("__BIN__", &json!(bin).to_string())
        .replace("__PLATFORMS__", &format!("{:#}", Value::Array(table)))
}

/// A package of `package.json` and `files` (path, bytes, mode), packed.
fn pack(
    name: &str,
    manifest: Value,
    mut files: Vec<(String, Vec<u8>, u32)>,
) -> Result<NpmPackage, NpmError> {
    let json_text = format!("{manifest:#}\n");
    files.push(("package.json".into(), json_text.into_bytes(), 0o644));
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let tarball = tarball(&files).map_err(|e| NpmError::Pack(name.to_string(), e))?;
    let integrity = format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(&tarball))
    );
    let shasum = hex::encode(sha1::Sha1::digest(&tarball));
    Ok(NpmPackage {
        name: name.to_owned(),
        manifest,
        tarball,
        integrity,
        shasum,
    })
}

/// A gzipped ustar archive of `files` under `package/`, as `npm pack` writes one.
fn tarball(files: &[(String, Vec<u8>, u32)]) -> std::io::Result<Vec<u8>> {
    let gz = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::best());
    let mut builder = tar::Builder::new(gz);
    for (path, bytes, mode) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(NPM_EPOCH);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, format!("package/{path}"), bytes.as_slice())?;
    }
    let mut gz = builder.into_inner()?;
    gz.flush()?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Artifact;

    fn binary(target: &str, name: &str) -> Artifact {
        let t = Target::parse(target, "").unwrap();
        Artifact {
            name: name.into(),
            path: format!("{target}/{name}"),
            kind: ArtifactKind::Binary,
            target: Some(target.into()),
            os: Some(t.os),
            arch: Some(t.arch),
            size: 1,
            sha256: String::new(),
        }
    }

    fn manifest(artifacts: Vec<Artifact>) -> Manifest {
        serde_json::from_value(json!({
            "schema": 1, "project": "demo", "version": "1.0.0", "tag": "v1.0.0",
            "commit": "0", "date": "2026-01-01T00:00:00Z", "artifacts": artifacts,
        }))
        .unwrap()
    }

    #[test]
    fn a_lone_musl_build_has_no_libc_and_two_libcs_get_their_own_packages() {
        let m = manifest(vec![
            binary("linux-x64-musl", "demo"),
            binary("linux-arm64-musl", "demo"),
            binary("linux-arm64", "demo"),
            binary("windows-x64", "demo.exe"),
            binary("darwin-universal", "demo"),
        ]);
        let platforms = platforms("@acme/demo", &m, None).unwrap();
        let mut summary: Vec<(&str, Vec<&str>, Option<&str>)> = platforms
            .iter()
            .map(|p| (p.package.as_str(), p.cpu.clone(), p.libc))
            .collect();
        summary.sort();
        assert_eq!(
            summary,
            [
                ("@acme/demo-darwin-universal", vec!["x64", "arm64"], None),
                ("@acme/demo-linux-arm64-gnu", vec!["arm64"], Some("glibc")),
                ("@acme/demo-linux-arm64-musl", vec!["arm64"], Some("musl")),
                ("@acme/demo-linux-x64", vec!["x64"], None),
                ("@acme/demo-win32-x64", vec!["x64"], None),
            ]
        );
        assert_eq!(
            platforms.iter().find(|p| p.os == "win32").unwrap().binaries,
            [("demo.exe".to_string(), "windows-x64/demo.exe".to_string())]
        );
    }

    #[test]
    fn the_same_files_pack_to_the_same_bytes_under_package() {
        let common = Common {
            name: "@acme/demo".into(),
            version: "1.0.0".into(),
            description: "A demo".into(),
            license: Some("MIT".into()),
            homepage: None,
            repository: Some("https://github.com/acme/demo".into()),
        };
        let platform = Platform {
            package: "@acme/demo-linux-x64".into(),
            os: "linux",
            cpu: vec!["x64"],
            libc: None,
            binaries: vec![("demo".into(), "demo".into())],
        };
        let one = root_package(&common, std::slice::from_ref(&platform), &[], None).unwrap();
        let two = root_package(&common, std::slice::from_ref(&platform), &[], None).unwrap();
        assert_eq!(one.tarball, two.tarball);
        assert!(one.integrity.starts_with("sha512-"), "{}", one.integrity);
        assert_eq!(one.shasum.len(), 40);
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(one.tarball.as_slice()));
        let entries: Vec<(String, u32, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("package/bin/demo.js".into(), 0o755, NPM_EPOCH),
                ("package/package.json".into(), 0o644, NPM_EPOCH),
            ]
        );
        assert_eq!(one.manifest["bin"], json!({"demo": "bin/demo.js"}));
        assert_eq!(
            one.manifest["optionalDependencies"],
            json!({"@acme/demo-linux-x64": "1.0.0"})
        );
    }

    #[test]
    fn the_launcher_embeds_names_as_json_literals() {
        let platform = Platform {
            package: "@acme/demo-linux-x64".into(),
            os: "linux",
            cpu: vec!["x64"],
            libc: None,
            binaries: vec![],
        };
        let text = launcher("de\"mo", &[platform]);
        assert!(text.contains(r#"const BIN = "de\"mo";"#), "{text}");
        assert!(
            text.contains(r#""package": "@acme/demo-linux-x64""#),
            "{text}"
        );
        assert!(!text.contains("__"), "{text}");
    }
}
