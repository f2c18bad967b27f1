//! What a stage will produce, as planned, and the manifest record it becomes.

use std::path::PathBuf;

use serde::Serialize;

use crate::manifest::{Artifact, ArtifactKind};
use crate::targets::Target;

/// A file a stage will produce.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedArtifact {
    /// File name.
    pub name: String,
    /// What it is.
    pub kind: ArtifactKind,
    /// Path inside the dist folder (`/`-separated).
    pub path: String,
    /// Where the stage's commands leave it; copied into the dist folder afterwards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
    /// The target it was built for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// Rewrite link timestamps the binary records (PE headers) to this time, for reproducible
    /// builds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reproducible_time: Option<u64>,
}

impl PlannedArtifact {
    /// A file a stage writes into dist itself at `path`; its name is the path's last part.
    pub fn written(path: String, kind: ArtifactKind, target: Option<Target>) -> PlannedArtifact {
        PlannedArtifact {
            name: path.rsplit('/').next().unwrap_or(&path).to_string(),
            kind,
            path,
            source: None,
            target,
            reproducible_time: None,
        }
    }
}

impl PlannedArtifact {
    /// The manifest's record of this artifact once made: everything but its size and digest
    /// comes from the plan.
    pub fn record(&self, size: u64, sha256: String) -> Artifact {
        Artifact {
            name: self.name.clone(),
            path: self.path.clone(),
            kind: self.kind,
            target: self.target.as_ref().map(|t| t.name.clone()),
            os: self.target.as_ref().map(|t| t.os.clone()),
            arch: self.target.as_ref().map(|t| t.arch.clone()),
            size,
            sha256,
        }
    }
}
