//! `shipit reproduce` against a release on the fake GitHub: a tiny project with archives,
//! signed checksums and signed provenance is released, then rebuilt from its tag in a fresh
//! folder by someone without its key. Every file matches (the signatures hold over the rebuilt
//! files); one archive replaced on the release is named with its first differing entry.

use std::io::Read;
use std::path::Path;
use std::process::Output;

use crate::common::fake_github::FakeGithub;
use crate::common::{git, shipit, text, tiny_crate, unencrypted_keys};
use crate::release::TOKEN;

/// A committed, tagged tiny project whose release (archive, SHA256SUMS and its signature, the
/// public key, provenance) is on `fake`; its key is not in the repository.
fn released(fake: &FakeGithub) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    tiny_crate(root, "1.0.0");
    std::fs::write(root.join("README.md"), "tiny\n").unwrap();
    std::fs::write(root.join(".gitignore"), "/target\n/dist\n/keys\n").unwrap();
    std::fs::write(
        root.join("shipit.toml"),
        "version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\n\n\
         [stages.package]\nneeds = [\"build\"]\nuses = \"archive\"\nfiles = [\"README.md\"]\n\n\
         [stages.checksum]\nneeds = [\"package\"]\nuses = \"checksum\"\n\n\
         [stages.sign]\nuses = \"sign\"\nneeds = [\"checksum\"]\nkey = { file = \"keys/shipit.key\" }\n\n\
         [stages.provenance]\nuses = \"provenance\"\nneeds = [\"sign\"]\nkey = { file = \"keys/shipit.key\" }\n\n\
         [release.github]\nrepo = \"acme/tiny\"\n",
    )
    .unwrap();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "feat: first"]);
    git(root, &["tag", "v1.0.0"]);
    unencrypted_keys(root);
    let build = shipit(root)
        .arg("build")
        .env("CARGO_TARGET_DIR", root.join("target"))
        .output()
        .unwrap();
    assert_eq!(build.status.code(), Some(0), "{:?}", text(&build));
    let release = shipit(root)
        .arg("release")
        .env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_TOKEN", TOKEN)
        .env_remove("GH_TOKEN")
        .output()
        .unwrap();
    assert_eq!(release.status.code(), Some(0), "{:?}", text(&release));
    dir
}

/// `shipit reproduce v1.0.0` run from an empty folder, as a stranger would.
fn reproduce(fake: &FakeGithub, source: &Path, extra: &[&str]) -> Output {
    let stranger = tempfile::tempdir().unwrap();
    shipit(stranger.path())
        .args(["reproduce", "v1.0.0", "--repo", "acme/tiny", "--source"])
        .arg(source)
        .args(extra)
        .env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_TOKEN", TOKEN)
        .env_remove("GH_TOKEN")
        .output()
        .unwrap()
}

fn archive_name(fake: &FakeGithub) -> String {
    fake.releases()[0]
        .assets
        .iter()
        .map(|a| a.name.clone())
        .find(|n| n.ends_with(".tar.gz"))
        .expect("an archive on the release")
}

/// The archive with its binary's bytes changed, everything else as it was.
fn with_changed_binary(archive: &[u8]) -> Vec<u8> {
    let mut input = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for entry in input.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let path = entry.path().unwrap().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if path.file_name().is_some_and(|n| n == "tiny") {
            data.extend_from_slice(b"backdoor");
        }
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append_data(&mut header, &path, &data[..]).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

#[test]
fn a_release_rebuilt_from_its_tag_elsewhere_matches_and_a_replaced_archive_is_named() {
    let fake = FakeGithub::start(TOKEN);
    let project = released(&fake);
    let names: Vec<String> = fake.releases()[0]
        .assets
        .iter()
        .map(|a| a.name.clone())
        .collect();
    for suffix in [
        ".tar.gz",
        "SHA256SUMS",
        "SHA256SUMS.minisig",
        ".pub",
        ".intoto.jsonl",
    ] {
        assert!(
            names.iter().any(|n| n.ends_with(suffix)),
            "no {suffix} in {names:?}"
        );
    }

    let out = reproduce(&fake, project.path(), &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let archive = archive_name(&fake);
    for (name, verdict) in [
        (archive.as_str(), "same"),
        ("SHA256SUMS", "same"),
        ("SHA256SUMS.minisig", "holds"),
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(name) && l.split_whitespace().nth(1) == Some(verdict)),
            "{name} is not `{verdict}`:\n{stdout}"
        );
    }
    assert!(stderr.contains("reproduced: all"), "{stderr}");
    // The secret key never left the project, and the rebuild made no signature of its own.
    assert!(!stdout.contains("shipit.key") && !stderr.contains("shipit.key"));

    // A third party signs a statement of the result with its own key.
    let witness = tempfile::tempdir().unwrap();
    unencrypted_keys(witness.path());
    let statement = witness.path().join("reproduced.intoto.jsonl");
    let out = reproduce(
        &fake,
        project.path(),
        &[
            "--attest",
            statement.to_str().unwrap(),
            "--key",
            witness.path().join("keys/shipit.key").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let envelope: shipit::provenance::dsse::Envelope =
        serde_json::from_str(std::fs::read_to_string(&statement).unwrap().trim()).unwrap();
    let public = shipit::minisign::PublicKey::from_text(
        &std::fs::read_to_string(witness.path().join("keys/shipit.pub")).unwrap(),
    )
    .unwrap();
    let payload = envelope.verify(&public.ed25519().unwrap()).unwrap();
    let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        statement["predicateType"],
        "https://github.com/shipit-rs/shipit/reproduce/v1"
    );
    assert_eq!(statement["predicate"]["reproduced"], true);
    assert_eq!(statement["subject"].as_array().unwrap().len(), names.len());

    // Machines get one typed event with every file.
    let out = reproduce(&fake, project.path(), &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let event: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(event["event"], "reproduced");
    assert_eq!(event["reproduced"], true);
    assert_eq!(event["files"].as_array().unwrap().len(), names.len());
    assert_eq!(
        event["commit"].as_str().unwrap(),
        crate::common::git_output(project.path(), &["rev-parse", "v1.0.0"])
    );
    assert!(event["recorded"]["source_date_epoch"].as_u64().is_some());

    // One archive replaced on the release (its bytes, as a stolen token could): named, with
    // the entry that differs; the rest still match; exit 1.
    let published = fake.releases()[0]
        .assets
        .iter()
        .find(|a| a.name == archive)
        .unwrap()
        .data
        .clone();
    fake.replace_asset_data("v1.0.0", &archive, &with_changed_binary(&published));
    let out = reproduce(&fake, project.path(), &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(archive.as_str()))
        .unwrap_or_else(|| panic!("no line for {archive}:\n{stdout}"));
    assert!(line.contains("differs"), "{line}");
    assert!(
        line.contains("first differing entry: `") && line.contains("/tiny` (its contents)"),
        "{line}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("SHA256SUMS ") && l.contains("same")),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("1 of {} files differ: {archive}", names.len())),
        "{stderr}"
    );
}

#[test]
fn a_tag_that_moved_away_from_the_recorded_commit_is_refused_before_rebuilding() {
    let fake = FakeGithub::start(TOKEN);
    let project = released(&fake);
    let root = project.path();
    std::fs::write(
        root.join("src/main.rs"),
        "fn main() { println!(\"other\"); }\n",
    )
    .unwrap();
    git(root, &["commit", "-qam", "fix: other"]);
    git(root, &["tag", "-f", "v1.0.0"]);
    let out = reproduce(&fake, root, &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("the release was built from"), "{stderr}");
    assert!(!stderr.contains("rebuilding"), "{stderr}");
}

#[test]
fn a_hostile_tag_name_is_never_taken_as_a_git_option() {
    let fake = FakeGithub::start(TOKEN);
    let stranger = tempfile::tempdir().unwrap();
    let out = shipit(stranger.path())
        .args(["reproduce", "--manifest"])
        .arg(write_manifest(stranger.path(), "--upload-pack=touch pwned"))
        .args(["--source", "."])
        .env("GITHUB_API_URL", &fake.url)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not a tag name git accepts"), "{stderr}");
    assert!(!stranger.path().join("pwned").exists());
}

/// A manifest in `dir/dist` whose tag is `tag`.
fn write_manifest(dir: &Path, tag: &str) -> std::path::PathBuf {
    let dist = dir.join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    let manifest = serde_json::json!({
        "schema": 1, "project": "tiny", "version": "1.0.0", "tag": tag,
        "commit": "0".repeat(40), "date": "2026-01-01T00:00:00Z",
        "artifacts": [{ "name": "SHA256SUMS", "path": "SHA256SUMS", "kind": "checksum",
                        "size": 0, "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" }],
    });
    let path = dist.join("manifest.json");
    std::fs::write(&path, manifest.to_string()).unwrap();
    std::fs::write(dist.join("SHA256SUMS"), "").unwrap();
    path
}

/// From a build's dist folder (a CI artifact) instead of a GitHub release: the manifest's
/// digests and the files beside it; a file changed in the folder is named.
#[test]
fn a_dist_folder_is_reproduced_from_its_manifest_and_a_changed_file_is_named() {
    let fake = FakeGithub::start(TOKEN);
    let project = released(&fake);
    let artifact = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(project.path().join("dist")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, artifact.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let run = || {
        let stranger = tempfile::tempdir().unwrap();
        shipit(stranger.path())
            .args(["reproduce", "--manifest"])
            .arg(artifact.path().join("manifest.json"))
            .arg("--source")
            .arg(project.path())
            .output()
            .unwrap()
    };
    let out = run();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("the manifest in"), "{stderr}");
    // The checksums file in the folder changed (and so no longer what the manifest states):
    // its bytes are refused, the run fails naming it.
    let sums = artifact.path().join("SHA256SUMS");
    std::fs::write(&sums, "0000  tiny-1.0.0-linux-x64.tar.gz\n").unwrap();
    let out = run();
    let (stdout, stderr) = text(&out);
    assert_ne!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("SHA256SUMS"),
        "{stdout}\n{stderr}"
    );
}
