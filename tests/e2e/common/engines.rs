//! More Docker engines beside the machine's own, for fleet deploys: each a separate dockerd
//! with its own socket, data root, exec root and bridge (a subnet of its own, no iptables), so
//! published ports work as on the main engine. Stopped, and everything it made removed, when
//! dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::require;

/// Engines started by this test process, for bridge names and subnets of their own.
static STARTED: AtomicU32 = AtomicU32::new(0);

/// A dockerd of its own.
pub struct Engine {
    /// `unix://<socket>`.
    pub address: String,
    bridge: String,
    child: Child,
    dir: PathBuf,
}

impl Engine {
    /// Starts an engine and waits until it answers.
    pub fn start() -> Engine {
        require("dockerd");
        require("ip");
        let n = STARTED.fetch_add(1, Ordering::SeqCst);
        let id = std::process::id() % 10_000;
        let bridge = format!("shb{id}x{n}");
        let dir = std::env::temp_dir().join(format!("shipit-engine-{id}-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        ip(&["link", "add", &bridge, "type", "bridge"]);
        // 10.210.0.0/16 and up: one /24 per engine of this process.
        let subnet = 210 + (id % 40);
        ip(&[
            "addr",
            "add",
            &format!("10.{subnet}.{n}.1/24"),
            "dev",
            &bridge,
        ]);
        ip(&["link", "set", &bridge, "up"]);
        let socket = dir.join("d.sock");
        let child = Command::new("dockerd")
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("d.pid"))
            .args(["--bridge", &bridge, "--iptables=false", "--ip-masq=false"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .unwrap();
        let engine = Engine {
            address: format!("unix://{}", socket.display()),
            bridge,
            child,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !engine.docker(&["info"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not start: {}",
                std::fs::read_to_string(engine.dir.join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        engine
    }

    /// Runs the docker CLI against this engine.
    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("-H")
            .arg(&self.address)
            .args(args)
            .output()
            .unwrap()
    }

    /// Copies `image` from the machine's engine into this one.
    pub fn load(&self, image: &str) {
        self.load_as(image, image);
    }

    /// Copies `image` from the machine's engine into this one, tagged `tag`.
    pub fn load_as(&self, image: &str, tag: &str) {
        let mut save = Command::new("docker")
            .args(["save", image])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let load = Command::new("docker")
            .arg("-H")
            .arg(&self.address)
            .arg("load")
            .stdin(save.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(save.wait().unwrap().success(), "docker save {image} failed");
        assert!(load.status.success(), "{load:?}");
        if image != tag {
            assert!(self.docker(&["tag", image, tag]).status.success());
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        // SIGTERM: dockerd unmounts its layers before it exits.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        ip(&["link", "del", &self.bridge]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ip(args: &[&str]) {
    let _ = Command::new("ip").args(args).status();
}
