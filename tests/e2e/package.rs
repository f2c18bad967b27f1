//! Packaging, checksums and signatures, judged by the standard tools: `sha256sum -c`,
//! `minisign -V`, `tar`. Keys come from `minisign -G` and from `shipit keygen`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{demo_copy, git, require, shared_target_dir, shipit, text, tiny_crate};

/// A key pair made by minisign itself, encrypted with `password`.
fn minisign_key(dir: &Path, password: &str) -> (PathBuf, PathBuf) {
    let (public, secret) = (dir.join("m.pub"), dir.join("m.key"));
    let mut child = Command::new("minisign")
        .arg("-G")
        .arg("-p")
        .arg(&public)
        .arg("-s")
        .arg(&secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    write!(child.stdin.take().unwrap(), "{password}\n{password}\n").unwrap();
    assert!(child.wait().unwrap().success(), "minisign -G failed");
    (public, secret)
}

fn sha256sums(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("dist/SHA256SUMS")).unwrap()
}

#[test]
fn the_demo_release_is_reproducible_and_standard_tools_verify_it() {
    for program in ["minisign", "sha256sum", "tar"] {
        require(program);
    }
    let dir = demo_copy();
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "demo"]);
    let keys = tempfile::tempdir().unwrap();
    let (public, secret) = minisign_key(keys.path(), "correct horse");
    let target_dir = shared_target_dir("package-target");
    let build = || {
        let out = shipit(dir.path())
            .args(["build", "--no-cache", "--pipeline", "pipelines/demo.toml"])
            .env("CARGO_TARGET_DIR", &target_dir)
            .env(
                "SHIPIT_SIGNING_KEY",
                std::fs::read_to_string(&secret).unwrap(),
            )
            .env("SHIPIT_SIGNING_PASSWORD", "correct horse")
            .output()
            .unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(!stderr.contains("correct horse"), "{stderr}");
    };

    build();
    let first = sha256sums(dir.path());
    assert_eq!(first.lines().count(), 6, "{first}");
    // From clean: no dist, no cargo output.
    std::fs::remove_dir_all(dir.path().join("dist")).unwrap();
    std::fs::remove_dir_all(&target_dir).unwrap();
    build();
    assert_eq!(
        sha256sums(dir.path()),
        first,
        "archives differ between builds"
    );

    let dist = dir.path().join("dist");
    let sums = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&dist)
        .output()
        .unwrap();
    assert!(sums.status.success(), "{:?}", text(&sums));
    for key in [public.clone(), dist.join("demo.pub")] {
        let check = Command::new("minisign")
            .arg("-V")
            .arg("-p")
            .arg(&key)
            .arg("-m")
            .arg(dist.join("SHA256SUMS"))
            .output()
            .unwrap();
        assert!(check.status.success(), "{:?}", text(&check));
        assert!(
            text(&check).0.contains("file:SHA256SUMS"),
            "{:?}",
            text(&check)
        );
    }
    let verify = shipit(dir.path())
        .args(["verify", "dist"])
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(0), "{:?}", text(&verify));

    // The manifest records archives, the checksum file and the signature.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dist.join("manifest.json")).unwrap())
            .unwrap();
    let kinds: Vec<(String, String)> = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["path"].as_str().unwrap().to_string(),
                a["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (path, kind) in [
        ("SHA256SUMS", "checksum"),
        ("SHA256SUMS.minisig", "signature"),
        ("demo-0.1.0-linux-x64-musl.tar.gz", "archive"),
        ("demo-0.1.0-windows-x64.zip", "archive"),
    ] {
        assert!(
            kinds.contains(&(path.to_string(), kind.to_string())),
            "{path} ({kind}) missing from {kinds:?}"
        );
    }

    // tar extracts into one top folder; the binary is executable, the README is not.
    let out = tempfile::tempdir().unwrap();
    let untar = Command::new("tar")
        .arg("-xzf")
        .arg(dist.join("demo-0.1.0-linux-x64-musl.tar.gz"))
        .arg("-C")
        .arg(out.path())
        .status()
        .unwrap();
    assert!(untar.success());
    let top = out.path().join("demo-0.1.0-linux-x64-musl");
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(top.join("demo")), 0o755);
    assert_eq!(mode(top.join("README.md")), 0o644);
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 1);
    let listing = Command::new("tar")
        .args(["--numeric-owner", "-tvzf"])
        .arg(dist.join("demo-0.1.0-linux-x64-musl.tar.gz"))
        .output()
        .unwrap();
    let (listing, _) = text(&listing);
    for line in listing.lines() {
        assert!(line.contains(" 0/0 "), "not owned by 0/0: {line}");
    }

    // The zip holds the exe under the same top folder, with fixed times and unix modes.
    let zip =
        zip::ZipArchive::new(std::fs::File::open(dist.join("demo-0.1.0-windows-x64.zip")).unwrap())
            .unwrap();
    let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    assert!(
        names.contains(&"demo-0.1.0-windows-x64/demo.exe".to_string()),
        "{names:?}"
    );
}

/// A tiny host-only project with archive, checksum and sign stages, and an unencrypted key
/// made by `shipit keygen`.
fn signed_project(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    tiny_crate(dir.path(), "1.0.0");
    std::fs::write(dir.path().join("NOTES.txt"), "notes\n").unwrap();
    std::fs::write(
        dir.path().join("shipit.toml"),
        format!(
            "version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\n\n\
             [stages.package]\nneeds = [\"build\"]\nuses = \"archive\"\nfiles = [\"NOTES.txt\"]\n\n\
             [stages.checksum]\nneeds = [\"package\"]\nuses = \"checksum\"\nper_artifact = true\n\n\
             [stages.sign]\nneeds = [\"checksum\"]\nuses = \"sign\"\nartifacts = \"all\"\n\
             key = {{ file = \"keys/shipit.key\", password_env = \"TINY_PASSWORD\" }}\n{extra}"
        ),
    )
    .unwrap();
    dir
}

fn build_tiny(dir: &Path, envs: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = shipit(dir);
    cmd.arg("build")
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("TINY_PASSWORD");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn verify_names_a_tampered_file_and_a_tampered_signature() {
    let dir = signed_project("");
    crate::common::unencrypted_keys(dir.path());
    let secret_mode = std::fs::metadata(dir.path().join("keys/shipit.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(secret_mode & 0o777, 0o600);
    let out = build_tiny(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let dist = dir.path().join("dist");
    let host = std::fs::read_dir(&dist)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("tiny-1.0.0-") && n.ends_with(".tar.gz"))
        .unwrap();
    // Every artifact is signed (`artifacts = "all"`), and has its own .sha256.
    for file in [host.clone(), "SHA256SUMS".into()] {
        assert!(dist.join(format!("{file}.minisig")).is_file(), "{file}");
    }
    assert!(dist.join(format!("{host}.sha256")).is_file());
    let verify = |args: &[&str]| {
        let out = shipit(dir.path())
            .arg("verify")
            .args(args)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        (out.status.code(), format!("{stdout}{stderr}"))
    };
    assert_eq!(verify(&["dist"]).0, Some(0));

    // A tampered archive: its checksums and its signature fail, by name.
    let archive = dist.join(&host);
    let original = std::fs::read(&archive).unwrap();
    let mut tampered = original.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    std::fs::write(&archive, &tampered).unwrap();
    let (code, out) = verify(&["dist"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("FAILED checksum {host} (SHA256SUMS)")),
        "{out}"
    );
    assert!(out.contains(&format!("FAILED signature {host}")), "{out}");
    assert!(!out.contains("FAILED signature SHA256SUMS"), "{out}");
    std::fs::write(&archive, &original).unwrap();

    // A tampered trusted comment: the signature fails, naming the file it signs.
    let sig = dist.join("SHA256SUMS.minisig");
    let text_sig = std::fs::read_to_string(&sig).unwrap();
    std::fs::write(&sig, text_sig.replace("file:SHA256SUMS", "file:OTHERSUMS")).unwrap();
    let (code, out) = verify(&["dist"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAILED signature SHA256SUMS"), "{out}");
    assert!(out.contains("trusted comment was altered"), "{out}");
    std::fs::write(&sig, text_sig).unwrap();

    // One file against a given key.
    let (code, out) = verify(&[&format!("dist/{host}"), "--key", "keys/shipit.pub"]);
    assert_eq!(code, Some(0), "{out}");
    let other = tempfile::tempdir().unwrap();
    require("minisign");
    let (other_pub, _) = minisign_key(other.path(), "x");
    let (code, out) = verify(&[
        &format!("dist/{host}"),
        "--key",
        other_pub.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("not by key"), "{out}");
}

#[test]
fn a_wrong_password_stops_the_build_with_exit_2_before_any_work() {
    require("minisign");
    let dir = signed_project("");
    let (_, secret) = minisign_key(dir.path(), "right password");
    std::fs::create_dir_all(dir.path().join("keys")).unwrap();
    std::fs::copy(&secret, dir.path().join("keys/shipit.key")).unwrap();

    let out = build_tiny(dir.path(), &[("TINY_PASSWORD", "not-the-right-one")]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("stage `sign`"), "{stderr}");
    assert!(
        stderr.contains("wrong password for the secret key"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-right-one") && !stderr.contains("right password"));
    assert!(
        !dir.path().join("dist").exists(),
        "work ran before the key was checked"
    );

    let out = build_tiny(dir.path(), &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is encrypted; set its password in `TINY_PASSWORD`"),
        "{stderr}"
    );

    // The right password, and the minisign-made key signs.
    let out = build_tiny(dir.path(), &[("TINY_PASSWORD", "right password")]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let check = Command::new("minisign")
        .arg("-V")
        .arg("-p")
        .arg(dir.path().join("m.pub"))
        .arg("-m")
        .arg(dir.path().join("dist/SHA256SUMS"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{:?}", text(&check));
}

#[test]
fn archives_refuse_escaping_links_and_empty_globs_and_stay_inside_their_root() {
    let dir = signed_project("");
    std::fs::create_dir_all(dir.path().join("extra/sub")).unwrap();
    std::fs::write(dir.path().join("extra/sub/a.txt"), "a").unwrap();
    std::os::unix::fs::symlink("sub/a.txt", dir.path().join("extra/link")).unwrap();
    let pipeline = |files: &str| {
        std::fs::write(
            dir.path().join("shipit.toml"),
            format!(
                "version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\n\n\
                 [stages.package]\nneeds = [\"build\"]\nuses = \"archive\"\nfiles = {files}\n"
            ),
        )
        .unwrap();
    };

    // A glob that matches nothing is named when the plan is made (exit 2, nothing built);
    // `optional = true` accepts it.
    pipeline(r#"["NOTES.txt", "LICENSE*"]"#);
    let out = build_tiny(dir.path(), &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`files` glob `LICENSE*` matches nothing"),
        "{stderr}"
    );
    pipeline(r#"["NOTES.txt", { src = "LICENSE*", optional = true }, "extra/**"]"#);
    let out = build_tiny(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));

    // Extraction stays inside one top folder, and the link inside it is a link.
    let archive = std::fs::read_dir(dir.path().join("dist"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    assert!(
        Command::new("tar")
            .arg("-xzf")
            .arg(&archive)
            .arg("-C")
            .arg(out.path())
            .status()
            .unwrap()
            .success()
    );
    let top: Vec<PathBuf> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(top.len(), 1, "{top:?}");
    let link = top[0].join("extra/link");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(&link).unwrap(), "a");
    for entry in walkdir::WalkDir::new(out.path()) {
        let path = entry.unwrap().path().canonicalize().unwrap();
        assert!(
            path.starts_with(out.path().canonicalize().unwrap()),
            "{path:?}"
        );
    }

    // A link pointing out of the archive is refused.
    std::os::unix::fs::symlink("../../../etc/passwd", dir.path().join("extra/escape")).unwrap();
    let out = build_tiny(dir.path(), &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("symlink") && stderr.contains("outside the archive"),
        "{stderr}"
    );
}

#[test]
fn colliding_artifact_names_are_refused_before_anything_is_written() {
    let dir = signed_project("");
    std::fs::write(
        dir.path().join("shipit.toml"),
        "version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\n\n\
         [stages.package]\nneeds = [\"build\"]\nuses = \"archive\"\nname = \"tiny\"\n\n\
         [stages.package-again]\nneeds = [\"build\"]\nuses = \"archive\"\nname = \"tiny\"\n",
    )
    .unwrap();
    let out = build_tiny(dir.path(), &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "stage `package-again` would write `tiny.tar.gz`, which stage `package` also writes"
        ),
        "{stderr}"
    );
    assert!(!dir.path().join("dist").exists());
}
