//! Deploys against real parts: dockerd runs the demo (images built `FROM scratch` from the
//! static build), a real HAProxy routes, and a load generator in the test sends 250 requests a
//! second through HAProxy while shipit switches, rolls, canaries and rolls back.

use std::io::{BufRead, BufReader};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::common::haproxy::Haproxy;
use crate::common::load::{self, Load};
use crate::common::registry::require_docker;
use crate::common::{demo_copy, demo_target_dir, git, shipit, text};

/// Requests per second of the load.
pub(crate) const RATE: u32 = 250;
/// The image every test deploys, tagged 0.1.0 and 0.2.0.
pub(crate) const IMAGE: &str = "shipit-test-demo";

/// Deploy tests run one at a time: each puts steady load on a 2-core machine.
pub(crate) static SERIAL: Mutex<()> = Mutex::new(());

/// The demo project (with its build at 0.1.0), where the deploy pipelines are written; the
/// images `shipit-test-demo:0.1.0` and `:0.2.0` exist in the engine.
pub(crate) fn project() -> &'static Path {
    static PROJECT: OnceLock<PathBuf> = OnceLock::new();
    PROJECT.get_or_init(|| {
        require_docker();
        let mut dirs = Vec::new();
        for version in ["0.1.0", "0.2.0"] {
            let dir = demo_copy().keep();
            let manifest = dir.join("demo/Cargo.toml");
            let text_now = std::fs::read_to_string(&manifest).unwrap();
            std::fs::write(&manifest, text_now.replace("version = \"0.1.0\"", &format!("version = \"{version}\""))).unwrap();
            std::fs::write(
                dir.join("pipelines/build.toml"),
                "version = 1\n[project]\nname = \"demo\"\ncargo = \"../demo/Cargo.toml\"\ndist = \"../dist\"\n\n\
                 [stages.build]\nuses = \"cargo\"\ntargets = [\"linux-x64-musl\"]\nprofile = \"release\"\nlocked = false\n",
            )
            .unwrap();
            git(&dir, &["init", "-q", "-b", "main"]);
            git(&dir, &["add", "."]);
            git(&dir, &["commit", "-qm", "demo"]);
            let out = shipit(&dir)
                .args(["build", "--pipeline", "pipelines/build.toml"])
                .env("CARGO_TARGET_DIR", demo_target_dir(version))
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
            let context = dir.join("dist/linux-x64-musl");
            std::fs::write(context.join("Dockerfile"), "FROM scratch\nCOPY demo /demo\nENTRYPOINT [\"/demo\"]\nCMD [\"serve\"]\n").unwrap();
            let build = Command::new("docker")
                .args(["build", "-q", "-t", &format!("{IMAGE}:{version}")])
                .arg(&context)
                .env("DOCKER_BUILDKIT", "0")
                .output()
                .unwrap();
            assert!(build.status.success(), "{:?}", text(&build));
            dirs.push(dir);
        }
        dirs.swap_remove(0)
    })
}

/// An environment of the demo: its pipeline, HAProxy, and cleanup of its containers, records
/// and lock when the test ends.
pub(crate) struct Env {
    pub(crate) name: String,
    pipeline: String,
    pub(crate) haproxy: Haproxy,
}

impl Env {
    pub(crate) fn new(prefix: &str, section: &str) -> Env {
        let name = format!("{prefix}{}", std::process::id());
        let haproxy = Haproxy::start();
        let pipeline = format!("pipelines/deploy-{name}.toml");
        std::fs::write(
            project().join(&pipeline),
            format!(
                "version = 1\n[project]\nname = \"demo\"\ncargo = \"../demo/Cargo.toml\"\ndist = \"../dist\"\n\n\
                 [deploy.{name}]\nimage = \"{IMAGE}:{{{{ version }}}}\"\nport = 8080\n\
                 router = {{ haproxy = \"{}\", backend = \"demo\" }}\n\
                 health = {{ interval = \"200ms\", deadline = \"20s\" }}\ndrain_timeout = \"5s\"\n{section}\n",
                haproxy.api()
            ),
        )
        .unwrap();
        Env {
            name,
            pipeline,
            haproxy,
        }
    }

    pub(crate) fn shipit(&self, args: &[&str]) -> Command {
        let mut command = shipit(project());
        command.args(args).args(["--pipeline", &self.pipeline]);
        command
    }

    pub(crate) fn deploy(&self, version: &str) -> Output {
        self.shipit(&["deploy", "--env", &self.name, "--version", version])
            .output()
            .unwrap()
    }

    /// Names of the environment's service containers (any state).
    fn containers(&self) -> Vec<String> {
        let out = Command::new("docker")
            .args([
                "ps",
                "-a",
                "--format",
                "{{.Names}}",
                "--filter",
                "label=shipit.kind=service",
            ])
            .arg("--filter")
            .arg(format!("label=shipit.env={}", self.name))
            .output()
            .unwrap();
        let mut names: Vec<String> = text(&out).0.lines().map(String::from).collect();
        names.sort();
        names
    }

    /// Bodies of `n` requests through HAProxy.
    pub(crate) fn answers(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                load::get(&self.haproxy.frontend)
                    .map(|(_, b)| b.trim().to_string())
                    .unwrap_or_default()
            })
            .collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let filter = format!("label=shipit.env={}", self.name);
        let ids = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
            .unwrap();
        for id in text(&ids).0.lines() {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
        let volumes = Command::new("docker")
            .args(["volume", "ls", "-q", "--filter", &filter])
            .output()
            .unwrap();
        for v in text(&volumes).0.lines() {
            let _ = Command::new("docker").args(["volume", "rm", v]).output();
        }
        let _ = std::fs::remove_file(project().join(&self.pipeline));
    }
}

pub(crate) fn assert_ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{:?}", text(out));
}

/// Runs `command`, reading stderr as it comes: each line with when it arrived. `signal_on`:
/// a line at which the process gets a signal (SIGKILL ends the reading there).
fn streamed(
    command: Command,
    signal_on: Option<(&str, Signal)>,
) -> (Option<i32>, Vec<(Instant, String)>) {
    let mut timed = Vec::new();
    let (code, _) = watched_until(command, |line, pid| {
        timed.push((Instant::now(), line.to_string()));
        match signal_on.filter(|(text, _)| line.contains(text)) {
            Some((_, signal)) => {
                kill(Pid::from_raw(pid as i32), signal).unwrap();
                signal == Signal::SIGKILL
            }
            None => false,
        }
    });
    (code, timed)
}

/// Runs `command`, calling `on_line` with each stderr line as it comes; its exit code and lines.
fn watched(command: Command, mut on_line: impl FnMut(&str)) -> (Option<i32>, Vec<String>) {
    watched_until(command, |line, _| {
        on_line(line);
        false
    })
}

/// Runs `command`, calling `on_line` with each stderr line and the process id; reading stops
/// when it returns true. The exit code and the lines read.
fn watched_until(
    mut command: Command,
    mut on_line: impl FnMut(&str, u32) -> bool,
) -> (Option<i32>, Vec<String>) {
    let mut child = command
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let stop = on_line(&line, child.id());
        lines.push(line);
        if stop {
            break;
        }
    }
    (child.wait().unwrap().code(), lines)
}

#[test]
fn blue_green_then_rollback_under_load_lose_no_request() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new(
        "bg",
        "strategy = \"blue-green\"\nreplicas = 2\nblue_green = { scale_down_delay = \"2s\" }",
    );
    assert_ok(&env.deploy("0.1.0"));
    assert!(env.answers(4).iter().all(|a| a == "demo 0.1.0"));

    let load = Load::start(&env.haproxy.frontend, RATE, 5);
    std::thread::sleep(Duration::from_secs(1));
    assert_ok(&env.deploy("0.2.0"));
    std::thread::sleep(Duration::from_secs(1));
    let switched = load.snapshot();
    let rollback = env
        .shipit(&["rollback", "--env", &env.name])
        .output()
        .unwrap();
    assert_ok(&rollback);
    std::thread::sleep(Duration::from_secs(1));
    let tally = load.stop();
    eprintln!(
        "blue-green + rollback: {} requests at {:.0}/s, {} failed",
        tally.sent,
        tally.rate(),
        tally.failures()
    );

    assert_eq!(tally.failures(), 0, "{tally:?}");
    // Enough requests crossed the switch for "none lost" to mean something (a count, not a
    // rate: two loaded cores slow the generator, not the promise).
    assert!(tally.sent >= 250, "{tally:?}");
    assert!(
        switched.ok.get("demo 0.2.0").is_some_and(|n| *n > 50),
        "{switched:?}"
    );
    assert!(env.answers(10).iter().all(|a| a == "demo 0.1.0"));
    assert_eq!(env.containers().len(), 2, "{:?}", env.containers());

    let status = env
        .shipit(&["deploy", "status", "--env", &env.name])
        .output()
        .unwrap();
    let (stdout, _) = text(&status);
    assert!(stdout.contains("promoted"), "{stdout}");
    // Revision 1's containers were gone (blue-green removed them), so 0.1.0 ran again.
    assert!(stdout.contains("rollback to revision 1"), "{stdout}");

    // Any recorded revision can be asked for.
    let to = env
        .shipit(&["rollback", "--env", &env.name, "--to", "2"])
        .output()
        .unwrap();
    assert_ok(&to);
    assert!(env.answers(6).iter().all(|a| a == "demo 0.2.0"));
    let missing = env
        .shipit(&["rollback", "--env", &env.name, "--to", "99"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing).1.contains("there is no revision 99"),
        "{:?}",
        text(&missing)
    );
}

#[test]
fn a_rolling_update_of_three_replicas_under_load_loses_no_request() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new(
        "roll",
        "strategy = \"rolling\"\nreplicas = 3\nrolling = { max_surge = 1, max_unavailable = 0, pause = \"1s\" }",
    );
    assert_ok(&env.deploy("0.1.0"));
    let load = Load::start(&env.haproxy.frontend, RATE, 5);
    std::thread::sleep(Duration::from_secs(1));
    let out = env.deploy("0.2.0");
    std::thread::sleep(Duration::from_secs(1));
    let tally = load.stop();
    assert_ok(&out);
    eprintln!(
        "rolling: {} requests at {:.0}/s, {} failed",
        tally.sent,
        tally.rate(),
        tally.failures()
    );
    assert_eq!(tally.failures(), 0, "{tally:?}");
    // Enough requests crossed the switch for "none lost" to mean something (a count, not a
    // rate: two loaded cores slow the generator, not the promise).
    assert!(tally.sent >= 250, "{tally:?}");
    assert_eq!(
        env.containers(),
        (1..=3)
            .map(|i| format!("demo-{}-r2-{i}", env.name))
            .collect::<Vec<_>>()
    );
    assert!(env.answers(9).iter().all(|a| a == "demo 0.2.0"));
}

/// A canary whose new version fails 30% of requests, with a 1 s analysis that trips on two
/// bad samples in a row.
fn failing_canary(name: &str) -> Env {
    let env = Env::new(
        name,
        "strategy = \"canary\"\nreplicas = 2\ncanary = { steps = [10, 50, 100], pause = \"20s\" }\n\
         analysis = { interval = \"1s\", failure_limit = 2, max_error_rate = 0.05, min_requests = 5 }\n\
         env = { DEMO_FAIL_RATE = \"{% if version == '0.2.0' %}0.3{% else %}0{% endif %}\" }",
    );
    assert_ok(&env.deploy("0.1.0"));
    env
}

/// Time from giving the canary traffic to deciding to roll back, in `lines`.
fn detection_time(lines: &[(Instant, String)]) -> Duration {
    let at = |needle: &str| {
        lines
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(t, _)| *t)
            .unwrap_or_else(|| panic!("no `{needle}` in {lines:#?}"))
    };
    at("rolling back revision 2: the analysis failed") - at("routing 10% of requests")
}

#[test]
fn a_canary_with_errors_is_rolled_back_within_the_detection_time() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = failing_canary("canary");
    let plan = env
        .shipit(&[
            "deploy",
            "--env",
            &env.name,
            "--version",
            "0.2.0",
            "--dry-run",
        ])
        .output()
        .unwrap();
    assert!(
        text(&plan)
            .1
            .contains("a bad version is rolled back within 3s"),
        "{:?}",
        text(&plan)
    );

    let load = Load::start(&env.haproxy.frontend, RATE, 5);
    std::thread::sleep(Duration::from_secs(1));
    let (code, lines) = streamed(
        env.shipit(&["deploy", "--env", &env.name, "--version", "0.2.0"]),
        None,
    );
    std::thread::sleep(Duration::from_millis(500));
    let tally = load.stop();
    let log: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(code, Some(4), "{log:#?}");
    // The decision, from what was measured (no clock: two loaded cores stretch any window):
    // the rollback came on the `failure_limit` (2) failed samples in a row, at most one sample
    // before them was taken, so the worst case `interval × (failure_limit + 1)` holds whatever
    // the machine's speed. `scripts/bench-canary` measures the time itself.
    let measured: Vec<&str> = log
        .iter()
        .copied()
        .filter(|l| l.contains("measured:"))
        .collect();
    assert!(
        (2..=3).contains(&measured.len()),
        "samples before the rollback: {log:#?}"
    );
    assert!(
        measured[measured.len() - 2..]
            .iter()
            .all(|l| l.contains("requests failed")),
        "the last two samples must be the failed ones: {measured:#?}"
    );
    // What `scripts/bench-canary` collects over several runs.
    eprintln!(
        "canary rolled back {:.3} s after its first traffic",
        detection_time(&lines).as_secs_f64()
    );
    assert!(!log.iter().any(|l| l.contains("routing 50%")), "{log:#?}");
    let failed = tally.failures() as f64 / tally.sent as f64;
    eprintln!(
        "canary: {} of {} requests failed ({:.2}%)",
        tally.failures(),
        tally.sent,
        100.0 * failed
    );
    assert!(failed > 0.0 && failed < 0.05, "{failed} of {tally:?}");
    assert!(env.answers(10).iter().all(|a| a == "demo 0.1.0"));
    assert!(
        env.containers().iter().all(|c| c.contains("-r1-")),
        "{:?}",
        env.containers()
    );
    let servers = env.haproxy.command("show servers state demo");
    assert!(!servers.contains("-r2-"), "{servers}");
}

#[test]
fn a_healthy_canary_is_promoted_step_by_step_under_load_losing_no_request() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new(
        "promote",
        "strategy = \"canary\"\nreplicas = 2\ncanary = { steps = [10, 50, 100], pause = \"2s\" }\n\
         analysis = { interval = \"1s\", failure_limit = 2, max_error_rate = 0.05, min_requests = 5 }",
    );
    assert_ok(&env.deploy("0.1.0"));
    let load = Load::start(&env.haproxy.frontend, RATE, 5);
    std::thread::sleep(Duration::from_secs(1));
    // With --json: typed events for each step and each analysis sample.
    let out = env
        .shipit(&["deploy", "--env", &env.name, "--version", "0.2.0", "--json"])
        .output()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let tally = load.stop();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let phases: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "deploy_phase")
        .map(|e| e["phase"].as_str().unwrap())
        .collect();
    let step = |p: u32| {
        phases
            .iter()
            .position(|l| l.contains(&format!("route {p}% of requests")))
            .unwrap_or_else(|| panic!("no {p}% step: {phases:#?}"))
    };
    assert!(step(10) < step(50) && step(50) < step(100), "{phases:#?}");
    let samples: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "deploy_sample")
        .collect();
    assert!(
        samples
            .iter()
            .any(|s| s["requests"].as_u64() > Some(0) && s["failure"].is_null()),
        "{samples:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "deploy_finished" && e["result"]["outcome"] == "promoted"),
        "{events:#?}"
    );
    eprintln!(
        "canary promoted: {} requests at {:.0}/s, {} failed",
        tally.sent,
        tally.rate(),
        tally.failures()
    );
    assert_eq!(tally.failures(), 0, "{tally:?}");
    // Both versions served while the canary ran; only the new one is left.
    assert!(
        tally.ok.contains_key("demo 0.1.0") && tally.ok.contains_key("demo 0.2.0"),
        "{tally:?}"
    );
    assert!(env.answers(10).iter().all(|a| a == "demo 0.2.0"));
    assert!(
        env.containers().iter().all(|c| c.contains("-r2-")),
        "{:?}",
        env.containers()
    );
}

#[test]
fn a_version_that_never_turns_healthy_never_gets_traffic() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new(
        "sick",
        "strategy = \"blue-green\"\nreplicas = 2\n\
         env = { DEMO_UNHEALTHY = \"{% if version == '0.2.0' %}1{% else %}0{% endif %}\" }",
    );
    assert_ok(&env.deploy("0.1.0"));
    let load = Load::start(&env.haproxy.frontend, RATE, 5);
    let out = env.deploy("0.2.0");
    let tally = load.stop();
    assert_eq!(out.status.code(), Some(4), "{:?}", text(&out));
    assert!(
        text(&out).1.contains("/healthz answered 503"),
        "{:?}",
        text(&out)
    );
    assert_eq!(tally.failures(), 0, "{tally:?}");
    assert_eq!(
        tally.ok.keys().collect::<Vec<_>>(),
        ["demo 0.1.0"],
        "{tally:?}"
    );
    assert!(
        env.containers().iter().all(|c| c.contains("-r1-")),
        "{:?}",
        env.containers()
    );
}

#[test]
fn a_deploy_killed_half_way_is_seen_by_status_and_undone_by_rollback() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new(
        "kill",
        "strategy = \"canary\"\nreplicas = 2\ncanary = { steps = [10, 100], pause = \"60s\" }",
    );
    assert_ok(&env.deploy("0.1.0"));
    let load = Load::start(&env.haproxy.frontend, RATE, 5);
    let (code, lines) = streamed(
        env.shipit(&["deploy", "--env", &env.name, "--version", "0.2.0"]),
        Some(("routing 10% of requests", Signal::SIGKILL)),
    );
    assert_eq!(code, None, "{lines:?}");

    let status = env
        .shipit(&["deploy", "status", "--env", &env.name])
        .output()
        .unwrap();
    let (stdout, _) = text(&status);
    assert!(
        stdout.contains(&format!("demo-{}-r2-1", env.name)),
        "{stdout}"
    );
    // A second deploy refuses to build on a half-finished one.
    let again = env.deploy("0.2.0");
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again).1.contains("run `shipit rollback"),
        "{:?}",
        text(&again)
    );
    // The killed run's lock was taken over: its process is gone.
    assert!(
        text(&again).1.contains("taking over a stale deploy lock"),
        "{:?}",
        text(&again)
    );

    let rollback = env
        .shipit(&["rollback", "--env", &env.name])
        .output()
        .unwrap();
    assert_ok(&rollback);
    assert!(
        text(&rollback)
            .1
            .contains("revision 1 (0.1.0) is still running"),
        "{:?}",
        text(&rollback)
    );
    std::thread::sleep(Duration::from_millis(500));
    let tally = load.stop();
    assert_eq!(tally.failures(), 0, "{tally:?}");
    assert!(
        env.containers().iter().all(|c| c.contains("-r1-")),
        "{:?}",
        env.containers()
    );
    assert_eq!(env.containers().len(), 2);
    assert!(env.answers(10).iter().all(|a| a == "demo 0.1.0"));
    let servers = env.haproxy.command("show servers state demo");
    assert!(!servers.contains("-r2-"), "{servers}");

    // Ctrl-C / SIGTERM instead: shipit undoes the rollout itself and exits 130.
    let load = Load::start(&env.haproxy.frontend, RATE, 5);
    let (code, lines) = streamed(
        env.shipit(&["deploy", "--env", &env.name, "--version", "0.2.0"]),
        Some(("routing 10% of requests", Signal::SIGTERM)),
    );
    let tally = load.stop();
    assert_eq!(code, Some(130), "{lines:?}");
    assert_eq!(tally.failures(), 0, "{tally:?}");
    assert!(
        env.containers().iter().all(|c| c.contains("-r1-")),
        "{:?}",
        env.containers()
    );
    assert!(env.answers(10).iter().all(|a| a == "demo 0.1.0"));
}

#[test]
fn the_starter_haproxy_config_is_valid_and_a_held_lock_is_named() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new("lock", "strategy = \"blue-green\"\nreplicas = 1");
    let init = env
        .shipit(&["deploy", "--init", "--env", &env.name])
        .output()
        .unwrap();
    assert_ok(&init);
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        text(&init).0.replace("bind :80", "bind 127.0.0.1:18099"),
    )
    .unwrap();
    let check = Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(config.path())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{:?}\n{}",
        text(&check),
        text(&init).0
    );

    // A lock held by a live process (this test) is reported, and nothing is started.
    let lock = Command::new("docker")
        .args([
            "create",
            "--name",
            &format!("shipit-lock-demo-{}", env.name),
        ])
        .args([
            "--label",
            "shipit.app=demo",
            "--label",
            &format!("shipit.env={}", env.name),
        ])
        .args([
            "--label",
            "shipit.kind=lock",
            "--label",
            "shipit.by=alice@elsewhere",
        ])
        .args(["--label", &format!("shipit.pid={}", std::process::id())])
        .args(["--label", &format!("shipit.host={}", nix_hostname())])
        .args(["--label", "shipit.started=2026-11-23T10:00:00Z"])
        .arg(format!("{IMAGE}:0.1.0"))
        .output()
        .unwrap();
    assert!(lock.status.success(), "{:?}", text(&lock));
    let out = env.deploy("0.1.0");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out).1;
    assert!(
        stderr.contains(&format!(
            "another deploy of demo to {} holds the lock on ",
            env.name
        )) && stderr.contains(": alice@elsewhere on ")
            && stderr.contains(&format!(
                "pid {}, since 2026-11-23T10:00:00Z",
                std::process::id()
            )),
        "{stderr}"
    );
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}

fn nix_hostname() -> String {
    let out = Command::new("hostname").output().unwrap();
    text(&out).0.trim().to_string()
}

#[test]
fn a_blue_green_preview_shows_the_new_color_before_the_switch() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new(
        "preview",
        "strategy = \"blue-green\"\nreplicas = 1\n\
         blue_green = { scale_down_delay = \"1s\", preview_backend = \"demo_preview\", preview = \"3s\" }",
    );
    assert_ok(&env.deploy("0.1.0"));
    let mut seen = None;
    let command = env.shipit(&["deploy", "--env", &env.name, "--version", "0.2.0"]);
    let (code, log) = watched(command, |line| {
        if line.contains("on the preview backend for") {
            let preview = load::get(&env.haproxy.preview).map(|(_, b)| b.trim().to_string());
            seen = Some((preview.unwrap_or_default(), env.answers(4)));
        }
    });
    assert_eq!(code, Some(0), "{log:#?}");
    let (preview, live) = seen.unwrap_or_else(|| panic!("no preview in {log:#?}"));
    assert_eq!(preview, "demo 0.2.0");
    assert!(live.iter().all(|a| a == "demo 0.1.0"), "{live:?}");
    assert!(env.answers(4).iter().all(|a| a == "demo 0.2.0"));
    let servers = env.haproxy.command("show servers state demo_preview");
    assert!(!servers.contains("-r2-"), "{servers}");
}

/// Trust class 7: the router dies half-way through a rollout. The new containers are removed
/// anyway (the undo goes on past the router's errors), the attempt is recorded as failed, the
/// lock is released, and the exit code is 1.
#[test]
fn a_router_failing_mid_rollout_is_undone_recorded_and_exits_1() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut env = Env::new("midfail", "strategy = \"blue-green\"\nreplicas = 2");
    assert_ok(&env.deploy("0.1.0"));
    let command = env.shipit(&["deploy", "--env", &env.name, "--version", "0.2.0"]);
    let (code, lines) = watched(command, |line| {
        if line.contains("as revision 2") {
            env.haproxy.kill();
        }
    });
    let all = lines.join("\n");
    assert_eq!(code, Some(1), "{all}");
    assert!(all.contains("failed half-way"), "{all}");
    assert!(
        env.containers().iter().all(|c| c.contains("-r1-")),
        "revision 2 left running: {:?}\n{all}",
        env.containers()
    );
    let records = Command::new("docker")
        .args([
            "volume",
            "ls",
            "--format",
            "{{.Labels}}",
            "--filter",
            "label=shipit.kind=record",
        ])
        .arg("--filter")
        .arg(format!("label=shipit.env={}", env.name))
        .output()
        .unwrap();
    assert!(
        text(&records).0.contains("shipit.outcome=failed"),
        "no failed record: {:?}",
        text(&records)
    );
    let lock = Command::new("docker")
        .args(["ps", "-aq", "--filter"])
        .arg(format!("name=shipit-lock-demo-{}", env.name))
        .output()
        .unwrap();
    assert!(text(&lock).0.trim().is_empty(), "the lock was left held");
}
