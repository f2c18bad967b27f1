//! One safe relative path type for every path that comes from data (a pipeline file, a split
//! build's manifest, a checksum file), and opening files under a root without following a link.
//!
//! A [`RelPath`] is relative, normalised (`a/./b//c` is `a/b/c`), `/`-separated, and never holds
//! `..`, a backslash, a NUL or another control character: joined to its root it cannot leave it
//! lexically. [`open_regular`] then refuses symlinks on the way and anything that is not a
//! regular file (a FIFO or a device would hang or never end).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

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

/// Opens `path` under `root` for reading, following no symlink below `root`, and only when it
/// is a regular file. Returns the file and its length.
pub fn open_regular(root: &Path, path: &RelPath) -> io::Result<(File, u64)> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut dir: OwnedFd = File::open(root)?.into();
    let parts: Vec<&str> = path.components().collect();
    let (last, folders) = parts
        .split_last()
        .ok_or_else(|| io::Error::other("empty path"))?;
    for folder in folders {
        dir = openat(
            dir.as_fd(),
            *folder,
            flags | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .map_err(|e| link_error(e, path))?;
    }
    // Non-blocking, so that opening a FIFO returns at once (and is then refused).
    let fd = openat(dir.as_fd(), *last, flags | OFlag::O_NONBLOCK, Mode::empty())
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
}
