//! `--json`: one JSON object per line on stdout, for machines.

use serde_json::{Value, json};

use super::{Event, Printer, Reporter};

/// Writes every event as a JSON line.
pub struct JsonReporter {
    printer: Printer,
}

impl JsonReporter {
    /// A reporter printing through `printer`.
    pub fn new(printer: Printer) -> Self {
        JsonReporter { printer }
    }
}

/// The JSON form of an event.
pub fn event_json(event: &Event<'_>) -> Value {
    match event {
        Event::RunStarted {
            project,
            version,
            stages,
            dry_run,
        } => {
            json!({"event": "run_started", "project": project, "version": version, "stages": stages, "dry_run": dry_run})
        }
        Event::StageStarted {
            stage,
            attempt,
            attempts,
        } => {
            json!({"event": "stage_started", "stage": stage, "attempt": attempt, "attempts": attempts})
        }
        Event::StepStarted { stage, step } => {
            json!({"event": "step_started", "stage": stage, "command": step.command.to_string(), "label": step.label})
        }
        Event::Output { stage, line } => json!({"event": "output", "stage": stage, "line": line}),
        Event::Retrying {
            stage,
            attempt,
            delay,
            reason,
        } => {
            json!({"event": "retrying", "stage": stage, "attempt": attempt, "delay_ms": delay.as_millis() as u64, "reason": reason})
        }
        Event::StageFinished(report) => {
            let mut value = serde_json::to_value(report).unwrap_or(Value::Null);
            value["event"] = json!("stage_finished");
            value
        }
        Event::RunFinished(run) => {
            json!({"event": "run_finished", "succeeded": run.succeeded(), "interrupted": run.interrupted, "elapsed_ms": run.elapsed.as_millis() as u64})
        }
        Event::Message { level, text } => json!({"event": "message", "level": level, "text": text}),
    }
}

impl Reporter for JsonReporter {
    fn report(&self, event: &Event<'_>) {
        self.printer.out(&event_json(event).to_string());
    }
}
