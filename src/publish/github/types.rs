//! What shipit sends to and reads from the GitHub API, as plain data.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A GitHub release as far as shipit needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct Release {
    /// Release id.
    pub id: u64,
    /// Tag.
    pub tag_name: String,
    /// Still a draft.
    pub draft: bool,
    /// Web page.
    pub html_url: String,
    /// RFC 6570 template of the upload address.
    pub upload_url: String,
    /// Published in a repository with immutable releases: its assets and tag are locked.
    #[serde(default)]
    pub immutable: bool,
}

/// A release asset as far as shipit needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct Asset {
    /// Asset id.
    pub id: u64,
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// `uploaded`, or `starter` when an upload broke.
    pub state: String,
    /// Download address.
    pub browser_download_url: String,
    /// `sha256:<hex>`, where GitHub reports it.
    #[serde(default)]
    pub digest: Option<String>,
}

/// A file to upload.
#[derive(Debug, Clone, Serialize)]
pub struct Upload {
    /// Asset name.
    pub name: String,
    /// Label shown on the release page.
    pub label: Option<String>,
    /// Local file.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// Its SHA-256.
    pub sha256: String,
    /// MIME type.
    pub content_type: String,
}

/// Title, notes and flags of a release.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseFields {
    /// Tag.
    pub tag: String,
    /// Commit the tag is created on, when it does not exist yet.
    pub commit: String,
    /// Title.
    pub name: String,
    /// Notes (markdown).
    pub notes: String,
    /// A pre-release.
    pub prerelease: bool,
    /// `"true"`, `"false"` or `"legacy"`.
    pub make_latest: String,
}
