//! Files of a published folder (a package repository): written whole and renamed into place,
//! readable by everyone, so a web server serving the folder never shows half a file.

use std::io::Write;
use std::path::Path;

use crate::file_error::FileError;

/// Writes through a temporary file in the same folder and renames it into place: a reader
/// sees the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(FileError::on("create", parent))?;
    let mut file =
        tempfile::NamedTempFile::new_in(parent).map_err(FileError::on("create", parent))?;
    file.write_all(bytes)
        .map_err(FileError::on("write", path))?;
    readable(&file, path)?;
    file.persist(path)
        .map_err(|e| FileError::on("write", path)(e.error))?;
    Ok(())
}

/// Mode 0644: a repository is served to everyone (temporary files start private).
fn readable(file: &tempfile::NamedTempFile, path: &Path) -> Result<(), FileError> {
    use std::os::unix::fs::PermissionsExt;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(FileError::on("write", path))
}

/// Copies `from` to `to` the same way: whole, then renamed into place.
pub fn copy_atomically(from: &Path, to: &Path) -> Result<(), FileError> {
    let parent = to.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(FileError::on("create", parent))?;
    let file = tempfile::NamedTempFile::new_in(parent).map_err(FileError::on("create", parent))?;
    std::fs::copy(from, file.path()).map_err(FileError::on("read", from))?;
    readable(&file, to)?;
    file.persist(to)
        .map_err(|e| FileError::on("write", to)(e.error))?;
    Ok(())
}
