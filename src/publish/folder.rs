//! A package repository in a folder, as the APT and YUM channels share it: files written whole
//! and renamed into place, readable by everyone, so a web server serving the folder never shows
//! half a file; the packages of one format from the manifest; the key that signs; what an
//! update did and how it is told.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::KeyConfig;
use crate::error::Error;
use crate::file_error::FileError;
use crate::manifest::ArtifactKind;
use crate::openpgp::PgpKey;
use crate::publish::apt::config::GitLocation;
use crate::publish::git::{GitRemote, Pushed};
use crate::publish::{Context, Run};
use crate::tasks::KeySource;

/// What an update did, by path inside the repository.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Updated {
    /// Packages added.
    pub added: Vec<String>,
    /// Already there, identical.
    pub present: Vec<String>,
    /// Removed by `keep`.
    pub removed: Vec<String>,
}

impl Updated {
    /// Tells what changed in `repository` (`the APT repository`).
    pub fn tell(&self, run: &Run<'_>, repository: &str, keep: Option<usize>) {
        for added in &self.added {
            run.say(format!("added {added} to {repository}"));
        }
        for present in &self.present {
            run.say(format!("{present} is already in {repository}"));
        }
        for removed in &self.removed {
            run.say(format!("removed {removed} (keep = {})", keep.unwrap_or(0)));
        }
    }
}

/// The manifest's packages whose names end in `.<extension>`; a usage error naming the stage
/// to add when there are none.
pub fn packages(cx: &Context<'_>, channel: &str, extension: &str) -> Result<Vec<PathBuf>, Error> {
    let found: Vec<PathBuf> = cx
        .manifest
        .artifacts
        .iter()
        .filter(|a| a.kind == ArtifactKind::Package && a.name.ends_with(&format!(".{extension}")))
        .map(|a| cx.dist.join(&a.path))
        .collect();
    if found.is_empty() {
        return Err(Error::Usage(format!(
            "[release.{channel}] publishes .{extension} packages, and the manifest has none: add a `uses = \"{extension}\"` stage"
        )));
    }
    Ok(found)
}

/// The key that signs, loaded before anything is written: a missing key or a wrong password
/// is a usage error with the repository untouched.
pub fn signing_key(cx: &Context<'_>, channel: &str, key: &KeyConfig) -> Result<PgpKey, Error> {
    KeySource::from_config(key, cx.loaded)
        .load_pgp()
        .map_err(|e| Error::Usage(format!("[release.{channel}]: {e}")))
}

/// Unix seconds now (a repository's Release date and revision).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// File names of `paths`, for `--dry-run`.
pub fn names(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(", ")
}

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

/// Where a repository lives: a folder, or a branch of a git repository.
pub enum Location {
    /// A folder, updated in place.
    Folder(PathBuf),
    /// A checkout, updated and pushed.
    Git(GitRemote),
}

impl Location {
    /// From the section's `path` or `git` (checked to be exactly one when the file was read).
    pub fn from_config(
        cx: &Context<'_>,
        path: &Option<String>,
        git: &Option<GitLocation>,
    ) -> Location {
        match (path, git) {
            (_, Some(git)) => Location::Git(GitRemote {
                url: git.url.clone(),
                token: [crate::env_vars::GITHUB_TOKEN, crate::env_vars::GH_TOKEN]
                    .iter()
                    .find_map(|v| std::env::var(v).ok().filter(|t| !t.trim().is_empty())),
                branch: git.branch.clone(),
                folder: git.folder.clone().unwrap_or_default(),
                author: ("shipit".into(), "shipit@users.noreply.github.com".into()),
            }),
            (path, None) => Location::Folder(cx.loaded.resolve(path.as_deref().unwrap_or("."))),
        }
    }

    /// Where it is, for people (credentials removed).
    pub fn describe(&self) -> String {
        match self {
            Location::Folder(root) => root.display().to_string(),
            Location::Git(remote) => format!(
                "{} ({})",
                remote.display_url(),
                remote.branch.as_deref().unwrap_or("default branch")
            ),
        }
    }

    /// The `file:` address of a folder, when no `url` is given.
    pub fn folder_url(&self, scheme: &str) -> String {
        match self {
            Location::Folder(root) => format!("{scheme}{}", root.display()),
            Location::Git(remote) => remote.display_url(),
        }
    }

    /// Runs `update` on the repository's folder: in place, or in a checkout that is then
    /// committed and pushed (again on the winner's commit after a lost race). Returns what the
    /// last run did and, for git, how it was pushed.
    pub fn update<E>(
        &self,
        message: &str,
        update: impl Fn(&Path) -> Result<Updated, E>,
    ) -> Result<(Updated, Option<String>), Error>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        match self {
            Location::Folder(root) => Ok((update(root).map_err(Error::work)?, None)),
            Location::Git(remote) => {
                let mut last = Updated::default();
                let pushed = remote
                    .publish_folder(message, None, |dir| {
                        last = update(dir)?;
                        Ok::<(), E>(())
                    })
                    .map_err(Error::work)?;
                let note = match pushed {
                    Pushed::Unchanged => format!("{} is already up to date", remote.display_url()),
                    Pushed::Committed { branch, attempts } => format!(
                        "pushed to {branch} of {}{}",
                        remote.display_url(),
                        if attempts > 1 {
                            format!(
                                " (after {attempts} attempts: another release pushed first, its packages are kept)"
                            )
                        } else {
                            String::new()
                        }
                    ),
                    // Repositories are pushed without a pull request.
                    Pushed::Proposed { branch, .. } => {
                        format!("pushed to {branch} of {}", remote.display_url())
                    }
                };
                Ok((last, Some(note)))
            }
        }
    }
}
