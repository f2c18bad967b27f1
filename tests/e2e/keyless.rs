//! Keyless signing through local stand-ins for GitHub Actions' OIDC token service, Fulcio and
//! Rekor (`common::sigstore`): the bundles shipit writes verify with the Sigstore project's own
//! verifier (PyPI `sigstore`, given the same trusted root) and with `shipit verify`; another
//! identity, a tampered file, a bundle without its log entry, a bad inclusion proof and a
//! certificate expired when the log took the signature are each refused.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::common::sigstore::{ISSUER, REQUEST_TOKEN, Sigstore, identity};
use crate::common::{git, require, shipit, text, tiny_crate};

/// A committed tiny project whose sign stage signs keyless through `sigstore`.
fn project(sigstore: &Sigstore) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    tiny_crate(root, "1.0.0");
    std::fs::write(root.join(".gitignore"), "/target\n/dist\n").unwrap();
    std::fs::write(
        root.join("trusted_root.json"),
        sigstore.trusted_root().to_string(),
    )
    .unwrap();
    std::fs::write(
        root.join("shipit.toml"),
        format!(
            "version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\n\n\
             [stages.package]\nneeds = [\"build\"]\nuses = \"archive\"\n\n\
             [stages.checksum]\nneeds = [\"package\"]\nuses = \"checksum\"\n\n\
             [stages.sign]\nuses = \"sign\"\nneeds = [\"checksum\"]\nartifacts = \"all\"\n\
             key = {{ sigstore = {{ fulcio = \"{}\", rekor = \"{}\", trusted_root = \"trusted_root.json\" }} }}\n\n\
             [release.github]\nrepo = \"acme/tiny\"\n",
            sigstore.fulcio, sigstore.rekor
        ),
    )
    .unwrap();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "feat: first"]);
    git(root, &["tag", "v1.0.0"]);
    dir
}

fn build(dir: &Path, sigstore: &Sigstore) -> Output {
    shipit(dir)
        .arg("build")
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env("ACTIONS_ID_TOKEN_REQUEST_URL", &sigstore.token_url)
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN)
        .env_remove("SIGSTORE_ID_TOKEN")
        .output()
        .unwrap()
}

fn shipit_verify(dir: &Path, target: &Path, extra: &[&str]) -> Output {
    shipit(dir)
        .arg("verify")
        .arg(target)
        .arg("--trusted-root")
        .arg(dir.join("trusted_root.json"))
        .args(extra)
        .output()
        .unwrap()
}

/// The Sigstore project's own verifier, with the stand-ins' trust configuration.
fn python_verify(config: &Path, bundle: &Path, file: &Path, identity: &str) -> Output {
    Command::new("sigstore")
        .arg("--trust-config")
        .arg(config)
        .args(["verify", "identity", "--bundle"])
        .arg(bundle)
        .args(["--cert-identity", identity, "--cert-oidc-issuer", ISSUER])
        .arg(file)
        .output()
        .unwrap()
}

fn edited(bundle: &Path, to: &Path, edit: impl FnOnce(&mut Value)) {
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(bundle).unwrap()).unwrap();
    edit(&mut value);
    std::fs::write(to, value.to_string()).unwrap();
}

#[test]
fn keyless_bundles_verify_with_sigstores_own_verifier_and_shipit_and_every_forgery_is_refused() {
    require("sigstore");
    let sigstore = Sigstore::start();
    let project = project(&sigstore);
    let root = project.path();
    let out = build(root, &sigstore);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains(REQUEST_TOKEN) && !stderr.contains(REQUEST_TOKEN));
    let dist = root.join("dist");
    let sums = dist.join("SHA256SUMS");
    let bundle = dist.join("SHA256SUMS.sigstore.json");
    assert!(bundle.is_file(), "no bundle: {stderr}");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dist.join("manifest.json")).unwrap())
            .unwrap();
    assert!(
        manifest["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["path"] == "SHA256SUMS.sigstore.json" && a["kind"] == "signature"),
        "{manifest}"
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    assert_eq!(
        json["mediaType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );

    // The Sigstore project's verifier accepts every bundle shipit wrote.
    let config = root.join("trust_config.json");
    std::fs::write(&config, sigstore.trust_config().to_string()).unwrap();
    let archives: Vec<_> = std::fs::read_dir(&dist)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    for file in archives.iter().chain([&sums]) {
        let bundle = format!("{}.sigstore.json", file.display());
        let out = python_verify(&config, Path::new(&bundle), file, &identity());
        assert!(
            out.status.success(),
            "sigstore verify {}: {:?}",
            file.display(),
            text(&out)
        );
    }
    // And shipit: the folder, by the repository's workflows; one file by exact identity.
    let out = shipit_verify(root, &dist, &["--github-repo", "acme/tiny"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("ok     sigstore SHA256SUMS"), "{stdout}");
    assert!(
        stdout.contains(&format!("signed by {}", identity())),
        "{stdout}"
    );
    let out = shipit_verify(
        root,
        &sums,
        &[
            "--certificate-identity",
            &identity(),
            "--certificate-oidc-issuer",
            ISSUER,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));

    // Without an identity to check, shipit refuses to call a bundle good (exit 2).
    let out = shipit_verify(root, &dist, &[]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));

    // Another identity: refused by both.
    let other = "https://github.com/evil/tiny/.github/workflows/release.yml@refs/tags/v1.0.0";
    assert!(
        !python_verify(&config, &bundle, &sums, other)
            .status
            .success()
    );
    let out = shipit_verify(
        root,
        &sums,
        &[
            "--certificate-identity",
            other,
            "--certificate-oidc-issuer",
            ISSUER,
        ],
    );
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("not https://github.com/evil"), "{stdout}");
    let out = shipit_verify(root, &dist, &["--github-repo", "evil/tiny"]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));

    let check = |name: &str, edit: &dyn Fn(&mut Value), file: &Path, why: &str| {
        let forged = root.join(format!("{name}.sigstore.json"));
        edited(&bundle, &forged, |v| edit(v));
        assert!(
            !python_verify(&config, &forged, file, &identity())
                .status
                .success(),
            "sigstore accepted {name}"
        );
        // shipit reads a file's bundle from beside it: a folder holding the two.
        let copy = root.join(format!("{name}-target"));
        std::fs::create_dir_all(&copy).unwrap();
        std::fs::copy(file, copy.join("SHA256SUMS")).unwrap();
        std::fs::copy(&forged, copy.join("SHA256SUMS.sigstore.json")).unwrap();
        let out = shipit_verify(root, &copy, &["--github-repo", "acme/tiny"]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {stdout}\n{stderr}");
        assert!(stdout.contains(why), "{name}: {stdout}");
    };
    // A tampered file.
    let tampered = root.join("SHA256SUMS.tampered");
    std::fs::write(
        &tampered,
        format!("{}x", std::fs::read_to_string(&sums).unwrap()),
    )
    .unwrap();
    check("tampered", &|_| {}, &tampered, "another file");
    // No log entry: nothing says when it was signed, so an expired certificate cannot pass.
    check(
        "no-entry",
        &|v| v["verificationMaterial"]["tlogEntries"] = Value::Array(Vec::new()),
        &sums,
        "0 transparency log entries",
    );
    // A bad inclusion proof (its root hash changed).
    check(
        "bad-proof",
        &|v| {
            let proof = &mut v["verificationMaterial"]["tlogEntries"][0]["inclusionProof"];
            proof["rootHash"] = Value::String(base64_of(&[7u8; 32]));
        },
        &sums,
        "inclusion proof",
    );

    // Released, then rebuilt elsewhere by someone without the CI identity: every bundle on
    // the release holds over the rebuilt file it signs.
    let fake = crate::common::fake_github::FakeGithub::start(crate::release::TOKEN);
    let release = shipit(root)
        .arg("release")
        .env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_TOKEN", crate::release::TOKEN)
        .output()
        .unwrap();
    assert_eq!(release.status.code(), Some(0), "{:?}", text(&release));
    let stranger = tempfile::tempdir().unwrap();
    let out = shipit(stranger.path())
        .args(["reproduce", "v1.0.0", "--repo", "acme/tiny", "--source"])
        .arg(root)
        .arg("--trusted-root")
        .arg(root.join("trusted_root.json"))
        .env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_TOKEN", crate::release::TOKEN)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("SHA256SUMS.sigstore.json"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains("holds") && line.contains(&identity()),
        "{line}"
    );

    // A certificate already expired when the log took the signature: the build refuses its
    // own bundle (exit 1) and writes none.
    sigstore.set_certificate_window(
        SystemTime::now() - Duration::from_secs(7200),
        Duration::from_secs(600),
    );
    std::fs::remove_dir_all(&dist).unwrap();
    let out = build(root, &sigstore);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("not valid when the log took the signature"),
        "{stderr}"
    );
    assert!(!bundle.exists());
}

#[test]
fn keyless_signing_without_an_oidc_token_stops_before_any_work() {
    let sigstore = Sigstore::start();
    let project = project(&sigstore);
    let out = shipit(project.path())
        .arg("build")
        .env("CARGO_TARGET_DIR", project.path().join("target"))
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        .env_remove("SIGSTORE_ID_TOKEN")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("id-token: write"), "{stderr}");
    assert!(
        !project.path().join("target").exists(),
        "work started: {stderr}"
    );
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
