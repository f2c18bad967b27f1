//! Fleet deploys against real parts: three Docker engines (the machine's and two more
//! dockerd, each with its own socket, data root and bridge) behind one real HAProxy, under
//! 250 requests a second. All hosts move, or all hosts are back where they were (exit 4).

use std::process::Command;
use std::time::Duration;

use crate::common::engines::Engine;
use crate::common::load::Load;
use crate::common::text;
use crate::deploy::{Env, IMAGE, RATE, SERIAL, assert_ok, project};

/// The machine's engine and two more, each holding both demo versions.
fn three_hosts() -> (Engine, Engine) {
    project();
    let (second, third) = (Engine::start(), Engine::start());
    for engine in [&second, &third] {
        engine.load(&format!("{IMAGE}:0.1.0"));
        engine.load(&format!("{IMAGE}:0.2.0"));
    }
    (second, third)
}

fn section(strategy: &str, second: &Engine, third: &Engine) -> String {
    format!(
        "strategy = \"{strategy}\"\nreplicas = 1\nbatch = 1\nblue_green = {{ scale_down_delay = \"1s\" }}\n\
         docker = [\"unix:///var/run/docker.sock\", \"{}\", \"{}\"]",
        second.address, third.address
    )
}

/// The environment's containers on `engine` (`docker ps` of its socket), `name state` each.
fn on(engine: Option<&Engine>, env: &Env) -> Vec<String> {
    let filter = format!("label=shipit.env={}", env.name);
    let args = [
        "ps",
        "-a",
        "--filter",
        &filter,
        "--format",
        "{{.Names}} {{.State}}",
    ];
    let out = match engine {
        Some(engine) => engine.docker(&args),
        None => Command::new("docker").args(args).output().unwrap(),
    };
    let mut lines: Vec<String> = text(&out).0.lines().map(String::from).collect();
    lines.sort();
    lines
}

/// The newest record of `env`, from `deploy status --json`.
fn last_record(env: &Env) -> serde_json::Value {
    let out = env
        .shipit(&["deploy", "status", "--env", &env.name, "--json"])
        .output()
        .unwrap();
    assert_ok(&out);
    let state: serde_json::Value = serde_json::from_str(&text(&out).0).unwrap();
    state["records"].as_array().unwrap().last().unwrap().clone()
}

/// A rolling update whose version fails health on the third host: the first two hosts,
/// already moved, are moved back (their old containers started again), exit 4, no request
/// fails, and the record says what was done on each host. Then the fixed version rolls
/// through all three, host by host, losing no request.
#[test]
fn a_version_failing_on_the_third_host_returns_the_first_two_and_exits_4() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (second, third) = three_hosts();
    // On the third host alone, 0.2.0 never turns healthy.
    let broken = Command::new("docker")
        .args(["build", "-q", "-t", "shipit-test-demo-broken:0.2.0", "-"])
        .env("DOCKER_BUILDKIT", "0")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("FROM {IMAGE}:0.2.0\nENV DEMO_UNHEALTHY=1\n").as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(broken.status.success(), "{:?}", text(&broken));
    third.load_as("shipit-test-demo-broken:0.2.0", &format!("{IMAGE}:0.2.0"));
    let env = Env::new("fleet", &section("rolling", &second, &third));
    let health = "health = { interval = \"200ms\", deadline = \"5s\" }";
    let pipeline = project().join(format!("pipelines/deploy-{}.toml", env.name));
    let written = std::fs::read_to_string(&pipeline).unwrap();
    std::fs::write(
        &pipeline,
        written.replace(
            "health = { interval = \"200ms\", deadline = \"20s\" }",
            health,
        ),
    )
    .unwrap();

    assert_ok(&env.deploy("0.1.0"));
    let first = |n: usize| format!("demo-{}-r1-{n} running", env.name);
    assert_eq!(on(None, &env), vec![first(1)]);
    assert_eq!(on(Some(&second), &env), vec![first(2)]);
    assert_eq!(on(Some(&third), &env), vec![first(3)]);

    let load = Load::start(&env.haproxy.frontend, RATE, 5);
    std::thread::sleep(Duration::from_secs(1));
    let out = env.deploy("0.2.0");
    std::thread::sleep(Duration::from_secs(1));
    let tally = load.stop();
    assert_eq!(out.status.code(), Some(4), "{:?}", text(&out));
    assert_eq!(tally.failures(), 0, "{tally:?}");
    assert!(tally.sent >= 250, "{tally:?}");
    // Every host is back on revision 1, its own container started again.
    assert_eq!(on(None, &env), vec![first(1)]);
    assert_eq!(on(Some(&second), &env), vec![first(2)]);
    assert_eq!(on(Some(&third), &env), vec![first(3)]);
    assert!(env.answers(9).iter().all(|a| a == "demo 0.1.0"));
    let record = last_record(&env);
    assert_eq!(record["outcome"], "rolled-back", "{record}");
    let steps: Vec<(String, String)> = record["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["host"].as_str().unwrap().into(),
                s["did"].as_str().unwrap().into(),
            )
        })
        .collect();
    let did = |host: &str, what: &str| steps.iter().any(|(h, d)| h == host && d.starts_with(what));
    let main = "unix:///var/run/docker.sock";
    for (host, n) in [(main, 1), (second.address.as_str(), 2)] {
        assert!(
            did(host, &format!("stopped demo-{}-r1-{n}", env.name)),
            "{steps:?}"
        );
        assert!(
            did(
                host,
                &format!("started demo-{}-r1-{n} (revision 1) again", env.name)
            ),
            "{steps:?}"
        );
        assert!(
            did(host, &format!("removed demo-{}-r2-{n}", env.name)),
            "{steps:?}"
        );
    }
    assert!(
        did(&third.address, &format!("started demo-{}-r2-3", env.name)),
        "{steps:?}"
    );
    assert!(!did(&third.address, "stopped"), "{steps:?}");

    // Fixed: the real 0.2.0 on the third host, and the rollout goes through, host by host.
    third.load(&format!("{IMAGE}:0.2.0"));
    let load = Load::start(&env.haproxy.frontend, RATE, 5);
    std::thread::sleep(Duration::from_secs(1));
    let out = env.deploy("0.2.0");
    std::thread::sleep(Duration::from_secs(1));
    let tally = load.stop();
    assert_ok(&out);
    eprintln!(
        "fleet rolling: {} requests at {:.0}/s, {} failed",
        tally.sent,
        tally.rate(),
        tally.failures()
    );
    assert_eq!(tally.failures(), 0, "{tally:?}");
    let third_revision = |n: usize| format!("demo-{}-r3-{n} running", env.name);
    assert_eq!(on(None, &env), vec![third_revision(1)]);
    assert_eq!(on(Some(&second), &env), vec![third_revision(2)]);
    assert_eq!(on(Some(&third), &env), vec![third_revision(3)]);
    assert!(env.answers(9).iter().all(|a| a == "demo 0.2.0"));
    // Status shows what each host runs.
    let status = env
        .shipit(&["deploy", "status", "--env", &env.name])
        .output()
        .unwrap();
    let shown = text(&status).0;
    for host in [main, &second.address, &third.address] {
        assert!(shown.contains(&format!(" on {host}:")), "{shown}");
    }
}

/// Blue-green across three hosts under load: a full new set, one per host, then the switch;
/// no request fails.
#[test]
fn blue_green_across_three_hosts_loses_no_request() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (second, third) = three_hosts();
    let env = Env::new("fleetbg", &section("blue-green", &second, &third));
    assert_ok(&env.deploy("0.1.0"));
    let load = Load::start(&env.haproxy.frontend, RATE, 5);
    std::thread::sleep(Duration::from_secs(1));
    let out = env.deploy("0.2.0");
    std::thread::sleep(Duration::from_secs(1));
    let tally = load.stop();
    assert_ok(&out);
    eprintln!(
        "fleet blue-green: {} requests at {:.0}/s, {} failed",
        tally.sent,
        tally.rate(),
        tally.failures()
    );
    assert_eq!(tally.failures(), 0, "{tally:?}");
    assert!(tally.sent >= 250, "{tally:?}");
    let second_revision = |n: usize| format!("demo-{}-r2-{n} running", env.name);
    assert_eq!(on(None, &env), vec![second_revision(1)]);
    assert_eq!(on(Some(&second), &env), vec![second_revision(2)]);
    assert_eq!(on(Some(&third), &env), vec![second_revision(3)]);
}
