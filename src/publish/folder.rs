//! A package repository in a folder, as the APT and YUM channels share it: a [`Tree`] that
//! writes files whole and follows no link the folder holds; the packages of one format from the manifest; the key that signs; what an
//! update did and how it is told.

use std::io;
use std::path::{Path, PathBuf};

use crate::config::KeyConfig;
use crate::error::Error;
use crate::file_error::FileError;
use crate::manifest::ArtifactKind;
use crate::openpgp::PgpKey;
use crate::publish::apt::config::GitLocation;
use crate::publish::git::{GitRemote, Pushed};
use crate::publish::{Context, Run};
use crate::relpath::{self, EntryKind, RelPath};
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

/// The longest index or metadata file read back from a repository (a hostile one could hold
/// any size).
const MAX_READ: u64 = 512 << 20;

/// A folder shipit updates in place (a package repository, a clone of a manifests repository)
/// whose contents are untrusted: every path is a [`RelPath`] under the root, opened without
/// following a link, for reads, writes and deletes alike. Writes go through a new file renamed
/// into place, readable by everyone, so a web server serving the folder never shows half a
/// file.
#[derive(Debug, Clone, Copy)]
pub struct Tree<'a> {
    root: &'a Path,
}

impl<'a> Tree<'a> {
    /// The folder at `root` (made when missing, on the first write).
    pub fn new(root: &'a Path) -> Tree<'a> {
        Tree { root }
    }

    fn checked(&self, action: &'static str, path: &str) -> Result<RelPath, FileError> {
        RelPath::new(path).map_err(|e| {
            FileError::on(action, &self.root.join(path))(io::Error::new(
                io::ErrorKind::InvalidInput,
                e,
            ))
        })
    }

    fn error(
        &self,
        action: &'static str,
        path: &str,
    ) -> impl FnOnce(io::Error) -> FileError + use<> {
        FileError::on(action, &self.root.join(path))
    }

    fn made(&self) -> Result<(), FileError> {
        std::fs::create_dir_all(self.root).map_err(FileError::on("create", self.root))
    }

    /// Writes `bytes` at `path`, whole.
    pub fn write(&self, path: &str, bytes: &[u8]) -> Result<(), FileError> {
        let rel = self.checked("write", path)?;
        self.made()?;
        let mut reader = bytes;
        relpath::write_under(self.root, &rel, &mut reader, 0o644).map_err(self.error("write", path))
    }

    /// Copies the file `from` (shipit's own) to `path`, whole.
    pub fn copy(&self, from: &Path, path: &str) -> Result<(), FileError> {
        let rel = self.checked("write", path)?;
        self.made()?;
        let mut file = std::fs::File::open(from).map_err(FileError::on("read", from))?;
        relpath::write_under(self.root, &rel, &mut file, 0o644).map_err(self.error("write", path))
    }

    /// The regular file at `path`, opened; `None` when it is missing.
    pub fn open(&self, path: &str) -> Result<Option<(std::fs::File, u64)>, FileError> {
        let rel = self.checked("read", path)?;
        match relpath::open_regular(self.root, &rel) {
            Ok(opened) => Ok(Some(opened)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error("read", path)(e)),
        }
    }

    /// The SHA-256 (lowercase hex) of the regular file at `path`; `None` when it is missing.
    pub fn sha256(&self, path: &str) -> Result<Option<String>, FileError> {
        match self.open(path)? {
            Some((file, _)) => crate::manifest::hash_reader(file)
                .map(|(_, sum)| Some(sum))
                .map_err(self.error("read", path)),
            None => Ok(None),
        }
    }

    /// The text of the regular file at `path`, at most 512 MiB; `None` when it is missing.
    pub fn read_text(&self, path: &str) -> Result<Option<String>, FileError> {
        match self.read(path)? {
            Some(bytes) => String::from_utf8(bytes).map(Some).map_err(|e| {
                self.error("read", path)(io::Error::new(io::ErrorKind::InvalidData, e))
            }),
            None => Ok(None),
        }
    }

    /// The bytes of the regular file at `path`, at most 512 MiB; `None` when it is missing.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>, FileError> {
        let rel = self.checked("read", path)?;
        match relpath::read_regular(self.root, &rel, MAX_READ) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error("read", path)(e)),
        }
    }

    /// Whether `path` is a regular file (reached without a link).
    pub fn is_file(&self, path: &str) -> bool {
        matches!(self.open(path), Ok(Some(_)))
    }

    /// Removes the file at `path` (a link there is removed, not what it points at).
    pub fn remove(&self, path: &str) -> Result<(), FileError> {
        let rel = self.checked("remove", path)?;
        relpath::remove_under(self.root, &rel).map_err(self.error("remove", path))
    }

    /// The entries of the folder `path` (`""`: the root) and what each is.
    pub fn list(&self, path: &str) -> Result<Vec<(String, EntryKind)>, FileError> {
        let rel = match path {
            "" => None,
            path => Some(self.checked("read", path)?),
        };
        relpath::list_under(self.root, rel.as_ref()).map_err(self.error("read", path))
    }
}

/// A repository to read back: its folder, or a clone of its branch (removed when dropped).
pub enum Readable {
    /// The folder it lives in.
    Folder(PathBuf),
    /// A clone made to read.
    Clone(crate::publish::git::ReadCopy),
}

impl Readable {
    /// The repository's root.
    pub fn path(&self) -> &Path {
        match self {
            Readable::Folder(root) => root,
            Readable::Clone(copy) => &copy.folder,
        }
    }
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
    ) -> Result<Location, Error> {
        Ok(match (path, git) {
            (_, Some(git)) => Location::Git(GitRemote {
                url: git.url.clone(),
                token: crate::publish::git::token_for(
                    &git.url,
                    git.token_env.as_deref(),
                    &[crate::env_vars::GITHUB_TOKEN, crate::env_vars::GH_TOKEN],
                )?,
                branch: git.branch.clone(),
                folder: git.folder.clone().unwrap_or_default(),
                author: ("shipit".into(), "shipit@users.noreply.github.com".into()),
            }),
            (path, None) => Location::Folder(cx.loaded.resolve(path.as_deref().unwrap_or("."))),
        })
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

    /// The repository as it is now, to read back (`release --check`): the folder itself, or a
    /// fresh clone of the branch.
    pub fn read(&self) -> Result<Readable, Error> {
        Ok(match self {
            Location::Folder(root) => Readable::Folder(root.clone()),
            Location::Git(remote) => Readable::Clone(remote.read_copy(None).map_err(Error::work)?),
        })
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
