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

// Class 11: interop with minisign's own keys.

/// A tiny host-only project that builds, packs, checksums and signs with `keys/ci.key`.
fn signed_tiny(extra: &str) -> tempfile::TempDir {
    project(&format!(
        "version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\n\n\
         [stages.package]\nneeds = [\"build\"]\nuses = \"archive\"\n\n\
         [stages.checksum]\nneeds = [\"package\"]\nuses = \"checksum\"\n\n\
         [stages.sign]\nneeds = [\"checksum\"]\nuses = \"sign\"\n\
         key = {{ file = \"keys/ci.key\" }}\n{extra}"
    ))
}

fn build(dir: &Path) -> std::process::Output {
    shipit(dir)
        .arg("build")
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .unwrap()
}

#[test]
fn minisign_unencrypted_key_from_minisign_w_signs_a_release_minisign_verifies() {
    common::require("minisign");
    let dir = signed_tiny("");
    std::fs::create_dir_all(dir.path().join("keys")).unwrap();
    let made = std::process::Command::new("minisign")
        .args(["-G", "-W", "-p", "keys/ci.pub", "-s", "keys/ci.key"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{:?}", text(&made));
    let out = build(dir.path());
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let check = std::process::Command::new("minisign")
        .args(["-V", "-p", "keys/ci.pub", "-m", "dist/SHA256SUMS"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(check.status.success(), "{:?}", text(&check));
}

// Class 9: numbers and dates from the file and the environment.

/// `shipit check` on `pipeline`: its exit code and stderr.
fn check(pipeline: &str) -> (Option<i32>, String) {
    let dir = project(pipeline);
    let out = shipit(dir.path())
        .args(["check", "--color", "never"])
        .output()
        .unwrap();
    (out.status.code(), text(&out).1)
}

const DEPLOY: &str = "[deploy.prod]\nstrategy = \"canary\"\nimage = \"127.0.0.1:5000/tiny:{{ version }}\"\n\
     port = 8080\nrouter = { haproxy = \"tcp://127.0.0.1:9999\", backend = \"tiny\" }\n";

#[test]
fn retries_of_u32_max_are_refused_instead_of_wrapping_to_done() {
    let (code, err) = check("version = 1\n[stages.fail]\nrun = \"false\"\nretries = 4294967295\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("`retries` is 4294967295; it must be from 0 to 100"),
        "{err}"
    );
    assert!(err.contains("shipit.toml:4:11"), "{err}");
}

#[test]
fn huge_durations_and_numbers_are_config_errors_not_panics() {
    for (pipeline, needle) in [
        (
            "version = 1\n[stages.a]\nrun = \"true\"\ntimeout = \"99999999999h\"\n".to_string(),
            "invalid duration in `timeout`",
        ),
        (
            format!("version = 1\n{DEPLOY}analysis = {{ interval = \"100000000000000s\" }}\n"),
            "invalid duration in `interval`",
        ),
        (
            format!("version = 1\n{DEPLOY}canary = {{ steps = [0, 4294967295] }}\n"),
            "is 4294967295; it must be from 1 to 100",
        ),
        (
            format!("version = 1\n{DEPLOY}analysis = {{ max_error_rate = 2.5 }}\n"),
            "it is a share from 0 to 1",
        ),
        (
            format!("version = 1\n{DEPLOY}replicas = 0\n"),
            "`replicas` is 0; it must be from 1 to 1000",
        ),
    ] {
        let (code, err) = check(&pipeline);
        assert_eq!(code, Some(2), "{pipeline}\n{err}");
        assert!(err.contains(needle), "{needle:?} not in:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn empty_image_list_is_a_config_error_not_a_panic() {
    let (code, err) = check("version = 1\n[release.docker]\nimage = []\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("`image` lists no repository"), "{err}");
}

#[test]
fn source_date_epoch_invalid_or_past_year_9999_is_exit_2() {
    let dir = project("version = 1\n[stages.a]\nrun = \"true\"\n");
    for value in [
        "99999999999999",
        "18446744073709551616",
        "yesterday",
        "-1",
        "",
    ] {
        let out = shipit(dir.path())
            .args(["plan"])
            .env("SOURCE_DATE_EPOCH", value)
            .output()
            .unwrap();
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{value:?}: {err}");
        assert!(err.contains("SOURCE_DATE_EPOCH"), "{err}");
    }
    let out = shipit(dir.path())
        .args(["plan"])
        .env("SOURCE_DATE_EPOCH", "253402300799")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}

// Class 2: names that reach Ruby, YAML, HAProxy or file names.

#[test]
fn names_with_newlines_or_separators_are_refused_by_check() {
    for (pipeline, needle) in [
        (
            "version = 1\n[project]\nname = \"demo\\nclass Evil\"\n".to_string(),
            "shipit.toml:3:8",
        ),
        (
            "version = 1\n[stages.build]\nuses = \"cargo\"\ntargets = [\"x86_64-unknown-linux-gnu\\n  evil: true\"]\n"
                .to_string(),
            "unknown target",
        ),
        (
            format!(
                "version = 1\n{}",
                DEPLOY.replace("backend = \"tiny\"", "backend = \"tiny;disable server x/y\"")
            ),
            "is not a valid name",
        ),
        (
            "version = 1\n[stages.\"../../escape\"]\nrun = \"true\"\n".to_string(),
            "is not a valid name",
        ),
    ] {
        let (code, err) = check(&pipeline);
        assert_eq!(code, Some(2), "{pipeline}\n{err}");
        assert!(err.contains(needle), "{needle:?} not in:\n{err}");
    }
}

#[test]
fn ci_github_cron_and_action_values_cannot_inject_workflow_keys() {
    let dir = project(
        "version = 1\n[stages.build]\nuses = \"cargo\"\nlocked = false\ntargets = [\"linux-x64-musl\"]\n",
    );
    let file = dir.path().join("release.yml");
    let out = shipit(dir.path())
        .args([
            "ci",
            "github",
            "--cron",
            "0 3 * * *\"\n    - evil: 1",
            "--action",
        ])
        .arg("acme/shipit@v1\n      with: {evil: true}")
        .arg("--output")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let workflow = read(&file);
    assert!(
        workflow.contains(r#"- cron: "0 3 * * *\"\n    - evil: 1""#),
        "{workflow}"
    );
    assert!(
        workflow.contains(r#"uses: "acme/shipit@v1\n      with: {evil: true}""#),
        "{workflow}"
    );
    assert!(
        !workflow
            .lines()
            .any(|l| l.trim_start().starts_with("- evil")),
        "{workflow}"
    );
    common::require("actionlint");
    let lint = std::process::Command::new("actionlint")
        .arg(&file)
        .output()
        .unwrap();
    // actionlint objects to the odd cron and action values, but the file must still parse.
    let (stdout, stderr) = text(&lint);
    assert!(
        !format!("{stdout}{stderr}").contains("could not parse"),
        "{stdout}{stderr}"
    );
}
