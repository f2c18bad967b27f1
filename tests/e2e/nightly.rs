//! Tagged nightlies (`nightly = { mode = "tagged" }`) against a fake GitHub whose releases are
//! immutable: a release per night, the oldest beyond `keep` deleted, and not one request that
//! an immutable release refuses.

use crate::common::built_tiny;
use crate::common::fake_github::FakeGithub;
use crate::release::{TOKEN, nightly};

/// 2026-11-22, 23 and 24 at 18:13 UTC.
const NIGHTS: [&str; 3] = ["1795371200", "1795457600", "1795544000"];

#[test]
fn tagged_nightlies_on_immutable_releases_make_one_release_a_night_and_keep_two() {
    let dir = built_tiny("1.0.0", "keep = 2\nnightly = { mode = \"tagged\" }\n");
    let fake = FakeGithub::start(TOKEN);
    fake.make_immutable();
    let short = crate::common::git_output(dir.path(), &["rev-parse", "--short=7", "HEAD"]);
    for night in NIGHTS {
        nightly(dir.path(), &fake, night);
    }
    // The third night again: the release is there, whole; nothing is sent to change it.
    let calls_before = fake.calls().len();
    let stderr = nightly(dir.path(), &fake, NIGHTS[2]);
    let again: Vec<String> = fake.calls()[calls_before..].to_vec();
    assert!(
        again.iter().all(|c| c.starts_with("GET ")),
        "a re-run changed something: {again:?}\n{stderr}"
    );

    assert_eq!(fake.immutability_refusals(), Vec::<String>::new());
    let releases = fake.releases();
    let mut tags: Vec<&str> = releases.iter().map(|r| r.tag_name.as_str()).collect();
    tags.sort();
    assert_eq!(
        tags,
        [
            format!("nightly-20261123-{short}"),
            format!("nightly-20261124-{short}")
        ]
    );
    for release in &releases {
        assert!(!release.draft && release.prerelease, "{release:?}");
        assert!(!release.assets.is_empty(), "{release:?}");
    }
    assert_eq!(fake.latest(), None, "a nightly became latest");
    let refs: Vec<String> = fake.refs().into_iter().map(|(r, _)| r).collect();
    assert!(
        !refs
            .iter()
            .any(|r| r == "refs/tags/nightly" || r.contains("20261122")),
        "{refs:?}"
    );
    // No tag was ever moved: each was written once, when its release was published.
    let mut written: Vec<String> = fake.ref_log().into_iter().map(|(r, _)| r).collect();
    let count = written.len();
    written.dedup();
    assert_eq!(written.len(), count, "a tag was written twice: {written:?}");
}

#[test]
fn a_rolling_nightly_on_immutable_releases_stops_before_any_refused_call_and_names_tagged_mode() {
    let dir = built_tiny("1.0.0", "");
    let fake = FakeGithub::start(TOKEN);
    fake.make_immutable();
    nightly(dir.path(), &fake, NIGHTS[0]);
    let run = |command: &str| {
        crate::common::shipit(dir.path())
            .args([command, "--nightly"])
            .env("SOURCE_DATE_EPOCH", NIGHTS[1])
            .env("CARGO_TARGET_DIR", dir.path().join("target"))
            .env("GITHUB_API_URL", &fake.url)
            .env("GITHUB_TOKEN", TOKEN)
            .output()
            .unwrap()
    };
    assert_eq!(run("build").status.code(), Some(0));
    let out = run("release");
    let (_, stderr) = crate::common::text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the `nightly` release is immutable")
            && stderr.contains("nightly = { mode = \"tagged\" }"),
        "{stderr}"
    );
    assert_eq!(fake.immutability_refusals(), Vec::<String>::new());
}
