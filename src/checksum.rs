//! Checksum files that `sha256sum -c` (and `sha512sum -c`) accept: `<hex>  <name>` lines sorted
//! by name. Files are hashed in parallel, each streamed in constant memory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use sha2::{Digest, Sha256, Sha512};

use crate::file_error::FileError;

/// Hash functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// The conventional extension of a single-file checksum (`sha256`).
    pub fn extension(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
}

/// One checksum file to write: plain data, planned before the run.
#[derive(Debug, Clone, Serialize)]
pub struct ChecksumSpec {
    /// The file to write (`dist/SHA256SUMS`).
    pub output: PathBuf,
    /// Its hash function.
    pub algorithm: Algorithm,
    /// Files to list: name in the checksum file (relative to its folder) and path.
    pub files: Vec<(String, PathBuf)>,
    /// Also write `<file>.<algorithm>` beside each file.
    pub per_file: bool,
}

/// Hashes `path` with `algorithm`, streaming.
pub fn hash(path: &Path, algorithm: Algorithm) -> std::io::Result<String> {
    hash_reader(std::fs::File::open(path)?, algorithm)
}

/// Hashes everything `data` holds with `algorithm`, streaming.
pub fn hash_reader(data: impl Read, algorithm: Algorithm) -> std::io::Result<String> {
    fn stream<D: Digest>(mut file: impl Read) -> std::io::Result<String> {
        let mut hasher = D::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Ok(hex::encode(hasher.finalize()));
            }
            hasher.update(&buf[..n]);
        }
    }
    match algorithm {
        Algorithm::Sha256 => stream::<Sha256>(data),
        Algorithm::Sha512 => stream::<Sha512>(data),
    }
}

/// Hashes every file on up to `threads` threads; results in input order.
pub fn hash_all(
    paths: &[&Path],
    algorithm: Algorithm,
    threads: usize,
) -> Vec<std::io::Result<String>> {
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<std::io::Result<String>>> = Vec::new();
    results.resize_with(paths.len(), || None);
    let slots = std::sync::Mutex::new(results);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1).min(paths.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(i) else { return };
                    let result = hash(path, algorithm);
                    if let Ok(mut slots) = slots.lock() {
                        slots[i] = Some(result);
                    }
                }
            });
        }
    });
    slots
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(std::io::Error::other("not hashed"))))
        .collect()
}

/// Why a checksum file was not written.
#[derive(Debug, thiserror::Error)]
pub enum ChecksumError {
    /// Two files of the list have one name.
    #[error("`{0}` would be listed twice")]
    Twice(String),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] crate::file_error::FileError),
}

/// Writes the checksum file (and per-file checksums); returns every file written.
pub fn write(spec: &ChecksumSpec, threads: usize) -> Result<Vec<PathBuf>, ChecksumError> {
    let mut files = spec.files.clone();
    files.sort();
    if let Some(pair) = files.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(ChecksumError::Twice(pair[0].0.clone()));
    }
    let paths: Vec<&Path> = files.iter().map(|(_, p)| p.as_path()).collect();
    let hashes = hash_all(&paths, spec.algorithm, threads);
    let mut text = String::new();
    let mut written = Vec::new();
    for ((name, path), hash) in files.iter().zip(hashes) {
        let hash = hash.map_err(FileError::on("read", path))?;
        let line = format!("{hash}  {name}\n");
        if spec.per_file {
            let single =
                PathBuf::from(format!("{}.{}", path.display(), spec.algorithm.extension()));
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            write_atomic(&single, &format!("{hash}  {file_name}\n"))?;
            written.push(single);
        }
        text.push_str(&line);
    }
    write_atomic(&spec.output, &text)?;
    written.insert(0, spec.output.clone());
    Ok(written)
}

fn write_atomic(path: &Path, text: &str) -> Result<(), ChecksumError> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| FileError::on("write", path)(e).into())
}

/// One line of a checksum file: the expected hex digest and the file name.
pub fn parse_line(line: &str) -> Option<(&str, &str)> {
    let (hash, rest) = line.split_once(' ')?;
    // `sha256sum` writes two spaces (text mode) or a space and `*` (binary mode).
    let name = rest.strip_prefix(' ').or_else(|| rest.strip_prefix('*'))?;
    (!hash.is_empty() && hash.chars().all(|c| c.is_ascii_hexdigit())).then_some((hash, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_sorted_and_match_known_digests() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path().join("b.txt");
        let a = dir.path().join("a.txt");
        std::fs::write(&a, "abc").unwrap();
        std::fs::write(&b, "").unwrap();
        let spec = ChecksumSpec {
            output: dir.path().join("SHA256SUMS"),
            algorithm: Algorithm::Sha256,
            files: vec![("b.txt".into(), b.clone()), ("a.txt".into(), a)],
            per_file: true,
        };
        let written = write(&spec, 2).unwrap();
        assert_eq!(written.len(), 3);
        assert_eq!(
            std::fs::read_to_string(&spec.output).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  a.txt\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  b.txt\n"
        );
        assert!(dir.path().join("b.txt.sha256").is_file());
        assert_eq!(parse_line("e3b0  b.txt"), Some(("e3b0", "b.txt")));
        assert_eq!(parse_line("e3b0 *b.txt"), Some(("e3b0", "b.txt")));
        assert_eq!(parse_line("zz  b.txt"), None);
    }
}
