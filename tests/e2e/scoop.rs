//! `[release.scoop]`: the demo's Windows zips in a Scoop manifest pushed to a bucket, validated
//! against Scoop's own schema (vendored in `tests/fixtures/scoop/`).

use std::process::Command;

use crate::common::fake_github::FakeGithub;
use crate::common::{demo_copy, git, repo_root, require, shared_target_dir, shipit, text};
use crate::homebrew::{bare_tap, tap_file, tap_log};

const TOKEN: &str = "ghs_FAKEtoken0123456789abcdefghijKLMNOP";

#[test]
fn the_scoop_manifest_validates_against_scoops_schema_and_a_rerun_changes_nothing() {
    require("python3");
    let (_bucket_dir, bare) = bare_tap();
    let dir = demo_copy();
    let pipeline = dir.path().join("pipelines/demo.toml");
    let mut text_now = std::fs::read_to_string(&pipeline).unwrap();
    text_now.push_str(&format!(
        "\n[release.github]\nrepo = \"acme/demo\"\n\n[release.scoop]\nbucket = {{ url = \"{}\" }}\n",
        bare.display()
    ));
    std::fs::write(&pipeline, text_now).unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "demo"]);
    let build = shipit(dir.path())
        .args(["build", "--pipeline", "pipelines/demo.toml"])
        .env("CARGO_TARGET_DIR", shared_target_dir("homebrew-target"))
        .env_remove("SHIPIT_SIGNING_KEY")
        .output()
        .unwrap();
    assert_eq!(build.status.code(), Some(0), "{:?}", text(&build));
    let fake = FakeGithub::start(TOKEN);
    let release = || {
        shipit(dir.path())
            .args(["release", "--pipeline", "pipelines/demo.toml"])
            .env("GITHUB_API_URL", &fake.url)
            .env("GITHUB_TOKEN", TOKEN)
            .output()
            .unwrap()
    };
    let out = release();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let out = release();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert!(
        text(&out)
            .1
            .contains("the bucket's demo.json is already up to date"),
        "{:?}",
        text(&out)
    );
    assert_eq!(tap_log(&bare), ["demo 0.1.0", "tap"]);

    let manifest_text = tap_file(&bare, "bucket/demo.json");
    let scoop: serde_json::Value = serde_json::from_str(&manifest_text).unwrap();
    let built: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("dist/manifest.json")).unwrap(),
    )
    .unwrap();
    for (arch, key) in [("x64", "64bit"), ("arm64", "arm64")] {
        let zip = built["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == "archive" && a["os"] == "windows" && a["arch"] == arch)
            .unwrap();
        let entry = &scoop["architecture"][key];
        assert_eq!(entry["hash"], zip["sha256"], "{manifest_text}");
        assert_eq!(
            entry["url"],
            built["published"]["github"]["assets"][zip["name"].as_str().unwrap()],
            "{manifest_text}"
        );
        let stem = zip["name"].as_str().unwrap().trim_end_matches(".zip");
        assert_eq!(entry["extract_dir"], stem, "{manifest_text}");
        let update = scoop["autoupdate"]["architecture"][key]["url"]
            .as_str()
            .unwrap();
        assert!(
            update.contains("$version") && !update.contains("0.1.0"),
            "{update}"
        );
    }
    assert_eq!(scoop["bin"], serde_json::json!(["demo.exe"]));
    assert_eq!(scoop["version"], "0.1.0");

    // Scoop's own schema (draft-07) accepts it.
    let schema = repo_root().join("tests/fixtures/scoop/schema.json");
    let check = Command::new("python3")
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             jsonschema.Draft7Validator(schema).validate(json.loads(sys.argv[2]))\n",
        ])
        .arg(&schema)
        .arg(&manifest_text)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}\n{manifest_text}",
        text(&check).1
    );
}
