//! How a command's error is shown: located diagnostics for pipeline problems, one line
//! otherwise, JSON with `--json`, an annotation under GitHub Actions.

use miette::{GraphicalReportHandler, GraphicalTheme};

use super::Session;
use crate::config::ConfigError;
use crate::error::Error;
use crate::ui;

/// Prints an error the way its kind deserves: located diagnostics for config problems.
pub(super) fn report_error(session: &Session, error: &Error) {
    let printer = &session.printer;
    if session.ui.json {
        let value = match error {
            Error::Config(config) => serde_json::json!({
                "event": "error",
                "kind": "config",
                "message": config.to_string(),
                "problems": config.problems().iter().map(|p| serde_json::json!({
                    "location": config.location(p),
                    "message": p.message,
                    "help": p.help,
                })).collect::<Vec<_>>(),
            }),
            other => serde_json::json!({
                "event": "error",
                "kind": format!("{:?}", other.exit_code()).to_lowercase(),
                "message": other.to_string(),
                "causes": other.causes(),
            }),
        };
        printer.out(&value.to_string());
        return;
    }
    match error {
        Error::Config(config) => printer.err(&render_config_error(config, session.ui.color)),
        // Reported stage by stage (with annotations under GitHub Actions) as they ended.
        Error::StagesFailed => return,
        other => {
            let prefix = if session.ui.color {
                console::style("error:").red().bold().to_string()
            } else {
                "error:".to_string()
            };
            let mut text = format!("{prefix} {other}");
            for cause in other.causes() {
                text.push_str(&format!("\n  Caused by: {cause}"));
            }
            printer.err(&text);
        }
    }
    if session.ui.github {
        printer.out(&format!(
            "::error::{}",
            ui::github::escape(&error.to_string())
        ));
    }
}

/// Renders every problem with its snippet, caret and hint, then a one-line summary.
pub fn render_config_error(error: &ConfigError, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    // Never split target names such as `linux-x64-musl` at their hyphens.
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false)
        .with_word_splitter(textwrap::WordSplitter::NoHyphenation);
    let mut out = String::new();
    for diagnostic in error.diagnostics() {
        let _ = handler.render_report(&mut out, &diagnostic);
    }
    out.push_str(&format!("error: {}", error));
    out
}
