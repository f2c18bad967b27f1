//! `uses = "generate"`: files a built binary prints about itself (shell completions, a man
//! page), run from this machine's build of it after the cargo stage it needs, written under
//! `dist/generated/`, so later stages can ship them: `files` of an archive, `completions` and
//! `man` of a package name them there, and they are checked when they are made, not before.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Context, Expansion, Kind, StageRef};
use crate::config::Problem;
use crate::generate::GenerateSpec;
use crate::manifest::ArtifactKind;
use crate::path;
use crate::plan::{PlannedArtifact, Unit};
use crate::tasks::Task;

/// The folder of dist generated files go to.
pub const FOLDER: &str = "generated";

/// Options of `uses = "generate"`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct GenerateOptions {
    /// The files: each what a command prints, the command's first word a binary the needed
    /// stage builds (run from this machine's build of it).
    #[serde(default)]
    pub files: Vec<GeneratedFile>,
}

/// One generated file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct GeneratedFile {
    /// Where it goes, under `dist/generated/`: `completions/demo.bash`.
    pub path: String,
    /// The binary and its arguments: `["demo", "completions", "bash"]`.
    pub command: Vec<String>,
}

/// The `generate` kind.
pub struct Generate;

impl Kind for Generate {
    type Options = GenerateOptions;
    const NAME: &'static str = "generate";
    const ABOUT: &'static str =
        "files a built binary prints (completions, man pages), for the later stages to ship";

    fn check(&self, stage: &StageRef<'_>, options: &GenerateOptions) -> Vec<Problem> {
        let mut problems = Vec::new();
        if options.files.is_empty() {
            problems.push(
                Problem::new("a generate stage lists no `files`", stage.span("uses")).help(
                    "add `files = [{ path = \"completions/demo.bash\", command = [\"demo\", \"completions\", \"bash\"] }]`",
                ),
            );
        }
        for (i, file) in options.files.iter().enumerate() {
            let at = || {
                stage
                    .loaded
                    .span_near(path!["stages", stage.name, "files", i])
            };
            if crate::relpath::RelPath::new(&file.path).is_err() {
                problems.push(
                    Problem::new(
                        format!(
                            "`{}` is not a path inside dist/{FOLDER}",
                            file.path.escape_debug()
                        ),
                        at(),
                    )
                    .help("a relative path without `..`: `completions/demo.bash`"),
                );
            }
            if file
                .command
                .first()
                .is_none_or(|b| b.is_empty() || b.contains('/'))
            {
                problems.push(
                    Problem::new("`command` must start with the name of a built binary", at())
                        .help("`command = [\"demo\", \"completions\", \"bash\"]`"),
                );
            }
        }
        problems.extend(super::needs_none(
            stage,
            "a generate stage runs a binary the cargo stage it needs builds",
            "build",
        ));
        problems
    }

    fn expand(
        &self,
        stage: &StageRef<'_>,
        options: GenerateOptions,
        context: &Context<'_>,
    ) -> Result<Expansion, Vec<Problem>> {
        let host = &context.facts.host;
        let binaries: Vec<&PlannedArtifact> = context
            .needed_artifacts(stage)
            .into_iter()
            .filter(|a| a.kind == ArtifactKind::Binary)
            .collect();
        let mut problems = Vec::new();
        let mut expansion = Expansion::default();
        for (i, file) in options.files.iter().enumerate() {
            let name = &file.command[0];
            // This machine's own build, else one it runs (a static musl build on glibc Linux).
            let runs = |a: &&PlannedArtifact| {
                a.name == *name
                    && a.target.as_ref().is_some_and(|t| {
                        t.triple == *host
                            || (same_arch(&t.triple, host)
                                && t.triple.contains("-linux-")
                                && host.contains("-linux-"))
                    })
            };
            let exact = binaries
                .iter()
                .find(|a| runs(a) && a.target.as_ref().is_some_and(|t| t.triple == *host));
            let Some(binary) = exact.or_else(|| binaries.iter().find(|a| runs(a))) else {
                problems.push(
                    Problem::new(
                        format!("no stage this one needs builds `{name}` for this machine ({host})"),
                        stage.loaded.span_near(path!["stages", stage.name, "files", i]),
                    )
                    .help("add `host` (or the musl target of this machine) to the cargo stage's `targets`"),
                );
                continue;
            };
            let path = format!("{FOLDER}/{}", file.path);
            let spec = GenerateSpec {
                binary: context.dist_path(&binary.path),
                args: file.command[1..].to_vec(),
                output: context.dist_path(&path),
                source_date_epoch: context.facts.source_date_epoch,
            };
            expansion.units.push(Unit::task(
                Some(file.path.clone()),
                Task::Generate(spec),
                vec![PlannedArtifact::written(path, ArtifactKind::File, None)],
            ));
        }
        if problems.is_empty() {
            Ok(expansion)
        } else {
            Err(problems)
        }
    }
}

fn same_arch(a: &str, b: &str) -> bool {
    a.split('-').next() == b.split('-').next()
}
