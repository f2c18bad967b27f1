//! What the Windows channels (Scoop, winget) share: the release's Windows zips read back for
//! the folder to extract and the `.exe` files, and the address of a released asset.

use std::path::Path;

use crate::error::Error;
use crate::manifest::{Artifact, ArtifactKind};
use crate::publish::Context;
use crate::publish::github;

/// What a Windows channel builds on: the GitHub release its URLs point at, and the release's
/// Windows zips.
pub struct WindowsRelease {
    /// `https://github.com/owner/name`.
    pub web_repo: String,
    /// The release's tag.
    pub tag: String,
    /// The zips, read back.
    pub zips: Vec<WindowsZip>,
}

/// The release a Windows channel (`[release.<channel>]`, publishing `what`) points at, or why
/// it is skipped this time (a pre-release without `prerelease = true`).
pub fn windows_release(
    cx: &Context<'_>,
    channel: &str,
    what: &str,
    prerelease: bool,
) -> Result<Result<WindowsRelease, String>, Error> {
    let Some(release) = crate::publish::github::config::section(cx.loaded)? else {
        return Err(Error::Usage(format!(
            "[release.{channel}] downloads from the GitHub release: add `[release.github]` too"
        )));
    };
    if github::is_prerelease(&release, cx.facts) && !prerelease {
        return Ok(Err(format!(
            "skipping {what}: {} is a pre-release (set `prerelease = true` in [release.{channel}] to publish it)",
            cx.facts.version
        )));
    }
    let zips: Vec<WindowsZip> = cx
        .manifest
        .artifacts
        .iter()
        .filter(|a| a.kind == ArtifactKind::Archive && a.os.as_deref() == Some("windows"))
        .filter(|a| a.name.ends_with(".zip"))
        .filter_map(|a| WindowsZip::read(cx.dist, a).transpose())
        .collect::<Result<_, _>>()?;
    if zips.is_empty() {
        return Err(Error::Usage(format!(
            "[release.{channel}]: the manifest has no Windows zip archives (x64, arm64 or x86)"
        )));
    }
    Ok(Ok(WindowsRelease {
        web_repo: format!(
            "{}/{}",
            github::server_url().trim_end_matches('/'),
            release.repo
        ),
        tag: github::release_tag(&release, cx.facts),
        zips,
    }))
}

/// A Windows zip as the Windows channels describe it: the architecture, the folder to extract,
/// where the binaries are inside it.
#[derive(Debug, Clone)]
pub struct WindowsZip {
    /// `x64`, `arm64` or `x86`.
    pub arch: &'static str,
    /// Its file name in the release.
    pub name: String,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// The one top folder every entry is in, if there is one.
    pub extract_dir: Option<String>,
    /// The `.exe` files, relative to `extract_dir`.
    pub bin: Vec<String>,
}

impl WindowsZip {
    /// Reads the archive's entries (from dist, written by this build).
    pub fn read(dist: &Path, artifact: &Artifact) -> Result<Option<WindowsZip>, Error> {
        let arch = match artifact.arch.as_deref() {
            Some("x64") => "x64",
            Some("arm64") => "arm64",
            Some("x86") => "x86",
            _ => return Ok(None),
        };
        let path = dist.join(&artifact.path);
        let failed = |e: &dyn std::fmt::Display| {
            Error::Failed(format!("cannot read {}: {e}", path.display()))
        };
        let file = std::fs::File::open(&path).map_err(|e| failed(&e))?;
        let zip = zip::ZipArchive::new(file).map_err(|e| failed(&e))?;
        let mut names = Vec::new();
        for name in zip.file_names() {
            let name = name.map_err(|e| failed(&e))?;
            if !name.ends_with('/') {
                names.push(name.into_owned());
            }
        }
        names.sort();
        let top = names
            .first()
            .and_then(|n| n.split_once('/'))
            .map(|(t, _)| t.to_owned());
        let extract_dir = top.filter(|t| names.iter().all(|n| n.starts_with(&format!("{t}/"))));
        let bin = names
            .iter()
            .filter(|n| n.ends_with(".exe"))
            .map(|n| match &extract_dir {
                Some(dir) => n[dir.len() + 1..].to_owned(),
                None => n.clone(),
            })
            .collect();
        Ok(Some(WindowsZip {
            arch,
            name: artifact.name.clone(),
            sha256: artifact.sha256.clone(),
            extract_dir,
            bin,
        }))
    }
}

pub use crate::publish::github::asset_url;
