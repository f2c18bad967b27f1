//! The strategies driven with made-up times.

use super::*;

const S: Duration = Duration::from_secs(1);

/// Runs a rollout where every phase succeeds at once, collecting the phases performed.
fn walk(mut rollout: Rollout) -> Vec<Phase> {
    let mut now = Instant::now();
    let mut performed = Vec::new();
    let mut action = rollout.advance(Event::Begin, now);
    for _ in 0..100 {
        action = match action {
            Action::Perform(Phase::AwaitHealthy) => {
                performed.push(Phase::AwaitHealthy);
                rollout.advance(Event::Healthy, now)
            }
            Action::Perform(phase) => {
                performed.push(phase);
                rollout.advance(Event::Done, now)
            }
            Action::WaitUntil(until) => {
                now = until;
                rollout.advance(Event::Tick, now)
            }
            Action::Promote => return performed,
            Action::Rollback { reason } => panic!("rolled back: {reason}"),
        };
    }
    panic!("no end: {performed:?}");
}

#[test]
fn blue_green_switches_at_once_and_keeps_the_old_color_warm() {
    let phases = walk(Rollout::blue_green(2, 30 * S, 60 * S, None));
    assert_eq!(
        phases,
        [
            Phase::StartNew { count: 2 },
            Phase::AwaitHealthy,
            Phase::Route {
                traffic: Traffic::Percent(100)
            },
            Phase::Pause { duration: 30 * S },
            Phase::RetireStable { count: usize::MAX },
        ]
    );
}

#[test]
fn a_preview_comes_before_any_live_traffic() {
    let phases = walk(Rollout::blue_green(1, S, 60 * S, Some(5 * S)));
    assert_eq!(phases[2], Phase::Preview { duration: 5 * S });
    assert_eq!(
        phases[3],
        Phase::Route {
            traffic: Traffic::Percent(100)
        }
    );
}

#[test]
fn rolling_batches_follow_surge_and_unavailable() {
    let phases = walk(Rollout::rolling(3, 1, 0, Duration::ZERO, 60 * S));
    let starts = phases
        .iter()
        .filter(|p| matches!(p, Phase::StartNew { count: 1 }))
        .count();
    assert_eq!(starts, 3);
    // With surge, each batch is healthy and routed before an old container leaves.
    assert_eq!(
        &phases[..4],
        [
            Phase::StartNew { count: 1 },
            Phase::AwaitHealthy,
            Phase::Route {
                traffic: Traffic::Even
            },
            Phase::RetireStable { count: 1 }
        ]
    );
    let phases = walk(Rollout::rolling(3, 0, 2, Duration::ZERO, 60 * S));
    assert_eq!(phases[0], Phase::RetireStable { count: 2 });
    assert_eq!(phases[4], Phase::RetireStable { count: 1 });
    // With a pause, each batch takes traffic under the analysis before the next one.
    let phases = walk(Rollout::rolling(2, 1, 0, 4 * S, 60 * S));
    assert_eq!(
        &phases[2..5],
        [
            Phase::Route {
                traffic: Traffic::Even
            },
            Phase::Pause { duration: 4 * S },
            Phase::RetireStable { count: 1 }
        ]
    );
}

#[test]
fn reload_swaps_a_batch_in_place_then_checks_and_analyses_it_before_the_next() {
    let batch = |count| {
        [
            Phase::Reload { count },
            Phase::AwaitHealthy,
            Phase::Route {
                traffic: Traffic::Even,
            },
            Phase::Pause { duration: 2 * S },
        ]
    };
    let phases = walk(Rollout::reload(3, 2, 2 * S, 60 * S));
    assert_eq!(phases, [batch(2), batch(1)].concat());
    // A reload never starts or retires anything: the same instances run the new version.
    assert!(
        !phases
            .iter()
            .any(|p| matches!(p, Phase::StartNew { .. } | Phase::RetireStable { .. }))
    );
    // An unhealthy reloaded batch rolls back before it gets traffic.
    let mut rollout = Rollout::reload(2, 1, S, 60 * S);
    let now = Instant::now();
    assert_eq!(
        rollout.advance(Event::Begin, now),
        Action::Perform(Phase::Reload { count: 1 })
    );
    rollout.advance(Event::Done, now);
    assert!(matches!(
        rollout.advance(Event::Unhealthy("down".into()), now),
        Action::Rollback { .. }
    ));
}

#[test]
fn canary_steps_pause_between_weights() {
    let phases = walk(Rollout::canary(2, &[10, 50, 100], 10 * S, 60 * S));
    let routes: Vec<&Phase> = phases
        .iter()
        .filter(|p| matches!(p, Phase::Route { .. }))
        .collect();
    assert_eq!(
        routes,
        [
            &Phase::Route {
                traffic: Traffic::Percent(10)
            },
            &Phase::Route {
                traffic: Traffic::Percent(50)
            },
            &Phase::Route {
                traffic: Traffic::Percent(100)
            }
        ]
    );
    assert_eq!(
        phases.last(),
        Some(&Phase::RetireStable { count: usize::MAX })
    );
}

#[test]
fn an_operator_pause_holds_the_canary_at_its_weight_until_resumed() {
    let t0 = Instant::now();
    let mut rollout = Rollout::canary(2, &[10, 100], 5 * S, 60 * S);
    rollout.advance(Event::Begin, t0);
    rollout.advance(Event::Done, t0);
    rollout.advance(Event::Healthy, t0);
    assert_eq!(
        rollout.advance(Event::Done, t0),
        Action::Perform(Phase::Pause { duration: 5 * S })
    );
    assert_eq!(
        rollout.advance(Event::Pause, t0 + S),
        Action::WaitUntil(t0 + 5 * S)
    );
    // Long past the pause's end, still held at 10%.
    for t in [6, 60, 600] {
        assert_eq!(
            rollout.advance(Event::Tick, t0 + t * S),
            Action::WaitUntil(t0 + t * S + HOLD_POLL)
        );
    }
    // A failed analysis still rolls back while held.
    let mut failing = rollout.clone();
    assert!(matches!(
        failing.advance(Event::AnalysisFailed("5xx".into()), t0 + 601 * S),
        Action::Rollback { .. }
    ));
    assert_eq!(
        rollout.advance(Event::Resume, t0 + 601 * S),
        Action::Perform(Phase::Route {
            traffic: Traffic::Percent(100)
        })
    );
}

#[test]
fn an_operator_promote_skips_the_pauses_and_abort_rolls_back() {
    let t0 = Instant::now();
    let mut rollout = Rollout::canary(2, &[10, 50, 100], 60 * S, 60 * S);
    rollout.advance(Event::Begin, t0);
    rollout.advance(Event::Done, t0);
    rollout.advance(Event::Healthy, t0);
    rollout.advance(Event::Done, t0);
    let mut aborted = rollout.clone();
    assert_eq!(
        rollout.advance(Event::Promote, t0 + S),
        Action::Perform(Phase::Route {
            traffic: Traffic::Percent(50)
        })
    );
    assert_eq!(
        rollout.advance(Event::Done, t0 + S),
        Action::Perform(Phase::Pause { duration: 60 * S })
    );
    assert_eq!(
        rollout.advance(Event::Done, t0 + S),
        Action::Perform(Phase::Route {
            traffic: Traffic::Percent(100)
        })
    );
    assert_eq!(
        aborted.advance(Event::Abort("alice@laptop".into()), t0 + S),
        Action::Rollback {
            reason: "aborted by alice@laptop".into()
        }
    );
}

#[test]
fn hooks_come_before_the_first_traffic_and_after_the_last_route_and_can_roll_back() {
    let t0 = Instant::now();
    let rollout = Rollout::canary(2, &[10, 100], S, 60 * S).with_hooks(true, true);
    let phases = rollout.phases().to_vec();
    let pre = Phase::Hooks {
        when: HookPoint::Pre,
    };
    let post = Phase::Hooks {
        when: HookPoint::Post,
    };
    assert_eq!(phases[2], pre);
    assert_eq!(
        phases[3],
        Phase::Route {
            traffic: Traffic::Percent(10)
        }
    );
    assert_eq!(phases[phases.len() - 2], post);
    assert_eq!(
        phases[phases.len() - 3],
        Phase::Route {
            traffic: Traffic::Percent(100)
        }
    );
    let mut rollout = rollout;
    rollout.advance(Event::Begin, t0);
    rollout.advance(Event::Done, t0);
    assert_eq!(rollout.advance(Event::Healthy, t0), Action::Perform(pre));
    assert_eq!(
        rollout.advance(Event::HookFailed("migrate: exit 1".into()), t0),
        Action::Rollback {
            reason: "a hook failed: migrate: exit 1".into()
        }
    );
}

#[test]
fn a_failed_analysis_during_a_pause_rolls_back() {
    let t0 = Instant::now();
    let mut rollout = Rollout::canary(2, &[10, 100], 10 * S, 60 * S);
    assert_eq!(
        rollout.advance(Event::Begin, t0),
        Action::Perform(Phase::StartNew { count: 2 })
    );
    assert_eq!(
        rollout.advance(Event::Done, t0),
        Action::Perform(Phase::AwaitHealthy)
    );
    // Before traffic, an analysis has nothing to say.
    assert_eq!(
        rollout.advance(Event::AnalysisFailed("early".into()), t0),
        Action::WaitUntil(t0 + 60 * S)
    );
    assert_eq!(
        rollout.advance(Event::Healthy, t0),
        Action::Perform(Phase::Route {
            traffic: Traffic::Percent(10)
        })
    );
    assert_eq!(
        rollout.advance(Event::Done, t0),
        Action::Perform(Phase::Pause { duration: 10 * S })
    );
    assert_eq!(
        rollout.advance(Event::Tick, t0 + 2 * S),
        Action::WaitUntil(t0 + 10 * S)
    );
    let action = rollout.advance(
        Event::AnalysisFailed("5xx rate 30% > 1%".into()),
        t0 + 5 * S,
    );
    assert_eq!(
        action,
        Action::Rollback {
            reason: "the analysis failed: 5xx rate 30% > 1%".into()
        }
    );
    assert!(rollout.is_finished());
    assert_eq!(rollout.advance(Event::Tick, t0 + 20 * S), action);
}

#[test]
fn never_healthy_is_rolled_back_at_the_deadline_without_traffic() {
    let t0 = Instant::now();
    let mut rollout = Rollout::blue_green(1, 30 * S, 60 * S, None);
    rollout.advance(Event::Begin, t0);
    assert_eq!(
        rollout.advance(Event::Done, t0),
        Action::Perform(Phase::AwaitHealthy)
    );
    assert_eq!(
        rollout.advance(Event::Tick, t0 + 59 * S),
        Action::WaitUntil(t0 + 60 * S)
    );
    assert_eq!(
        rollout.advance(Event::Tick, t0 + 60 * S),
        Action::Rollback {
            reason: "the new containers were not healthy within 1m".into()
        }
    );
    let mut rollout = Rollout::blue_green(1, 30 * S, 60 * S, None);
    rollout.advance(Event::Begin, t0);
    rollout.advance(Event::Done, t0);
    assert!(matches!(
        rollout.advance(Event::Unhealthy("/healthz answered 503".into()), t0 + S),
        Action::Rollback { .. }
    ));
}

#[test]
fn detection_time() {
    assert_eq!(Rollout::worst_case_detection(5 * S, 2), 15 * S);
}
