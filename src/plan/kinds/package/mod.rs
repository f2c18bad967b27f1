//! `uses = "deb"` and `uses = "rpm"`: one package per Linux target of the stages they need,
//! written natively (see [`crate::package`]). The two kinds share their options, checks and
//! expansion; [`FormatRules`] holds what differs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use indexmap::IndexMap;

use super::{Builtin, Context, Expansion, StageRef};
use crate::config::Problem;
use crate::config::validate::template_problem;
use crate::manifest::ArtifactKind;
use crate::package::{Content, Entry, Metadata, PackageFormat, PackageSpec, names};
use crate::plan::{PlannedArtifact, Unit};
use crate::targets::Target;
use crate::tasks::{KeySource, PackageTask, Task};
use crate::{path, template};

mod files;
mod options;

use files::Shared;
pub use options::PackageOptions;

/// `uses = "deb"`.
pub const DEB: FormatRules = FormatRules {
    format: PackageFormat::Deb,
    about: "a reproducible .deb per Linux target: binaries, files, config files, a systemd unit",
    section: "utils",
    unit_dir: "/lib/systemd/system",
};

/// `uses = "rpm"`.
pub const RPM: FormatRules = FormatRules {
    format: PackageFormat::Rpm,
    about: "a reproducible, optionally signed .rpm per Linux target: binaries, files, config files, a systemd unit",
    section: "Applications/System",
    unit_dir: "/usr/lib/systemd/system",
};

/// A packager kind: the options are read like any kind's, then checked and expanded by the
/// format's rules.
impl Builtin for FormatRules {
    fn name(&self) -> &'static str {
        self.format.extension()
    }

    fn about(&self) -> &'static str {
        self.about
    }

    fn options_schema(&self) -> schemars::Schema {
        schemars::schema_for!(PackageOptions)
    }

    fn check(&self, stage: &StageRef<'_>) -> Vec<Problem> {
        match stage.options::<PackageOptions>() {
            Ok(options) => options::check(self.format, stage, &options),
            Err(problems) => problems,
        }
    }

    fn expand(
        &self,
        stage: &StageRef<'_>,
        context: &Context<'_>,
    ) -> Result<Expansion, Vec<Problem>> {
        let options = stage.options::<PackageOptions>()?;
        expand(self, stage, options, context)
    }
}

/// What differs between the deb and rpm kinds.
pub struct FormatRules {
    /// deb or rpm.
    pub format: PackageFormat,
    /// One line about the kind.
    pub about: &'static str,
    /// The default section / group.
    pub section: &'static str,
    /// Where units go by default.
    pub unit_dir: &'static str,
}

/// Expands into one package per Linux target.
fn expand(
    rules: &FormatRules,
    stage: &StageRef<'_>,
    options: PackageOptions,
    context: &Context<'_>,
) -> Result<Expansion, Vec<Problem>> {
    let format = rules.format;
    let facts = context.facts;
    let mut problems = Vec::new();
    let mut by_target: IndexMap<String, (Target, Vec<(String, PathBuf)>)> = IndexMap::new();
    for artifact in context.needed_artifacts(stage) {
        if let (ArtifactKind::Binary, Some(target)) = (artifact.kind, &artifact.target)
            && target.os == "linux"
            && options.targets.as_ref().is_none_or(|wanted| {
                wanted
                    .iter()
                    .any(|t| *t == target.name || *t == target.triple)
            })
        {
            by_target
                .entry(target.name.clone())
                .or_insert_with(|| (target.clone(), Vec::new()))
                .1
                .push((artifact.name.clone(), context.dist_path(&artifact.path)));
        }
    }
    if by_target.is_empty() {
        return Err(vec![
            Problem::new(
                format!(
                    "none of the stages this {} stage needs builds Linux binaries",
                    format.extension()
                ),
                stage.span("needs"),
            )
            .label("no Linux binaries here")
            .help("list the `uses = \"cargo\"` stage with a `linux-*` target in `needs`"),
        ]);
    }

    let name = options
        .name
        .clone()
        .unwrap_or_else(|| facts.project.clone());
    if let Err(why) = names::check_name(format, &name) {
        problems.push(
            Problem::new(why, stage.span("uses"))
                .label("from the project's name")
                .help("set `name` to a name the distribution accepts"),
        );
    }
    let version_text = options.version.as_deref().unwrap_or("{{ version }}");
    let version = template::render(version_text, &facts.template_vars())
        .map_err(|e| {
            template_problem(
                stage.loaded,
                path!["stages", stage.name, "version"],
                version_text,
                e,
            )
        })
        .and_then(|v| {
            names::map_version(format, &v).map_err(|why| {
                Problem::new(
                    why,
                    stage.span(if options.version.is_some() {
                        "version"
                    } else {
                        "uses"
                    }),
                )
                .label("cannot be mapped")
                .help("set `version` to a template giving `1.2.3` or `1.2.3-rc.1`")
            })
        });
    let version = match version {
        Ok(v) => v,
        Err(p) => {
            problems.push(p);
            String::new()
        }
    };
    let maintainer = options
        .maintainer
        .clone()
        .or_else(|| facts.cargo.authors.first().cloned());
    let Some(maintainer) = maintainer else {
        problems.push(
            Problem::new("a package needs a maintainer", stage.span("uses"))
                .help("set `maintainer = \"Name <email>\"` (or Cargo's `authors`)"),
        );
        return Err(problems);
    };
    let description = options
        .description
        .clone()
        .or_else(|| facts.cargo.description.clone())
        .unwrap_or_default();
    let mut lines = description.trim().lines();
    // A synopsis is not a sentence (Debian and Fedora both say so).
    let summary = files::summary_without_name(
        lines
            .next()
            .unwrap_or_default()
            .trim()
            .trim_end_matches('.'),
        &name,
    );
    if summary.is_empty() {
        problems.push(
            Problem::new("a package needs a description", stage.span("uses")).help(
                "set `description` (or Cargo's `description`); its first line is the summary",
            ),
        );
    }
    // Debian wants an extended description: without one, the README's first paragraph (as
    // cargo-deb does), else the summary again.
    let long = match lines.collect::<Vec<_>>().join("\n").trim() {
        "" => facts
            .cargo
            .readme
            .as_deref()
            .and_then(files::first_paragraph)
            .filter(|p| *p != summary)
            .unwrap_or_else(|| summary.clone()),
        long => long.to_owned(),
    };
    let Some(license) = options
        .license
        .clone()
        .or_else(|| facts.cargo.license.clone())
    else {
        problems.push(
            Problem::new("a package needs a license", stage.span("uses"))
                .help("set `license` (or Cargo's `license`), an SPDX expression"),
        );
        return Err(problems);
    };

    let base = &facts.cargo.root;
    let outputs = files::Outputs::new(&[context.dist, &facts.cargo.target_dir]);
    let bin_dir = options.bin_dir.clone().unwrap_or_else(|| "/usr/bin".into());
    let Shared {
        entries: shared,
        systemd,
        scripts: user_scripts,
    } = files::shared(rules, stage, &options, base, &outputs, &mut problems);

    let release = options.release.clone().unwrap_or_else(|| "1".into());
    let key = options
        .key
        .as_ref()
        .map(|key| KeySource::from_config(key, stage.loaded));
    if let Some(wanted) = &options.targets {
        for name in wanted {
            if !by_target
                .values()
                .any(|(t, _)| t.name == *name || t.triple == *name)
            {
                problems.push(
                    Problem::new(
                        format!("`{name}` is not a Linux target of the stages this stage needs"),
                        stage.span("targets"),
                    )
                    .label("not built")
                    .help("list targets of the `uses = \"cargo\"` stage in `needs`"),
                );
            }
        }
    }
    let mut arches: BTreeMap<&str, &str> = BTreeMap::new();
    let mut expansion = Expansion::default();
    for (target_name, (target, binaries)) in &by_target {
        let Some(arch) = names::arch(format, target) else {
            problems.push(
                Problem::new(
                    format!("{} has no {} architecture name for `{target_name}`", format.extension(), format.extension()),
                    stage.span("needs"),
                )
                .label("unknown architecture")
                .help("packages are made for x64, arm64, x86, arm, riscv64, ppc64le, s390x and loong64 Linux targets"),
            );
            continue;
        };
        if let Some(other) = arches.insert(arch, target_name) {
            problems.push(
                Problem::new(
                    format!("`{other}` and `{target_name}` would both be the {arch} package"),
                    stage.span(if options.targets.is_some() {
                        "targets"
                    } else {
                        "needs"
                    }),
                )
                .label("one package per architecture")
                .help(format!("choose one with `targets = [\"{target_name}\"]`")),
            );
            continue;
        }
        let mut entries = shared.clone();
        for (binary, path) in binaries {
            entries.push(Entry {
                dst: format!("{}/{binary}", bin_dir.trim_end_matches('/')),
                mode: 0o755,
                content: Content::File {
                    src: path.clone(),
                    config: false,
                },
            });
            entries.extend(files::completions(
                format,
                &options,
                binary,
                base,
                &outputs,
                stage,
                &mut problems,
            ));
        }
        let file_name = match format {
            PackageFormat::Deb => format!("{name}_{version}-{release}_{arch}.deb"),
            PackageFormat::Rpm => format!("{name}-{version}-{release}.{arch}.rpm"),
        };
        let spec = PackageSpec {
            format,
            output: context.dist_path(&file_name),
            meta: Metadata {
                name: name.clone(),
                version: version.clone(),
                release: release.clone(),
                arch: arch.to_owned(),
                maintainer: maintainer.clone(),
                summary: summary.clone(),
                description: long.clone(),
                license: license.clone(),
                homepage: options
                    .homepage
                    .clone()
                    .or_else(|| facts.cargo.homepage.clone()),
                section: options
                    .section
                    .clone()
                    .unwrap_or_else(|| rules.section.into()),
                priority: options
                    .priority
                    .clone()
                    .unwrap_or_else(|| "optional".into()),
                depends: options.depends.clone(),
                recommends: options.recommends.clone(),
                conflicts: options.conflicts.clone(),
                provides: options.provides.clone(),
                replaces: options.replaces.clone(),
            },
            entries,
            systemd: systemd.clone(),
            scripts: user_scripts.clone(),
            mtime: facts.source_date_epoch,
            static_binaries: target.triple.contains("musl"),
            signed_by: key.as_ref().map(|_| stage.name.to_string()),
            compression: options.compression.unwrap_or_default(),
        };
        let task = Task::Package(Box::new(PackageTask {
            spec,
            key: key.clone(),
        }));
        let artifact =
            PlannedArtifact::written(file_name, ArtifactKind::Package, Some(target.clone()));
        expansion
            .units
            .push(Unit::task(Some(target_name.clone()), task, vec![artifact]));
    }
    if problems.is_empty() {
        Ok(expansion)
    } else {
        Err(problems)
    }
}
