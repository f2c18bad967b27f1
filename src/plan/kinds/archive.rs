//! `uses = "archive"`: one reproducible archive per target, from the binaries of the stages it
//! needs plus extra files.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Context, Expansion, Kind, StageRef};
use crate::archive::{ArchiveSpec, FileSpec, Format};
use crate::config::Problem;
use crate::config::validate::{check_template, template_problem};
use crate::manifest::ArtifactKind;
use crate::path;
use crate::plan::{PlannedArtifact, Unit};
use crate::targets::Target;
use crate::tasks::Task;
use crate::template::{self, GLOBAL_VARS, TARGET_VARS};

const DEFAULT_NAME: &str = "{{ project }}-{{ version }}-{{ target }}";

/// Options of `uses = "archive"`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ArchiveOptions {
    /// Archive name without extension (template). Default: `{{ project }}-{{ version }}-{{ target }}`.
    pub name: Option<String>,
    /// `tar.gz`, `zip` or `binary`. Default: `zip` for Windows targets, `tar.gz` otherwise.
    pub format: Option<Format>,
    /// Top folder inside the archive (template); `""` for none. Default: the archive's name.
    pub folder: Option<String>,
    /// Extra files: globs relative to the project, or `{ src, dst, optional }` tables.
    #[serde(default)]
    pub files: Vec<FileEntry>,
    /// Deflate level, 0 to 9. Default: 6 (as gzip and zip).
    pub level: Option<u32>,
    /// Per-target `format` and `name`, keyed by target.
    #[serde(default)]
    pub overrides: IndexMap<String, ArchiveOverride>,
}

/// An extra file pattern.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FileEntry {
    /// A glob; matches keep their path.
    Glob(String),
    /// A glob placed elsewhere in the archive.
    Mapped {
        /// The glob.
        src: String,
        /// A folder (ending in `/`) or, for one match, a file name.
        dst: Option<String>,
        /// Matching nothing is fine.
        #[serde(default)]
        optional: bool,
    },
}

/// Settings for one target's archive.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ArchiveOverride {
    /// Format for this target.
    pub format: Option<Format>,
    /// Name for this target (template).
    pub name: Option<String>,
}

/// The `archive` kind.
pub struct Archive;

impl Kind for Archive {
    type Options = ArchiveOptions;
    const NAME: &'static str = "archive";
    const ABOUT: &'static str =
        "package each target's binaries and files into a reproducible tar.gz or zip";

    fn check(&self, stage: &StageRef<'_>, options: &ArchiveOptions) -> Vec<Problem> {
        let mut problems = Vec::new();
        let vars: Vec<&str> = GLOBAL_VARS.iter().chain(TARGET_VARS).copied().collect();
        for key in ["name", "folder"] {
            let value = if key == "name" {
                &options.name
            } else {
                &options.folder
            };
            if let Some(text) = value {
                check_template(
                    stage.loaded,
                    path!["stages", stage.name, key],
                    text,
                    &vars,
                    &mut problems,
                );
            }
        }
        for (i, entry) in options.files.iter().enumerate() {
            let (src, dst) = match entry {
                FileEntry::Glob(src) => (src, None),
                FileEntry::Mapped { src, dst, .. } => (src, dst.as_ref()),
            };
            let checked = crate::relpath::RelPath::new(src).and_then(|_| match dst {
                Some(dst) => crate::relpath::RelPath::new(dst).map(drop),
                None => Ok(()),
            });
            if let Err(e) = checked {
                problems.push(
                    Problem::new(
                        format!("`files` entry: {e}"),
                        stage.loaded.span_near(path!["stages", stage.name, "files", i]),
                    )
                    .label("outside the project")
                    .help("`src` globs are relative to the project and `dst` to the archive; neither may use `..`"),
                );
            }
        }
        if options.level.is_some_and(|l| l > 9) {
            problems.push(
                Problem::new("`level` must be 0 to 9", stage.span("level"))
                    .label("out of range")
                    .help("6 is what gzip and zip use by default"),
            );
        }
        problems.extend(super::needs_none(
            stage,
            "an archive stage needs the stage that builds the binaries",
            "build",
        ));
        problems
    }

    fn expand(
        &self,
        stage: &StageRef<'_>,
        options: ArchiveOptions,
        context: &Context<'_>,
    ) -> Result<Expansion, Vec<Problem>> {
        let mut by_target: IndexMap<String, (Target, Vec<std::path::PathBuf>)> = IndexMap::new();
        for artifact in context.needed_artifacts(stage) {
            if let (ArtifactKind::Binary, Some(target)) = (artifact.kind, &artifact.target) {
                by_target
                    .entry(target.name.clone())
                    .or_insert_with(|| (target.clone(), Vec::new()))
                    .1
                    .push(context.dist_path(&artifact.path));
            }
        }
        if by_target.is_empty() {
            return Err(vec![
                Problem::new(
                    "none of the stages this archive needs builds binaries",
                    stage.span("needs"),
                )
                .label("no binaries here")
                .help("list the `uses = \"cargo\"` stage in `needs`"),
            ]);
        }
        let files: Vec<FileSpec> = options
            .files
            .iter()
            .map(|entry| match entry {
                FileEntry::Glob(src) => FileSpec {
                    src: src.clone(),
                    dst: None,
                    optional: false,
                },
                FileEntry::Mapped { src, dst, optional } => FileSpec {
                    src: src.clone(),
                    dst: dst.clone(),
                    optional: *optional,
                },
            })
            .collect();
        let mut problems = Vec::new();
        let base = &context.facts.cargo.root;
        let generated = [context.facts.cargo.target_dir.as_path(), context.dist];
        for (i, why) in crate::archive::check_files(&files, base, &generated) {
            problems.push(
                Problem::new(
                    format!("`files`: {why}"),
                    stage.loaded.span_near(path!["stages", stage.name, "files", i]),
                )
                .label("found before the build")
                .help("every `files` entry is checked when the plan is made; `optional = true` allows none"),
            );
        }
        let mut expansion = Expansion::default();
        for (name, (target, binaries)) in &by_target {
            let overrides = options
                .overrides
                .iter()
                .find(|(k, _)| *k == name || **k == target.triple)
                .map(|(_, o)| o.clone())
                .unwrap_or_default();
            let vars = target_vars(context, target);
            let name_template = overrides
                .name
                .as_deref()
                .or(options.name.as_deref())
                .unwrap_or(DEFAULT_NAME);
            let render = |key: &str, text: &str, problems: &mut Vec<Problem>| {
                template::render(text, &vars)
                    .map_err(|e| {
                        problems.push(template_problem(
                            stage.loaded,
                            path!["stages", stage.name, key],
                            text,
                            e,
                        ))
                    })
                    .ok()
            };
            let Some(archive_name) = render("name", name_template, &mut problems) else {
                continue;
            };
            let folder = match &options.folder {
                Some(text) => render("folder", text, &mut problems),
                None => Some(archive_name.clone()),
            };
            // The name becomes a file in dist, the folder every entry's first component.
            let unsafe_name = crate::relpath::RelPath::file_name(&archive_name)
                .err()
                .map(|e| ("name", e))
                .or_else(|| {
                    folder
                        .as_deref()
                        .filter(|f| !f.is_empty())
                        .and_then(|f| crate::relpath::RelPath::new(f).err())
                        .map(|e| ("folder", e))
                });
            if let Some((key, e)) = unsafe_name {
                problems.push(
                    Problem::new(format!("archive `{key}` for {name}: {e}"), stage.span(key))
                        .label("escapes its folder")
                        .help("archive names are file names in dist; folders are relative"),
                );
                continue;
            }
            let format = overrides
                .format
                .or(options.format)
                .unwrap_or(if target.os == "windows" {
                    Format::Zip
                } else {
                    Format::TarGz
                });
            let file_name = match format {
                Format::Binary => format!("{archive_name}{}", target.exe_suffix()),
                other => format!("{archive_name}{}", other.extension()),
            };
            if format == Format::Binary && (binaries.len() != 1 || !files.is_empty()) {
                problems.push(
                    Problem::new(
                        format!(
                            "format `binary` ships one bare file, but `{name}` has {} and {}",
                            crate::words::count(binaries.len(), "binary", "binaries"),
                            crate::words::count(files.len(), "file pattern", "file patterns")
                        ),
                        stage.span("format"),
                    )
                    .help("use `tar.gz` or `zip` for several files"),
                );
                continue;
            }
            let spec = ArchiveSpec {
                format,
                output: context.dist_path(&file_name),
                folder: folder.filter(|f| !f.is_empty()),
                binaries: binaries.clone(),
                files: files.clone(),
                base: context.facts.cargo.root.clone(),
                mtime: context.facts.source_date_epoch,
                level: options.level.unwrap_or(6),
            };
            let kind = if format == Format::Binary {
                ArtifactKind::Binary
            } else {
                ArtifactKind::Archive
            };
            // The binaries it packs were normalised when the build collected them.
            let artifact = PlannedArtifact::written(file_name, kind, Some(target.clone()));
            expansion.units.push(Unit::task(
                Some(name.clone()),
                Task::Archive(spec),
                vec![artifact],
            ));
        }
        if problems.is_empty() {
            Ok(expansion)
        } else {
            Err(problems)
        }
    }
}

/// Template variables for one target: the run's plus `target`, `os`, `arch`.
fn target_vars(context: &Context<'_>, target: &Target) -> minijinja::Value {
    minijinja::context! {
        target => target.name,
        os => target.os,
        arch => target.arch,
        ..context.facts.template_vars()
    }
}
