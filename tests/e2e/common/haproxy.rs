//! A real HAProxy for deploy tests, on loopback addresses of its own, with its runtime API on a
//! unix socket and two empty backends that shipit fills: `demo` (frontend [`Haproxy::frontend`])
//! and `demo_preview` (frontend [`Haproxy::preview`]).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::require;

/// A running HAProxy, stopped when dropped.
pub struct Haproxy {
    /// `127.0.0.1:<port>` of the frontend.
    pub frontend: String,
    /// `127.0.0.1:<port>` of the preview frontend.
    pub preview: String,
    /// The runtime API socket.
    pub socket: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// Starts HAProxy in the foreground.
    pub fn start() -> Haproxy {
        require("haproxy");
        let dir = tempfile::tempdir().unwrap();
        // Addresses of its own, so the frontends can only be this HAProxy's.
        let (frontend, preview) = (super::private_addr(), super::private_addr());
        let socket = dir.path().join("admin.sock");
        let config = dir.path().join("haproxy.cfg");
        std::fs::write(
            &config,
            format!(
                "global\n    stats socket {} mode 600 level admin\n    stats timeout 30s\n    log stdout format raw local0\n\n\
                 defaults\n    mode http\n    log global\n    option httplog\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n\
                 \x20   retries 3\n    option redispatch\n\n\
                 frontend web\n    bind {frontend}\n    default_backend demo\n\n\
                 backend demo\n    balance roundrobin\n\n\
                 frontend preview\n    bind {preview}\n    default_backend demo_preview\n\n\
                 backend demo_preview\n    balance roundrobin\n",
                socket.display()
            ),
        )
        .unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("log")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut child = child;
        while !socket.exists() || TcpStream::connect(&frontend).is_err() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "haproxy exited while starting"
            );
            assert!(Instant::now() < deadline, "haproxy did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Haproxy {
            frontend,
            preview,
            socket,
            child,
            _dir: dir,
        }
    }

    /// The request log lines with status `status` (HAProxy's `httplog` format).
    pub fn logged(&self, status: u16) -> Vec<String> {
        let log = self.socket.with_file_name("log");
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&format!(" {status} ")))
            .map(String::from)
            .collect()
    }

    /// `unix://<socket>`.
    pub fn api(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// One runtime API command.
    pub fn command(&self, command: &str) -> String {
        use std::io::{Read, Write};
        let mut stream = std::os::unix::net::UnixStream::connect(&self.socket).unwrap();
        stream.write_all(format!("{command}\n").as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }
}

impl Haproxy {
    /// Stops HAProxy now (its runtime API goes away with it).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
