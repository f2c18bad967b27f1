//! The GitHub Action's install step (`action.yml`), run as written with bash against a local
//! file server laid out like GitHub's release downloads: it installs a shipit whose SHA256SUMS
//! is signed with the key pinned in the action (checked with openssl, as a runner has no
//! minisign), and refuses a tampered archive, a re-signed or unsigned release, and a version
//! that is not one.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{repo_root, require, text};

/// The `run:` script of the action's "Install shipit" step, exactly as the runner gets it.
fn install_script() -> String {
    let action = std::fs::read_to_string(repo_root().join("action.yml")).unwrap();
    let mut lines = action
        .lines()
        .skip_while(|l| l.trim() != "- name: Install shipit")
        .skip_while(|l| l.trim() != "run: |")
        .skip(1);
    let mut script = String::new();
    for line in lines.by_ref() {
        if !line.is_empty() && !line.starts_with("        ") {
            break;
        }
        script.push_str(line.strip_prefix("        ").unwrap_or(line));
        script.push('\n');
    }
    assert!(
        script.contains("sha256sum -c wanted") && script.contains("openssl pkeyutl -verify"),
        "{script}"
    );
    assert!(
        !script.contains("${{"),
        "expressions must reach the script through env"
    );
    script
}

/// Serves the files under `root` over HTTP on 127.0.0.1 (GET only; 404 for anything else).
fn serve(root: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let root = root.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    return;
                }
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let file = root.join(path.trim_start_matches('/'));
                let mut stream = stream;
                let answer = match std::fs::read(&file) {
                    Ok(body) if !path.contains("..") => {
                        let mut head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        head.extend(body);
                        head
                    }
                    _ => {
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = stream.write_all(&answer);
            });
        }
    });
    url
}

/// A release of `acme/shipit` v0.1.0 laid out as `/{repo}/releases/download/v{version}/`:
/// the linux-x64-musl archive (a `shipit` that prints its version) and SHA256SUMS.
fn release_files(root: &Path) -> PathBuf {
    let download = root.join("acme/shipit/releases/download/v0.1.0");
    let folder = root.join("build/shipit-0.1.0-linux-x64-musl");
    std::fs::create_dir_all(&download).unwrap();
    std::fs::create_dir_all(&folder).unwrap();
    let binary = folder.join("shipit");
    std::fs::write(&binary, "#!/bin/sh\necho shipit 0.1.0\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    let archive = download.join("shipit-0.1.0-linux-x64-musl.tar.gz");
    let tar = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(root.join("build"))
        .arg("shipit-0.1.0-linux-x64-musl")
        .status()
        .unwrap();
    assert!(tar.success());
    let (_, sha) = shipit::manifest::hash_file(&archive).unwrap();
    std::fs::write(
        download.join("SHA256SUMS"),
        format!(
            "{sha}  shipit-0.1.0-linux-x64-musl.tar.gz\n{}  shipit-0.1.0-linux-x64-musl.zip\n",
            "0".repeat(64)
        ),
    )
    .unwrap();
    download
}

/// A minisign key pair in `dir` (`name.pub`, `name.key`, no password); the public key's line.
fn keypair(dir: &Path, name: &str) -> String {
    let made = Command::new("minisign")
        .args(["-G", "-W", "-f", "-p"])
        .arg(dir.join(format!("{name}.pub")))
        .arg("-s")
        .arg(dir.join(format!("{name}.key")))
        .output()
        .unwrap();
    assert!(made.status.success(), "{:?}", text(&made));
    let public = std::fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap();
    public.lines().nth(1).unwrap().to_string()
}

/// Signs `download`'s SHA256SUMS with the key `name` in `dir`.
fn sign(dir: &Path, name: &str, download: &Path) {
    let signed = Command::new("minisign")
        .args(["-S", "-s"])
        .arg(dir.join(format!("{name}.key")))
        .arg("-m")
        .arg(download.join("SHA256SUMS"))
        .arg("-x")
        .arg(download.join("SHA256SUMS.minisig"))
        .output()
        .unwrap();
    assert!(signed.status.success(), "{:?}", text(&signed));
}

/// Runs the install step as a Linux x64 runner would, with `version` as the input and the
/// action checked out at `action` (its `keys/release.pub` the pinned key).
fn install(server: &str, version: &str, work: &Path, action: &Path) -> (Output, String) {
    install_with(server, version, work, action, &[])
}

/// [`install`], with more of the step's environment.
fn install_with(
    server: &str,
    version: &str,
    work: &Path,
    action: &Path,
    env: &[(&str, &str)],
) -> (Output, String) {
    let script = work.join("install.sh");
    std::fs::write(&script, install_script()).unwrap();
    let temp = work.join("runner-temp");
    std::fs::create_dir_all(&temp).unwrap();
    let path_file = work.join("github-path");
    std::fs::write(&path_file, "").unwrap();
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(work)
        .env("RUNNER_OS", "Linux")
        .env("RUNNER_ARCH", "X64")
        .env("RUNNER_TEMP", &temp)
        .env("GITHUB_PATH", &path_file)
        .env("GITHUB_SERVER_URL", server)
        .env("ACTION_REPO", "acme/shipit")
        .env("ACTION_REF", "v0.1.0")
        .env("SHIPIT_VERSION", version)
        .env("GITHUB_ACTION_PATH", action)
        .env("SHIPIT_PUBLIC_KEY", "")
        .env_remove("GH_TOKEN")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (out, std::fs::read_to_string(&path_file).unwrap())
}

/// A release on a local server, signed with a new key pinned in a checkout of the action.
struct Published {
    /// Holds what the server serves.
    files: tempfile::TempDir,
    /// The release's download folder.
    download: PathBuf,
    /// The server's address (the runner's `GITHUB_SERVER_URL`).
    server: String,
    /// The signing keys.
    keys: tempfile::TempDir,
    /// The action's checkout, `keys/release.pub` in it.
    action: PathBuf,
}

fn published() -> Published {
    let files = tempfile::tempdir().unwrap();
    let download = release_files(files.path());
    let server = serve(files.path().to_path_buf());
    let keys = tempfile::tempdir().unwrap();
    let action = keys.path().join("action");
    std::fs::create_dir_all(action.join("keys")).unwrap();
    keypair(keys.path(), "release");
    std::fs::copy(
        keys.path().join("release.pub"),
        action.join("keys/release.pub"),
    )
    .unwrap();
    sign(keys.path(), "release", &download);
    Published {
        files,
        download,
        server,
        keys,
        action,
    }
}

#[test]
fn the_action_installs_a_release_signed_with_its_pinned_key_and_refuses_any_other() {
    require("bash");
    require("curl");
    require("sha256sum");
    require("openssl");
    require("minisign");
    let Published {
        files: _files,
        download,
        server,
        keys,
        action,
    } = published();
    let attempt = |version: &str| {
        let work = tempfile::tempdir().unwrap();
        let (out, added) = install(&server, version, work.path(), &action);
        (out, added, work)
    };
    let refused = |why: &str| {
        let (out, added, _work) = attempt("0.1.0");
        assert!(!out.status.success(), "{why}: {:?}", text(&out));
        assert!(added.is_empty(), "{why}: {added}");
        text(&out).0
    };

    // The action's own tag (no version input) and an explicit version both install.
    for version in ["", "0.1.0"] {
        let (out, added, work) = attempt(version);
        assert!(out.status.success(), "{version:?}: {:?}", text(&out));
        let dir = PathBuf::from(added.trim());
        assert!(dir.starts_with(work.path().join("runner-temp")), "{added}");
        let run = Command::new(dir.join("shipit")).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&run.stdout), "shipit 0.1.0\n");
    }

    // A version input that is not a version never reaches a URL or a path.
    let (out, added, _work) = attempt("0.1.0/../../../etc");
    assert!(!out.status.success());
    assert!(
        text(&out).0.contains("::error::the version input"),
        "{:?}",
        text(&out)
    );
    assert!(added.is_empty());

    // Whoever can change the release can change SHA256SUMS and sign it again, but not with
    // the pinned key: their key is refused by number, and their signature under the pinned
    // key's number does not verify.
    let sums = download.join("SHA256SUMS");
    let signature = download.join("SHA256SUMS.minisig");
    let good_sums = std::fs::read(&sums).unwrap();
    let good_signature = std::fs::read(&signature).unwrap();
    std::fs::write(
        &sums,
        format!("{}  shipit-0.1.0-linux-x64-musl.tar.gz\n", "1".repeat(64)),
    )
    .unwrap();
    keypair(keys.path(), "attacker");
    sign(keys.path(), "attacker", &download);
    assert!(refused("re-signed").contains("signed by another key"));
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let ours = b64
        .decode(
            std::fs::read_to_string(action.join("keys/release.pub"))
                .unwrap()
                .lines()
                .nth(1)
                .unwrap(),
        )
        .unwrap();
    let forged = std::fs::read_to_string(&signature).unwrap();
    let mut lines: Vec<String> = forged.lines().map(str::to_string).collect();
    let mut bytes = b64.decode(&lines[1]).unwrap();
    bytes[2..10].copy_from_slice(&ours[2..10]);
    lines[1] = b64.encode(&bytes);
    std::fs::write(&signature, lines.join("\n") + "\n").unwrap();
    assert!(refused("forged key number").contains("does not verify"));
    // The pinned key's own signature over other bytes, or with another trusted comment.
    std::fs::write(&signature, &good_signature).unwrap();
    assert!(refused("changed sums").contains("does not verify"));
    std::fs::write(&sums, &good_sums).unwrap();
    let mut lines: Vec<String> = String::from_utf8(good_signature.clone())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines[2] = "trusted comment: timestamp:1\tfile:other".into();
    std::fs::write(&signature, lines.join("\n") + "\n").unwrap();
    assert!(refused("changed comment").contains("does not verify"));
    // A release without a signature is not installed.
    std::fs::remove_file(&signature).unwrap();
    assert!(refused("unsigned").contains("has no SHA256SUMS.minisig"));
    std::fs::write(&signature, &good_signature).unwrap();

    // A tampered archive fails the checksum and is never put on PATH.
    let archive = download.join("shipit-0.1.0-linux-x64-musl.tar.gz");
    let mut bytes = std::fs::read(&archive).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&archive, bytes).unwrap();
    assert!(refused("tampered archive").contains("FAILED"));
}

/// With `attestation: true`, the archive's GitHub artifact attestation must be by the
/// repository's release workflow at the version's tag: made here by the Sigstore project's
/// client against the stand-ins, served by the fake GitHub's attestations API, and checked by
/// the same client. One by another workflow, or none, is refused.
#[test]
fn the_action_requires_an_attestation_by_the_release_workflow_when_asked() {
    require("bash");
    require("curl");
    require("openssl");
    require("minisign");
    require("sigstore");
    let Published {
        files: _files,
        download,
        server,
        keys,
        action,
    } = published();

    let sigstore = crate::common::sigstore::Sigstore::start();
    let config = keys.path().join("trust_config.json");
    std::fs::write(&config, sigstore.trust_config().to_string()).unwrap();
    let predicate = keys.path().join("predicate.json");
    std::fs::write(
        &predicate,
        r#"{"buildDefinition": {"buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {}, "resolvedDependencies": []},
            "runDetails": {"builder": {"id": "https://github.com/actions/runner"}, "metadata": {}}}"#,
    )
    .unwrap();
    let archive = download.join("shipit-0.1.0-linux-x64-musl.tar.gz");
    let attest = |workflow: &str| -> serde_json::Value {
        let bundle = keys.path().join("attestation.sigstore.json");
        let _ = std::fs::remove_file(&bundle);
        let out = Command::new("sigstore")
            .arg("--trust-config")
            .arg(&config)
            .args(["attest", "--predicate"])
            .arg(&predicate)
            .args([
                "--predicate-type",
                "https://slsa.dev/provenance/v1",
                "--identity-token",
            ])
            .arg(sigstore.mint_token_for(&server, workflow))
            .arg("--bundle")
            .arg(&bundle)
            .arg(&archive)
            .output()
            .unwrap();
        assert!(out.status.success(), "sigstore attest: {:?}", text(&out));
        serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap()
    };
    let digest = crate::common::fake_github::sha256(&std::fs::read(&archive).unwrap());
    let sigstore_bin = which::which("sigstore").unwrap().canonicalize().unwrap();
    let path = format!(
        "{}:{}",
        sigstore_bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    let run = |fake: &crate::common::fake_github::FakeGithub| {
        let work = tempfile::tempdir().unwrap();
        let (out, added) = install_with(
            &server,
            "0.1.0",
            work.path(),
            &action,
            &[
                ("SHIPIT_ATTESTATION", "true"),
                ("SIGSTORE_TRUST_CONFIG", config.to_str().unwrap()),
                ("GITHUB_API_URL", &fake.url),
                ("GH_TOKEN", crate::release::TOKEN),
                ("PATH", &path),
            ],
        );
        (out, added)
    };

    // Refused, with `why`, and nothing installed.
    let refused = |fake: &crate::common::fake_github::FakeGithub, why: &str| {
        let (out, added) = run(fake);
        assert!(
            !out.status.success() && added.is_empty(),
            "{:?}",
            text(&out)
        );
        assert!(text(&out).0.contains(why), "{why}: {:?}", text(&out));
    };

    // Attested by acme/shipit's release workflow at v0.1.0: installed.
    let fake = crate::common::fake_github::FakeGithub::start(crate::release::TOKEN);
    fake.add_attestation(
        &format!("sha256:{digest}"),
        attest("acme/shipit/.github/workflows/release.yml@refs/tags/v0.1.0"),
    );
    let (out, added) = run(&fake);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.contains("is attested by"), "{:?}", text(&out));
    // The step passes shellcheck as bash runs it.
    require("shellcheck");
    let script = keys.path().join("install-step.sh");
    std::fs::write(&script, install_script()).unwrap();
    let lint = Command::new("shellcheck")
        .args(["-s", "bash"])
        .arg(&script)
        .output()
        .unwrap();
    assert!(lint.status.success(), "shellcheck: {:?}", text(&lint));
    assert!(!added.is_empty());

    // Only an attestation by another workflow: refused, nothing installed.
    let fake = crate::common::fake_github::FakeGithub::start(crate::release::TOKEN);
    fake.add_attestation(
        &format!("sha256:{digest}"),
        attest("acme/shipit/.github/workflows/other.yml@refs/heads/main"),
    );
    refused(&fake, "no attestation of");

    // None at all.
    let fake = crate::common::fake_github::FakeGithub::start(crate::release::TOKEN);
    refused(&fake, "has no attestation");
}
