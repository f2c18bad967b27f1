//! The files a package installs besides its binaries: `contents`, the systemd unit, the
//! maintainer scripts, man pages and completions, all found in the project when the plan is
//! made.

use std::path::{Path, PathBuf};

use super::options::{ContentKind, PackageOptions};
use super::{FormatRules, StageRef};
use crate::config::Problem;
use crate::package::{Content, Entry, Systemd, UserScripts, names};

/// What every target's package of a stage installs alike.
pub(super) struct Shared {
    /// `contents`, the unit file and man pages.
    pub entries: Vec<Entry>,
    /// The unit the scripts manage.
    pub systemd: Option<Systemd>,
    /// The user's maintainer scripts.
    pub scripts: UserScripts,
}

/// A file named by the stage, in the project; a problem at `key` when it is not there.
fn project_file(
    base: &Path,
    stage: &StageRef<'_>,
    key: &str,
    src: &str,
    problems: &mut Vec<Problem>,
) -> Option<PathBuf> {
    let path = base.join(src);
    if crate::relpath::RelPath::new(src).is_ok() && path.is_file() {
        Some(path)
    } else {
        problems.push(
            Problem::new(
                format!("`{src}` is not a file in the project"),
                stage.span(key),
            )
            .label("not found")
            .help("paths are relative to the folder of Cargo.toml"),
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
    problems: &mut Vec<Problem>,
) -> Shared {
    let project_file = |key: &str, src: &str, problems: &mut Vec<Problem>| {
        project_file(base, stage, key, src, problems)
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
    shared.extend(man_pages(options, base, stage, problems));

    Shared {
        entries: shared,
        systemd,
        scripts: user_scripts,
    }
}

/// The first paragraph of prose in a Markdown file: no headings, badges, code or lists.
pub(super) fn first_paragraph(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut paragraph: Vec<&str> = Vec::new();
    for line in text.lines() {
        let prose = !line.trim().is_empty()
            && !line.starts_with([' ', '\t', '#', '!', '[', '<', '`', '-', '*', '|', '>', '='])
            && !line.trim().chars().all(|c| c == '=' || c == '-');
        if prose {
            paragraph.push(line.trim());
        } else if !paragraph.is_empty() {
            break;
        }
    }
    let joined = paragraph.join(" ");
    (!joined.is_empty()).then(|| textwrap::fill(&joined, 79))
}

/// Man pages: each `name.N` gzipped to `/usr/share/man/manN/name.N.gz`.
fn man_pages(
    options: &PackageOptions,
    base: &Path,
    stage: &StageRef<'_>,
    problems: &mut Vec<Problem>,
) -> Vec<Entry> {
    let (globs, optional) = match &options.man {
        Some(globs) => (globs.clone(), false),
        None => (vec!["man/*.[1-9]".to_owned()], true),
    };
    let mut entries = Vec::new();
    for glob in &globs {
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
        for page in found {
            let file = page
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let section = file.rsplit('.').next().unwrap_or_default();
            if !matches!(section, "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9") {
                continue;
            }
            entries.push(Entry {
                dst: format!("/usr/share/man/man{section}/{file}.gz"),
                mode: 0o644,
                content: Content::Gzipped { src: page },
            });
        }
    }
    entries
}

/// Completion files for one binary, where each shell looks for them.
pub(super) fn completions(
    options: &PackageOptions,
    binary: &str,
    base: &Path,
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
            format!("/usr/share/zsh/vendor-completions/_{binary}"),
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
