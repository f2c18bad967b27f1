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

/// The content of a unit's input folders: one digest over every file, and each file's own
/// (`size:sha256`, by path), kept in the stamp to say which file changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// The digest of every file, path, size and content, in a stable order.
    pub digest: String,
    /// Each file by its path under its folder (the folder's name first when there are several).
    pub files: BTreeMap<String, String>,
}

/// Hashes the content of every file under `inputs` (honouring `.gitignore`, skipping `.git` and
/// `exclude`), in a stable order.
pub fn digest_inputs(inputs: &[PathBuf], exclude: &[PathBuf]) -> std::io::Result<Inputs> {
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
    let mut each = BTreeMap::new();
    for (root, rel) in &files {
        let (size, sha) = hash_file(&root.join(rel))?;
        hasher.update(format!("{}\0{size}\0{sha}\n", rel.display()).as_bytes());
        let name = match (inputs.len(), root.file_name()) {
            (2.., Some(folder)) => format!("{}/{}", folder.to_string_lossy(), rel.display()),
            _ => rel.display().to_string(),
        };
        each.insert(name, format!("{size}:{sha}"));
    }
    Ok(Inputs {
        digest: hex::encode(hasher.finalize()),
        files: each,
    })
}

/// A unit's fingerprint, and each part it is made of, hashed under a name people read (a
/// variable's name, never its value), so a miss can say what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// The digest of every part.
    pub digest: String,
    /// Each part's digest, by what it is (`RUSTFLAGS`, `the toolchain`, `src/main.rs`).
    pub parts: BTreeMap<String, String>,
}

/// The fingerprint of a unit: identity, environment, commands and the inputs.
pub fn fingerprint(
    key: &CacheKey,
    stage_env: &BTreeMap<String, String>,
    unit: &Unit,
    inputs: &Inputs,
) -> Fingerprint {
    let mut hasher = Sha256::new();
    let mut parts = BTreeMap::new();
    let mut feed = |label: String, part: &str| {
        hasher.update(part.as_bytes());
        hasher.update(b"\0");
        parts.insert(label, hex::encode(&Sha256::digest(part.as_bytes())[..8]));
    };
    for (i, part) in key.identity.iter().enumerate() {
        feed(identity_label(i, part), part);
    }
    for (name, value) in stage_env.iter().chain(unit.env.iter()) {
        feed(format!("the variable {name}"), &format!("{name}={value}"));
    }
    for (i, step) in unit.steps.iter().enumerate() {
        feed(format!("command {}", i + 1), &step.command.to_string());
        if let StepCommand::Shell(shell) = &step.command {
            for (name, value) in shell.env() {
                feed(
                    format!("a value of command {}", i + 1),
                    &format!("{name}={value}"),
                );
            }
        }
    }
    hasher.update(inputs.digest.as_bytes());
    hasher.update(b"\0");
    for (file, digest) in &inputs.files {
        parts.insert(file.clone(), digest.clone());
    }
    Fingerprint {
        digest: hex::encode(hasher.finalize()),
        parts,
    }
}

/// What an identity part is, for people: a variable by its name (`RUSTFLAGS=...`), the
/// toolchain (`rustc -vV`), the cargo target, or its place.
fn identity_label(index: usize, part: &str) -> String {
    let name = part.split_once('=').map(|(n, _)| n).filter(|n| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    });
    match name {
        Some(name) => format!("the variable {name}"),
        None if part.starts_with("rustc ") => "the toolchain (rustc -vV)".into(),
        None if part.starts_with("cargo ") => "the cargo target".into(),
        None if part.contains("zig") => "the zig and cargo-zigbuild versions".into(),
        None => format!("setting {}", index + 1),
    }
}

/// What a good run left behind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stamp {
    /// The fingerprint it was built from.
    pub fingerprint: String,
    /// Each part of that fingerprint, by what it is (see [`Fingerprint::parts`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parts: BTreeMap<String, String>,
    /// SHA-256 of each produced file, by path.
    pub outputs: BTreeMap<PathBuf, String>,
}

/// At most this many changed inputs are named; the rest are counted.
const NAMED_CHANGES: usize = 5;

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
    pub fn record(fingerprint: &Fingerprint, outputs: &[PathBuf]) -> std::io::Result<Stamp> {
        let mut hashes = BTreeMap::new();
        for path in outputs {
            hashes.insert(path.clone(), hash_file(path)?.1);
        }
        Ok(Stamp {
            fingerprint: fingerprint.digest.clone(),
            parts: fingerprint.parts.clone(),
            outputs: hashes,
        })
    }

    /// Whether this stamp is for `fingerprint` and every produced file is still as it was.
    pub fn is_fresh(&self, fingerprint: &Fingerprint, outputs: &[PathBuf]) -> bool {
        self.staleness(fingerprint, outputs).is_none()
    }

    /// Why the unit must run again, or `None` when its output can be reused.
    pub fn staleness(&self, fingerprint: &Fingerprint, outputs: &[PathBuf]) -> Option<String> {
        if self.fingerprint != fingerprint.digest {
            return Some(self.what_changed(fingerprint));
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

    /// The inputs that differ from the last good run, by name.
    fn what_changed(&self, now: &Fingerprint) -> String {
        let mut changed: Vec<String> = Vec::new();
        for (part, digest) in &now.parts {
            match self.parts.get(part) {
                None => changed.push(format!("{part} (new)")),
                Some(old) if old != digest => changed.push(part.clone()),
                Some(_) => {}
            }
        }
        changed.extend(
            self.parts
                .keys()
                .filter(|p| !now.parts.contains_key(*p))
                .map(|p| format!("{p} (gone)")),
        );
        if self.parts.is_empty() || changed.is_empty() {
            return "its inputs changed (sources, Cargo.lock, features, flags, environment or \
                    toolchain)"
                .into();
        }
        let more = changed.len().saturating_sub(NAMED_CHANGES);
        changed.truncate(NAMED_CHANGES);
        let mut text = format!("its inputs changed: {}", changed.join(", "));
        if more > 0 {
            text.push_str(&format!(" and {more} more"));
        }
        text
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
        assert_eq!(first.files.keys().collect::<Vec<_>>(), ["src/main.rs"]);
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
        let print = |digest: &str| Fingerprint {
            digest: digest.into(),
            parts: BTreeMap::new(),
        };
        let stamp = Stamp::record(&print("fp"), &outputs).unwrap();
        let path = dir.path().join("stamps/unit.json");
        stamp.write(&path).unwrap();
        let stamp = Stamp::read(&path).unwrap();
        assert!(stamp.is_fresh(&print("fp"), &outputs));
        assert!(!stamp.is_fresh(&print("other"), &outputs));
        std::fs::write(&out, "v2").unwrap();
        assert!(!stamp.is_fresh(&print("fp"), &outputs));
    }

    /// Regression (issue 30, point 10): a miss names what changed, by file or variable name.
    #[test]
    fn a_miss_names_the_inputs_that_changed() {
        let parts = |entries: &[(&str, &str)]| -> BTreeMap<String, String> {
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let stamp = Stamp {
            fingerprint: "old".into(),
            parts: parts(&[
                ("src/main.rs", "1"),
                ("src/old.rs", "2"),
                ("the variable RUSTFLAGS", "3"),
                ("the toolchain (rustc -vV)", "4"),
            ]),
            outputs: BTreeMap::new(),
        };
        let now = Fingerprint {
            digest: "new".into(),
            parts: parts(&[
                ("src/main.rs", "9"),
                ("src/new.rs", "5"),
                ("the variable RUSTFLAGS", "8"),
                ("the toolchain (rustc -vV)", "4"),
            ]),
        };
        assert_eq!(
            stamp.staleness(&now, &[]).unwrap(),
            "its inputs changed: src/main.rs, src/new.rs (new), the variable RUSTFLAGS, src/old.rs (gone)"
        );
        assert_eq!(
            identity_label(0, "cargo x86_64-unknown-linux-musl"),
            "the cargo target"
        );
        assert_eq!(
            identity_label(3, "RUSTFLAGS=-C lto"),
            "the variable RUSTFLAGS"
        );
    }
}
