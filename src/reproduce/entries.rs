//! The first entry two archives disagree on: its name, its metadata or its contents, read as
//! streams (nothing unpacked to disk, every entry hashed, never held whole).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// One entry, as far as a comparison cares.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    name: String,
    /// Mode, owner, time and kind, in words.
    meta: String,
    sha256: String,
}

/// For two `.tar.gz` files: the first entry that differs, or `None` when they cannot both be
/// read as archives (the caller falls back to bytes).
pub fn tar_gz(published: &Path, rebuilt: &Path) -> Option<String> {
    let read = |path: &Path| -> Option<Vec<Entry>> {
        let file = File::open(path).ok()?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
        let mut entries = Vec::new();
        for entry in archive.entries().ok()? {
            let mut entry = entry.ok()?;
            let header = entry.header();
            // A field that does not parse is shown as such: it still compares.
            let field = |v: std::io::Result<u64>| v.map_or_else(|_| "?".into(), |v| v.to_string());
            let meta = format!(
                "mode {}, owner {}:{}, time {}, {:?}",
                header
                    .mode()
                    .map_or_else(|_| "?".into(), |m| format!("{m:o}")),
                field(header.uid()),
                field(header.gid()),
                field(header.mtime()),
                header.entry_type()
            );
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let (_, sha256) = crate::manifest::hash_reader(&mut entry).ok()?;
            entries.push(Entry { name, meta, sha256 });
        }
        Some(entries)
    };
    Some(first_difference(&read(published)?, &read(rebuilt)?))
}

/// For two `.zip` files: the first entry that differs, as [`tar_gz`].
pub fn zip(published: &Path, rebuilt: &Path) -> Option<String> {
    let read = |path: &Path| -> Option<Vec<Entry>> {
        let mut archive = zip::ZipArchive::new(BufReader::new(File::open(path).ok()?)).ok()?;
        let mut entries = Vec::new();
        for i in 0..archive.len() {
            let mut file = archive.by_index(i).ok()?;
            let meta = format!(
                "mode {:o}, time {:?}, {:?}",
                file.unix_mode().unwrap_or(0),
                file.last_modified(),
                file.compression()
            );
            let name = String::from_utf8_lossy(file.name_raw()).into_owned();
            let (_, sha256) = crate::manifest::hash_reader(&mut file as &mut dyn Read).ok()?;
            entries.push(Entry { name, meta, sha256 });
        }
        Some(entries)
    };
    Some(first_difference(&read(published)?, &read(rebuilt)?))
}

fn first_difference(published: &[Entry], rebuilt: &[Entry]) -> String {
    for (i, (a, b)) in published.iter().zip(rebuilt).enumerate() {
        let name = a.name.escape_debug();
        if a.name != b.name {
            return format!(
                "entry {} is `{name}` published, `{}` rebuilt",
                i + 1,
                b.name.escape_debug()
            );
        }
        if a.sha256 != b.sha256 {
            return format!("first differing entry: `{name}` (its contents)");
        }
        if a.meta != b.meta {
            return format!(
                "first differing entry: `{name}` ({} published, {} rebuilt)",
                a.meta, b.meta
            );
        }
    }
    match published.len().cmp(&rebuilt.len()) {
        std::cmp::Ordering::Greater => format!(
            "the published archive has more entries, from `{}`",
            published[rebuilt.len()].name.escape_debug()
        ),
        std::cmp::Ordering::Less => format!(
            "the rebuilt archive has more entries, from `{}`",
            rebuilt[published.len()].name.escape_debug()
        ),
        std::cmp::Ordering::Equal => {
            "every entry is the same; the compression or the archive's own header differs".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz_of(path: &Path, files: &[(&str, &[u8], u32)]) {
        let gz = flate2::write::GzEncoder::new(File::create(path).unwrap(), Default::default());
        let mut builder = tar::Builder::new(gz);
        for (name, data, mode) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(*mode);
            header.set_mtime(0);
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
    }

    #[test]
    fn the_first_entry_that_differs_is_named_with_what_differs() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.tar.gz"), dir.path().join("b.tar.gz"));
        tar_gz_of(&a, &[("d/README", b"hi", 0o644), ("d/bin", b"one", 0o755)]);
        tar_gz_of(&b, &[("d/README", b"hi", 0o644), ("d/bin", b"two", 0o755)]);
        assert_eq!(
            tar_gz(&a, &b).unwrap(),
            "first differing entry: `d/bin` (its contents)"
        );
        tar_gz_of(&b, &[("d/README", b"hi", 0o600), ("d/bin", b"one", 0o755)]);
        assert!(
            tar_gz(&a, &b)
                .unwrap()
                .starts_with("first differing entry: `d/README` (mode 644")
        );
        tar_gz_of(&b, &[("d/README", b"hi", 0o644)]);
        assert_eq!(
            tar_gz(&a, &b).unwrap(),
            "the published archive has more entries, from `d/bin`"
        );
    }

    #[test]
    fn a_file_that_is_no_archive_is_left_to_the_byte_comparison() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.tar.gz");
        std::fs::write(&a, b"not gzip").unwrap();
        assert_eq!(tar_gz(&a, &a), None);
        assert_eq!(zip(&a, &a), None);
    }
}
