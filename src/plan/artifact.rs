//! What a stage will produce, as planned, and the manifest record it becomes.

use std::path::PathBuf;

use serde::Serialize;

use crate::manifest::{Artifact, ArtifactKind};
use crate::reproducible::Normalization;
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
    /// Rewrite what the linker made of the clock, randomness and the build's folders (PE and
    /// Mach-O headers, the Mach-O debug map) after the link; see [`crate::reproducible`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalize: Option<Normalization>,
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
            normalize: None,
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
