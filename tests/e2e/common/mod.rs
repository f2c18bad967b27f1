//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

pub mod engines;
pub mod fake_github;
pub mod haproxy;
pub mod hosts;
pub mod load;
pub mod nuget_feed;
pub mod proxy;
pub mod pushgateway;
pub mod receivers;
pub mod registry;
pub mod sigstore;
pub mod token_service;
pub mod verdaccio;
pub mod wire;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The real `shipit` binary, run in `dir`, with the CI environment of the test run removed.
pub fn shipit(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipit"));
    cmd.current_dir(dir);
    // Whatever the machine running the tests has set must not change an outcome: a test sets
    // what it needs after this.
    for var in [
        "GITHUB_ACTIONS",
        "GITHUB_OUTPUT",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_REF_TYPE",
        "GITHUB_REF_NAME",
        "GITHUB_HEAD_REF",
        "GITHUB_EVENT_NAME",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "GITHUB_API_URL",
        "GITHUB_SERVER_URL",
        "GITHUB_ACTOR",
        "SHIPIT_PIPELINE",
        "SHIPIT_SIGNING_KEY",
        "SHIPIT_SIGNING_PASSWORD",
        "SHIPIT_REGISTRY_USERNAME",
        "SHIPIT_REGISTRY_PASSWORD",
        "SHIPIT_LOG",
        "NPM_TOKEN",
        "CHOCOLATEY_API_KEY",
        "SOURCE_DATE_EPOCH",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `command` to its end; a hang is a failure: killed after `seconds` (generous, finite).
pub fn output_within(mut command: Command, seconds: u64) -> Output {
    shipit::child::output_within(&mut command, std::time::Duration::from_secs(seconds))
        .unwrap_or_else(|e| panic!("{command:?}: {e}"))
}

/// stdout and stderr as text.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The shipit repository.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of the bundled demo project (crate + pipelines) in a fresh folder.
pub fn demo_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = repo_root();
    for folder in [
        "demo/src",
        "demo/packaging",
        "demo/man",
        "demo/completions",
        "pipelines",
    ] {
        std::fs::create_dir_all(dir.path().join(folder)).unwrap();
    }
    for file in [
        "demo/Cargo.toml",
        "demo/Cargo.lock",
        "demo/src/main.rs",
        "demo/README.md",
        "demo/packaging/demo.service",
        "demo/packaging/demo.default",
        "demo/man/demo.1",
        "demo/completions/demo.bash",
        "demo/completions/_demo",
        "pipelines/linux-packages.toml",
        "pipelines/demo.toml",
    ] {
        std::fs::copy(root.join(file), dir.path().join(file)).unwrap();
    }
    dir
}

/// A cargo target folder kept between test runs for builds of test projects, so repeated
/// runs reuse compiled output (shipit's own target folder stays untouched).
pub fn shared_target_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// The cargo target directory for the demo at `version`. One per version: tests run in
/// parallel, and a build of another version in the same directory could overwrite the binary
/// between cargo's end and the archive (a 0.2.0 package once held the 0.1.0 binary).
pub fn demo_target_dir(version: &str) -> PathBuf {
    shared_target_dir(&format!("demo-target-{version}"))
}

/// A port of 127.0.0.1 free right now, for a server the test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `IP:PORT` on a loopback address of its own (one of 127.0.0.0/8, picked at random) with a
/// port free right now: a server a test starts there cannot be mistaken for a neighbour
/// test's, even if the port is reused between the check and its bind.
pub fn private_addr() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let bits = hasher.finish();
    let ip = std::net::Ipv4Addr::new(
        127,
        1 + (bits % 254) as u8,
        ((bits >> 8) % 256) as u8,
        1 + ((bits >> 16) % 254) as u8,
    );
    let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Fails the test, loudly, when an external program it needs is not installed: a test that
/// passes without doing its checks proves nothing. `.ci/run` installs them all.
pub fn require(program: &str) {
    if which::which(program).is_err() {
        panic!(
            "`{program}` is required by this test and is not installed; `.ci/run` shows how to install it"
        );
    }
}

/// `shipit keygen --unencrypted` in `dir`: a minisign pair at `keys/shipit.key` and
/// `keys/shipit.pub`.
pub fn unencrypted_keys(dir: &Path) {
    let keygen = shipit(dir)
        .args([
            "keygen",
            "--unencrypted",
            "--secret-key",
            "keys/shipit.key",
            "--public-key",
            "keys/shipit.pub",
        ])
        .output()
        .unwrap();
    assert_eq!(keygen.status.code(), Some(0), "{:?}", text(&keygen));
}

/// What `git args` prints in `dir`, trimmed.
pub fn git_output(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {:?}", out);
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs git in `dir` with a fixed identity and clock (so commit hashes repeat), quietly.
pub fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=Ada", "-c", "user.email=ada@example.com"])
        .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"])
        .args(args)
        .env("GIT_AUTHOR_DATE", "2026-01-02T03:04:05Z")
        .env("GIT_COMMITTER_DATE", "2026-01-02T03:04:05Z")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

/// A tiny host-only project, committed and built: an archive and SHA256SUMS in dist, with
/// `[release.github] repo = "acme/tiny"` and `extra` appended to its pipeline.
pub fn built_tiny(version: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    tiny_crate(dir.path(), version);
    std::fs::write(dir.path().join(".gitignore"), "target/\ndist/\n").unwrap();
    std::fs::write(
        dir.path().join("shipit.toml"),
        format!(
            "version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\n\n\
             [stages.package]\nneeds = [\"build\"]\nuses = \"archive\"\n\n\
             [stages.checksum]\nneeds = [\"package\"]\nuses = \"checksum\"\n\n\
             [release.github]\nrepo = \"acme/tiny\"\n{extra}"
        ),
    )
    .unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "feat: first"]);
    let out = shipit(dir.path())
        .arg("build")
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    dir
}

/// Writes a minimal binary crate `tiny` at `version` into `dir`.
pub fn tiny_crate(dir: &Path, version: &str) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!("[package]\nname = \"tiny\"\nversion = \"{version}\"\nedition = \"2021\"\n"),
    )
    .unwrap();
    std::fs::write(dir.join("src/main.rs"), "fn main() {}\n").unwrap();
}
