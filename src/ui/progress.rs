//! Progress bars on a terminal: one spinner line per running stage, with elapsed time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Event, Printer, Reporter, failure_lines, outcome_text};
use crate::events::UploadState;
use crate::report::StageStatus;

/// Spinners for running stages; finished stages become plain lines above them.
pub struct ProgressReporter {
    printer: Printer,
    bars: MultiProgress,
    running: Mutex<HashMap<String, ProgressBar>>,
    verbosity: i8,
}

impl ProgressReporter {
    /// A reporter drawing on stderr.
    pub fn new(mut printer: Printer, verbosity: i8) -> Self {
        let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        printer.bars = Some(bars.clone());
        ProgressReporter {
            printer,
            bars,
            running: Mutex::new(HashMap::new()),
            verbosity,
        }
    }

    fn mark(&self, status: &StageStatus) -> String {
        match status {
            s if s.is_failure() => self.printer.paint(console::Style::new().red().bold(), "✗"),
            StageStatus::Succeeded | StageStatus::Cached => {
                self.printer.paint(console::Style::new().green(), "✓")
            }
            _ => self.printer.paint(console::Style::new().dim(), "-"),
        }
    }

    fn style() -> ProgressStyle {
        ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {wide_msg} {elapsed:>4}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
    }
}

impl Reporter for ProgressReporter {
    fn report(&self, event: &Event<'_>) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        match event {
            Event::Started {
                lane,
                attempt,
                attempts,
            } => {
                let bar = running.entry(lane.to_string()).or_insert_with(|| {
                    let bar = self.bars.add(ProgressBar::new_spinner());
                    bar.set_style(Self::style());
                    bar.set_prefix(lane.to_string());
                    bar.enable_steady_tick(Duration::from_millis(100));
                    bar
                });
                if *attempt > 1 {
                    bar.set_message(format!("attempt {attempt} of {attempts}"));
                }
            }
            Event::StepStarted { lane, step } => match running.get(&lane.to_string()) {
                Some(bar) => bar.set_message(
                    self.printer
                        .masker()
                        .mask(&step.command.to_string())
                        .into_owned(),
                ),
                None => self.printer.err(&format!("  {lane}: $ {}", step.command)),
            },
            Event::Output { lane, line } if self.verbosity > 0 => {
                self.printer.err(&format!("{lane}| {line}"))
            }
            Event::Retrying { lane, reason, .. } => {
                if let Some(bar) = running.get(&lane.to_string()) {
                    bar.set_message(format!("retrying: {reason}"));
                }
            }
            Event::UnitFinished { stage, report } => {
                let lane = format!("{stage} {}", report.label.as_deref().unwrap_or_default());
                if let Some(bar) = running.remove(&lane) {
                    bar.finish_and_clear();
                    self.bars.remove(&bar);
                }
                let mark = self.mark(&report.outcome.status);
                self.printer
                    .err(&format!("{mark} {lane} {}", outcome_text(&report.outcome)));
                if report.outcome.status.is_failure() {
                    for line in failure_lines(&report.outcome, &[]) {
                        self.printer.err(&line);
                    }
                }
            }
            Event::StageFinished(report) => {
                if let Some(bar) = running.remove(&report.stage) {
                    bar.finish_and_clear();
                    self.bars.remove(&bar);
                }
                let mark = self.mark(&report.outcome.status);
                self.printer.err(&format!(
                    "{mark} {} {}",
                    report.stage,
                    outcome_text(&report.outcome)
                ));
                if report.outcome.status.is_failure() {
                    for line in failure_lines(&report.outcome, &report.units) {
                        self.printer.err(&line);
                    }
                }
            }
            Event::Upload {
                channel,
                name,
                size,
                state,
            } => {
                let key = format!("{channel} {name}");
                if *state == UploadState::Started {
                    let bar = self.bars.add(ProgressBar::new_spinner());
                    bar.set_style(Self::style());
                    bar.set_prefix(channel.to_string());
                    bar.set_message(format!(
                        "uploading {name} ({})",
                        indicatif::HumanBytes(*size)
                    ));
                    bar.enable_steady_tick(Duration::from_millis(100));
                    running.insert(key, bar);
                } else if let Some(bar) = running.remove(&key) {
                    bar.finish_and_clear();
                    self.bars.remove(&bar);
                }
            }
            Event::RunFinished(run) => self.printer.err(&super::run_finished_text(run)),
            Event::RunStarted { .. } => self.printer.err(&super::run_started_text(event)),
            Event::Message { level, text }
                if *level >= super::Level::Info || self.verbosity > 0 =>
            {
                self.printer.err(text);
            }
            _ => {}
        }
    }
}
