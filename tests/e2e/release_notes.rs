//! Release notes from a real git history and CHANGELOG, snapshot-tested.

use std::path::Path;

use shipit::release_notes::{DEFAULT_TEMPLATE, Notes};

use crate::common::git;

fn history(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    git(
        dir,
        &["commit", "-q", "--allow-empty", "-m", "feat: first release"],
    );
    git(dir, &["tag", "v0.1.0"]);
    for subject in [
        "feat(cli): add --json output",
        "fix: handle an empty manifest",
        "perf: hash files in parallel",
        "chore: bump dependencies",
        "Update the README",
        "feat!: drop the old --out flag",
    ] {
        git(dir, &["commit", "-q", "--allow-empty", "-m", subject]);
    }
}

#[test]
fn commits_since_the_previous_tag_are_grouped_with_a_compare_link() {
    let dir = tempfile::tempdir().unwrap();
    history(dir.path());
    let notes = Notes::gather(
        dir.path(),
        "0.2.0",
        "v0.2.0",
        Some("https://github.com/acme/demo"),
    );
    assert_eq!(notes.previous_tag.as_deref(), Some("v0.1.0"));
    insta::assert_snapshot!(notes.render(DEFAULT_TEMPLATE).unwrap());
}

#[test]
fn the_changelog_section_wins_when_there_is_one() {
    let dir = tempfile::tempdir().unwrap();
    history(dir.path());
    std::fs::write(
        dir.path().join("CHANGELOG.md"),
        "# Changelog\n\n## [Unreleased]\n\n## [0.2.0] - 2026-01-02\n\n### Added\n- JSON output (`--json`).\n\n### Removed\n- `--out`.\n\n## [0.1.0]\n- First release.\n",
    )
    .unwrap();
    let notes = Notes::gather(
        dir.path(),
        "0.2.0",
        "v0.2.0",
        Some("https://github.com/acme/demo"),
    );
    insta::assert_snapshot!(notes.render(DEFAULT_TEMPLATE).unwrap());
}

#[test]
fn a_first_release_has_no_compare_link() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(
        dir.path(),
        &["commit", "-q", "--allow-empty", "-m", "feat: hello"],
    );
    let notes = Notes::gather(
        dir.path(),
        "0.1.0",
        "v0.1.0",
        Some("https://github.com/acme/demo"),
    );
    assert_eq!(notes.previous_tag, None);
    assert_eq!(notes.compare_url, None);
    insta::assert_snapshot!(notes.render(DEFAULT_TEMPLATE).unwrap());
}

/// Real projects (issue 20, point 3): a setext-style CHANGELOG (`14.1.1 (2024-09-08)` over
/// `===`) is found under a bare version tag.
#[test]
fn a_setext_changelog_section_is_found() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "master"]);
    git(
        dir.path(),
        &["commit", "-q", "--allow-empty", "-m", "feat: hello"],
    );
    std::fs::write(
        dir.path().join("CHANGELOG.md"),
        "14.1.1 (2024-09-08)\n===================\nA patch.\n\nBug fixes:\n\n* one\n\n\
         14.1.0 (2024-01-06)\n===================\nOlder.\n",
    )
    .unwrap();
    let notes = Notes::gather(dir.path(), "14.1.1", "14.1.1", None);
    assert_eq!(
        notes.changelog.as_deref(),
        Some("A patch.\n\nBug fixes:\n\n* one")
    );
    assert_eq!(notes.source, "the 14.1.1 section of CHANGELOG.md");
}

/// Real projects (issue 20, point 3): a first release without a CHANGELOG section says so and
/// lists only the latest commits, not the whole history.
#[test]
fn a_first_release_without_a_section_keeps_its_notes_short() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    for i in 0..45 {
        git(
            dir.path(),
            &[
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                &format!("fix: change {i}"),
            ],
        );
    }
    let notes = Notes::gather(dir.path(), "1.0.0", "v1.0.0", None);
    let text = notes.render(DEFAULT_TEMPLATE).unwrap();
    assert!(text.starts_with("First release of v1.0.0."), "{text}");
    assert!(
        text.contains("- change 44 (") && !text.contains("- change 24 ("),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("- ")).count(),
        20,
        "{text}"
    );
    assert!(text.contains("… and 25 earlier commits."), "{text}");
    assert!(
        notes.source.contains("latest 20 of 45 commits"),
        "{}",
        notes.source
    );
}
