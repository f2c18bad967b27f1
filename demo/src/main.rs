//! demo: a single-binary HTTP service, std only.
//!
//! `demo serve` listens on `$PORT` (default 8080); run bare, it prints its help and exits 0 (as
//! winget's validation expects of a command-line tool). `GET /` and `GET /version` answer with the version,
//! `GET /healthz` with 200. Two fault switches let deploy tests ship a bad version on purpose:
//! `DEMO_FAIL_RATE` (0.0 to 1.0) makes that share of `/` requests answer 500, and
//! `DEMO_UNHEALTHY=1` makes `/healthz` answer 503. Each connection is served on its own thread.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("demo {VERSION}");
        return;
    }
    match args.first().map(String::as_str) {
        Some("serve") => serve(),
        None | Some("--help" | "-h" | "help") => println!("{HELP}"),
        Some(other) => {
            eprintln!("demo: unknown command `{other}`; `demo --help` lists them");
            std::process::exit(2);
        }
    }
}

const HELP: &str = "demo: a tiny HTTP service

USAGE: demo serve       answer HTTP
       demo --version   print the version

ENV: PORT (default 8080), BIND (default 0.0.0.0), DEMO_FAIL_RATE (0.0-1.0),
     DEMO_UNHEALTHY (1: /healthz answers 503)";

/// Answers HTTP until killed.
fn serve() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let bind = std::env::var("BIND").unwrap_or_else(|_| "0.0.0.0".into());
    let fail_rate: f64 = std::env::var("DEMO_FAIL_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let faults = Faults {
        fail_rate,
        unhealthy: std::env::var("DEMO_UNHEALTHY").is_ok_and(|v| v == "1"),
    };
    let listener = match TcpListener::bind(format!("{bind}:{port}")) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("demo: cannot listen on {bind}:{port}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("demo {VERSION} listening on {bind}:{port}");
    let counter = Arc::new(AtomicU64::new(0));
    for stream in listener.incoming().flatten() {
        let counter = counter.clone();
        std::thread::spawn(move || {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let _ = handle(stream, faults, n);
        });
    }
}

/// The fault switches read from the environment.
#[derive(Debug, Clone, Copy, Default)]
struct Faults {
    fail_rate: f64,
    unhealthy: bool,
}

fn handle(mut stream: TcpStream, faults: Faults, n: u64) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = respond(path, faults, n);
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Status and body for a request path. `n` counts requests, spreading failures evenly.
fn respond(path: &str, faults: Faults, n: u64) -> (u16, String) {
    let fail_rate = faults.fail_rate;
    match path {
        "/healthz" if faults.unhealthy => (503, "unhealthy (DEMO_UNHEALTHY=1)\n".into()),
        "/healthz" => (200, "ok\n".into()),
        "/version" => (200, format!("{VERSION}\n")),
        "/" => {
            // Deterministic: request n fails when the running share of failures is below the rate.
            let failing = fail_rate > 0.0
                && ((n + 1) as f64 * fail_rate).floor() > (n as f64 * fail_rate).floor();
            if failing {
                (500, "injected failure\n".into())
            } else {
                (200, format!("demo {VERSION}\n"))
            }
        }
        _ => (404, "not found\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let ok = Faults::default();
        assert_eq!(respond("/healthz", ok, 0).0, 200);
        assert_eq!(respond("/version", ok, 0).1, format!("{VERSION}\n"));
        assert_eq!(respond("/nope", ok, 0).0, 404);
        let sick = Faults {
            unhealthy: true,
            ..ok
        };
        assert_eq!(respond("/healthz", sick, 0).0, 503);
        assert_eq!(respond("/", sick, 0).0, 200);
    }

    #[test]
    fn fail_rate_is_exact_over_many_requests() {
        let faults = |fail_rate| Faults {
            fail_rate,
            unhealthy: false,
        };
        let failures = (0..1000)
            .filter(|n| respond("/", faults(0.1), *n).0 == 500)
            .count();
        assert_eq!(failures, 100);
        assert!((0..100).all(|n| respond("/", faults(0.0), n).0 == 200));
    }
}
