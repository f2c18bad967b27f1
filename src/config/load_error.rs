//! Why a pipeline file could not be loaded at all, and what to do about a missing one.

use std::path::{Path, PathBuf};

use super::{ConfigError, display_name};

/// The pipeline files in a `pipelines/` folder beside `path`, sorted: what `--pipeline`
/// could have named instead.
pub(super) fn candidates(path: &Path) -> Vec<PathBuf> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("pipelines");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .map(|p| p.strip_prefix("./").map(Path::to_path_buf).unwrap_or(p))
        .collect();
    found.sort();
    found
}

/// Why a pipeline file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// There is no such file.
    #[error("{}", missing_message(path, candidates))]
    Missing {
        /// The file asked for.
        path: PathBuf,
        /// Pipeline files that exist nearby (`pipelines/*.toml`).
        candidates: Vec<PathBuf>,
    },
    /// The file could not be read at all.
    #[error("cannot read pipeline file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file has problems; each is located.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

fn missing_message(path: &Path, candidates: &[PathBuf]) -> String {
    let mut text = format!(
        "there is no pipeline file {}: `shipit init` writes a starter one for the Cargo project here",
        display_name(path)
    );
    if !candidates.is_empty() {
        let names: Vec<String> = candidates.iter().map(|c| display_name(c)).collect();
        text.push_str(&format!(
            ", or name one with --pipeline: {}",
            names.join(", ")
        ));
    }
    text
}
