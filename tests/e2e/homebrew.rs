//! Homebrew formulae: rendered (snapshot), checked by Ruby itself, pushed to a real bare git
//! tap by `shipit release` (once, then nothing), concurrently, and as a pull request.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use shipit::publish::homebrew::{Download, Formula, Platform, Pushed, Tap};

use crate::common::fake_github::FakeGithub;
use crate::common::{built_tiny, demo_copy, git, require, shared_target_dir, shipit, text};

pub(crate) const TOKEN: &str = "ghs_FAKEtoken0123456789abcdefghijKLMNOP";

fn sample(desc: &str) -> Formula {
    let download = |n: &str| Download {
        url: format!("https://github.com/acme/demo/releases/download/v0.1.0/demo-0.1.0-{n}.tar.gz"),
        sha256: format!("{n:0>64}").chars().take(64).collect(),
    };
    Formula {
        name: "demo".into(),
        class: "Demo".into(),
        desc: desc.into(),
        homepage: "https://github.com/acme/demo".into(),
        version: "0.1.0".into(),
        license: Some("MIT OR Apache-2.0".into()),
        macos: Some(Platform {
            arm: Some(download("darwin-arm64")),
            intel: Some(download("darwin-x64")),
        }),
        linux: Some(Platform {
            arm: Some(download("linux-arm64-musl")),
            intel: Some(download("linux-x64-musl")),
        }),
        binaries: vec!["demo".into()],
        completions: BTreeMap::from([("bash".into(), "completions/demo.bash".into())]),
        manpages: Vec::new(),
        depends_on: vec!["openssl@3".into()],
        conflicts_with: Vec::new(),
        caveats: Some("Run `demo` to start.".into()),
        service: Some(vec!["demo".into(), "--port".into(), "8080".into()]),
    }
}

/// `ruby -c` on the formula, then loads it with a stand-in `Formula` class (recording `desc` and
/// `license`) and prints what Ruby makes of `expression`.
fn ruby_eval(formula: &str, expression: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("formula.rb");
    std::fs::write(&file, formula).unwrap();
    let syntax = Command::new("ruby").arg("-c").arg(&file).output().unwrap();
    assert!(
        syntax.status.success(),
        "ruby -c: {:?}\n{formula}",
        text(&syntax)
    );
    let stub = format!(
        "class Formula\n  def self.desc(v = nil) = (v ? @desc = v : @desc)\n  \
         def self.license(v = nil) = (v ? @license = v : @license)\n  \
         def self.method_missing(*_args, &block) = (block&.call; nil)\n  \
         def self.test(*_args, &_block) = nil\n  \
         def self.respond_to_missing?(*) = true\nend\n\
         def opt_bin = Pathname.new('/opt/bin')\nrequire 'pathname'\n\
         load ARGV[0]\nprint({expression})\n"
    );
    let run = Command::new("ruby")
        .arg("-e")
        .arg(stub)
        .arg(&file)
        .output()
        .unwrap();
    assert!(run.status.success(), "ruby: {:?}\n{formula}", text(&run));
    String::from_utf8(run.stdout).unwrap()
}

/// The description as Ruby itself reads it.
fn ruby_reads(formula: &str, class: &str) -> String {
    ruby_eval(formula, &format!("{class}.desc"))
}

#[test]
fn the_formula_covers_four_platforms_and_ruby_accepts_it() {
    require("ruby");
    let formula = sample("A tiny HTTP service")
        .render(shipit::publish::homebrew::DEFAULT_TEMPLATE)
        .unwrap();
    insta::assert_snapshot!(formula);
    assert_eq!(ruby_reads(&formula, "Demo"), "A tiny HTTP service");
}

#[test]
fn a_hostile_description_stays_literal_text() {
    require("ruby");
    let evil = "say \"hi\" \\ #{system(\"touch /tmp/pwned\")} #@x\nend\nclass Evil; end\t\u{7}";
    let formula = sample(evil)
        .render(shipit::publish::homebrew::DEFAULT_TEMPLATE)
        .unwrap();
    assert_eq!(ruby_reads(&formula, "Demo"), evil);
    assert!(!Path::new("/tmp/pwned").exists());
}

/// A bare tap with one commit on `main`.
pub(crate) fn bare_tap() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("tap.git");
    git(
        dir.path(),
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    let seed = dir.path().join("seed");
    git(
        dir.path(),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            seed.to_str().unwrap(),
        ],
    );
    std::fs::write(seed.join("README.md"), "# tap\n").unwrap();
    git(&seed, &["add", "."]);
    git(&seed, &["commit", "-qm", "tap"]);
    git(&seed, &["push", "-q", "origin", "HEAD:main"]);
    (dir, bare)
}

pub(crate) fn tap_log(bare: &Path) -> Vec<String> {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(bare)
        .args(["log", "--format=%s", "main"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

pub(crate) fn tap_file(bare: &Path, path: &str) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(bare)
        .args(["show", &format!("main:{path}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{path}: {:?}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// The demo with `sections` added to its pipeline, committed and built (the build shared with
/// the other channels' tests).
pub(crate) fn built_demo(sections: &str) -> tempfile::TempDir {
    let dir = demo_copy();
    let pipeline = dir.path().join("pipelines/demo.toml");
    let mut text_now = std::fs::read_to_string(&pipeline).unwrap();
    text_now.push_str(sections);
    std::fs::write(&pipeline, text_now).unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "demo"]);
    let build = shipit(dir.path())
        .args(["build", "--pipeline", "pipelines/demo.toml"])
        .env("CARGO_TARGET_DIR", shared_target_dir("homebrew-target"))
        .env_remove("SHIPIT_SIGNING_KEY")
        .output()
        .unwrap();
    assert_eq!(build.status.code(), Some(0), "{:?}", text(&build));
    dir
}

/// `shipit release` of the built demo against the fake GitHub.
pub(crate) fn release_demo(dir: &Path, fake: &FakeGithub) -> std::process::Output {
    shipit(dir)
        .args(["release", "--pipeline", "pipelines/demo.toml"])
        .env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_TOKEN", TOKEN)
        .output()
        .unwrap()
}

#[test]
fn releasing_the_demo_twice_adds_one_formula_commit() {
    require("ruby");
    let (_tap_dir, bare) = bare_tap();
    let dir = built_demo(&format!(
        "\n[release.github]\nrepo = \"acme/demo\"\n\n[release.homebrew]\ntap = {{ url = \"{}\" }}\n\
         description = \"A tiny HTTP service\"\ncommit_author = {{ name = \"Release Bot\", email = \"bot@example.com\" }}\n",
        bare.display()
    ));
    let fake = FakeGithub::start(TOKEN);
    let release = || release_demo(dir.path(), &fake);
    let out = release();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    // The channel records itself in the manifest under its own name (no field of its own).
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("dist/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["published"]["homebrew"]["formula"], "Formula/demo.rb",
        "{manifest:#}"
    );
    let out = release();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert!(
        text(&out).1.contains("already up to date"),
        "{:?}",
        text(&out)
    );

    assert_eq!(tap_log(&bare), ["demo 0.1.0", "tap"]);
    let author = Command::new("git")
        .arg("--git-dir")
        .arg(&bare)
        .args(["log", "-1", "--format=%an <%ae>", "main"])
        .output()
        .unwrap();
    assert_eq!(text(&author).0.trim(), "Release Bot <bot@example.com>");
    let formula = tap_file(&bare, "Formula/demo.rb");
    assert_eq!(ruby_reads(&formula, "Demo"), "A tiny HTTP service");
    assert!(formula.contains("bin.install \"demo\""), "{formula}");

    // Each of the four blocks holds its own archive's URL and SHA-256 from the manifest.
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("dist/manifest.json")).unwrap(),
    )
    .unwrap();
    let sha_of = |target: &str| -> String {
        manifest["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == "archive" && a["target"] == target)
            .unwrap()["sha256"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for (os, arch, target) in [
        ("macos", "arm", "darwin-arm64"),
        ("macos", "intel", "darwin-x64"),
        ("linux", "arm", "linux-arm64-musl"),
        ("linux", "intel", "linux-x64-musl"),
    ] {
        let os_block = formula.split(&format!("on_{os} do")).nth(1).unwrap();
        let arch_block = os_block.split(&format!("on_{arch} do")).nth(1).unwrap();
        let arch_block = arch_block.split("end").next().unwrap();
        assert!(
            arch_block.contains(&format!("demo-0.1.0-{target}.tar.gz\"")),
            "{os}/{arch}: {arch_block}"
        );
        assert!(
            arch_block.contains(&sha_of(target)),
            "{os}/{arch}: {arch_block}"
        );
    }

    // `release --check` reads the formula back from the tap: a digest changed there is named.
    let check = || {
        shipit(dir.path())
            .args(["release", "--check", "--pipeline", "pipelines/demo.toml"])
            .env("GITHUB_API_URL", &fake.url)
            .env("GITHUB_TOKEN", TOKEN)
            .output()
            .unwrap()
    };
    let out = check();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let work = tempfile::tempdir().unwrap();
    let clone = work.path().join("tap");
    git(
        work.path(),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    let edited = formula.replace(&sha_of("linux-x64-musl"), &"e".repeat(64));
    std::fs::write(clone.join("Formula/demo.rb"), edited).unwrap();
    git(&clone, &["commit", "-qam", "mallory"]);
    git(&clone, &["push", "-q", "origin", "main"]);
    let out = check();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "homebrew: demo-0.1.0-linux-x64-musl.tar.gz as Formula/demo.rb names it differs: published as sha256:{}, the channel now has sha256:{}",
            sha_of("linux-x64-musl"),
            "e".repeat(64)
        )),
        "{stderr}"
    );
}

fn tap(bare: &Path) -> Tap {
    Tap {
        url: bare.display().to_string(),
        token: None,
        branch: None,
        folder: "Formula".into(),
        author: ("shipit".into(), "shipit@example.com".into()),
    }
}

#[test]
fn concurrent_releases_to_one_tap_all_land_and_the_losers_rebase() {
    let (_dir, bare) = bare_tap();
    // Each push holds the tap for a moment, so the pushes overlap and all but one lose the race.
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\ncat >/dev/null\nsleep 1\nexit 0\n").unwrap();
    Command::new("chmod").arg("+x").arg(&hook).status().unwrap();
    let names = ["alpha", "beta", "gamma"];
    let handles: Vec<_> = names
        .into_iter()
        .map(|name| {
            let tap = tap(&bare);
            std::thread::spawn(move || {
                let class = format!("class {} < Formula\nend\n", name.to_uppercase());
                tap.publish(name, &class, name, None)
            })
        })
        .collect();
    let mut rebased = 0;
    for handle in handles {
        match handle.join().unwrap() {
            Ok(Pushed::Committed { attempts, .. }) => rebased += usize::from(attempts > 1),
            other => panic!("{other:?}"),
        }
    }
    assert!(rebased >= 1, "no push had to rebase");
    let log = tap_log(&bare);
    assert_eq!(log.len(), 4, "{log:?}");
    for name in names {
        tap_file(&bare, &format!("Formula/{name}.rb"));
    }
}

#[test]
fn a_pull_request_pushes_a_branch_and_the_token_stays_out_of_the_tap() {
    let (_dir, bare) = bare_tap();
    let pushed = Tap {
        token: Some(TOKEN.into()),
        ..tap(&bare)
    }
    .publish(
        "demo",
        "class Demo < Formula\nend\n",
        "demo 0.1.0",
        Some("shipit/demo-0.1.0"),
    )
    .unwrap();
    assert_eq!(
        pushed,
        Pushed::Proposed {
            branch: "shipit/demo-0.1.0".into(),
            base: "main".into()
        }
    );
    assert_eq!(tap_log(&bare), ["tap"], "main must be untouched");
    let branch = Command::new("git")
        .arg("--git-dir")
        .arg(&bare)
        .args(["log", "--format=%s", "shipit/demo-0.1.0"])
        .output()
        .unwrap();
    assert_eq!(text(&branch).0.lines().next(), Some("demo 0.1.0"));
    let config = std::fs::read_to_string(bare.join("config")).unwrap();
    assert!(!config.contains(TOKEN));
}

fn release_tiny(dir: &Path, fake: &FakeGithub) -> std::process::Output {
    shipit(dir)
        .arg("release")
        .env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_TOKEN", TOKEN)
        .output()
        .unwrap()
}

#[test]
fn pull_request_mode_opens_a_pull_request_and_leaves_main_alone() {
    let (_tap_dir, bare) = bare_tap();
    let dir = built_tiny(
        "1.0.0",
        &format!(
            "\n[release.homebrew]\ntap = {{ repo = \"acme/homebrew-tap\", url = \"{}\" }}\npull_request = true\n",
            bare.display()
        ),
    );
    let fake = FakeGithub::start(TOKEN);
    let out = release_tiny(dir.path(), &fake);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("opened https://github.com/acme/homebrew-tap/pull/"),
        "{stderr}"
    );
    assert_eq!(tap_log(&bare), ["tap"], "main must be untouched");
    let pulls = fake.pulls();
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    assert_eq!(pulls[0]["head"], "shipit/tiny-1.0.0");
    assert_eq!(pulls[0]["base"], "main");
    assert!(!stderr.contains(TOKEN));
}

#[test]
fn pre_releases_skip_the_tap_unless_asked() {
    let (_tap_dir, bare) = bare_tap();
    let tap_toml = format!(
        "\n[release.homebrew]\ntap = {{ url = \"{}\" }}\n",
        bare.display()
    );
    let dir = built_tiny("2.0.0-rc.1", &tap_toml);
    let fake = FakeGithub::start(TOKEN);
    let out = release_tiny(dir.path(), &fake);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("skipping the Homebrew formula: 2.0.0-rc.1 is a pre-release"),
        "{stderr}"
    );
    assert_eq!(tap_log(&bare), ["tap"]);

    let pipeline = dir.path().join("shipit.toml");
    let with_flag = format!(
        "{}prerelease = true\n",
        std::fs::read_to_string(&pipeline).unwrap()
    );
    std::fs::write(&pipeline, with_flag).unwrap();
    let out = release_tiny(dir.path(), &fake);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(tap_log(&bare), ["tiny 2.0.0-rc.1", "tap"]);
    assert!(tap_file(&bare, "Formula/tiny.rb").contains("version \"2.0.0-rc.1\""));
}

/// Trust class 8: the tap token travels in git's environment, never on its command line
/// (which every local user can read in `/proc/*/cmdline`).
#[test]
fn homebrew_tap_token_never_on_a_git_command_line() {
    use base64::Engine;
    let real_git = which::which("git").unwrap();
    let wrappers = tempfile::tempdir().unwrap();
    let log = wrappers.path().join("git.log");
    let wrapper = wrappers.path().join("git");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf 'ARGV: %s\\n' \"$*\" >> '{log}'\nenv | grep '^GIT_CONFIG_' >> '{log}'\nexec '{git}' \"$@\"\n",
            log = log.display(),
            git = real_git.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&wrapper)
        .status()
        .unwrap();
    // An https tap on a port nothing listens on: the clone fails, after git got its header.
    let dir = built_tiny(
        "1.0.0",
        "\n[release.homebrew]\ntap = { repo = \"acme/homebrew-tap\", url = \"https://127.0.0.1:9/acme/homebrew-tap.git\" }\n",
    );
    let fake = FakeGithub::start(TOKEN);
    let path = format!(
        "{}:{}",
        wrappers.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = shipit(dir.path())
        .arg("release")
        .env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_TOKEN", TOKEN)
        // The tap is on "GitHub" here, so the token goes to it.
        .env("GITHUB_SERVER_URL", "https://127.0.0.1:9")
        .env("PATH", path)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{TOKEN}"));
    let recorded = std::fs::read_to_string(&log).unwrap();
    let argv: Vec<&str> = recorded
        .lines()
        .filter(|l| l.starts_with("ARGV:"))
        .collect();
    assert!(!argv.is_empty(), "git never ran: {recorded}");
    for line in &argv {
        assert!(!line.contains(&basic) && !line.contains(TOKEN), "{line}");
        assert!(!line.to_ascii_lowercase().contains("extraheader"), "{line}");
    }
    assert!(
        recorded.contains(&format!("Authorization: Basic {basic}")),
        "the token path never ran: {recorded}"
    );
    assert!(!stdout.contains(&basic) && !stderr.contains(&basic));
}

/// Real projects: Cargo's licence expressions (legacy `/`, `OR`, `AND`, `WITH`) become the
/// structure Homebrew's `license` takes, as Ruby itself reads it.
#[test]
fn cargo_licence_expressions_become_homebrew_spdx_structures() {
    require("ruby");
    for (cargo, ruby) in [
        ("MIT/Apache-2.0", r#"{ any_of: ["MIT", "Apache-2.0"] }"#),
        ("MIT OR Apache-2.0", r#"{ any_of: ["MIT", "Apache-2.0"] }"#),
        (
            "(MIT OR Apache-2.0) AND Unicode-3.0",
            r#"{ all_of: [{ any_of: ["MIT", "Apache-2.0"] }, "Unicode-3.0"] }"#,
        ),
        (
            "Apache-2.0 WITH LLVM-exception",
            r#"{ "Apache-2.0" => { with: "LLVM-exception" } }"#,
        ),
        ("Unlicense", r#""Unlicense""#),
    ] {
        let mut formula = sample("d");
        formula.license = Some(cargo.into());
        let rendered = formula
            .render(shipit::publish::homebrew::DEFAULT_TEMPLATE)
            .unwrap();
        assert_eq!(
            ruby_eval(&rendered, &format!("Demo.license == ({ruby})")),
            "true",
            "{cargo}:\n{rendered}"
        );
    }
}

/// An https git server on 127.0.0.1 with a throwaway certificate: it records the
/// `Authorization` header of every request (`none` without one) and answers 401, or, `silent`,
/// accepts connections and never says a word.
struct GitServer {
    child: std::process::Child,
    url: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

const GIT_SERVER: &str = r#"
import socket, ssl, sys, threading
mode, cert, key, log, port_file = sys.argv[1:6]
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(16)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
with open(port_file, "w") as f:
    f.write(str(server.getsockname()[1]))
held = []
def serve(conn):
    try:
        tls = context.wrap_socket(conn, server_side=True)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = tls.recv(4096)
            if not chunk:
                return
            head += chunk
        auth = [l for l in head.split(b"\r\n") if l.lower().startswith(b"authorization:")]
        with open(log, "ab") as f:
            f.write((auth[0] if auth else b"none") + b"\n")
        tls.sendall(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        tls.close()
    except Exception:
        pass
while True:
    conn, _ = server.accept()
    if mode == "silent":
        held.append(conn)
    else:
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
"#;

impl GitServer {
    fn start(mode: &str) -> GitServer {
        crate::common::require("openssl");
        crate::common::require("python3");
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let made = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(made.status.success(), "{:?}", text(&made));
        let (log, port_file) = (dir.path().join("auth.log"), dir.path().join("port"));
        let child = Command::new("python3")
            .args(["-c", GIT_SERVER, mode])
            .args([&cert, &key, &log, &port_file])
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .filter(|p| !p.is_empty())
            {
                break port;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the git server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        GitServer {
            child,
            url: format!("https://127.0.0.1:{port}"),
            log,
            _dir: dir,
        }
    }

    fn seen(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `shipit release` of a tiny project whose tap is `tap` (a TOML table), with `env`.
fn release_to_tap(tap: &str, env: &[(&str, &str)]) -> std::process::Output {
    let dir = built_tiny("1.0.0", &format!("\n[release.homebrew]\ntap = {tap}\n"));
    let fake = FakeGithub::start(TOKEN);
    let mut command = shipit(dir.path());
    command
        .arg("release")
        .env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_TOKEN", TOKEN)
        // The test server's certificate is its own.
        .env("GIT_SSL_NO_VERIFY", "1")
        .envs(env.iter().copied());
    crate::common::output_within(command, 120)
}

/// Regression (issue 28, 6): a tap on a host that is not GitHub got `GITHUB_TOKEN` as Basic
/// auth, and a tap server that accepts and never answers hung `release` in `git clone` (both
/// seen before the fix: the header in the server's log; the release still running after two
/// minutes). The GitHub token now goes only to GitHub's origin, a channel's `token_env` to its
/// own repository, and every git call has low-speed limits and a deadline.
#[test]
fn a_tap_elsewhere_gets_no_github_token_and_a_silent_server_cannot_hang_release() {
    use base64::Engine;
    let basic = |token: &str| {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
        format!("Authorization: Basic {encoded}")
    };
    let server = GitServer::start("answer");
    let tap = format!("{{ url = \"{}/acme/homebrew-tap.git\" }}", server.url);
    let out = release_to_tap(&tap, &[]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let seen = server.seen();
    assert!(
        !seen.is_empty(),
        "git never reached the server: {:?}",
        text(&out)
    );
    assert!(
        seen.iter().all(|l| l == "none"),
        "a token went to another host: {seen:?}"
    );

    let tap_token = "tap-only-token-1234567890";
    let own = format!(
        "{{ url = \"{}/acme/homebrew-tap.git\", token_env = \"TAP_TOKEN\" }}",
        server.url
    );
    let out = release_to_tap(&own, &[("TAP_TOKEN", tap_token)]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert!(
        server.seen().contains(&basic(tap_token)),
        "{:?}",
        server.seen()
    );
    assert!(
        !server.seen().contains(&basic(TOKEN)),
        "{:?}",
        server.seen()
    );
    let out = release_to_tap(&own, &[]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(
        text(&out)
            .1
            .contains("`token_env = \"TAP_TOKEN\"` names a variable that is not set")
    );

    // On GitHub's own origin (GitHub Enterprise Server here), the GitHub token goes.
    let out = release_to_tap(&tap, &[("GITHUB_SERVER_URL", &server.url)]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert!(server.seen().contains(&basic(TOKEN)), "{:?}", server.seen());

    let silent = GitServer::start("silent");
    let tap = format!("{{ url = \"{}/acme/homebrew-tap.git\" }}", silent.url);
    let out = release_to_tap(&tap, &[("SHIPIT_GIT_TIMEOUT", "3s")]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("git did not finish within 3s"), "{stderr}");
}
