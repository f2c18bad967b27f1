//! Files a built binary prints about itself (shell completions, a man page), written for the
//! later stages to ship: the host's build of the binary is run with the configured arguments,
//! with a bounded time and output, and its standard output is the file.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

/// The longest a generating command may run.
const TIME_LIMIT: Duration = Duration::from_secs(120);
/// The most a generated file may hold.
const MAX_OUTPUT: u64 = 64 << 20;

/// One file to generate.
#[derive(Debug, Clone, Serialize)]
pub struct GenerateSpec {
    /// The built binary to run (the host's build).
    pub binary: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Where its output goes.
    pub output: PathBuf,
    /// `SOURCE_DATE_EPOCH` for it, so a page that prints a date prints the release's.
    pub source_date_epoch: u64,
}

/// Why a file was not generated.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The binary could not be started.
    #[error("cannot run {}", .0.display())]
    Spawn(PathBuf, #[source] std::io::Error),
    /// It failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// What ran.
        command: String,
        /// How it ended.
        status: String,
        /// The end of what it printed on stderr.
        stderr: String,
    },
    /// It ran too long, or printed too much.
    #[error("`{0}` {1}")]
    Bounded(String, &'static str),
    /// The output could not be written.
    #[error(transparent)]
    Write(#[from] crate::file_error::FileError),
}

/// Runs the binary and writes what it printed; returns the size written.
pub fn write(spec: &GenerateSpec) -> Result<u64, GenerateError> {
    let command = std::iter::once(spec.binary.display().to_string())
        .chain(spec.args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new(&spec.binary)
        .args(&spec.args)
        .env("SOURCE_DATE_EPOCH", spec.source_date_epoch.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| GenerateError::Spawn(spec.binary.clone(), e))?;
    let mut stdout = child.stdout.take().map(|s| s.take(MAX_OUTPUT + 1));
    let mut stderr = child.stderr.take();
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut bytes);
        }
        bytes
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(64 << 10).read_to_string(&mut text);
        }
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| GenerateError::Spawn(spec.binary.clone(), e))?
        {
            break status;
        }
        if started.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(GenerateError::Bounded(command, "ran longer than 2 minutes"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let bytes = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(GenerateError::Failed {
            command,
            status: status.to_string(),
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    if bytes.len() as u64 > MAX_OUTPUT {
        return Err(GenerateError::Bounded(command, "printed more than 64 MiB"));
    }
    if let Some(parent) = spec.output.parent() {
        std::fs::create_dir_all(parent)
            .map_err(crate::file_error::FileError::on("create", parent))?;
    }
    std::fs::write(&spec.output, &bytes)
        .map_err(crate::file_error::FileError::on("write", &spec.output))?;
    Ok(bytes.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_is_what_the_binary_prints_and_a_failure_says_what_it_said()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let spec = GenerateSpec {
            binary: "/bin/sh".into(),
            args: vec!["-c".into(), "echo \"complete $SOURCE_DATE_EPOCH\"".into()],
            output: dir.path().join("completions/demo.bash"),
            source_date_epoch: 1700000000,
        };
        assert_eq!(write(&spec)?, 20);
        assert_eq!(
            std::fs::read_to_string(&spec.output)?,
            "complete 1700000000\n"
        );
        let failing = GenerateSpec {
            args: vec!["-c".into(), "echo no such subcommand >&2; exit 3".into()],
            ..spec
        };
        let error = write(&failing)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("failed (exit status: 3): no such subcommand"),
            "{error}"
        );
        Ok(())
    }
}
