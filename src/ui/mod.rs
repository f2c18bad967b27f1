//! Everything shipit shows to people and machines goes through here.
//!
//! Work code emits [`Event`]s to a [`Reporter`] (both defined below it, in
//! [`crate::events`]); the reporter chosen at start-up here decides how they look: progress bars on a terminal, timestamped lines otherwise, JSON lines with
//! `--json`, plus GitHub Actions groups and annotations under `GITHUB_ACTIONS=true`.
//! Every string passes through the [`Masker`] on its way out.

pub mod github;
pub mod json;
mod plain;
mod progress;

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

pub use crate::events::{Event, Lane, Level, Reporter};
use crate::report::{Outcome, RunReport, UnitReport};
use crate::secrets::Masker;
pub use crate::words::short_duration;

pub use github::GithubActions;

/// Output settings from the command line and environment.
#[derive(Debug, Clone, Copy)]
pub struct UiOptions {
    /// `--json`: JSON lines on stdout.
    pub json: bool,
    /// `-v` count minus `-q` count.
    pub verbosity: i8,
    /// Colour on stderr.
    pub color: bool,
    /// Running under GitHub Actions.
    pub github: bool,
    /// stderr is a terminal: draw progress bars.
    pub interactive: bool,
}

impl UiOptions {
    /// Settings for this process: `--color`, `--json`, `-v/-q`, `GITHUB_ACTIONS`, terminal detection.
    pub fn detect(json: bool, verbosity: i8, color: ColorChoice) -> UiOptions {
        let tty = std::io::stderr().is_terminal();
        let no_color = std::env::var_os(crate::env_vars::NO_COLOR).is_some_and(|v| !v.is_empty());
        UiOptions {
            json,
            verbosity,
            color: match color {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => tty && !no_color,
            },
            github: std::env::var(crate::env_vars::GITHUB_ACTIONS).is_ok_and(|v| v == "true"),
            interactive: tty && !json,
        }
    }
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when stderr is a terminal and `NO_COLOR` is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// The one place that writes to stdout and stderr. Masks secrets on the way.
#[derive(Clone)]
pub struct Printer {
    masker: Arc<Masker>,
    bars: Option<indicatif::MultiProgress>,
    /// Colour allowed on stderr.
    pub color: bool,
}

impl Printer {
    /// A printer masking with `masker`.
    pub fn new(masker: Arc<Masker>, color: bool) -> Printer {
        Printer {
            masker,
            bars: None,
            color,
        }
    }

    /// A line on stderr (above any progress bars).
    pub fn err(&self, text: &str) {
        let masked = self.masker.mask(text);
        match &self.bars {
            Some(bars) if !bars.is_hidden() => {
                let _ = bars.println(masked.as_ref());
            }
            _ => {
                let _ = writeln!(std::io::stderr().lock(), "{masked}");
            }
        }
    }

    /// Text on stdout (the command's result: a plan, a schema, JSON events).
    pub fn out(&self, text: &str) {
        let masked = self.masker.mask(text);
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(masked.as_bytes());
        if !masked.ends_with('\n') {
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
    }

    /// The masker, for text that is written elsewhere (files).
    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    /// A shared handle on the masker, for work running on other threads.
    pub fn masker_arc(&self) -> Arc<Masker> {
        self.masker.clone()
    }

    fn paint(&self, style: console::Style, text: &str) -> String {
        if self.color {
            style.force_styling(true).apply_to(text).to_string()
        } else {
            text.to_string()
        }
    }
}

/// Builds the reporter for these settings.
pub fn reporter(options: UiOptions, printer: Printer) -> Arc<dyn Reporter> {
    let inner: Arc<dyn Reporter> = if options.json {
        Arc::new(json::JsonReporter::new(printer.clone()))
    } else if options.interactive && options.verbosity >= 0 && !options.github {
        Arc::new(progress::ProgressReporter::new(
            printer.clone(),
            options.verbosity,
        ))
    } else {
        Arc::new(plain::PlainReporter::new(
            printer.clone(),
            options.verbosity,
        ))
    };
    if options.github && !options.json {
        Arc::new(GithubActions::new(inner, printer))
    } else {
        inner
    }
}

/// The failure details shown for a stage (empty for stages with units, whose failures were
/// shown unit by unit) or a unit: last lines of output, log path.
pub fn failure_lines(outcome: &Outcome, units: &[UnitReport]) -> Vec<String> {
    if !units.is_empty() {
        return Vec::new();
    }
    let mut lines = Vec::new();
    if !outcome.tail.is_empty() {
        lines.push(format!("  last {} lines of output:", outcome.tail.len()));
        lines.extend(outcome.tail.iter().map(|l| format!("  | {l}")));
    }
    if let Some(log) = &outcome.log {
        lines.push(format!("  full log: {}", log.display()));
    }
    if let Some(hint) = &outcome.hint {
        lines.push(format!("  hint: {hint}"));
    }
    lines
}

/// What a finished stage's or unit's line says after its name.
pub fn outcome_text(outcome: &Outcome) -> String {
    let (status, elapsed, attempts) = (&outcome.status, outcome.elapsed, outcome.attempts);
    use crate::report::StageStatus::*;
    let took = short_duration(elapsed);
    let tries = if attempts > 1 {
        format!(", {attempts} attempts")
    } else {
        String::new()
    };
    match status {
        Succeeded => format!("done in {took}{tries}"),
        Cached => "cached: inputs unchanged".to_string(),
        Failed { reason } => format!("failed after {took}{tries}: {reason}"),
        TimedOut { after_ms } => format!(
            "timed out after {}{tries}; its processes were killed",
            humantime::format_duration(Duration::from_millis(*after_ms))
        ),
        Skipped { reason } => format!("skipped: {reason}"),
        Blocked { by } => format!("not run: `{by}` did not succeed"),
        Cancelled => "cancelled".to_string(),
        Planned => "would run".to_string(),
    }
}

/// The headline of a run: "demo 0.1.0: 3 stages".
pub fn run_started_text(event: &Event<'_>) -> String {
    let Event::RunStarted {
        project,
        version,
        stages,
        dry_run,
    } = event
    else {
        return String::new();
    };
    let mode = if *dry_run {
        " (dry run: nothing is executed)"
    } else {
        ""
    };
    format!("{project} {version}: {stages} stages{mode}")
}

/// The last line of a run: "finished in 3.2s", "failed (1 of 3 stages did not succeed) in 2.0s".
pub fn run_finished_text(run: &RunReport) -> String {
    let verdict = if run.interrupted {
        "interrupted".to_string()
    } else if run.succeeded() {
        "finished".to_string()
    } else {
        let bad = run
            .stages
            .iter()
            .filter(|s| !s.outcome.status.lets_dependents_run())
            .count();
        format!(
            "failed ({bad} of {} stages did not succeed)",
            run.stages.len()
        )
    };
    format!("{verdict} in {}", short_duration(run.elapsed))
}
