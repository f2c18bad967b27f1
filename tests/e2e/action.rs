//! The GitHub Action's install step (`action.yml`), run as written with bash against a local
//! file server laid out like GitHub's release downloads: it installs a verified shipit, and
//! refuses a tampered archive or a version that is not one.

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
    assert!(script.contains("sha256sum -c wanted"), "{script}");
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

/// Runs the install step as a Linux x64 runner would, with `version` as the input.
fn install(server: &str, version: &str, work: &Path) -> (Output, String) {
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
        .env_remove("GH_TOKEN")
        .output()
        .unwrap();
    (out, std::fs::read_to_string(&path_file).unwrap())
}

#[test]
fn the_action_installs_a_verified_release_and_refuses_a_tampered_one() {
    require("bash");
    require("curl");
    require("sha256sum");
    let files = tempfile::tempdir().unwrap();
    let download = release_files(files.path());
    let server = serve(files.path().to_path_buf());

    // The action's own tag (no version input) and an explicit version both install.
    for version in ["", "0.1.0"] {
        let work = tempfile::tempdir().unwrap();
        let (out, added) = install(&server, version, work.path());
        assert!(out.status.success(), "{version:?}: {:?}", text(&out));
        let dir = PathBuf::from(added.trim());
        assert!(dir.starts_with(work.path().join("runner-temp")), "{added}");
        let run = Command::new(dir.join("shipit")).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&run.stdout), "shipit 0.1.0\n");
    }

    // A version input that is not a version never reaches a URL or a path.
    let work = tempfile::tempdir().unwrap();
    let (out, added) = install(&server, "0.1.0/../../../etc", work.path());
    assert!(!out.status.success());
    assert!(
        text(&out).0.contains("::error::the version input"),
        "{:?}",
        text(&out)
    );
    assert!(added.is_empty());

    // A tampered archive fails the checksum and is never put on PATH.
    let archive = download.join("shipit-0.1.0-linux-x64-musl.tar.gz");
    let mut bytes = std::fs::read(&archive).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&archive, bytes).unwrap();
    let work = tempfile::tempdir().unwrap();
    let (out, added) = install(&server, "0.1.0", work.path());
    assert!(!out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.contains("FAILED"), "{:?}", text(&out));
    assert!(added.is_empty(), "{added}");
}
