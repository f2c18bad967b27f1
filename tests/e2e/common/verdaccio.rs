//! A real npm registry for tests: verdaccio (installed by `scripts/test`, pinned by
//! `tests/fixtures/verdaccio/package-lock.json`) on a loopback address of its own, with no
//! uplinks, and one user whose token the tests publish with.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A verdaccio process, stopped when dropped.
pub struct Verdaccio {
    /// `http://IP:PORT/`.
    pub url: String,
    /// The test user's token.
    pub token: String,
    child: Child,
    dir: tempfile::TempDir,
}

/// The verdaccio `scripts/test` installs (`SHIPIT_VERDACCIO`), or the default place it does.
fn program() -> PathBuf {
    let path = std::env::var_os("SHIPIT_VERDACCIO").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/shipit-tools/verdaccio/node_modules/.bin/verdaccio")
        },
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "verdaccio is required by this test and is not at {}; scripts/test installs it",
        path.display()
    );
    path
}

impl Verdaccio {
    /// Starts a registry and makes a user; every package may be published by a logged-in
    /// user and read by anyone.
    pub fn start() -> Verdaccio {
        super::require("node");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display();
        std::fs::write(
            dir.path().join("config.yaml"),
            format!(
                "storage: {root}/storage\nauth:\n  htpasswd:\n    file: {root}/htpasswd\n    max_users: 10\n\
                 uplinks: {{}}\npackages:\n  '@*/*':\n    access: $all\n    publish: $authenticated\n\
                 \x20 '**':\n    access: $all\n    publish: $authenticated\n\
                 web:\n  enable: false\nlog: {{type: stdout, format: pretty, level: warn}}\n\
                 max_body_size: 200mb\n"
            ),
        )
        .unwrap();
        let addr = super::private_addr();
        let log = std::fs::File::create(dir.path().join("verdaccio.log")).unwrap();
        let child = Command::new(program())
            .arg("--config")
            .arg(dir.path().join("config.yaml"))
            .arg("--listen")
            .arg(format!("http://{addr}/"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let url = format!("http://{addr}/");
        let mut registry = Verdaccio {
            url,
            token: String::new(),
            child,
            dir,
        };
        registry.wait_ready();
        registry.token = registry.add_user("ci", "correct-horse-battery");
        registry
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("verdaccio exited with {status}: {}", self.log());
            }
            if curl(&[&format!("{}-/ping", self.url)]).0 == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "verdaccio did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Makes a user, as `npm adduser` does, and returns its token.
    fn add_user(&self, name: &str, password: &str) -> String {
        let body = serde_json::json!({"name": name, "password": password}).to_string();
        let (status, answer) = curl(&[
            "-X",
            "PUT",
            "-H",
            "content-type: application/json",
            "--data-binary",
            &body,
            &format!("{}-/user/org.couchdb.user:{name}", self.url),
        ]);
        assert_eq!(status, 201, "{answer}");
        let body: serde_json::Value = serde_json::from_str(&answer).unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    /// The file the registry serves `name@version`'s tarball from (its storage, on disk).
    pub fn tarball(&self, name: &str, version: &str) -> PathBuf {
        let base = name.rsplit('/').next().unwrap_or(name);
        self.dir
            .path()
            .join("storage")
            .join(name)
            .join(format!("{base}-{version}.tgz"))
    }

    /// The package document of `name`, as anyone reads it.
    pub fn packument(&self, name: &str) -> Option<serde_json::Value> {
        let (status, body) = curl(&[&format!("{}{}", self.url, name.replace('/', "%2f"))]);
        (status == 200).then(|| serde_json::from_str(&body).unwrap())
    }

    /// What verdaccio logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("verdaccio.log")).unwrap_or_default()
    }

    /// npm, set up for this registry only: its own cache and user config in `home`.
    pub fn npm(&self, home: &Path, dir: &Path) -> Command {
        let mut npm = Command::new("npm");
        self.npm_env(&mut npm, home);
        npm.current_dir(dir);
        npm
    }

    /// npx, set up the same way.
    pub fn npx(&self, home: &Path, dir: &Path) -> Command {
        let mut npx = Command::new("npx");
        self.npm_env(&mut npx, home);
        npx.current_dir(dir);
        npx
    }

    fn npm_env(&self, command: &mut Command, home: &Path) {
        let userconfig = home.join("npmrc");
        if !userconfig.exists() {
            std::fs::write(&userconfig, "").unwrap();
        }
        command
            .env("npm_config_registry", &self.url)
            .env("npm_config_cache", home.join("cache"))
            .env("npm_config_userconfig", &userconfig)
            .env("npm_config_update_notifier", "false")
            .env("npm_config_audit", "false")
            .env("npm_config_fund", "false")
            .env("npm_config_loglevel", "error");
    }
}

/// curl with `args`: the status and the body.
fn curl(args: &[&str]) -> (u16, String) {
    super::require("curl");
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

impl Drop for Verdaccio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
