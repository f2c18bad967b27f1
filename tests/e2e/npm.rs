//! `[release.npm]` against a real npm registry (verdaccio): the demo's platform packages and
//! its root package, installed by the real npm and run by npx.

use std::process::Output;

use crate::common::verdaccio::Verdaccio;
use crate::common::{shipit, text};
use crate::homebrew::built_demo;

/// `shipit release` of the built demo with the registry's token.
fn release(dir: &std::path::Path, registry: &Verdaccio) -> Output {
    shipit(dir)
        .args(["release", "--pipeline", "pipelines/demo.toml"])
        .env("NPM_TOKEN", &registry.token)
        .output()
        .unwrap()
}

const PLATFORMS: [&str; 6] = [
    "@shipit-test/demo-darwin-arm64",
    "@shipit-test/demo-darwin-x64",
    "@shipit-test/demo-linux-arm64",
    "@shipit-test/demo-linux-x64",
    "@shipit-test/demo-win32-arm64",
    "@shipit-test/demo-win32-x64",
];

#[test]
fn npm_installs_only_the_hosts_platform_package_npx_runs_it_and_a_second_release_changes_nothing() {
    let registry = Verdaccio::start();
    let dir = built_demo(&format!(
        "\n[release.npm]\nname = \"@shipit-test/demo\"\nregistry = \"{}\"\nkeywords = [\"demo\"]\n",
        registry.url
    ));
    let out = release(dir.path(), &registry);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{stderr}{}",
        registry.log()
    );
    assert!(!stdout.contains(&registry.token) && !stderr.contains(&registry.token));

    // Every package is there under `latest`, the platform ones with npm's os/cpu fields and
    // no libc (the musl builds are static), the root with optionalDependencies on them all
    // and no install script.
    for name in PLATFORMS {
        let doc = registry
            .packument(name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(doc["dist-tags"]["latest"], "0.1.0", "{doc:#}");
        let version = &doc["versions"]["0.1.0"];
        let (os, cpu) = name
            .trim_start_matches("@shipit-test/demo-")
            .split_once('-')
            .unwrap();
        assert_eq!(version["os"], serde_json::json!([os]), "{version:#}");
        assert_eq!(version["cpu"], serde_json::json!([cpu]), "{version:#}");
        assert!(version.get("libc").is_none(), "{version:#}");
    }
    let root = registry.packument("@shipit-test/demo").unwrap();
    let version = &root["versions"]["0.1.0"];
    let optional: Vec<&str> = version["optionalDependencies"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(optional, PLATFORMS);
    assert!(version.get("scripts").is_none(), "{version:#}");
    assert_eq!(version["bin"]["demo"], "bin/demo.js");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("dist/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["published"]["npm"]["complete"], true);
    assert_eq!(
        manifest["published"]["npm"]["packages"]["@shipit-test/demo"],
        "published"
    );

    // A fresh project installs the root and only this machine's platform package.
    let home = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("package.json"),
        r#"{"name": "consumer", "version": "1.0.0", "private": true}"#,
    )
    .unwrap();
    let install = registry
        .npm(home.path(), project.path())
        .args(["install", "@shipit-test/demo"])
        .output()
        .unwrap();
    assert!(install.status.success(), "{:?}", text(&install));
    let mut installed: Vec<String> =
        std::fs::read_dir(project.path().join("node_modules/@shipit-test"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    installed.sort();
    assert_eq!(installed, ["demo", "demo-linux-x64"]);
    let run = registry
        .npx(home.path(), project.path())
        .args(["demo", "--version"])
        .output()
        .unwrap();
    assert_eq!(text(&run).0.trim(), "demo 0.1.0", "{:?}", text(&run));

    // npx straight from the registry, in an empty folder, passes arguments and exit codes.
    let empty = tempfile::tempdir().unwrap();
    let run = registry
        .npx(home.path(), empty.path())
        .args(["--yes", "@shipit-test/demo", "--version"])
        .output()
        .unwrap();
    assert_eq!(text(&run).0.trim(), "demo 0.1.0", "{:?}", text(&run));

    // Publishing again changes nothing: every version is recognised by its integrity.
    let before: Vec<serde_json::Value> = PLATFORMS
        .iter()
        .chain(["@shipit-test/demo"].iter())
        .map(|n| registry.packument(n).unwrap()["time"].clone())
        .collect();
    let out = release(dir.path(), &registry);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        stderr
            .matches("is already on the registry with the same contents")
            .count()
            + stdout
                .matches("is already on the registry with the same contents")
                .count(),
        7,
        "{stdout}{stderr}"
    );
    let after: Vec<serde_json::Value> = PLATFORMS
        .iter()
        .chain(["@shipit-test/demo"].iter())
        .map(|n| registry.packument(n).unwrap()["time"].clone())
        .collect();
    assert_eq!(before, after);

    // Other contents under the published version are refused, naming the package; the
    // platform packages (unchanged) pass first, and the registry keeps the old root.
    let pipeline = dir.path().join("pipelines/demo.toml");
    let changed = std::fs::read_to_string(&pipeline)
        .unwrap()
        .replace("keywords = [\"demo\"]", "keywords = [\"changed\"]");
    std::fs::write(&pipeline, changed).unwrap();
    let out = release(dir.path(), &registry);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("already has @shipit-test/demo@0.1.0 with other contents"),
        "{stderr}"
    );
    assert_eq!(
        registry.packument("@shipit-test/demo").unwrap()["versions"]["0.1.0"]["keywords"],
        serde_json::json!(["demo"])
    );
}

#[test]
fn a_missing_npm_token_is_reported_before_any_channel_runs() {
    let registry = Verdaccio::start();
    let dir = built_demo(&format!(
        "\n[release.npm]\nname = \"@shipit-test/missing\"\nregistry = \"{}\"\n",
        registry.url
    ));
    let out = shipit(dir.path())
        .args(["release", "--pipeline", "pipelines/demo.toml"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("$NPM_TOKEN"), "{stderr}");
    assert!(
        registry
            .packument("@shipit-test/missing-linux-x64")
            .is_none()
    );
}

/// `--only npm` publishes npm alone: GitHub is never contacted, so no GitHub token is needed.
/// A name that is no configured channel is exit 2 naming the configured ones; `--dry-run`
/// honours the pick.
#[test]
fn only_npm_publishes_without_a_github_token_and_an_unknown_channel_is_exit_2() {
    let registry = Verdaccio::start();
    let dir = built_demo(&format!(
        "\n[release.github]\nrepo = \"acme/demo\"\n\n[release.npm]\nname = \"@shipit-test/only\"\nregistry = \"{}\"\n",
        registry.url
    ));
    let run = |args: &[&str]| {
        shipit(dir.path())
            .args(["release", "--pipeline", "pipelines/demo.toml"])
            .args(args)
            .env("NPM_TOKEN", &registry.token)
            .env_remove("GITHUB_TOKEN")
            .env_remove("GH_TOKEN")
            .output()
            .unwrap()
    };
    for (args, said) in [
        (
            &["--only", "nope"][..],
            "--only nope: there is no channel `nope`",
        ),
        (&["--skip", "homebrew"][..], "has no `[release.homebrew]`"),
    ] {
        let out = run(args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(said), "{stderr}");
        assert!(
            stderr.contains("the configured channels are github, npm"),
            "{stderr}"
        );
    }
    let dry = run(&["--only", "npm", "--dry-run"]);
    let (_, stderr) = text(&dry);
    assert_eq!(dry.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("not publishing github this run"),
        "{stderr}"
    );
    assert!(registry.packument("@shipit-test/only").is_none());

    let out = run(&["--only", "npm"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("not publishing github this run"),
        "{stderr}"
    );
    let doc = registry
        .packument("@shipit-test/only")
        .expect("the root package");
    assert_eq!(doc["dist-tags"]["latest"], "0.1.0", "{doc:#}");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("dist/manifest.json")).unwrap(),
    )
    .unwrap();
    assert!(manifest["published"]["github"].is_null(), "{manifest:#}");
    assert!(
        manifest["published"]["npm"]["complete"] == true,
        "{manifest:#}"
    );

    // `--check` reads what npm installs: the packument's integrity and the tarball served.
    let check = run(&["--only", "npm", "--check"]);
    assert_eq!(check.status.code(), Some(0), "{:?}", text(&check));
    let tarball = registry.tarball("@shipit-test/only-linux-x64", "0.1.0");
    let mut bytes =
        std::fs::read(&tarball).unwrap_or_else(|e| panic!("{}: {e}", tarball.display()));
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&tarball, bytes).unwrap();
    let check = run(&["--only", "npm", "--check"]);
    let (_, stderr) = text(&check);
    assert_eq!(check.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "npm: @shipit-test/only-linux-x64@0.1.0 tarball differs: published as sha512-"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("only-linux-arm64@0.1.0 tarball differs"),
        "{stderr}"
    );
}
