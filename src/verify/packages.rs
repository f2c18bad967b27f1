//! Packages and package repositories in a folder given to `verify`: every `.deb` must read
//! back with every data file matching its `md5sums`, every `.rpm` must match its own digests (and its signature, with a key); an APT
//! repository's `InRelease` must verify and every index and pool file match the sums it signs;
//! a YUM repository's `repomd.xml` must verify and every metadata file and package match. The
//! key is `--pgp-key` (proof of origin) or the repository's own `key.asc`/`key.gpg` (integrity
//! only). Everything is read through the safe relative path type: nothing outside the folder,
//! no links, no devices.

use std::io::Read;
use std::path::Path;

use super::Finding;
use crate::checksum::{self, Algorithm};
use crate::openpgp::PgpPublicKey;
use crate::package::debian;
use crate::relpath::{self, RelPath};

/// The most an index or metadata file may hold when read back.
const MAX_INDEX: u64 = 256 << 20;

/// An OpenPGP key and where it came from, which says what a good signature proves.
#[derive(Clone)]
pub(super) struct Key {
    key: PgpPublicKey,
    /// The key armored, as rpm's verifier reads it, however the file held it.
    armored: String,
    /// `None`: given with `--pgp-key`; else the file in the folder it came from.
    from_folder: Option<String>,
}

impl Key {
    /// A key from a file's bytes (armored, with or without comments before it, or binary).
    fn read(bytes: &[u8], from_folder: Option<String>) -> Result<Key, String> {
        let key = PgpPublicKey::from_bytes(bytes).map_err(|e| e.to_string())?;
        let armored = key.armored().map_err(|e| e.to_string())?;
        Ok(Key {
            key,
            armored,
            from_folder,
        })
    }

    fn note(&self) -> String {
        match &self.from_folder {
            None => format!("signed by {}", self.key.fingerprint()),
            Some(file) => format!(
                "signed by {}; integrity only: the key {file} came from the folder itself (pass --pgp-key)",
                self.key.fingerprint()
            ),
        }
    }
}

/// Every package and repository check of the folder's `files`.
pub(super) fn check(dir: &Path, files: &[RelPath], given: Option<&Key>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let loose_key = given.cloned().or_else(|| folder_key(dir, files, ""));
    for file in files {
        let name = file.as_str();
        if name.ends_with(".deb") {
            findings.push(deb(dir, file));
        } else if name.ends_with(".rpm") {
            findings.push(rpm(dir, file, loose_key.as_ref()));
        } else if let Some(prefix) = name
            .strip_suffix("InRelease")
            .filter(|p| p.ends_with('/') && p.contains("dists/"))
        {
            let root = &prefix[..prefix.rfind("dists/").unwrap_or(0)];
            let key = given.cloned().or_else(|| folder_key(dir, files, root));
            findings.extend(apt(dir, root, file, key.as_ref()));
        } else if let Some(root) = name.strip_suffix("repodata/repomd.xml") {
            let key = given.cloned().or_else(|| folder_key(dir, files, root));
            findings.extend(yum(dir, root, file, key.as_ref()));
        }
    }
    findings
}

/// `--pgp-key`'s key.
pub(super) fn given_key(path: &Path) -> Result<Key, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Key::read(&bytes, None).map_err(|e| format!("{}: {e}", path.display()))
}

/// `key.asc` (else `key.gpg`, else a single other public key file) under `root`.
fn folder_key(dir: &Path, files: &[RelPath], root: &str) -> Option<Key> {
    let candidates: Vec<&RelPath> = files
        .iter()
        .filter(|f| {
            f.as_str().strip_prefix(root).is_some_and(|rest| {
                !rest.contains('/') && (rest.ends_with(".asc") || rest == "key.gpg")
            })
        })
        .collect();
    let mut ordered: Vec<&RelPath> = candidates
        .iter()
        .copied()
        .filter(|f| f.as_str().ends_with("key.asc"))
        .collect();
    ordered.extend(
        candidates
            .iter()
            .copied()
            .filter(|f| !f.as_str().ends_with("key.asc")),
    );
    ordered.into_iter().find_map(|file| {
        let bytes = relpath::read_regular(dir, file, 1 << 20).ok()?;
        Key::read(&bytes, Some(file.to_string())).ok()
    })
}

fn finding(
    file: &dyn std::fmt::Display,
    check: &'static str,
    by: &dyn std::fmt::Display,
    result: Result<String, String>,
) -> Finding {
    let (ok, detail) = match result {
        Ok(detail) => (true, detail),
        Err(detail) => (false, detail),
    };
    Finding {
        file: file.to_string(),
        check,
        by: by.to_string(),
        ok,
        detail,
    }
}

fn deb(dir: &Path, file: &RelPath) -> Finding {
    // Opened without following links, like every file `verify` reads.
    let result = relpath::open_regular(dir, file)
        .map_err(|e| format!("cannot read: {e}"))
        .and_then(|(handle, _)| {
            debian::check_deb(handle, Path::new(file.as_str())).map_err(|e| e.to_string())
        })
        .and_then(|checked| {
            let control = &checked.control;
            let field = |f: &str| control.get(f).unwrap_or("?").to_owned();
            if control.get("Package").is_none() || control.get("Version").is_none() {
                return Err("its control file names no package or version".into());
            }
            Ok(format!(
                "{} {} {}: {} files match md5sums",
                field("Package"),
                field("Version"),
                field("Architecture"),
                checked.files
            ))
        });
    finding(file, "package", file, result)
}

fn rpm(dir: &Path, file: &RelPath, key: Option<&Key>) -> Finding {
    let result = (|| {
        // Opened once, without following links, and parsed from that handle.
        let (handle, _) =
            relpath::open_regular(dir, file).map_err(|e| format!("cannot read: {e}"))?;
        let package = rpm::Package::parse(&mut std::io::BufReader::new(handle))
            .map_err(|e| format!("not an rpm shipit can read: {e}"))?;
        package
            .verify_digests()
            .map_err(|e| format!("its digests do not match: {e}"))?;
        let nevra = package
            .metadata
            .get_nevra()
            .map(|n| n.to_string())
            .unwrap_or_default();
        match key {
            Some(key) => {
                let verifier =
                    rpm::signature::pgp::Verifier::from_asc_bytes(key.armored.as_bytes())
                        .map_err(|e| format!("the key: {e}"))?;
                package
                    .verify_signature(verifier)
                    .map_err(|e| format!("its signature does not verify: {e}"))?;
                Ok(format!("{nevra}: digests match, {}", key.note()))
            }
            None => Ok(format!(
                "{nevra}: digests match; signature not checked (no OpenPGP key: pass --pgp-key)"
            )),
        }
    })();
    finding(file, "package", file, result)
}

/// The SHA-256 and size of `rel` under `dir`, against what an index says.
fn matches(dir: &Path, rel: &str, sha256: &str, size: Option<u64>) -> Result<String, String> {
    let path = RelPath::new(rel).map_err(|e| e.to_string())?;
    let (file, len) = relpath::open_regular(dir, &path).map_err(|e| format!("cannot read: {e}"))?;
    if size.is_some_and(|s| s != len) {
        return Err(format!("{len} bytes, the index says {}", size.unwrap_or(0)));
    }
    let got = checksum::hash_reader(std::io::BufReader::new(file), Algorithm::Sha256)
        .map_err(|e| format!("cannot read: {e}"))?;
    if got.eq_ignore_ascii_case(sha256) {
        Ok("sha256 matches".into())
    } else {
        Err("content does not match the index's SHA-256".into())
    }
}

fn apt(dir: &Path, root: &str, inrelease: &RelPath, key: Option<&Key>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let Some(key) = key else {
        findings.push(finding(
            inrelease,
            "signature",
            inrelease,
            Err("no OpenPGP key: pass --pgp-key, or keep key.asc in the repository".into()),
        ));
        return findings;
    };
    let release = relpath::read_regular(dir, inrelease, MAX_INDEX)
        .map_err(|e| format!("cannot read: {e}"))
        .and_then(|bytes| String::from_utf8(bytes).map_err(|_| "not text".to_string()))
        .and_then(|text| key.key.verify_cleartext(&text).map_err(|e| e.to_string()));
    let text = match release {
        Ok(text) => {
            findings.push(finding(inrelease, "signature", inrelease, Ok(key.note())));
            text
        }
        Err(e) => {
            findings.push(finding(inrelease, "signature", inrelease, Err(e)));
            return findings;
        }
    };
    let suite_dir = inrelease.as_str().trim_end_matches("InRelease");
    findings.extend(detached_release(dir, suite_dir, key));
    let Ok(stanzas) = debian::parse(&text) else {
        findings.push(finding(
            inrelease,
            "index",
            inrelease,
            Err("the signed Release is not deb822".into()),
        ));
        return findings;
    };
    let sums = stanzas
        .first()
        .and_then(|s| s.get("SHA256"))
        .unwrap_or_default()
        .to_owned();
    for line in sums.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [sha256, size, index] = parts[..] else {
            findings.push(finding(
                inrelease,
                "index",
                inrelease,
                Err(format!("not `sha256 size path`: {line:?}")),
            ));
            continue;
        };
        let rel = format!("{suite_dir}{index}");
        let result = matches(dir, &rel, sha256, size.parse().ok());
        let good = result.is_ok();
        findings.push(finding(&rel, "index", inrelease, result));
        if good && index.ends_with("/Packages") {
            findings.extend(pool(dir, root, &rel));
        }
    }
    findings
}

/// `Release` and `Release.gpg` beside `InRelease` (what older apt reads): when either is there,
/// the detached signature must verify over `Release`.
fn detached_release(dir: &Path, suite_dir: &str, key: &Key) -> Option<Finding> {
    let release = RelPath::new(&format!("{suite_dir}Release")).ok()?;
    let signature = RelPath::new(&format!("{suite_dir}Release.gpg")).ok()?;
    let missing = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let result = match (
        relpath::read_regular(dir, &release, MAX_INDEX),
        relpath::read_regular(dir, &signature, 1 << 20),
    ) {
        (Err(a), Err(b)) if missing(&a) && missing(&b) => return None,
        (Ok(text), Ok(sig)) => key
            .key
            .verify_detached(&text, &sig)
            .map(|()| key.note())
            .map_err(|e| e.to_string()),
        (Err(e), _) => Err(format!("cannot read {release}: {e}")),
        (_, Err(e)) => Err(format!("cannot read {signature}: {e}")),
    };
    Some(finding(&release, "signature", &signature, result))
}

/// Every package a verified `Packages` index lists, against its SHA-256.
fn pool(dir: &Path, root: &str, index: &str) -> Vec<Finding> {
    let Ok(path) = RelPath::new(index) else {
        return Vec::new();
    };
    let text = relpath::read_regular(dir, &path, MAX_INDEX)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    let Ok(stanzas) = debian::parse(&text) else {
        return vec![finding(&index, "index", &index, Err("not deb822".into()))];
    };
    stanzas
        .iter()
        .map(|stanza| {
            let filename = stanza.get("Filename").unwrap_or_default();
            let rel = format!("{root}{filename}");
            let result = match stanza.get("SHA256") {
                Some(sha256) => matches(
                    dir,
                    &rel,
                    sha256,
                    stanza.get("Size").and_then(|s| s.parse().ok()),
                ),
                None => Err("the index gives no SHA256".into()),
            };
            finding(&rel, "checksum", &index, result)
        })
        .collect()
}

fn yum(dir: &Path, root: &str, repomd: &RelPath, key: Option<&Key>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let text = match relpath::read_regular(dir, repomd, MAX_INDEX).map_err(|e| e.to_string()) {
        Ok(bytes) => bytes,
        Err(e) => {
            return vec![finding(
                repomd,
                "signature",
                repomd,
                Err(format!("cannot read: {e}")),
            )];
        }
    };
    let signature_name = format!("{repomd}.asc");
    let signature = RelPath::new(&signature_name)
        .ok()
        .and_then(|p| relpath::read_regular(dir, &p, 1 << 20).ok());
    let verified = match (key, signature) {
        (None, _) => {
            Err("no OpenPGP key: pass --pgp-key, or keep key.asc in the repository".to_string())
        }
        (Some(_), None) => Err(format!("no signature: {signature_name} is missing")),
        (Some(key), Some(signature)) => key
            .key
            .verify_detached(&text, &signature)
            .map(|()| key.note())
            .map_err(|e| e.to_string()),
    };
    let good = verified.is_ok();
    findings.push(finding(repomd, "signature", &signature_name, verified));
    if !good {
        return findings;
    }
    let text = String::from_utf8_lossy(&text);
    let data = regex::Regex::new(r#"(?s)<data type="([a-z_]+)">.*?<checksum type="sha256">([0-9a-fA-F]{64})</checksum>.*?<location href="([^"]+)"/>"#).expect("a valid pattern");
    for found in data.captures_iter(&text) {
        let (kind, sha256, href) = (&found[1], &found[2], &found[3]);
        let rel = format!("{root}{href}");
        let result = matches(dir, &rel, sha256, None);
        let good = result.is_ok();
        findings.push(finding(&rel, "index", repomd, result));
        if good && kind == "primary" {
            findings.extend(yum_packages(dir, root, &rel));
        }
    }
    findings
}

/// Every package a verified primary metadata file lists, against its SHA-256.
fn yum_packages(dir: &Path, root: &str, primary: &str) -> Vec<Finding> {
    let Ok(path) = RelPath::new(primary) else {
        return Vec::new();
    };
    let mut xml = String::new();
    let read = relpath::read_regular(dir, &path, MAX_INDEX)
        .map_err(|e| e.to_string())
        .and_then(|gz| {
            flate2::read::GzDecoder::new(&gz[..])
                .take(MAX_INDEX)
                .read_to_string(&mut xml)
                .map_err(|e| e.to_string())
        });
    if let Err(e) = read {
        return vec![finding(
            &primary,
            "index",
            &primary,
            Err(format!("cannot read: {e}")),
        )];
    }
    let package = regex::Regex::new(r#"(?s)<package type="rpm">.*?<checksum type="sha256" pkgid="YES">([0-9a-fA-F]{64})</checksum>.*?<location href="([^"]+)"/>"#).expect("a valid pattern");
    package
        .captures_iter(&xml)
        .map(|found| {
            let rel = format!("{root}{}", &found[2]);
            let result = matches(dir, &rel, &found[1], None);
            finding(&rel, "checksum", &primary, result)
        })
        .collect()
}
