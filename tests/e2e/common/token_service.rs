//! A Docker token service (the `realm` of a Bearer challenge) for the test registry: it
//! checks Basic credentials and answers with a JWT the registry verifies against the
//! certificate in its `rootcertbundle`, signed RS256 with `openssl`. Every request is recorded.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::registry::{PASSWORD, USER};

/// The Docker identity (OAuth2 refresh) token the service accepts for [`USER`].
pub const IDENTITY_TOKEN: &str = "identity-refresh-7d1e0c5b";
use super::require;

/// The `iss` of every token.
pub const ISSUER: &str = "shipit-test-issuer";

/// A token request as received.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// `service` parameter.
    pub service: String,
    /// `scope` parameters.
    pub scopes: Vec<String>,
    /// Whether it carried the right Basic credentials (or refresh token).
    pub authenticated: bool,
    /// An OAuth2 refresh grant (POST) rather than a Basic-authenticated GET.
    pub oauth: bool,
}

/// The service; runs until the test process ends.
pub struct TokenService {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The certificate tokens are signed for (the registry's `rootcertbundle`).
    pub certificate: PathBuf,
    /// Requests so far.
    pub requests: Arc<Mutex<Vec<TokenRequest>>>,
}

impl TokenService {
    /// Makes a key and certificate in `dir` and starts serving.
    pub fn start(dir: &Path) -> TokenService {
        require("openssl");
        let key = dir.join("token.key");
        let certificate = dir.join("token.crt");
        let ok = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=shipit-test-tokens",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&certificate)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&certificate)
            .output()
            .unwrap()
            .stdout;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let dir = dir.to_path_buf();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &dir, &key, &der, &seen);
            }
        });
        TokenService {
            url,
            certificate,
            requests,
        }
    }
}

fn answer(
    mut stream: std::net::TcpStream,
    dir: &Path,
    key: &Path,
    der: &[u8],
    seen: &Mutex<Vec<TokenRequest>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let mut authorization = String::new();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = value.trim().to_string();
            } else if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    // An OAuth2 refresh grant (a Docker identity token) comes as a form in a POST body.
    let mut form = vec![0u8; length];
    std::io::Read::read_exact(&mut reader, &mut form)?;
    let form = String::from_utf8_lossy(&form).into_owned();
    let oauth = line.starts_with("POST ");
    let query = if oauth {
        form.as_str()
    } else {
        target.split_once('?').map(|(_, q)| q).unwrap_or_default()
    };
    let mut service = String::new();
    let mut scopes = Vec::new();
    let mut refresh = String::new();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "service" => service = v,
            // The form joins scopes with spaces; the query repeats `scope`.
            "scope" => scopes.extend(v.split(' ').filter(|s| !s.is_empty()).map(String::from)),
            "refresh_token" => refresh = v,
            _ => {}
        }
    }
    let expected = format!("Basic {}", STANDARD.encode(format!("{USER}:{PASSWORD}")));
    let authenticated = if oauth {
        refresh == IDENTITY_TOKEN
    } else {
        authorization == expected
    };
    seen.lock().unwrap().push(TokenRequest {
        service: service.clone(),
        scopes: scopes.clone(),
        authenticated,
        oauth,
    });
    let (status, body) = if authenticated {
        let token = sign(dir, key, der, &service, &scopes);
        let field = if oauth { "access_token" } else { "token" };
        (
            "200 OK",
            format!(r#"{{"{field}":"{token}","expires_in":300}}"#),
        )
    } else {
        (
            "401 Unauthorized",
            r#"{"details":"incorrect username or password"}"#.to_string(),
        )
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A JWT granting every action asked for in `scopes`.
fn sign(dir: &Path, key: &Path, der: &[u8], service: &str, scopes: &[String]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .flat_map(|s| s.split(' '))
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({ "type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>() }))
        })
        .collect();
    let header = serde_json::json!({ "typ": "JWT", "alg": "RS256", "x5c": [STANDARD.encode(der)] });
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": USER, "aud": service, "exp": now + 300, "nbf": now - 10,
        "iat": now, "jti": format!("{now}-{}", access.len()), "access": access,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let file = tempfile::NamedTempFile::new_in(dir).unwrap();
    std::fs::write(file.path(), &input).unwrap();
    let signature = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .arg(file.path())
        .output()
        .unwrap();
    assert!(signature.status.success());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.stdout))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("20");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b' '));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
