//! `shipit ci github`: a GitHub Actions workflow generated from the pipeline, and a check that
//! the committed one is current.
//!
//! The generated file records a hash of its own content. `--check` compares the file with what
//! would be generated now: equal passes; different and still carrying the hash of its content
//! means the pipeline moved on (regenerate); different content under the recorded hash means
//! someone edited it, which passes only with `--allow-edits`.

use std::path::Path;

use super::Session;
use crate::cli::CiGithubArgs;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::facts::{Facts, FactsOptions};
use crate::workflow::{self, HASH_PREFIX, edited_by_hand};
use crate::{config, plan};

/// Runs `shipit ci github`.
pub fn github(session: &Session, args: &CiGithubArgs) -> Result<ExitCode, Error> {
    let global = &session.cli.global;
    let loaded = config::load(&global.pipeline, super::PIPELINE)?;
    let facts = Facts::gather(
        &loaded,
        FactsOptions {
            snapshot: true,
            nightly: false,
        },
    )?;
    let plan = plan::build(&loaded, &facts)?;
    let images = loaded.has_channel("docker");
    let text = workflow::render(
        &plan,
        &facts,
        &workflow::Options {
            pipeline: &global.pipeline,
            images,
            action: &args.action,
            cron: &args.cron,
            attestations: !args.no_attestations,
        },
    )?;
    let existing = std::fs::read_to_string(&args.output).ok();
    let regenerate = format!(
        "shipit ci github --pipeline {}{}",
        global.pipeline.display(),
        if args.output == Path::new(".github/workflows/release.yml") {
            String::new()
        } else {
            format!(" --output {}", args.output.display())
        }
    );
    match (&existing, args.check) {
        (Some(current), _) if *current == text => {
            if !global.dry_run && global.verbosity() >= 0 {
                session
                    .printer
                    .err(&format!("{} is up to date", args.output.display()));
            }
            Ok(ExitCode::Success)
        }
        (Some(current), true) => {
            if edited_by_hand(current) {
                if args.allow_edits {
                    session.printer.err(&format!(
                        "{} was edited by hand; accepted (--allow-edits)",
                        args.output.display()
                    ));
                    return Ok(ExitCode::Success);
                }
                return Err(Error::Failed(format!(
                    "{} was edited by hand and differs from what `{regenerate}` writes; regenerate it, or pass --allow-edits to keep your edits",
                    args.output.display()
                )));
            }
            Err(Error::Failed(format!(
                "{} is out of date with {}; regenerate it with `{regenerate}`",
                args.output.display(),
                global.pipeline.display()
            )))
        }
        (None, true) => Err(Error::Failed(format!(
            "{} does not exist; write it with `{regenerate}`",
            args.output.display()
        ))),
        (current, false) => {
            if let Some(current) = current.as_deref()
                && edited_by_hand(current)
                && !args.allow_edits
            {
                // A workflow shipit never wrote is the project's own: point at a new file
                // first, since --allow-edits would replace it.
                let own = !current.contains(HASH_PREFIX);
                return Err(Error::Usage(if own {
                    format!(
                        "{} exists and was not written by shipit; write the workflow beside it with \
                         `--output .github/workflows/shipit-release.yml`, or pass --allow-edits to replace it",
                        args.output.display()
                    )
                } else {
                    format!(
                        "{} was edited by hand; pass --allow-edits to overwrite your edits, or \
                         `--output <another file>`",
                        args.output.display()
                    )
                }));
            }
            if global.dry_run {
                session.printer.out(&text);
                return Ok(ExitCode::Success);
            }
            if let Some(parent) = args.output.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    Error::Failed(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            std::fs::write(&args.output, &text).map_err(|e| {
                Error::Failed(format!("cannot write {}: {e}", args.output.display()))
            })?;
            session
                .printer
                .err(&format!("wrote {}", args.output.display()));
            Ok(ExitCode::Success)
        }
    }
}
