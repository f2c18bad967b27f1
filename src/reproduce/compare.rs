//! Each published file against its rebuild: the same bytes, a signature that holds over the
//! rebuilt file, or where they part (for an archive, the first entry that differs).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use serde::Serialize;

use super::ReproduceError;
use super::published::{Published, PublishedFile};
use crate::manifest::Manifest;
use crate::minisign::{PublicKey, Signature};

/// The most a signature or provenance file read whole may be.
const MAX_SMALL: u64 = 16 << 20;

/// How one published file compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Byte-identical to the rebuilt file.
    Same,
    /// A signature (or a signed statement, or a signed package) that the rebuild cannot make
    /// without the key, but that holds over the rebuilt files.
    Holds,
    /// The key the signatures were checked with.
    Key,
    /// Not what the rebuild made.
    Differs,
    /// The rebuild made no such file.
    Missing,
}

impl Verdict {
    /// Whether the file counts as reproduced.
    pub fn ok(self) -> bool {
        matches!(self, Verdict::Same | Verdict::Holds | Verdict::Key)
    }

    /// The word the table shows.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Same => "same",
            Verdict::Holds => "holds",
            Verdict::Key => "key",
            Verdict::Differs => "differs",
            Verdict::Missing => "missing",
        }
    }
}

/// One line of the result.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The published file.
    pub name: String,
    /// How it compares.
    pub verdict: Verdict,
    /// Its SHA-256 as published.
    pub published: String,
    /// The rebuilt file's SHA-256, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuilt: Option<String>,
    /// Why, in words.
    pub detail: String,
}

/// What the comparison reads: the release, the rebuild, a folder for fetched files, and the
/// key signatures are checked with (pinned by the user, else the release's one `.pub`).
pub struct Sides<'a> {
    /// The release.
    pub published: &'a dyn Published,
    /// The rebuild's manifest.
    pub rebuilt: &'a Manifest,
    /// The rebuild's dist folder.
    pub dist: &'a Path,
    /// Where published files are fetched to.
    pub scratch: &'a Path,
    /// A key the user gave (`--public-key`).
    pub pinned: Option<&'a PublicKey>,
    /// What Sigstore bundles are checked against.
    pub trusted_root: &'a crate::sigstore::TrustedRoot,
}

/// Compares every published file.
pub fn compare(sides: &Sides) -> Result<Vec<Outcome>, ReproduceError> {
    let rebuilt: BTreeMap<&str, &str> = sides
        .rebuilt
        .artifacts
        .iter()
        .map(|a| (a.path.as_str(), a.sha256.as_str()))
        .collect();
    let key = signature_key(sides)?;
    let mut outcomes = Vec::new();
    for file in sides.published.files() {
        let made = rebuilt.get(file.name.as_str()).map(|s| s.to_string());
        let outcome = |verdict, detail: String| Outcome {
            name: file.name.clone(),
            verdict,
            published: file.sha256.clone(),
            rebuilt: made.clone(),
            detail,
        };
        if made.as_deref() == Some(file.sha256.as_str()) {
            outcomes.push(outcome(Verdict::Same, "byte-identical".into()));
            continue;
        }
        let (verdict, detail) = if file.name.ends_with(".pub") {
            key_verdict(file, &key)
        } else if let Some(signed) = file.name.strip_suffix(".minisig") {
            signature(sides, file, signed, &key)?
        } else if let Some(signed) = file.name.strip_suffix(".sigstore.json") {
            bundle(sides, file, signed)?
        } else if file.name.ends_with(".intoto.jsonl") {
            provenance(sides, file, &rebuilt)?
        } else if made.is_none() {
            (Verdict::Missing, "the rebuild made no such file".into())
        } else {
            let fetched = fetch(sides, file)?;
            let theirs = sides.dist.join(&file.name);
            (Verdict::Differs, difference(&fetched, &theirs, &file.name))
        };
        let (verdict, detail) = match verdict {
            // A signed rpm: the rebuild is unsigned, so compare all but the signature header.
            Verdict::Differs if file.name.ends_with(".rpm") => {
                let fetched = sides.scratch.join(&file.name);
                match rpm_without_signature(&fetched, &sides.dist.join(&file.name)) {
                    Ok(true) => (
                        Verdict::Holds,
                        "identical apart from the rpm signature header".into(),
                    ),
                    _ => (verdict, detail),
                }
            }
            _ => (verdict, detail),
        };
        outcomes.push(outcome(verdict, detail));
    }
    Ok(outcomes)
}

/// The key `.minisig` files are checked with: the pinned one, else the release's one `.pub`.
fn signature_key(sides: &Sides) -> Result<Option<(PublicKey, String)>, ReproduceError> {
    if let Some(key) = sides.pinned {
        return Ok(Some((
            key.clone(),
            "the key given with --public-key".into(),
        )));
    }
    let keys: Vec<&PublishedFile> = sides
        .published
        .files()
        .iter()
        .filter(|f| f.name.ends_with(".pub"))
        .collect();
    match keys.as_slice() {
        [file] => {
            let text = read_small(&fetch(sides, file)?)?;
            let key = PublicKey::from_text(&String::from_utf8_lossy(&text))
                .map_err(|e| ReproduceError::Refused(format!("{}: {e}", file.name)))?;
            Ok(Some((key, format!("the release's {}", file.name))))
        }
        _ => Ok(None),
    }
}

fn key_verdict(file: &PublishedFile, key: &Option<(PublicKey, String)>) -> (Verdict, String) {
    match key {
        Some((key, from)) if from.ends_with(&file.name) => (
            Verdict::Key,
            format!(
                "minisign key {}: the signatures below are checked with it",
                key.key_id()
            ),
        ),
        Some((key, from)) => (
            Verdict::Differs,
            format!(
                "not {from} ({}): the release's key is another",
                key.key_id()
            ),
        ),
        None => (
            Verdict::Differs,
            "one of several keys on the release; pin one with --public-key".into(),
        ),
    }
}

/// A published `.minisig` over the rebuilt file it signs.
fn signature(
    sides: &Sides,
    file: &PublishedFile,
    signed: &str,
    key: &Option<(PublicKey, String)>,
) -> Result<(Verdict, String), ReproduceError> {
    let Some((key, from)) = key else {
        return Ok((
            Verdict::Differs,
            "no key to check it with: the release has no single .pub; give --public-key".into(),
        ));
    };
    let rebuilt = sides.dist.join(signed);
    let Ok(data) = File::open(&rebuilt) else {
        return Ok((
            Verdict::Missing,
            format!("the rebuild made no {signed} to check it over"),
        ));
    };
    let text = read_small(&fetch(sides, file)?)?;
    let verdict = Signature::from_text(&String::from_utf8_lossy(&text))
        .map_err(crate::minisign::VerifyError::Signature)
        .and_then(|sig| key.verify(BufReader::new(data), &sig));
    Ok(match verdict {
        Ok(_) => (
            Verdict::Holds,
            format!("signs the rebuilt {signed} ({from}, {})", key.key_id()),
        ),
        Err(e) => (
            Verdict::Differs,
            format!("does not hold over the rebuilt {signed}: {e}"),
        ),
    })
}

/// A published Sigstore bundle over the rebuilt file it signs (offline, against the trusted
/// root; who signed is reported, for the reader to judge).
fn bundle(
    sides: &Sides,
    file: &PublishedFile,
    signed: &str,
) -> Result<(Verdict, String), ReproduceError> {
    let rebuilt = sides.dist.join(signed);
    let Ok((_, sha256)) = crate::manifest::hash_file(&rebuilt) else {
        return Ok((
            Verdict::Missing,
            format!("the rebuild made no {signed} to check it over"),
        ));
    };
    let text = read_small(&fetch(sides, file)?)?;
    let checked =
        crate::sigstore::Bundle::from_json(&String::from_utf8_lossy(&text)).and_then(|bundle| {
            let digest = hex::decode(&sha256).map_err(|e| e.to_string())?;
            crate::sigstore::verify(
                &bundle,
                &digest,
                sides.trusted_root,
                &crate::sigstore::Policy::default(),
            )
        });
    Ok(match checked {
        Ok(v) => (
            Verdict::Holds,
            format!(
                "signs the rebuilt {signed}: {} (issuer {}), Rekor entry {}",
                v.identity, v.issuer, v.log_index
            ),
        ),
        Err(e) => (
            Verdict::Differs,
            format!("does not hold over the rebuilt {signed}: {e}"),
        ),
    })
}

/// A published provenance file: every subject it names is a rebuilt file with that digest.
fn provenance(
    sides: &Sides,
    file: &PublishedFile,
    rebuilt: &BTreeMap<&str, &str>,
) -> Result<(Verdict, String), ReproduceError> {
    let text = read_small(&fetch(sides, file)?)?;
    let text = String::from_utf8_lossy(&text);
    let mut count = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let subjects =
            crate::provenance::read_unverified(line).and_then(|s| crate::provenance::subjects(&s));
        let subjects = match subjects {
            Ok(subjects) => subjects,
            Err(e) => {
                return Ok((
                    Verdict::Differs,
                    format!("not provenance shipit reads: {e}"),
                ));
            }
        };
        for subject in subjects {
            match rebuilt.get(subject.name.as_str()) {
                Some(sha) if *sha == subject.sha256 => count += 1,
                Some(sha) => {
                    return Ok((
                        Verdict::Differs,
                        format!(
                            "names {} as sha256:{}, the rebuild's is sha256:{sha}",
                            subject.name, subject.sha256
                        ),
                    ));
                }
                // A signature or key the rebuild cannot make: it has its own line, so it
                // need only be the published file.
                None if sides
                    .published
                    .files()
                    .iter()
                    .any(|f| f.name == subject.name && f.sha256 == subject.sha256) =>
                {
                    count += 1
                }
                None => {
                    return Ok((
                        Verdict::Differs,
                        format!("names {}, which the rebuild did not make", subject.name),
                    ));
                }
            }
        }
    }
    Ok((
        Verdict::Holds,
        format!(
            "its {count} subjects are the rebuilt files and the signatures above (its own signature is the release's)"
        ),
    ))
}

/// The published file, fetched once into the scratch folder.
fn fetch(sides: &Sides, file: &PublishedFile) -> Result<std::path::PathBuf, ReproduceError> {
    let path = sides.scratch.join(&file.name);
    if !path.exists() {
        sides.published.fetch(file, &path)?;
    }
    Ok(path)
}

fn read_small(path: &Path) -> Result<Vec<u8>, ReproduceError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|f| f.take(MAX_SMALL).read_to_end(&mut bytes))
        .map_err(|e| ReproduceError::Setup(format!("{}: {e}", path.display())))?;
    Ok(bytes)
}

/// Where two files part, in words: for an archive, its first entry that differs.
pub fn difference(published: &Path, rebuilt: &Path, name: &str) -> String {
    let archive = if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        super::entries::tar_gz(published, rebuilt)
    } else if name.ends_with(".zip") {
        super::entries::zip(published, rebuilt)
    } else {
        None
    };
    archive.unwrap_or_else(|| first_byte(published, rebuilt))
}

/// The sizes and the offset of the first byte that differs.
fn first_byte(a: &Path, b: &Path) -> String {
    let (Ok(fa), Ok(fb)) = (File::open(a), File::open(b)) else {
        return "cannot read both files".into();
    };
    let (size_a, size_b) = (
        fa.metadata().map_or(0, |m| m.len()),
        fb.metadata().map_or(0, |m| m.len()),
    );
    let mut offset = 0u64;
    let (mut ra, mut rb) = (BufReader::new(fa).bytes(), BufReader::new(fb).bytes());
    loop {
        match (ra.next(), rb.next()) {
            (Some(Ok(x)), Some(Ok(y))) if x == y => offset += 1,
            (None, None) => break,
            _ => break,
        }
    }
    format!("{size_a} bytes published, {size_b} rebuilt; they part at byte {offset}")
}

/// Whether two rpm files are the same after their signature headers (lead, then a header
/// structure padded to 8 bytes, then the main header and payload the signature covers).
fn rpm_without_signature(a: &Path, b: &Path) -> std::io::Result<bool> {
    fn body(path: &Path) -> std::io::Result<(File, u64)> {
        let mut file = File::open(path)?;
        let mut head = [0u8; 96 + 16];
        file.read_exact(&mut head)?;
        let intro = &head[96..];
        if intro[..4] != [0x8e, 0xad, 0xe8, 0x01] {
            return Err(std::io::Error::other("not an rpm signature header"));
        }
        let count = u32::from_be_bytes([intro[8], intro[9], intro[10], intro[11]]) as u64;
        let store = u32::from_be_bytes([intro[12], intro[13], intro[14], intro[15]]) as u64;
        let length = 16 + count * 16 + store;
        let start = 96 + length.div_ceil(8) * 8;
        Ok((file, start))
    }
    use std::io::{Seek, SeekFrom};
    let (mut fa, start_a) = body(a)?;
    let (mut fb, start_b) = body(b)?;
    fa.seek(SeekFrom::Start(start_a))?;
    fb.seek(SeekFrom::Start(start_b))?;
    let (_, ha) = crate::manifest::hash_reader(fa)?;
    let (_, hb) = crate::manifest::hash_reader(fb)?;
    Ok(ha == hb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_files_part_at_their_first_differing_byte() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"abcdef").unwrap();
        std::fs::write(&b, b"abcXefg").unwrap();
        assert_eq!(
            difference(&a, &b, "x.bin"),
            "6 bytes published, 7 rebuilt; they part at byte 3"
        );
    }

    #[test]
    fn only_sure_verdicts_count_as_reproduced() {
        assert!(Verdict::Same.ok() && Verdict::Holds.ok() && Verdict::Key.ok());
        assert!(!Verdict::Differs.ok() && !Verdict::Missing.ok());
    }
}
