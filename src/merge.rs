//! Merging the parts of a split build (`shipit build --split`): a part is untrusted (a
//! compromised matrix job may have made it). It may bring only the artifacts the plan expects
//! from its own targets, under safe relative paths, and what each artifact is (name, kind,
//! target, os, arch) comes from this machine's plan: a part that says otherwise is refused,
//! naming the field. Only the bytes come from the part; they are copied through a staging
//! folder while hashed and moved into dist only when every one matches.

use std::collections::BTreeMap;

use crate::error::Error;
use crate::manifest::{Artifact, Manifest};
use crate::plan::PlannedArtifact;
use crate::relpath::{self, RelPath};

/// One artifact of a part, checked against the plan: where it is and what it must hash to.
pub struct Checked<'a> {
    /// The part's folder.
    pub part: &'a std::path::Path,
    /// The part, as named in messages.
    pub part_name: &'a str,
    /// The artifact's path, checked.
    pub path: RelPath,
    /// Its manifest record: the plan's, with the size and digest the part's manifest gives
    /// (which the copied bytes must match).
    pub record: Artifact,
}

/// Every artifact of every part must be one the plan expects for that part's own targets (and
/// every expected one must be there), described as the plan describes it; paths are safe
/// relative paths. Nothing is read yet.
pub fn check_parts<'a>(
    manifests: &'a [(std::path::PathBuf, String, Manifest)],
    owner: &BTreeMap<String, String>,
    planned: &BTreeMap<String, PlannedArtifact>,
) -> Result<Vec<Checked<'a>>, Error> {
    let mut checked = Vec::new();
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (dir, name, manifest) in manifests {
        for artifact in &manifest.artifacts {
            let path =
                RelPath::new(&artifact.path).map_err(|e| Error::Usage(format!("{name}: {e}")))?;
            let expected = planned.get(path.as_str());
            let owned_by_part = expected.is_some_and(|p| match &p.target {
                Some(target) => owner.get(&target.name).is_some_and(|o| o == name),
                None => true,
            });
            let Some(expected) = expected.filter(|_| owned_by_part) else {
                return Err(Error::Usage(format!(
                    "{name} holds `{path}`, which the plan does not expect from this part's \
                     targets; a part brings only the artifacts of its own targets"
                )));
            };
            let record = expected.record(artifact.size, artifact.sha256.clone());
            if let Some((field, claimed, planned)) = disagreement(artifact, &record) {
                return Err(Error::Usage(format!(
                    "{name} says `{path}` has {field} {}, but this pipeline plans {field} {}: \
                     a part cannot change what an artifact is",
                    claimed.escape_debug(),
                    planned.escape_debug()
                )));
            }
            if let Some(first) = seen.insert(artifact.path.as_str(), name.as_str()) {
                return Err(Error::Usage(format!(
                    "`{path}` is in both {first} and {name}"
                )));
            }
            checked.push(Checked {
                part: dir,
                part_name: name,
                path,
                record,
            });
        }
    }
    let missing: Vec<&String> = planned
        .keys()
        .filter(|p| !seen.contains_key(p.as_str()))
        .collect();
    if let Some(first) = missing.first() {
        return Err(Error::Usage(format!(
            "no part holds `{first}` ({} planned artifact(s) missing): a part lost an asset",
            missing.len()
        )));
    }
    Ok(checked)
}

/// The first field in which a part's record differs from the plan's: its name, what the part
/// says, what the plan says.
fn disagreement(part: &Artifact, plan: &Artifact) -> Option<(&'static str, String, String)> {
    let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
    let kind = |a: &Artifact| format!("{:?}", a.kind).to_lowercase();
    [
        ("name", part.name.clone(), plan.name.clone()),
        ("kind", kind(part), kind(plan)),
        ("target", shown(&part.target), shown(&plan.target)),
        ("os", shown(&part.os), shown(&plan.os)),
        ("arch", shown(&part.arch), shown(&plan.arch)),
    ]
    .into_iter()
    .find(|(_, claimed, planned)| claimed != planned)
}

/// Copies every artifact into a staging folder inside dist while hashing it (no links followed,
/// regular files only), and moves them into place only when every one matches its part's
/// manifest. On failure dist holds none of them.
pub fn stage_and_move(
    dist: &std::path::Path,
    checked: &[Checked<'_>],
) -> Result<Vec<crate::manifest::Artifact>, Error> {
    std::fs::create_dir_all(dist)
        .map_err(|e| Error::Failed(format!("cannot create {}: {e}", dist.display())))?;
    let staging = tempfile::Builder::new()
        .prefix(".shipit-merge-")
        .tempdir_in(dist)
        .map_err(|e| {
            Error::Failed(format!(
                "cannot create a staging folder in {}: {e}",
                dist.display()
            ))
        })?;
    for item in checked {
        let to = item.path.under(staging.path());
        let copied = relpath::open_regular(item.part, &item.path).and_then(|(from, _)| {
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)?;
            }
            copy_hashed(from, &to)
        });
        match copied {
            Ok((size, sha)) if size == item.record.size && sha == item.record.sha256 => {}
            Ok(_) => {
                return Err(Error::Usage(format!(
                    "{} in {} does not match that part's manifest",
                    item.path, item.part_name
                )));
            }
            Err(e) => {
                return Err(Error::Usage(format!(
                    "cannot take {} from {}: {e}",
                    item.path, item.part_name
                )));
            }
        }
    }
    let mut moved: Vec<std::path::PathBuf> = Vec::new();
    for item in checked {
        let to = item.path.under(dist);
        let result = to
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::rename(item.path.under(staging.path()), &to));
        if let Err(e) = result {
            // Undo: dist holds all of the merge or none of it.
            for path in &moved {
                let _ = std::fs::remove_file(path);
            }
            return Err(Error::Failed(format!(
                "cannot move {} into dist: {e}",
                item.path
            )));
        }
        moved.push(to);
    }
    Ok(checked.iter().map(|c| c.record.clone()).collect())
}

/// Copies `from` to a new file `to`, returning the size and SHA-256 of what was written.
fn copy_hashed(mut from: std::fs::File, to: &std::path::Path) -> std::io::Result<(u64, String)> {
    use sha2::Digest;
    use std::io::{Read, Write};
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        size += n as u64;
    }
    out.sync_all()?;
    Ok((size, hex::encode(hasher.finalize())))
}
