//! Release notes from a real git history and CHANGELOG, snapshot-tested.

use std::path::Path;

use shipit::release_notes::{DEFAULT_TEMPLATE, Notes};

mod common;

use common::git;

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
