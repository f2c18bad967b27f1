//! Release notes: this version's section of `CHANGELOG.md` when there is one, otherwise the
//! commits since the previous tag grouped by conventional-commit type, with a compare link.
//! Rendered through a minijinja template (`templates/release-notes.md.j2` by default).

use std::path::Path;

use serde::Serialize;

/// The default template.
pub const DEFAULT_TEMPLATE: &str = include_str!("../templates/release-notes.md.j2");

/// One commit, parsed as a conventional commit where it is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Commit {
    /// Full hash.
    pub hash: String,
    /// Abbreviated hash.
    pub short: String,
    /// `feat`, `fix`, ..., or `None` for a free-form subject.
    pub kind: Option<String>,
    /// The `(scope)`, if any.
    pub scope: Option<String>,
    /// The description (the whole subject for free-form commits).
    pub description: String,
    /// Marked `!` or with a `BREAKING CHANGE` footer.
    pub breaking: bool,
}

impl Commit {
    /// Parses `type(scope)!: description`; anything else is kept whole as "other".
    pub fn parse(hash: &str, subject: &str, body: &str) -> Commit {
        let short: String = hash.chars().take(7).collect();
        let breaking_footer =
            body.contains("BREAKING CHANGE:") || body.contains("BREAKING-CHANGE:");
        let parsed = subject.split_once(": ").and_then(|(head, description)| {
            let (head, bang) = match head.strip_suffix('!') {
                Some(h) => (h, true),
                None => (head, false),
            };
            let (kind, scope) = match head.split_once('(') {
                Some((kind, rest)) => (kind, Some(rest.strip_suffix(')')?.to_string())),
                None => (head, None),
            };
            let valid = !kind.is_empty() && kind.chars().all(|c| c.is_ascii_alphabetic());
            valid.then(|| {
                (
                    kind.to_ascii_lowercase(),
                    scope,
                    description.trim().to_string(),
                    bang,
                )
            })
        });
        match parsed {
            Some((kind, scope, description, bang)) => Commit {
                hash: hash.to_string(),
                short,
                kind: Some(kind),
                scope,
                description,
                breaking: bang || breaking_footer,
            },
            None => Commit {
                hash: hash.to_string(),
                short,
                kind: None,
                scope: None,
                description: subject.trim().to_string(),
                breaking: breaking_footer,
            },
        }
    }
}

/// Commits under one heading.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// The heading.
    pub title: &'static str,
    /// Its commits, newest first.
    pub commits: Vec<Commit>,
}

/// Groups commits: features, fixes, performance, then everything else. Chores, CI, docs,
/// style, test and build commits go under "Other changes"; merge commits are dropped.
pub fn group(commits: Vec<Commit>) -> Vec<Group> {
    let mut groups = vec![
        Group {
            title: "Features",
            commits: Vec::new(),
        },
        Group {
            title: "Bug fixes",
            commits: Vec::new(),
        },
        Group {
            title: "Performance",
            commits: Vec::new(),
        },
        Group {
            title: "Other changes",
            commits: Vec::new(),
        },
    ];
    for commit in commits {
        if commit.kind.is_none() && commit.description.starts_with("Merge ") {
            continue;
        }
        let index = match commit.kind.as_deref() {
            Some("feat") => 0,
            Some("fix") => 1,
            Some("perf") => 2,
            _ => 3,
        };
        groups[index].commits.push(commit);
    }
    groups.retain(|g| !g.commits.is_empty());
    groups
}

/// A heading of a markdown file: its level (1 for `#` or `===`, 2 for `##` or `---`, ...), its
/// text, and the lines it spans.
struct Heading<'a> {
    level: usize,
    text: &'a str,
    first_line: usize,
    body_start: usize,
}

/// Every ATX (`## 1.2.0`) and setext (`1.2.0 (2024-09-08)` over `===` or `---`) heading.
fn headings<'a>(lines: &[&'a str]) -> Vec<Heading<'a>> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with([' ', '\t']) {
            found.push(Heading {
                level: hashes,
                text: line[hashes..].trim().trim_end_matches('#').trim(),
                first_line: i,
                body_start: i + 1,
            });
        } else if let Some(under) = lines.get(i + 1) {
            let under = under.trim_end();
            let setext = |c: char| under.len() >= 3 && under.chars().all(|x| x == c);
            let level = if setext('=') {
                Some(1)
            } else if setext('-') {
                Some(2)
            } else {
                None
            };
            if let Some(level) = level.filter(|_| !line.trim().is_empty()) {
                found.push(Heading {
                    level,
                    text: line.trim(),
                    first_line: i,
                    body_start: i + 2,
                });
                i += 2;
                continue;
            }
        }
        i += 1;
    }
    found
}

/// Whether a heading names `version`: `[1.2.0] - 2026-01-02`, `v1.2.0`, `1.2.0 (2024-09-08)`,
/// `Version 1.2.0`, `[1.2.0](https://...)`, `Release v1.2.0:`.
fn names_version(text: &str, version: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || "[]()".contains(c))
        .filter(|w| !w.is_empty())
        .take(3)
        .any(|word| {
            let word = word.trim_end_matches([':', ',']);
            word.strip_prefix('v').unwrap_or(word) == version
        })
}

/// This version's section of a changelog: the text under the first heading naming the version
/// (ATX or setext, in the common styles), up to the next heading of the same or a higher level.
/// `None` when there is no such section.
pub fn changelog_section(changelog: &str, version: &str) -> Option<String> {
    let lines: Vec<&str> = changelog.lines().collect();
    let all = headings(&lines);
    let (index, heading) = all
        .iter()
        .enumerate()
        .find(|(_, h)| names_version(h.text, version))?;
    let end = all[index + 1..]
        .iter()
        .find(|h| h.level <= heading.level)
        .map_or(lines.len(), |h| h.first_line);
    let text = lines[heading.body_start.min(end)..end]
        .join("\n")
        .trim()
        .to_string();
    (!text.is_empty()).then_some(text)
}

/// The most commits listed for a first release (no earlier tag): the whole history would be
/// the notes otherwise.
pub const FIRST_RELEASE_COMMITS: usize = 20;

/// What the notes template sees.
#[derive(Debug, Clone, Serialize)]
pub struct Notes {
    /// The version released.
    pub version: String,
    /// Its tag.
    pub tag: String,
    /// The tag before it, if any.
    pub previous_tag: Option<String>,
    /// This version's CHANGELOG section, when found.
    pub changelog: Option<String>,
    /// Commits since the previous tag, grouped.
    pub groups: Vec<Group>,
    /// `https://github.com/<repo>/compare/<previous>...<tag>`, when both are known.
    pub compare_url: Option<String>,
    /// No earlier tag: this is the project's first release.
    pub first_release: bool,
    /// Commits left out of a first release's notes (only the latest are listed).
    pub omitted: usize,
    /// Where the notes come from, for `release --dry-run`.
    pub source: String,
}

impl Notes {
    /// Gathers notes for `tag` in the git repository at `dir`. `web_url` is the repository's
    /// web address (`https://github.com/owner/repo`), for the compare link.
    pub fn gather(dir: &Path, version: &str, tag: &str, web_url: Option<&str>) -> Notes {
        let git = crate::facts::Git::new(dir);
        let changelog = [
            "CHANGELOG.md",
            "CHANGELOG",
            "CHANGES.md",
            "CHANGELOG.rst",
            "HISTORY.md",
        ]
        .iter()
        .find_map(|name| {
            let text = std::fs::read_to_string(dir.join(name)).ok()?;
            changelog_section(&text, version).map(|section| (*name, section))
        });
        // The release tag may not exist yet (it is created with the release): count from HEAD.
        let head = if git
            .run(&["rev-parse", "--verify", "-q", &format!("{tag}^{{commit}}")])
            .is_some()
        {
            tag.to_string()
        } else {
            "HEAD".to_string()
        };
        // Earlier releases are tagged the way this one is: `v1.2.3`, `1.2.3`, `tool-v1.2.3`.
        let prefix = tag.strip_suffix(version).unwrap_or("v");
        let previous_tag = git.run(&[
            "describe",
            "--tags",
            "--abbrev=0",
            "--match",
            &format!("{prefix}[0-9]*"),
            &format!("{head}^"),
        ]);
        let range = match &previous_tag {
            Some(previous) => format!("{previous}..{head}"),
            None => head.clone(),
        };
        let commits: Vec<Commit> = git
            .run(&["log", "--no-merges", "--format=%H%x1f%s%x1f%b%x1e", &range])
            .map(|log| {
                log.split('\x1e')
                    .filter_map(|record| {
                        let mut fields = record.trim_start_matches('\n').splitn(3, '\x1f');
                        let hash = fields.next()?.trim();
                        let subject = fields.next()?;
                        let body = fields.next().unwrap_or("");
                        (!hash.is_empty()).then(|| Commit::parse(hash, subject, body))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let compare_url = match (web_url, &previous_tag) {
            (Some(url), Some(previous)) => Some(format!(
                "{}/compare/{previous}...{tag}",
                url.trim_end_matches('/')
            )),
            _ => None,
        };
        let first_release = previous_tag.is_none();
        let total = commits.len();
        let listed = if first_release {
            FIRST_RELEASE_COMMITS.min(total)
        } else {
            total
        };
        let source = match (&changelog, &previous_tag) {
            (Some((file, _)), _) => format!("the {version} section of {file}"),
            (None, Some(previous)) => format!("{total} commits since {previous}"),
            (None, None) if listed < total => format!(
                "first release: no {version} section in a CHANGELOG, so the latest {listed} of {total} commits"
            ),
            (None, None) => {
                format!(
                    "first release: no {version} section in a CHANGELOG, so its {total} commits"
                )
            }
        };
        Notes {
            version: version.to_string(),
            tag: tag.to_string(),
            previous_tag,
            changelog: changelog.map(|(_, section)| section),
            groups: group(commits.into_iter().take(listed).collect()),
            compare_url,
            first_release,
            omitted: total - listed,
            source,
        }
    }

    /// Renders the notes with `template` (minijinja).
    pub fn render(&self, template: &str) -> Result<String, crate::template::TemplateError> {
        static BLANK_RUNS: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
        let blank_runs = BLANK_RUNS.get_or_init(|| regex::Regex::new(r"\n{3,}").expect("valid"));
        crate::template::render(template, &minijinja::Value::from_serialize(self)).map(|text| {
            // Templates are easier to write when stray blank lines do not matter.
            format!("{}\n", blank_runs.replace_all(text.trim(), "\n\n"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventional_subjects_parse() {
        let c = Commit::parse("abcdef1234", "feat(cli)!: add --json", "");
        assert_eq!(
            (
                c.kind.as_deref(),
                c.scope.as_deref(),
                c.description.as_str(),
                c.breaking
            ),
            (Some("feat"), Some("cli"), "add --json", true)
        );
        let c = Commit::parse("abcdef1234", "Fix: typo", "BREAKING CHANGE: no");
        assert_eq!((c.kind.as_deref(), c.breaking), (Some("fix"), true));
        let c = Commit::parse("abcdef1234", "Update README: wording", "");
        assert_eq!(
            (c.kind, c.description.as_str()),
            (None, "Update README: wording")
        );
    }

    #[test]
    fn changelog_sections_end_at_the_next_heading_of_their_level() {
        let text = "# Changelog\n\n## [Unreleased]\n- wip\n\n## [1.2.0] - 2026-01-02\n### Added\n- a thing\n\n## [1.1.0]\n- old\n";
        assert_eq!(
            changelog_section(text, "1.2.0").unwrap(),
            "### Added\n- a thing"
        );
        assert_eq!(
            changelog_section("## v2.0.0\nbig\n", "2.0.0").unwrap(),
            "big"
        );
        assert_eq!(changelog_section(text, "9.9.9"), None);
    }

    #[test]
    fn setext_and_other_common_changelog_styles_are_recognised() {
        let setext = "14.1.1 (2024-09-08)\n===================\nFixes a bug.\n\nBug fixes:\n- one\n\n14.1.0 (2024-01-06)\n===================\nold\n";
        assert_eq!(
            changelog_section(setext, "14.1.1").unwrap(),
            "Fixes a bug.\n\nBug fixes:\n- one"
        );
        let dashes = "Version 2.0.0\n-------------\nnew\n\nVersion 1.0.0\n-------------\nold\n";
        assert_eq!(changelog_section(dashes, "2.0.0").unwrap(), "new");
        let linked = "## [3.1.0](https://x/compare/v3.0.0...v3.1.0) (2026-01-02)\n### Features\n- a\n## [3.0.0]\n";
        assert_eq!(
            changelog_section(linked, "3.1.0").unwrap(),
            "### Features\n- a"
        );
        // A version inside a sentence is not a heading for it.
        assert_eq!(
            changelog_section(
                "## Changes since the 1.0 line, now 2.0.0 is out\nx\n",
                "2.0.0"
            ),
            None
        );
    }
}
