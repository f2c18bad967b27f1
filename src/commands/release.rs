//! `shipit release`: publish `dist/manifest.json` through every configured channel
//! (`publish::channels`), or those `--only`/`--skip` pick.
//!
//! Every channel plans first, as data that `--dry-run` prints; then each checks what it needs
//! (a token) before any of them sends anything; then they publish in order, each recording its
//! result in the manifest; then every channel is read back and compared with the manifest
//! (`--check` does only that).

use super::Session;
use crate::cli::ReleaseArgs;
use crate::config;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::facts::{Facts, FactsOptions};
use crate::manifest::Manifest;
use crate::plan;
use crate::publish::{self, Context, Run};
use crate::ui::{self, Event, Level};

/// Runs the release.
pub fn run(session: &Session, release_args: &ReleaseArgs) -> Result<ExitCode, Error> {
    let args = &release_args.version;
    let global = &session.cli.global;
    let loaded = config::load(&global.pipeline, super::PIPELINE)?;
    if loaded.file.release.0.is_empty() {
        return Err(Error::Usage(format!(
            "{} has nothing to release: add `[release.github]` (`repo = \"owner/name\"`) or another channel ({})",
            global.pipeline.display(),
            crate::publish::channels()
                .iter()
                .map(|c| format!("`[release.{}]`", c.name()))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let facts = Facts::gather(&loaded, FactsOptions::from(args))?;
    let dist = plan::dist_dir(&loaded, &facts);
    if !release_args.merge.is_empty() {
        super::merge::merge(session, &loaded, &facts, &release_args.merge)?;
        if global.dry_run {
            return Ok(ExitCode::Success);
        }
    }
    let mut manifest = Manifest::read(&dist)
        .map_err(|e| Error::Usage(format!("{e}; run `shipit build` first")))?;
    if manifest.version != facts.version {
        return Err(Error::Usage(format!(
            "{} is for version {}, but this is {}; run `shipit build` again",
            dist.join("manifest.json").display(),
            manifest.version,
            facts.version
        )));
    }
    let pick = publish::Pick {
        only: release_args.only.clone(),
        skip: release_args.skip.clone(),
    };
    let plan = publish::plan(
        &Context {
            loaded: &loaded,
            facts: &facts,
            manifest: &manifest,
            dist: &dist,
        },
        &pick,
    )?;
    let reporter = ui::reporter(session.ui, session.printer.clone());
    if !manifest.missing.is_empty() {
        reporter.report(&Event::Message {
            level: Level::Warn,
            text: &format!(
                "{} goes out without {}: their build failed (`build --keep-going`)",
                manifest.version,
                manifest.missing.join(", ")
            ),
        });
    }
    if global.dry_run {
        plan.describe(&|text| {
            reporter.report(&Event::Message {
                level: Level::Info,
                text: &text,
            })
        });
        return Ok(ExitCode::Success);
    }
    plan.preflight()?;
    if release_args.check {
        super::block_on_interruptible(plan.recheck(&manifest, &*reporter))?;
        return Ok(ExitCode::Success);
    }
    let check_after = loaded.file.release.check_after() && !release_args.no_check;
    let manifest_path = std::path::absolute(dist.join("manifest.json")).unwrap_or_default();
    let mut run = Run {
        manifest: &mut manifest,
        dist: &dist,
        reporter: &*reporter,
        outputs: vec![
            ("version", facts.version.clone()),
            ("manifest", manifest_path.display().to_string()),
        ],
    };
    let result = super::block_on_interruptible(plan.apply(&mut run, check_after));
    // What was published is in $GITHUB_OUTPUT even when a later channel failed.
    super::github_output(&run.outputs)?;
    result.map(|()| ExitCode::Success)
}
