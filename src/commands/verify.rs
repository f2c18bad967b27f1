//! `shipit verify`: every checksum and signature of a release folder, or one file's signature.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Session;
use crate::checksum::{self, Algorithm};
use crate::cli::VerifyArgs;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::minisign::{PublicKey, Signature};

/// One check and its result.
#[derive(Debug, Serialize)]
struct Finding {
    /// The file checked.
    file: String,
    /// `checksum` or `signature`.
    check: &'static str,
    /// Where the expectation came from (the checksum or signature file).
    by: String,
    ok: bool,
    /// What was wrong, or the trusted comment of a good signature.
    detail: String,
}

/// Verifies and reports; exit 1 naming every file that fails.
pub fn run(session: &Session, args: &VerifyArgs) -> Result<ExitCode, Error> {
    let findings = if args.path.is_dir() {
        verify_folder(&args.path, args.key.as_deref())?
    } else if args.path.is_file() {
        let key = args.key.as_deref().ok_or_else(|| {
            Error::Usage("verifying a single file needs its public key: --key <FILE>".into())
        })?;
        let key = read_key(key)?;
        vec![verify_signature(&args.path, &key, &args.path)?]
    } else {
        return Err(Error::Usage(format!(
            "{} does not exist",
            args.path.display()
        )));
    };
    if findings.is_empty() {
        return Err(Error::Usage(format!(
            "{} holds no checksum files (`*SUMS`, `*.sha256`) and no signatures (`*.minisig`)",
            args.path.display()
        )));
    }
    let failed: Vec<&Finding> = findings.iter().filter(|f| !f.ok).collect();
    if session.cli.global.json {
        session
            .printer
            .out(&serde_json::json!({"ok": failed.is_empty(), "checks": findings}).to_string());
    } else {
        for f in &findings {
            let mark = if f.ok { "ok    " } else { "FAILED" };
            session.printer.out(&format!(
                "{mark} {} {} ({}): {}",
                f.check, f.file, f.by, f.detail
            ));
        }
    }
    if failed.is_empty() {
        Ok(ExitCode::Success)
    } else {
        let names: Vec<&str> = failed.iter().map(|f| f.file.as_str()).collect();
        Err(Error::Failed(format!(
            "{} of {} checks failed: {}",
            failed.len(),
            findings.len(),
            names.join(", ")
        )))
    }
}

fn read_key(path: &Path) -> Result<PublicKey, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
    PublicKey::from_text(&text).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
}

fn verify_folder(dir: &Path, key: Option<&Path>) -> Result<Vec<Finding>, Error> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .filter(|p| !p.starts_with(dir.join("logs")))
        .collect();
    files.sort();
    let name_of = |p: &Path| p.strip_prefix(dir).unwrap_or(p).display().to_string();
    let mut findings = Vec::new();

    for sums in files.iter().filter(|p| is_checksum_file(p)) {
        let text = std::fs::read_to_string(sums)
            .map_err(|e| Error::Failed(format!("cannot read {}: {e}", sums.display())))?;
        let base = sums.parent().unwrap_or(dir);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Some((want, name)) = checksum::parse_line(line) else {
                findings.push(Finding {
                    file: name_of(sums),
                    check: "checksum",
                    by: name_of(sums),
                    ok: false,
                    detail: format!("not a checksum line: {line:?}"),
                });
                continue;
            };
            let algorithm = match want.len() {
                64 => Algorithm::Sha256,
                128 => Algorithm::Sha512,
                _ => {
                    findings.push(Finding {
                        file: name.to_string(),
                        check: "checksum",
                        by: name_of(sums),
                        ok: false,
                        detail: "unknown digest length".into(),
                    });
                    continue;
                }
            };
            let target = base.join(name);
            let (ok, detail) = match checksum::hash(&target, algorithm) {
                Ok(got) if got.eq_ignore_ascii_case(want) => {
                    (true, format!("{algorithm:?} matches").to_lowercase())
                }
                Ok(_) => (false, "content does not match its checksum".to_string()),
                Err(e) => (false, format!("cannot read: {e}")),
            };
            findings.push(Finding {
                file: name_of(&target),
                check: "checksum",
                by: name_of(sums),
                ok,
                detail,
            });
        }
    }

    let signatures: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "minisig"))
        .collect();
    if !signatures.is_empty() {
        let key = match key {
            Some(path) => read_key(path)?,
            None => {
                let keys: Vec<&PathBuf> = files
                    .iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "pub"))
                    .collect();
                match keys.as_slice() {
                    [one] => read_key(one)?,
                    [] => {
                        return Err(Error::Usage(format!(
                            "{} has signatures but no public key; pass --key <FILE>",
                            dir.display()
                        )));
                    }
                    _ => {
                        return Err(Error::Usage(format!(
                            "{} has several public keys; choose one with --key <FILE>",
                            dir.display()
                        )));
                    }
                }
            }
        };
        for sig in signatures {
            let signed = PathBuf::from(sig.to_string_lossy().trim_end_matches(".minisig"));
            let mut finding = verify_signature(&signed, &key, sig)?;
            finding.file = name_of(&signed);
            finding.by = name_of(sig);
            findings.push(finding);
        }
    }
    Ok(findings)
}

/// `SHA256SUMS`, `SHA512SUMS`, any `*SUMS`, or `<file>.sha256` / `.sha512`.
fn is_checksum_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
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
        Ok(data) => match key.verify(std::io::BufReader::new(data), &signature) {
            Ok(comment) => {
                finding.ok = true;
                finding.detail = format!("signed by key {} ({comment})", key.key_id());
            }
            Err(e) => finding.detail = e.to_string(),
        },
    }
    Ok(finding)
}
