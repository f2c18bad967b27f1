//! A real OCI registry for tests: Debian's `docker-registry` (CNCF distribution) on a free
//! port of 127.0.0.1, with htpasswd authentication; and the Docker engine `.ci/run` starts.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::require;

/// The user every test registry knows.
pub const USER: &str = "shipit";
/// That user's password.
pub const PASSWORD: &str = "correct-horse-battery";

/// A registry process, stopped when dropped.
pub struct Registry {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    child: Child,
    dir: tempfile::TempDir,
    /// The token service, for a registry that wants Bearer tokens.
    pub tokens: Option<super::token_service::TokenService>,
}

impl Registry {
    /// Starts a registry with one user, [`USER`] / [`PASSWORD`], checked with Basic auth.
    pub fn start() -> Registry {
        require("htpasswd");
        let dir = tempfile::tempdir().unwrap();
        let htpasswd = Command::new("htpasswd")
            .args(["-Bbn", USER, PASSWORD])
            .output()
            .unwrap();
        assert!(htpasswd.status.success());
        std::fs::write(dir.path().join("htpasswd"), &htpasswd.stdout).unwrap();
        let auth = format!(
            "  htpasswd: {{realm: shipit-test, path: {}/htpasswd}}\n",
            dir.path().display()
        );
        Registry::serve(dir, &auth, None)
    }

    /// Starts a registry that wants Bearer tokens from a token service in this process,
    /// which knows [`USER`] / [`PASSWORD`].
    pub fn start_with_tokens() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let tokens = super::token_service::TokenService::start(dir.path());
        let auth = format!(
            "  token:\n    realm: {}/token\n    service: shipit-test-registry\n    issuer: {}\n    rootcertbundle: {}\n",
            tokens.url,
            super::token_service::ISSUER,
            tokens.certificate.display()
        );
        Registry::serve(dir, &auth, Some(tokens))
    }

    fn serve(
        dir: tempfile::TempDir,
        auth: &str,
        tokens: Option<super::token_service::TokenService>,
    ) -> Registry {
        require("docker-registry");
        // A free port can be taken by a neighbour test before the registry binds it: each
        // registry answers with its own id, and one that lost the port is started again.
        for attempt in 0..5 {
            let addr = format!("127.0.0.1:{}", super::free_port());
            let id = format!("{}-{attempt}", dir.path().display());
            let root = dir.path().display();
            std::fs::write(
                dir.path().join("config.yml"),
                format!(
                    "version: 0.1\nlog: {{level: info}}\nstorage:\n  filesystem: {{rootdirectory: {root}/data}}\n  delete: {{enabled: true}}\n\
                     http:\n  addr: {addr}\n  secret: shipit-tests\n  headers:\n    X-Shipit-Test-Registry: [\"{id}\"]\nauth:\n{auth}"
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(dir.path().join("config.yml"))
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .stdin(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                match identity(&addr) {
                    Some(found) if found == id => {
                        return Registry {
                            addr,
                            child,
                            dir,
                            tokens,
                        };
                    }
                    // Someone else's server: ours cannot have the port.
                    Some(_) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    None => {}
                }
                assert!(
                    Instant::now() < deadline,
                    "the registry did not start: {}",
                    std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!(
            "no registry could keep a port: {}",
            std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
        )
    }

    /// What the registry logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// A Docker config folder (`DOCKER_CONFIG`) holding `password` for this registry.
    pub fn docker_config(&self, password: &str) -> tempfile::TempDir {
        self.docker_config_at(&self.addr, password)
    }

    /// A Docker config folder holding `password` for this registry reached as `host` (a proxy).
    pub fn docker_config_at(&self, host: &str, password: &str) -> tempfile::TempDir {
        use base64::Engine;
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
        std::fs::write(
            dir.path().join("config.json"),
            format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
        dir
    }

    /// `skopeo` with this registry's credentials, over plain HTTP.
    pub fn skopeo(&self, args: &[&str]) -> std::process::Output {
        require("skopeo");
        let creds = format!("{USER}:{PASSWORD}");
        let mut command = Command::new("skopeo");
        command.arg(args[0]);
        match args[0] {
            "copy" => command.args(["--src-tls-verify=false", "--src-creds", &creds]),
            _ => command.args(["--tls-verify=false", "--creds", &creds]),
        };
        command.args(&args[1..]).output().unwrap()
    }

    /// `skopeo inspect --raw` of `reference` (under this registry) as JSON.
    pub fn raw_manifest(&self, reference: &str) -> serde_json::Value {
        let out = self.skopeo(&[
            "inspect",
            "--raw",
            &format!("docker://{}/{reference}", self.addr),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// The `X-Shipit-Test-Registry` id of the server answering `GET /v2/` at `addr`: `None` while
/// nothing answers, `Some("")` for a server without one.
fn identity(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(
            format!("GET /v2/ HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let text = String::from_utf8_lossy(&answer);
    if !text.starts_with("HTTP/") {
        return None;
    }
    Some(
        text.lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("x-shipit-test-registry")
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_default(),
    )
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails unless a Docker engine answers (`.ci/run` starts dockerd).
pub fn require_docker() {
    require("docker");
    let out = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "this test needs a running Docker engine (start dockerd as .ci/run does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `docker` with `config` as its configuration folder.
pub fn docker(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// The file at `path` inside the last layer of the image copied to `dir:` layout `layout`.
pub fn file_in_top_layer(layout: &Path, path: &str) -> Vec<u8> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("manifest.json")).unwrap()).unwrap();
    let top = manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let blob: PathBuf = layout.join(top);
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(blob).unwrap());
    let mut archive = tar::Archive::new(gz);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some(path) {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            return data;
        }
    }
    panic!("{path} is not in the top layer");
}
