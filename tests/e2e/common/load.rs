//! A load generator: threads sending `GET /` to an address at a steady rate, each on a new
//! connection, counting answers by status and body, and connection errors.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the load saw.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Requests sent.
    pub sent: u64,
    /// 200 answers, by body.
    pub ok: BTreeMap<String, u64>,
    /// Other statuses, by status line.
    pub failed: BTreeMap<String, u64>,
    /// Connections refused, reset or timed out.
    pub connection_errors: u64,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Tally {
    /// Failed answers and connection errors.
    pub fn failures(&self) -> u64 {
        self.failed.values().sum::<u64>() + self.connection_errors
    }

    /// Requests per second achieved.
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(0.001)
    }
}

/// Running load; [`Load::stop`] ends it and returns the tally.
pub struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    threads: Vec<JoinHandle<()>>,
    started: Instant,
}

impl Load {
    /// `rate` requests per second to `address`, spread over `threads` threads.
    pub fn start(address: &str, rate: u32, threads: u32) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let every = Duration::from_secs_f64(threads as f64 / rate as f64);
        let handles = (0..threads)
            .map(|i| {
                let (stop, tally, address) = (stop.clone(), tally.clone(), address.to_string());
                std::thread::spawn(move || {
                    let mut next = Instant::now() + every.mul_f64(i as f64 / threads as f64);
                    while !stop.load(Ordering::Relaxed) {
                        let now = Instant::now();
                        if next > now {
                            std::thread::sleep(next - now);
                        }
                        next += every;
                        let result = get(&address);
                        let mut t = tally.lock().unwrap();
                        t.sent += 1;
                        match result {
                            Ok((status, body)) if status.contains(" 200 ") => {
                                *t.ok.entry(body.trim().to_string()).or_default() += 1;
                            }
                            Ok((status, _)) => *t.failed.entry(status).or_default() += 1,
                            Err(_) => t.connection_errors += 1,
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            tally,
            threads: handles,
            started: Instant::now(),
        }
    }

    /// What it saw so far.
    pub fn snapshot(&self) -> Tally {
        let mut t = self.tally.lock().unwrap().clone();
        t.elapsed = self.started.elapsed();
        t
    }

    /// Stops and returns the tally.
    pub fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        let mut t = self.tally.lock().unwrap().clone();
        t.elapsed = self.started.elapsed();
        t
    }
}

/// One `GET /` on a new connection: the status line and the body.
pub fn get(address: &str) -> std::io::Result<(String, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer.lines().next().unwrap_or_default().to_string();
    if status.is_empty() {
        return Err(std::io::Error::other("empty answer"));
    }
    let body = answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    Ok((status, body))
}
