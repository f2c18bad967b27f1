//! One safe relative path type for every path that comes from data (a pipeline file, a split
//! build's manifest, a checksum file), and opening files under a root without following a link.
//!
//! A [`RelPath`] is relative, normalised (`a/./b//c` is `a/b/c`), `/`-separated, and never holds
//! `..`, a backslash, a NUL or another control character: joined to its root it cannot leave it
//! lexically. [`open_regular`] then refuses symlinks on the way and anything that is not a
//! regular file (a FIFO or a device would hang or never end); [`write_under`], [`remove_under`]
//! and [`list_under`] do the same for a folder shipit updates in place, so a link planted in
//! it never sends a write or a delete outside.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{Mode, SFlag, fchmod, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

/// The longest path accepted.
pub const MAX_LEN: usize = 4096;

/// A safe relative path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(String);

/// Why a path is not a safe relative path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{shown}` is not a safe relative path: {why}")]
pub struct RelPathError {
    /// The path, with control characters escaped.
    pub shown: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl RelPath {
    /// Checks and normalises `text`.
    pub fn new(text: &str) -> Result<RelPath, RelPathError> {
        let error = |why| RelPathError {
            shown: text
                .chars()
                .take(200)
                .collect::<String>()
                .escape_debug()
                .to_string(),
            why,
        };
        if text.len() > MAX_LEN {
            return Err(error("it is too long"));
        }
        if text.starts_with('/') {
            return Err(error("it is absolute"));
        }
        if text.contains('\\') {
            return Err(error("it holds a backslash"));
        }
        if text.chars().any(char::is_control) {
            return Err(error("it holds a control character"));
        }
        let mut parts = Vec::new();
        for part in text.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(error("it climbs out with `..`")),
                part => parts.push(part),
            }
        }
        if parts.is_empty() {
            return Err(error("it is empty"));
        }
        Ok(RelPath(parts.join("/")))
    }

    /// A path of exactly one component: a file name.
    pub fn file_name(text: &str) -> Result<RelPath, RelPathError> {
        let path = RelPath::new(text)?;
        if path.0.contains('/') || text.ends_with('/') {
            return Err(RelPathError {
                shown: text.escape_debug().to_string(),
                why: "a file name cannot hold `/`",
            });
        }
        Ok(path)
    }

    /// The path as `/`-separated text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its components.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The path under `root` (lexically; see [`open_regular`] for opening it safely).
    pub fn under(&self, root: &Path) -> PathBuf {
        root.join(&self.0)
    }
}

impl std::fmt::Display for RelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

const NO_FOLLOW: OFlag = OFlag::O_NOFOLLOW.union(OFlag::O_CLOEXEC);

/// Opens the folders of `parts` one by one from `root`, following no link; with `create`,
/// makes the missing ones (mode 0755).
fn open_folders(root: &Path, parts: &[&str], create: bool, shown: &RelPath) -> io::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | NO_FOLLOW;
    let mut dir: OwnedFd = File::open(root)?.into();
    for folder in parts {
        let opened = match openat(dir.as_fd(), *folder, flags, Mode::empty()) {
            Err(nix::Error::ENOENT) if create => {
                match mkdirat(dir.as_fd(), *folder, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(nix::Error::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                openat(dir.as_fd(), *folder, flags, Mode::empty())
            }
            other => other,
        };
        dir = opened.map_err(|e| link_error(e, shown))?;
    }
    Ok(dir)
}

/// `path`'s folders and its last component.
fn split(path: &RelPath) -> (Vec<&str>, &str) {
    let mut parts: Vec<&str> = path.components().collect();
    let last = parts.pop().unwrap_or_default();
    (parts, last)
}

/// Opens `path` under `root` for reading, following no symlink below `root`, and only when it
/// is a regular file. Returns the file and its length.
pub fn open_regular(root: &Path, path: &RelPath) -> io::Result<(File, u64)> {
    let flags = OFlag::O_RDONLY | NO_FOLLOW;
    let (folders, last) = split(path);
    let dir = open_folders(root, &folders, false, path)?;
    // Non-blocking, so that opening a FIFO returns at once (and is then refused).
    let fd = openat(dir.as_fd(), last, flags | OFlag::O_NONBLOCK, Mode::empty())
        .map_err(|e| link_error(e, path))?;
    let file = File::from(fd);
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other(format!(
            "{path} is not a regular file (a folder, FIFO or device)"
        )));
    }
    Ok((file, meta.len()))
}

/// The bytes of the regular file `path` under `root`, opened as [`open_regular`] opens it;
/// a file longer than `max` is refused before it is read (data can claim any size).
pub fn read_regular(root: &Path, path: &RelPath, max: u64) -> io::Result<Vec<u8>> {
    let (file, len) = open_regular(root, path)?;
    if len > max {
        return Err(io::Error::other(format!(
            "{path} is {len} bytes, more than the {max} it may be"
        )));
    }
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Writes `contents` to `path` under `root` through a new file in the same folder renamed into
/// place, so a reader sees the old file or the new one; makes missing folders. No link on the
/// way is followed, and a link at `path` itself is replaced, never written through.
pub fn write_under(
    root: &Path,
    path: &RelPath,
    contents: &mut dyn Read,
    mode: u32,
) -> io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let (folders, last) = split(path);
    let dir = open_folders(root, &folders, true, path)?;
    let temporary = format!(
        ".{last}.shipit-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | NO_FOLLOW;
    let fd = openat(
        dir.as_fd(),
        temporary.as_str(),
        flags,
        Mode::from_bits_truncate(0o600),
    )?;
    let written = (|| {
        let mut file = File::from(fd);
        io::copy(contents, &mut file)?;
        file.flush()?;
        fchmod(file.as_fd(), Mode::from_bits_truncate(mode))?;
        renameat(dir.as_fd(), temporary.as_str(), dir.as_fd(), last)?;
        Ok(())
    })();
    if written.is_err() {
        let _ = unlinkat(dir.as_fd(), temporary.as_str(), UnlinkatFlags::NoRemoveDir);
    }
    written
}

/// Removes the file `path` under `root`; a link there is removed itself, never what it points
/// at, and a missing file (or folder on the way) is no error.
pub fn remove_under(root: &Path, path: &RelPath) -> io::Result<()> {
    let (folders, last) = split(path);
    let dir = match open_folders(root, &folders, false, path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        other => other?,
    };
    match unlinkat(dir.as_fd(), last, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(nix::Error::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// What a folder entry is, looked at without following a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A folder.
    Folder,
    /// A link, FIFO, socket or device.
    Other,
}

/// The entries of the folder `path` under `root` (`None`: `root` itself), sorted by name, with
/// what each is; nothing when the folder is missing. A link on the way is an error.
pub fn list_under(root: &Path, path: Option<&RelPath>) -> io::Result<Vec<(String, EntryKind)>> {
    let (folders, shown) = match path {
        Some(path) => (path.components().collect(), path.clone()),
        None => (Vec::new(), RelPath(".".into())),
    };
    let dir = match open_folders(root, &folders, false, &shown) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other?,
    };
    let mut entries = Vec::new();
    let mut listing = nix::dir::Dir::from_fd(dir.try_clone()?)?;
    for entry in listing.iter() {
        let entry = entry?;
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        if name == "." || name == ".." {
            continue;
        }
        let stat = fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let kind = match SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFREG => EntryKind::File,
            SFlag::S_IFDIR => EntryKind::Folder,
            _ => EntryKind::Other,
        };
        entries.push((name.to_string(), kind));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

fn link_error(e: nix::Error, path: &RelPath) -> io::Error {
    match e {
        // O_NOFOLLOW on a link gives ELOOP; O_DIRECTORY on a link to a folder gives ENOTDIR.
        nix::Error::ELOOP | nix::Error::ENOTDIR => io::Error::other(format!(
            "{path} goes through a symbolic link or a non-folder; links are not followed"
        )),
        other => io::Error::from(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_relative_normal_paths_pass() {
        assert_eq!(RelPath::new("a/./b//c").unwrap().as_str(), "a/b/c");
        for bad in [
            "/etc/shadow",
            "../x",
            "a/../../x",
            "a\\b",
            "a\0b",
            "a\nb",
            "",
            ".",
            "./",
        ] {
            assert!(RelPath::new(bad).is_err(), "{bad:?}");
        }
        assert!(RelPath::file_name("a/b").is_err());
        assert!(RelPath::file_name("demo-1.0.tar.gz").is_ok());
    }

    #[test]
    fn opening_refuses_links_fifos_and_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/file"), "data").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("out")).unwrap();
        std::os::unix::fs::symlink("sub/file", root.join("link")).unwrap();
        nix::unistd::mkfifo(&root.join("fifo"), Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
        let open = |p: &str| open_regular(root, &RelPath::new(p).unwrap());
        assert_eq!(open("sub/file").unwrap().1, 4);
        for bad in ["out/hostname", "link", "fifo", "sub", "missing"] {
            assert!(open(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn writes_and_removes_never_go_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("root"), dir.path().join("outside"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("victim.txt"), "keep").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("pool")).unwrap();
        std::os::unix::fs::symlink(outside.join("victim.txt"), root.join("file")).unwrap();
        let rel = |p: &str| RelPath::new(p).unwrap();
        let mut bytes: &[u8] = b"new";
        assert!(write_under(&root, &rel("pool/victim.txt"), &mut bytes, 0o644).is_err());
        assert!(remove_under(&root, &rel("pool/victim.txt")).is_err());
        assert!(list_under(&root, Some(&rel("pool"))).is_err());
        // A link at the path itself is replaced by the file, and removing removes the link.
        let mut bytes: &[u8] = b"new";
        write_under(&root, &rel("file"), &mut bytes, 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(root.join("file")).unwrap(), "new");
        std::os::unix::fs::symlink(outside.join("victim.txt"), root.join("gone")).unwrap();
        remove_under(&root, &rel("gone")).unwrap();
        assert_eq!(
            std::fs::read_to_string(outside.join("victim.txt")).unwrap(),
            "keep"
        );
        let mut bytes: &[u8] = b"x";
        write_under(&root, &rel("a/b/c.txt"), &mut bytes, 0o644).unwrap();
        assert_eq!(
            list_under(&root, None).unwrap(),
            [
                ("a".to_string(), EntryKind::Folder),
                ("file".to_string(), EntryKind::File),
                ("pool".to_string(), EntryKind::Other)
            ]
        );
        remove_under(&root, &rel("missing/x")).unwrap();
    }
}
