//! The files a package installs besides its binaries: `contents`, the systemd unit, the
//! maintainer scripts, man pages and completions, all found in the project when the plan is
//! made.

use std::path::{Path, PathBuf};

use super::options::{ContentKind, PackageOptions};
use super::{FormatRules, StageRef};
use crate::config::Problem;
use crate::package::{Content, Entry, PackageFormat, Systemd, UserScripts, names};

/// What every target's package of a stage installs alike.
pub(super) struct Shared {
    /// `contents`, the unit file and man pages.
    pub entries: Vec<Entry>,
    /// The unit the scripts manage.
    pub systemd: Option<Systemd>,
    /// The user's maintainer scripts.
    pub scripts: UserScripts,
}

/// Where the build writes: the dist folder and cargo's target folder. A file named there is
/// made by an earlier stage (a `generate` stage, a build script) and read when the package is
/// written, not when the plan is made.
pub(super) struct Outputs(Vec<PathBuf>);

impl Outputs {
    /// The build's output folders.
    pub(super) fn new(folders: &[&Path]) -> Outputs {
        Outputs(folders.iter().map(|f| absolute(f)).collect())
    }

    /// Whether `path` is in one of them.
    fn holds(&self, path: &Path) -> bool {
        let path = absolute(path);
        self.0.iter().any(|folder| path.starts_with(folder))
    }
}

fn absolute(path: &Path) -> PathBuf {
    crate::config::normalize(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// A file named by the stage, in the project (or made by the build); a problem at `key` when
/// it is not there.
fn project_file(
    base: &Path,
    outputs: &Outputs,
    stage: &StageRef<'_>,
    key: &str,
    src: &str,
    problems: &mut Vec<Problem>,
) -> Option<PathBuf> {
    let path = base.join(src);
    if outputs.holds(&path) {
        return Some(path);
    }
    if crate::relpath::RelPath::new(src).is_ok() && path.is_file() {
        Some(path)
    } else {
        problems.push(
            Problem::new(
                format!("`{src}` is not a file in the project"),
                stage.span(key),
            )
            .label("not found")
            .help("paths are relative to the folder of Cargo.toml; a file the build makes goes in the dist folder (a `generate` stage writes there)"),
        );
        None
    }
}

/// Resolves `contents`, `systemd`, `scripts` and `man`.
pub(super) fn shared(
    rules: &FormatRules,
    stage: &StageRef<'_>,
    options: &PackageOptions,
    base: &Path,
    outputs: &Outputs,
    problems: &mut Vec<Problem>,
) -> Shared {
    let project_file = |key: &str, src: &str, problems: &mut Vec<Problem>| {
        project_file(base, outputs, stage, key, src, problems)
    };
    let mut shared: Vec<Entry> = Vec::new();
    for entry in &options.contents {
        let Ok(dst) = names::installed_path(&entry.dst) else {
            continue;
        };
        let kind = entry.kind.unwrap_or(ContentKind::File);
        let mode = entry
            .mode
            .as_deref()
            .and_then(|m| names::parse_mode(m).ok());
        let content = match (kind, &entry.src) {
            (ContentKind::Dir, _) => Content::Dir,
            (ContentKind::Symlink, Some(target)) => Content::Symlink {
                target: target.clone(),
            },
            (_, Some(src)) => match project_file("contents", src, problems) {
                Some(src) => Content::File {
                    src,
                    config: kind == ContentKind::Config,
                },
                None => continue,
            },
            _ => continue,
        };
        let mode = mode.unwrap_or(match content {
            Content::Dir => 0o755,
            Content::Symlink { .. } => 0o777,
            _ => 0o644,
        });
        shared.push(Entry { dst, mode, content });
    }
    let systemd = match &options.systemd {
        Some(unit) => match project_file("systemd", &unit.unit, problems) {
            Some(src) => {
                let unit_name = src
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let dir = unit.dir.as_deref().unwrap_or(rules.unit_dir);
                shared.push(Entry {
                    dst: format!("{}/{unit_name}", dir.trim_end_matches('/')),
                    mode: 0o644,
                    content: Content::File { src, config: false },
                });
                Some(Systemd {
                    unit: unit_name,
                    enable: unit.enable.unwrap_or(true),
                    start: unit.start.unwrap_or(true),
                })
            }
            None => None,
        },
        None => None,
    };
    let script = |value: &Option<String>, problems: &mut Vec<Problem>| {
        value
            .as_deref()
            .and_then(|src| project_file("scripts", src, problems))
    };
    let user_scripts = UserScripts {
        preinst: script(&options.scripts.preinst, problems),
        postinst: script(&options.scripts.postinst, problems),
        prerm: script(&options.scripts.prerm, problems),
        postrm: script(&options.scripts.postrm, problems),
    };
    shared.extend(man_pages(options, base, outputs, stage, problems));

    Shared {
        entries: shared,
        systemd,
        scripts: user_scripts,
    }
}

/// The README's first paragraph of prose as plain text (Markdown read by pulldown-cmark:
/// badges, images, headings, lists and HTML skipped; links and code kept as their text),
/// wrapped at 79 columns: a package's long description.
pub(super) fn first_paragraph(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    plain_first_paragraph(&text).map(|p| textwrap::fill(&p, 79))
}

/// The first top-level paragraph of `markdown` with any words in it, as plain text.
fn plain_first_paragraph(markdown: &str) -> Option<String> {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut depth = 0usize; // blocks around the paragraph (lists, quotes, headings...)
    let mut in_paragraph = false;
    let mut in_image = 0usize;
    let mut words = String::new();
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Paragraph) if depth == 0 => in_paragraph = true,
            Event::End(TagEnd::Paragraph) if in_paragraph => {
                in_paragraph = false;
                let paragraph = words.split_whitespace().collect::<Vec<_>>().join(" ");
                if paragraph.chars().any(char::is_alphanumeric) {
                    return Some(paragraph);
                }
                words.clear();
            }
            Event::Start(Tag::Image { .. }) => in_image += 1,
            Event::End(TagEnd::Image) => in_image = in_image.saturating_sub(1),
            Event::Start(
                Tag::Heading { .. }
                | Tag::BlockQuote(_)
                | Tag::List(_)
                | Tag::CodeBlock(_)
                | Tag::HtmlBlock
                | Tag::Table(_)
                | Tag::FootnoteDefinition(_),
            ) => depth += 1,
            Event::End(
                TagEnd::Heading(_)
                | TagEnd::BlockQuote(_)
                | TagEnd::List(_)
                | TagEnd::CodeBlock
                | TagEnd::HtmlBlock
                | TagEnd::Table
                | TagEnd::FootnoteDefinition,
            ) => depth = depth.saturating_sub(1),
            Event::Text(t) | Event::Code(t) if in_paragraph && in_image == 0 => words.push_str(&t),
            Event::SoftBreak | Event::HardBreak if in_paragraph => words.push(' '),
            _ => {}
        }
    }
    None
}

/// A summary that does not start with the package's own name, which Debian (lintian's
/// `description-starts-with-package-name`) and Fedora (rpmlint's `name-repeated-in-summary`)
/// both refuse: `ripgrep is a line-oriented search tool` becomes `line-oriented search tool`.
pub(super) fn summary_without_name(summary: &str, name: &str) -> String {
    let Some(first) = summary.split_whitespace().next() else {
        return summary.to_string();
    };
    let bare = first.trim_matches(|c: char| !c.is_alphanumeric() && c != '-' && c != '_');
    if !bare.eq_ignore_ascii_case(name) {
        return summary.to_string();
    }
    let mut rest = summary[summary.find(first).unwrap_or(0) + first.len()..]
        .trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ':' | ',' | '-' | '—'));
    for verb in ["is ", "are ", "- "] {
        if let Some(after) = rest.strip_prefix(verb) {
            rest = after;
        }
    }
    for article in ["a ", "an ", "the "] {
        if let Some(after) = rest.strip_prefix(article) {
            rest = after;
            break;
        }
    }
    let rest = rest.trim();
    if rest.is_empty() {
        summary.to_string()
    } else {
        rest.to_string()
    }
}

/// Man pages: each `name.N` gzipped to `/usr/share/man/manN/name.N.gz`.
fn man_pages(
    options: &PackageOptions,
    base: &Path,
    outputs: &Outputs,
    stage: &StageRef<'_>,
    problems: &mut Vec<Problem>,
) -> Vec<Entry> {
    let (globs, optional) = match &options.man {
        Some(globs) => (globs.clone(), false),
        None => (vec!["man/*.[1-9]".to_owned()], true),
    };
    let mut entries = Vec::new();
    for glob in &globs {
        // A page the build makes is named as it will be, not matched now.
        let made = base.join(glob);
        if outputs.holds(&made) {
            if let Some(entry) = man_entry(made) {
                entries.push(entry);
            } else {
                problems.push(
                    Problem::new(
                        format!("`{glob}` does not end in a man section (`.1` to `.9`)"),
                        stage.span("man"),
                    )
                    .help("name the page `demo.1`"),
                );
            }
            continue;
        }
        let matcher = match globset::Glob::new(glob) {
            Ok(g) if crate::relpath::RelPath::new(glob).is_ok() => g.compile_matcher(),
            _ => {
                problems.push(
                    Problem::new(
                        format!("`{glob}` is not a glob in the project"),
                        stage.span("man"),
                    )
                    .help("`man/*.1`"),
                );
                continue;
            }
        };
        let mut found: Vec<PathBuf> = walkdir::WalkDir::new(base)
            .max_depth(4)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .filter(|e| {
                e.path()
                    .strip_prefix(base)
                    .is_ok_and(|rel| matcher.is_match(rel))
            })
            .map(|e| e.into_path())
            .collect();
        found.sort();
        if found.is_empty() && !optional {
            problems.push(
                Problem::new(format!("no man page matches `{glob}`"), stage.span("man"))
                    .label("found before the build"),
            );
        }
        entries.extend(found.into_iter().filter_map(man_entry));
    }
    entries
}

/// A man page installed gzipped under its section; `None` when its name has no section.
fn man_entry(page: PathBuf) -> Option<Entry> {
    let file = page
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let section = file.rsplit('.').next().unwrap_or_default();
    if !matches!(section, "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9") {
        return None;
    }
    Some(Entry {
        dst: format!("/usr/share/man/man{section}/{file}.gz"),
        mode: 0o644,
        content: Content::Gzipped { src: page },
    })
}

/// Completion files for one binary, where each shell looks for them on the format's
/// distributions (zsh: Debian's `vendor-completions`, Fedora's `site-functions`).
pub(super) fn completions(
    format: PackageFormat,
    options: &PackageOptions,
    binary: &str,
    base: &Path,
    outputs: &Outputs,
    stage: &StageRef<'_>,
    problems: &mut Vec<Problem>,
) -> Vec<Entry> {
    let shells = [
        (
            &options.completions.bash,
            format!("completions/{binary}.bash"),
            format!("/usr/share/bash-completion/completions/{binary}"),
        ),
        (
            &options.completions.zsh,
            format!("completions/_{binary}"),
            match format {
                PackageFormat::Deb => format!("/usr/share/zsh/vendor-completions/_{binary}"),
                PackageFormat::Rpm => format!("/usr/share/zsh/site-functions/_{binary}"),
            },
        ),
        (
            &options.completions.fish,
            format!("completions/{binary}.fish"),
            format!("/usr/share/fish/vendor_completions.d/{binary}.fish"),
        ),
    ];
    let mut entries = Vec::new();
    for (given, default, dst) in shells {
        let src = match given {
            Some(src) if outputs.holds(&base.join(src)) => base.join(src),
            Some(src) => {
                let path = base.join(src);
                if crate::relpath::RelPath::new(src).is_err() || !path.is_file() {
                    problems.push(
                        Problem::new(
                            format!("`{src}` is not a file in the project"),
                            stage.span("completions"),
                        )
                        .label("not found"),
                    );
                    continue;
                }
                path
            }
            None if base.join(&default).is_file() => base.join(default),
            None => continue,
        };
        entries.push(Entry {
            dst,
            mode: 0o644,
            content: Content::File { src, config: false },
        });
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_paragraph_is_plain_text_with_its_first_sentence_and_no_badges() {
        let readme = "# ripgrep\n\n[![CI](https://x/badge.svg)](https://x)\n\n\
                      `ripgrep` is a **line-oriented** search tool that [searches](https://x)\n\
                      the current directory.\n\nSecond paragraph.\n";
        assert_eq!(
            plain_first_paragraph(readme).as_deref(),
            Some("ripgrep is a line-oriented search tool that searches the current directory.")
        );
        assert_eq!(plain_first_paragraph("# Title\n\n- a list\n"), None);
    }

    #[test]
    fn a_summary_never_starts_with_the_package_name() {
        let cases = [
            (
                "ripgrep is a line-oriented search tool",
                "line-oriented search tool",
            ),
            ("demo: a tiny HTTP service", "tiny HTTP service"),
            ("Demo - the tiny service", "tiny service"),
            ("A tiny HTTP service", "A tiny HTTP service"),
            ("demo", "demo"),
        ];
        for (given, expected) in cases {
            let name = if given.starts_with("ripgrep") {
                "ripgrep"
            } else {
                "demo"
            };
            assert_eq!(summary_without_name(given, name), expected, "{given}");
        }
    }
}
