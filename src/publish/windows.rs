//! What the Windows channels (Scoop, winget) share: the release's Windows zips read back for
//! the folder to extract and the `.exe` files, and the address of a released asset.

use std::path::Path;

use crate::error::Error;
use crate::manifest::{Artifact, Manifest};

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

/// The released asset's address: what the GitHub channel recorded, else the release's usual
/// download address.
pub fn asset_url(manifest: &Manifest, web_repo: &str, tag: &str, name: &str) -> String {
    manifest
        .published
        .github
        .as_ref()
        .and_then(|p| p.assets.get(name).cloned())
        .unwrap_or_else(|| format!("{web_repo}/releases/download/{tag}/{name}"))
}
