//! `uses = "cargo"`: build the project's binaries for each target.

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Context, Expansion, Kind, StageRef};
use crate::config::Problem;
use crate::config::validate::template_problem;
use crate::facts::Facts;
use crate::manifest::ArtifactKind;
use crate::plan::{Assembly, Batch, CacheKey, PlannedArtifact, Step, Unit};
use crate::remap;
use crate::reproducible::Normalization;
use crate::targets::{self, Target};
use crate::toolchain::Requirement;
use crate::{path, template};

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
    /// Workspace packages to build. Default: the root package.
    pub packages: Option<Vec<String>>,
    /// Binaries to ship. Default: every binary of the chosen packages.
    pub bins: Option<Vec<String>>,
    /// Pass `--locked`, so a stale Cargo.lock fails the build. Default: `true`.
    pub locked: Option<bool>,
    /// The oldest glibc the linux gnu binaries must run on, e.g. `"2.17"`.
    pub glibc: Option<String>,
    /// `RUSTFLAGS` for every target.
    pub rustflags: Option<String>,
    /// Per-target settings, keyed by a name from `targets`.
    #[serde(default)]
    pub overrides: IndexMap<String, TargetOverride>,
}

/// Settings for one target, replacing the stage's.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
// Unknown keys are reported, with a suggestion, by the schema walk of `shipit check`.
#[schemars(deny_unknown_fields)]
pub struct TargetOverride {
    /// Features for this target, instead of the stage's.
    pub features: Option<Vec<String>>,
    /// Extra environment for this target's build (templates allowed).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `RUSTFLAGS` for this target, instead of the stage's.
    pub rustflags: Option<String>,
}

/// The `cargo` kind.
pub struct Cargo;

/// A stand-in host for checks that only need to know a name is a valid target.
const ANY_HOST: &str = "x86_64-unknown-linux-gnu";

/// Environment variables that change what cargo produces, so they are part of the cache key.
const BUILD_ENV_PREFIXES: &[&str] = &[
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "RUSTC",
    "CARGO_BUILD_",
    "CARGO_ENCODED_",
    "CARGO_PROFILE_",
    "CARGO_TARGET_",
    "CARGO_INCREMENTAL",
    "CC",
    "CXX",
    "CFLAGS",
    "CXXFLAGS",
    "LDFLAGS",
    "ZIG",
    "SOURCE_DATE_EPOCH",
];

impl Kind for Cargo {
    type Options = CargoOptions;
    const NAME: &'static str = "cargo";
    const ABOUT: &'static str = "build the project's binaries for each target";

    fn check(&self, stage: &StageRef<'_>, options: &CargoOptions) -> Vec<Problem> {
        let mut problems = match resolve_targets(stage, options, ANY_HOST) {
            Ok(targets) => check_overrides(stage, options, &targets),
            Err(problems) => problems,
        };
        if let Some(glibc) = &options.glibc
            && !is_glibc_version(glibc)
        {
            problems.push(
                Problem::new(
                    format!("`{glibc}` is not a glibc version"),
                    stage.span("glibc"),
                )
                .label("expected 2.N")
                .help("write the oldest glibc to support, e.g. `glibc = \"2.17\"`"),
            );
        }
        problems
    }

    fn expand(
        &self,
        stage: &StageRef<'_>,
        options: CargoOptions,
        context: &Context<'_>,
    ) -> Result<Expansion, Vec<Problem>> {
        let (facts, dist) = (context.facts, context.dist);
        let mut targets = resolve_targets(stage, &options, &facts.host)?;
        if let Some(only) = context.only_targets {
            targets.retain(|t| only.contains(&t.name));
        }
        let packages = resolve_packages(stage, &options, facts)?;
        let bins = resolve_bins(stage, &options, facts, &packages)?;
        check_features(stage, &options, facts, &packages)?;
        let profile = options.profile.as_deref().unwrap_or("release");
        let profile_dir = match profile {
            "dev" | "test" => "debug",
            "bench" => "release",
            other => other,
        };
        let vars = facts.template_vars();
        let build_env: Vec<String> = facts
            .env
            .iter()
            .filter(|(name, _)| BUILD_ENV_PREFIXES.iter().any(|p| name.starts_with(p)))
            .map(|(name, value)| format!("{name}={value}"))
            .collect();

        let mut expansion = Expansion::default();
        let mut problems = Vec::new();
        // The universal macOS binary is assembled from the two macOS builds when both are in
        // the stage's main invocation, instead of compiling both architectures again.
        let in_main_group = |triple: &str| {
            targets.iter().any(|t| {
                t.triple == triple
                    && batch_group(t, true, None, lookup_override(&options, t), false)
                        .1
                        .is_none()
            })
        };
        let slices_built = DARWIN_SLICES.iter().all(|t| in_main_group(t));
        // Paths of this machine never reach the binaries (see `remap`).
        let remaps = remap::remaps(&remap::Folders {
            workspace: &facts.cargo.workspace_root,
            target_dir: &facts.cargo.target_dir,
            cargo_home: facts.cargo_home.as_deref(),
            sysroot: facts.sysroot.as_deref(),
            rustc_commit: crate::facts::rustc_commit(&facts.rustc),
        });
        let shipit_exe = std::env::current_exe().ok();
        let zig_env = remap::zig_env(&crate::toolchain::cache_dir(), &facts.env);
        for target in &targets {
            let overrides = lookup_override(&options, target)
                .cloned()
                .unwrap_or_default();
            let glibc = options.glibc.as_deref().filter(|_| target.is_gnu_linux());
            // The host builds with plain cargo; other targets, and a pinned glibc, need zig.
            let zig = target.triple != facts.host || glibc.is_some();
            let cargo_target = match glibc {
                Some(version) => format!("{}.{version}", target.triple),
                None => target.triple.clone(),
            };
            let cargo_target_arg = cargo_target.clone();
            let overrides_of = lookup_override(&options, target);
            let group = batch_group(target, zig, glibc, overrides_of, slices_built);
            let assemble = if target.triple == targets::UNIVERSAL_DARWIN && group.1.is_none() {
                bins.iter()
                    .map(|bin| Assembly {
                        output: facts
                            .cargo
                            .target_dir
                            .join(&target.triple)
                            .join(profile_dir)
                            .join(bin),
                        slices: DARWIN_SLICES
                            .iter()
                            .map(|t| facts.cargo.target_dir.join(t).join(profile_dir).join(bin))
                            .collect(),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let mut argv: Vec<String> = vec![
                "cargo".into(),
                if zig { "zigbuild" } else { "build" }.into(),
                "--manifest-path".into(),
                facts.cargo.manifest.display().to_string(),
                "--profile".into(),
                profile.to_string(),
                "--target".into(),
                cargo_target,
            ];
            if options.locked.unwrap_or(true) {
                argv.push("--locked".into());
            }
            for package in &packages {
                argv.extend(["--package".into(), package.clone()]);
            }
            let features = overrides.features.as_ref().unwrap_or(&options.features);
            if !features.is_empty() {
                argv.extend(["--features".into(), features.join(",")]);
            }
            if options.no_default_features {
                argv.push("--no-default-features".into());
            }
            for bin in &bins {
                argv.extend(["--bin".into(), bin.clone()]);
            }

            let mut env = BTreeMap::new();
            if let Some(flags) = overrides.rustflags.as_ref().or(options.rustflags.as_ref()) {
                env.insert("RUSTFLAGS".to_string(), flags.clone());
            }
            if let Some(shipit) = &shipit_exe {
                env.extend(remap::cargo_env(&remaps, shipit, &facts.env));
                let c_triple = target.rust_triples();
                for triple in c_triple {
                    env.extend(remap::c_flags(&remaps, &triple, &facts.env));
                }
            }
            if zig {
                env.extend(zig_env.iter().cloned());
            }
            for (name, value) in &overrides.env {
                match template::render(value, &vars) {
                    Ok(v) => {
                        env.insert(name.clone(), v);
                    }
                    Err(e) => problems.push(template_problem(
                        stage.loaded,
                        path![
                            "stages",
                            stage.name,
                            "overrides",
                            target.name.as_str(),
                            "env",
                            name.as_str()
                        ],
                        value,
                        e,
                    )),
                }
            }

            let out_dir = facts
                .cargo
                .target_dir
                .join(&target.triple)
                .join(profile_dir);
            let artifacts = bins
                .iter()
                .map(|bin| {
                    let file = format!("{bin}{}", target.exe_suffix());
                    PlannedArtifact {
                        name: file.clone(),
                        kind: ArtifactKind::Binary,
                        path: format!("{}/{file}", target.name),
                        source: Some(out_dir.join(&file)),
                        target: Some(target.clone()),
                        // PE and Mach-O linkers write times, GUIDs and UUIDs that differ on
                        // every link, and the Mach-O debug map names this machine's folders;
                        // they are derived from the source date, the content and the remaps.
                        normalize: matches!(target.os.as_str(), "windows" | "darwin").then(|| {
                            Normalization {
                                epoch: facts.source_date_epoch,
                                remaps: remaps.clone(),
                            }
                        }),
                    }
                })
                .collect();
            let mut identity = vec![format!("cargo {}", target.triple), facts.rustc.clone()];
            identity.extend(build_env.iter().cloned());
            expansion.units.push(Unit {
                label: Some(target.name.clone()),
                env,
                steps: vec![Step::exec(argv)],
                artifacts,
                cache: Some(CacheKey {
                    identity,
                    inputs: vec![facts.cargo.workspace_root.clone()],
                    exclude: vec![facts.cargo.target_dir.clone(), dist.to_path_buf()],
                    stamp: facts
                        .cargo
                        .target_dir
                        .join("shipit-cache")
                        .join(stage.name)
                        .join(format!("{}.json", target.name)),
                }),
                batch: Some(Batch {
                    group: group.0,
                    apart: group.1,
                    target: cargo_target_arg,
                    lock: facts.cargo.target_dir.clone(),
                    assemble,
                }),
            });
            for triple in target.rust_triples() {
                let requirement = Requirement::RustStd { triple };
                if !expansion.requires.contains(&requirement) {
                    expansion.requires.push(requirement);
                }
            }
            if zig && !expansion.requires.contains(&Requirement::Zigbuild) {
                expansion.requires.push(Requirement::Zigbuild);
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(expansion)
    }
}

/// The builds a universal macOS binary is made of.
const DARWIN_SLICES: [&str; 2] = ["x86_64-apple-darwin", "aarch64-apple-darwin"];

/// The invocation a target builds in, and why it is apart from the stage's main one: targets
/// built the same way (zig, the stage's features and flags) share one cargo; the host (plain
/// cargo), a glibc pin and a target's own overrides each get their own; so does the universal
/// macOS binary unless both of its slices are built in the main invocation.
fn batch_group(
    target: &Target,
    zig: bool,
    glibc: Option<&str>,
    overrides: Option<&TargetOverride>,
    slices_built: bool,
) -> (String, Option<String>) {
    if !zig {
        return (
            "cargo".into(),
            Some("the host builds with plain cargo".into()),
        );
    }
    if let Some(version) = glibc {
        return (
            format!("zig glibc {version}"),
            Some(format!("pinned to glibc {version}")),
        );
    }
    if overrides.is_some() {
        return (
            format!("zig {}", target.name),
            Some(format!("`{}` has its own overrides", target.name)),
        );
    }
    if target.triple == targets::UNIVERSAL_DARWIN && !slices_built {
        return (
            format!("zig {}", target.name),
            Some("without darwin-x64 and darwin-arm64 in the same build, cargo-zigbuild builds both architectures for it".into()),
        );
    }
    ("zig".into(), None)
}

fn is_glibc_version(text: &str) -> bool {
    text.strip_prefix("2.")
        .is_some_and(|minor| !minor.is_empty() && minor.chars().all(|c| c.is_ascii_digit()))
}

/// The override for `target`, written under its alias or its triple.
fn lookup_override<'o>(options: &'o CargoOptions, target: &Target) -> Option<&'o TargetOverride> {
    options
        .overrides
        .iter()
        .find(|(name, _)| **name == target.name || **name == target.triple)
        .map(|(_, o)| o)
}

/// Every override must name a listed target.
fn check_overrides(
    stage: &StageRef<'_>,
    options: &CargoOptions,
    targets: &[Target],
) -> Vec<Problem> {
    options
        .overrides
        .keys()
        .filter(|name| {
            !targets
                .iter()
                .any(|t| t.name == **name || t.triple == **name)
        })
        .map(|name| {
            let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
            Problem::new(
                format!("`overrides.{name}` is not one of this stage's targets"),
                stage
                    .loaded
                    .key_span(path!["stages", stage.name, "overrides", name.as_str()]),
            )
            .label("not a target of this stage")
            .help(
                match crate::config::did_you_mean(name, names.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("targets: {}", names.join(", ")),
                },
            )
        })
        .collect()
}

/// Every feature named (by the stage and its overrides) exists in the packages built (any
/// workspace member when none are listed). `dep/feature` forms are left to cargo.
fn check_features(
    stage: &StageRef<'_>,
    options: &CargoOptions,
    facts: &Facts,
    packages: &[String],
) -> Result<(), Vec<Problem>> {
    let known: Vec<&str> = facts
        .cargo
        .packages
        .iter()
        .filter(|p| packages.is_empty() || packages.contains(&p.name))
        .flat_map(|p| p.features.iter().map(String::as_str))
        .collect();
    let mut named: Vec<(&str, Option<std::ops::Range<usize>>)> = options
        .features
        .iter()
        .enumerate()
        .map(|(i, f)| (f.as_str(), stage.item_span("features", i)))
        .collect();
    for (target, o) in &options.overrides {
        for (i, f) in o.features.iter().flatten().enumerate() {
            let at = path![
                "stages",
                stage.name,
                "overrides",
                target.as_str(),
                "features",
                i
            ];
            named.push((f.as_str(), stage.loaded.span_near(at)));
        }
    }
    let problems: Vec<Problem> = named
        .into_iter()
        .filter(|(f, _)| !f.contains('/') && !known.contains(f))
        .map(|(f, span)| {
            Problem::new(format!("no package built here has a feature `{f}`"), span)
                .label("unknown feature")
                .help(
                    match crate::config::did_you_mean(f, known.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if known.is_empty() => {
                            "the packages built here declare no features".into()
                        }
                        None => format!("features: {}", known.join(", ")),
                    },
                )
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The packages to build: as listed (each must be a workspace member), else none (the root).
fn resolve_packages(
    stage: &StageRef<'_>,
    options: &CargoOptions,
    facts: &Facts,
) -> Result<Vec<String>, Vec<Problem>> {
    let Some(packages) = &options.packages else {
        return Ok(Vec::new());
    };
    let members: Vec<&str> = facts
        .cargo
        .packages
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let problems: Vec<Problem> = packages
        .iter()
        .enumerate()
        .filter(|(_, p)| !members.contains(&p.as_str()))
        .map(|(i, p)| {
            Problem::new(
                format!("the workspace has no package `{p}`"),
                stage.item_span("packages", i),
            )
            .label("unknown package")
            .help(
                match crate::config::did_you_mean(p, members.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("packages: {}", members.join(", ")),
                },
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(packages.clone())
    } else {
        Err(problems)
    }
}

/// The binaries to ship: as listed (each must belong to the chosen packages), else all of them.
fn resolve_bins(
    stage: &StageRef<'_>,
    options: &CargoOptions,
    facts: &Facts,
    packages: &[String],
) -> Result<Vec<String>, Vec<Problem>> {
    let available: Vec<String> = if packages.is_empty() {
        facts.cargo.binaries.clone()
    } else {
        facts
            .cargo
            .packages
            .iter()
            .filter(|p| packages.contains(&p.name))
            .flat_map(|p| p.binaries.iter().cloned())
            .collect()
    };
    let bins = match &options.bins {
        Some(bins) => {
            let problems: Vec<Problem> = bins
                .iter()
                .enumerate()
                .filter(|(_, b)| !available.contains(b))
                .map(|(i, b)| {
                    Problem::new(
                        format!("no package being built has a binary `{b}`"),
                        stage.item_span("bins", i),
                    )
                    .label("unknown binary")
                    .help(format!("binaries: {}", available.join(", ")))
                })
                .collect();
            if !problems.is_empty() {
                return Err(problems);
            }
            bins.clone()
        }
        None => available,
    };
    if bins.is_empty() {
        return Err(vec![
            Problem::new(
                "the Cargo package has no binaries to build",
                stage.span("uses"),
            )
            .help("add a `[[bin]]` target or a `src/main.rs`, or choose `packages`"),
        ]);
    }
    Ok(bins)
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
                    Some(s) => format!(
                        "did you mean `{s}`? Targets are a full Rust triple, `host`, or one of {}",
                        targets::alias_list()
                    ),
                    None => format!(
                        "targets are a full Rust triple, `host`, or one of {}",
                        targets::alias_list()
                    ),
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
