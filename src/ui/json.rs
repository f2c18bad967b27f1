//! `--json`: one JSON object per line on stdout, for machines.

use serde_json::{Value, json};

use super::{Event, Printer, Reporter};
use crate::events::UploadState;

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
        Event::Started {
            lane,
            attempt,
            attempts,
        } => {
            json!({"event": "started", "stage": lane.stage, "unit": lane.unit, "attempt": attempt, "attempts": attempts})
        }
        Event::StepStarted { lane, step } => {
            json!({"event": "step_started", "stage": lane.stage, "unit": lane.unit, "command": step.command.to_string()})
        }
        Event::Output { lane, line } => {
            json!({"event": "output", "stage": lane.stage, "unit": lane.unit, "line": line})
        }
        Event::Retrying {
            lane,
            attempt,
            delay,
            reason,
        } => {
            json!({"event": "retrying", "stage": lane.stage, "unit": lane.unit, "attempt": attempt, "delay_ms": delay.as_millis() as u64, "reason": reason})
        }
        Event::UnitFinished { stage, report } => {
            let mut value = serde_json::to_value(report).unwrap_or(Value::Null);
            value["event"] = json!("unit_finished");
            value["stage"] = json!(stage);
            value
        }
        Event::StageFinished(report) => {
            let mut value = serde_json::to_value(report).unwrap_or(Value::Null);
            value["event"] = json!("stage_finished");
            value
        }
        Event::RunFinished(run) => {
            json!({"event": "run_finished", "succeeded": run.succeeded(), "interrupted": run.interrupted, "elapsed_ms": run.elapsed.as_millis() as u64})
        }
        Event::ChannelFinished {
            channel,
            record,
            error,
        } => {
            json!({"event": "channel_finished", "channel": channel, "ok": error.is_none(), "record": record, "error": error})
        }
        Event::Rechecked {
            channel,
            file,
            expected,
            found,
        } => {
            json!({"event": "rechecked", "channel": channel, "file": file, "expected": expected, "found": found, "ok": *found == Some(*expected)})
        }
        Event::Upload {
            channel,
            name,
            size,
            state,
        } => {
            let (state, elapsed) = match state {
                UploadState::Started => ("started", None),
                UploadState::Done { elapsed } => ("done", Some(elapsed.as_millis() as u64)),
                UploadState::Present => ("present", None),
                UploadState::Failed => ("failed", None),
            };
            json!({"event": "upload", "channel": channel, "name": name, "size": size, "state": state, "elapsed_ms": elapsed})
        }
        Event::ImagePushed {
            repository,
            digest,
            tags,
        } => {
            json!({"event": "image_pushed", "repository": repository, "digest": digest, "tags": tags})
        }
        Event::DeployPhase { revision, phase } => {
            json!({"event": "deploy_phase", "revision": revision, "phase": phase})
        }
        Event::DeploySample {
            revision,
            requests,
            errors,
            response_ms,
            failure,
        } => {
            json!({"event": "deploy_sample", "revision": revision, "requests": requests, "errors": errors, "response_ms": response_ms, "failure": failure})
        }
        Event::Message { level, text } => json!({"event": "message", "level": level, "text": text}),
    }
}

impl Reporter for JsonReporter {
    fn report(&self, event: &Event<'_>) {
        self.printer.out(&event_json(event).to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::Level;

    /// The events `release` and `deploy` print with `--json`, pinned: a change to their shape
    /// shows up here (and is a change for whoever parses them).
    #[test]
    fn release_and_deploy_event_schema() {
        let record =
            json!({"url": "https://github.com/acme/demo/releases/tag/v1.0.0", "assets": {}});
        let tags = ["1.0.0".to_string(), "latest".to_string()];
        let events = [
            Event::Upload {
                channel: "github",
                name: "demo-1.0.0-linux-x64.tar.gz",
                size: 1_048_576,
                state: UploadState::Started,
            },
            Event::Upload {
                channel: "github",
                name: "demo-1.0.0-linux-x64.tar.gz",
                size: 1_048_576,
                state: UploadState::Done {
                    elapsed: std::time::Duration::from_millis(1250),
                },
            },
            Event::Upload {
                channel: "github",
                name: "SHA256SUMS",
                size: 180,
                state: UploadState::Present,
            },
            Event::ImagePushed {
                repository: "ghcr.io/acme/demo",
                digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                tags: &tags,
            },
            Event::ChannelFinished {
                channel: "github",
                record: Some(&record),
                error: None,
            },
            Event::ChannelFinished {
                channel: "homebrew",
                record: None,
                error: Some("skipped: github failed"),
            },
            Event::DeployPhase {
                revision: 2,
                phase: "route 10% of requests to the new version",
            },
            Event::DeploySample {
                revision: 2,
                requests: 25,
                errors: 8,
                response_ms: 3,
                failure: Some("8 of 25 requests failed (32.0% > 5.0%)"),
            },
            Event::Message {
                level: Level::Warn,
                text: "rolling back revision 2",
            },
        ];
        let lines: Vec<String> = events.iter().map(|e| event_json(e).to_string()).collect();
        insta::assert_snapshot!(lines.join("\n"));
    }
}
