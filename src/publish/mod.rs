//! Publishing what `shipit build` recorded in `dist/manifest.json`. One file per destination.

pub mod docker;
pub mod github;
pub mod homebrew;
