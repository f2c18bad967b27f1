//! `.deb` and `.rpm` packages, judged by the distributions' own tools: `dpkg-deb`, `lintian`,
//! `dpkg` installing into a throwaway root, `rpm` (with a signature check against a key in a
//! test database) and `rpmlint`. Keys come from `shipit keygen --pgp`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{demo_copy, git, require, shared_target_dir, shipit, text};

/// The bundled packaging pipeline (tests add release sections to it).
const PIPELINE: &str = include_str!("../../pipelines/linux-packages.toml");

const PASSWORD: &str = "pgp horse battery";

/// A key made by `shipit keygen --pgp`: (secret key text, public key file).
fn pgp_key(dir: &Path) -> (String, PathBuf) {
    let out = shipit(dir)
        .args([
            "keygen",
            "--pgp",
            "--user-id",
            "Demo Release <release@example.com>",
        ])
        .env("SHIPIT_SIGNING_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let secret = std::fs::read_to_string(dir.join("shipit-pgp.key")).unwrap();
    assert!(secret.starts_with("-----BEGIN PGP PRIVATE KEY BLOCK-----"));
    (secret, dir.join("shipit-pgp.asc"))
}

/// The demo with the packaging pipeline (plus `extra`), committed (the commit's time is every
/// package time).
fn packaging_project_with(version: &str, extra: &str) -> tempfile::TempDir {
    let dir = demo_copy();
    std::fs::write(
        dir.path().join("pipelines/packages.toml"),
        format!("{PIPELINE}{extra}"),
    )
    .unwrap();
    let manifest = dir.path().join("demo/Cargo.toml");
    let cargo = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        cargo.replace("version = \"0.1.0\"", &format!("version = \"{version}\"")),
    )
    .unwrap();
    let lock = dir.path().join("demo/Cargo.lock");
    let text = std::fs::read_to_string(&lock).unwrap();
    std::fs::write(
        &lock,
        text.replace(
            "name = \"demo\"\nversion = \"0.1.0\"",
            &format!("name = \"demo\"\nversion = \"{version}\""),
        ),
    )
    .unwrap();
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "demo"]);
    dir
}

fn packaging_project(version: &str) -> tempfile::TempDir {
    packaging_project_with(version, "")
}

/// The version in the project's `demo/Cargo.toml`.
fn demo_version(dir: &Path) -> String {
    let cargo = std::fs::read_to_string(dir.join("demo/Cargo.toml")).unwrap();
    let manifest: toml::Value = toml::from_str(&cargo).unwrap();
    manifest["package"]["version"].as_str().unwrap().to_string()
}

/// Builds the packages (in a target directory per version: see `demo_target_dir`); returns the files in dist by name.
fn build(dir: &Path, secret: &str) -> Vec<(String, Vec<u8>)> {
    let _ = std::fs::remove_dir_all(dir.join("dist"));
    let out = shipit(dir)
        .args([
            "build",
            "--no-cache",
            "--pipeline",
            "pipelines/packages.toml",
        ])
        .env(
            "CARGO_TARGET_DIR",
            shared_target_dir(&format!("linux-packages-target-{}", demo_version(dir))),
        )
        .env("SHIPIT_PGP_KEY", secret)
        .env("SHIPIT_PGP_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(!stderr.contains(PASSWORD) && !stdout.contains(PASSWORD));
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join("dist"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb" || e == "rpm"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// `shipit verify DIR [--pgp-key KEY]`: exit code and output.
fn verify(dir: &Path, folder: &Path, key: Option<&Path>) -> (Option<i32>, String) {
    let mut cmd = shipit(dir);
    cmd.arg("verify").arg(folder);
    if let Some(key) = key {
        cmd.arg("--pgp-key").arg(key);
    }
    let out = cmd.output().unwrap();
    let (stdout, stderr) = text(&out);
    (out.status.code(), format!("{stdout}{stderr}"))
}

/// Fails naming the first of `needles` that `text` does not hold.
fn assert_has(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "no `{needle}` in\n{text}");
    }
}

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program).args(args).output().unwrap();
    let (stdout, stderr) = text(&out);
    (out.status.success(), format!("{stdout}{stderr}"))
}

#[test]
fn deb_and_rpm_pass_the_distributions_checks_and_rebuild_byte_identical() {
    for program in ["dpkg-deb", "lintian", "rpm", "rpmlint"] {
        require(program);
    }
    let dir = packaging_project("0.1.0");
    let (secret, public) = pgp_key(dir.path());
    let first = build(dir.path(), &secret);
    let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "demo-0.1.0-1.aarch64.rpm",
            "demo-0.1.0-1.x86_64.rpm",
            "demo_0.1.0-1_amd64.deb",
            "demo_0.1.0-1_arm64.deb"
        ]
    );
    let second = build(dir.path(), &secret);
    for ((name, a), (_, b)) in first.iter().zip(&second) {
        assert!(a == b, "{name} differs between two clean builds");
    }

    let dist = dir.path().join("dist");
    let deb = dist.join("demo_0.1.0-1_amd64.deb");
    let deb = deb.to_str().unwrap();
    let (ok, info) = run("dpkg-deb", &["-I", deb]);
    assert!(ok, "{info}");
    assert_has(
        &info,
        &[
            "Package: demo",
            "Version: 0.1.0-1",
            "Architecture: amd64",
            "Maintainer: Demo Maintainers <demo@example.com>",
            "Recommends: curl",
            "Section: net",
            "Homepage: https://example.com/demo",
            "Description: A tiny HTTP service that shipit builds",
            "Installed-Size: ",
        ],
    );
    let (ok, listing) = run("dpkg-deb", &["-c", deb]);
    assert!(ok, "{listing}");
    assert_has(
        &listing,
        &[
            "-rwxr-xr-x root/root",
            "./usr/bin/demo",
            "./etc/default/demo",
            "./lib/systemd/system/demo.service",
            "./usr/share/man/man1/demo.1.gz",
            "./usr/share/bash-completion/completions/demo",
            "./usr/share/zsh/vendor-completions/_demo",
            "./usr/share/doc/demo/copyright",
            "drwxr-xr-x root/root         0 ",
            "./usr/sbin/demo-server -> ../bin/demo",
        ],
    );
    let (_, lintian) = run("lintian", &["--tag-display-limit", "0", deb]);
    // Shown for the record (warnings are listed in the closing note).
    eprintln!("lintian {deb}:\n{lintian}");
    let errors: Vec<&str> = lintian.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian errors:\n{lintian}");

    let rpm = dist.join("demo-0.1.0-1.x86_64.rpm");
    let rpm = rpm.to_str().unwrap();
    let (ok, info) = run("rpm", &["-qpi", rpm]);
    assert!(ok, "{info}");
    assert_has(
        &info,
        &[
            "Name        : demo",
            "Version     : 0.1.0",
            "Release     : 1",
            "Architecture: x86_64",
            "License     : MIT OR Apache-2.0",
            "URL         : https://example.com/demo",
        ],
    );
    let (ok, files) = run("rpm", &["-qpl", rpm]);
    assert!(ok, "{files}");
    for path in [
        "/usr/bin/demo",
        "/etc/default/demo",
        "/usr/lib/systemd/system/demo.service",
        "/var/lib/demo",
        // Fedora's zsh reads site-functions, not Debian's vendor-completions.
        "/usr/share/zsh/site-functions/_demo",
    ] {
        assert!(files.lines().any(|l| l == path), "no {path} in\n{files}");
    }
    let (_, config) = run("rpm", &["-qpc", rpm]);
    let config: Vec<&str> = config.lines().filter(|l| l.starts_with('/')).collect();
    assert_eq!(config, ["/etc/default/demo"]);
    let (_, scripts) = run("rpm", &["-qp", "--scripts", rpm]);
    assert!(
        scripts.contains("systemctl --no-reload enable 'demo.service'"),
        "{scripts}"
    );

    // Requires: what rpm's own generator derives from the glibc binary, no more, no less; the
    // static musl package needs no library.
    let generated = Command::new("/usr/lib/rpm/elfdeps")
        .arg("--requires")
        .arg(dist.join("linux-x64/demo"))
        .output()
        .unwrap();
    assert!(generated.status.success(), "{:?}", text(&generated));
    let mut expected: Vec<String> = text(&generated).0.lines().map(str::to_owned).collect();
    expected.sort();
    assert!(
        expected.iter().any(|r| r == "libc.so.6()(64bit)"),
        "{expected:?}"
    );
    let declared = |rpm: &str| {
        let (_, requires) = run("rpm", &["-qp", "--requires", rpm]);
        let mut requires: Vec<String> = requires
            .lines()
            // rpm's own (`rpmlib(...)`, `config(demo)` for the config file), and its warning.
            .filter(|l| {
                !["rpmlib(", "config(", "warning:", "/"]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .map(str::to_owned)
            .collect();
        requires.sort();
        requires
    };
    assert_eq!(declared(rpm), expected);
    let musl = dist.join("demo-0.1.0-1.aarch64.rpm");
    assert!(
        !declared(musl.to_str().unwrap())
            .iter()
            .any(|r| r.contains(".so")),
        "{:?}",
        declared(musl.to_str().unwrap())
    );

    // The mapped pre-release (`1.2.0-rc.1` -> `1.2.0~rc.1`, pinned by a unit test) sorts
    // before the release for rpm and dpkg themselves.
    let (_, order) = run(
        "rpm",
        &[
            "--eval",
            "%{lua: print(rpm.vercmp('1.2.0~rc.1-1', '1.2.0-1'))}",
        ],
    );
    assert_eq!(order.trim(), "-1", "{order}");
    assert!(
        run(
            "dpkg",
            &["--compare-versions", "1.2.0~rc.1-1", "lt", "1.2.0-1"]
        )
        .0
    );

    // The signature: refused without the key, accepted with it in a test database.
    let db = tempfile::tempdir().unwrap();
    let dbpath = db.path().to_str().unwrap();
    let (ok, without) = run("rpm", &["--dbpath", dbpath, "-K", rpm]);
    assert!(!ok, "rpm -K passed without the key:\n{without}");
    let (ok, out) = run(
        "rpm",
        &["--dbpath", dbpath, "--import", public.to_str().unwrap()],
    );
    assert!(ok, "{out}");
    let (ok, checked) = run("rpm", &["--dbpath", dbpath, "-K", rpm]);
    assert!(ok && checked.contains("signatures OK"), "{checked}");

    // rpmlint reads rpm's default database: a HOME whose .rpmmacros points at the test one,
    // so that it knows the key.
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join(".rpmmacros"),
        format!("%_dbpath {dbpath}\n"),
    )
    .unwrap();
    let out = Command::new("rpmlint")
        .arg(rpm)
        .env("HOME", home.path())
        .output()
        .unwrap();
    let rpmlint = format!("{}{}", text(&out).0, text(&out).1);
    eprintln!("rpmlint {rpm}:\n{rpmlint}");
    assert!(rpmlint.contains(" 0 errors"), "rpmlint errors:\n{rpmlint}");
    // shipit verify reads every package back and checks the rpm signatures with the key.
    let (code, out) = verify(dir.path(), &dist, Some(&public));
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("demo_0.1.0-1_amd64.deb (demo_0.1.0-1_amd64.deb): demo 0.1.0-1 amd64"),
        "{out}"
    );
    assert!(
        out.contains("demo-0.1.0-1.x86_64: digests match, signed by"),
        "{out}"
    );

    // One changed byte in the payload and the check fails.
    let mut bytes = std::fs::read(rpm).unwrap();
    let last = bytes.len() - 40;
    bytes[last] ^= 1;
    let tampered = dist.join("tampered.rpm");
    std::fs::write(&tampered, bytes).unwrap();
    let (ok, out) = run(
        "rpm",
        &["--dbpath", dbpath, "-K", tampered.to_str().unwrap()],
    );
    assert!(!ok, "a changed rpm passed:\n{out}");
}

/// An empty dpkg database under `root`.
fn dpkg_root(root: &Path) {
    for dir in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
}

fn dpkg_install(root: &Path, deb: &Path) -> (bool, String) {
    run(
        "dpkg",
        &[
            &format!("--root={}", root.display()),
            "--force-script-chrootless",
            "--force-not-root",
            "--log=/dev/null",
            "-i",
            deb.to_str().unwrap(),
        ],
    )
}

#[test]
fn dpkg_installs_into_another_root_and_an_upgrade_keeps_an_edited_config_file() {
    require("dpkg");
    let root = tempfile::tempdir().unwrap();
    dpkg_root(root.path());
    let dir = packaging_project("0.1.0");
    let (secret, _) = pgp_key(dir.path());
    build(dir.path(), &secret);
    let (ok, out) = dpkg_install(root.path(), &dir.path().join("dist/demo_0.1.0-1_amd64.deb"));
    assert!(ok, "{out}");
    let installed = root.path();
    assert!(installed.join("lib/systemd/system/demo.service").is_file());
    let binary = installed.join("usr/bin/demo");
    let version = Command::new(&binary).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        "demo 0.1.0"
    );
    let config = installed.join("etc/default/demo");
    std::fs::write(&config, "PORT=9999\n").unwrap();

    let newer = packaging_project("0.2.0");
    build(newer.path(), &secret);
    let (ok, out) = dpkg_install(
        root.path(),
        &newer.path().join("dist/demo_0.2.0-1_amd64.deb"),
    );
    assert!(ok, "{out}");
    let version = Command::new(&binary).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        "demo 0.2.0"
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "PORT=9999\n");
    let (_, status) = run(
        "dpkg-query",
        &[
            &format!("--admindir={}/var/lib/dpkg", installed.display()),
            "-W",
            "-f",
            "${Version} ${Conffiles}",
            "demo",
        ],
    );
    assert!(status.starts_with("0.2.0-1 "), "{status}");
    assert!(status.contains("/etc/default/demo"), "{status}");
}

/// `shipit release` of a built project (the key in its variables).
fn release(dir: &Path, secret: &str) -> (Option<i32>, String) {
    release_with(dir, secret, &[])
}

/// `shipit release` with more arguments (`--check`).
fn release_with(dir: &Path, secret: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = shipit(dir)
        .args(["release", "--pipeline", "pipelines/packages.toml"])
        .args(args)
        .env("SHIPIT_PGP_KEY", secret)
        .env("SHIPIT_PGP_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(!stderr.contains(PASSWORD) && !stdout.contains(PASSWORD));
    (out.status.code(), format!("{stdout}{stderr}"))
}

/// apt-get with its sources, state and cache in a test folder: nothing of the machine's own.
struct Apt {
    dir: tempfile::TempDir,
}

impl Apt {
    fn new(repo: &Path) -> Apt {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["state/lists/partial", "cache/archives/partial", "etc"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("status"), "").unwrap();
        std::fs::write(
            dir.path().join("etc/sources.list"),
            format!(
                "deb [signed-by={}] file:{} stable main\n",
                repo.join("key.gpg").display(),
                repo.display()
            ),
        )
        .unwrap();
        Apt { dir }
    }

    fn run(&self, command: &str, args: &[&str]) -> (bool, String) {
        let d = self.dir.path().display();
        let options = [
            format!("Dir::Etc::sourcelist={d}/etc/sources.list"),
            "Dir::Etc::sourceparts=/dev/null".into(),
            format!("Dir::State={d}/state"),
            format!("Dir::Cache={d}/cache"),
            format!("Dir::State::status={d}/status"),
            "APT::Sandbox::User=root".into(),
            "APT::Architecture=amd64".into(),
            "APT::Architectures::=amd64".into(),
        ];
        let mut cmd = Command::new(command);
        for option in &options {
            cmd.arg("-o").arg(option);
        }
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        (out.status.success(), format!("{stdout}{stderr}"))
    }

    fn update(&self) -> (bool, String) {
        self.run("apt-get", &["--error-on=any", "update"])
    }
}

/// A repository channel's first release: the demo at 0.1.0 with `[release.<channel>]` in a
/// fresh folder, built and released with a key from `shipit keygen --pgp`.
struct Published {
    _repos: tempfile::TempDir,
    repo: PathBuf,
    section: String,
    first: tempfile::TempDir,
    secret: String,
    public: PathBuf,
    out: String,
}

fn first_release(channel: &str) -> Published {
    let repos = tempfile::tempdir().unwrap();
    let repo = repos.path().join(channel);
    let section = format!(
        "\n[release.{channel}]\npath = \"{}\"\nkey = {{ env = \"SHIPIT_PGP_KEY\", password_env = \"SHIPIT_PGP_PASSWORD\" }}\n",
        repo.display()
    );
    let first = packaging_project_with("0.1.0", &section);
    let (secret, public) = pgp_key(first.path());
    build(first.path(), &secret);
    let (code, out) = release(first.path(), &secret);
    assert_eq!(code, Some(0), "{out}");
    Published {
        _repos: repos,
        repo,
        section,
        first,
        secret,
        public,
        out,
    }
}

/// Another version of the demo released to the same repository.
fn next_release(published: &Published, version: &str) -> tempfile::TempDir {
    let project = packaging_project_with(version, &published.section);
    build(project.path(), &published.secret);
    let (code, out) = release(project.path(), &published.secret);
    assert_eq!(code, Some(0), "{out}");
    project
}

#[test]
fn an_apt_repository_in_a_folder_is_accepted_by_apt_and_grows_release_by_release() {
    for program in ["apt-get", "apt-cache", "dpkg"] {
        require(program);
    }
    let published = first_release("apt");
    let Published {
        repo,
        first,
        secret,
        public,
        out,
        ..
    } = &published;
    assert!(
        out.contains("added pool/main/d/demo/demo_0.1.0-1_amd64.deb"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "deb [signed-by=/usr/share/keyrings/demo-archive-keyring.gpg] file:{} stable main",
            repo.display()
        )),
        "{out}"
    );
    for file in [
        "dists/stable/InRelease",
        "dists/stable/Release.gpg",
        "dists/stable/main/binary-arm64/Packages.gz",
        "key.gpg",
        "key.asc",
    ] {
        assert!(repo.join(file).is_file(), "no {file}");
    }

    let apt = Apt::new(repo);
    let (ok, out) = apt.update();
    assert!(ok, "apt-get update refused the repository:\n{out}");
    let (code, out) = verify(first.path(), repo, Some(public));
    assert_eq!(code, Some(0), "{out}");
    assert_has(
        &out,
        &[
            "ok     signature dists/stable/InRelease (dists/stable/InRelease): signed by",
            "ok     index dists/stable/main/binary-amd64/Packages (dists/stable/InRelease): sha256 matches",
            "ok     checksum pool/main/d/demo/demo_0.1.0-1_amd64.deb (dists/stable/main/binary-amd64/Packages): sha256 matches",
        ],
    );
    let (_, policy) = apt.run("apt-cache", &["policy", "demo"]);
    assert!(policy.contains("Candidate: 0.1.0-1"), "{policy}");

    // Publishing the same packages again changes nothing.
    let inrelease = std::fs::read(repo.join("dists/stable/InRelease")).unwrap();
    let (code, out) = release(first.path(), secret);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("demo_0.1.0-1_amd64.deb is already in the APT repository"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(repo.join("dists/stable/InRelease")).unwrap(),
        inrelease
    );

    // Install from the repository into a throwaway root.
    let (ok, out) = apt.run("apt-get", &["download", "demo"]);
    assert!(ok, "{out}");
    let downloaded = apt.dir.path().join("demo_0.1.0-1_amd64.deb");
    assert!(downloaded.is_file(), "{out}");
    let root = tempfile::tempdir().unwrap();
    dpkg_root(root.path());
    let (ok, out) = dpkg_install(root.path(), &downloaded);
    assert!(ok, "{out}");
    assert!(
        root.path()
            .join("lib/systemd/system/demo.service")
            .is_file()
    );
    std::fs::write(root.path().join("etc/default/demo"), "PORT=9999\n").unwrap();

    // A second release adds 0.2.0 beside 0.1.0.
    next_release(&published, "0.2.0");
    let (ok, out) = apt.update();
    assert!(ok, "{out}");
    let (_, madison) = apt.run("apt-cache", &["madison", "demo"]);
    assert!(
        madison.contains("0.1.0-1") && madison.contains("0.2.0-1"),
        "{madison}"
    );
    let (ok, out) = apt.run("apt-get", &["download", "demo"]);
    assert!(ok, "{out}");
    let (ok, out) = dpkg_install(root.path(), &apt.dir.path().join("demo_0.2.0-1_amd64.deb"));
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read_to_string(root.path().join("etc/default/demo")).unwrap(),
        "PORT=9999\n"
    );

    // Another file under a published version is refused, and the repository is untouched.
    let changed = packaging_project_with("0.2.0", &published.section);
    std::fs::write(
        changed.path().join("demo/packaging/demo.default"),
        "PORT=1\n",
    )
    .unwrap();
    build(changed.path(), secret);
    let (code, out) = release(changed.path(), secret);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("demo 0.2.0-1 (amd64) is already in the repository with other content"),
        "{out}"
    );
    let (ok, out) = apt.update();
    assert!(ok, "{out}");

    // One changed byte in Packages or InRelease and apt refuses the repository.
    let packages = repo.join("dists/stable/main/binary-amd64/Packages");
    let original = std::fs::read(&packages).unwrap();
    let mut bytes = original.clone();
    let at = bytes.iter().position(|b| *b == b'0').unwrap();
    bytes[at] = b'1';
    std::fs::write(&packages, &bytes).unwrap();
    std::fs::remove_file(repo.join("dists/stable/main/binary-amd64/Packages.gz")).unwrap();
    let fresh = Apt::new(repo);
    let (ok, out) = fresh.update();
    assert!(!ok, "apt accepted a changed Packages file:\n{out}");
    let (code, out) = verify(first.path(), repo, Some(public));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAILED index dists/stable/main/binary-amd64/Packages"),
        "{out}"
    );
    std::fs::write(&packages, &original).unwrap();
    let inrelease_path = repo.join("dists/stable/InRelease");
    let text = std::fs::read_to_string(&inrelease_path).unwrap();
    std::fs::write(
        &inrelease_path,
        text.replacen("Suite: stable", "Suite: stablE", 1),
    )
    .unwrap();
    let fresh = Apt::new(repo);
    let (ok, out) = fresh.update();
    assert!(!ok, "apt accepted a changed InRelease:\n{out}");
}

/// dnf with no configuration of the machine's: the repository from its path, both
/// signature checks on, an empty root of its own.
fn dnf(repo: &Path, root: &Path, args: &[&str]) -> (bool, String) {
    let url = format!("file://{}", repo.display());
    let mut all = vec![
        "--setopt=reposdir=/dev/null".to_string(),
        format!("--repofrompath=t,{url}"),
        "--setopt=t.gpgcheck=1".into(),
        "--setopt=t.repo_gpgcheck=1".into(),
        format!("--setopt=t.gpgkey={url}/key.asc"),
        format!("--installroot={}", root.display()),
        "--releasever=1".into(),
        "--setopt=cachedir=/dev/null".into(),
        "-y".into(),
    ];
    all[7] = format!("--setopt=cachedir={}/cache", root.display());
    all.extend(args.iter().map(|a| a.to_string()));
    let args: Vec<&str> = all.iter().map(String::as_str).collect();
    run("dnf", &args)
}

#[test]
fn a_yum_repository_in_a_folder_is_verified_by_dnf_and_grows_release_by_release() {
    for program in ["dnf", "rpm"] {
        require(program);
    }
    let published = first_release("yum");
    let Published {
        repo,
        first,
        secret,
        public,
        out,
        ..
    } = &published;
    assert!(
        out.contains("added packages/demo-0.1.0-1.x86_64.rpm"),
        "{out}"
    );
    assert!(out.contains("repo_gpgcheck=1"), "{out}");
    for file in [
        "repodata/repomd.xml",
        "repodata/repomd.xml.asc",
        "key.asc",
        "demo.repo",
    ] {
        assert!(repo.join(file).is_file(), "no {file}");
    }

    let root = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let destdir = format!("--destdir={}", downloads.path().display());
    let (ok, out) = dnf(repo, root.path(), &["download", &destdir, "demo"]);
    assert!(ok, "dnf refused the repository:\n{out}");
    let downloaded = downloads.path().join("demo-0.1.0-1.x86_64.rpm");
    assert!(downloaded.is_file(), "{out}");
    let db = tempfile::tempdir().unwrap();
    let dbpath = db.path().to_str().unwrap();
    run(
        "rpm",
        &["--dbpath", dbpath, "--import", public.to_str().unwrap()],
    );
    let (ok, checked) = run(
        "rpm",
        &["--dbpath", dbpath, "-K", downloaded.to_str().unwrap()],
    );
    assert!(ok && checked.contains("signatures OK"), "{checked}");

    // Again: nothing changes.
    let repomd = std::fs::read(repo.join("repodata/repomd.xml")).unwrap();
    let (code, out) = release(first.path(), secret);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("packages/demo-0.1.0-1.x86_64.rpm is already in the YUM repository"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(repo.join("repodata/repomd.xml")).unwrap(),
        repomd
    );

    // A second release adds 0.2.0 beside 0.1.0.
    let second = next_release(&published, "0.2.0");
    let root = tempfile::tempdir().unwrap();
    let (ok, list) = dnf(repo, root.path(), &["--showduplicates", "list", "demo"]);
    assert!(ok, "{list}");
    assert!(
        list.contains("0.1.0-1") && list.contains("0.2.0-1"),
        "{list}"
    );

    // rpm installs 0.1.0 into a root of its own, then upgrades to 0.2.0 from the repository:
    // the edited config file is kept (%config(noreplace)).
    let (ok, out) = dnf(repo, root.path(), &["download", &destdir, "demo-0.2.0"]);
    assert!(ok, "{out}");
    let system = tempfile::tempdir().unwrap();
    let rpm_root = |args: &[&str]| {
        let mut all = vec!["--root", system.path().to_str().unwrap()];
        all.extend(args);
        run("rpm", &all)
    };
    assert!(rpm_root(&["--initdb"]).0);
    assert!(rpm_root(&["--import", public.to_str().unwrap()]).0);
    let (ok, out) = rpm_root(&[
        "-i",
        "--nodeps",
        "--noscripts",
        downloaded.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let config = system.path().join("etc/default/demo");
    std::fs::write(&config, "PORT=9999\n").unwrap();
    let newer = downloads.path().join("demo-0.2.0-1.x86_64.rpm");
    let (ok, out) = rpm_root(&["-U", "--nodeps", "--noscripts", newer.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "PORT=9999\n");
    let (_, installed) = rpm_root(&["-q", "demo"]);
    assert!(installed.contains("demo-0.2.0-1.x86_64"), "{installed}");

    let (code, out) = verify(second.path(), repo, None);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("integrity only: the key key.asc came from the folder itself"),
        "{out}"
    );
    assert!(
        out.contains("ok     checksum packages/demo-0.2.0-1.x86_64.rpm (repodata/"),
        "{out}"
    );

    // One changed byte in repomd.xml and dnf refuses the repository.
    let path = repo.join("repodata/repomd.xml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("<revision>", "<revision>1", 1)).unwrap();
    let root = tempfile::tempdir().unwrap();
    let (ok, out) = dnf(repo, root.path(), &["download", &destdir, "demo"]);
    assert!(!ok, "dnf accepted a changed repomd.xml:\n{out}");
    let (code, out) = verify(second.path(), repo, Some(public));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAILED signature repodata/repomd.xml"),
        "{out}"
    );
}

/// `git = { url, branch }`: the repository lives on a branch (as GitHub Pages serves it). Two
/// releases pushing at once both land: the loser resets to the winner's commit and adds its
/// package again, so the signed index lists both.
#[test]
fn release_check_reads_apt_and_yum_repositories_through_their_signed_indexes() {
    for channel in ["apt", "yum"] {
        let published = first_release(channel);
        assert!(
            published
                .out
                .contains("published files: every one matches the manifest"),
            "{}",
            published.out
        );
        let dir = published.first.path();
        let (code, out) = release_with(dir, &published.secret, &["--check"]);
        assert_eq!(code, Some(0), "{out}");
        // An index edited after signing (apt), a package swapped in the pool (yum).
        let (tampered, named) = match channel {
            "apt" => {
                let packages = published
                    .repo
                    .join("dists/stable/main/binary-amd64/Packages");
                let text = std::fs::read_to_string(&packages).unwrap();
                std::fs::write(
                    &packages,
                    text.replace("Maintainer:", "Maintainer: mallory,"),
                )
                .unwrap();
                (
                    packages,
                    "apt: dists/stable/main/binary-amd64/Packages differs: published as sha256:",
                )
            }
            _ => {
                let folder = published.repo.join("packages");
                let rpm = std::fs::read_dir(&folder)
                    .unwrap()
                    .next()
                    .unwrap()
                    .unwrap()
                    .path();
                let mut bytes = std::fs::read(&rpm).unwrap();
                let last = bytes.len() - 1;
                bytes[last] ^= 1;
                std::fs::write(&rpm, bytes).unwrap();
                (
                    rpm,
                    "yum: packages/demo-0.1.0-1.x86_64.rpm differs: published as sha256:",
                )
            }
        };
        let (code, out) = release_with(dir, &published.secret, &["--check"]);
        assert_eq!(code, Some(1), "{channel}: {out}");
        assert!(
            out.contains(named),
            "{channel} ({}): {out}",
            tampered.display()
        );
        assert!(out.contains("the channel now has sha256:"), "{out}");
    }
}

#[test]
fn an_apt_repository_on_a_git_branch_gets_both_of_two_concurrent_releases() {
    require("git");
    let remote = tempfile::tempdir().unwrap();
    let bare = remote.path().join("pages.git");
    let ok = Command::new("git")
        .args(["init", "--quiet", "--bare"])
        .arg(&bare)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    // Each push holds the repository for a moment, so the two overlap and one loses.
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\ncat >/dev/null\nsleep 2\nexit 0\n").unwrap();
    Command::new("chmod").arg("+x").arg(&hook).status().unwrap();
    let section = format!(
        "\n[release.apt]\ngit = {{ url = \"{}\", branch = \"gh-pages\" }}\nurl = \"https://acme.example/apt\"\n\
         key = {{ env = \"SHIPIT_PGP_KEY\", password_env = \"SHIPIT_PGP_PASSWORD\" }}\n",
        bare.display()
    );
    let older = packaging_project_with("0.1.0", &section);
    let newer = packaging_project_with("0.2.0", &section);
    let (secret, public) = pgp_key(older.path());
    build(older.path(), &secret);
    build(newer.path(), &secret);
    let releases: Vec<_> = [older.path().to_path_buf(), newer.path().to_path_buf()]
        .into_iter()
        .map(|dir| {
            let secret = secret.clone();
            std::thread::spawn(move || release(&dir, &secret))
        })
        .collect();
    let mut lost_a_race = 0;
    for handle in releases {
        let (code, out) = handle.join().unwrap();
        assert_eq!(code, Some(0), "{out}");
        lost_a_race += usize::from(out.contains("another release pushed first"));
        assert!(out.contains("deb [signed-by=/usr/share/keyrings/demo-archive-keyring.gpg] https://acme.example/apt stable main"), "{out}");
    }
    assert_eq!(lost_a_race, 1, "the pushes did not overlap");
    let checkout = remote.path().join("checkout");
    let ok = Command::new("git")
        .args(["clone", "--quiet", "--branch", "gh-pages"])
        .arg(&bare)
        .arg(&checkout)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let (code, out) = verify(older.path(), &checkout, Some(&public));
    assert_eq!(code, Some(0), "{out}");
    for deb in ["demo_0.1.0-1_amd64.deb", "demo_0.2.0-1_amd64.deb"] {
        assert!(
            out.contains(&format!("ok     checksum pool/main/d/demo/{deb}")),
            "{deb} is not in the signed index:\n{out}"
        );
    }
}

/// Every file under `dir`, by path, with its bytes (links as their targets).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                files.push((path, target.into_os_string().into_encoded_bytes()));
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

/// Regression (issue 28, 2): shipit followed what an APT or YUM repository held. A `Packages`
/// entry's `Architecture: x/../..` and a `pool/main` or `repodata` that is a link to an outside
/// folder made it write there and, with `keep`, delete there (seen before the fix: the outside
/// folder gained `d/demo/demo_0.2.0-1_amd64.deb` and lost its `*.xml.gz`). Each hostile folder
/// now fails the release, and the outside folder is intact byte for byte.
#[test]
fn hostile_repository_folders_never_send_a_write_or_delete_outside() {
    for channel in ["apt", "yum"] {
        let published = first_release(channel);
        let repo = &published.repo;
        let pristine = repo.with_extension("pristine");
        assert!(
            run(
                "cp",
                &["-a", &repo.to_string_lossy(), &pristine.to_string_lossy()]
            )
            .0
        );
        let next = packaging_project_with(
            "0.2.0",
            &published.section.replace("key =", "keep = 1\nkey ="),
        );
        build(next.path(), &published.secret);
        let outside = repo.parent().unwrap().join("outside");
        std::fs::create_dir_all(outside.join("d/demo")).unwrap();
        std::fs::write(outside.join("victim.txt"), "victim").unwrap();
        std::fs::write(outside.join("backup-primary.xml.gz"), "backup").unwrap();
        std::fs::write(outside.join("demo-0.1.0-1.x86_64.rpm"), "not mine").unwrap();
        std::fs::write(outside.join("d/demo/demo_0.1.0-1_amd64.deb"), "not mine").unwrap();
        let before = snapshot(&outside);
        // Each: what it is, and the folder made a link outside (none: the climbing architecture).
        let hostile: &[(&str, Option<&str>)] = match channel {
            "apt" => &[
                ("an architecture that climbs out", None),
                ("pool/main as a link outside", Some("pool/main")),
                (
                    "an index folder as a link outside",
                    Some("dists/stable/main/binary-amd64"),
                ),
            ],
            _ => &[
                ("repodata as a link outside", Some("repodata")),
                ("packages as a link outside", Some("packages")),
            ],
        };
        for (what, linked) in hostile {
            std::fs::remove_dir_all(repo).unwrap();
            assert!(
                run(
                    "cp",
                    &["-a", &pristine.to_string_lossy(), &repo.to_string_lossy()]
                )
                .0
            );
            if let Some(inside) = linked {
                std::fs::remove_dir_all(repo.join(inside)).unwrap();
                std::os::unix::fs::symlink(&outside, repo.join(inside)).unwrap();
            } else {
                let index = repo.join("dists/stable/main/binary-amd64/Packages");
                let text = std::fs::read_to_string(&index).unwrap();
                let climbing = text.replacen(
                    "Architecture: amd64",
                    "Architecture: x/../../../../../outside",
                    1,
                );
                std::fs::write(&index, climbing).unwrap();
            }
            let (code, out) = release(next.path(), &published.secret);
            assert_eq!(code, Some(1), "{channel}, {what}: {out}");
            assert_eq!(
                snapshot(&outside),
                before,
                "{channel}, {what}: the outside folder changed"
            );
        }
    }
}

/// The members of an `ar` archive (a .deb), in order.
fn ar_members(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    assert!(bytes.starts_with(b"!<arch>\n"));
    let (mut at, mut members) = (8, Vec::new());
    while at + 60 <= bytes.len() {
        let header = &bytes[at..at + 60];
        let name = String::from_utf8_lossy(&header[..16]).trim().to_string();
        let size: usize = String::from_utf8_lossy(&header[48..58])
            .trim()
            .parse()
            .unwrap();
        members.push((name, bytes[at + 60..at + 60 + size].to_vec()));
        at += 60 + size + size % 2;
    }
    members
}

/// An `ar` archive of `members`, as dpkg-deb writes one.
fn ar_write(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        let header = format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            0,
            0,
            0,
            "100644",
            data.len()
        );
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

/// `SHA256SUMS` rewritten for `dist` as it is now (what an attacker without the key can do).
fn rewrite_sums(dist: &Path) {
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    let lines: String = sums
        .lines()
        .map(|line| {
            let name = line.split_whitespace().last().unwrap();
            let bytes = std::fs::read(dist.join(name)).unwrap();
            let (ok, sum) = run("sha256sum", &[dist.join(name).to_str().unwrap()]);
            assert!(ok && !bytes.is_empty());
            format!("{}  {name}\n", sum.split_whitespace().next().unwrap())
        })
        .collect();
    std::fs::write(dist.join("SHA256SUMS"), lines).unwrap();
}

/// Regression (issue 28, 3): `verify --pgp-key` with the binary key shipit publishes (or an
/// armored one after a comment) passed an unsigned rebuilt rpm as "signature not checked"; a
/// .deb whose data.tar was swapped passed; unlisted files passed silently (each seen before the
/// fix). Now the key is read in any form, a .deb's files must match its md5sums, and unlisted
/// files are named: a warning, or a failure with `--strict`.
#[test]
fn verify_refuses_unsigned_rpms_and_swapped_debs_and_names_unlisted_files() {
    let checksum = "\n[stages.checksum]\nuses = \"checksum\"\nneeds = [\"deb\", \"rpm\"]\n";
    let signed = packaging_project_with("0.1.0", checksum);
    let (secret, public) = pgp_key(signed.path());
    build(signed.path(), &secret);
    let dist = signed.path().join("dist");
    let (code, out) = verify(signed.path(), &dist, Some(&public));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("files match md5sums"), "{out}");

    // The key in the two other forms a user has: binary (apt's key.gpg) and armored after a
    // comment. Both are read and check the signatures.
    let binary = signed.path().join("key.gpg");
    let (ok, why) = run(
        "python3",
        &[
            "-c",
            "import base64,sys; t=open(sys.argv[1]).read().split('\\n\\n',1)[1].split('-----END')[0]; \
             open(sys.argv[2],'wb').write(base64.b64decode(''.join(l for l in t.split() if not l.startswith('='))))",
            public.to_str().unwrap(),
            binary.to_str().unwrap(),
        ],
    );
    assert!(ok, "{why}");
    let commented = signed.path().join("commented.asc");
    let armored = std::fs::read_to_string(&public).unwrap();
    std::fs::write(&commented, format!("# the release key\n{armored}")).unwrap();
    let garbage = signed.path().join("garbage.gpg");
    std::fs::write(&garbage, b"\x99\x01\x02not a key").unwrap();
    let (code, out) = verify(signed.path(), &dist, Some(&garbage));
    assert_eq!(
        code,
        Some(2),
        "a key that cannot be read is an error: {out}"
    );

    // An unsigned rpm rebuilt from the same project, put in place of the signed one.
    let unsigned = demo_copy();
    let pipeline = PIPELINE.replace(
        "key = { env = \"SHIPIT_PGP_KEY\", password_env = \"SHIPIT_PGP_PASSWORD\" }",
        "",
    );
    std::fs::write(unsigned.path().join("pipelines/packages.toml"), pipeline).unwrap();
    let rebuilt = build(unsigned.path(), &secret);
    let (rpm, bytes) = rebuilt
        .iter()
        .find(|(n, _)| n.ends_with(".x86_64.rpm"))
        .unwrap();
    std::fs::write(dist.join(rpm), bytes).unwrap();
    rewrite_sums(&dist);
    for key in [&public, &binary, &commented] {
        let (code, out) = verify(signed.path(), &dist, Some(key));
        assert_eq!(code, Some(1), "{}: {out}", key.display());
        assert!(
            out.contains(&format!("FAILED package {rpm}")) && out.contains("signature"),
            "{}: {out}",
            key.display()
        );
        assert!(!out.contains("signature not checked"), "{out}");
    }
    build(signed.path(), &secret);

    // The amd64 .deb with the arm64 data.tar, its SHA256SUMS line rewritten.
    let deb = dist.join("demo_0.1.0-1_amd64.deb");
    let mut members = ar_members(&std::fs::read(&deb).unwrap());
    let other = ar_members(&std::fs::read(dist.join("demo_0.1.0-1_arm64.deb")).unwrap());
    members[2] = other[2].clone();
    assert!(members[2].0.starts_with("data.tar"));
    std::fs::write(&deb, ar_write(&members)).unwrap();
    rewrite_sums(&dist);
    let (code, out) = verify(signed.path(), &dist, Some(&binary));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("does not match its MD5 in md5sums"), "{out}");
    build(signed.path(), &secret);

    // A file no checksum lists: named as a warning, a failure with --strict.
    std::fs::write(dist.join("extra.txt"), "who vouches for me?").unwrap();
    let (code, out) = verify(signed.path(), &dist, Some(&public));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("WARN   unlisted extra.txt"), "{out}");
    let out = shipit(signed.path())
        .arg("verify")
        .arg(&dist)
        .arg("--strict")
        .arg("--pgp-key")
        .arg(&public)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("FAILED unlisted extra.txt"), "{stdout}");
}
