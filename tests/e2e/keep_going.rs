//! A macOS target whose crate links an Apple framework fails without a macOS SDK: the failure
//! says so (SDKROOT), and `build --keep-going` packages, checksums and releases the targets
//! that built, the manifest naming the one that did not.

use crate::common::fake_github::FakeGithub;
use crate::common::{git, shipit, text, tiny_crate};
use crate::release::TOKEN;

#[test]
fn a_framework_without_an_sdk_is_explained_and_keep_going_releases_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    tiny_crate(root, "1.0.0");
    std::fs::write(
        root.join("src/main.rs"),
        "#[cfg(target_os = \"macos\")]\n#[link(name = \"Foundation\", kind = \"framework\")]\nunsafe extern \"C\" {}\n\nfn main() {}\n",
    )
    .unwrap();
    std::fs::write(root.join(".gitignore"), "target/\ndist/\n").unwrap();
    std::fs::write(
        root.join("shipit.toml"),
        "version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\ntargets = [\"linux-x64-musl\", \"darwin-arm64\"]\n\n\
         [stages.package]\nneeds = [\"build\"]\nuses = \"archive\"\n\n\
         [stages.checksum]\nneeds = [\"package\"]\nuses = \"checksum\"\n\n\
         [release.github]\nrepo = \"acme/tiny\"\n",
    )
    .unwrap();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "feat: first"]);
    let build = |args: &[&str]| {
        let out = shipit(root)
            .arg("build")
            .args(args)
            .env("CARGO_TARGET_DIR", root.join("target"))
            .env_remove("SDKROOT")
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        (out.status.code(), format!("{stdout}{stderr}"))
    };

    let (code, out) = build(&[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("hint: this macOS target links Apple frameworks"),
        "{out}"
    );
    assert!(out.contains("SDKROOT"), "{out}");
    assert!(
        !root.join("dist/manifest.json").exists(),
        "a failed build wrote a manifest"
    );

    let (code, out) = build(&["--keep-going"]);
    assert_eq!(code, Some(1), "the run still failed: {out}");
    assert!(
        out.contains("darwin-arm64 failed; packaging the targets that built (linux-x64-musl)"),
        "{out}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("dist/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["missing"], serde_json::json!(["darwin-arm64"]));
    let sums = std::fs::read_to_string(root.join("dist/SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 1, "{sums}");
    assert!(sums.contains("tiny-1.0.0-linux-x64-musl.tar.gz"), "{sums}");

    let fake = FakeGithub::start(TOKEN);
    let out = shipit(root)
        .arg("release")
        .env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_TOKEN", TOKEN)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("1.0.0 goes out without darwin-arm64"),
        "{stderr}"
    );
    let mut names: Vec<String> = fake.releases()[0]
        .assets
        .iter()
        .map(|a| a.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["SHA256SUMS", "tiny-1.0.0-linux-x64-musl.tar.gz"]);
}
