//! Timestamped lines, for logs and pipes.

use std::time::SystemTime;

use super::{
    Event, Printer, Reporter, failure_lines, outcome_text, run_finished_text, run_started_text,
    short_duration,
};

/// One line per event, each with a UTC time.
pub struct PlainReporter {
    printer: Printer,
    verbosity: i8,
}

impl PlainReporter {
    /// A reporter printing through `printer`.
    pub fn new(printer: Printer, verbosity: i8) -> Self {
        PlainReporter { printer, verbosity }
    }

    fn line(&self, text: &str) {
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let time = now.get(11..19).unwrap_or(&now);
        self.printer.err(&format!("[{time}] {text}"));
    }
}

impl Reporter for PlainReporter {
    fn report(&self, event: &Event<'_>) {
        let quiet = self.verbosity < 0;
        match event {
            Event::RunStarted { .. } if !quiet => self.line(&run_started_text(event)),
            Event::Started {
                lane,
                attempt,
                attempts,
            } if !quiet => match attempt {
                1 => self.line(&format!("{lane}: started")),
                _ => self.line(&format!("{lane}: attempt {attempt} of {attempts}")),
            },
            Event::StepStarted { lane, step } if self.verbosity > 0 => {
                self.line(&format!("{lane}: $ {}", step.command));
            }
            Event::Output { lane, line } if self.verbosity > 0 => {
                self.line(&format!("{lane}| {line}"))
            }
            Event::Retrying {
                lane,
                attempt,
                delay,
                reason,
            } => {
                self.line(&format!(
                    "{lane}: {reason}; attempt {attempt} in {}",
                    short_duration(*delay)
                ));
            }
            Event::UnitFinished { stage, report } => {
                let failed = report.outcome.status.is_failure();
                if quiet && !failed {
                    return;
                }
                let label = report.label.as_deref().unwrap_or_default();
                self.line(&format!(
                    "{stage} {label}: {}",
                    outcome_text(&report.outcome)
                ));
                if failed {
                    for line in failure_lines(&report.outcome, &[]) {
                        self.printer.err(&line);
                    }
                }
            }
            Event::StageFinished(report) => {
                let failed = report.outcome.status.is_failure();
                if quiet && !failed {
                    return;
                }
                self.line(&format!(
                    "{}: {}",
                    report.stage,
                    outcome_text(&report.outcome)
                ));
                if failed {
                    for line in failure_lines(&report.outcome, &report.units) {
                        self.printer.err(&line);
                    }
                }
            }
            Event::RunFinished(run) if !quiet || !run.succeeded() => {
                self.line(&run_finished_text(run))
            }
            Event::Message { level, text }
                if *level >= super::Level::Warn
                    || (!quiet && (*level >= super::Level::Info || self.verbosity > 0)) =>
            {
                let prefix = match level {
                    super::Level::Error => "error: ",
                    super::Level::Warn => "warning: ",
                    _ => "",
                };
                self.line(&format!("{prefix}{text}"));
            }
            _ => {}
        }
    }
}
