//! `shipit doctor`: what each build target needs, and whether this machine has it.

use std::collections::BTreeSet;

use serde::Serialize;

use super::Session;
use crate::config::LoadError;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::facts::{self, Facts, FactsOptions};
use crate::plan::StepCommand;
use crate::targets::{ALIASES, Target};
use crate::toolchain::{self, Check, Requirement};
use crate::{config, plan};

/// One target and how it is built.
#[derive(Debug, Serialize)]
struct TargetRow {
    stage: Option<String>,
    target: String,
    triple: String,
    builds_with: &'static str,
    rust_std: Vec<String>,
}

/// Prints the targets' needs and the state of each tool; exit 1 when something is missing.
pub fn run(session: &Session) -> Result<ExitCode, Error> {
    let global = &session.cli.global;
    let rustc = facts::rustc_version();
    let host = facts::host_triple(&rustc);
    let rows = match config::load(&global.pipeline, super::PIPELINE) {
        Ok(loaded) => {
            let facts = Facts::gather(&loaded, FactsOptions::default())?;
            let plan = plan::build(&loaded, &facts)?;
            pipeline_rows(&plan)
        }
        // Without a pipeline file, show every alias.
        Err(LoadError::Read { .. } | LoadError::Missing { .. }) => ALIASES
            .iter()
            .filter_map(|(alias, _)| Target::parse(alias, &host).ok())
            .map(|target| {
                let zig = target.triple != host;
                row(None, &target, zig)
            })
            .collect(),
        Err(e) => return Err(e.into()),
    };
    let mut needed: BTreeSet<Requirement> = BTreeSet::new();
    for row in &rows {
        for triple in &row.rust_std {
            needed.insert(Requirement::RustStd {
                triple: triple.clone(),
            });
        }
        if row.builds_with == "cargo zigbuild" {
            needed.insert(Requirement::Zigbuild);
        }
    }
    let checks = toolchain::inspect(&needed);
    let missing = checks.iter().filter(|c| !c.ok).count();

    if global.json {
        let value = serde_json::json!({
            "rustc": rustc.lines().next().unwrap_or_default(),
            "host": host,
            "cache": toolchain::cache_dir(),
            "targets": rows,
            "checks": checks,
            "ok": missing == 0,
        });
        session.printer.out(&value.to_string());
    } else {
        session.printer.out(&render(&rustc, &host, &rows, &checks));
    }
    if missing > 0 {
        return Err(Error::Failed(format!(
            "{missing} requirement(s) missing; `shipit build` installs them (unless --no-provision), or run the commands above"
        )));
    }
    Ok(ExitCode::Success)
}

fn pipeline_rows(plan: &plan::Plan) -> Vec<TargetRow> {
    let mut rows = Vec::new();
    for stage in &plan.stages {
        if stage.requires.is_empty() {
            continue;
        }
        for unit in &stage.units {
            let Some(target) = unit.artifacts.iter().find_map(|a| a.target.as_ref()) else {
                continue;
            };
            let zig = unit.steps.iter().any(|s| match &s.command {
                StepCommand::Exec(argv) => argv.get(1).is_some_and(|a| a == "zigbuild"),
                StepCommand::Shell(_) | StepCommand::Task(_) => false,
            });
            rows.push(row(Some(stage.name.clone()), target, zig));
        }
    }
    rows
}

fn row(stage: Option<String>, target: &Target, zig: bool) -> TargetRow {
    TargetRow {
        stage,
        target: target.name.clone(),
        triple: target.triple.clone(),
        builds_with: if zig { "cargo zigbuild" } else { "cargo" },
        rust_std: target.rust_triples(),
    }
}

fn render(rustc: &str, host: &str, rows: &[TargetRow], checks: &[Check]) -> String {
    let mut out = format!(
        "{} on {host}; tools cache {}\n\n",
        rustc.lines().next().unwrap_or("rustc not found"),
        toolchain::cache_dir().display()
    );
    out.push_str(&format!(
        "{:<18} {:<30} {:<15} {}\n",
        "target", "triple", "builds with", "stage"
    ));
    for row in rows {
        out.push_str(&format!(
            "{:<18} {:<30} {:<15} {}\n",
            row.target,
            row.triple,
            row.builds_with,
            row.stage.as_deref().unwrap_or("-")
        ));
    }
    out.push('\n');
    for check in checks {
        let mark = if check.ok { "ok     " } else { "MISSING" };
        out.push_str(&format!("{mark} {}: {}\n", check.what, check.detail));
        if let Some(fix) = &check.fix {
            out.push_str(&format!("        fix: {fix}\n"));
        }
    }
    out
}
