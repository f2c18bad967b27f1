//! The signed provenance in a release folder (`*.intoto.jsonl`): each envelope's signature is
//! checked with the release key, then every subject the statement names is hashed in the
//! folder and compared. A subject's name is untrusted: one that leaves the folder, a link or a
//! missing file fails and is never read.

use std::path::Path;

use super::{Finding, KeyOrigin, read_small};
use crate::checksum::{self, Algorithm};
use crate::minisign::PublicKey;
use crate::relpath::{self, RelPath};

/// Every check of every provenance file among `files`.
pub fn check(dir: &Path, files: &[RelPath], key: Option<&(PublicKey, KeyOrigin)>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for file in files
        .iter()
        .filter(|p| p.as_str().ends_with(".intoto.jsonl"))
    {
        let Some((key, origin)) = key else {
            findings.push(Finding::failed(
                file,
                "provenance",
                file,
                "no public key to check it with: pass --key <FILE>".into(),
            ));
            continue;
        };
        let text = match read_small(dir, file) {
            Ok(text) => text,
            Err(e) => {
                findings.push(Finding::failed(
                    file,
                    "provenance",
                    file,
                    format!("cannot read: {e}"),
                ));
                continue;
            }
        };
        let verifying = match key.ed25519() {
            Ok(verifying) => verifying,
            Err(e) => {
                findings.push(Finding::failed(file, "provenance", file, e.to_string()));
                continue;
            }
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let subjects = match crate::provenance::check(line, &verifying) {
                Ok(subjects) => subjects,
                Err(e) => {
                    findings.push(Finding::failed(file, "provenance", file, e.to_string()));
                    continue;
                }
            };
            let mut detail = format!(
                "signed by key {}, {} subjects",
                key.key_id(),
                subjects.len()
            );
            if let KeyOrigin::Folder(pub_file) = origin {
                detail.push_str(&format!(
                    "; integrity only: the key {pub_file} came from the folder itself (pass --key)"
                ));
            }
            findings.push(Finding {
                file: file.to_string(),
                check: "provenance",
                by: file.to_string(),
                ok: true,
                detail,
            });
            for subject in subjects {
                findings.push(subject_finding(dir, file, &subject));
            }
        }
    }
    findings
}

/// The check of one subject against the file of that name in the folder.
fn subject_finding(dir: &Path, by: &RelPath, subject: &crate::provenance::Subject) -> Finding {
    let name = &subject.name;
    let target = match RelPath::new(name) {
        Ok(target) => target,
        Err(e) => {
            return Finding::failed(&name.escape_debug(), "provenance", by, e.to_string());
        }
    };
    let hashed = relpath::open_regular(dir, &target).and_then(|(file, _)| {
        checksum::hash_reader(std::io::BufReader::new(file), Algorithm::Sha256)
    });
    let (ok, detail) = match hashed {
        Ok(got) if got.eq_ignore_ascii_case(&subject.sha256) => {
            (true, "sha256 matches the signed statement".to_owned())
        }
        Ok(_) => (
            false,
            "content does not match the signed statement".to_owned(),
        ),
        Err(e) => (false, format!("cannot read: {e}")),
    };
    Finding {
        file: target.to_string(),
        check: "provenance",
        by: by.to_string(),
        ok,
        detail,
    }
}
