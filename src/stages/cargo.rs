//! `uses = "cargo"`: build the project's binaries for each target.

use std::collections::BTreeSet;
use std::path::Path;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Builtin, Expansion, StageRef};
use crate::config::Problem;
use crate::facts::Facts;
use crate::manifest::ArtifactKind;
use crate::plan::{PlannedArtifact, Step};
use crate::targets::{self, Target};

/// Options of `uses = "cargo"`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct CargoOptions {
    /// Targets: aliases such as `linux-x64-musl` or `darwin-arm64`, `host`, or full Rust triples. Default: `["host"]`.
    pub targets: Option<Vec<String>>,
    /// Cargo profile. Default: `release`.
    pub profile: Option<String>,
    /// Cargo features to enable.
    #[serde(default)]
    pub features: Vec<String>,
    /// Build without the default features.
    #[serde(default)]
    pub no_default_features: bool,
    /// Binaries to ship. Default: every binary of the root package.
    pub bins: Option<Vec<String>>,
    /// Pass `--locked`, so a stale Cargo.lock fails the build. Default: `true`.
    pub locked: Option<bool>,
}

/// The `cargo` kind.
pub struct Cargo;

/// A stand-in host for checks that only need to know a name is a valid target.
const ANY_HOST: &str = "x86_64-unknown-linux-gnu";

impl Builtin for Cargo {
    fn name(&self) -> &'static str {
        "cargo"
    }

    fn about(&self) -> &'static str {
        "build the project's binaries for each target"
    }

    fn options_schema(&self) -> schemars::Schema {
        schemars::schema_for!(CargoOptions)
    }

    fn check(&self, stage: &StageRef<'_>) -> Vec<Problem> {
        let options: CargoOptions = match stage.options() {
            Ok(o) => o,
            Err(problem) => return vec![problem],
        };
        resolve_targets(stage, &options, ANY_HOST)
            .err()
            .unwrap_or_default()
    }

    fn expand(
        &self,
        stage: &StageRef<'_>,
        facts: &Facts,
        _dist: &Path,
    ) -> Result<Expansion, Vec<Problem>> {
        let options: CargoOptions = stage.options().map_err(|p| vec![p])?;
        let targets = resolve_targets(stage, &options, &facts.host)?;
        let bins = match &options.bins {
            Some(bins) => {
                let problems: Vec<Problem> = bins
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| !facts.cargo.binaries.contains(b))
                    .map(|(i, b)| {
                        Problem::new(
                            format!("the package has no binary `{b}`"),
                            stage.item_span("bins", i),
                        )
                        .label("unknown binary")
                        .help(format!("binaries: {}", facts.cargo.binaries.join(", ")))
                    })
                    .collect();
                if !problems.is_empty() {
                    return Err(problems);
                }
                bins.clone()
            }
            None => facts.cargo.binaries.clone(),
        };
        if bins.is_empty() {
            return Err(vec![
                Problem::new(
                    "the Cargo package has no binaries to build",
                    stage.span("uses"),
                )
                .help("add a `[[bin]]` target or a `src/main.rs`"),
            ]);
        }
        let profile = options.profile.as_deref().unwrap_or("release");
        let profile_dir = match profile {
            "dev" | "test" => "debug",
            "bench" => "release",
            other => other,
        };

        let mut expansion = Expansion::default();
        for target in &targets {
            let mut argv: Vec<String> = vec!["cargo".into()];
            // The host builds with plain cargo; other targets need zig as a cross linker.
            argv.push(
                if target.triple == facts.host {
                    "build"
                } else {
                    "zigbuild"
                }
                .into(),
            );
            argv.extend([
                "--manifest-path".into(),
                facts.cargo.manifest.display().to_string(),
            ]);
            argv.extend([
                "--profile".into(),
                profile.to_string(),
                "--target".into(),
                target.triple.clone(),
            ]);
            if options.locked.unwrap_or(true) {
                argv.push("--locked".into());
            }
            if !options.features.is_empty() {
                argv.extend(["--features".into(), options.features.join(",")]);
            }
            if options.no_default_features {
                argv.push("--no-default-features".into());
            }
            for bin in &bins {
                argv.extend(["--bin".into(), bin.clone()]);
            }
            expansion
                .steps
                .push(Step::exec(argv).label(target.name.clone()));
            for bin in &bins {
                let file = format!("{bin}{}", target.exe_suffix());
                expansion.artifacts.push(PlannedArtifact {
                    name: file.clone(),
                    kind: ArtifactKind::Binary,
                    path: format!("{}/{file}", target.name),
                    source: Some(
                        facts
                            .cargo
                            .target_dir
                            .join(&target.triple)
                            .join(profile_dir)
                            .join(&file),
                    ),
                    target: Some(target.clone()),
                });
            }
        }
        Ok(expansion)
    }
}

fn resolve_targets(
    stage: &StageRef<'_>,
    options: &CargoOptions,
    host: &str,
) -> Result<Vec<Target>, Vec<Problem>> {
    let names = options
        .targets
        .clone()
        .unwrap_or_else(|| vec!["host".to_string()]);
    if names.is_empty() {
        return Err(vec![
            Problem::new("`targets` is empty", stage.span("targets"))
                .label("no targets")
                .help(format!("list one or more of {}", targets::alias_list())),
        ]);
    }
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let mut resolved = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match Target::parse(name, host) {
            Ok(target) => {
                if !seen.insert(target.triple.clone()) {
                    problems.push(
                        Problem::new(
                            format!("target `{name}` is listed twice"),
                            stage.item_span("targets", i),
                        )
                        .label("duplicate")
                        .help("remove one of them"),
                    );
                }
                resolved.push(target);
            }
            Err(unknown) => problems.push(
                Problem::new(
                    format!("unknown target `{}`", unknown.name),
                    stage.item_span("targets", i),
                )
                .label("unknown target")
                .help(match unknown.suggestion {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("use a full Rust triple or one of {}", targets::alias_list()),
                }),
            ),
        }
    }
    if problems.is_empty() {
        Ok(resolved)
    } else {
        Err(problems)
    }
}
