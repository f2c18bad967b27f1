//! Skips work whose inputs are unchanged. A unit's fingerprint covers its [`CacheKey`] identity
//! (command, flags, toolchain versions, target), its environment and the content of every
//! source file; after a good run it is kept in a stamp with the hashes of the files produced.
//! A later run with the same fingerprint, whose produced files are still intact, is `cached`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::manifest::hash_file;
use crate::plan::{CacheKey, StepCommand, Unit};

/// Hashes the content of every file under `inputs` (honouring `.gitignore`, skipping `.git` and
/// `exclude`), in a stable order.
pub fn digest_inputs(inputs: &[PathBuf], exclude: &[PathBuf]) -> std::io::Result<String> {
    let mut files: Vec<(PathBuf, PathBuf)> = Vec::new();
    for root in inputs {
        let excluded: Vec<PathBuf> = exclude
            .iter()
            .map(|e| std::path::absolute(e).unwrap_or_else(|_| e.clone()))
            .collect();
        let walker = ignore::WalkBuilder::new(root)
            .hidden(false)
            .git_global(false)
            .require_git(false)
            .filter_entry(move |entry| {
                let path = entry.path();
                entry.file_name() != ".git"
                    && !excluded
                        .iter()
                        .any(|e| std::path::absolute(path).is_ok_and(|p| p.starts_with(e)))
            })
            .build();
        for entry in walker {
            let entry = entry.map_err(std::io::Error::other)?;
            if entry.file_type().is_some_and(|t| t.is_file()) {
                let rel = entry
                    .path()
                    .strip_prefix(root)
                    .unwrap_or(entry.path())
                    .to_path_buf();
                files.push((root.clone(), rel));
            }
        }
    }
    files.sort();
    let mut hasher = Sha256::new();
    for (root, rel) in &files {
        let (size, sha) = hash_file(&root.join(rel))?;
        hasher.update(format!("{}\0{size}\0{sha}\n", rel.display()).as_bytes());
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The fingerprint of a unit: identity, environment, commands and the inputs' digest.
pub fn fingerprint(
    key: &CacheKey,
    stage_env: &BTreeMap<String, String>,
    unit: &Unit,
    inputs_digest: &str,
) -> String {
    let mut hasher = Sha256::new();
    let mut feed = |part: &str| {
        hasher.update(part.as_bytes());
        hasher.update(b"\0");
    };
    for part in &key.identity {
        feed(part);
    }
    for (name, value) in stage_env.iter().chain(unit.env.iter()) {
        feed(&format!("{name}={value}"));
    }
    for step in &unit.steps {
        feed(&step.command.to_string());
        if let StepCommand::Shell(shell) = &step.command {
            for (name, value) in shell.env() {
                feed(&format!("{name}={value}"));
            }
        }
    }
    feed(inputs_digest);
    hex::encode(hasher.finalize())
}

/// What a good run left behind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stamp {
    /// The fingerprint it was built from.
    pub fingerprint: String,
    /// SHA-256 of each produced file, by path.
    pub outputs: BTreeMap<PathBuf, String>,
}

impl Stamp {
    /// Reads a stamp; `None` when absent or unreadable (then the unit simply runs).
    pub fn read(path: &Path) -> Option<Stamp> {
        let text = std::fs::read(path).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Writes the stamp atomically.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, path)
    }

    /// A stamp for `fingerprint` recording the current content of `outputs`.
    pub fn record(fingerprint: String, outputs: &[PathBuf]) -> std::io::Result<Stamp> {
        let mut hashes = BTreeMap::new();
        for path in outputs {
            hashes.insert(path.clone(), hash_file(path)?.1);
        }
        Ok(Stamp {
            fingerprint,
            outputs: hashes,
        })
    }

    /// Whether this stamp is for `fingerprint` and every produced file is still as it was.
    pub fn is_fresh(&self, fingerprint: &str, outputs: &[PathBuf]) -> bool {
        self.staleness(fingerprint, outputs).is_none()
    }

    /// Why the unit must run again, or `None` when its output can be reused.
    pub fn staleness(&self, fingerprint: &str, outputs: &[PathBuf]) -> Option<String> {
        if self.fingerprint != fingerprint {
            return Some(
                "its inputs changed (sources, Cargo.lock, features, flags, environment or \
                 toolchain)"
                    .into(),
            );
        }
        outputs
            .iter()
            .find(|path| {
                !self
                    .outputs
                    .get(*path)
                    .is_some_and(|want| hash_file(path).is_ok_and(|(_, sha)| &sha == want))
            })
            .map(|path| format!("its output {} is missing or was changed", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_changes_with_content_and_ignores_excluded_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(root.join("target")).unwrap();
        std::fs::write(root.join("src/main.rs"), "fn main() {}").unwrap();
        let exclude = vec![root.join("target")];
        let first = digest_inputs(std::slice::from_ref(&root), &exclude).unwrap();
        std::fs::write(root.join("target/out"), "build output").unwrap();
        assert_eq!(
            digest_inputs(std::slice::from_ref(&root), &exclude).unwrap(),
            first
        );
        std::fs::write(root.join("src/main.rs"), "fn main() { }").unwrap();
        assert_ne!(
            digest_inputs(std::slice::from_ref(&root), &exclude).unwrap(),
            first
        );
    }

    #[test]
    fn gitignored_files_are_not_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::write(root.join(".gitignore"), "*.log\n").unwrap();
        std::fs::write(root.join("lib.rs"), "").unwrap();
        let first = digest_inputs(std::slice::from_ref(&root), &[]).unwrap();
        std::fs::write(root.join("noise.log"), "x").unwrap();
        assert_eq!(
            digest_inputs(std::slice::from_ref(&root), &[]).unwrap(),
            first
        );
    }

    #[test]
    fn a_stamp_is_stale_when_an_output_changed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("bin");
        std::fs::write(&out, "v1").unwrap();
        let outputs = vec![out.clone()];
        let stamp = Stamp::record("fp".into(), &outputs).unwrap();
        let path = dir.path().join("stamps/unit.json");
        stamp.write(&path).unwrap();
        let stamp = Stamp::read(&path).unwrap();
        assert!(stamp.is_fresh("fp", &outputs));
        assert!(!stamp.is_fresh("other", &outputs));
        std::fs::write(&out, "v2").unwrap();
        assert!(!stamp.is_fresh("fp", &outputs));
    }
}
