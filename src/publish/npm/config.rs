//! `[release.npm]` as the pipeline file writes it, and what `shipit check` checks of it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{Loaded, Problem};
use crate::path;

/// The public npm registry.
pub const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org/";
/// The variable holding the registry token unless `token_env` names another.
pub const DEFAULT_TOKEN_ENV: &str = "NPM_TOKEN";
/// The longest platform suffix added to the name (`-linux-arm64-musl`, `-darwin-universal`).
const LONGEST_SUFFIX: usize = "-freebsd-riscv64-musl".len();

/// `[release.npm]`: one package per platform holding the binary, and a root package that
/// depends on them optionally and runs the right one, so `npm i -g <name>` and `npx <name>`
/// work without an install script.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct NpmConfig {
    /// The root package's name, `name` or `@scope/name`; platform packages add
    /// `-<os>-<cpu>[-<libc>]`. Default: the project name.
    pub name: Option<String>,
    /// The registry. Default: `https://registry.npmjs.org/`.
    pub registry: Option<String>,
    /// The environment variable holding the registry token. Default: `NPM_TOKEN`.
    pub token_env: Option<String>,
    /// `public` or `restricted` (scoped packages only). Default: `public`.
    pub access: Option<Access>,
    /// The dist-tag. Default: `latest`, or `next` for a pre-release.
    pub tag: Option<String>,
    /// The binaries the root package runs. Default: every binary of the build.
    pub bin: Option<Vec<String>>,
    /// One-line description. Default: Cargo's.
    pub description: Option<String>,
    /// SPDX license. Default: Cargo's.
    pub license: Option<String>,
    /// Home page. Default: Cargo's, else the repository's page.
    pub homepage: Option<String>,
    /// Keywords of the root package.
    #[serde(default)]
    pub keywords: Vec<String>,
}

/// Who may install the packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Everyone.
    Public,
    /// The scope's members (scoped packages only).
    Restricted,
}

impl Access {
    /// As the registry spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Restricted => "restricted",
        }
    }
}

/// Why `name` is not a package name npm accepts for a new package, if it is not: lowercase,
/// at most 214 characters, URL-safe, an optional `@scope/`, no leading `.` or `_`.
pub fn package_name_problem(name: &str) -> Option<String> {
    let (scope, bare) = match name.strip_prefix('@') {
        Some(rest) => match rest.split_once('/') {
            Some((scope, bare)) => (Some(scope), bare),
            None => return Some(format!("`{name}`: a scoped name is `@scope/name`")),
        },
        None => (None, name),
    };
    let part_ok = |part: &str| {
        !part.is_empty()
            && !part.starts_with(['.', '_'])
            && part.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'-' | b'.' | b'_' | b'~')
            })
    };
    if !scope.is_none_or(part_ok) || !part_ok(bare) {
        return Some(format!(
            "`{name}` is not an npm package name: lowercase letters, digits and `- . _ ~`, not starting with `.` or `_`"
        ));
    }
    if name.len() + LONGEST_SUFFIX > 214 {
        return Some(format!(
            "`{name}` is too long: with a platform suffix it must stay within npm's 214 characters"
        ));
    }
    if ["node_modules", "favicon.ico"].contains(&bare) {
        return Some(format!("`{name}` is a name npm reserves"));
    }
    None
}

/// Why `tag` cannot be a dist-tag, if it cannot: npm refuses tags that read as versions or
/// ranges, and a tag travels in a URL.
pub fn tag_problem(tag: &str) -> Option<String> {
    let url_safe = !tag.is_empty()
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    let looks_like_version = tag.starts_with(|c: char| c.is_ascii_digit() || c == 'v')
        && tag
            .trim_start_matches('v')
            .starts_with(|c: char| c.is_ascii_digit());
    if !url_safe {
        Some(format!(
            "`{tag}` is not a dist-tag: letters, digits and `- . _`"
        ))
    } else if looks_like_version {
        Some(format!(
            "`{tag}` reads as a version: npm refuses dist-tags that do"
        ))
    } else {
        None
    }
}

/// Whether `name` can be an environment variable's name.
pub fn is_env_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Every problem of the section beyond its types, located.
pub fn check(loaded: &Loaded, npm: &NpmConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    let at = |key: &str| loaded.span(path!["release", "npm", key]);
    if let Some(why) = npm.name.as_deref().and_then(package_name_problem) {
        problems.push(Problem::new(why, at("name")).help("for example `@acme/demo`"));
    }
    if let Some(registry) = &npm.registry
        && !crate::http::feed::is_root_url(registry)
    {
        problems.push(
            Problem::new(
                format!("`{registry}` is not a registry address"),
                at("registry"),
            )
            .help("an http(s) address without credentials, such as https://registry.npmjs.org/"),
        );
    }
    if let Some(var) = &npm.token_env
        && !is_env_name(var)
    {
        problems.push(Problem::new(
            format!("`{var}` is not an environment variable name"),
            at("token_env"),
        ));
    }
    if let Some(why) = npm.tag.as_deref().and_then(tag_problem) {
        problems.push(Problem::new(why, at("tag")).help("for example `latest` or `beta`"));
    }
    if npm.access == Some(Access::Restricted)
        && !npm.name.as_deref().is_some_and(|n| n.starts_with('@'))
    {
        problems.push(
            Problem::new(
                "`access = \"restricted\"` needs a scoped `name` (`@scope/name`)",
                at("access"),
            )
            .help("npm restricts only scoped packages"),
        );
    }
    for (index, bin) in npm.bin.iter().flatten().enumerate() {
        if crate::relpath::RelPath::new(bin).is_err() || bin.contains('/') || bin.is_empty() {
            problems.push(Problem::new(
                format!("`{bin}` is not a binary's name"),
                loaded.span_near(path!["release", "npm", "bin", index]),
            ));
        }
    }
    for (index, keyword) in npm.keywords.iter().enumerate() {
        if keyword.trim().is_empty() || keyword.chars().any(char::is_control) {
            problems.push(Problem::new(
                "a keyword must be a non-empty line of text",
                loaded.span_near(path!["release", "npm", "keywords", index]),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_follow_npms_rules() {
        for good in ["demo", "@acme/demo", "my-cli.js", "a~b_c"] {
            assert_eq!(package_name_problem(good), None, "{good}");
        }
        for bad in [
            "Demo",
            "@acme",
            "@/demo",
            "@acme/",
            ".demo",
            "_demo",
            "de mo",
            "demo/x",
            "@acme/de%2fmo",
            "node_modules",
            "",
        ] {
            assert!(package_name_problem(bad).is_some(), "{bad}");
        }
        assert!(package_name_problem(&"a".repeat(200)).is_some());
    }

    #[test]
    fn dist_tags_may_not_read_as_versions() {
        assert_eq!(tag_problem("latest"), None);
        assert_eq!(tag_problem("beta-2"), None);
        assert!(tag_problem("1.2.0").is_some());
        assert!(tag_problem("v2").is_some());
        assert!(tag_problem("a/b").is_some());
        assert!(tag_problem("").is_some());
    }
}
