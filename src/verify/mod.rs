//! Verifying a release folder or one file: every checksum file (`*SUMS`, `*.sha256`) and
//! signature (`*.minisig`), with a key given (proof of origin) or the one in the folder
//! (integrity only); and the Linux packages and APT/YUM repositories it holds
//! ([`packages`]), and the signed provenance of its artifacts ([`provenance`]). A folder is
//! untrusted: paths a checksum line names outside it, links,
//! FIFOs and devices fail and are never read.

use std::path::Path;

use serde::Serialize;

use crate::checksum::{self, Algorithm};
use crate::error::Error;
use crate::minisign::{PublicKey, Signature};
use crate::relpath::{self, RelPath};

mod image;
mod packages;
mod provenance;
pub mod sigstore;

pub use image::image;

/// One check and its result.
#[derive(Debug, Serialize)]
pub struct Finding {
    /// The file checked.
    pub file: String,
    /// `checksum` or `signature`.
    pub check: &'static str,
    /// Where the expectation came from (the checksum or signature file).
    pub by: String,
    /// Whether it held.
    pub ok: bool,
    /// What was wrong, or the trusted comment of a good signature.
    pub detail: String,
}

/// What `verify` found.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Every check and its result.
    pub checks: Vec<Finding>,
    /// Files of the folder that no check covered: no checksum file, signature, index or
    /// provenance names them, and they are no key. Their content is not vouched for.
    pub unlisted: Vec<String>,
}

/// Every check of `path`: a folder (with `key`, or the `.pub` in it; packages and repositories
/// with `pgp_key`, or the repository's own key), or one file (with `key`, through its
/// `.minisig` or a signed checksum file beside it).
pub fn verify(
    path: &Path,
    key: Option<&Path>,
    pgp_key: Option<&Path>,
    keyless: &sigstore::Options,
) -> Result<Report, Error> {
    let mut unlisted = Vec::new();
    let findings = if path.is_dir() {
        let pgp_key = pgp_key
            .map(packages::given_key)
            .transpose()
            .map_err(Error::Usage)?;
        let files = release_files(path);
        let mut findings = verify_folder(path, &files, key)?;
        findings.extend(provenance::check(
            path,
            &files,
            folder_key(path, &files, key)?.as_ref(),
        ));
        findings.extend(packages::check(path, &files, pgp_key.as_ref()));
        findings.extend(sigstore::check(path, &files, keyless)?);
        unlisted = uncovered(&files, &findings);
        findings
    } else if path.is_file()
        && key.is_none()
        && (keyless.policy.is_set()
            || Path::new(&format!("{}.sigstore.json", path.display())).exists())
    {
        vec![sigstore::check_file(path, None, keyless)?]
    } else if path.is_file() {
        let key = key.ok_or_else(|| {
            Error::Usage("verifying a single file needs its public key: --key <FILE>".into())
        })?;
        let key = read_key(key)?;
        if crate::tasks::signature_path(path).exists() {
            vec![verify_signature(path, &key, path)?]
        } else {
            verify_through_sums(path, &key)?
        }
    } else {
        return Err(Error::Usage(format!("{} does not exist", path.display())));
    };
    if findings.is_empty() {
        return Err(Error::Usage(format!(
            "{} holds no checksum files (`*SUMS`, `*.sha256`), signatures (`*.minisig`, `*.sigstore.json`), provenance, packages or repositories",
            path.display()
        )));
    }
    Ok(Report {
        checks: findings,
        unlisted,
    })
}

/// The files no finding names (as checked or as what checked it), keys aside: a key is what
/// checks, not what is checked.
fn uncovered(files: &[RelPath], findings: &[Finding]) -> Vec<String> {
    let covered: std::collections::BTreeSet<&str> = findings
        .iter()
        .flat_map(|f| [f.file.as_str(), f.by.as_str()])
        .collect();
    let is_key = |name: &str| {
        name.ends_with(".pub")
            || name
                .rsplit('/')
                .next()
                .is_some_and(|last| last == "key.asc" || last == "key.gpg")
    };
    files
        .iter()
        .map(RelPath::as_str)
        .filter(|name| !covered.contains(name) && !is_key(name))
        .map(str::to_owned)
        .collect()
}

fn read_key(path: &Path) -> Result<PublicKey, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
    PublicKey::from_text(&text).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
}

/// The longest checksum or signature file read from a folder being verified.
const MAX_LIST_LEN: u64 = 16 << 20;

/// Reads a small text file under `root` (no links followed, regular files only, capped).
fn read_small(root: &Path, rel: &RelPath) -> std::io::Result<String> {
    let bytes = relpath::read_regular(root, rel, MAX_LIST_LEN)?;
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The key a folder is checked with: `key` when given, else the folder's one `.pub` file;
/// `None` when there is neither. Several `.pub` files are a usage error.
fn folder_key(
    dir: &Path,
    files: &[RelPath],
    key: Option<&Path>,
) -> Result<Option<(PublicKey, KeyOrigin)>, Error> {
    if let Some(path) = key {
        return Ok(Some((read_key(path)?, KeyOrigin::Given)));
    }
    let keys: Vec<&RelPath> = files
        .iter()
        .filter(|p| p.as_str().ends_with(".pub"))
        .collect();
    match keys.as_slice() {
        [] => Ok(None),
        [one] => {
            let text = read_small(dir, one)
                .map_err(|e| Error::Usage(format!("cannot read {one}: {e}")))?;
            let key =
                PublicKey::from_text(&text).map_err(|e| Error::Usage(format!("{one}: {e}")))?;
            Ok(Some((key, KeyOrigin::Folder(one.to_string()))))
        }
        _ => Err(Error::Usage(format!(
            "{} has several public keys; choose one with --key <FILE>",
            dir.display()
        ))),
    }
}

/// Where the public key came from, which says what a good signature proves.
enum KeyOrigin {
    /// `--key`: signatures prove who made the release.
    Given,
    /// A `.pub` inside the folder: whoever could change the files could change the key too.
    Folder(String),
}

/// The folder's regular files (links are not followed), without `logs/`, which is not part of
/// a release.
fn release_files(dir: &Path) -> Vec<RelPath> {
    let mut files: Vec<RelPath> = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            let rel = e.path().strip_prefix(dir).ok()?.to_str()?;
            RelPath::new(rel).ok()
        })
        .filter(|p| p.components().next() != Some("logs"))
        .collect();
    files.sort();
    files
}

fn verify_folder(dir: &Path, files: &[RelPath], key: Option<&Path>) -> Result<Vec<Finding>, Error> {
    let mut findings = Vec::new();

    for sums in files.iter().filter(|p| is_checksum_file(p.as_str())) {
        let text = match read_small(dir, sums) {
            Ok(text) => text,
            Err(e) => {
                findings.push(Finding::failed(
                    sums,
                    "checksum",
                    sums,
                    format!("cannot read: {e}"),
                ));
                continue;
            }
        };
        let folder = sums.as_str().rsplit_once('/').map(|(f, _)| f);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Some((want, name)) = checksum::parse_line(line) else {
                let detail = format!(
                    "not a checksum line: {:?}",
                    line.chars().take(200).collect::<String>()
                );
                findings.push(Finding::failed(sums, "checksum", sums, detail));
                continue;
            };
            let listed = match folder {
                Some(folder) => format!("{folder}/{name}"),
                None => name.to_string(),
            };
            let target = match RelPath::new(&listed) {
                Ok(target) => target,
                Err(e) => {
                    findings.push(Finding::failed(
                        &listed.escape_debug(),
                        "checksum",
                        sums,
                        e.to_string(),
                    ));
                    continue;
                }
            };
            let algorithm = match want.len() {
                64 => Algorithm::Sha256,
                128 => Algorithm::Sha512,
                _ => {
                    findings.push(Finding::failed(
                        &target,
                        "checksum",
                        sums,
                        "unknown digest length".into(),
                    ));
                    continue;
                }
            };
            let hashed = relpath::open_regular(dir, &target).and_then(|(file, _)| {
                checksum::hash_reader(std::io::BufReader::new(file), algorithm)
            });
            let (ok, detail) = match hashed {
                Ok(got) if got.eq_ignore_ascii_case(want) => {
                    (true, format!("{algorithm:?} matches").to_lowercase())
                }
                Ok(_) => (false, "content does not match its checksum".to_string()),
                Err(e) => (false, format!("cannot read: {e}")),
            };
            findings.push(Finding {
                file: target.to_string(),
                check: "checksum",
                by: sums.to_string(),
                ok,
                detail,
            });
        }
    }

    let signatures: Vec<&RelPath> = files
        .iter()
        .filter(|p| p.as_str().ends_with(".minisig"))
        .collect();
    let checksum_files: Vec<&RelPath> = files
        .iter()
        .filter(|p| is_checksum_file(p.as_str()))
        .collect();
    let Some((key, origin)) = folder_key(dir, files, key)? else {
        if signatures.is_empty() {
            return Ok(findings);
        }
        return Err(Error::Usage(format!(
            "{} has signatures but no public key; pass --key <FILE>",
            dir.display()
        )));
    };
    for sig in &signatures {
        let signed = sig.as_str().trim_end_matches(".minisig");
        let mut finding = match RelPath::new(signed) {
            Ok(signed) => verify_signature_in(dir, &signed, sig, &key),
            Err(e) => Finding::failed(&signed, "signature", sig, e.to_string()),
        };
        if let (true, KeyOrigin::Folder(pub_file)) = (finding.ok, &origin) {
            finding.detail.push_str(&format!(
                "; integrity only: the key {pub_file} came from the folder itself, so this does \
                 not prove who made the release (pass --key)"
            ));
        }
        findings.push(finding);
    }
    // With a key given, an unsigned checksum file proves nothing: whoever changed an archive
    // could rewrite it too.
    if matches!(origin, KeyOrigin::Given) {
        for sums in checksum_files {
            let sig = format!("{sums}.minisig");
            if !signatures.iter().any(|s| s.as_str() == sig) {
                findings.push(Finding::failed(
                    sums,
                    "signature",
                    &sig,
                    "no signature: with --key every checksum file must be signed".into(),
                ));
            }
        }
    }
    Ok(findings)
}

impl Finding {
    fn failed(
        file: &dyn std::fmt::Display,
        check: &'static str,
        by: &dyn std::fmt::Display,
        detail: String,
    ) -> Finding {
        Finding {
            file: file.to_string(),
            check,
            by: by.to_string(),
            ok: false,
            detail,
        }
    }
}

/// Checks `signed` (under `dir`) against `sig`, opening both without following links.
fn verify_signature_in(dir: &Path, signed: &RelPath, sig: &RelPath, key: &PublicKey) -> Finding {
    let mut finding = Finding::failed(signed, "signature", sig, String::new());
    let signature = match read_small(dir, sig)
        .map_err(|e| format!("cannot read the signature: {e}"))
        .and_then(|text| Signature::from_text(&text).map_err(|e| e.to_string()))
    {
        Ok(signature) => signature,
        Err(detail) => {
            finding.detail = detail;
            return finding;
        }
    };
    match relpath::open_regular(dir, signed) {
        Err(e) => finding.detail = format!("cannot read: {e}"),
        Ok((data, _)) => check_signature(&mut finding, data, &signature, key),
    }
    finding
}

fn check_signature(
    finding: &mut Finding,
    data: std::fs::File,
    signature: &Signature,
    key: &PublicKey,
) {
    match key.verify(std::io::BufReader::new(data), signature) {
        Ok(comment) => {
            finding.ok = true;
            finding.detail = format!("signed by key {} ({comment})", key.key_id());
        }
        Err(e) => finding.detail = e.to_string(),
    }
}

/// A file without its own `.minisig`, through a checksum file beside it that lists it and is
/// signed by `key`: the checksum file's signature and the file's digest are both checked.
fn verify_through_sums(file: &Path, key: &PublicKey) -> Result<Vec<Finding>, Error> {
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Usage(format!("{} has no usable file name", file.display())))?;
    let mut sums: Vec<RelPath> = std::fs::read_dir(dir)
        .map_err(|e| Error::Usage(format!("cannot list {}: {e}", dir.display())))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| RelPath::file_name(n).ok())
        })
        .filter(|p| is_checksum_file(p.as_str()))
        .collect();
    sums.sort();
    for list in sums {
        let Ok(text) = read_small(dir, &list) else {
            continue;
        };
        let Some(want) = text
            .lines()
            .filter_map(checksum::parse_line)
            .find(|(_, listed)| *listed == name)
            .map(|(want, _)| want.to_string())
        else {
            continue;
        };
        let sig = RelPath::file_name(&format!("{list}.minisig"))
            .map_err(|e| Error::Internal(e.to_string()))?;
        let mut signed = verify_signature_in(dir, &list, &sig, key);
        if !dir.join(sig.as_str()).exists() {
            signed.detail = format!("{list} lists {name} but is not signed");
        }
        let algorithm = if want.len() == 128 {
            Algorithm::Sha512
        } else {
            Algorithm::Sha256
        };
        let target = RelPath::file_name(name).map_err(|e| Error::Usage(e.to_string()))?;
        let hashed = relpath::open_regular(dir, &target)
            .and_then(|(f, _)| checksum::hash_reader(std::io::BufReader::new(f), algorithm));
        let mut digest = Finding::failed(&target, "checksum", &list, String::new());
        match hashed {
            Ok(got) if got.eq_ignore_ascii_case(&want) => {
                digest.ok = true;
                digest.detail = format!("{algorithm:?} matches").to_lowercase();
            }
            Ok(_) => digest.detail = "content does not match its checksum".into(),
            Err(e) => digest.detail = format!("cannot read: {e}"),
        }
        return Ok(vec![signed, digest]);
    }
    Err(Error::Usage(format!(
        "{} has no {name}.minisig, and no checksum file beside it lists it; sign it, or verify the folder",
        file.display()
    )))
}

/// `SHA256SUMS`, `SHA512SUMS`, any `*SUMS`, or `<file>.sha256` / `.sha512`.
fn is_checksum_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with("SUMS") || name.ends_with(".sha256") || name.ends_with(".sha512")
}

/// Checks `file` against its `.minisig` (or `signature`, when given explicitly as the file).
fn verify_signature(file: &Path, key: &PublicKey, by: &Path) -> Result<Finding, Error> {
    let sig_path = if by == file {
        crate::tasks::signature_path(file)
    } else {
        by.to_path_buf()
    };
    let mut finding = Finding {
        file: file.display().to_string(),
        check: "signature",
        by: sig_path.display().to_string(),
        ok: false,
        detail: String::new(),
    };
    let text = match std::fs::read_to_string(&sig_path) {
        Ok(text) => text,
        Err(e) => {
            finding.detail = format!("cannot read the signature: {e}");
            return Ok(finding);
        }
    };
    let signature = match Signature::from_text(&text) {
        Ok(s) => s,
        Err(e) => {
            finding.detail = e.to_string();
            return Ok(finding);
        }
    };
    match std::fs::File::open(file) {
        Err(e) => finding.detail = format!("cannot read: {e}"),
        Ok(data) => check_signature(&mut finding, data, &signature, key),
    }
    Ok(finding)
}
