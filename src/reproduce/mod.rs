//! `shipit reproduce`: anyone rebuilds a published release from its tag, in a fresh folder,
//! and every published file is compared with the rebuilt one.
//!
//! The steps, one way: what the release published ([`published`]: a GitHub release, or a
//! manifest in a folder or at an address) and what its provenance says it was built with;
//! the toolchain checked (or installed); the tag cloned and built by this shipit without the
//! project's keys ([`rebuild`]); each file compared ([`compare`]: the same bytes, a signature
//! that holds over the rebuilt file, or where they part).

pub mod attest;
pub mod compare;
mod entries;
pub mod published;
pub mod rebuild;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use compare::{Outcome, Verdict};
pub use published::{GithubRelease, ManifestRelease, Published, PublishedFile};
pub use rebuild::Recorded;

use crate::minisign::PublicKey;

/// Why a reproduction could not be made (as opposed to one that was made and differs).
#[derive(Debug, thiserror::Error)]
pub enum ReproduceError {
    /// What was asked for cannot be done as asked (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Something this machine could not do (a folder, a process).
    #[error("{0}")]
    Setup(String),
    /// An answer from outside that is refused (a release, a source, a download).
    #[error("{0}")]
    Refused(String),
    /// The rebuild itself failed.
    #[error("{0}")]
    Rebuild(String),
    /// GitHub's API.
    #[error(transparent)]
    Github(#[from] crate::publish::github::GithubError),
}

/// What to reproduce, and how.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The tag; defaults to the manifest's.
    pub tag: Option<String>,
    /// `owner/name` on GitHub.
    pub repo: Option<String>,
    /// A manifest (file, folder or address) instead of the GitHub release.
    pub manifest: Option<String>,
    /// The git repository to clone; defaults to the GitHub repository.
    pub source: Option<String>,
    /// The pipeline file inside the clone when the release records none.
    pub pipeline: PathBuf,
    /// Where to work and leave everything; a fresh temporary folder, removed after, if unset.
    pub work_dir: Option<PathBuf>,
    /// The minisign key the release's signatures are checked with.
    pub public_key: Option<PathBuf>,
    /// Rebuild with this machine's toolchain even when the release records another.
    pub any_toolchain: bool,
    /// The trusted root Sigstore bundles are checked against (the public-good one when unset).
    pub trusted_root: Option<PathBuf>,
    /// The GitHub API root.
    pub api_url: String,
    /// A GitHub token, or empty.
    pub token: String,
}

/// The result: what was rebuilt, and each published file against it.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Which release.
    pub release: String,
    /// The tag.
    pub tag: String,
    /// The commit rebuilt.
    pub commit: String,
    /// What the release records of its build.
    pub recorded: Recorded,
    /// The toolchain the rebuild used, when not the active one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toolchain: Option<String>,
    /// Where the work is kept (with `--work-dir`, or after a failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folder: Option<PathBuf>,
    /// Each published file.
    pub files: Vec<Outcome>,
}

impl Report {
    /// Whether every published file was reproduced.
    pub fn reproduced(&self) -> bool {
        !self.files.is_empty() && self.files.iter().all(|f| f.verdict.ok())
    }
}

/// Rebuilds the release `options` names and compares it; `say` hears each step.
pub fn run(options: &Options, say: &dyn Fn(&str)) -> Result<Report, ReproduceError> {
    let published: Box<dyn Published> = match (&options.manifest, &options.repo, &options.tag) {
        (Some(manifest), _, _) => Box::new(ManifestRelease::open(manifest)?),
        (None, Some(repo), Some(tag)) => Box::new(GithubRelease::open(
            &options.api_url,
            &options.token,
            repo,
            tag,
        )?),
        (None, None, _) => {
            return Err(ReproduceError::Usage(
                "which release? name the GitHub repository (--repo OWNER/NAME, or run where \
                 the pipeline has [release.github]) or give --manifest"
                    .into(),
            ));
        }
        (None, Some(_), None) => {
            return Err(ReproduceError::Usage("name the tag to reproduce".into()));
        }
    };
    let manifest = published.manifest();
    let tag = match (&options.tag, manifest) {
        (Some(tag), _) => tag.clone(),
        (None, Some(m)) => m.tag.clone(),
        (None, None) => return Err(ReproduceError::Usage("name the tag to reproduce".into())),
    };
    say(&format!(
        "{}: {} files",
        published.describe(),
        published.files().len()
    ));
    let (work, temporary) = work_folder(options.work_dir.as_deref())?;
    let scratch = work.join("published");
    std::fs::create_dir_all(&scratch)
        .map_err(|e| ReproduceError::Setup(format!("{}: {e}", scratch.display())))?;
    let mut recorded = recorded(published.as_ref(), &scratch)?;
    if let Some(m) = manifest {
        recorded.commit = recorded.commit.or_else(|| Some(m.commit.clone()));
        recorded.source_date_epoch = recorded.source_date_epoch.or_else(|| epoch_of(&m.date));
    }
    if let Some(theirs) = recorded
        .shipit
        .as_deref()
        .filter(|v| *v != env!("CARGO_PKG_VERSION"))
    {
        say(&format!(
            "warning: the release was built by shipit {theirs}, this is {}: a difference may be shipit's",
            env!("CARGO_PKG_VERSION")
        ));
    }
    let toolchain = rebuild::toolchain(recorded.rustc.as_deref(), options.any_toolchain)?;
    if let Some(t) = &toolchain {
        say(&format!(
            "rebuilding with rust {t}, as the release was built"
        ));
    }
    let source = match (&options.source, &options.repo) {
        (Some(source), _) => source.clone(),
        (None, Some(repo)) => format!("{}/{repo}.git", crate::github_urls::server_url()),
        (None, None) => {
            return Err(ReproduceError::Usage(
                "where is the source? give --source GIT-URL or --repo OWNER/NAME".into(),
            ));
        }
    };
    say(&format!(
        "cloning {tag} from {}",
        crate::publish::git::redact_url(&source)
    ));
    let (clone, commit) = rebuild::clone(&source, &tag, recorded.commit.as_deref(), &work)?;
    let pipeline = pipeline_in_clone(&recorded, &options.pipeline, &clone)?;
    say(&format!(
        "rebuilding {commit} in {} (log: {})",
        clone.display(),
        work.join("build.log").display()
    ));
    let built = rebuild::build(
        &clone,
        &pipeline,
        recorded.source_date_epoch,
        toolchain.as_deref(),
        &work,
        &work.join("build.log"),
    );
    let built = match built {
        Ok(built) => built,
        Err(e) => {
            // The log is the one thing that says why: the folder stays.
            if let Some(dir) = temporary {
                let _ = dir.keep();
            }
            return Err(e);
        }
    };
    let pinned = match &options.public_key {
        Some(path) => Some(read_key(path)?),
        None => None,
    };
    let trusted_root = match &options.trusted_root {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| crate::sigstore::TrustedRoot::from_json(&text))
            .map_err(|e| {
                ReproduceError::Usage(format!("--trusted-root {}: {e}", path.display()))
            })?,
        None => crate::sigstore::TrustedRoot::public_good(),
    };
    let files = compare::compare(&compare::Sides {
        published: published.as_ref(),
        rebuilt: &built.manifest,
        dist: &built.dist,
        scratch: &scratch,
        pinned: pinned.as_ref(),
        trusted_root: &trusted_root,
    })?;
    let folder = temporary.is_none().then(|| work.clone());
    Ok(Report {
        release: published.describe(),
        tag,
        commit,
        recorded,
        toolchain,
        folder,
        files,
    })
}

/// The work folder: the one given (created, and refused unless empty), else a temporary one.
fn work_folder(
    given: Option<&Path>,
) -> Result<(PathBuf, Option<tempfile::TempDir>), ReproduceError> {
    let setup =
        |path: &Path, e: std::io::Error| ReproduceError::Setup(format!("{}: {e}", path.display()));
    match given {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| setup(dir, e))?;
            if std::fs::read_dir(dir)
                .map_err(|e| setup(dir, e))?
                .next()
                .is_some()
            {
                return Err(ReproduceError::Usage(format!(
                    "--work-dir {} is not empty: a rebuild starts from nothing",
                    dir.display()
                )));
            }
            let dir = std::path::absolute(dir).map_err(|e| setup(dir, e))?;
            Ok((dir, None))
        }
        None => {
            let dir = tempfile::Builder::new()
                .prefix("shipit-reproduce-")
                .tempdir()
                .map_err(|e| setup(&std::env::temp_dir(), e))?;
            Ok((dir.path().to_path_buf(), Some(dir)))
        }
    }
}

/// What the release's provenance (its one `.intoto.jsonl`) records of the build.
fn recorded(published: &dyn Published, scratch: &Path) -> Result<Recorded, ReproduceError> {
    let Some(file) = published
        .files()
        .iter()
        .find(|f| f.name.ends_with(".intoto.jsonl"))
    else {
        return Ok(Recorded::default());
    };
    let path = scratch.join(&file.name);
    published.fetch(file, &path)?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ReproduceError::Refused(format!("{}: {e}", file.name)))?;
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let statement = crate::provenance::read_unverified(line)
        .map_err(|e| ReproduceError::Refused(format!("{}: {e}", file.name)))?;
    Ok(Recorded::from_provenance(&statement))
}

/// The pipeline file in the clone: the one the release records (checked against its digest),
/// else `fallback`; never a path out of the clone.
fn pipeline_in_clone(
    recorded: &Recorded,
    fallback: &Path,
    clone: &Path,
) -> Result<PathBuf, ReproduceError> {
    let text = match &recorded.pipeline {
        Some(path) => path.clone(),
        None => fallback.to_string_lossy().into_owned(),
    };
    let path = crate::relpath::RelPath::new(&text).map_err(|e| {
        ReproduceError::Refused(format!("the pipeline `{}`: {e}", text.escape_debug()))
    })?;
    let full = path.under(clone);
    if let Some(expected) = &recorded.pipeline_sha256 {
        let (_, found) = crate::manifest::hash_file(&full)
            .map_err(|e| ReproduceError::Refused(format!("{}: {e}", path.as_str())))?;
        if !found.eq_ignore_ascii_case(expected) {
            return Err(ReproduceError::Refused(format!(
                "{} at the tag is not the pipeline the release was built with (sha256:{found}, \
                 recorded sha256:{expected})",
                path.as_str()
            )));
        }
    }
    Ok(PathBuf::from(path.as_str()))
}

/// Seconds since 1970 of an RFC 3339 time.
fn epoch_of(date: &str) -> Option<u64> {
    let time = humantime::parse_rfc3339(date).ok()?;
    time.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

fn read_key(path: &Path) -> Result<PublicKey, ReproduceError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ReproduceError::Usage(format!("--public-key {}: {e}", path.display())))?;
    PublicKey::from_text(&text)
        .map_err(|e| ReproduceError::Usage(format!("--public-key {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_pipeline_outside_the_clone_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for path in ["../shipit.toml", "/etc/shipit.toml"] {
            let recorded = Recorded {
                pipeline: Some(path.into()),
                ..Recorded::default()
            };
            let err = pipeline_in_clone(&recorded, Path::new("shipit.toml"), dir.path());
            assert!(matches!(err, Err(ReproduceError::Refused(_))), "{path}");
        }
    }

    #[test]
    fn a_pipeline_that_is_not_the_recorded_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("shipit.toml"), "version = 1\n").unwrap();
        let recorded = Recorded {
            pipeline: Some("shipit.toml".into()),
            pipeline_sha256: Some("00".repeat(32)),
            ..Recorded::default()
        };
        let err = pipeline_in_clone(&recorded, Path::new("x"), dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("not the pipeline the release was built with")
        );
    }

    #[test]
    fn the_manifest_date_gives_the_epoch() {
        assert_eq!(epoch_of("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(epoch_of("yesterday"), None);
    }
}
