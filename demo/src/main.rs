//! demo: a single-binary HTTP service, std only.
//!
//! `demo serve` listens on `$PORT` (default 8080); run bare, it prints its help and exits 0 (as
//! winget's validation expects of a command-line tool). `GET /` and `GET /version` answer with the version,
//! `GET /healthz` with 200. Two fault switches let deploy tests ship a bad version on purpose:
//! `DEMO_FAIL_RATE` (0.0 to 1.0) makes that share of `/` requests answer 500, and
//! `DEMO_UNHEALTHY=1` makes `/healthz` answer 503. Each connection is served on its own thread.
//!
//! On Unix, SIGHUP re-executes the binary at the path it was started by (a unit's `ExecReload`
//! after `current` moved): it stops accepting, lets the requests in flight finish, and hands the
//! listening socket to the new binary, so connections waiting meanwhile are answered by it.

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
    let listener = match reexec::inherited() {
        Some(listener) => listener,
        None => match TcpListener::bind(format!("{bind}:{port}")) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("demo: cannot listen on {bind}:{port}: {e}");
                std::process::exit(1);
            }
        },
    };
    eprintln!("demo {VERSION} listening on {bind}:{port}");
    reexec::watch(&listener);
    let counter = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(AtomicU64::new(0));
    for stream in listener.incoming().flatten() {
        let counter = counter.clone();
        let busy = in_flight.clone();
        busy.fetch_add(1, Ordering::SeqCst);
        std::thread::spawn(move || {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let _ = handle(stream, faults, n);
            busy.fetch_sub(1, Ordering::SeqCst);
        });
        if reexec::asked() {
            let until = std::time::Instant::now() + Duration::from_secs(10);
            while in_flight.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            reexec::exec(&listener);
        }
    }
}

/// SIGHUP: the same command again, on the same socket.
#[cfg(unix)]
mod reexec {
    use std::net::TcpListener;
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::process::CommandExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// The variable naming the listening socket a re-executed demo takes over.
    const FD: &str = "DEMO_LISTEN_FD";
    const SIGHUP: i32 = 1;
    const F_SETFD: i32 = 2;

    static ASKED: AtomicBool = AtomicBool::new(false);

    extern "C" {
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
        fn fcntl(fd: i32, cmd: i32, arg: i32) -> i32;
    }

    extern "C" fn on_hup(_: i32) {
        ASKED.store(true, Ordering::SeqCst);
    }

    /// The socket handed over by the demo this one replaced.
    pub fn inherited() -> Option<TcpListener> {
        let fd: i32 = std::env::var(FD).ok()?.parse().ok()?;
        std::env::remove_var(FD);
        // SAFETY: the previous demo left exactly this descriptor open for us, a listening socket.
        Some(unsafe { TcpListener::from_raw_fd(fd) })
    }

    /// Catches SIGHUP; a watcher wakes the blocking accept with a connection of its own.
    pub fn watch(listener: &TcpListener) {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { signal(SIGHUP, on_hup) };
        let Ok(addr) = listener.local_addr() else {
            return;
        };
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(20));
            if asked() {
                let _ = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1));
                return;
            }
        });
    }

    pub fn asked() -> bool {
        ASKED.load(Ordering::SeqCst)
    }

    /// Replaces this process with the binary at the path it was started by, keeping the socket.
    pub fn exec(listener: &TcpListener) -> ! {
        let mut args = std::env::args_os();
        let program = args.next().unwrap_or_default();
        let fd = listener.as_raw_fd();
        // SAFETY: clears close-on-exec on a descriptor this process owns.
        unsafe { fcntl(fd, F_SETFD, 0) };
        let error = std::process::Command::new(&program)
            .args(args)
            .env(FD, fd.to_string())
            .exec();
        eprintln!(
            "demo: cannot re-execute {}: {error}",
            program.to_string_lossy()
        );
        std::process::exit(1);
    }
}

#[cfg(not(unix))]
mod reexec {
    use std::net::TcpListener;

    pub fn inherited() -> Option<TcpListener> {
        None
    }
    pub fn watch(_: &TcpListener) {}
    pub fn asked() -> bool {
        false
    }
    pub fn exec(_: &TcpListener) -> ! {
        unreachable!("no SIGHUP here")
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
