//! The executor against real processes: timeouts, retries, fail-fast, keep-going, cancel, masking.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shipit::executor::{self, ExecOptions, RunReport, StageStatus};
use shipit::plan::{Plan, PlannedStage, Step, Unit};
use shipit::secrets::Masker;
use shipit::ui::{Event, Reporter};
use tokio_util::sync::CancellationToken;

/// Records what the executor reports.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Reporter for Recorder {
    fn report(&self, event: &Event<'_>) {
        let line = match event {
            Event::Started { lane, attempt, .. } => format!("start {lane} {attempt}"),
            Event::Retrying { lane, attempt, .. } => format!("retry {lane} {attempt}"),
            Event::StageFinished(r) => format!("finish {} {}", r.stage, r.outcome.status.word()),
            Event::UnitFinished { stage, report } => format!(
                "finish {stage} {} {}",
                report.label.as_deref().unwrap_or_default(),
                report.outcome.status.word()
            ),
            Event::Output { lane, line } => format!("output {lane} {line}"),
            _ => return,
        };
        self.0.lock().unwrap().push(line);
    }
}

fn stage(name: &str, needs: &[&str], commands: &[&str], dir: &Path) -> PlannedStage {
    PlannedStage {
        name: name.into(),
        description: None,
        kind: "run".into(),
        needs: needs.iter().map(|s| s.to_string()).collect(),
        skip: None,
        dir: dir.to_path_buf(),
        env: Default::default(),
        timeout: None,
        retries: 0,
        backoff: Duration::from_millis(10),
        requires: Vec::new(),
        units: vec![Unit::single(
            commands.iter().map(|c| Step::shell(*c)).collect(),
        )],
    }
}

fn plan(dist: &Path, stages: Vec<PlannedStage>) -> Plan {
    Plan {
        project: "t".into(),
        version: "0.0.0".into(),
        tag: "v0.0.0".into(),
        commit: "unknown".into(),
        date: "2026-01-01T00:00:00Z".into(),
        dist: dist.to_path_buf(),
        stages,
    }
}

fn run(
    plan: &Plan,
    keep_going: bool,
    masker: Masker,
    cancel_after: Option<Duration>,
) -> (RunReport, Vec<String>) {
    let recorder = Arc::new(Recorder::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(async {
        let token = CancellationToken::new();
        if let Some(after) = cancel_after {
            let t = token.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                t.cancel();
            });
        }
        let options = ExecOptions {
            jobs: 4,
            keep_going,
            dry_run: false,
            no_cache: false,
            tasks: Default::default(),
            started: None,
        };
        executor::execute(plan, &options, recorder.clone(), Arc::new(masker), token)
            .await
            .unwrap()
    });
    let events = recorder.0.lock().unwrap().clone();
    (report, events)
}

fn status<'a>(report: &'a RunReport, name: &str) -> &'a StageStatus {
    &report
        .stages
        .iter()
        .find(|s| s.stage == name)
        .unwrap()
        .outcome
        .status
}

fn alive(pid: i32) -> bool {
    // A killed child is reaped by init; /proc/<pid> disappears (or is a zombie briefly).
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.contains(") Z "),
        Err(_) => false,
    }
}

fn read_pid(path: &PathBuf) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let mut s = stage(
        "slow",
        &[],
        &[&format!(
            "sleep 3600 & echo $! > {}; wait",
            pidfile.display()
        )],
        dir.path(),
    );
    s.timeout = Some(Duration::from_millis(700));
    let started = Instant::now();
    let (report, _) = run(&plan(dir.path(), vec![s]), false, Masker::new(vec![]), None);
    assert_eq!(
        *status(&report, "slow"),
        StageStatus::TimedOut { after_ms: 700 }
    );
    // Not the hour the grandchild would have slept.
    assert!(started.elapsed() < Duration::from_secs(600));
    let pid = read_pid(&pidfile);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!alive(pid), "grandchild {pid} survived the timeout");
    let log = std::fs::read_to_string(dir.path().join("logs/slow.log")).unwrap();
    assert!(
        log.contains("timed out after 700ms; process group killed"),
        "{log}"
    );
}

#[test]
fn retries_with_backoff_until_success() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("count");
    // Fails twice, then succeeds.
    let script = format!(
        "n=$(cat {0} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {0}; [ $n -ge 3 ]",
        counter.display()
    );
    let mut s = stage("flaky", &[], &[&script], dir.path());
    s.retries = 3;
    let (report, events) = run(&plan(dir.path(), vec![s]), false, Masker::new(vec![]), None);
    assert_eq!(*status(&report, "flaky"), StageStatus::Succeeded);
    assert_eq!(report.stages[0].outcome.attempts, 3);
    let retries: Vec<&String> = events.iter().filter(|e| e.starts_with("retry")).collect();
    assert_eq!(retries, ["retry flaky 2", "retry flaky 3"]);
}

#[test]
fn retries_give_up_and_report_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = stage(
        "bad",
        &[],
        &["for i in $(seq 1 30); do echo line $i; done; exit 3"],
        dir.path(),
    );
    s.retries = 1;
    let (report, _) = run(&plan(dir.path(), vec![s]), false, Masker::new(vec![]), None);
    let bad = &report.stages[0];
    assert!(
        matches!(&bad.outcome.status, StageStatus::Failed { reason } if reason.contains("exited with status 3"))
    );
    assert_eq!(bad.outcome.attempts, 2);
    assert_eq!(bad.outcome.tail.len(), executor::TAIL_LINES);
    assert_eq!(bad.outcome.tail.last().unwrap(), "line 30");
    assert!(!report.succeeded());
}

#[test]
fn fail_fast_cancels_running_and_skips_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let stages = vec![
        stage("fails", &[], &["sleep 0.2; exit 1"], dir.path()),
        stage("long", &[], &["sleep 3600"], dir.path()),
        stage("after", &["fails"], &["true"], dir.path()),
    ];
    let started = Instant::now();
    let (report, _) = run(&plan(dir.path(), stages), false, Masker::new(vec![]), None);
    assert!(
        started.elapsed() < Duration::from_secs(600),
        "long stage was not cancelled"
    );
    assert!(status(&report, "fails").is_failure());
    assert_eq!(*status(&report, "long"), StageStatus::Cancelled);
    assert_eq!(
        *status(&report, "after"),
        StageStatus::Blocked { by: "fails".into() }
    );
}

#[test]
fn keep_going_finishes_independent_stages() {
    let dir = tempfile::tempdir().unwrap();
    let stages = vec![
        stage("fails", &[], &["exit 1"], dir.path()),
        stage("other", &[], &["sleep 0.3"], dir.path()),
        stage("after-other", &["other"], &["true"], dir.path()),
        stage("after-fails", &["fails"], &["true"], dir.path()),
    ];
    let (report, _) = run(&plan(dir.path(), stages), true, Masker::new(vec![]), None);
    assert!(status(&report, "fails").is_failure());
    assert_eq!(*status(&report, "other"), StageStatus::Succeeded);
    assert_eq!(*status(&report, "after-other"), StageStatus::Succeeded);
    assert_eq!(
        *status(&report, "after-fails"),
        StageStatus::Blocked { by: "fails".into() }
    );
}

#[test]
fn dependencies_run_in_order_and_skips_let_dependents_run() {
    let dir = tempfile::tempdir().unwrap();
    let order = dir.path().join("order");
    let append = |name: &str| format!("echo {name} >> {}", order.display());
    let mut skipped = stage("skipped", &["a"], &["exit 1"], dir.path());
    skipped.skip = Some("not a nightly build".into());
    let stages = vec![
        stage("c", &["b", "skipped"], &[&append("c")], dir.path()),
        stage("a", &[], &[&append("a")], dir.path()),
        stage("b", &["a"], &[&append("b")], dir.path()),
        skipped,
    ];
    let (report, _) = run(&plan(dir.path(), stages), false, Masker::new(vec![]), None);
    assert!(report.succeeded());
    assert_eq!(std::fs::read_to_string(&order).unwrap(), "a\nb\nc\n");
    assert!(matches!(
        status(&report, "skipped"),
        StageStatus::Skipped { .. }
    ));
}

#[test]
fn cancel_stops_children_and_reports_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let stages = vec![stage(
        "long",
        &[],
        &[&format!(
            "sleep 3600 & echo $! > {}; wait",
            pidfile.display()
        )],
        dir.path(),
    )];
    let (report, _) = run(
        &plan(dir.path(), stages),
        false,
        Masker::new(vec![]),
        Some(Duration::from_millis(500)),
    );
    assert!(report.interrupted);
    assert_eq!(*status(&report, "long"), StageStatus::Cancelled);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!alive(read_pid(&pidfile)));
}

#[test]
fn secrets_never_reach_logs_or_events() {
    let dir = tempfile::tempdir().unwrap();
    let token = format!("ghp_{}", "x7".repeat(18));
    let mut s = stage(
        "leaky",
        &[],
        &[
            "echo \"password is $DEPLOY_PASSWORD\"; echo \"token $GH\"; echo \"$DEPLOY_PASSWORD\" >&2",
        ],
        dir.path(),
    );
    s.env
        .insert("DEPLOY_PASSWORD".into(), "correct-horse".into());
    s.env.insert("GH".into(), token.clone());
    let masker = Masker::new(vec![(
        "DEPLOY_PASSWORD".to_string(),
        "correct-horse".to_string(),
    )]);
    let (report, events) = run(&plan(dir.path(), vec![s]), false, masker, None);
    assert!(report.succeeded());
    let log = std::fs::read_to_string(dir.path().join("logs/leaky.log")).unwrap();
    assert!(
        log.contains("password is ***") && log.contains("token ***"),
        "{log}"
    );
    for text in events.iter().chain(std::iter::once(&log)) {
        assert!(
            !text.contains("correct-horse") && !text.contains(&token),
            "leak: {text}"
        );
    }
}

/// Regression (issue 30, point 10): the reported time of a run counts from when the command
/// began, so the keys decrypted and tools checked before the first stage are in it.
#[test]
fn the_run_time_counts_from_the_commands_start() {
    let dist = tempfile::tempdir().unwrap();
    let plan = plan(dist.path(), vec![stage("a", &[], &["true"], dist.path())]);
    let began = Instant::now() - Duration::from_secs(5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime
        .block_on(executor::execute(
            &plan,
            &ExecOptions {
                jobs: 1,
                started: Some(began),
                ..Default::default()
            },
            Arc::new(Recorder::default()),
            Arc::new(Masker::new(vec![])),
            CancellationToken::new(),
        ))
        .unwrap();
    assert!(
        report.elapsed >= Duration::from_secs(5),
        "{:?}",
        report.elapsed
    );
}
