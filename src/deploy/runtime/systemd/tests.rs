//! The systemd runtime's pure parts, and the host script run here.

use super::*;

/// What a test that reads files or runs the script returns.
type Outcome = Result<(), Box<dyn std::error::Error>>;

fn host(archives: Vec<Archive>, target: Option<&str>) -> Systemd {
    let options = Options {
        target: target.map(String::from),
        ..Default::default()
    };
    Systemd::new(
        "ssh://deploy@web-1",
        "demo",
        &options,
        std::path::Path::new("."),
        archives,
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn archive(target: &str, arch: &str) -> Archive {
    Archive {
        version: "1.0.0".into(),
        target: target.into(),
        arch: arch.into(),
        path: "a.tar.gz".into(),
        sha256: "00".into(),
        size: 1,
    }
}

/// Runs the host script here, in `root`, with `true` as systemctl (every unit "active").
fn remote_here(
    root: &std::path::Path,
    args: &[&str],
    input: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    use std::io::Write;
    let mut child = std::process::Command::new("sh")
        .args(["-c", REMOTE, "shipit"])
        .arg(root)
        .args(args)
        .env("SYSTEMCTL", "true")
        .env("UNIT", "demo")
        .env("BIND", "127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    assert!(out.status.success(), "{args:?}");
    Ok(String::from_utf8(out.stdout)?)
}

#[test]
fn restart_reports_the_restarted_instance_not_the_last_one_repoint_looked_at() -> Outcome {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    for version in ["0.1.0", "0.2.0"] {
        std::fs::create_dir_all(root.join("releases").join(version))?;
        std::fs::write(
            root.join("releases").join(version).join(".shipit-release"),
            "x",
        )?;
    }
    remote_here(root, &["start", "demo-prod-r1-1", "0.1.0", "1", "9000"], "")?;
    remote_here(root, &["start", "demo-prod-r2-1", "0.2.0", "2", "9000"], "")?;
    let answer = remote_here(root, &["restart", "demo-prod-r1-1"], "")?;
    assert_eq!(
        answer,
        "instance\tdemo-prod-r1-1\t1\t0.1.0\t9000\trunning\n"
    );
    assert_eq!(
        std::fs::read_link(root.join("current"))?,
        std::path::Path::new("releases/0.2.0")
    );
    Ok(())
}

#[test]
fn an_answer_about_another_instance_is_refused_not_routed_under_this_name() -> Outcome {
    let h = host(vec![], None);
    let answer = "instance\tdemo-prod-r2-1\t2\t0.2.0\t9001\trunning\n";
    let err = h
        .one("restart demo-prod-r1-1", "demo-prod-r1-1", answer)
        .unwrap_err();
    let said = crate::error::chain(&err);
    assert!(
        said.contains("answered about demo-prod-r2-1, not demo-prod-r1-1"),
        "{said}"
    );
    let ok = h.one("restart demo-prod-r2-1", "demo-prod-r2-1", answer)?;
    assert_eq!(ok.address.as_deref(), Some("web-1:9001"));
    Ok(())
}

#[test]
fn a_host_gets_the_static_archive_of_its_architecture() {
    let h = host(
        vec![
            archive("x86_64-unknown-linux-gnu", "x64"),
            archive("x86_64-unknown-linux-musl", "x64"),
            archive("aarch64-unknown-linux-musl", "arm64"),
        ],
        None,
    );
    assert_eq!(
        h.archive_for("x86_64").map(|a| a.target),
        Some("x86_64-unknown-linux-musl".to_string())
    );
    assert_eq!(
        h.archive_for("aarch64").map(|a| a.target),
        Some("aarch64-unknown-linux-musl".to_string())
    );
    assert!(h.archive_for("riscv64").is_none());
    let pinned = host(
        vec![
            archive("x86_64-unknown-linux-gnu", "x64"),
            archive("x86_64-unknown-linux-musl", "x64"),
        ],
        Some("linux-x64"),
    );
    assert_eq!(
        pinned.archive_for("x86_64").map(|a| a.target),
        Some("x86_64-unknown-linux-gnu".to_string())
    );
}

#[test]
fn instance_lines_from_the_host_are_read_and_bad_ones_dropped() {
    let h = host(Vec::new(), None);
    let listed = h.instances(
        "instance\tdemo-p-r2-1\t2\t0.2.0\t9001\trunning\n\
         instance\tdemo-p-r1-1\t1\t0.1.0\t9000\tfailed\n\
         instance\tbroken\n\
         instance\tx\t1\t0.1.0\tnot-a-port\trunning\n",
    );
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].address.as_deref(), Some("web-1:9001"));
    assert_eq!(listed[1].state, "exited");
    assert_eq!(listed[1].address, None);
}
