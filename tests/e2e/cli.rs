//! End to end: the real `shipit` binary on real projects in temporary folders.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{git, repo_root, shipit, text};

/// A minimal Cargo project with the given pipeline as `shipit.toml`.
fn project(pipeline: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"tiny\"\nversion = \"1.2.3\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(dir.path().join("shipit.toml"), pipeline).unwrap();
    dir
}

#[test]
fn check_accepts_the_demo_and_rejects_bad_files_with_locations() {
    let root = repo_root();
    let ok = shipit(&root)
        .args(["check", "--pipeline", "pipelines/demo.toml"])
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0), "{:?}", text(&ok));

    let bad = shipit(&root)
        .args([
            "check",
            "--pipeline",
            "tests/fixtures/config/unknown-key-cycle-duration.toml",
            "--color",
            "never",
        ])
        .output()
        .unwrap();
    let (_, stderr) = text(&bad);
    assert_eq!(bad.status.code(), Some(2));
    for needle in [
        "unknown key `nedes`",
        "unknown-key-cycle-duration.toml:8:1",
        "dependency cycle: `test` -> `build` -> `test`",
        "unknown-key-cycle-duration.toml:11:10",
        "`timeout` of stage `test`: `10 minutes please` is not a duration",
        "unknown-key-cycle-duration.toml:13:11",
        "did you mean `needs`?",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }

    let json = shipit(&root)
        .args([
            "check",
            "--json",
            "--pipeline",
            "tests/fixtures/config/unknown-key-cycle-duration.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(json.status.code(), Some(2));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        value["problems"][0]["location"],
        "tests/fixtures/config/unknown-key-cycle-duration.toml:8:1"
    );
}

#[test]
fn plan_json_lists_stages_in_order() {
    let out = shipit(&repo_root())
        .args(["plan", "--json", "--pipeline", "pipelines/demo.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["lint", "test", "build", "package", "checksum", "sign"]
    );
    let build = &plan["stages"][2];
    assert_eq!(build["units"].as_array().unwrap().len(), 6);
    assert_eq!(build["units"][0]["label"], "linux-x64-musl");
    assert_eq!(build["units"][0]["artifacts"][0]["name"], "demo");
    assert_eq!(build["units"][4]["artifacts"][0]["name"], "demo.exe");
    assert!(
        build["requires"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"tool": "zigbuild"}))
    );
    assert!(
        plan["stages"][0]["units"][0]["steps"][0]["shell"]
            .as_str()
            .unwrap()
            .starts_with("cargo fmt")
    );
}

#[test]
fn dry_run_runs_nothing_and_writes_nothing() {
    let dir = project("version = 1\n[stages.touch]\nrun = [\"touch marker\"]\n");
    let out = shipit(dir.path())
        .args(["build", "--dry-run"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("touch: would run"), "{stderr}");
    assert!(!dir.path().join("marker").exists());
    assert!(!dir.path().join("dist").exists());
}

#[test]
fn release_and_deploy_without_their_sections_exit_2() {
    let dir = project("version = 1\n[stages.a]\nrun = [\"true\"]\n");
    let out = shipit(dir.path()).arg("release").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out)
            .1
            .contains("has nothing to release: add `[release.github]`"),
        "{:?}",
        text(&out)
    );
    for args in [
        &["deploy", "--env", "production"][..],
        &["rollback", "--env", "production"],
    ] {
        let out = shipit(dir.path()).args(args).output().unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr.contains("has no [deploy.<env>] section"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = shipit(dir.path())
        .args(["check", "--pipeline", "nope.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing)
            .1
            .contains("there is no pipeline file nope.toml")
    );
    let unknown = shipit(dir.path()).args(["frobnicate"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    let version = shipit(dir.path()).arg("--version").output().unwrap();
    assert_eq!(version.status.code(), Some(0));
    // Flags without a command are a usage error; nothing at all is a request for help.
    let flags_only = shipit(dir.path()).arg("-v").output().unwrap();
    assert_eq!(flags_only.status.code(), Some(2));
}

/// Run bare, shipit prints its help on stdout and exits 0 (winget's validation runs a tool
/// that way and flags one that fails).
#[test]
fn shipit_without_arguments_prints_help_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let bare = shipit(dir.path()).output().unwrap();
    let (stdout, stderr) = text(&bare);
    assert_eq!(bare.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("Usage: shipit [OPTIONS] <COMMAND>"),
        "{stdout}"
    );
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn a_stage_that_times_out_fails_the_build_with_exit_1() {
    let dir = project("version = 1\n[stages.slow]\nrun = [\"sleep 3600\"]\ntimeout = \"500ms\"\n");
    let started = Instant::now();
    let out = shipit(dir.path()).arg("build").output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // Not the hour the stage would have slept.
    assert!(started.elapsed() < Duration::from_secs(600));
    assert!(stderr.contains("slow: timed out after 500ms"), "{stderr}");
    assert!(stderr.contains("full log: "), "{stderr}");
}

#[test]
fn failure_shows_the_last_lines_and_the_log_path() {
    let dir = project(
        "version = 1\n[stages.broken]\nrun = [\"for i in $(seq 1 25); do echo out $i; done; exit 4\"]\n",
    );
    let out = shipit(dir.path()).arg("build").output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("last 20 lines of output:"), "{stderr}");
    assert!(
        stderr.contains("| out 25") && !stderr.contains("| out 5\n"),
        "{stderr}"
    );
    assert!(stderr.contains("dist/logs/broken.log"), "{stderr}");
}

#[test]
fn ctrl_c_stops_children_and_exits_130() {
    let dir =
        project("version = 1\n[stages.long]\nrun = [\"sleep 300 & echo $! > child.pid; wait\"]\n");
    let mut child = shipit(dir.path())
        .arg("build")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pidfile = dir.path().join("child.pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&pidfile).map_or(true, |s| s.trim().is_empty()) {
        assert!(Instant::now() < deadline, "stage never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "child {pid} survived: {stat}"
    );
}

#[test]
fn secrets_are_masked_even_when_verbose() {
    let dir = project(
        "version = 1\n[stages.leak]\nrun = [\"echo token=$RELEASE_TOKEN\", \"false $RELEASE_TOKEN\"]\n",
    );
    let out = shipit(dir.path())
        .args(["build", "-vv"])
        .env("RELEASE_TOKEN", "sup3r-s3cret")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("token=***"), "{stderr}");
    let log = std::fs::read_to_string(dir.path().join("dist/logs/leak.log")).unwrap();
    for output in [&stdout, &stderr, &log] {
        assert!(!output.contains("sup3r-s3cret"), "leaked: {output}");
    }
}

#[test]
fn github_actions_groups_annotations_summary_and_outputs() {
    let dir = project(
        "version = 1\n[stages.ok]\nrun = [\"echo hello\"]\n[stages.bad]\nneeds = [\"ok\"]\nrun = [\"echo boom; exit 1\"]\n",
    );
    let summary = dir.path().join("summary.md");
    let output = dir.path().join("output.txt");
    let run = |pipeline_ok: bool| {
        if pipeline_ok {
            std::fs::write(
                dir.path().join("shipit.toml"),
                "version = 1\n[stages.ok]\nrun = [\"echo hello\"]\n",
            )
            .unwrap();
        }
        shipit(dir.path())
            .arg("build")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_OUTPUT", &output)
            .output()
            .unwrap()
    };
    let failed = run(false);
    let (stdout, _) = text(&failed);
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        stdout.contains("::group::ok (succeeded)\n")
            && stdout.contains("hello\n")
            && stdout.contains("::endgroup::"),
        "{stdout}"
    );
    assert!(
        stdout.contains("::error title=shipit%3A stage bad failed::failed after"),
        "{stdout}"
    );
    let table = std::fs::read_to_string(&summary).unwrap();
    assert!(
        table.contains("| stage | result | time |") && table.contains("| bad | ❌ failed"),
        "{table}"
    );

    let passed = run(true);
    assert_eq!(passed.status.code(), Some(0), "{:?}", text(&passed));
    let outputs = std::fs::read_to_string(&output).unwrap();
    assert!(
        outputs.contains("version=1.2.3\n") && outputs.contains("manifest=/"),
        "{outputs}"
    );
}

#[test]
fn versions_come_from_cargo_tags_must_match_and_snapshots_carry_the_commit() {
    let dir = project(
        "version = 1\n[stages.show]\nrun = [\"echo {{ version }} {{ tag }} > version.txt\"]\n",
    );
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "init"]);
    git(dir.path(), &["tag", "v9.9.9"]);
    let mismatch = shipit(dir.path()).arg("build").output().unwrap();
    assert_eq!(mismatch.status.code(), Some(2));
    assert!(
        text(&mismatch)
            .1
            .contains("tag `v9.9.9` at HEAD does not match version 1.2.3"),
        "{:?}",
        text(&mismatch)
    );

    let snapshot = shipit(dir.path())
        .args(["build", "--snapshot"])
        .output()
        .unwrap();
    assert_eq!(snapshot.status.code(), Some(0), "{:?}", text(&snapshot));
    let shown = std::fs::read_to_string(dir.path().join("version.txt")).unwrap();
    assert!(
        shown.starts_with("1.2.3-snapshot.") && shown.contains(" v1.2.3-snapshot."),
        "{shown}"
    );

    // A nightly: X.Y.Z-nightly.YYYYMMDD.<short commit>, a semver pre-release and an OCI tag.
    let nightly = shipit(dir.path())
        .args(["build", "--nightly"])
        .env("SOURCE_DATE_EPOCH", "1795466186")
        .output()
        .unwrap();
    assert_eq!(nightly.status.code(), Some(0), "{:?}", text(&nightly));
    let shown = std::fs::read_to_string(dir.path().join("version.txt")).unwrap();
    let version = shown.split_whitespace().next().unwrap();
    let rest = version
        .strip_prefix("1.2.3-nightly.20261123.")
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        rest.len() >= 7 && rest.chars().all(|c| c.is_ascii_alphanumeric()),
        "{shown}"
    );
    assert!(
        version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)),
        "not an OCI tag: {version}"
    );

    git(dir.path(), &["tag", "-d", "v9.9.9"]);
    git(dir.path(), &["tag", "v1.2.3"]);
    let tagged = shipit(dir.path()).arg("build").output().unwrap();
    assert_eq!(tagged.status.code(), Some(0), "{:?}", text(&tagged));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("version.txt")).unwrap(),
        "1.2.3 v1.2.3\n"
    );
}

#[test]
fn when_conditions_skip_stages() {
    let pipeline = "version = 1\n[stages.nightly]\nrun = [\"touch nightly\"]\nwhen = { nightly = true }\n[stages.needs-env]\nrun = [\"touch env\"]\nwhen = { env = \"SHIPIT_TEST_FLAG\" }\n[stages.tagged]\nrun = [\"touch tagged\"]\nwhen = { tag = \"v*\" }\n";
    let dir = project(pipeline);
    let out = shipit(dir.path()).arg("build").output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("nightly: skipped: not a nightly build"),
        "{stderr}"
    );
    assert!(
        stderr.contains("needs-env: skipped: `SHIPIT_TEST_FLAG` is not set"),
        "{stderr}"
    );
    assert!(
        stderr.contains("tagged: skipped: not a tag build"),
        "{stderr}"
    );
    let out = shipit(dir.path())
        .args(["build", "--nightly"])
        .env("SHIPIT_TEST_FLAG", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        dir.path().join("nightly").exists()
            && dir.path().join("env").exists()
            && !dir.path().join("tagged").exists()
    );
}

#[test]
fn init_writes_a_valid_starter_and_never_overwrites() {
    let dir = project("");
    std::fs::remove_file(dir.path().join("shipit.toml")).unwrap();
    git(dir.path(), &["init", "-q"]);
    git(
        dir.path(),
        &["remote", "add", "origin", "git@github.com:acme/tiny.git"],
    );
    let out = shipit(dir.path()).arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let written = std::fs::read_to_string(dir.path().join("shipit.toml")).unwrap();
    insta::assert_snapshot!(written);
    // No Cargo.lock yet (a fresh `cargo new`): no `--locked` anywhere, and one final newline.
    assert!(!written.contains("--locked"), "{written}");
    assert!(written.contains("locked = false"), "{written}");
    assert!(
        written.ends_with('\n') && !written.ends_with("\n\n"),
        "{written:?}"
    );
    let check = shipit(dir.path()).arg("check").output().unwrap();
    assert_eq!(check.status.code(), Some(0), "{:?}", text(&check));
    let again = shipit(dir.path()).arg("init").output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again).1.contains("already exists"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("shipit.toml")).unwrap(),
        written
    );
    // With a Cargo.lock, the starter locks.
    let lock = Command::new("cargo")
        .arg("generate-lockfile")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(lock.status.success(), "{:?}", text(&lock));
    let out = shipit(dir.path())
        .args(["init", "--pipeline", "locked.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let locked = std::fs::read_to_string(dir.path().join("locked.toml")).unwrap();
    assert!(locked.contains("cargo test --locked") && !locked.contains("locked = false"));
}

/// A new user's first run: `cargo new`, no GitHub remote, `shipit init`, then `shipit build`
/// succeeds for every starter target. The GitHub section waits as a comment, and init says how
/// to turn it on.
#[test]
fn init_on_a_fresh_cargo_new_with_no_remote_then_build_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let new = Command::new("cargo")
        .args(["new", "-q", "hello"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(new.status.success(), "{:?}", text(&new));
    let project = dir.path().join("hello");
    let init = shipit(&project).arg("init").output().unwrap();
    assert_eq!(init.status.code(), Some(0), "{:?}", text(&init));
    assert!(
        text(&init).1.contains("uncomment [release.github]"),
        "{:?}",
        text(&init)
    );
    let written = std::fs::read_to_string(project.join("shipit.toml")).unwrap();
    assert!(
        written.contains("# [release.github]") && !written.contains("\n[release.github]"),
        "{written}"
    );
    let build = shipit(&project).arg("build").output().unwrap();
    assert_eq!(build.status.code(), Some(0), "{:?}", text(&build));
    let sums = std::fs::read_to_string(project.join("dist/SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 6, "{sums}");
}

/// A package whose one binary is named otherwise (`foo-cli` installs `foo`): the project, and
/// so its archives and packages, take the binary's name, and init says so.
#[test]
fn init_names_the_project_after_its_only_binary() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"foo-cli\"\nversion = \"0.3.0\"\nedition = \"2021\"\n\n[[bin]]\nname = \"foo\"\npath = \"src/main.rs\"\n",
    )
    .unwrap();
    let init = shipit(dir.path()).arg("init").output().unwrap();
    let (_, stderr) = text(&init);
    assert_eq!(init.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("for foo 0.3.0 (named after its binary; the package is foo-cli)"),
        "{stderr}"
    );
    let written = std::fs::read_to_string(dir.path().join("shipit.toml")).unwrap();
    assert!(written.contains("\nname = \"foo\"\n"), "{written}");
}

/// Without a pipeline file, every command points at `shipit init`, and at `--pipeline` with
/// the files a `pipelines/` folder holds (exit 2).
#[test]
fn a_missing_pipeline_file_points_at_init_and_at_the_pipelines_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = shipit(dir.path()).arg("build").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out).1;
    assert!(
        said.contains("there is no pipeline file shipit.toml: `shipit init` writes"),
        "{said}"
    );
    assert!(!said.contains("--pipeline"), "{said}");
    std::fs::create_dir(dir.path().join("pipelines")).unwrap();
    for name in ["production.toml", "demo.toml", "notes.txt"] {
        std::fs::write(dir.path().join("pipelines").join(name), "version = 1\n").unwrap();
    }
    let out = shipit(dir.path()).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out).1;
    assert!(
        said.contains(
            "or name one with --pipeline: pipelines/demo.toml, pipelines/production.toml"
        ),
        "{said}"
    );
}

#[test]
fn schema_is_json_schema_with_every_stage_option() {
    let out = shipit(&repo_root()).arg("schema").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let stage = &schema["$defs"]["StageConfig"]["properties"];
    for key in [
        "run", "uses", "needs", "timeout", "retries", "backoff", "env", "dir", "when", "targets",
    ] {
        assert!(stage.get(key).is_some(), "{key}");
    }
}

#[test]
fn json_mode_emits_one_event_per_line() {
    let dir = project("version = 1\n[stages.a]\nrun = [\"echo hi\"]\n");
    let out = shipit(dir.path())
        .args(["build", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"run_started"));
    assert!(
        kinds.contains(&"stage_finished") && kinds.contains(&"run_finished"),
        "{kinds:?}"
    );
}

#[test]
fn unchanged_targets_are_cached_until_an_input_changes() {
    let dir = project("version = 1\n\n[stages.build]\nuses = \"cargo\"\n");
    let lock = Command::new("cargo")
        .arg("generate-lockfile")
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(lock.success());
    let build = |extra: &[&str]| {
        let out = shipit(dir.path())
            .arg("build")
            .args(extra)
            .env("CARGO_TARGET_DIR", dir.path().join("target"))
            .output()
            .unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        stderr
    };
    let host = shipit::targets::Target::parse(
        "host",
        &shipit::facts::host_triple(&shipit::facts::rustc_version()),
    )
    .unwrap();
    let cached = format!("build {}: cached", host.name);

    assert!(!build(&[]).contains(&cached));
    let manifest = std::fs::read_to_string(dir.path().join("dist/manifest.json")).unwrap();
    let again = build(&[]);
    assert!(again.contains(&cached), "{again}");
    assert!(again.contains("build: cached"), "{again}");
    let reused = std::fs::read_to_string(dir.path().join("dist/manifest.json")).unwrap();
    let artifacts =
        |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap()["artifacts"].clone();
    assert_eq!(artifacts(&reused), artifacts(&manifest));

    // --no-cache builds anyway.
    assert!(!build(&["--no-cache"]).contains(&cached));
    assert!(build(&[]).contains(&cached));
    // A changed source file is an input.
    std::fs::write(
        dir.path().join("src/main.rs"),
        "fn main() { println!(\"changed\"); }\n",
    )
    .unwrap();
    assert!(!build(&[]).contains(&cached));
    assert!(build(&[]).contains(&cached));
    // A build output changed behind cargo's back is not reused from the cache, and its header
    // check keeps it out of dist.
    let binary = dir
        .path()
        .join("target")
        .join(&host.triple)
        .join("release/tiny");
    std::fs::write(&binary, "tampered").unwrap();
    let out = shipit(dir.path())
        .arg("build")
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains(&cached), "{stderr}");
    assert!(
        stderr.contains("is not an executable shipit knows"),
        "{stderr}"
    );
    assert!(!dir.path().join(format!("dist/{}/tiny", host.name)).exists());
}

#[test]
fn plan_pins_glibc_builds_universal_darwin_and_applies_overrides() {
    let dir = project(
        r#"version = 1

[stages.build]
uses = "cargo"
targets = ["linux-arm64", "linux-x64-musl", "darwin-universal", "windows-x64"]
glibc = "2.17"
rustflags = "-C opt-level=s"
features = ["a"]

[stages.build.overrides.windows-x64]
features = ["b"]
rustflags = "-C target-feature=+crt-static"
env = { BUILD_NOTE = "{{ project }} {{ version }}" }
"#,
    );
    // The features named must exist: `check` and `plan` look them up in Cargo.
    let manifest = dir.path().join("Cargo.toml");
    let cargo = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        format!(
            "{cargo}
[features]
a = []
b = []
"
        ),
    )
    .unwrap();
    let out = shipit(dir.path())
        .args(["plan", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let build = &plan["stages"][0];
    let argv = |i: usize| -> Vec<String> {
        serde_json::from_value(build["units"][i]["steps"][0]["exec"].clone()).unwrap()
    };
    let target_of = |i: usize| {
        let a = argv(i);
        let at = a.iter().position(|x| x == "--target").unwrap();
        (a[1].clone(), a[at + 1].clone())
    };
    // The glibc floor applies to gnu targets only.
    assert_eq!(
        target_of(0),
        ("zigbuild".into(), "aarch64-unknown-linux-gnu.2.17".into())
    );
    assert_eq!(
        target_of(1),
        ("zigbuild".into(), "x86_64-unknown-linux-musl".into())
    );
    assert_eq!(
        target_of(2),
        ("zigbuild".into(), "universal2-apple-darwin".into())
    );
    assert_eq!(
        build["units"][2]["artifacts"][0]["path"],
        "darwin-universal/tiny"
    );
    let requires = build["requires"].as_array().unwrap();
    for triple in ["x86_64-apple-darwin", "aarch64-apple-darwin"] {
        assert!(
            requires.contains(&serde_json::json!({"tool": "rust_std", "triple": triple})),
            "{requires:?}"
        );
    }
    // Stage settings, then the per-target override.
    assert!(argv(0).windows(2).any(|w| w == ["--features", "a"]));
    assert_eq!(build["units"][0]["env"]["RUSTFLAGS"], "-C opt-level=s");
    assert!(argv(3).windows(2).any(|w| w == ["--features", "b"]));
    assert_eq!(
        build["units"][3]["env"]["RUSTFLAGS"],
        "-C target-feature=+crt-static"
    );
    assert_eq!(build["units"][3]["env"]["BUILD_NOTE"], "tiny 1.2.3");
}

/// Writes `pipeline` as the project's shipit.toml; `shipit plan` must exit 2 and say each needle.
fn plan_rejects(dir: &Path, pipeline: &str, needles: &[&str]) {
    rejects(dir, "plan", pipeline, needles);
}

/// Writes `pipeline` as the project's shipit.toml; `shipit <command>` must exit 2 and say each
/// needle.
fn rejects(dir: &Path, command: &str, pipeline: &str, needles: &[&str]) {
    std::fs::write(dir.join("shipit.toml"), pipeline).unwrap();
    let out = shipit(dir)
        .args([command, "--color", "never"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{pipeline}\n{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
}

#[test]
fn bad_cargo_options_are_located_with_hints() {
    let dir = project("version = 1\n");
    plan_rejects(
        dir.path(),
        r#"version = 1

[stages.build]
uses = "cargo"
targets = ["linux-x64-musl", "plan9-x64"]
glibc = "17"
packages = ["tinyy"]

[stages.build.overrides.windows-x64]
features = ["b"]
"#,
        &[
            "unknown target `plan9-x64`",
            "shipit.toml:5:30",
            "`linux-x64-musl`, `linux-arm64-musl`, `darwin-x64`",
            "`17` is not a glibc version",
            "shipit.toml:6:9",
        ],
    );
    // Once the targets are valid, override names are checked against them.
    plan_rejects(
        dir.path(),
        "version = 1\n\n[stages.build]\nuses = \"cargo\"\ntargets = [\"linux-x64-musl\"]\n\n[stages.build.overrides.linux-x64-mus]\nfeaturs = [\"b\"]\n",
        &[
            "`overrides.linux-x64-mus` is not one of this stage's targets",
            "shipit.toml:7:25",
            "did you mean `linux-x64-musl`?",
            "unknown key `featurs`",
            "did you mean `features`?",
        ],
    );
    // Package names need cargo metadata, so they are checked when the plan is made.
    plan_rejects(
        dir.path(),
        "version = 1\n\n[stages.build]\nuses = \"cargo\"\npackages = [\"tinyy\"]\n",
        &[
            "the workspace has no package `tinyy`",
            "shipit.toml:5:13",
            "did you mean `tiny`?",
        ],
    );
}

#[test]
fn a_workspace_builds_the_packages_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nmembers = [\"alpha\", \"beta\"]\nresolver = \"2\"\n",
    )
    .unwrap();
    for (name, bins) in [("alpha", &["alpha"][..]), ("beta", &["beta", "beta-admin"])] {
        std::fs::create_dir_all(root.join(name).join("src/bin")).unwrap();
        std::fs::write(
            root.join(name).join("Cargo.toml"),
            format!("[package]\nname = \"{name}\"\nversion = \"0.3.0\"\nedition = \"2021\"\n"),
        )
        .unwrap();
        for bin in bins {
            std::fs::write(
                root.join(name).join(format!("src/bin/{bin}.rs")),
                "fn main() {}\n",
            )
            .unwrap();
        }
    }
    std::fs::write(
        root.join("shipit.toml"),
        "version = 1\n[project]\nname = \"suite\"\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\npackages = [\"beta\"]\n",
    )
    .unwrap();
    let out = shipit(root)
        .arg("build")
        .env("CARGO_TARGET_DIR", root.join("target"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("dist/manifest.json")).unwrap())
            .unwrap();
    let mut names: Vec<&str> = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["beta", "beta-admin"]);
}

#[test]
fn deploy_sections_are_checked_with_locations_before_anything_runs() {
    let section = |extra: &str| {
        format!(
            "version = 1\n\n[deploy.production]\nstrategy = \"canary\"\nimage = \"127.0.0.1:9/acme/tiny:{{{{ version }}}}\"\n\
             port = 8080\nrouter = {{ haproxy = \"unix:///nowhere/admin.sock\", backend = \"tiny\" }}\n{extra}"
        )
    };
    let dir = project(&section("health = { deadline = \"soon\" }\n"));
    let out = shipit(dir.path())
        .args(["deploy", "--env", "production", "--dry-run"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "`health.deadline` of deploy environment `production`: `soon` is not a duration"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("shipit.toml:8:23"), "{stderr}");

    let dir = project(&section("canary = { steps = [50, 10] }\n"));
    let out = shipit(dir.path())
        .args(["deploy", "--env", "staging"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out)
            .1
            .contains("has no [deploy.staging]; environments: production"),
        "{:?}",
        text(&out)
    );
    let out = shipit(dir.path())
        .args(["deploy", "--env", "production", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out)
            .1
            .contains("canary steps [50, 10] must rise from 1 to 100"),
        "{:?}",
        text(&out)
    );

    // A router that does not answer is a failure of the work (exit 1), named. The engine is
    // reached first, so without a Docker engine this would test nothing of the router.
    crate::common::registry::require_docker();
    let dir = project(&section(""));
    let out = shipit(dir.path())
        .args(["deploy", "--env", "production"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot reach HAProxy's runtime API at unix:///nowhere/admin.sock"),
        "{stderr}"
    );
    assert!(stderr.contains("\n  Caused by: "), "{stderr}");
}

/// A failure is reported with its causes: the outermost message, then each `Caused by:`, on
/// stderr and as `causes` of the `--json` error event.
#[test]
fn a_deploy_to_an_engine_that_does_not_answer_names_it_with_its_cause() {
    // A loopback port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = project(&format!(
        "version = 1\n\n[deploy.production]\nstrategy = \"rolling\"\nimage = \"127.0.0.1:9/acme/tiny:1\"\n\
         port = 8080\ndocker = \"tcp://127.0.0.1:{port}\"\n\
         router = {{ haproxy = \"unix:///nowhere/admin.sock\", backend = \"tiny\" }}\n"
    ));
    let out = shipit(dir.path())
        .args(["deploy", "--env", "production"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let first = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert_eq!(
        first,
        format!(
            "error: the Docker engine at tcp://127.0.0.1:{port} does not answer (is dockerd running?)"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("\n  Caused by: "), "{stderr}");

    let out = shipit(dir.path())
        .args(["--json", "deploy", "--env", "production"])
        .output()
        .unwrap();
    let (stdout, _) = text(&out);
    let error: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "error")
        .unwrap_or_else(|| panic!("no error event in {stdout}"));
    assert_eq!(error["kind"], "failed", "{error}");
    let causes = error["causes"].as_array().unwrap();
    assert!(!causes.is_empty(), "{error}");
}

/// Real projects (issue 20, point 5): `shipit check` finds what used to fail only later: unknown
/// packages, binaries and features, `files` globs that match nothing (every one), a missing
/// signing key, `sha512 = "yes"` and the `OWNER/REPO` placeholder.
#[test]
fn check_finds_what_used_to_fail_only_later() {
    let build = "[stages.build]\nuses = \"cargo\"\nlocked = false\n";
    for (extra, needles) in [
        (
            format!("{build}packages = [\"tiyn\"]\n"),
            vec![
                "the workspace has no package `tiyn`",
                "did you mean `tiny`?",
            ],
        ),
        (format!("{build}bins = [\"nope\"]\n"), vec!["nope"]),
        (
            format!("{build}features = [\"fast\"]\n"),
            vec!["no package built here has a feature `fast`"],
        ),
        (
            format!(
                "{build}\n[stages.package]\nneeds = [\"build\"]\nuses = \"archive\"\n\
                 files = [\"LICENSE*\", \"docs/*.md\"]\n"
            ),
            vec!["`LICENSE*` matches nothing", "`docs/*.md` matches nothing"],
        ),
        (
            format!(
                "{build}\n[stages.sum]\nneeds = [\"build\"]\nuses = \"checksum\"\n\n\
                 [stages.sign]\nneeds = [\"sum\"]\nuses = \"sign\"\nkey = {{ file = \"keys/missing.key\" }}\n"
            ),
            vec!["keys/missing.key"],
        ),
        (
            format!(
                "{build}\n[stages.sum]\nneeds = [\"build\"]\nuses = \"checksum\"\nsha512 = \"yes\"\n"
            ),
            vec!["`sha512 = \"yes\"` would name the file `yes`"],
        ),
        (
            "[release.github]\nrepo = \"OWNER/REPO\"\n".to_string(),
            vec!["placeholder `shipit init` writes"],
        ),
    ] {
        let pipeline = format!("version = 1\n{extra}");
        rejects(project(&pipeline).path(), "check", &pipeline, &needles);
    }
}

/// Real projects (issue 20, point 7): `build --dry-run` says per target whether it is cached or
/// why it would build, and checks the signing keys; a cached run keeps the build's log.
#[test]
fn dry_run_says_what_is_cached_and_why_the_rest_builds() {
    let dir = project("version = 1\n[stages.build]\nuses = \"cargo\"\nlocked = false\n");
    let run = |args: &[&str]| {
        let out = shipit(dir.path())
            .arg("build")
            .args(args)
            .env("CARGO_TARGET_DIR", dir.path().join("target"))
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        (out.status.code(), format!("{stdout}{stderr}"))
    };
    let (code, out) = run(&["--dry-run"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("would build: never built here before"),
        "{out}"
    );
    // The first build writes Cargo.lock (`locked = false`), an input: the second one is the
    // build whose output later runs reuse.
    assert_eq!(run(&[]).0, Some(0));
    assert_eq!(run(&[]).0, Some(0));
    let log_path = std::fs::read_dir(dir.path().join("dist/logs"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("build")
        })
        .unwrap();
    let built_log = std::fs::read_to_string(&log_path).unwrap();
    let (code, out) = run(&["--dry-run"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("cached: inputs unchanged, output intact"),
        "{out}"
    );
    // A cached run appends to the log of the build that made the output.
    assert_eq!(run(&[]).0, Some(0));
    let cached_log = std::fs::read_to_string(&log_path).unwrap();
    assert!(cached_log.starts_with(&built_log), "{cached_log}");
    assert!(cached_log.contains("reusing the output of the build logged above"));
    std::fs::write(
        dir.path().join("src/main.rs"),
        "fn main() { println!(\"x\"); }\n",
    )
    .unwrap();
    let (code, out) = run(&["--dry-run"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("would build: its inputs changed: src/main.rs"),
        "{out}"
    );

    // The keys are checked in a dry run too.
    let pipeline = dir.path().join("shipit.toml");
    let text_now = std::fs::read_to_string(&pipeline).unwrap();
    std::fs::write(
        &pipeline,
        format!(
            "{text_now}\n[stages.sum]\nneeds = [\"build\"]\nuses = \"checksum\"\n\n\
             [stages.sign]\nneeds = [\"sum\"]\nuses = \"sign\"\nkey = {{ env = \"NO_SUCH_KEY_VAR\" }}\n"
        ),
    )
    .unwrap();
    let (code, out) = run(&["--dry-run"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("NO_SUCH_KEY_VAR"), "{out}");
}

/// Real projects (issue 20, point 8): the manifest carries the source date (the commit's time
/// here), not the wall clock, so an unchanged tree gives the same manifest on every run.
#[test]
fn the_manifest_date_is_the_commit_time_not_the_clock() {
    let dir = project("version = 1\n[stages.build]\nuses = \"cargo\"\nlocked = false\n");
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "first"]);
    let build = || {
        let out = shipit(dir.path())
            .arg("build")
            .env("CARGO_TARGET_DIR", dir.path().join("target"))
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
        std::fs::read_to_string(dir.path().join("dist/manifest.json")).unwrap()
    };
    let first = build();
    let manifest: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(manifest["date"], "2026-01-02T03:04:05Z");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(build(), first);
}

/// The README's guarantees table names, on every row, tests that exist: a promise without a
/// test, or a test renamed away from its row, fails here.
#[test]
fn every_guarantee_names_tests_that_exist() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split("## Guarantees and the tests behind them")
        .nth(1)
        .expect("README has a guarantees section")
        .split("\n## ")
        .next()
        .unwrap();
    let rows: Vec<&str> = section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| guarantee"))
        .collect();
    assert!(rows.len() >= 30, "{} rows", rows.len());
    for row in rows {
        let tests_cell = row.trim_end_matches('|').rsplit('|').next().unwrap();
        let names: Vec<&str> = tests_cell
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|n| n.contains("::"))
            .collect();
        assert!(!names.is_empty(), "a guarantee without a test: {row}");
        for name in names {
            let (module, test) = name.split_once("::").unwrap();
            let file = repo_root().join(format!("tests/e2e/{module}.rs"));
            let source = std::fs::read_to_string(&file)
                .unwrap_or_else(|_| panic!("{name}: no tests/e2e/{module}.rs"));
            let defined = source
                .split(&format!("\nfn {test}("))
                .next()
                .filter(|before| before.len() < source.len())
                .and_then(|before| {
                    before
                        .trim_end()
                        .lines()
                        .rev()
                        .find(|l| !l.trim_start().starts_with("///"))
                })
                .is_some_and(|attr| attr.trim() == "#[test]");
            assert!(defined, "{name} in the guarantees table is not a test");
        }
    }
}

/// `shipit release --help` lists every channel there is, from the channel registry.
#[test]
fn release_help_lists_every_channel_from_the_registry() {
    let out = shipit(&repo_root())
        .args(["release", "--help"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out).0;
    for channel in shipit::publish::channels() {
        let first_words: String = channel
            .about()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            help.contains(&format!("  {:<11} ", channel.name())) && help.contains(&first_words),
            "{} missing: {help}",
            channel.name()
        );
    }
    assert!(
        help.contains("--only <CHANNEL>") && help.contains("--skip <CHANNEL>"),
        "{help}"
    );
}

/// `shipit man --dir` writes a page per command that groff reads without a warning, the
/// release page listing every channel; `shipit completions` prints scripts the shells parse.
#[test]
fn man_pages_render_cleanly_and_completions_parse_in_their_shells() {
    crate::common::require("groff");
    crate::common::require("zsh");
    let dir = tempfile::tempdir().unwrap();
    let out = shipit(dir.path())
        .args(["man", "--dir", "man"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let pages: Vec<_> = std::fs::read_dir(dir.path().join("man"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(pages.len() > 15, "{pages:?}");
    for page in &pages {
        let judged = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(page)
            .output()
            .unwrap();
        assert!(
            judged.status.success() && judged.stderr.is_empty(),
            "{}: {}",
            page.display(),
            String::from_utf8_lossy(&judged.stderr)
        );
    }
    let release = std::fs::read_to_string(dir.path().join("man/shipit-release.1")).unwrap();
    for channel in shipit::publish::channels() {
        assert!(
            release.contains(channel.name()),
            "{} missing",
            channel.name()
        );
    }
    let page = shipit(dir.path()).arg("man").output().unwrap();
    assert_eq!(
        page.stdout,
        std::fs::read(dir.path().join("man/shipit.1")).unwrap()
    );

    for (shell, parse) in [("bash", ["bash", "-n"]), ("zsh", ["zsh", "-n"])] {
        let script = shipit(dir.path())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(script.status.code(), Some(0), "{shell}");
        let file = dir.path().join(format!("completion.{shell}"));
        std::fs::write(&file, &script.stdout).unwrap();
        let parsed = Command::new(parse[0])
            .arg(parse[1])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            parsed.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&parsed.stderr)
        );
        assert!(String::from_utf8_lossy(&script.stdout).contains("release"));
    }
    let unknown = shipit(dir.path())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
}
