//! Homebrew: render `Formula/<name>.rb` for the released archives and push it to a tap.
//!
//! The formula has `on_macos` / `on_linux` blocks, each with `on_arm` / `on_intel` holding the
//! asset URL and SHA-256 (a universal macOS archive serves both). Every value goes through
//! [`ruby_string`], so no description can break the file or run code. The tap is cloned, the
//! formula written and committed only when it changed, and pushed; a push that lost a race
//! is rebased and retried. A token never enters a URL, the tap's git config or a command line:
//! it travels as an `http.extraHeader` in the environment of each git call
//! (`GIT_CONFIG_COUNT` / `GIT_CONFIG_KEY_n` / `GIT_CONFIG_VALUE_n`).

mod channel;
pub mod config;

pub use crate::publish::git::{GitFailed, GitRemote as Tap, Pushed, TapError, redact_url};
pub use channel::Homebrew;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::manifest::{ArtifactKind, Manifest};

/// The default formula template.
pub const DEFAULT_TEMPLATE: &str = include_str!("../../../templates/homebrew/formula.rb.j2");

/// Homebrew's class name for a formula name (`Formulary.class_s`): `my-tool` -> `MyTool`,
/// `foo.js` -> `FooJs`, `lib+plus` -> `LibxPlus`, `python@3` -> `PythonAT3`.
pub fn class_name(name: &str) -> String {
    let mut chars = name.chars();
    let mut capitalized: String = match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    };
    // A separator followed by a letter or digit goes; the letter is upper-cased.
    let mut out = String::with_capacity(capitalized.len());
    let mut iter = capitalized.chars().peekable();
    while let Some(c) = iter.next() {
        let separator = matches!(c, '-' | '_' | '.') || c.is_whitespace();
        match iter.peek() {
            Some(next) if separator && next.is_ascii_alphanumeric() => {
                out.extend(next.to_uppercase());
                iter.next();
            }
            _ => out.push(c),
        }
    }
    capitalized = out.replace('+', "x");
    // `@` before a digit becomes `AT`, once.
    if let Some(at) = capitalized.find('@') {
        let next_is_digit = capitalized[at + 1..].starts_with(|c: char| c.is_ascii_digit());
        if at > 0 && next_is_digit {
            capitalized.replace_range(at..at + 1, "AT");
        }
    }
    capitalized
}

/// A double-quoted Ruby string literal holding `text` exactly: quotes, backslashes, `#`
/// (so `#{...}` never interpolates) and control characters are escaped.
pub fn ruby_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '#' => out.push_str("\\#"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One download of a platform block.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Download {
    /// Asset URL.
    pub url: String,
    /// Its SHA-256.
    pub sha256: String,
}

/// The downloads for one OS.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Platform {
    /// ARM (Apple silicon, aarch64).
    pub arm: Option<Download>,
    /// Intel (x86_64).
    pub intel: Option<Download>,
}

/// A man page and its section.
#[derive(Debug, Clone, Serialize)]
pub struct ManPage {
    /// Path inside the archive.
    pub path: String,
    /// Section, from the extension (`demo.1` -> 1).
    pub section: String,
}

/// Everything a formula template sees.
#[derive(Debug, Clone, Serialize)]
pub struct Formula {
    /// Formula name.
    pub name: String,
    /// Ruby class name.
    pub class: String,
    /// Description.
    pub desc: String,
    /// Home page.
    pub homepage: String,
    /// Version.
    pub version: String,
    /// SPDX license.
    pub license: Option<String>,
    /// macOS downloads.
    pub macos: Option<Platform>,
    /// Linux downloads.
    pub linux: Option<Platform>,
    /// Binaries to install.
    pub binaries: Vec<String>,
    /// Completion files by shell (`bash`, `zsh`, `fish`).
    pub completions: BTreeMap<String, String>,
    /// Man pages.
    pub manpages: Vec<ManPage>,
    /// Dependencies.
    pub depends_on: Vec<String>,
    /// Conflicting formulae.
    pub conflicts_with: Vec<String>,
    /// Post-install text.
    pub caveats: Option<String>,
    /// Service command: binary then arguments.
    pub service: Option<Vec<String>>,
}

impl Formula {
    /// The platform blocks from the manifest's archives: `url_of` gives each asset's URL.
    /// A universal macOS archive serves ARM and Intel; on Linux a static (musl) build wins.
    pub fn platforms(
        manifest: &Manifest,
        url_of: impl Fn(&str) -> String,
    ) -> (Option<Platform>, Option<Platform>) {
        let mut macos = Platform::default();
        let mut linux = Platform::default();
        let mut archives: Vec<_> = manifest
            .artifacts
            .iter()
            .filter(|a| a.kind == ArtifactKind::Archive)
            .collect();
        // The first archive for a slot wins: single-architecture before universal, and static
        // (musl) before glibc on Linux.
        archives.sort_by_key(|a| {
            (
                a.arch.as_deref() == Some("universal"),
                !a.target.as_deref().unwrap_or("").contains("musl"),
            )
        });
        for artifact in archives {
            let download = Download {
                url: url_of(&artifact.name),
                sha256: artifact.sha256.clone(),
            };
            let slots: Vec<&mut Option<Download>> =
                match (artifact.os.as_deref(), artifact.arch.as_deref()) {
                    (Some("darwin"), Some("universal")) => vec![&mut macos.arm, &mut macos.intel],
                    (Some("darwin"), Some("arm64")) => vec![&mut macos.arm],
                    (Some("darwin"), Some("x64")) => vec![&mut macos.intel],
                    (Some("linux"), Some("arm64")) => vec![&mut linux.arm],
                    (Some("linux"), Some("x64")) => vec![&mut linux.intel],
                    _ => Vec::new(),
                };
            for slot in slots {
                slot.get_or_insert_with(|| download.clone());
            }
        }
        let keep = |p: Platform| (p.arm.is_some() || p.intel.is_some()).then_some(p);
        (keep(macos), keep(linux))
    }

    /// Renders the formula with `template` (minijinja, with a `ruby` filter for literals).
    pub fn render(&self, template: &str) -> Result<String, FormulaError> {
        // The class name is pasted as Ruby code, not as a literal: it must be a constant name.
        let mut chars = self.class.chars();
        let constant = chars.next().is_some_and(|c| c.is_ascii_uppercase())
            && chars.all(|c| c.is_ascii_alphanumeric());
        if !constant {
            return Err(FormulaError::ClassName {
                name: self.name.escape_debug().to_string(),
                class: self.class.escape_debug().to_string(),
            });
        }
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_filter("ruby", |value: String| ruby_string(&value));
        env.add_filter("spdx", |value: String| license_arguments(&value));
        let mut text = env
            .render_str(template, minijinja::Value::from_serialize(self))
            .map_err(FormulaError::Template)?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Ok(text)
    }
}

/// A licence expression as Cargo writes it (SPDX `OR`, `AND`, `WITH`, parentheses, or the
/// legacy `MIT/Apache-2.0`), as the arguments of Homebrew's `license`: `"MIT"`,
/// `any_of: ["MIT", "Apache-2.0"]`, `all_of: [...]`, `"GPL-2.0-only" => { with: "..." }`.
/// Text that is no such expression stays one literal string.
pub fn license_arguments(expression: &str) -> String {
    let tokens = license_tokens(expression);
    let mut at = 0;
    match parse_or(&tokens, &mut at) {
        Some(node) if at == tokens.len() => match node {
            License::Any(items) => format!("any_of: {}", license_list(&items)),
            License::All(items) => format!("all_of: {}", license_list(&items)),
            License::With(id, exception) => {
                format!(
                    "{} => {{ with: {} }}",
                    ruby_string(&id),
                    ruby_string(&exception)
                )
            }
            License::Id(id) => ruby_string(&id),
        },
        _ => ruby_string(expression.trim()),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum License {
    Id(String),
    With(String, String),
    Any(Vec<License>),
    All(Vec<License>),
}

fn license_tokens(text: &str) -> Vec<String> {
    let spaced = text
        .replace('(', " ( ")
        .replace(')', " ) ")
        .replace('/', " OR ");
    spaced.split_whitespace().map(String::from).collect()
}

fn parse_or(tokens: &[String], at: &mut usize) -> Option<License> {
    parse_joined(tokens, at, "OR", parse_and, License::Any)
}

fn parse_and(tokens: &[String], at: &mut usize) -> Option<License> {
    parse_joined(tokens, at, "AND", parse_with, License::All)
}

/// Items of `item` joined by `keyword`, as one `make` node (or the item itself when alone).
fn parse_joined(
    tokens: &[String],
    at: &mut usize,
    keyword: &str,
    item: fn(&[String], &mut usize) -> Option<License>,
    make: fn(Vec<License>) -> License,
) -> Option<License> {
    let mut items = vec![item(tokens, at)?];
    while tokens
        .get(*at)
        .is_some_and(|t| t.eq_ignore_ascii_case(keyword))
    {
        *at += 1;
        items.push(item(tokens, at)?);
    }
    Some(flatten(items, make))
}

fn parse_with(tokens: &[String], at: &mut usize) -> Option<License> {
    let token = tokens.get(*at)?;
    *at += 1;
    if token == "(" {
        let inner = parse_or(tokens, at)?;
        (tokens.get(*at)? == ")").then_some(())?;
        *at += 1;
        return Some(inner);
    }
    let is_id = |t: &str| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-+:".contains(c))
            && !["OR", "AND", "WITH"]
                .iter()
                .any(|k| t.eq_ignore_ascii_case(k))
    };
    if !is_id(token) {
        return None;
    }
    if tokens
        .get(*at)
        .is_some_and(|t| t.eq_ignore_ascii_case("WITH"))
    {
        let exception = tokens.get(*at + 1).filter(|t| is_id(t))?;
        *at += 2;
        return Some(License::With(token.clone(), exception.clone()));
    }
    Some(License::Id(token.clone()))
}

/// One item stays itself; `A OR (B OR C)` is one `any_of` of three.
fn flatten(items: Vec<License>, make: fn(Vec<License>) -> License) -> License {
    if items.len() == 1 {
        return items
            .into_iter()
            .next()
            .unwrap_or(License::Id(String::new()));
    }
    let mut flat = Vec::new();
    for item in items {
        match (item, make(Vec::new())) {
            (License::Any(inner), License::Any(_)) | (License::All(inner), License::All(_)) => {
                flat.extend(inner)
            }
            (other, _) => flat.push(other),
        }
    }
    make(flat)
}

/// A Ruby array of licence nodes; nested groups and exceptions are hashes.
fn license_list(items: &[License]) -> String {
    let item = |node: &License| match node {
        License::Id(id) => ruby_string(id),
        License::With(id, exception) => {
            format!(
                "{{ {} => {{ with: {} }} }}",
                ruby_string(id),
                ruby_string(exception)
            )
        }
        License::Any(inner) => format!("{{ any_of: {} }}", license_list(inner)),
        License::All(inner) => format!("{{ all_of: {} }}", license_list(inner)),
    };
    format!(
        "[{}]",
        items.iter().map(item).collect::<Vec<_>>().join(", ")
    )
}

/// The section of a man page from its extension (`demo.1` or `demo.1.gz` -> `1`).
pub fn man_section(path: &str) -> String {
    let name = path.trim_end_matches(".gz");
    name.rsplit('.')
        .next()
        .filter(|s| s.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(|s| s[..1].to_string())
        .unwrap_or_else(|| "1".to_string())
}

/// Why the formula was not rendered.
#[derive(Debug, thiserror::Error)]
pub enum FormulaError {
    /// The formula's name does not make a Ruby class name.
    #[error(
        "formula name `{name}` gives `{class}`, which is not a Ruby class name; use letters, digits, `-`, `_` and `.`"
    )]
    ClassName {
        /// The name.
        name: String,
        /// The class it gives.
        class: String,
    },
    /// The template does not render.
    #[error("formula template")]
    Template(#[source] minijinja::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_licence_expressions_become_homebrew_license_arguments() {
        assert_eq!(license_arguments("MIT"), r#""MIT""#);
        assert_eq!(
            license_arguments("MIT/Apache-2.0"),
            r#"any_of: ["MIT", "Apache-2.0"]"#
        );
        assert_eq!(
            license_arguments("MIT OR Apache-2.0"),
            r#"any_of: ["MIT", "Apache-2.0"]"#
        );
        assert_eq!(
            license_arguments("(MIT OR Apache-2.0) AND Unicode-3.0"),
            r#"all_of: [{ any_of: ["MIT", "Apache-2.0"] }, "Unicode-3.0"]"#
        );
        assert_eq!(
            license_arguments("Apache-2.0 WITH LLVM-exception OR MIT OR Unlicense"),
            r#"any_of: [{ "Apache-2.0" => { with: "LLVM-exception" } }, "MIT", "Unlicense"]"#
        );
        assert_eq!(
            license_arguments("GPL-2.0-only WITH Classpath-exception-2.0"),
            r#""GPL-2.0-only" => { with: "Classpath-exception-2.0" }"#
        );
        // Not an expression: one literal, never code.
        assert_eq!(
            license_arguments("see LICENSE\"; system(1)"),
            r#""see LICENSE\"; system(1)""#
        );
    }

    #[test]
    fn class_names_follow_homebrew() {
        assert_eq!(class_name("demo"), "Demo");
        assert_eq!(class_name("my-tool"), "MyTool");
        assert_eq!(class_name("foo_bar.baz"), "FooBarBaz");
        assert_eq!(class_name("libfoo2.0"), "Libfoo20");
        assert_eq!(class_name("lib+plus"), "Lib+plus".replace('+', "x"));
        assert_eq!(class_name("python@3"), "PythonAT3");
        assert_eq!(class_name("ABC"), "Abc");
    }

    #[test]
    fn ruby_strings_never_interpolate_or_break() {
        assert_eq!(ruby_string(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(ruby_string("#{system(\"x\")}"), r#""\#{system(\"x\")}""#);
        assert_eq!(ruby_string("1\n2\t\u{7}"), r#""1\n2\t\u{7}""#);
    }

    fn archive(target: &str, os: &str, arch: &str) -> crate::manifest::Artifact {
        crate::manifest::Artifact {
            name: format!("demo-{target}.tar.gz"),
            path: format!("demo-{target}.tar.gz"),
            kind: ArtifactKind::Archive,
            target: Some(target.into()),
            os: Some(os.into()),
            arch: Some(arch.into()),
            size: 1,
            sha256: format!("sha-{target}"),
        }
    }

    #[test]
    fn a_universal_archive_serves_both_macs_and_musl_wins_on_linux() {
        let manifest = Manifest {
            schema: crate::manifest::SCHEMA,
            project: "demo".into(),
            version: "1.0.0".into(),
            tag: "v1.0.0".into(),
            commit: "c".into(),
            date: "d".into(),
            artifacts: vec![
                archive("darwin-universal", "darwin", "universal"),
                archive("linux-x64", "linux", "x64"),
                archive("linux-x64-musl", "linux", "x64"),
            ],
            published: Default::default(),
            missing: Vec::new(),
            split: None,
        };
        let (macos, linux) = Formula::platforms(&manifest, |name| format!("https://x/{name}"));
        let macos = macos.unwrap();
        assert_eq!(macos.arm.as_ref().unwrap().sha256, "sha-darwin-universal");
        assert_eq!(macos.intel.as_ref().unwrap().sha256, "sha-darwin-universal");
        let linux = linux.unwrap();
        assert_eq!(linux.intel.unwrap().sha256, "sha-linux-x64-musl");
        assert!(linux.arm.is_none());
    }

    #[test]
    fn urls_lose_their_credentials_in_messages() {
        assert_eq!(
            redact_url("https://x-access-token:ghp_secret@github.com/a/b.git"),
            "https://***@github.com/a/b.git"
        );
        assert_eq!(
            redact_url("git@github.com:a/b.git"),
            "git@github.com:a/b.git"
        );
        assert_eq!(redact_url("/srv/tap.git"), "/srv/tap.git");
    }

    #[test]
    fn man_sections_come_from_extensions() {
        assert_eq!(man_section("man/demo.1"), "1");
        assert_eq!(man_section("man/demo.5.gz"), "5");
        assert_eq!(man_section("man/demo"), "1");
    }
}
