//! `release --check` against the fake GitHub: it passes after a clean release (as the check
//! that follows every release does), sends nothing, and fails naming the channel, the file and
//! both digests when an asset is replaced, whether GitHub reports a digest or the bytes have to
//! be downloaded.

use crate::common::fake_github::FakeGithub;
use crate::common::{built_tiny, shipit, text};
use crate::release::TOKEN;

#[test]
fn release_check_names_a_replaced_github_asset_with_both_digests() {
    let dir = built_tiny("1.0.0", "");
    let fake = FakeGithub::start(TOKEN);
    let run = |args: &[&str]| {
        let out = shipit(dir.path())
            .arg("release")
            .args(args)
            .env("GITHUB_API_URL", &fake.url)
            .env("GITHUB_TOKEN", TOKEN)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        (out.status.code(), format!("{stdout}{stderr}"))
    };
    let (code, out) = run(&[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("published files: every one matches the manifest"),
        "{out}"
    );

    let calls = fake.calls().len();
    let (code, out) = run(&["--check"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        fake.calls()[calls..].iter().all(|c| c.starts_with("GET ")),
        "--check changed something: {:?}",
        &fake.calls()[calls..]
    );

    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("dist/manifest.json")).unwrap(),
    )
    .unwrap();
    let sums = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "SHA256SUMS")
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let swapped = b"0000 evil.tar.gz\n";
    fake.replace_asset_data("v1.0.0", "SHA256SUMS", swapped);
    let theirs = crate::common::fake_github::sha256(swapped);
    let said = format!(
        "github: SHA256SUMS differs: published as sha256:{sums}, the channel now has sha256:{theirs}"
    );
    let (code, out) = run(&["--check"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&said), "{out}");
    assert!(
        !out.contains("tiny-1.0.0") || !out.contains("tar.gz differs"),
        "{out}"
    );

    // Without GitHub's digest the asset is downloaded and hashed: the same verdict.
    fake.hide_digests();
    let (code, out) = run(&["--check"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&said), "{out}");
}
