//! `[release.chocolatey]` as the pipeline file writes it, and what `shipit check` checks of it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{Loaded, Problem};
use crate::path;
use crate::publish::npm::config::is_env_name;

/// The community feed's push address.
pub const DEFAULT_SOURCE: &str = "https://push.chocolatey.org/";
/// The variable holding the API key unless `api_key_env` names another.
pub const DEFAULT_API_KEY_ENV: &str = "CHOCOLATEY_API_KEY";

/// `[release.chocolatey]`: a `.nupkg` whose install script downloads the GitHub release's
/// Windows zip and checks its SHA-256, pushed to a NuGet v2 feed (the community repository or
/// your own), so `choco install <id>` works.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ChocolateyConfig {
    /// Package id. Default: the project name.
    pub id: Option<String>,
    /// The feed: `https://push.chocolatey.org/` (the default), or a NuGet v2 feed such as
    /// `https://nexus.example.com/repository/choco/`.
    pub source: Option<String>,
    /// The environment variable holding the feed's API key. Default: `CHOCOLATEY_API_KEY`.
    pub api_key_env: Option<String>,
    /// Display title. Default: the id.
    pub title: Option<String>,
    /// Authors of the software. Default: Cargo's authors, else the project name.
    pub authors: Option<String>,
    /// Description (Markdown). Default: Cargo's description.
    pub description: Option<String>,
    /// One-line summary. Default: Cargo's description.
    pub summary: Option<String>,
    /// Project page. Default: Cargo's home page, else the GitHub repository's page.
    pub project_url: Option<String>,
    /// License text's address.
    pub license_url: Option<String>,
    /// Icon's address.
    pub icon_url: Option<String>,
    /// Tags (no spaces in a tag).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Release notes. Default: the GitHub release's address.
    pub release_notes: Option<String>,
    /// Users must accept the license to install.
    #[serde(default)]
    pub require_license_acceptance: bool,
    /// Publish pre-releases too.
    #[serde(default)]
    pub prerelease: bool,
}

/// Why `id` is not a package id NuGet and Chocolatey accept, if it is not.
pub fn id_problem(id: &str) -> Option<String> {
    let ok = (1..=100).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && !id.ends_with('.');
    (!ok).then(|| {
        format!("`{id}` is not a package id: letters, digits and `. - _`, starting with a letter or digit, at most 100 characters")
    })
}

/// Every problem of the section beyond its types, located.
pub fn check(loaded: &Loaded, choco: &ChocolateyConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    let at = |key: &str| loaded.span(path!["release", "chocolatey", key]);
    if let Some(why) = choco.id.as_deref().and_then(id_problem) {
        problems.push(Problem::new(why, at("id")).help("for example `demo`"));
    }
    if let Some(source) = &choco.source
        && !crate::http::feed::is_root_url(source)
    {
        problems.push(
            Problem::new(format!("`{source}` is not a feed address"), at("source")).help(
                "an http(s) address without credentials, such as https://push.chocolatey.org/",
            ),
        );
    }
    if let Some(var) = &choco.api_key_env
        && !is_env_name(var)
    {
        problems.push(Problem::new(
            format!("`{var}` is not an environment variable name"),
            at("api_key_env"),
        ));
    }
    for (key, value) in [
        ("project_url", &choco.project_url),
        ("license_url", &choco.license_url),
        ("icon_url", &choco.icon_url),
    ] {
        if let Some(url) = value
            && url::Url::parse(url).map_or(true, |u| !matches!(u.scheme(), "https" | "http"))
        {
            problems.push(Problem::new(
                format!("`{url}` is not an http(s) address"),
                at(key),
            ));
        }
    }
    for (index, tag) in choco.tags.iter().enumerate() {
        if tag.is_empty() || tag.chars().any(|c| c.is_whitespace() || c.is_control()) {
            problems.push(Problem::new(
                format!("`{tag}` is not a tag: tags are words without spaces"),
                loaded.span_near(path!["release", "chocolatey", "tags", index]),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_nugets_rules() {
        for good in ["demo", "Acme.Demo", "demo-cli", "a_b"] {
            assert_eq!(id_problem(good), None, "{good}");
        }
        for bad in [
            "",
            ".demo",
            "-demo",
            "demo.",
            "de mo",
            "de/mo",
            "dé",
            &"a".repeat(101),
        ] {
            assert!(id_problem(bad).is_some(), "{bad}");
        }
    }
}
