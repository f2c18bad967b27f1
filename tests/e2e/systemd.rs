//! The systemd runtime against real parts: three hosts, each its own user and sshd on a
//! loopback address of its own (`common::hosts`), the demo's release archives sent over ssh,
//! checked and unpacked there, instances run by the stand-in systemctl from the unit
//! `shipit deploy --init` prints, behind one real HAProxy at 250 requests a second.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::common::haproxy::Haproxy;
use crate::common::hosts::Hosts;
use crate::common::load::{Load, Tally};
use crate::common::{demo_copy, demo_target_dir, git, shipit, text, unencrypted_keys};
use crate::deploy::{RATE, SERIAL, assert_ok};

/// The demo built at 0.1.0 and 0.2.0 into `dist-0.1.0` and `dist-0.2.0`: archives for
/// linux-x64-musl, SHA256SUMS and its minisign signature.
fn project() -> &'static Path {
    static PROJECT: OnceLock<PathBuf> = OnceLock::new();
    PROJECT.get_or_init(|| {
        let dir = demo_copy().keep();
        unencrypted_keys(&dir);
        for version in ["0.1.0", "0.2.0"] {
            let manifest = dir.join("demo/Cargo.toml");
            let now = std::fs::read_to_string(&manifest).unwrap();
            std::fs::write(
                &manifest,
                now.replacen("version = \"0.1.0\"", &format!("version = \"{version}\""), 1),
            )
            .unwrap();
            std::fs::write(
                dir.join("pipelines/build.toml"),
                format!(
                    "version = 1\n[project]\nname = \"demo\"\ncargo = \"../demo/Cargo.toml\"\ndist = \"../dist-{version}\"\n\n\
                     [stages.build]\nuses = \"cargo\"\ntargets = [\"linux-x64-musl\"]\nprofile = \"release\"\nlocked = false\n\n\
                     [stages.package]\nneeds = [\"build\"]\nuses = \"archive\"\n\n\
                     [stages.checksum]\nneeds = [\"package\"]\nuses = \"checksum\"\n\n\
                     [stages.sign]\nneeds = [\"checksum\"]\nuses = \"sign\"\nkey = {{ file = \"../keys/shipit.key\" }}\n"
                ),
            )
            .unwrap();
            if version == "0.1.0" {
                git(&dir, &["init", "-q", "-b", "main"]);
            }
            git(&dir, &["add", "-A"]);
            git(&dir, &["commit", "-qm", &format!("demo {version}")]);
            let out = shipit(&dir)
                .args(["build", "--pipeline", "pipelines/build.toml"])
                .env("CARGO_TARGET_DIR", demo_target_dir(version))
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
        }
        dir
    })
}

/// An environment on three fresh hosts: a pipeline per version (each reading its own dist),
/// HAProxy, and the unit `deploy --init` prints installed on every host.
struct Env {
    name: String,
    hosts: Hosts,
    haproxy: Haproxy,
}

impl Env {
    fn new(prefix: &str, section: &str) -> Env {
        let name = format!("{prefix}{}", std::process::id());
        let hosts = Hosts::start(3);
        let haproxy = Haproxy::start();
        let public_key = std::fs::read_to_string(project().join("keys/shipit.pub")).unwrap();
        let public_key = public_key.lines().nth(1).unwrap().trim().to_string();
        let env = Env {
            name,
            hosts,
            haproxy,
        };
        for version in ["0.1.0", "0.2.0"] {
            std::fs::write(
                project().join(env.pipeline(version)),
                format!(
                    "version = 1\n[project]\nname = \"demo\"\ncargo = \"../demo/Cargo.toml\"\ndist = \"../dist-{version}\"\n\n\
                     [deploy.{}]\nruntime = \"systemd\"\n{}\nport = 9000\nreplicas = 1\n\
                     router = {{ haproxy = \"{}\", backend = \"demo\" }}\n\
                     health = {{ interval = \"200ms\", deadline = \"5s\" }}\ndrain_timeout = \"2s\"\n{section}\n\n\
                     [deploy.{}.systemd]\n{}keep = 2\npublic_key = \"{public_key}\"\n",
                    env.name,
                    env.hosts.list(),
                    env.haproxy.api(),
                    env.name,
                    env.hosts.options(),
                ),
            )
            .unwrap();
        }
        let init = env
            .shipit("0.1.0", &["deploy", "--init", "--env", &env.name])
            .output()
            .unwrap();
        assert_ok(&init);
        let printed = text(&init).0;
        let unit = &printed[printed.find("[Unit]").expect("a unit template")..];
        // The template leaves the service's own arguments to the user.
        let unit = unit.replace("/bin/demo\n", "/bin/demo serve\n");
        env.hosts.install_unit("demo", &unit);
        env
    }

    fn pipeline(&self, version: &str) -> String {
        format!("pipelines/systemd-{}-{version}.toml", self.name)
    }

    fn shipit(&self, version: &str, args: &[&str]) -> Command {
        let mut command = shipit(project());
        command
            .args(args)
            .args(["--pipeline", &self.pipeline(version)]);
        command
    }

    fn deploy(&self, version: &str) -> Output {
        self.shipit(version, &["deploy", "--env", &self.name])
            .output()
            .unwrap()
    }

    /// Deploys `version` under 250 requests a second, from a second before to a second after.
    fn under_load(&self, version: &str) -> (Output, Tally) {
        let load = Load::start(&self.haproxy.frontend, RATE, 5);
        std::thread::sleep(Duration::from_secs(1));
        let began = std::time::Instant::now();
        let out = self.deploy(version);
        // For scripts/bench-fleet, which runs the tests and reads these lines.
        println!(
            "systemd {} deploy of {version} to {}: {:.1} s",
            self.strategy(version),
            self.name,
            began.elapsed().as_secs_f64()
        );
        std::thread::sleep(Duration::from_secs(1));
        (out, load.stop())
    }

    /// What `current/bin/demo --version` says on each host.
    fn current(&self) -> Vec<String> {
        self.hosts
            .hosts
            .iter()
            .map(|h| {
                text(&self.hosts.ssh(h, "demo/current/bin/demo --version"))
                    .0
                    .trim()
                    .to_string()
            })
            .collect()
    }

    /// Each host's instances, `name` each, from its `instances/` folder.
    fn instances(&self) -> Vec<Vec<String>> {
        self.hosts
            .hosts
            .iter()
            .map(|h| {
                let mut names: Vec<String> = std::fs::read_dir(h.home().join("demo/instances"))
                    .map(|d| {
                        d.flatten()
                            .filter_map(|e| {
                                e.file_name()
                                    .to_str()?
                                    .strip_suffix(".meta")
                                    .map(String::from)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                names.sort();
                names
            })
            .collect()
    }

    fn answers(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                crate::common::load::get(&self.haproxy.frontend)
                    .map(|(_, b)| b.trim().to_string())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Each host's instance answers `expected` on port 9000 itself, not only through the
    /// router's retries.
    fn assert_each_host_answers_on_9000(&self, expected: &str) {
        for host in &self.hosts.hosts {
            let direct = crate::common::load::get(&format!("{}:9000", host.addr));
            assert_eq!(
                direct.as_ref().map(|(_, b)| b.trim()).ok(),
                Some(expected),
                "{}: {direct:?}",
                host.addr
            );
        }
    }

    /// The newest record `deploy status --json` shows, through `version`'s pipeline.
    fn last_record(&self, version: &str) -> serde_json::Value {
        let status = self
            .shipit(
                version,
                &["deploy", "status", "--env", &self.name, "--json"],
            )
            .output()
            .unwrap();
        assert_ok(&status);
        let state: serde_json::Value = serde_json::from_str(&text(&status).0).unwrap();
        state["records"].as_array().unwrap().last().unwrap().clone()
    }

    /// The strategy `version`'s pipeline names.
    fn strategy(&self, version: &str) -> String {
        let file = std::fs::read_to_string(project().join(self.pipeline(version))).unwrap();
        file.lines()
            .find_map(|l| l.strip_prefix("strategy = "))
            .unwrap_or("?")
            .trim_matches('"')
            .to_string()
    }

    fn set_strategy(&self, from: &str, to: &str) {
        for version in ["0.1.0", "0.2.0"] {
            let file = project().join(self.pipeline(version));
            let now = std::fs::read_to_string(&file).unwrap();
            std::fs::write(&file, now.replace(from, to)).unwrap();
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for version in ["0.1.0", "0.2.0"] {
            let _ = std::fs::remove_file(project().join(self.pipeline(version)));
        }
    }
}

/// Runs `current/bin/demo --version` on `host` in a loop until stopped: every answer it got.
struct VersionLoop {
    child: std::process::Child,
    reader: std::thread::JoinHandle<std::collections::BTreeMap<String, u32>>,
}

impl VersionLoop {
    fn start(hosts: &Hosts, host: &crate::common::hosts::Host) -> VersionLoop {
        let script = "while :; do demo/current/bin/demo --version 2>&1 || echo MISSING; done";
        let mut child = hosts
            .ssh_command(host, script)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut seen = std::collections::BTreeMap::<String, u32>::new();
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                *seen.entry(line).or_default() += 1;
            }
            seen
        });
        VersionLoop { child, reader }
    }

    /// Every distinct answer, with how often it came.
    fn stop(mut self) -> std::collections::BTreeMap<String, u32> {
        // The loop on the host ends at its next write to the closed connection.
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reader.join().unwrap()
    }
}

/// Rolling, then blue-green, across three systemd hosts under load: no request lost, every
/// host's `current` on the new release, and a loop running `current/bin/demo --version`
/// through the switch never finds it missing or partial.
#[test]
fn rolling_and_blue_green_across_three_systemd_hosts_lose_no_request() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new(
        "sdroll",
        "strategy = \"rolling\"\nbatch = 1\nrolling = { pause = \"1s\" }\nblue_green = { scale_down_delay = \"1s\" }",
    );
    assert_ok(&env.deploy("0.1.0"));
    assert_eq!(env.current(), ["demo 0.1.0"; 3]);

    let watch = VersionLoop::start(&env.hosts, &env.hosts.hosts[0]);
    let (out, tally) = env.under_load("0.2.0");
    let seen = watch.stop();
    assert_ok(&out);
    assert_eq!(tally.failures(), 0, "{tally:?}");
    assert!(tally.sent >= 250, "{tally:?}");
    assert!(
        seen.values().sum::<u32>() > 20
            && seen.keys().all(|l| l == "demo 0.1.0" || l == "demo 0.2.0")
            && seen.contains_key("demo 0.2.0"),
        "{seen:?}"
    );
    assert_eq!(env.current(), ["demo 0.2.0"; 3]);
    let r2 = |n: usize| vec![format!("demo-{}-r2-{n}", env.name)];
    assert_eq!(env.instances(), [r2(1), r2(2), r2(3)]);
    assert!(env.answers(9).iter().all(|a| a == "demo 0.2.0"));

    env.set_strategy("strategy = \"rolling\"", "strategy = \"blue-green\"");
    let (out, tally) = env.under_load("0.1.0");
    assert_ok(&out);
    assert_eq!(tally.failures(), 0, "{tally:?}");
    assert_eq!(env.current(), ["demo 0.1.0"; 3]);
    assert!(env.answers(9).iter().all(|a| a == "demo 0.1.0"));
    // keep = 2: both releases stay, nothing older exists to prune.
    let releases = std::fs::read_dir(env.hosts.hosts[0].home().join("demo/releases"))
        .unwrap()
        .flatten()
        .count();
    assert_eq!(releases, 2);
}

/// A version that fails health on the third host (its port is taken there): hosts one and two,
/// already moved, are returned, exit 4, no request fails, and the record says what each host
/// did. Then, the port freed, the same version rolls through.
#[test]
fn a_version_failing_health_on_the_third_systemd_host_returns_every_host() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new(
        "sdfail",
        "strategy = \"rolling\"\nbatch = 1\nrolling = { pause = \"1s\" }",
    );
    assert_ok(&env.deploy("0.1.0"));
    // The new instance on the third host gets port 9001: something else answers nothing there.
    let squatter = std::net::TcpListener::bind((env.hosts.hosts[2].addr.as_str(), 9001)).unwrap();
    let (out, tally) = env.under_load("0.2.0");
    assert_eq!(out.status.code(), Some(4), "{:?}", text(&out));
    // Regression (restored_instance_routed_to_another_ones_port): the host script once
    // answered a restart with the last instance it looked at, so a restored old instance was
    // routed to the new one's port and failed once that one left.
    assert!(
        tally.failures() == 0,
        "{tally:?} {} {:?}\n{}",
        text(&out).1,
        env.haproxy.logged(503).iter().take(5).collect::<Vec<_>>(),
        env.hosts.logs()
    );
    assert_eq!(env.current(), ["demo 0.1.0"; 3]);
    let r1 = |n: usize| vec![format!("demo-{}-r1-{n}", env.name)];
    assert_eq!(env.instances(), [r1(1), r1(2), r1(3)]);
    assert!(env.answers(9).iter().all(|a| a == "demo 0.1.0"));
    let routed = env.haproxy.command("show servers state demo");
    for (k, host) in env.hosts.hosts.iter().enumerate() {
        let server = format!("demo-{}-r1-{}", env.name, k + 1);
        let line = routed
            .lines()
            .find(|l| l.split(' ').nth(3) == Some(server.as_str()));
        let fields: Vec<&str> = line.unwrap_or_default().split(' ').collect();
        assert_eq!(
            (fields.get(4), fields.get(18)),
            (Some(&host.addr.as_str()), Some(&"9000")),
            "{routed}"
        );
    }
    env.assert_each_host_answers_on_9000("demo 0.1.0");
    let record = env.last_record("0.1.0");
    assert_eq!(record["outcome"], "rolled-back", "{record}");
    let hosts_with_steps: std::collections::BTreeSet<&str> = record["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["host"].as_str())
        .collect();
    assert_eq!(hosts_with_steps.len(), 3, "{record}");
    drop(squatter);
    assert_ok(&env.deploy("0.2.0"));
    assert_eq!(env.current(), ["demo 0.2.0"; 3]);
}

/// The stand-in's pid of each host's unit instance `name`.
fn pids(env: &Env, name: &dyn Fn(usize) -> String) -> Vec<String> {
    env.hosts
        .hosts
        .iter()
        .enumerate()
        .map(|(k, h)| {
            let file = h.home().join(format!(".stand-in/demo@{}.pid", name(k + 1)));
            std::fs::read_to_string(file)
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .collect()
}

/// `strategy = "reload"` under load: each host's running instance is swapped to the new
/// release in place (the same process, re-executed by its unit's reload), one host at a
/// time, with no request lost and `current` never missing.
#[test]
fn reload_across_three_systemd_hosts_swaps_each_instance_in_place_losing_no_request() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new(
        "sdreload",
        "strategy = \"reload\"\nbatch = 1\nreload = { pause = \"1s\" }",
    );
    assert_ok(&env.deploy("0.1.0"));
    let r1 = |n: usize| format!("demo-{}-r1-{n}", env.name);
    let before = pids(&env, &r1);
    assert!(before.iter().all(|p| !p.is_empty()), "{before:?}");

    let watch = VersionLoop::start(&env.hosts, &env.hosts.hosts[2]);
    let (out, tally) = env.under_load("0.2.0");
    let seen = watch.stop();
    assert_ok(&out);
    assert_eq!(tally.failures(), 0, "{tally:?}\n{}", env.hosts.logs());
    assert!(tally.sent >= 250, "{tally:?}");
    assert!(
        seen.keys().all(|l| l == "demo 0.1.0" || l == "demo 0.2.0"),
        "{seen:?}"
    );
    assert_eq!(env.current(), ["demo 0.2.0"; 3]);
    // The same instances, the same processes: nothing was started beside them.
    assert_eq!(env.instances(), [vec![r1(1)], vec![r1(2)], vec![r1(3)]]);
    assert_eq!(pids(&env, &r1), before);
    assert!(env.answers(9).iter().all(|a| a == "demo 0.2.0"));
    let record = env.last_record("0.2.0");
    assert_eq!(record["outcome"], "promoted", "{record}");
    let reloads = record["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["did"].as_str().is_some_and(|d| d.starts_with("reloaded")))
        .count();
    assert_eq!(reloads, 3, "{record}");
}

/// A reload that kills the service on the third host (its unit's `ExecReload` sends SIGKILL):
/// the third host fails health, and every host is swapped back to the old release (the third
/// started again), exit 4, no request lost (each host left the rotation before its reload).
#[test]
fn a_reload_that_kills_the_service_on_the_third_host_swaps_every_host_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new(
        "sdbadreload",
        "strategy = \"reload\"\nbatch = 1\nreload = { pause = \"1s\" }",
    );
    assert_ok(&env.deploy("0.1.0"));
    let unit_file = env.hosts.hosts[2]
        .home()
        .join(".config/systemd/user/demo@.service");
    let unit = std::fs::read_to_string(&unit_file).unwrap();
    std::fs::write(&unit_file, unit.replace("kill -HUP", "kill -KILL")).unwrap();

    let (out, tally) = env.under_load("0.2.0");
    assert_eq!(out.status.code(), Some(4), "{:?}", text(&out));
    assert_eq!(tally.failures(), 0, "{tally:?}\n{}", text(&out).1);
    assert_eq!(env.current(), ["demo 0.1.0"; 3]);
    let r1 = |n: usize| format!("demo-{}-r1-{n}", env.name);
    assert_eq!(env.instances(), [vec![r1(1)], vec![r1(2)], vec![r1(3)]]);
    assert!(env.answers(9).iter().all(|a| a == "demo 0.1.0"));
    env.assert_each_host_answers_on_9000("demo 0.1.0");
    let said = text(&out).1;
    assert!(said.contains("reloaded demo-sdbadreload"), "{said}");
    assert!(said.contains("back on 0.1.0"), "{said}");
}

/// A copy of the archive on the second host that is not the release's is refused in
/// preflight: no host starts anything, `current` stays, and no lock is left.
#[test]
fn a_tampered_archive_on_one_systemd_host_is_refused_before_any_host_changes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new("sdtamper", "strategy = \"blue-green\"");
    assert_ok(&env.deploy("0.1.0"));
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(project().join("dist-0.2.0/manifest.json")).unwrap(),
    )
    .unwrap();
    let sha = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "archive")
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let planted = env.hosts.hosts[1]
        .home()
        .join(format!("demo/incoming/{sha}"));
    std::fs::write(&planted, b"not the release").unwrap();
    let out = env.deploy("0.2.0");
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let said = text(&out).1;
    assert!(
        said.contains("does not match the manifest's digest"),
        "{said}"
    );
    assert!(said.contains(&env.hosts.hosts[1].url), "{said}");
    assert_eq!(env.current(), ["demo 0.1.0"; 3]);
    let r1 = |n: usize| vec![format!("demo-{}-r1-{n}", env.name)];
    assert_eq!(env.instances(), [r1(1), r1(2), r1(3)]);
    for host in &env.hosts.hosts {
        assert!(!host.home().join("demo/releases/0.2.0").exists());
        assert!(
            !host
                .home()
                .join(format!("demo/locks/shipit-lock-demo-{}", env.name))
                .exists()
        );
    }
}

/// A canary killed while it holds its first weight, then `shipit rollback`: every host back
/// on the previous release, the new instances gone.
#[test]
fn a_killed_systemd_deploy_is_undone_on_every_host_by_rollback() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new(
        "sdkill",
        "strategy = \"canary\"\ncanary = { steps = [34, 100], pause = \"60s\" }",
    );
    assert_ok(&env.deploy("0.1.0"));
    let mut child = env
        .shipit("0.2.0", &["deploy", "--env", &env.name])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        if line.unwrap().contains("pausing") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = env
        .shipit("0.1.0", &["rollback", "--env", &env.name])
        .output()
        .unwrap();
    assert_ok(&out);
    assert_eq!(env.current(), ["demo 0.1.0"; 3]);
    let r1 = |n: usize| vec![format!("demo-{}-r1-{n}", env.name)];
    assert_eq!(env.instances(), [r1(1), r1(2), r1(3)]);
    assert!(env.answers(9).iter().all(|a| a == "demo 0.1.0"));
}
