//! `install.sh`, judged by shellcheck and run under dash, bash, busybox sh, zsh and posh
//! against a loopback server holding the release: it installs the demo (the arm64 path under
//! qemu, with a `uname` that says aarch64), refuses a tampered archive before unpacking it,
//! and works with wget when curl is missing.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{demo_copy, git, require, shared_target_dir, shipit, text};

const PIPELINE: &str = r#"version = 1

[project]
name = "demo"
cargo = "../demo/Cargo.toml"
dist = "../dist"

[stages.build]
uses = "cargo"
targets = ["linux-x64-musl", "linux-arm64-musl", "windows-x64"]

[stages.package]
uses = "archive"
needs = ["build"]

[stages.installer]
uses = "installer"
needs = ["package"]
base_url = "https://downloads.example.com/demo/{{ tag }}"
"#;

/// Serves the files of `root` over HTTP on a loopback port until the test ends.
pub(crate) fn serve(root: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let root = root.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&stream);
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    return;
                }
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).map_or(true, |n| n == 0) || line == "\r\n" {
                        break;
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let name = path.trim_start_matches('/');
                let mut stream = &stream;
                match std::fs::read(root.join(name))
                    .ok()
                    .filter(|_| !name.contains(".."))
                {
                    Some(body) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(&body);
                    }
                    None => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                    }
                }
            });
        }
    });
    address
}

/// The demo built with its archives and installer; returns the project (dist inside).
fn built() -> tempfile::TempDir {
    let dir = demo_copy();
    std::fs::write(dir.path().join("pipelines/installer.toml"), PIPELINE).unwrap();
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "demo"]);
    let out = shipit(dir.path())
        .args(["build", "--pipeline", "pipelines/installer.toml"])
        .env("CARGO_TARGET_DIR", shared_target_dir("installer-target"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    dir
}

/// Runs `install.sh` under `shell` with `args`; returns its exit code and output.
fn install(
    shell: &[&str],
    script: &Path,
    home: &Path,
    path: &str,
    args: &[&str],
) -> (Option<i32>, String) {
    // The shell is found on the test's PATH; the script gets only `path`.
    let out = Command::new(which::which(shell[0]).unwrap())
        .args(&shell[1..])
        .arg(script)
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", path)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    (out.status.code(), format!("{stdout}{stderr}"))
}

fn version_of(binary: &Path, runner: Option<&str>) -> String {
    let out = match runner {
        Some(runner) => Command::new(runner).arg(binary).arg("--version").output(),
        None => Command::new(binary).arg("--version").output(),
    }
    .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn install_sh_passes_shellcheck_and_installs_under_five_shells_and_refuses_a_tampered_archive() {
    for program in [
        "shellcheck",
        "dash",
        "bash",
        "busybox",
        "zsh",
        "posh",
        "qemu-aarch64-static",
        "wget",
    ] {
        require(program);
    }
    let project = built();
    let dist = project.path().join("dist");
    let script = dist.join("install.sh");
    let out = Command::new("shellcheck")
        .args(["-s", "sh"])
        .arg(&script)
        .output()
        .unwrap();
    assert!(out.status.success(), "shellcheck:\n{}", text(&out).0);
    let body = std::fs::read_to_string(&script).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dist.join("manifest.json")).unwrap())
            .unwrap();
    for artifact in manifest["artifacts"].as_array().unwrap() {
        if artifact["kind"] == "archive" {
            let line = format!(
                "{} {} {}",
                artifact["target"].as_str().unwrap(),
                artifact["name"].as_str().unwrap(),
                artifact["sha256"].as_str().unwrap()
            );
            assert!(body.contains(&line), "install.sh lacks `{line}`");
        }
    }
    assert!(
        body.contains("base_url='https://downloads.example.com/demo/v0.1.0'"),
        "{body}"
    );

    let url = serve(dist.clone());
    let system_path = "/usr/local/bin:/usr/bin:/bin";
    for shell in [
        &["dash"][..],
        &["bash"],
        &["busybox", "sh"],
        &["zsh"],
        &["posh"],
    ] {
        let home = tempfile::tempdir().unwrap();
        let to = home.path().join("bin");
        let (code, out) = install(
            shell,
            &script,
            home.path(),
            system_path,
            &["--to", to.to_str().unwrap(), "--base-url", &url],
        );
        assert_eq!(code, Some(0), "{shell:?}:\n{out}");
        assert_eq!(
            version_of(&to.join("demo"), None),
            "demo 0.1.0",
            "{shell:?}:\n{out}"
        );
        assert!(out.contains("is not on your PATH"), "{out}");
        let (code, out) = install(
            shell,
            &script,
            home.path(),
            system_path,
            &["--to", to.to_str().unwrap(), "--uninstall"],
        );
        assert_eq!(code, Some(0), "{out}");
        assert!(
            !to.join("demo").exists(),
            "{shell:?}: --uninstall left the binary"
        );
    }

    // The arm64 path: a `uname` that says aarch64, the binary run under qemu. The mirror comes
    // from the environment variable this time.
    let home = tempfile::tempdir().unwrap();
    let stub = home.path().join("stub");
    std::fs::create_dir(&stub).unwrap();
    std::fs::write(
        stub.join("uname"),
        "#!/bin/sh\nif [ \"$1\" = -m ]; then echo aarch64; else exec /bin/uname \"$@\"; fi\n",
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(stub.join("uname"))
        .status()
        .unwrap();
    let to = home.path().join("bin");
    let out = Command::new("dash")
        .arg(&script)
        .args(["--to", to.to_str().unwrap()])
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", format!("{}:{system_path}", stub.display()))
        .env("DEMO_INSTALL_BASE_URL", &url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(
        text(&out).1.contains("linux-arm64-musl"),
        "{}",
        text(&out).1
    );
    assert_eq!(
        version_of(&to.join("demo"), Some("qemu-aarch64-static")),
        "demo 0.1.0"
    );

    // wget when there is no curl: a PATH holding only what the script needs, curl left out.
    let tools = home.path().join("tools");
    std::fs::create_dir(&tools).unwrap();
    for tool in [
        "sh",
        "uname",
        "mktemp",
        "wget",
        "sha256sum",
        "cut",
        "tar",
        "gzip",
        "find",
        "head",
        "cp",
        "chmod",
        "mv",
        "mkdir",
        "rm",
        "ls",
        "grep",
        "cat",
        "sed",
        "ldd",
    ] {
        if let Ok(found) = which::which(tool) {
            std::os::unix::fs::symlink(found, tools.join(tool)).unwrap();
        }
    }
    let to = home.path().join("wget-bin");
    let (code, out) = install(
        &["dash"],
        &script,
        home.path(),
        tools.to_str().unwrap(),
        &["--to", to.to_str().unwrap(), "--base-url", &url],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(version_of(&to.join("demo"), None), "demo 0.1.0");

    // A tampered archive on the mirror: refused before unpacking, nothing installed.
    let mirror = home.path().join("mirror");
    std::fs::create_dir(&mirror).unwrap();
    for entry in std::fs::read_dir(&dist).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, mirror.join(path.file_name().unwrap())).unwrap();
        }
    }
    let archive = mirror.join("demo-0.1.0-linux-x64-musl.tar.gz");
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&archive, bytes).unwrap();
    let tampered = serve(mirror);
    let to = home.path().join("refused");
    let (code, out) = install(
        &["dash"],
        &script,
        home.path(),
        system_path,
        &["--to", to.to_str().unwrap(), "--base-url", &tampered],
    );
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("does not match its SHA-256"), "{out}");
    assert!(
        !to.join("demo").exists(),
        "a tampered archive was installed"
    );
}

/// `shipit init --binstall` gives the `[package.metadata.binstall]` block; resolved the way
/// cargo-binstall resolves it, every built target's override names the real archive and a
/// binary that is inside it.
/// Regression (issue 28, 8): the PATH hint echoed `--to` unquoted, so a folder holding a quote
/// or `$(...)` gave a line that ran code when pasted (seen before the fix: the pasted line
/// created `pwned`). The folder is single-quoted for the user's shell.
#[test]
fn the_path_hint_quotes_the_install_folder_for_copy_and_paste() {
    require("dash");
    let project = built();
    let dist = project.path().join("dist");
    let url = serve(dist.clone());
    let home = tempfile::tempdir().unwrap();
    let to = home.path().join("it's $(touch pwned) bin");
    let (code, out) = install(
        &["dash"],
        &dist.join("install.sh"),
        home.path(),
        "/usr/local/bin:/usr/bin:/bin",
        &["--to", to.to_str().unwrap(), "--base-url", &url],
    );
    assert_eq!(code, Some(0), "{out}");
    let hint = out
        .lines()
        .find_map(|l| {
            l.split_once("add it with: ")
                .map(|(_, cmd)| cmd.to_string())
        })
        .unwrap_or_else(|| panic!("no PATH hint in {out}"));
    // Pasting the line into a shell gives PATH with the folder as it is, and runs nothing.
    let pasted = Command::new("dash")
        .args(["-c", &format!("{hint}; printf '%s' \"$PATH\"")])
        .current_dir(home.path())
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(pasted.status.success(), "{hint}: {:?}", text(&pasted));
    assert_eq!(
        text(&pasted).0,
        format!("{}:/usr/bin:/bin", to.display()),
        "{hint}"
    );
    assert!(
        !home.path().join("pwned").exists(),
        "the pasted hint ran code: {hint}"
    );
}

#[test]
fn the_binstall_block_resolves_to_the_real_asset_names_and_binaries() {
    let project = built();
    let out = shipit(project.path())
        .args(["init", "--binstall"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let block: toml::Table = text(&out).0.parse().unwrap();
    let overrides = block["package"]["metadata"]["binstall"]["overrides"]
        .as_table()
        .unwrap();
    let dist = project.path().join("dist");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dist.join("manifest.json")).unwrap())
            .unwrap();
    let mut checked = 0;
    for artifact in manifest["artifacts"].as_array().unwrap() {
        if artifact["kind"] != "archive" {
            continue;
        }
        let alias = artifact["target"].as_str().unwrap();
        let target = shipit::targets::Target::parse(alias, "").unwrap();
        let entry = &overrides[&target.triple];
        let ext = if target.os == "windows" { ".exe" } else { "" };
        let resolve = |template: &str| {
            template
                .replace("{ repo }", "https://github.com/acme/demo")
                .replace("{ name }", "demo")
                .replace("{ version }", "0.1.0")
                .replace("{ bin }", "demo")
                .replace("{ binary-ext }", ext)
        };
        let url = resolve(entry["pkg-url"].as_str().unwrap());
        assert_eq!(
            url,
            format!(
                "https://github.com/acme/demo/releases/download/v0.1.0/{}",
                artifact["name"].as_str().unwrap()
            )
        );
        let inside = resolve(entry["bin-dir"].as_str().unwrap());
        let archive = dist.join(artifact["path"].as_str().unwrap());
        let names: Vec<String> = if target.os == "windows" {
            let zip = zip::ZipArchive::new(std::fs::File::open(&archive).unwrap()).unwrap();
            zip.file_names().map(|n| n.unwrap().into_owned()).collect()
        } else {
            let out = Command::new("tar")
                .arg("-tzf")
                .arg(&archive)
                .output()
                .unwrap();
            text(&out).0.lines().map(str::to_owned).collect()
        };
        assert!(names.contains(&inside), "{inside} is not in {names:?}");
        checked += 1;
    }
    assert_eq!(checked, 3);
}

/// The README's install-script snippet applied to the bundled demo as written: the scripts are
/// in SHA256SUMS, which is signed. Without its checksum part (the checksum stage beside the
/// installer), `check` refuses the order at the checksum stage's `needs`, with the fix. With
/// only `GITHUB_API_URL` naming a GitHub Enterprise server, the scripts download from that
/// server, not github.com.
#[test]
fn the_readmes_installer_snippet_puts_the_scripts_in_the_signed_checksums() {
    let readme = std::fs::read_to_string(crate::common::repo_root().join("README.md")).unwrap();
    let section = &readme[readme.find("### Install script").unwrap()..];
    let start = section.find("```toml\n").unwrap() + "```toml\n".len();
    let snippet = &section[start..start + section[start..].find("```").unwrap()];
    let dir = demo_copy();
    let pipeline = dir.path().join("pipelines/demo.toml");
    // The scripts download from the GitHub release by default, as init writes it.
    let demo =
        std::fs::read_to_string(&pipeline).unwrap() + "\n[release.github]\nrepo = \"acme/demo\"\n";
    let checksum = demo.find("[stages.checksum]").unwrap();
    let after = checksum + demo[checksum..].find("\n[").unwrap() + 1;
    let without_checksum = format!("{}{}", &demo[..checksum], &demo[after..]);

    // Only the installer part, beside the demo's own checksum stage: refused, located.
    let installer_only = &snippet[..snippet.find("[stages.checksum]").unwrap()];
    std::fs::write(&pipeline, format!("{demo}\n{installer_only}")).unwrap();
    let check = shipit(dir.path())
        .args(["check", "--pipeline", "pipelines/demo.toml"])
        .output()
        .unwrap();
    let said = text(&check).1;
    assert_eq!(check.status.code(), Some(2), "{said}");
    assert!(
        said.contains("stage `installer` makes `install.sh` and `install.ps1`"),
        "{said}"
    );
    assert!(said.contains("pipelines/demo.toml:37:"), "{said}");
    assert!(
        said.contains("needs = [\"package\", \"installer\"]"),
        "{said}"
    );

    std::fs::write(&pipeline, format!("{without_checksum}\n{snippet}")).unwrap();
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "demo"]);
    crate::common::unencrypted_keys(dir.path());
    let key = dir.path().join("keys/shipit.key");
    let build = shipit(dir.path())
        .args(["build", "--pipeline", "pipelines/demo.toml"])
        .env("CARGO_TARGET_DIR", shared_target_dir("installer-target"))
        .env("SHIPIT_SIGNING_KEY", std::fs::read_to_string(&key).unwrap())
        // A GitHub Enterprise server named by its API alone: the scripts download from it.
        .env("GITHUB_API_URL", "https://ghe.acme.example/api/v3")
        .env_remove("GITHUB_SERVER_URL")
        .output()
        .unwrap();
    assert_eq!(build.status.code(), Some(0), "{}", text(&build).1);
    let script = std::fs::read_to_string(dir.path().join("dist/install.sh")).unwrap();
    assert!(
        script.contains("https://ghe.acme.example/acme/demo/releases/download/v0.1.0")
            && !script.contains("https://github.com/"),
        "{script}"
    );
    let sums = std::fs::read_to_string(dir.path().join("dist/SHA256SUMS")).unwrap();
    for script in ["install.sh", "install.ps1"] {
        assert!(
            sums.lines().any(|l| l.ends_with(&format!(" {script}"))),
            "{sums}"
        );
    }
    let verify = shipit(dir.path())
        .args(["verify", "dist", "--key", "keys/shipit.pub"])
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(0), "{:?}", text(&verify));
}
