//! A build split across machines: three `shipit build --split --targets ...` parts, merged by
//! `shipit release --merge`, give the same SHA256SUMS as one full build.

use std::path::Path;

use crate::common::fake_github::FakeGithub;
use crate::common::{demo_copy, git, shared_target_dir, shipit, text};

const TOKEN: &str = "ghs_FAKEtoken0123456789abcdefghijKLMNOP";
const PARTS: [&str; 3] = [
    "linux-x64-musl,linux-arm64-musl",
    "darwin-x64,darwin-arm64",
    "windows-x64,windows-arm64",
];

fn build(dir: &Path, args: &[&str]) {
    let out = shipit(dir)
        .args(["build", "--pipeline", "pipelines/demo.toml"])
        .args(args)
        .env("CARGO_TARGET_DIR", shared_target_dir("split-target"))
        .env_remove("SHIPIT_SIGNING_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {:?}", text(&out));
}

#[test]
fn three_split_builds_merge_into_the_checksums_of_one_full_build() {
    let dir = demo_copy();
    let pipeline = dir.path().join("pipelines/demo.toml");
    let with_release = format!(
        "{}\n[release.github]\nrepo = \"acme/demo\"\n",
        std::fs::read_to_string(&pipeline).unwrap()
    );
    std::fs::write(&pipeline, with_release).unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "demo"]);
    let dist = dir.path().join("dist");
    let parts = tempfile::tempdir().unwrap();

    for (i, targets) in PARTS.iter().enumerate() {
        build(dir.path(), &["--split", "--targets", targets]);
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dist.join("manifest.json")).unwrap())
                .unwrap();
        let split: Vec<&str> = targets.split(',').collect();
        assert_eq!(manifest["split"], serde_json::json!(split));
        assert!(!dist.join("SHA256SUMS").exists(), "a part made checksums");
        std::fs::rename(&dist, parts.path().join(format!("part{i}"))).unwrap();
    }
    build(dir.path(), &[]);
    let full = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    assert_eq!(full.lines().count(), 6, "{full}");
    std::fs::remove_dir_all(&dist).unwrap();

    let part = |i: usize| parts.path().join(format!("part{i}"));
    let fake = FakeGithub::start(TOKEN);
    let release = |merge: Vec<std::path::PathBuf>| {
        shipit(dir.path())
            .args(["release", "--pipeline", "pipelines/demo.toml", "--merge"])
            .args(merge)
            .env("GITHUB_API_URL", &fake.url)
            .env("GITHUB_TOKEN", TOKEN)
            .output()
            .unwrap()
    };

    // A missing part, and a part from another commit, are refused before anything is done.
    let out = release(vec![part(0), part(1)]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(
        text(&out)
            .1
            .contains("no part holds target(s) `windows-x64`, `windows-arm64`"),
        "{:?}",
        text(&out)
    );
    let stale = parts.path().join("stale");
    copy_dir(&part(2), &stale);
    let manifest = stale.join("manifest.json");
    let edited = std::fs::read_to_string(&manifest).unwrap().replacen(
        "\"commit\": \"",
        "\"commit\": \"0000000",
        1,
    );
    std::fs::write(&manifest, edited).unwrap();
    let out = release(vec![part(0), part(1), stale.clone()]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(
        text(&out).1.contains("was built for commit 0000000"),
        "{:?}",
        text(&out)
    );

    // A target in two parts, a file in two parts, another version: each refused, by name.
    let twin = parts.path().join("twin");
    copy_dir(&part(0), &twin);
    let out = release(vec![part(0), twin.clone(), part(1), part(2)]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(
        text(&out).1.contains("is in both")
            && text(&out).1.contains("each target belongs to one part"),
        "{:?}",
        text(&out)
    );
    let greedy = parts.path().join("greedy");
    copy_dir(&part(2), &greedy);
    let theirs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(part(0).join("manifest.json")).unwrap())
            .unwrap();
    let borrowed = theirs["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["path"].as_str().unwrap().ends_with(".tar.gz"))
        .unwrap()
        .clone();
    let borrowed_path = borrowed["path"].as_str().unwrap().to_string();
    std::fs::copy(part(0).join(&borrowed_path), greedy.join(&borrowed_path)).unwrap();
    let mut mine: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(greedy.join("manifest.json")).unwrap())
            .unwrap();
    mine["artifacts"].as_array_mut().unwrap().push(borrowed);
    std::fs::write(greedy.join("manifest.json"), mine.to_string()).unwrap();
    let out = release(vec![part(0), part(1), greedy.clone()]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(
        text(&out).1.contains(&format!(
            "holds `{borrowed_path}`, which the plan does not expect"
        )),
        "{:?}",
        text(&out)
    );
    let other_version = parts.path().join("other-version");
    copy_dir(&part(2), &other_version);
    let manifest = other_version.join("manifest.json");
    let edited = std::fs::read_to_string(&manifest).unwrap().replacen(
        "\"version\": \"",
        "\"version\": \"9",
        1,
    );
    std::fs::write(&manifest, edited).unwrap();
    let out = release(vec![part(0), part(1), other_version.clone()]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(
        text(&out).1.contains("was built for version 9"),
        "{:?}",
        text(&out)
    );
    // A tampered file (bytes changed after its part's manifest was written).
    let tampered = parts.path().join("tampered");
    copy_dir(&part(1), &tampered);
    let archive = std::fs::read_dir(&tampered)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz") || p.to_string_lossy().ends_with(".zip"))
        .unwrap();
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&archive, bytes).unwrap();
    let out = release(vec![part(0), tampered.clone(), part(2)]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(
        text(&out).1.contains("does not match that part's manifest"),
        "{:?}",
        text(&out)
    );
    assert!(
        !dist.join(archive.file_name().unwrap()).exists(),
        "a tampered part left a file in dist"
    );
    assert!(fake.calls().is_empty());

    // All three: the same checksums as the full build, signed once, published once.
    let out = release(vec![part(0), part(1), part(2)]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(
        std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap(),
        full
    );
    let releases = fake.releases();
    assert_eq!(releases.len(), 1);
    assert!(!releases[0].draft);
    assert_eq!(releases[0].assets.len(), 7, "six archives and SHA256SUMS");
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
