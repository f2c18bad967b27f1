//! Rollout strategies as pure state machines: each is a list of phases walked by [`Rollout`],
//! which is told what happened (and what time it is) and answers with the next action. No
//! clock, no I/O: the executor performs the actions and reports back, and tests drive the
//! machine with made-up times.

use std::time::{Duration, Instant};

use serde::Serialize;

/// How traffic is split once new containers are in the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Traffic {
    /// This share (0 to 100) to the new revision, the rest to the stable one.
    Percent(u32),
    /// Every healthy container of either revision gets the same weight (rolling updates).
    Even,
}

/// One planned step of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum Phase {
    /// Start containers of the new revision (not yet given traffic).
    StartNew {
        /// How many.
        count: usize,
    },
    /// Wait until every new container passes its health check, within the health deadline.
    AwaitHealthy,
    /// Route traffic.
    Route {
        /// The split.
        traffic: Traffic,
    },
    /// Wait, with the analysis running: a failed analysis rolls back.
    Pause {
        /// How long.
        #[serde(with = "crate::deploy::durations")]
        duration: Duration,
    },
    /// Show the healthy new containers on the preview backend for this long, before any of
    /// the live traffic goes to them.
    Preview {
        /// How long.
        #[serde(with = "crate::deploy::durations")]
        duration: Duration,
    },
    /// Run the environment's hooks (`pre`: its commands and gate, before any traffic moves;
    /// `post`: once the new version takes all traffic): a failing one rolls back.
    Hooks {
        /// `pre` or `post`.
        when: HookPoint,
    },
    /// Swap `count` instances of the stable revision to the new version in place (each drained
    /// first while others serve), then treat them as new ones: health, traffic, analysis.
    Reload {
        /// How many.
        count: usize,
    },
    /// Drain `count` containers of the stable revision and remove them.
    RetireStable {
        /// How many (`usize::MAX`: all).
        count: usize,
    },
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Phase::StartNew { count } => write!(f, "start {count} container(s) of the new version"),
            Phase::AwaitHealthy => f.write_str("wait until every new container is healthy"),
            Phase::Route {
                traffic: Traffic::Percent(p),
            } => {
                write!(f, "route {p}% of requests to the new version")
            }
            Phase::Route {
                traffic: Traffic::Even,
            } => f.write_str("give the new containers their share of requests"),
            Phase::Pause { duration } => {
                write!(
                    f,
                    "pause {} with the analysis running",
                    humantime::format_duration(*duration)
                )
            }
            Phase::Preview { duration } => write!(
                f,
                "show the new version on the preview backend for {}",
                humantime::format_duration(*duration)
            ),
            Phase::Hooks {
                when: HookPoint::Pre,
            } => f.write_str("run the pre-traffic hooks"),
            Phase::Hooks {
                when: HookPoint::Post,
            } => f.write_str("run the post-promotion hooks"),
            Phase::Reload { count } => {
                write!(f, "reload {count} instance(s) on the new version in place")
            }
            Phase::RetireStable { count: usize::MAX } => {
                f.write_str("drain and remove the old containers")
            }
            Phase::RetireStable { count } => write!(f, "drain and remove {count} old container(s)"),
        }
    }
}

/// Where hooks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookPoint {
    /// Before any traffic moves to the new version.
    Pre,
    /// Once it takes all traffic, before the old one is let go.
    Post,
}

/// What the executor should do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Perform this phase, then report [`Event::Done`] (or, for `AwaitHealthy`,
    /// [`Event::Healthy`] / [`Event::Unhealthy`]).
    Perform(Phase),
    /// Keep analysing and report [`Event::Tick`] again by `until`.
    WaitUntil(Instant),
    /// The new revision is the stable one: record it.
    Promote,
    /// Traffic back to the stable revision at once, remove the new containers.
    Rollback {
        /// Why.
        reason: String,
    },
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The rollout begins.
    Begin,
    /// The phase asked for is done.
    Done,
    /// Every new container is healthy.
    Healthy,
    /// A new container failed its health check.
    Unhealthy(String),
    /// The analysis tripped (its failure limit of consecutive bad samples was reached).
    AnalysisFailed(String),
    /// Time passed.
    Tick,
    /// An operator paused the rollout: it holds where it is (its analysis still running)
    /// until [`Event::Resume`].
    Pause,
    /// An operator resumed it.
    Resume,
    /// An operator promoted it: every pause left is skipped.
    Promote,
    /// An operator aborted it (who): rolled back.
    Abort(String),
    /// A hook failed (why).
    HookFailed(String),
}

/// How often a held rollout looks again.
const HOLD_POLL: Duration = Duration::from_secs(1);

/// A rollout in progress.
#[derive(Debug, Clone)]
pub struct Rollout {
    phases: Vec<Phase>,
    /// Index of the phase in progress.
    current: Option<usize>,
    health_deadline: Duration,
    /// When the current `AwaitHealthy` gives up.
    healthy_by: Option<Instant>,
    /// When the current `Pause` ends.
    pause_until: Option<Instant>,
    /// Whether the new revision has had traffic (an analysis only counts from then on).
    routed: bool,
    finished: Option<Action>,
    /// Paused by an operator.
    held: bool,
    /// The current phase ended while held: the next one waits for the resume.
    held_next: bool,
    /// Promoted by an operator: pauses end at once.
    hurry: bool,
}

impl Rollout {
    /// Blue-green: start a full new color, wait until healthy, switch all traffic at once,
    /// keep the old color warm for `scale_down_delay` (analysing), then remove it.
    pub fn blue_green(
        replicas: usize,
        scale_down_delay: Duration,
        health_deadline: Duration,
        preview: Option<Duration>,
    ) -> Rollout {
        let mut phases = vec![Phase::StartNew { count: replicas }, Phase::AwaitHealthy];
        if let Some(duration) = preview {
            phases.push(Phase::Preview { duration });
        }
        phases.extend([
            Phase::Route {
                traffic: Traffic::Percent(100),
            },
            Phase::Pause {
                duration: scale_down_delay,
            },
            Phase::RetireStable { count: usize::MAX },
        ]);
        Rollout::new(phases, health_deadline)
    }

    /// Rolling: replace `replicas` in batches. With surge, a batch of new containers starts,
    /// turns healthy and joins before as many old ones leave; without, old ones leave first.
    /// Each batch then takes traffic for `pause` with the analysis running before the next.
    pub fn rolling(
        replicas: usize,
        max_surge: usize,
        max_unavailable: usize,
        pause: Duration,
        health_deadline: Duration,
    ) -> Rollout {
        let batch = max_surge.max(max_unavailable).max(1);
        let mut phases = Vec::new();
        let mut replaced = 0;
        while replaced < replicas.max(1) {
            let count = batch.min(replicas.max(1) - replaced);
            let start = [
                Phase::StartNew { count },
                Phase::AwaitHealthy,
                Phase::Route {
                    traffic: Traffic::Even,
                },
            ];
            let retire = Phase::RetireStable { count };
            let bake = (!pause.is_zero()).then_some(Phase::Pause { duration: pause });
            if max_surge > 0 {
                phases.extend(start);
                phases.extend(bake);
                phases.push(retire);
            } else {
                phases.push(retire);
                phases.extend(start);
                phases.extend(bake);
            }
            replaced += count;
        }
        Rollout::new(phases, health_deadline)
    }

    /// Canary: a full new set starts and turns healthy without traffic; then each step gives it
    /// that share of traffic and pauses (analysing); at 100% the stable set is removed.
    pub fn canary(
        replicas: usize,
        steps: &[u32],
        pause: Duration,
        health_deadline: Duration,
    ) -> Rollout {
        let mut phases = vec![Phase::StartNew { count: replicas }, Phase::AwaitHealthy];
        for &step in steps.iter().filter(|s| **s < 100) {
            phases.push(Phase::Route {
                traffic: Traffic::Percent(step),
            });
            phases.push(Phase::Pause { duration: pause });
        }
        phases.push(Phase::Route {
            traffic: Traffic::Percent(100),
        });
        phases.push(Phase::RetireStable { count: usize::MAX });
        Rollout::new(phases, health_deadline)
    }

    /// Reload: `batch` instances at a time are swapped to the new version in place, turn
    /// healthy, take their traffic back and are analysed for `pause` before the next batch.
    pub fn reload(
        replicas: usize,
        batch: usize,
        pause: Duration,
        health_deadline: Duration,
    ) -> Rollout {
        let mut phases = Vec::new();
        let mut reloaded = 0;
        while reloaded < replicas.max(1) {
            let count = batch.max(1).min(replicas.max(1) - reloaded);
            phases.extend([
                Phase::Reload { count },
                Phase::AwaitHealthy,
                Phase::Route {
                    traffic: Traffic::Even,
                },
            ]);
            if !pause.is_zero() {
                phases.push(Phase::Pause { duration: pause });
            }
            reloaded += count;
        }
        Rollout::new(phases, health_deadline)
    }

    fn new(phases: Vec<Phase>, health_deadline: Duration) -> Rollout {
        Rollout {
            phases,
            current: None,
            health_deadline,
            healthy_by: None,
            pause_until: None,
            routed: false,
            finished: None,
            held: false,
            held_next: false,
            hurry: false,
        }
    }

    /// The same rollout with hooks: `pre` before the first phase that routes traffic to the
    /// new version, `post` after the last one.
    pub fn with_hooks(mut self, pre: bool, post: bool) -> Rollout {
        let routes =
            |p: &Phase| matches!(p, Phase::Route { traffic } if *traffic != Traffic::Percent(0));
        if post && let Some(last) = self.phases.iter().rposition(routes) {
            self.phases.insert(
                last + 1,
                Phase::Hooks {
                    when: HookPoint::Post,
                },
            );
        }
        if pre && let Some(first) = self.phases.iter().position(routes) {
            self.phases.insert(
                first,
                Phase::Hooks {
                    when: HookPoint::Pre,
                },
            );
        }
        self
    }

    /// The planned phases, in order.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// Whether the rollout has ended (promoted or rolled back).
    pub fn is_finished(&self) -> bool {
        self.finished.is_some()
    }

    /// Takes in what happened at `now` and says what to do next.
    pub fn advance(&mut self, event: Event, now: Instant) -> Action {
        if let Some(done) = &self.finished {
            return done.clone();
        }
        let phase = self.current.map(|i| &self.phases[i]);
        let awaiting_health = phase == Some(&Phase::AwaitHealthy);
        match event {
            Event::Begin if phase.is_none() => return self.enter(0, now),
            Event::Pause => self.held = true,
            Event::Resume => self.held = false,
            Event::Promote => {
                self.held = false;
                self.hurry = true;
            }
            Event::Abort(by) => return self.rollback(format!("aborted by {by}")),
            Event::HookFailed(why) if matches!(phase, Some(Phase::Hooks { .. })) => {
                return self.rollback(format!("a hook failed: {why}"));
            }
            Event::Unhealthy(reason) if awaiting_health => {
                return self.rollback(format!("a new container is unhealthy: {reason}"));
            }
            // Before the new revision has traffic, an analysis has nothing to say about it.
            Event::AnalysisFailed(reason) if self.routed => {
                return self.rollback(format!("the analysis failed: {reason}"));
            }
            Event::Healthy if awaiting_health => return self.next(now),
            Event::Done
                if matches!(
                    phase,
                    Some(
                        Phase::StartNew { .. }
                            | Phase::Route { .. }
                            | Phase::RetireStable { .. }
                            | Phase::Reload { .. }
                            | Phase::Hooks { .. }
                    )
                ) =>
            {
                return self.next(now);
            }
            _ => {}
        }
        self.waiting(now)
    }

    /// The current phase goes on: time-bound phases check their clock, others are repeated.
    fn waiting(&mut self, now: Instant) -> Action {
        if self.held_next {
            if self.held {
                return Action::WaitUntil(now + HOLD_POLL);
            }
            self.held_next = false;
            return self.next(now);
        }
        match self.current.map(|i| self.phases[i].clone()) {
            None => Action::WaitUntil(now),
            Some(Phase::AwaitHealthy) => match self.healthy_by {
                Some(by) if now >= by => self.rollback(format!(
                    "the new containers were not healthy within {}",
                    humantime::format_duration(self.health_deadline)
                )),
                by => Action::WaitUntil(by.unwrap_or(now)),
            },
            Some(Phase::Pause { .. } | Phase::Preview { .. }) => match self.pause_until {
                Some(until) if now < until && !self.hurry => Action::WaitUntil(if self.held {
                    until.max(now + HOLD_POLL)
                } else {
                    until
                }),
                _ if self.held => Action::WaitUntil(now + HOLD_POLL),
                _ => self.next(now),
            },
            Some(phase) => Action::Perform(phase),
        }
    }

    fn next(&mut self, now: Instant) -> Action {
        if self.held && self.current.is_some() {
            self.held_next = true;
            return Action::WaitUntil(now + HOLD_POLL);
        }
        let next = self.current.map_or(0, |i| i + 1);
        self.enter(next, now)
    }

    fn enter(&mut self, index: usize, now: Instant) -> Action {
        let Some(phase) = self.phases.get(index).cloned() else {
            self.finished = Some(Action::Promote);
            return Action::Promote;
        };
        self.current = Some(index);
        match &phase {
            Phase::AwaitHealthy => self.healthy_by = Some(now + self.health_deadline),
            Phase::Pause { duration } | Phase::Preview { duration } => {
                self.pause_until = Some(now + *duration)
            }
            Phase::Route { traffic } => {
                self.routed |= *traffic != Traffic::Percent(0);
            }
            _ => {}
        }
        Action::Perform(phase)
    }

    fn rollback(&mut self, reason: String) -> Action {
        let action = Action::Rollback { reason };
        self.finished = Some(action.clone());
        action
    }

    /// The longest a bad new revision can take traffic before the analysis trips: a sample
    /// every `interval`, `failure_limit` bad ones in a row, plus the interval in which it went
    /// bad (that sample may still pass).
    pub fn worst_case_detection(interval: Duration, failure_limit: u32) -> Duration {
        interval * (failure_limit.max(1) + 1)
    }
}

#[cfg(test)]
mod tests;
