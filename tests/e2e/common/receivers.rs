//! Where the announce tests' messages arrive: an HTTP receiver that records every request
//! (and answers 404 on the paths told to fail), and a real SMTP server (aiosmtpd) that
//! requires STARTTLS and AUTH and writes each mail it accepts to a folder.

use std::collections::BTreeSet;
use std::io::BufReader;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use super::wire::{read_body, read_head, write_response};

/// A request the receiver got: its path and JSON body.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path.
    pub path: String,
    /// The body, parsed.
    pub body: serde_json::Value,
}

/// The HTTP receiver on 127.0.0.1.
pub struct HttpReceiver {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    failing: Arc<Mutex<BTreeSet<String>>>,
}

impl HttpReceiver {
    /// Starts it.
    pub fn start() -> HttpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let failing: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let (got, fails) = (received.clone(), failing.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (got, fails) = (got.clone(), fails.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let Some(head) = read_head(&mut reader) else {
                        return;
                    };
                    let body = read_body(&mut reader, &head, Some(1 << 20)).unwrap_or_default();
                    let path = head.route().to_string();
                    let status = if fails.lock().unwrap().contains(&path) {
                        404
                    } else {
                        got.lock().unwrap().push(Received {
                            path,
                            body: serde_json::from_slice(&body).unwrap_or_default(),
                        });
                        200
                    };
                    let mut stream = stream;
                    let _ = write_response(
                        &mut stream,
                        &serde_json::Value::Null,
                        (status, Vec::new(), b"{}".to_vec()),
                    );
                });
            }
        });
        HttpReceiver {
            url,
            received,
            failing,
        }
    }

    /// Answers 404 (and records nothing) on `path` until [`HttpReceiver::heal`].
    pub fn fail(&self, path: &str) {
        self.failing.lock().unwrap().insert(path.to_string());
    }

    /// Answers every path again.
    pub fn heal(&self) {
        self.failing.lock().unwrap().clear();
    }

    /// What arrived at `path`.
    pub fn at(&self, path: &str) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

const SMTP_SERVER: &str = r#"
import ssl, sys, time, pathlib
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

port, cert, key, out, user, password = sys.argv[1:7]
out = pathlib.Path(out)

class Handler:
    async def handle_DATA(self, server, session, envelope):
        n = len(list(out.iterdir()))
        (out / f"{n}.eml").write_bytes(envelope.original_content)
        return "250 OK"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login.decode() == user and auth_data.password.decode() == password
    return AuthResult(success=ok)

context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
controller = Controller(Handler(), hostname="127.0.0.1", port=int(port), tls_context=context,
    require_starttls=True, auth_require_tls=True, auth_required=True, authenticator=authenticator,
    server_hostname="127.0.0.1")
controller.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;

/// A real SMTP server (aiosmtpd) on 127.0.0.1 that accepts mail only after STARTTLS and
/// AUTH as `user`; its certificate is signed by a CA of its own ([`SmtpServer::ca`]).
pub struct SmtpServer {
    /// Its port.
    pub port: u16,
    /// The CA that signed its certificate, PEM.
    pub ca: PathBuf,
    out: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    /// Starts it, accepting `user` with `password`.
    pub fn start(user: &str, password: &str) -> SmtpServer {
        super::require("openssl");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .current_dir(d)
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=shipit test CA",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "smtp.key",
            "-out",
            "smtp.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(
            d.join("san.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "smtp.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "smtp.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ]);
        let out = d.join("mail");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(d.join("smtp.py"), SMTP_SERVER).unwrap();
        let port = super::free_port();
        let mut child = Command::new("python3")
            .arg(d.join("smtp.py"))
            .arg(port.to_string())
            .arg(d.join("smtp.pem"))
            .arg(d.join("smtp.key"))
            .arg(&out)
            .args([user, password])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("python3 with aiosmtpd: {e}"));
        let mut line = String::new();
        std::io::BufRead::read_line(&mut BufReader::new(child.stdout.take().unwrap()), &mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "the SMTP server did not start (is aiosmtpd installed?)"
        );
        SmtpServer {
            port,
            ca: d.join("ca.pem"),
            out,
            child,
            _dir: dir,
        }
    }

    /// The mails it accepted, as sent.
    pub fn mails(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
