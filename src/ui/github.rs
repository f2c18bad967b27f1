//! GitHub Actions: a collapsible group per stage holding its log, `::error::` annotations on
//! failures, and a summary table in `$GITHUB_STEP_SUMMARY`.

use std::io::Write;
use std::sync::Arc;

use super::{Event, Printer, Reporter, outcome_text, short_duration};

/// Adds GitHub Actions workflow commands around another reporter.
pub struct GithubActions {
    inner: Arc<dyn Reporter>,
    printer: Printer,
}

impl GithubActions {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Reporter>, printer: Printer) -> Self {
        GithubActions { inner, printer }
    }
}

impl GithubActions {
    /// A collapsible group holding a log file.
    fn group(&self, title: &str, status: &str, log: Option<&std::path::Path>) {
        let Some(log) = log.filter(|l| l.is_file()) else {
            return;
        };
        self.printer.out(&format!("::group::{title} ({status})"));
        if let Ok(text) = std::fs::read_to_string(log) {
            self.printer.out(&text);
        }
        self.printer.out("::endgroup::");
    }
}

/// Escapes a workflow command's message (`%`, CR, LF).
pub fn escape(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property (also `:` and `,`).
fn escape_property(text: &str) -> String {
    escape(text).replace(':', "%3A").replace(',', "%2C")
}

impl Reporter for GithubActions {
    fn report(&self, event: &Event<'_>) {
        self.inner.report(event);
        match event {
            // Groups are written when a unit or stage ends, so parallel work never interleaves.
            Event::UnitFinished { stage, report } => {
                let title = format!("{stage} {}", report.label.as_deref().unwrap_or_default());
                self.group(
                    &title,
                    report.outcome.status.word(),
                    report.outcome.log.as_deref(),
                );
            }
            Event::StageFinished(report) => {
                if report.units.is_empty() {
                    self.group(
                        &report.stage,
                        report.outcome.status.word(),
                        report.outcome.log.as_deref(),
                    );
                }
                if report.outcome.status.is_failure() {
                    let mut message = outcome_text(&report.outcome);
                    if !report.outcome.tail.is_empty() {
                        message.push('\n');
                        message.push_str(&report.outcome.tail.join("\n"));
                    }
                    let hints: std::collections::BTreeSet<&str> = std::iter::once(&report.outcome)
                        .chain(report.units.iter().map(|u| &u.outcome))
                        .filter_map(|o| o.hint.as_deref())
                        .collect();
                    for hint in hints {
                        message.push_str(&format!("\nhint: {hint}"));
                    }
                    self.printer.out(&format!(
                        "::error title={}::{}",
                        escape_property(&format!("shipit: stage {} failed", report.stage)),
                        escape(&message)
                    ));
                }
            }
            Event::RunFinished(run) => {
                let Ok(path) = std::env::var(crate::env_vars::GITHUB_STEP_SUMMARY) else {
                    return;
                };
                let mut table =
                    String::from("### shipit\n\n| stage | result | time |\n|---|---|---|\n");
                for stage in &run.stages {
                    let icon = match &stage.outcome.status {
                        s if s.is_failure() => "❌",
                        crate::report::StageStatus::Succeeded
                        | crate::report::StageStatus::Cached => "✅",
                        _ => "⏭️",
                    };
                    table.push_str(&format!(
                        "| {} | {icon} {} | {} |\n",
                        stage.stage,
                        outcome_text(&stage.outcome).replace('|', "\\|"),
                        short_duration(stage.outcome.elapsed)
                    ));
                }
                let masked = self.printer.masker().mask(&table).into_owned();
                if let Ok(mut file) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                {
                    let _ = writeln!(file, "{masked}");
                }
            }
            Event::Message {
                level: super::Level::Error,
                text,
            } => {
                self.printer.out(&format!("::error::{}", escape(text)));
            }
            Event::Message {
                level: super::Level::Warn,
                text,
            } => {
                self.printer.out(&format!("::warning::{}", escape(text)));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_workflow_commands() {
        assert_eq!(escape("50% done\nnext"), "50%25 done%0Anext");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }
}
