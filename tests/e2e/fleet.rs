//! Fleet deploys against real parts: three Docker engines (the machine's and two more
//! dockerd, each with its own socket, data root and bridge) behind one real HAProxy, under
//! 250 requests a second. All hosts move, or all hosts are back where they were (exit 4).

use std::process::Command;
use std::time::Duration;

use crate::common::engines::Engine;
use crate::common::load::{Load, Tally};
use crate::common::pushgateway::Pushgateway;
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

/// A section on the three hosts; each rolling batch takes traffic under the analysis for
/// `pause`.
fn section(strategy: &str, second: &Engine, third: &Engine, pause: &str) -> String {
    format!(
        "strategy = \"{strategy}\"\nreplicas = 1\nbatch = 1\nblue_green = {{ scale_down_delay = \"1s\" }}\n\
         rolling = {{ pause = \"{pause}\" }}\n\
         docker = [\"unix:///var/run/docker.sock\", \"{}\", \"{}\"]",
        second.address, third.address
    )
}

/// Deploys `version` while 250 requests a second go through the router, from a second
/// before to a second after: the deploy's output and what the load saw.
fn under_load(env: &Env, version: &str) -> (std::process::Output, Tally) {
    let load = Load::start(&env.haproxy.frontend, RATE, 5);
    std::thread::sleep(Duration::from_secs(1));
    let out = env.deploy(version);
    std::thread::sleep(Duration::from_secs(1));
    (out, load.stop())
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
    let gateway = Pushgateway::start();
    let env = Env::new("fleet", &section("rolling", &second, &third, "1s"));
    let health = format!(
        "health = {{ interval = \"200ms\", deadline = \"5s\" }}\nmetrics = {{ pushgateway = \"{}\" }}",
        gateway.url
    );
    let pipeline = project().join(format!("pipelines/deploy-{}.toml", env.name));
    let written = std::fs::read_to_string(&pipeline).unwrap();
    std::fs::write(
        &pipeline,
        written.replace(
            "health = { interval = \"200ms\", deadline = \"20s\" }",
            &health,
        ),
    )
    .unwrap();

    assert_ok(&env.deploy("0.1.0"));
    let first = |n: usize| format!("demo-{}-r1-{n} running", env.name);
    assert_eq!(on(None, &env), vec![first(1)]);
    assert_eq!(on(Some(&second), &env), vec![first(2)]);
    assert_eq!(on(Some(&third), &env), vec![first(3)]);

    let (out, tally) = under_load(&env, "0.2.0");
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
    // The metrics of the rolled-back attempt: promtool accepts the file, the Pushgateway
    // serves it, and it says what happened.
    let file = project().join(format!("dist/deploy/{}.prom", env.name));
    let metrics = std::fs::read_to_string(&file).unwrap();
    promtool_accepts(&metrics);
    let of = format!("app=\"demo\",env=\"{}\"", env.name);
    assert!(
        metrics.contains(&format!("shipit_deploy_rolled_back{{{of}}} 1\n")),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("shipit_deploy_failed_requests{{{of}}} 0\n")),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "shipit_deploy_info{{{of},version=\"0.2.0\",revision=\"2\",outcome=\"rolled-back\"}} 1"
        )),
        "{metrics}"
    );
    let served = gateway.metrics().unwrap();
    assert!(served.contains("shipit_deploy_rolled_back{"), "{served}");
    assert!(
        served.contains(&format!("env=\"{}\"", env.name)),
        "{served}"
    );
    assert!(served.contains("job=\"shipit\""), "{served}");

    // Fixed: the real 0.2.0 on the third host, and the rollout goes through, host by host.
    third.load(&format!("{IMAGE}:0.2.0"));
    let (out, tally) = under_load(&env, "0.2.0");
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
    // History: three attempts (promoted, rolled back, promoted) and their DORA figures.
    let out = env
        .shipit(&[
            "deploy", "history", "--env", &env.name, "--json", "--window", "1d",
        ])
        .output()
        .unwrap();
    assert_ok(&out);
    let history: serde_json::Value = serde_json::from_str(&text(&out).0).unwrap();
    let dora = &history["dora"];
    assert_eq!(
        (
            dora["attempts"].as_u64(),
            dora["promoted"].as_u64(),
            dora["failed"].as_u64()
        ),
        (Some(3), Some(2), Some(1)),
        "{history}"
    );
    assert!(
        (dora["change_failure_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9,
        "{history}"
    );
    assert!(
        dora["mean_time_to_restore_seconds"].as_f64().unwrap() > 0.0,
        "{history}"
    );
    let metrics = std::fs::read_to_string(&file).unwrap();
    promtool_accepts(&metrics);
    assert!(
        metrics.contains(&format!("shipit_deploy_success{{{of}}} 1\n")),
        "{metrics}"
    );
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
    let env = Env::new("fleetbg", &section("blue-green", &second, &third, "1s"));
    assert_ok(&env.deploy("0.1.0"));
    let (out, tally) = under_load(&env, "0.2.0");
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

/// `promtool check metrics` (Debian's prometheus package) reads `text` without a problem.
fn promtool_accepts(text: &str) {
    crate::common::require("promtool");
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {:?}\n{text}",
        crate::common::text(&out)
    );
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {:?}",
        crate::common::text(&out)
    );
}

/// Preflight: with one host unreachable, the deploy stops before anything on any host
/// changes (no container, no lock, no record on the reachable one), naming the host and why.
#[test]
fn an_unreachable_host_stops_the_deploy_with_nothing_changed() {
    project();
    let dead = std::env::temp_dir().join(format!("shipit-dead-{}.sock", std::process::id()));
    let env = Env::new(
        "fleetdead",
        &format!(
            "strategy = \"rolling\"\nreplicas = 1\ndocker = [\"unix:///var/run/docker.sock\", \"unix://{}\"]",
            dead.display()
        ),
    );
    let out = env.deploy("0.1.0");
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let stderr = text(&out).1;
    assert!(
        stderr.contains("preflight: 1 of 2 host(s) cannot take the deploy, nothing was changed")
            && stderr.contains(&format!("unix://{}: ", dead.display())),
        "{stderr}"
    );
    assert_eq!(on(None, &env), Vec::<String>::new());
    let filter = format!("label=shipit.env={}", env.name);
    let volumes = Command::new("docker")
        .args(["volume", "ls", "-q", "--filter", &filter])
        .output()
        .unwrap();
    assert_eq!(text(&volumes).0.trim(), "", "a record was written");
    let locks = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("name=shipit-lock-demo-{}", env.name),
        ])
        .output()
        .unwrap();
    assert_eq!(text(&locks).0.trim(), "", "a lock was left");
}

/// A deploy running in the background, its stderr lines collected as they come.
struct Running {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Running {
    fn start(mut command: Command) -> Running {
        use std::io::BufRead;
        let mut child = command
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().unwrap().push(line);
            }
        });
        Running { child, lines }
    }

    fn saw(&self, text: &str) -> bool {
        self.lines.lock().unwrap().iter().any(|l| l.contains(text))
    }

    /// Waits (at most a minute) for a line containing `text`.
    fn wait_for(&self, text: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !self.saw(text) {
            assert!(
                std::time::Instant::now() < deadline,
                "no `{text}` in {:?}",
                self.lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn exit_code(mut self) -> (Option<i32>, Vec<String>) {
        let code = self.child.wait().unwrap().code();
        std::thread::sleep(Duration::from_millis(200));
        let lines = self.lines.lock().unwrap().clone();
        (code, lines)
    }
}

/// Operator verbs act on the running deploy through what its lock's runtime holds: `pause`
/// keeps a canary at 10% long past its 2 s pause, until `resume`; `abort` rolls the next
/// one back (exit 4); with no deploy running, each says so and exits 1.
#[test]
fn pause_holds_a_canary_until_resume_and_abort_rolls_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new(
        "operate",
        "strategy = \"canary\"\nreplicas = 1\ncanary = { steps = [10, 100], pause = \"2s\" }\n\
         analysis = { interval = \"1s\" }",
    );
    let verb = |verb: &str| {
        env.shipit(&["deploy", verb, "--env", &env.name])
            .output()
            .unwrap()
    };
    let idle = verb("pause");
    assert_eq!(idle.status.code(), Some(1), "{:?}", text(&idle));
    assert!(
        text(&idle)
            .1
            .contains("is running: there is nothing to pause"),
        "{:?}",
        text(&idle)
    );
    assert_ok(&env.deploy("0.1.0"));

    let running = Running::start(env.shipit(&["deploy", "--env", &env.name, "--version", "0.2.0"]));
    running.wait_for("routing 10% of requests");
    let paused = verb("pause");
    assert_ok(&paused);
    assert!(text(&paused).1.contains("to pause"), "{:?}", text(&paused));
    running.wait_for("asked to pause the rollout");
    // Three times the canary's pause: still at 10%, both versions answering.
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        !running.saw("routing 100%"),
        "{:?}",
        running.lines.lock().unwrap()
    );
    let answers = env.answers(40);
    assert!(answers.iter().any(|a| a == "demo 0.1.0"), "{answers:?}");
    assert!(answers.iter().any(|a| a == "demo 0.2.0"), "{answers:?}");
    assert_ok(&verb("resume"));
    let (code, lines) = running.exit_code();
    assert_eq!(code, Some(0), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("routing 100%")),
        "{lines:?}"
    );

    let running = Running::start(env.shipit(&["deploy", "--env", &env.name, "--version", "0.1.0"]));
    running.wait_for("routing 10% of requests");
    assert_ok(&verb("abort"));
    let (code, lines) = running.exit_code();
    assert_eq!(code, Some(4), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("aborted by ")), "{lines:?}");
    assert!(env.answers(9).iter().all(|a| a == "demo 0.2.0"));
}

/// Hooks: `pre` runs before any traffic moves and `post` once the new version takes it all,
/// with the version in their environment and template values quoted; a failing `post`
/// returns to the old version (exit 4), and a gate that never opens rolls back before any
/// traffic moves.
#[test]
fn hooks_run_around_the_switch_and_a_failing_one_rolls_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let log = tempfile::NamedTempFile::new().unwrap();
    let log_path = log.path().display().to_string();
    let env = Env::new(
        "hooks",
        &format!(
            "strategy = \"blue-green\"\nreplicas = 1\nblue_green = {{ scale_down_delay = \"1s\" }}\n\
             hooks = {{ pre = [\"echo pre {{{{ version }}}} >> {log_path}\"], \
             post = [\"echo post $SHIPIT_DEPLOY_VERSION r$SHIPIT_DEPLOY_REVISION >> {log_path}; test $SHIPIT_DEPLOY_VERSION != 0.2.0\"] }}"
        ),
    );
    assert_ok(&env.deploy("0.1.0"));
    let out = env.deploy("0.2.0");
    assert_eq!(out.status.code(), Some(4), "{:?}", text(&out));
    assert!(
        text(&out).1.contains("a hook failed: `echo post"),
        "{:?}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(log.path()).unwrap(),
        "pre 0.1.0\npost 0.1.0 r1\npre 0.2.0\npost 0.2.0 r2\n"
    );
    assert!(env.answers(9).iter().all(|a| a == "demo 0.1.0"));

    let gated = Env::new(
        "gate",
        &format!(
            "strategy = \"blue-green\"\nreplicas = 1\nhooks = {{ gate = \"http://{}/approve\", timeout = \"2s\" }}",
            crate::common::private_addr()
        ),
    );
    let out = gated.deploy("0.1.0");
    assert_eq!(out.status.code(), Some(4), "{:?}", text(&out));
    assert!(
        text(&out).1.contains("did not open within 2s"),
        "{:?}",
        text(&out)
    );
    assert_eq!(on(None, &gated), Vec::<String>::new());
}

/// Across three hosts, a version whose requests fail (30%) is caught by the one analysis
/// gate on the first host it reaches and every host returns (exit 4), within the stated
/// detection time. Prints the wall time of a healthy three-host rolling deploy and the
/// measured detection time (what `scripts/bench-fleet` collects).
#[test]
fn a_failing_version_on_a_fleet_is_caught_by_the_analysis_and_every_host_returns() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (second, third) = three_hosts();
    let env = Env::new(
        "fleetbad",
        &format!(
            "{}\nanalysis = {{ interval = \"1s\", failure_limit = 2, max_error_rate = 0.05, min_requests = 5 }}\n\
             env = {{ DEMO_FAIL_RATE = \"{{% if version == '0.1.0' %}}0.3{{% else %}}0{{% endif %}}\" }}",
            section("rolling", &second, &third, "4s")
        ),
    );
    // 0.2.0 is the healthy version: a first deploy, then a rolling one of it again, timed.
    assert_ok(&env.deploy("0.2.0"));
    let started = std::time::Instant::now();
    let (out, tally) = under_load(&env, "0.2.0");
    let wall = started.elapsed() - Duration::from_secs(2);
    assert_ok(&out);
    assert_eq!(tally.failures(), 0, "{tally:?}");
    eprintln!(
        "fleet three-host rolling deploy: {:.2} s",
        wall.as_secs_f64()
    );

    let (out, _) = under_load(&env, "0.1.0");
    assert_eq!(out.status.code(), Some(4), "{:?}", text(&out));
    assert!(
        text(&out).1.contains("the analysis failed"),
        "{:?}",
        text(&out)
    );
    let metrics =
        std::fs::read_to_string(project().join(format!("dist/deploy/{}.prom", env.name))).unwrap();
    let detection: f64 = metrics
        .lines()
        .find(|l| l.starts_with("shipit_deploy_detection_seconds{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    eprintln!(
        "fleet detection: {detection:.2} s from the bad version's first request to the decision"
    );
    // The stated worst case: interval x (failure_limit + 1) = 3 s, plus a sample's own time.
    assert!(detection > 0.0 && detection < 5.0, "{metrics}");
    let second_revision = |n: usize| format!("demo-{}-r2-{n} running", env.name);
    assert_eq!(on(None, &env), vec![second_revision(1)]);
    assert_eq!(on(Some(&second), &env), vec![second_revision(2)]);
    assert_eq!(on(Some(&third), &env), vec![second_revision(3)]);
    assert!(env.answers(9).iter().all(|a| a == "demo 0.2.0"));
}
