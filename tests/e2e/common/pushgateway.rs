//! A real Prometheus Pushgateway (Debian's prometheus-pushgateway) on a loopback address of
//! its own, without persistence; stopped when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::require;

/// A running Pushgateway.
pub struct Pushgateway {
    /// `http://IP:PORT`.
    pub url: String,
    child: Child,
}

impl Pushgateway {
    /// Starts it and waits until it answers.
    pub fn start() -> Pushgateway {
        require("prometheus-pushgateway");
        let address = super::private_addr();
        let child = Command::new("prometheus-pushgateway")
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let gateway = Pushgateway {
            url: format!("http://{address}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while gateway.metrics().is_err() {
            assert!(Instant::now() < deadline, "the Pushgateway did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        gateway
    }

    /// What it serves at `/metrics`.
    pub fn metrics(&self) -> std::io::Result<String> {
        let address = self.url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address)?;
        use std::io::{Read, Write};
        write!(stream, "GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        if !answer.starts_with("HTTP/1.0 200") && !answer.starts_with("HTTP/1.1 200") {
            return Err(std::io::Error::other(answer));
        }
        Ok(answer)
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
