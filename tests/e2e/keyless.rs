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
             [stages.installer]\nneeds = [\"package\"]\nuses = \"installer\"\n\
             base_url = \"https://downloads.invalid/tiny/{{{{ tag }}}}\"\n\
             sigstore = {{ identity = \"https://github.com/acme/tiny/.github/workflows/release.yml@refs/tags/{{{{ tag }}}}\" }}\n\n\
             [stages.checksum]\nneeds = [\"package\", \"installer\"]\nuses = \"checksum\"\n\n\
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

    // install.sh checks the keyless signature of SHA256SUMS when asked to (here with the
    // Sigstore project's client and the stand-ins' trust configuration).
    let served = crate::installer::serve(dist.clone());
    let sigstore_bin = which::which("sigstore").unwrap().canonicalize().unwrap();
    let path = format!("{}:/usr/bin:/bin", sigstore_bin.parent().unwrap().display());
    let install = |path: &str| {
        let home = tempfile::tempdir().unwrap();
        let out = Command::new("sh")
            .arg(dist.join("install.sh"))
            .args(["--sigstore", "--base-url", &served, "--to"])
            .arg(home.path().join("bin"))
            .env_clear()
            .env("HOME", home.path())
            .env("PATH", path)
            .env("TINY_INSTALL_SIGSTORE_TRUST_CONFIG", &config)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        (
            out.status.code(),
            format!("{stdout}{stderr}"),
            home.path().join("bin/tiny").exists(),
        )
    };
    let (code, output, installed) = install(&path);
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("SHA256SUMS is signed keyless by https://github.com/acme/tiny/"),
        "{output}"
    );
    assert!(installed);
    let good = std::fs::read(&bundle).unwrap();
    edited(&bundle, &bundle, |v| {
        v["verificationMaterial"]["tlogEntries"] = Value::Array(Vec::new())
    });
    let (code, output, installed) = install(&path);
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("is not signed by") && !installed,
        "{output}"
    );
    std::fs::write(&bundle, good).unwrap();
    let (code, output, _) = install("/usr/bin:/bin");
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("--sigstore needs cosign or sigstore"),
        "{output}"
    );

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

    // Such a bundle made anyway (shipit's signer, without its check), then without its log
    // entry: nothing vouches for the time it was made, so both verifiers refuse it either way.
    let expired = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let endpoints = shipit::sigstore::Endpoints {
                fulcio: sigstore.fulcio.clone(),
                rekor: sigstore.rekor.clone(),
            };
            let signer = shipit::sigstore::Signer::with_token(&endpoints, &sigstore.mint_token())
                .await
                .unwrap();
            let digest: [u8; 32] = sha2::Digest::finalize(
                <sha2::Sha256 as sha2::Digest>::new_with_prefix(std::fs::read(&sums).unwrap()),
            )
            .into();
            signer.sign(&digest).await.unwrap()
        });
    let expired_file = root.join("expired.sigstore.json");
    std::fs::write(&expired_file, expired.to_json()).unwrap();
    let without_entry = root.join("expired-no-entry.sigstore.json");
    edited(&expired_file, &without_entry, |v| {
        v["verificationMaterial"]["tlogEntries"] = Value::Array(Vec::new())
    });
    for forged in [&expired_file, &without_entry] {
        assert!(
            !python_verify(&config, forged, &sums, &identity())
                .status
                .success()
        );
        let copy = root.join(format!(
            "{}-target",
            forged.file_name().unwrap().to_string_lossy()
        ));
        std::fs::create_dir_all(&copy).unwrap();
        std::fs::copy(&sums, copy.join("SHA256SUMS")).unwrap();
        std::fs::copy(forged, copy.join("SHA256SUMS.sigstore.json")).unwrap();
        let out = shipit_verify(root, &copy, &["--github-repo", "acme/tiny"]);
        assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    }
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

/// GitHub artifact attestations: a provenance attestation made by the Sigstore project's own
/// client (`sigstore attest`, as `actions/attest-build-provenance` makes them) against the
/// stand-ins verifies with `shipit verify --attestation` and, stored in the fake GitHub, with
/// `--github-attestation`; another repository, or a file it does not name, is refused.
#[test]
fn attestations_made_by_sigstores_client_verify_offline_and_through_githubs_api() {
    require("sigstore");
    let sigstore = Sigstore::start();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let file = root.join("tiny-1.0.0-linux-x64.tar.gz");
    std::fs::write(&file, b"the released archive").unwrap();
    let other = root.join("other.tar.gz");
    std::fs::write(&other, b"not what was attested").unwrap();
    std::fs::write(
        root.join("trusted_root.json"),
        sigstore.trusted_root().to_string(),
    )
    .unwrap();
    let config = root.join("trust_config.json");
    std::fs::write(&config, sigstore.trust_config().to_string()).unwrap();
    let predicate = root.join("predicate.json");
    std::fs::write(
        &predicate,
        r#"{"buildDefinition": {"buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {"workflow": {"repository": "https://github.com/acme/tiny"}},
            "resolvedDependencies": []},
            "runDetails": {"builder": {"id": "https://github.com/actions/runner"}, "metadata": {}}}"#,
    )
    .unwrap();
    let bundle = root.join("attestation.sigstore.json");
    let out = Command::new("sigstore")
        .arg("--trust-config")
        .arg(&config)
        .args(["attest", "--predicate"])
        .arg(&predicate)
        .args(["--predicate-type", "https://slsa.dev/provenance/v1"])
        .args(["--identity-token", &sigstore.mint_token(), "--bundle"])
        .arg(&bundle)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "sigstore attest: {:?}", text(&out));

    let verify = |target: &Path, how: &[&str], repo: &str, api: Option<&str>| {
        let mut command = shipit(root);
        command
            .arg("verify")
            .arg(target)
            .args(how)
            .args(["--github-repo", repo, "--trusted-root"])
            .arg(root.join("trusted_root.json"));
        if let Some(api) = api {
            // The API is the fake's; the workflows are on github.com, as the token says.
            command
                .env("GITHUB_API_URL", api)
                .env("GITHUB_SERVER_URL", "https://github.com")
                .env("GITHUB_TOKEN", crate::release::TOKEN);
        }
        command.output().unwrap()
    };
    let offline = ["--attestation", bundle.to_str().unwrap()];
    let out = verify(&file, &offline, "acme/tiny", None);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("https://slsa.dev/provenance/v1 attested by https://github.com/acme/tiny/"),
        "{stdout}"
    );
    let out = verify(&file, &offline, "evil/tiny", None);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let out = verify(&other, &offline, "acme/tiny", None);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("does not name this file"), "{stdout}");

    // Through the API, as GitHub serves what the attest action stored.
    let fake = crate::common::fake_github::FakeGithub::start(crate::release::TOKEN);
    let digest = crate::common::fake_github::sha256(b"the released archive");
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    fake.add_attestation(&format!("sha256:{digest}"), stored);
    let out = verify(
        &file,
        &["--github-attestation"],
        "acme/tiny",
        Some(&fake.url),
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let out = verify(
        &other,
        &["--github-attestation"],
        "acme/tiny",
        Some(&fake.url),
    );
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("no attestation names this file"),
        "{stdout}"
    );
}
