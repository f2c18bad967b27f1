//! A fault-injecting HTTP proxy in front of a real server (the test registry): requests are
//! passed through byte for byte (the `Host` header too, so the server's `Location`s name the
//! proxy), except those a rule fails: answered with a status, or cut off mid-body.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What a rule does to a request it matches.
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    /// Answer this status without passing the request on.
    Status(u16),
    /// Read this many bytes of the body, then reset the connection.
    CutAfter(usize),
}

/// Fails requests whose method is `method` and whose path contains `path_has` (and not
/// `path_lacks`), after letting the first `pass` of them through.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Method to match.
    pub method: &'static str,
    /// Text the path must contain.
    pub path_has: &'static str,
    /// Text the path must not contain.
    pub path_lacks: &'static str,
    /// Matching requests let through before failing.
    pub pass: usize,
    /// What happens to the rest.
    pub failure: Failure,
}

#[derive(Default)]
struct State {
    rules: Vec<(Rule, usize)>,
    /// `METHOD path -> status` of every request, `failed` for the ones a rule failed.
    log: Vec<String>,
}

/// The running proxy.
pub struct Proxy {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`host:port`) with `rules`.
    pub fn start(upstream: &str, rules: Vec<Rule>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State {
            rules: rules.into_iter().map(|r| (r, 0)).collect(),
            log: Vec::new(),
        }));
        let upstream = upstream.to_string();
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let upstream = upstream.clone();
                let state = shared.clone();
                std::thread::spawn(move || serve(client, &upstream, &state));
            }
        });
        Proxy { addr, state }
    }

    /// Every request so far: `METHOD path -> status` or `METHOD path -> failed`.
    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    /// Replaces the rules (an empty list passes everything on).
    pub fn set_rules(&self, rules: Vec<Rule>) {
        self.state.lock().unwrap().rules = rules.into_iter().map(|r| (r, 0)).collect();
    }

    /// Requests the rules failed.
    pub fn failed(&self) -> usize {
        self.log().iter().filter(|l| l.ends_with("failed")).count()
    }
}

fn serve(client: TcpStream, upstream: &str, state: &Mutex<State>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut client = client;
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                return;
            }
            let end = line == b"\r\n";
            head.extend_from_slice(&line);
            if end {
                break;
            }
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let mut words = text.split_whitespace();
        let method = words.next().unwrap_or("").to_string();
        let path = words.next().unwrap_or("").to_string();
        let header = |name: &str| {
            text.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        let failure = {
            let mut state = state.lock().unwrap();
            let failure = state.rules.iter_mut().find_map(|(rule, seen)| {
                let matches = method == rule.method
                    && path.contains(rule.path_has)
                    && (rule.path_lacks.is_empty() || !path.contains(rule.path_lacks));
                if !matches {
                    return None;
                }
                *seen += 1;
                (*seen > rule.pass).then_some(rule.failure)
            });
            if failure.is_some() {
                state.log.push(format!("{method} {path} -> failed"));
            }
            failure
        };
        let chunked =
            header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
        let length: usize = header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        if let Some(Failure::CutAfter(after)) = failure {
            let mut part = vec![0u8; after.min(length)];
            let _ = reader.read_exact(&mut part);
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        let Some(body) = read_body(&mut reader, chunked, length) else {
            return;
        };
        if let Some(Failure::Status(status)) = failure {
            let answer = format!(
                "HTTP/1.1 {status} Injected\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}"
            );
            if client.write_all(answer.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        // Pass it on, length-delimited, one request per upstream connection.
        let mut forwarded = String::new();
        for line in text.lines().skip(1) {
            let name = line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if line.is_empty()
                || ["connection", "transfer-encoding", "content-length"].contains(&name.as_str())
            {
                continue;
            }
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
        let request_line = text.lines().next().unwrap_or("");
        let mut upstream_conn = match TcpStream::connect(upstream) {
            Ok(conn) => conn,
            Err(_) => return,
        };
        let outgoing = format!(
            "{request_line}\r\n{forwarded}connection: close\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        if upstream_conn.write_all(outgoing.as_bytes()).is_err()
            || upstream_conn.write_all(&body).is_err()
        {
            return;
        }
        let mut answer = Vec::new();
        if upstream_conn.read_to_end(&mut answer).is_err() {
            return;
        }
        let status = String::from_utf8_lossy(&answer)
            .split_whitespace()
            .nth(1)
            .unwrap_or("?")
            .to_string();
        state
            .lock()
            .unwrap()
            .log
            .push(format!("{method} {path} -> {status}"));
        // The answer says `connection: close`; the client opens a new connection next time.
        let _ = client.write_all(&answer);
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
}

fn read_body(reader: &mut impl BufRead, chunked: bool, length: usize) -> Option<Vec<u8>> {
    if chunked {
        return super::wire::read_chunked(reader, None);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}
