//! `shipit ci github`: the workflow for the production pipeline (snapshot, actionlint), and
//! `--check` telling an out-of-date file from one edited on purpose.

use std::path::Path;
use std::process::Command;

use crate::common::{repo_root, require, shipit, text, tiny_crate};

#[test]
fn the_production_workflow_is_snapshotted_and_passes_actionlint() {
    require("actionlint");
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("release.yml");
    let workflow = production_workflow(&file, &[]);
    insta::assert_snapshot!(workflow);
    actionlint(&file);
    for target in ["linux-x64-musl", "darwin-arm64", "windows-arm64"] {
        assert!(
            workflow.contains(&format!("          - {target}\n")),
            "{target}"
        );
    }
    // The attestation permissions belong to the release job alone: the workflow's own
    // permissions and the build jobs stay read-only.
    let release_job = workflow.find("\n  release:\n").expect("a release job");
    for permission in ["id-token: write", "attestations: write"] {
        assert_eq!(workflow.matches(permission).count(), 1, "{permission}");
        assert!(
            workflow.find(permission).unwrap() > release_job,
            "{permission}"
        );
    }
    assert!(workflow.contains("uses: actions/attest-build-provenance@v3"));
    assert!(workflow[..release_job].contains("permissions:\n  contents: read\n"));

    let without = production_workflow(&file, &["--no-attestations"]);
    assert!(!without.contains("id-token") && !without.contains("attest-build-provenance"));
    actionlint(&file);
}

/// `ci github` for the production pipeline with `extra`, written to `file`; its text.
fn production_workflow(file: &Path, extra: &[&str]) -> String {
    let run = shipit(&repo_root())
        .args(["ci", "github", "--pipeline", "pipelines/production.toml"])
        .args(extra)
        .arg("--output")
        .arg(file)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{:?}", text(&run));
    std::fs::read_to_string(file).unwrap()
}

/// actionlint accepts `file`.
fn actionlint(file: &Path) {
    let lint = Command::new("actionlint").arg(file).output().unwrap();
    assert!(lint.status.success(), "actionlint: {:?}", text(&lint));
}

fn project(targets: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    tiny_crate(dir.path(), "1.0.0");
    write_pipeline(dir.path(), targets);
    dir
}

fn write_pipeline(dir: &Path, targets: &str) {
    std::fs::write(
        dir.join("shipit.toml"),
        format!("version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\ntargets = [{targets}]\n"),
    )
    .unwrap();
}

fn ci(dir: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = shipit(dir)
        .args(["ci", "github"])
        .args(extra)
        .output()
        .unwrap();
    (out.status.code(), text(&out).1)
}

#[test]
fn check_fails_when_out_of_date_and_respects_deliberate_edits() {
    let dir = project("\"linux-x64-musl\"");
    let workflow = dir.path().join(".github/workflows/release.yml");
    assert_eq!(ci(dir.path(), &["--check"]).0, Some(1));
    assert_eq!(ci(dir.path(), &[]).0, Some(0));
    assert!(workflow.is_file());
    assert_eq!(
        ci(dir.path(), &["--check"]),
        (
            Some(0),
            format!("{} is up to date\n", ".github/workflows/release.yml")
        )
    );

    // The pipeline gains a target: the committed workflow is stale.
    write_pipeline(dir.path(), "\"linux-x64-musl\", \"darwin-arm64\"");
    let (code, stderr) = ci(dir.path(), &["--check"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("is out of date with shipit.toml"),
        "{stderr}"
    );
    assert!(
        stderr.contains("regenerate it with `shipit ci github --pipeline shipit.toml`"),
        "{stderr}"
    );
    assert_eq!(ci(dir.path(), &[]).0, Some(0));
    assert_eq!(ci(dir.path(), &["--check"]).0, Some(0));

    // Edited by hand on purpose: --check fails unless --allow-edits; overwriting needs it too.
    let edited = std::fs::read_to_string(&workflow)
        .unwrap()
        .replace("runs-on: ubuntu-latest", "runs-on: ubuntu-24.04");
    std::fs::write(&workflow, &edited).unwrap();
    let (code, stderr) = ci(dir.path(), &["--check"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("was edited by hand"), "{stderr}");
    assert_eq!(ci(dir.path(), &["--check", "--allow-edits"]).0, Some(0));
    assert_eq!(ci(dir.path(), &[]).0, Some(2));
    assert_eq!(std::fs::read_to_string(&workflow).unwrap(), edited);
    assert_eq!(ci(dir.path(), &["--allow-edits"]).0, Some(0));
    assert_eq!(ci(dir.path(), &["--check"]).0, Some(0));
}

#[test]
fn the_action_declares_what_shipit_writes_to_github_output() {
    let action = std::fs::read_to_string(repo_root().join("action.yml")).unwrap();
    for needle in [
        "  pipeline:",
        "  command:",
        "  args:",
        "  version:",
        "value: ${{ steps.run.outputs.version }}",
        "value: ${{ steps.run.outputs.manifest }}",
        "value: ${{ steps.run.outputs.release-url }}",
        "sha256sum -c wanted",
    ] {
        assert!(action.contains(needle), "action.yml lacks {needle:?}");
    }
    // `shipit build` writes the `version` and `manifest` outputs the action passes on.
    let dir = project("\"host\"");
    let output = dir.path().join("out");
    let build = shipit(dir.path())
        .arg("build")
        .env("GITHUB_OUTPUT", &output)
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .output()
        .unwrap();
    assert_eq!(build.status.code(), Some(0), "{:?}", text(&build));
    let written = std::fs::read_to_string(&output).unwrap();
    assert!(
        written.contains("version=1.0.0\n") && written.contains("manifest="),
        "{written}"
    );
}

/// Real projects (issue 20, point 4): a project's own hand-written `release.yml` is never
/// replaced without --allow-edits, and the message points at `--output` first.
#[test]
fn an_existing_hand_written_workflow_points_at_output_not_allow_edits() {
    let dir = project("\"linux-x64\"");
    let workflow = dir.path().join(".github/workflows/release.yml");
    std::fs::create_dir_all(workflow.parent().unwrap()).unwrap();
    std::fs::write(&workflow, "name: Our own release\non: push\n").unwrap();
    let (code, out) = ci(dir.path(), &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("was not written by shipit"), "{out}");
    assert!(
        out.contains("--output .github/workflows/shipit-release.yml"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&workflow).unwrap(),
        "name: Our own release\non: push\n"
    );
}

#[test]
fn a_keyless_sign_stage_gives_the_release_job_an_oidc_token_even_without_attestations() {
    require("actionlint");
    let dir = project("\"linux-x64\"");
    let pipeline = std::fs::read_to_string(dir.path().join("shipit.toml")).unwrap();
    std::fs::write(
        dir.path().join("shipit.toml"),
        format!(
            "{pipeline}\n[stages.package]\nneeds = [\"build\"]\nuses = \"archive\"\n\n\
             [stages.checksum]\nneeds = [\"package\"]\nuses = \"checksum\"\n\n\
             [stages.sign]\nneeds = [\"checksum\"]\nuses = \"sign\"\nkey = {{ sigstore = true }}\n"
        ),
    )
    .unwrap();
    let (code, stderr) = ci(dir.path(), &["--no-attestations"]);
    assert_eq!(code, Some(0), "{stderr}");
    let file = dir.path().join(".github/workflows/release.yml");
    let workflow = std::fs::read_to_string(&file).unwrap();
    let release_job = workflow.find("\n  release:\n").expect("a release job");
    assert_eq!(workflow.matches("id-token: write").count(), 1, "{workflow}");
    assert!(workflow.find("id-token: write").unwrap() > release_job);
    assert!(!workflow.contains("attestations: write"));
    actionlint(&file);
}
