//! The attacks of the threat model in SECURITY.md, one test (or more) per class, each named for
//! the attack it stops. Each drives the real binary with hostile input.

use std::path::Path;

mod common;

use common::{shipit, text};

/// A minimal Cargo project with `pipeline` as `shipit.toml`.
fn project(pipeline: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::tiny_crate(dir.path(), "1.2.3");
    std::fs::write(dir.path().join("shipit.toml"), pipeline).unwrap();
    dir
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// Class 1: shell injection through templates.

#[test]
fn branch_name_with_command_substitution_is_not_run() {
    let dir = project(
        "version = 1\n[stages.say]\nrun = [\"printf '%s|' {{ branch }} {{ env.PR_TITLE }} > said.txt\"]\n",
    );
    let out = shipit(dir.path())
        .arg("build")
        .env("GITHUB_HEAD_REF", "x$(touch pwned-branch);touch pwned-semi")
        .env("PR_TITLE", "`touch pwned-env` it's \"quoted\" \\ $HOME")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    for file in ["pwned-branch", "pwned-semi", "pwned-env"] {
        assert!(
            !dir.path().join(file).exists(),
            "{file} was created: a value ran as code"
        );
    }
    assert_eq!(
        read(&dir.path().join("said.txt")),
        "x$(touch pwned-branch);touch pwned-semi|`touch pwned-env` it's \"quoted\" \\ $HOME|"
    );
}

#[test]
fn safe_filter_is_the_explicit_opt_out_of_quoting() {
    let dir = project("version = 1\n[stages.say]\nrun = [\"{{ env.CMD | safe }} > said.txt\"]\n");
    let out = shipit(dir.path())
        .arg("build")
        .env("CMD", "echo one; echo two")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(read(&dir.path().join("said.txt")), "two\n");
}
