//! `shipit check`: the whole file, then everything the plan resolves against the project
//! (packages, binaries, features, files, keys and their passwords), as a build would.

use super::Session;
use crate::config;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::facts::{Facts, FactsOptions};
use crate::plan;

/// Runs `shipit check`.
pub fn run(session: &Session) -> Result<ExitCode, Error> {
    let global = &session.cli.global;
    let loaded = config::load(&global.pipeline, super::PIPELINE)?;
    let facts = Facts::gather(&loaded, FactsOptions::default())?;
    let plan = plan::build(&loaded, &facts)?;
    super::build::signing_keys(&plan, &mut crate::tasks::TaskContext::default())?;
    let stages = loaded.file.stages.len();
    if global.json {
        let value = serde_json::json!({"file": global.pipeline, "valid": true, "stages": stages});
        session.printer.out(&value.to_string());
    } else if global.verbosity() >= 0 {
        session.printer.err(&format!(
            "{}: valid, {stages} stages",
            global.pipeline.display()
        ));
    }
    Ok(ExitCode::Success)
}
