//! [`FileError`]: a file or folder that could not be read, written or made, named, with the
//! I/O error as its cause. Shared by every writer (archives, checksums, signatures, binaries).

use std::path::{Path, PathBuf};

/// What could not be done to which file, and why.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}", path.display())]
pub struct FileError {
    /// `read`, `write`, `create`.
    pub action: &'static str,
    /// The file or folder.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

impl FileError {
    /// Maps an I/O error on `path` while doing `action`.
    pub fn on(
        action: &'static str,
        path: &Path,
    ) -> impl FnOnce(std::io::Error) -> FileError + use<> {
        let path = path.to_path_buf();
        move |source| FileError {
            action,
            path,
            source,
        }
    }
}
