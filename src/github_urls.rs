//! The one place that knows where a GitHub (or GitHub Enterprise Server) installation answers:
//! its REST API and the web root that release pages and downloads are under. Every layer that
//! writes a GitHub address (the install scripts, the release, taps, buckets, npm metadata)
//! asks here, so an Enterprise server set by either variable is honoured everywhere.

use crate::config::Loaded;
use crate::env_vars::{GITHUB_API_URL, GITHUB_SERVER_URL};

/// The release section of the GitHub channel: `[release.github]`.
pub const SECTION: &str = "github";

/// `owner/name` from `[release.github]`, for the stages whose default download place is the
/// GitHub release (installers, provenance); `None` when the section is absent or unreadable
/// (the channel's own check reports it).
pub fn release_repo(loaded: &Loaded) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Repo {
        repo: String,
    }
    loaded
        .channel_section::<Repo>(SECTION)
        .ok()
        .flatten()
        .map(|r| r.repo)
}

/// The API root: `GITHUB_API_URL`, else github.com's.
pub fn api_url() -> String {
    non_empty(GITHUB_API_URL).unwrap_or_else(|| "https://api.github.com".into())
}

/// The web root: `GITHUB_SERVER_URL`, else the one `GITHUB_API_URL` belongs to
/// (`https://HOST/api/v3` is under `https://HOST`), else github.com.
pub fn server_url() -> String {
    non_empty(GITHUB_SERVER_URL)
        .or_else(|| non_empty(GITHUB_API_URL).map(|api| web_of(&api)))
        .unwrap_or_else(|| "https://github.com".into())
        .trim_end_matches('/')
        .to_string()
}

/// Where a release's files download from: `<web>/<repo>/releases/download/<tag>`.
pub fn download_base(repo: &str, tag: &str) -> String {
    format!("{}/{repo}/releases/download/{tag}", server_url())
}

/// The web root of the installation whose API is at `api`.
fn web_of(api: &str) -> String {
    let api = api.trim_end_matches('/');
    if api == "https://api.github.com" {
        return "https://github.com".into();
    }
    api.strip_suffix("/api/v3").unwrap_or(api).to_string()
}

fn non_empty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_enterprise_api_url_gives_its_web_root() {
        assert_eq!(web_of("https://api.github.com"), "https://github.com");
        assert_eq!(
            web_of("https://ghe.acme.example/api/v3"),
            "https://ghe.acme.example"
        );
        assert_eq!(
            web_of("https://ghe.acme.example/api/v3/"),
            "https://ghe.acme.example"
        );
    }
}
