//! `shipit release` against a fake GitHub (tests/common/fake_github.rs): a clean release, a
//! re-run that uploads nothing, broken uploads, rate limits, resets, a run killed half-way.
//! After each, the fake holds one published release whose assets match the manifest byte for byte.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::fake_github::{FakeGithub, Fault};
use crate::common::{built_tiny, shipit, text};

pub(crate) const TOKEN: &str = "ghs_FAKEtoken0123456789abcdefghijKLMNOP";

/// A tiny project, built: an archive and SHA256SUMS in dist, ready to release.
fn built_project() -> tempfile::TempDir {
    built_project_at("1.0.0")
}

fn built_project_at(version: &str) -> tempfile::TempDir {
    built_tiny(version, "")
}

fn release(dir: &Path, fake: &FakeGithub, extra: &[&str]) -> Output {
    shipit(dir)
        .arg("release")
        .args(extra)
        .env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_TOKEN", TOKEN)
        .env_remove("GH_TOKEN")
        .env("GITHUB_OUTPUT", dir.join("github-output"))
        .output()
        .unwrap()
}

/// The fake holds exactly one published release for v1.0.0 whose assets are the manifest's
/// top-level files, byte for byte, all `uploaded`.
fn assert_one_complete_release(dir: &Path, fake: &FakeGithub) {
    let releases = fake.releases();
    assert_eq!(releases.len(), 1, "{releases:#?}");
    let release = &releases[0];
    assert!(!release.draft, "still a draft");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("dist/manifest.json")).unwrap())
            .unwrap();
    let mut expected: Vec<String> = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap().to_string())
        .filter(|p| !p.contains('/'))
        .collect();
    expected.sort();
    let mut names: Vec<String> = release.assets.iter().map(|a| a.name.clone()).collect();
    names.sort();
    assert_eq!(names, expected);
    for asset in &release.assets {
        assert_eq!(asset.state, "uploaded", "{}", asset.name);
        let local = std::fs::read(dir.join("dist").join(&asset.name)).unwrap();
        assert!(asset.data == local, "{} differs from dist", asset.name);
    }
}

fn uploads(fake: &FakeGithub) -> usize {
    fake.calls()
        .iter()
        .filter(|c| c.starts_with("POST /uploads/"))
        .count()
}

#[test]
fn a_clean_release_then_a_rerun_that_uploads_nothing() {
    let dir = built_project();
    let fake = FakeGithub::start(TOKEN);

    let out = release(dir.path(), &fake, &["-vv"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "the token leaked"
    );
    assert_one_complete_release(dir.path(), &fake);
    let published = &fake.releases()[0];
    assert_eq!(published.name.as_deref(), Some("tiny 1.0.0"));
    assert!(
        published.body.as_deref().unwrap_or("").contains("first"),
        "{:?}",
        published.body
    );
    assert!(!published.prerelease);
    // Published last: the draft was created first and patched at the end.
    let calls = fake.calls();
    let create = calls
        .iter()
        .position(|c| c == "POST /repos/acme/tiny/releases")
        .unwrap();
    let publish = calls
        .iter()
        .position(|c| c.starts_with("PATCH /repos/acme/tiny/releases/"))
        .unwrap();
    let last_upload = calls
        .iter()
        .rposition(|c| c.starts_with("POST /uploads/"))
        .unwrap();
    assert!(create < last_upload && last_upload < publish, "{calls:#?}");

    // The URLs go back into the manifest and to $GITHUB_OUTPUT.
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("dist/manifest.json")).unwrap(),
    )
    .unwrap();
    let url = manifest["published"]["github"]["url"].as_str().unwrap();
    assert_eq!(url, "https://github.com/acme/tiny/releases/tag/v1.0.0");
    assert!(
        manifest["published"]["github"]["assets"]["SHA256SUMS"]
            .as_str()
            .unwrap()
            .ends_with("/releases/download/v1.0.0/SHA256SUMS")
    );
    let output = std::fs::read_to_string(dir.path().join("github-output")).unwrap();
    assert!(output.contains(&format!("release-url={url}")), "{output}");
    assert!(output.contains("asset-urls={\"SHA256SUMS\":\"https://github.com/acme/tiny/releases/download/v1.0.0/SHA256SUMS\""), "{output}");

    // Again: nothing is uploaded, nothing changes.
    let before = uploads(&fake);
    let out = release(dir.path(), &fake, &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(uploads(&fake), before, "a re-run uploaded again");
    assert!(
        text(&out).1.contains("is already uploaded"),
        "{:?}",
        text(&out)
    );
    assert_one_complete_release(dir.path(), &fake);
}

#[test]
fn broken_uploads_rate_limits_and_resets_are_retried_to_a_complete_release() {
    let dir = built_project();
    let fake = FakeGithub::start(TOKEN);
    // A 503 on creating the release, then a created release whose answer is lost, a 502 that
    // leaves a `starter` asset, a secondary rate limit, a reset mid-body.
    fake.inject(Fault::Status {
        method: "POST",
        path: "/repos/acme/tiny/releases",
        status: 503,
        headers: Vec::new(),
        body: json!({"message": "Service Unavailable"}),
    });
    fake.inject(Fault::LoseAnswer {
        method: "POST",
        path: "/repos/acme/tiny/releases",
    });
    fake.inject(Fault::StarterThen502 { after: 10 });
    fake.inject(Fault::Status {
        method: "POST",
        path: "/uploads/",
        status: 403,
        headers: vec![("retry-after", "3".into())],
        body: json!({
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
        }),
    });
    fake.inject(Fault::ResetMidUpload { after: 20 });
    let started = Instant::now();
    let out = release(dir.path(), &fake, &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_one_complete_release(dir.path(), &fake);
    // Retry-After was honoured: the upload refused with it (the second upload request; the
    // first met the 502) came again no sooner than 3 s later. Other faults' waits add up to
    // less, so a client ignoring the header fails here.
    let uploads_timed: Vec<(Instant, String)> = fake
        .timed_calls()
        .into_iter()
        .filter(|(_, c)| c.starts_with("POST /uploads/"))
        .collect();
    let (refused_at, refused) = uploads_timed[1].clone();
    let (retried_at, _) = uploads_timed[2..]
        .iter()
        .find(|(_, c)| *c == refused)
        .unwrap_or_else(|| panic!("{refused} was never retried: {uploads_timed:#?}"));
    assert!(
        retried_at.duration_since(refused_at) >= Duration::from_secs(3),
        "retried after {:?}",
        retried_at.duration_since(refused_at)
    );
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(uploads(&fake) >= 5, "{:#?}", fake.calls());
    let creates = fake
        .calls()
        .iter()
        .filter(|c| *c == "POST /repos/acme/tiny/releases")
        .count();
    assert_eq!(
        creates,
        2,
        "the 503 and the lost answer: {:#?}",
        fake.calls()
    );
    assert!(
        fake.calls()
            .iter()
            .any(|c| c.starts_with("DELETE /repos/acme/tiny/releases/assets/")),
        "the starter asset was not removed: {:#?}",
        fake.calls()
    );
}

#[test]
fn a_run_killed_half_way_is_finished_by_a_rerun() {
    let dir = built_project();
    let fake = FakeGithub::start(TOKEN);
    fake.inject(Fault::Stall { seconds: 30 });
    let mut child = shipit(dir.path())
        .arg("release")
        .env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while uploads(&fake) == 0 {
        assert!(Instant::now() < deadline, "no upload started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let releases = fake.releases();
    assert_eq!(releases.len(), 1);
    assert!(
        releases[0].draft,
        "published before its assets were complete"
    );

    let out = release(dir.path(), &fake, &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_one_complete_release(dir.path(), &fake);
}

/// A token no shape rule knows: only masking by value can hide it.
const PLAIN_TOKEN: &str = "plain-secret-value-4f1c9a7e2b";
/// A GitHub-shaped token shipit was never given: only masking by shape can hide it.
const STRAY_TOKEN: &str = "ghp_STRAYtoken0123456789abcdefghijklmnopq";

#[test]
fn the_token_never_appears_at_any_verbosity() {
    let dir = built_project();
    for flags in [&["-q"][..], &[], &["-v"], &["-vv"], &["-vvv"], &["--json"]] {
        let fake = FakeGithub::start(PLAIN_TOKEN);
        // An upload refused with a message quoting the Authorization header (retried, so it
        // is logged at debug level), then a refusal to publish that quotes a stray GitHub
        // token (final, so it is the error shown at every verbosity).
        fake.inject(Fault::EchoAuthorization {
            method: "POST",
            path: "/uploads/",
            status: 502,
        });
        fake.inject(Fault::Status {
            method: "PATCH",
            path: "/repos/acme/tiny/releases/",
            status: 422,
            headers: Vec::new(),
            body: json!({"message": format!("token {STRAY_TOKEN} may not publish")}),
        });
        let out = shipit(dir.path())
            .arg("release")
            .args(flags)
            .env("GITHUB_API_URL", &fake.url)
            .env("GITHUB_TOKEN", PLAIN_TOKEN)
            .env("SHIPIT_LOG", "trace")
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        let all = format!("{stdout}{stderr}");
        assert_eq!(out.status.code(), Some(1), "{flags:?}: {all}");
        assert_eq!(fake.fired().len(), 2, "{flags:?}: {:#?}", fake.calls());
        for secret in [PLAIN_TOKEN, STRAY_TOKEN] {
            assert!(
                !all.contains(secret),
                "{secret} leaked with {flags:?}: {all}"
            );
        }
        // The messages were shown, masked: the error at every verbosity, and the echoed
        // header where retries are logged.
        assert!(
            all.contains("token *** may not publish"),
            "{flags:?}: {all}"
        );
        if flags.iter().any(|f| f.starts_with("-vv")) {
            assert!(
                all.contains("Authorization: Bearer ***"),
                "{flags:?}: {all}"
            );
        }
    }
}

#[test]
fn dry_run_sends_nothing_and_a_bad_token_is_named_without_being_shown() {
    let dir = built_project();
    let fake = FakeGithub::start(TOKEN);
    let out = release(dir.path(), &fake, &["--dry-run"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("would upload SHA256SUMS"), "{stderr}");
    assert!(stderr.contains("would publish the release"), "{stderr}");
    assert!(fake.calls().is_empty(), "{:#?}", fake.calls());

    // A file changed since the build is refused before anything is sent.
    let sums = dir.path().join("dist/SHA256SUMS");
    let original = std::fs::read(&sums).unwrap();
    std::fs::write(&sums, b"tampered\n").unwrap();
    let out = release(dir.path(), &fake, &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("changed since `shipit build`"), "{stderr}");
    assert!(fake.calls().is_empty(), "{:#?}", fake.calls());
    std::fs::write(&sums, original).unwrap();

    let wrong = "ghp_WRONGtoken0123456789abcdefghijklmnop";
    let out = shipit(dir.path())
        .args(["release", "-vv"])
        .env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_TOKEN", wrong)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("401") && stderr.contains("Bad credentials"),
        "{stderr}"
    );
    assert!(
        !stdout.contains(wrong) && !stderr.contains(wrong),
        "the token leaked"
    );
    assert!(fake.releases().is_empty());
}

/// Sets `replace = true` in `[release.github]` (the file's last section) and releases: the
/// release then holds exactly dist's files.
fn replace_and_release(dir: &Path, fake: &FakeGithub) {
    let pipeline = dir.join("shipit.toml");
    let text_now = std::fs::read_to_string(&pipeline).unwrap();
    std::fs::write(&pipeline, format!("{text_now}replace = true\n")).unwrap();
    let out = release(dir, fake, &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_one_complete_release(dir, fake);
}

/// Rewrites a dist file and its manifest entry, as a rebuild with other content would.
fn change_dist_file(dir: &Path, name: &str, content: &[u8]) {
    std::fs::write(dir.join("dist").join(name), content).unwrap();
    let path = dir.join("dist/manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let (size, sha) = shipit::manifest::hash_file(&dir.join("dist").join(name)).unwrap();
    for artifact in manifest["artifacts"].as_array_mut().unwrap() {
        if artifact["path"] == name {
            artifact["size"] = json!(size);
            artifact["sha256"] = json!(sha);
        }
    }
    std::fs::write(&path, manifest.to_string()).unwrap();
}

#[test]
fn a_different_asset_of_the_same_name_is_an_error_unless_replace() {
    let dir = built_project();
    let fake = FakeGithub::start(TOKEN);
    assert_eq!(release(dir.path(), &fake, &[]).status.code(), Some(0));
    change_dist_file(
        dir.path(),
        "SHA256SUMS",
        b"0000  changed-and-longer-than-before\n0000  x\n",
    );

    let out = release(dir.path(), &fake, &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("asset `SHA256SUMS` is already on the release")
            && stderr.contains("replace = true"),
        "{stderr}"
    );

    replace_and_release(dir.path(), &fake);
}

#[test]
fn a_pre_release_version_is_marked_and_not_made_latest() {
    let dir = built_project_at("2.0.0-rc.1");
    let fake = FakeGithub::start(TOKEN);
    // The stable release users download as "latest" must stay so.
    fake.add_release("v1.9.0", false);
    assert_eq!(fake.latest().as_deref(), Some("v1.9.0"));
    // GH_TOKEN works as well as GITHUB_TOKEN.
    let out = shipit(dir.path())
        .arg("release")
        .env("GITHUB_API_URL", &fake.url)
        .env_remove("GITHUB_TOKEN")
        .env("GH_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let releases = fake.releases();
    let rc = releases
        .iter()
        .find(|r| r.tag_name == "v2.0.0-rc.1")
        .unwrap();
    assert!(rc.prerelease && !rc.draft);
    assert_eq!(rc.make_latest.as_deref(), Some("false"));
    assert_eq!(fake.latest().as_deref(), Some("v1.9.0"));
    // The tag was created on the commit built.
    assert_eq!(
        fake.ref_sha("refs/tags/v2.0.0-rc.1"),
        Some(head(dir.path()))
    );
}

#[test]
fn uploading_a_1_gib_asset_streams_in_about_30_mib() {
    // GNU time, which scripts/test installs, reports the peak memory.
    crate::common::require("/usr/bin/time");
    let dir = built_project();
    // A 1 GiB file (sparse, so it costs no disk) as a release asset.
    let big = dir.path().join("dist/big.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let path = dir.path().join("dist/manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let (size, sha) = shipit::manifest::hash_file(&big).unwrap();
    manifest["artifacts"].as_array_mut().unwrap().push(json!({
        "name": "big.bin", "path": "big.bin", "kind": "file", "size": size, "sha256": sha
    }));
    std::fs::write(&path, manifest.to_string()).unwrap();

    let fake = FakeGithub::start(TOKEN);
    let rss = dir.path().join("rss");
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss)
        .arg(env!("CARGO_BIN_EXE_shipit"))
        .arg("release")
        .current_dir(dir.path())
        .env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_TOKEN", TOKEN)
        .env_remove("GITHUB_OUTPUT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let peak_kib: u64 = std::fs::read_to_string(&rss)
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .parse()
        .unwrap();
    eprintln!("peak RSS uploading 1 GiB: {} MiB", peak_kib / 1024);
    // Measured 45-47 MiB for the debug build (17 MiB of it the process at rest); buffering
    // the file would take 1 GiB.
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB");
    let asset = fake.releases()[0]
        .assets
        .iter()
        .find(|a| a.name == "big.bin")
        .map(|a| a.data.len())
        .unwrap();
    assert_eq!(asset, 1 << 30);
}

/// Name and SHA-256 of every top-level file the manifest in `dir` lists.
fn release_set(dir: &Path) -> BTreeMap<String, String> {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("dist/manifest.json")).unwrap())
            .unwrap();
    manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| !a["path"].as_str().unwrap().contains('/'))
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `build --nightly` then `release --nightly` on `day` (SOURCE_DATE_EPOCH); the release's stderr.
pub(crate) fn nightly(dir: &Path, fake: &FakeGithub, day: &str) -> String {
    let mut stderr = String::new();
    for command in ["build", "release"] {
        let out = shipit(dir)
            .args([command, "--nightly"])
            .env("SOURCE_DATE_EPOCH", day)
            .env("CARGO_TARGET_DIR", dir.join("target"))
            .env("GITHUB_API_URL", &fake.url)
            .env("GITHUB_TOKEN", TOKEN)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{command}: {:?}", text(&out));
        stderr = text(&out).1;
    }
    stderr
}

/// The commit `dir`'s HEAD is on.
fn head(dir: &Path) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Checks one moment of a nightly roll from `old` to `new`, by name: the old set or the new
/// set is there whole (each file under its name, with old or new content), or exactly one
/// name shared by both is missing because its old file was just deleted and its new file is
/// there as `NAME.next`, about to be renamed (GitHub cannot replace a file in one step).
fn check_roll_step(
    step: usize,
    assets: &[(String, String)],
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Result<(), String> {
    let on_release: BTreeMap<&str, &str> = assets
        .iter()
        .map(|(name, sha)| (name.as_str(), sha.as_str()))
        .collect();
    for (name, there) in &on_release {
        let known = [old.get(*name), new.get(*name)];
        if known.iter().any(Option::is_some) && !known.contains(&Some(&there.to_string())) {
            return Err(format!("step {step}: {name} holds {there}, neither set's"));
        }
    }
    let missing = |set: &BTreeMap<String, String>| -> Vec<String> {
        set.keys()
            .filter(|name| !on_release.contains_key(name.as_str()))
            .cloned()
            .collect()
    };
    let (missing_old, missing_new) = (missing(old), missing(new));
    if missing_old.is_empty() || missing_new.is_empty() {
        return Ok(());
    }
    match (missing_old.as_slice(), missing_new.as_slice()) {
        ([a], [b])
            if a == b && on_release.get(format!("{a}.next").as_str()) == Some(&new[a].as_str()) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "step {step}: neither set is whole (old lacks {missing_old:?}, new lacks {missing_new:?}): {assets:?}"
        )),
    }
}

#[test]
fn a_nightly_released_twice_rolls_one_release_and_is_never_incomplete() {
    let dir = built_project();
    let fake = FakeGithub::start(TOKEN);
    let nightly = |day: &str| nightly(dir.path(), &fake, day);
    let first_commit = head(dir.path());
    nightly("1795400000");
    let first = release_set(dir.path());
    // The tag is created on the commit released.
    assert_eq!(
        fake.ref_sha("refs/tags/nightly").as_deref(),
        Some(first_commit.as_str())
    );
    crate::common::git(
        dir.path(),
        &["commit", "-q", "--allow-empty", "-m", "fix: second"],
    );
    let second_commit = head(dir.path());
    assert_ne!(first_commit, second_commit);
    let changes_before = fake.history().len();
    nightly("1795500000");
    let second = release_set(dir.path());
    assert_ne!(first, second, "the two nightlies must differ");
    assert!(
        first.keys().any(|name| second.contains_key(name)),
        "no file keeps its name, so no replacement is exercised: {first:?} {second:?}"
    );

    let releases = fake.releases();
    assert_eq!(releases.len(), 1, "{releases:#?}");
    assert_eq!(releases[0].tag_name, "nightly");
    assert!(releases[0].prerelease && !releases[0].draft);
    assert_one_complete_release(dir.path(), &fake);
    // The tag follows the newest commit.
    assert_eq!(
        fake.ref_sha("refs/tags/nightly").as_deref(),
        Some(second_commit.as_str())
    );
    assert_eq!(fake.latest(), None, "a nightly became latest");

    // At every step of the second run, by name, one whole set of files was on the release.
    let history = fake.history();
    assert!(history.len() > changes_before + 2, "{history:#?}");
    for (step, assets) in history.iter().enumerate().skip(changes_before) {
        check_roll_step(step, assets, &first, &second).unwrap();
    }
}

/// The check above fails on the windows it is there to catch.
#[test]
fn the_nightly_roll_check_refuses_a_missing_name_and_early_deletes() {
    let set = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect()
    };
    let assets = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect()
    };
    let old = set(&[("SUMS", "o1"), ("a-1.tgz", "o2")]);
    let new = set(&[("SUMS", "n1"), ("a-2.tgz", "n2")]);
    // Fine: uploading; both there; SUMS swapped through SUMS.next; the old archive deleted last.
    for fine in [
        assets(&[("SUMS", "o1"), ("a-1.tgz", "o2")]),
        assets(&[
            ("SUMS", "o1"),
            ("a-1.tgz", "o2"),
            ("a-2.tgz", "n2"),
            ("SUMS.next", "n1"),
        ]),
        assets(&[("a-1.tgz", "o2"), ("a-2.tgz", "n2"), ("SUMS.next", "n1")]),
        assets(&[("SUMS", "n1"), ("a-1.tgz", "o2"), ("a-2.tgz", "n2")]),
        assets(&[("SUMS", "n1"), ("a-2.tgz", "n2")]),
    ] {
        check_roll_step(0, &fine, &old, &new).unwrap();
    }
    // Not fine: SUMS gone with nothing staged (the window a content-only check let through),
    // an old file deleted before the new set was whole, a file with foreign content.
    for broken in [
        assets(&[("a-1.tgz", "o2"), ("a-2.tgz", "n2")]),
        assets(&[("a-2.tgz", "n2"), ("SUMS.next", "n1")]),
        assets(&[("SUMS", "o1")]),
        assets(&[("SUMS", "x"), ("a-1.tgz", "o2")]),
    ] {
        assert!(
            check_roll_step(0, &broken, &old, &new).is_err(),
            "{broken:?}"
        );
    }
}

#[test]
fn a_nightly_with_keep_deletes_older_dated_nightly_releases() {
    let dir = built_tiny("1.0.0", "keep = 2\n");
    let fake = FakeGithub::start(TOKEN);
    for tag in [
        "v0.9.0",
        "v1.0.0-nightly.20261101.aaaaaaa",
        "v1.0.0-nightly.20261103.ccccccc",
        "v1.0.0-nightly.20261102.bbbbbbb",
    ] {
        fake.add_release(tag, tag.contains("nightly"));
    }
    let stderr = nightly(dir.path(), &fake, "1795400000");
    assert!(
        stderr.contains(
            "deleted 1 older nightly release (keeping 2): v1.0.0-nightly.20261101.aaaaaaa"
        ),
        "{stderr}"
    );
    let mut tags: Vec<String> = fake.releases().into_iter().map(|r| r.tag_name).collect();
    tags.sort();
    assert_eq!(
        tags,
        [
            "nightly",
            "v0.9.0",
            "v1.0.0-nightly.20261102.bbbbbbb",
            "v1.0.0-nightly.20261103.ccccccc"
        ]
    );
    let refs = fake.refs();
    assert!(
        !refs.iter().any(|(r, _)| r.ends_with("20261101.aaaaaaa")),
        "{refs:?}"
    );
    assert!(
        refs.iter().any(|(r, _)| r.ends_with("20261102.bbbbbbb")),
        "{refs:?}"
    );
}

/// Real projects (issue 20, point 6): a rebuilt file of the same size is told apart by content,
/// with the digest of what is here, and the way out.
#[test]
fn an_asset_of_the_same_size_but_other_content_says_so_with_its_digest() {
    let dir = built_project();
    let fake = FakeGithub::start(TOKEN);
    assert_eq!(release(dir.path(), &fake, &[]).status.code(), Some(0));
    let sums = dir.path().join("dist/SHA256SUMS");
    let mut same_size = std::fs::read(&sums).unwrap();
    same_size[0] = if same_size[0] == b'0' { b'1' } else { b'0' };
    change_dist_file(dir.path(), "SHA256SUMS", &same_size);
    let (_, sha) = shipit::manifest::hash_file(&sums).unwrap();
    let out = release(dir.path(), &fake, &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let size = same_size.len();
    assert!(stderr.contains("with other content"), "{stderr}");
    assert!(
        stderr.contains(&format!("here: {size} bytes, sha256:{sha}")),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&format!("{size} bytes, not {size}")),
        "{stderr}"
    );
}

/// Regression (issue 28, 5): an asset GitHub lists without a digest (those uploaded before it
/// kept one) was taken as uploaded when its size matched, so a rebuilt `SHA256SUMS.minisig` or
/// provenance of the same size stayed the old one (seen before the fix: the changed file was
/// "already uploaded", exit 0). Now it is downloaded (through GitHub's redirect to storage,
/// without the token) and compared by SHA-256: the same file is skipped, another is the
/// `replace` case.
#[test]
fn a_same_size_asset_without_a_digest_is_compared_by_its_bytes_never_its_size() {
    let dir = built_project();
    let fake = FakeGithub::start(TOKEN);
    assert_eq!(release(dir.path(), &fake, &[]).status.code(), Some(0));
    fake.hide_digests();
    let before = uploads(&fake);
    let out = release(dir.path(), &fake, &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(
        uploads(&fake),
        before,
        "an unchanged file was uploaded again"
    );
    assert!(
        fake.calls()
            .iter()
            .any(|c| c.starts_with("GET /uploads/storage/")),
        "{:?}",
        fake.calls()
    );

    let sums = dir.path().join("dist/SHA256SUMS");
    let mut same_size = std::fs::read(&sums).unwrap();
    same_size[0] = if same_size[0] == b'0' { b'1' } else { b'0' };
    change_dist_file(dir.path(), "SHA256SUMS", &same_size);
    let out = release(dir.path(), &fake, &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("asset `SHA256SUMS` is already on the release with other content"),
        "{stderr}"
    );
    replace_and_release(dir.path(), &fake);
}

/// Real projects (issue 20, points 2 and 4): a project with bare version tags (`14.1.1`), a
/// `master` default branch and a sign stage reading its key from `RELEASE_KEY` /
/// `RELEASE_KEY_PASSWORD`: the workflow `ci github` writes triggers on its tags and branch and
/// passes those variables (actionlint-clean), and the release goes out under the bare tag.
#[test]
fn bare_version_tags_master_and_own_signing_variables_release_end_to_end() {
    crate::common::require("actionlint");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    crate::common::tiny_crate(root, "14.1.1");
    std::fs::write(root.join(".gitignore"), "target/\ndist/\nkeys/\n").unwrap();
    std::fs::write(
        root.join("shipit.toml"),
        "version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\n\n\
         [stages.package]\nneeds = [\"build\"]\nuses = \"archive\"\n\n\
         [stages.checksum]\nneeds = [\"package\"]\nuses = \"checksum\"\n\n\
         [stages.sign]\nneeds = [\"checksum\"]\nuses = \"sign\"\n\
         key = { env = \"RELEASE_KEY\", password_env = \"RELEASE_KEY_PASSWORD\" }\n\n\
         [release.github]\nrepo = \"acme/tiny\"\n",
    )
    .unwrap();
    crate::common::git(root, &["init", "-q", "-b", "master"]);
    crate::common::git(root, &["add", "."]);
    crate::common::git(root, &["commit", "-qm", "feat: first"]);
    crate::common::git(root, &["tag", "14.1.1"]);
    let keygen = shipit(root)
        .args([
            "keygen",
            "--secret-key",
            "keys/k.key",
            "--public-key",
            "keys/k.pub",
        ])
        .args(["--password-env", "RELEASE_KEY_PASSWORD"])
        .env("RELEASE_KEY_PASSWORD", "pw")
        .output()
        .unwrap();
    assert_eq!(keygen.status.code(), Some(0), "{:?}", text(&keygen));
    let key = std::fs::read_to_string(root.join("keys/k.key")).unwrap();

    let workflow = root.join(".github/workflows/release.yml");
    let out = shipit(root).args(["ci", "github"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let text_now = std::fs::read_to_string(&workflow).unwrap();
    for needle in [
        "branches: [master]",
        r#"tags: ["[0-9]*"]"#,
        "startsWith(github.ref, 'refs/tags/')",
        "RELEASE_KEY: ${{ secrets.RELEASE_KEY }}",
        "RELEASE_KEY_PASSWORD: ${{ secrets.RELEASE_KEY_PASSWORD }}",
    ] {
        assert!(text_now.contains(needle), "{needle} not in:\n{text_now}");
    }
    assert!(!text_now.contains("SHIPIT_SIGNING_KEY"), "{text_now}");
    let lint = Command::new("actionlint").arg(&workflow).output().unwrap();
    assert!(lint.status.success(), "actionlint: {:?}", text(&lint));

    let build = shipit(root)
        .arg("build")
        .env("CARGO_TARGET_DIR", root.join("target"))
        .env("RELEASE_KEY", &key)
        .env("RELEASE_KEY_PASSWORD", "pw")
        .output()
        .unwrap();
    assert_eq!(build.status.code(), Some(0), "{:?}", text(&build));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("dist/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["tag"], "14.1.1");
    let fake = FakeGithub::start(TOKEN);
    let out = release(root, &fake, &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let releases = fake.releases();
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0].tag_name, "14.1.1");
}

/// The recorded 422 `already_exists` on upload is reconciled (a finished file kept, a broken
/// one deleted and sent again), lists are followed page by page through `Link`, and each file
/// goes up with its MIME type.
#[test]
fn recorded_upload_conflicts_are_reconciled_across_linked_pages() {
    let dir = built_project();
    let fake = FakeGithub::start(TOKEN);
    // One item per page, so every asset list spans pages.
    fake.set_max_per_page(1);
    fake.inject(Fault::AlreadyThere { complete: true });
    fake.inject(Fault::AlreadyThere { complete: false });
    let out = release(dir.path(), &fake, &["-vv"]);
    assert_eq!(out.status.code(), Some(0), "{:#?}", fake.calls());
    assert_one_complete_release(dir.path(), &fake);
    let calls = fake.calls();
    assert_eq!(uploads(&fake), 3, "two files, one sent again: {calls:#?}");
    let deletes = calls
        .iter()
        .filter(|c| c.starts_with("DELETE /repos/acme/tiny/releases/assets/"))
        .count();
    assert_eq!(deletes, 1, "only the broken one is deleted: {calls:#?}");
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("GET /repositories/") && c.contains("page=2")),
        "the second page was never fetched: {calls:#?}"
    );
    for request in fake.requests() {
        let Some(name) = request
            .line
            .split("name=")
            .nth(1)
            .map(|n| n.split('&').next().unwrap_or(n))
        else {
            continue;
        };
        let expected = if name.ends_with(".tar.gz") {
            "application/gzip"
        } else {
            "text/plain"
        };
        assert_eq!(request.header("content-type"), Some(expected), "{name}");
        assert!(request.header("content-length").is_some(), "{name}");
    }

    // A re-run finds both files on their pages and uploads nothing.
    let before = uploads(&fake);
    let out = release(dir.path(), &fake, &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(uploads(&fake), before);
}

/// An `upload_url` naming a host that is neither the API's nor its `uploads.` sibling gets no
/// token and no file: the release stops with the host named.
#[test]
fn an_upload_address_on_a_foreign_host_gets_no_token() {
    let dir = built_project();
    let fake = FakeGithub::start(TOKEN);
    let foreign = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    foreign.set_nonblocking(true).unwrap();
    let origin = format!("http://{}", foreign.local_addr().unwrap());
    fake.set_upload_origin(&origin);
    let out = release(dir.path(), &fake, &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&origin) && stderr.contains("not sending the token there"),
        "{stderr}"
    );
    assert!(
        foreign.accept().is_err(),
        "something connected to the foreign host"
    );
    assert!(fake.releases()[0].draft, "published without its files");
}

/// `release --json` is structured: one JSON event per line, and a `channel_finished` event per
/// channel carrying what it recorded in the manifest.
#[test]
fn release_json_reports_each_channel_with_its_record() {
    let dir = built_project();
    let fake = FakeGithub::start(TOKEN);
    let out = release(dir.path(), &fake, &["--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let finished: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "channel_finished")
        .collect();
    assert_eq!(finished.len(), 1, "{events:#?}");
    assert_eq!(finished[0]["channel"], "github");
    assert_eq!(finished[0]["ok"], true);
    assert_eq!(
        finished[0]["record"]["url"],
        "https://github.com/acme/tiny/releases/tag/v1.0.0"
    );
    assert!(
        finished[0]["record"]["assets"]["SHA256SUMS"]
            .as_str()
            .is_some_and(|u| u.ends_with("/download/v1.0.0/SHA256SUMS")),
        "{events:#?}"
    );
    // Every asset's upload is typed: started, then done with its size, before the channel ends.
    let assets = finished[0]["record"]["assets"].as_object().unwrap();
    let position = |name: &str, state: &str| {
        events
            .iter()
            .position(|e| e["event"] == "upload" && e["name"] == name && e["state"] == state)
    };
    let end = events
        .iter()
        .position(|e| e["event"] == "channel_finished")
        .unwrap();
    for name in assets.keys() {
        let started = position(name, "started").unwrap_or_else(|| panic!("{name}: {events:#?}"));
        let done = position(name, "done").unwrap_or_else(|| panic!("{name}: {events:#?}"));
        assert!(started < done && done < end, "{name}: {events:#?}");
        let size = std::fs::metadata(dir.path().join("dist").join(name)).map(|m| m.len());
        assert_eq!(events[done]["size"].as_u64(), size.ok(), "{name}");
    }

    // A second run finds every file there: each is `present`, none is sent again.
    let again = release(dir.path(), &fake, &["--json"]);
    let (stdout, _) = text(&again);
    let states: Vec<String> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "upload")
        .map(|e| e["state"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(states.len(), assets.len(), "{stdout}");
    assert!(states.iter().all(|s| s == "present"), "{states:?}");
}
