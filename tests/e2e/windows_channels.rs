//! `[release.scoop]` and `[release.winget]`: the demo's Windows zips in a Scoop manifest pushed
//! to a bucket and in winget's three manifests pushed to a winget-pkgs-like repository, each
//! validated against its project's own published schema (vendored in `tests/fixtures/`).

use std::process::Command;

use crate::common::fake_github::FakeGithub;
use crate::common::{repo_root, require, text};
use crate::homebrew::{TOKEN, bare_tap, built_demo, release_demo, tap_file, tap_log};

/// Validates `document` (JSON, or YAML with `yaml`) against a vendored JSON schema (draft-07)
/// with Python's `jsonschema`.
fn validate(schema: &str, document: &str, yaml: bool) {
    let schema = repo_root().join("tests/fixtures").join(schema);
    let check = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml, jsonschema\n\
             schema = json.load(open(sys.argv[1], encoding='utf-8-sig'))\n\
             doc = yaml.safe_load(sys.argv[2]) if sys.argv[3] == 'yaml' else json.loads(sys.argv[2])\n\
             jsonschema.Draft7Validator(schema).validate(doc)\n",
        ])
        .arg(&schema)
        .arg(document)
        .arg(if yaml { "yaml" } else { "json" })
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}: {}\n{document}",
        schema.display(),
        text(&check).1
    );
}

#[test]
fn scoop_and_winget_manifests_validate_against_their_schemas_and_a_rerun_changes_nothing() {
    require("python3");
    let (_bucket_dir, bare) = bare_tap();
    let (_winget_dir, winget) = bare_tap();
    let dir = built_demo(&format!(
        "\n[release.github]\nrepo = \"acme/demo\"\n\n[release.scoop]\nbucket = {{ url = \"{}\" }}\n\n\
         [release.winget]\nrepository = {{ url = \"{}\" }}\nidentifier = \"Acme.Demo\"\n\
         description = \"Acme's tiny HTTP service: it answers\"\n",
        bare.display(),
        winget.display()
    ));
    let fake = FakeGithub::start(TOKEN);
    let release = || release_demo(dir.path(), &fake);
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
    assert!(
        text(&out)
            .1
            .contains("the winget manifests in manifests/a/Acme/Demo/0.1.0 are already up to date"),
        "{:?}",
        text(&out)
    );
    assert_eq!(tap_log(&bare), ["demo 0.1.0", "tap"]);
    assert_eq!(tap_log(&winget), ["Acme.Demo 0.1.0", "tap"]);

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

    // Scoop's own schema accepts it.
    validate("scoop/schema.json", &manifest_text, false);

    // winget: three manifests, each accepted by its schema, the installers holding the
    // release's URLs, the manifest's digests and the exe inside each zip's folder.
    let folder = "manifests/a/Acme/Demo/0.1.0";
    for (file, kind) in [
        ("Acme.Demo.yaml", "version"),
        ("Acme.Demo.installer.yaml", "installer"),
        ("Acme.Demo.locale.en-US.yaml", "defaultLocale"),
    ] {
        let text = tap_file(&winget, &format!("{folder}/{file}"));
        validate(&format!("winget/manifest.{kind}.1.28.0.json"), &text, true);
        assert!(text.contains("ManifestVersion: 1.28.0"), "{text}");
    }
    let installer = tap_file(&winget, &format!("{folder}/Acme.Demo.installer.yaml"));
    for artifact in built["artifacts"].as_array().unwrap() {
        if artifact["kind"] == "archive" && artifact["os"] == "windows" {
            let name = artifact["name"].as_str().unwrap();
            let url = built["published"]["github"]["assets"][name]
                .as_str()
                .unwrap();
            assert!(
                installer.contains(&format!("InstallerUrl: '{url}'")),
                "{installer}"
            );
            let sum = artifact["sha256"].as_str().unwrap().to_uppercase();
            assert!(
                installer.contains(&format!("InstallerSha256: {sum}")),
                "{installer}"
            );
            let exe = format!(
                "RelativeFilePath: '{}\\demo.exe'",
                name.trim_end_matches(".zip")
            );
            assert!(installer.contains(&exe), "{installer}");
        }
    }
    let locale = tap_file(&winget, &format!("{folder}/Acme.Demo.locale.en-US.yaml"));
    assert!(
        locale.contains("ShortDescription: 'Acme''s tiny HTTP service: it answers'"),
        "{locale}"
    );
}
