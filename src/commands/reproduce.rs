//! `shipit reproduce`: rebuild a release from its tag and compare (the work is
//! `crate::reproduce`'s).

use super::Session;
use crate::cli::ReproduceArgs;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::reproduce::{self, Options, ReproduceError};

/// Reproduces and reports; exit 0 only when every published file was reproduced.
pub fn run(session: &Session, args: &ReproduceArgs) -> Result<ExitCode, Error> {
    let global = &session.cli.global;
    // Run where the project is, the repository comes from its pipeline; elsewhere, --repo.
    let repo = args.repo.clone().or_else(|| {
        crate::config::load(&global.pipeline, super::PIPELINE)
            .ok()
            .and_then(|loaded| crate::github_urls::release_repo(&loaded))
    });
    let pipeline = match global.pipeline.is_relative() {
        true => global.pipeline.clone(),
        false => "shipit.toml".into(),
    };
    let options = Options {
        tag: args.tag.clone(),
        repo,
        manifest: args.manifest.clone(),
        source: args.source.clone(),
        pipeline,
        work_dir: args.work_dir.clone(),
        public_key: args.public_key.clone(),
        any_toolchain: args.any_toolchain,
        trusted_root: args.trusted_root.clone(),
        api_url: crate::github_urls::api_url(),
        token: crate::publish::github::token().unwrap_or_default(),
    };
    let say = |text: &str| {
        if !global.json && global.quiet == 0 {
            session.printer.err(text);
        }
    };
    let usage = |e: ReproduceError| match e {
        ReproduceError::Usage(text) => Error::Usage(text),
        other => Error::work(other),
    };
    // The key is opened first: a wrong password stops it before a rebuild.
    let key = match &args.key {
        Some(file) => Some(
            crate::tasks::KeySource {
                file: Some(file.clone()),
                env: None,
                password_env: Some("SHIPIT_SIGNING_PASSWORD".into()),
            }
            .load()
            .map_err(|e| Error::Usage(e.to_string()))?,
        ),
        None => None,
    };
    let report = reproduce::run(&options, &say).map_err(usage)?;
    if let (Some(path), Some(key)) = (&args.attest, &key) {
        reproduce::attest::write(&report, key, path).map_err(usage)?;
        say(&format!("wrote the signed statement {}", path.display()));
    }
    if global.json {
        let mut event =
            serde_json::to_value(&report).map_err(|e| Error::Internal(e.to_string()))?;
        event["event"] = "reproduced".into();
        event["reproduced"] = report.reproduced().into();
        session.printer.out(&event.to_string());
    } else {
        let width = report.files.iter().map(|f| f.name.len()).max().unwrap_or(4);
        session
            .printer
            .out(&format!("{:width$}  {:7}  DETAIL", "FILE", "RESULT"));
        for file in &report.files {
            session.printer.out(&format!(
                "{:width$}  {:7}  {}",
                file.name.escape_debug().to_string(),
                file.verdict.word(),
                file.detail
            ));
        }
        if let Some(folder) = &report.folder {
            say(&format!("the work is kept in {}", folder.display()));
        }
    }
    let failed: Vec<&str> = report
        .files
        .iter()
        .filter(|f| !f.verdict.ok())
        .map(|f| f.name.as_str())
        .collect();
    match (report.files.is_empty(), failed.is_empty()) {
        (true, _) => Err(Error::Failed(format!("{} holds no files", report.release))),
        (false, true) => {
            say(&format!(
                "reproduced: all {} files of {} from {}",
                report.files.len(),
                report.tag,
                report.commit
            ));
            Ok(ExitCode::Success)
        }
        (false, false) => Err(Error::Failed(format!(
            "not reproduced: {} of {} files differ: {}",
            failed.len(),
            report.files.len(),
            failed.join(", ")
        ))),
    }
}
