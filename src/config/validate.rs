//! Semantic checks of a type-correct pipeline file: references, cycles, durations, templates,
//! conditions and the options of built-in stages. Every problem is collected.

use std::sync::OnceLock;

use indexmap::IndexMap;

use super::{Extensions, Loaded, Problem, Seg, StageRef, did_you_mean};
use crate::{dag, path, template};

/// Every semantic problem in the file.
pub fn validate(loaded: &Loaded, kinds: &dyn Extensions) -> Vec<Problem> {
    let mut problems = Vec::new();
    let file = &loaded.file;

    if file.version != 1 {
        problems.push(
            Problem::new(
                format!("unsupported pipeline version {}", file.version),
                loaded.span(path!["version"]),
            )
            .label("unsupported")
            .help("this shipit reads `version = 1`"),
        );
    }
    let cargo = file.project.cargo.as_deref().unwrap_or("Cargo.toml");
    // A `[project]` that did not type-check was reported already; its default would mislead.
    let project_broken =
        file.project.cargo.is_none() && loaded.span(path!["project", "cargo"]).is_some();
    if !project_broken && !loaded.resolve(cargo).is_file() {
        let span = loaded.span(path!["project", "cargo"]).or(Some(0..0));
        problems.push(
            Problem::new(format!("Cargo manifest `{cargo}` not found"), span)
                .label("no such file")
                .help("`project.cargo` is relative to the pipeline file's folder"),
        );
    }
    for (name, value) in &file.env {
        check_template(
            loaded,
            path!["env", name.as_str()],
            value,
            template::GLOBAL_VARS,
            &mut problems,
        );
    }
    for (name, stage) in &file.stages {
        check_stage(loaded, kinds, name, stage, &mut problems);
    }
    check_cycles(loaded, &mut problems);
    if let Some(check) = file.release.0.get(super::RELEASE_CHECK_KEY)
        && !check.is_bool()
    {
        problems.push(
            Problem::new(
                "`check` under `[release]` must be true or false",
                loaded.span(path!["release", super::RELEASE_CHECK_KEY]),
            )
            .label("expected a boolean")
            .help("write `check = false` to skip the check after publishing"),
        );
    }
    for channel in file.release.0.keys() {
        // An unknown channel is an unknown key, reported with the others.
        if kinds.channels().iter().any(|c| c.name == channel) {
            problems.extend(kinds.check_channel(channel, loaded));
        }
    }
    for (env, deploy) in &file.deploy {
        check_runtime_tables(loaded, kinds, env, deploy, &mut problems);
        check_router(loaded, kinds, env, deploy, &mut problems);
    }
    super::bounds::check(loaded, &mut problems);
    super::names::check(loaded, &mut problems);
    problems
}

/// A runtime's table is read only by that runtime: one for another runtime is a mistake, and
/// the chosen runtime checks its own.
fn check_runtime_tables(
    loaded: &Loaded,
    kinds: &dyn Extensions,
    env: &str,
    deploy: &super::DeployConfig,
    problems: &mut Vec<Problem>,
) {
    let chosen = deploy.runtime.as_deref().unwrap_or("docker");
    for name in deploy.runtime_tables.keys() {
        // An unknown table is an unknown key, reported with the others.
        if name != chosen && kinds.runtimes().iter().any(|r| r.name == name) {
            problems.push(
                Problem::new(
                    format!("`[deploy.{env}.{name}]` is for the {name} runtime, but this environment runs on {chosen}"),
                    loaded.key_span(path!["deploy", env, name.as_str()]),
                )
                .label("never read")
                .help(format!("set runtime = \"{name}\", or remove the table")),
            );
        }
    }
    // An unknown runtime is reported by the plan, with the runtimes there are.
    problems.extend(kinds.check_runtime(chosen, env, loaded));
}

/// `router` names exactly one router, which checks its own value (with no routers known,
/// nothing to say).
fn check_router(
    loaded: &Loaded,
    kinds: &dyn Extensions,
    env: &str,
    deploy: &super::DeployConfig,
    problems: &mut Vec<Problem>,
) {
    let routers = kinds.routers();
    if routers.is_empty() {
        return;
    }
    let named: Vec<&str> = deploy
        .router
        .options
        .keys()
        .map(String::as_str)
        .filter(|k| routers.iter().any(|r| r.name == *k))
        .collect();
    let names: Vec<&str> = routers.iter().map(|r| r.name).collect();
    let here = loaded.key_span(path!["deploy", env, "router"]);
    match named[..] {
        [one] => problems.extend(kinds.check_router(one, env, loaded)),
        [] => problems.push(
            Problem::new(format!("`router` in [deploy.{env}] names no router"), here)
                .label("here")
                .help(format!(
                    "name it with its address, e.g. haproxy = \"unix:///run/haproxy/admin.sock\" (routers: {})",
                    names.join(", ")
                )),
        ),
        _ => problems.push(
            Problem::new(
                format!(
                    "`router` in [deploy.{env}] names {} routers: {}",
                    named.len(),
                    named.join(", ")
                ),
                here,
            )
            .label("here")
            .help("an environment has one router: keep one key"),
        ),
    }
}

fn check_stage(
    loaded: &Loaded,
    kinds: &dyn Extensions,
    name: &str,
    stage: &super::StageConfig,
    problems: &mut Vec<Problem>,
) {
    let here = |key: &'static str| loaded.key_span(path!["stages", name, key]);
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        problems.push(
            Problem::new(
                format!("invalid stage name `{name}`"),
                loaded.key_span(path!["stages", name]),
            )
            .label("invalid name")
            .help("stage names use letters, digits, `-` and `_` (they name log files)"),
        );
    }
    match (&stage.run, &stage.uses) {
        (Some(_), Some(_)) => problems.push(
            Problem::new(
                format!("stage `{name}` has both `run` and `uses`"),
                here("uses"),
            )
            .label("second action")
            .help("a stage either runs commands or uses a built-in kind; split it into two stages"),
        ),
        (None, None) => problems.push(
            Problem::new(
                format!("stage `{name}` does nothing"),
                loaded.key_span(path!["stages", name]),
            )
            .label("no `run` or `uses`")
            .help("add `run = [\"<command>\"]` or `uses = \"<kind>\"`"),
        ),
        _ => {}
    }
    if let Some(run) = &stage.run {
        if run.0.is_empty() {
            problems.push(
                Problem::new(
                    format!("stage `{name}` has an empty `run` list"),
                    loaded.span(path!["stages", name, "run"]),
                )
                .label("no commands")
                .help("list at least one command"),
            );
        }
        for (i, command) in run.0.iter().enumerate() {
            if let Err(e) = template::check_shell(command, template::GLOBAL_VARS) {
                let at = path!["stages", name, "run", i];
                problems.push(template_problem(loaded, at, command, e));
            }
        }
    }
    let stage_ref = StageRef {
        name,
        config: stage,
        loaded,
    };
    let kind = stage.uses.as_deref().map(|uses| (uses, kinds.find(uses)));
    match kind {
        Some((uses, None)) => {
            let names = kinds.kinds().iter().map(|k| k.name);
            let help = match did_you_mean(uses, names.clone()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "built-in kinds: {}",
                    names
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            problems.push(
                Problem::new(
                    format!("unknown stage kind `{uses}`"),
                    loaded.span(path!["stages", name, "uses"]),
                )
                .label("not a built-in kind")
                .help(help),
            );
        }
        Some((uses, Some(_))) => problems.extend(kinds.check(uses, &stage_ref)),
        None => {}
    }
    if !matches!(kind, Some((_, None))) {
        check_option_owners(loaded, kinds, name, stage.uses.as_deref(), problems);
    }

    for (i, need) in stage.needs.0.iter().enumerate() {
        let span = loaded.span_near(path!["stages", name, "needs", i]);
        if need == name {
            problems.push(
                Problem::new(format!("stage `{name}` needs itself"), span)
                    .label("self-reference")
                    .help("remove it from `needs`"),
            );
        } else if !loaded.has_stage(need) {
            let others = loaded
                .file
                .stages
                .keys()
                .map(String::as_str)
                .filter(|s| *s != name);
            let help = match did_you_mean(need, others) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "stages in this file: {}",
                    loaded
                        .file
                        .stages
                        .keys()
                        .filter(|s| *s != name)
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            problems.push(
                Problem::new(format!("stage `{name}` needs unknown stage `{need}`"), span)
                    .label("no such stage")
                    .help(help),
            );
        }
    }
    for (key, value) in [("timeout", &stage.timeout), ("backoff", &stage.backoff)] {
        if value.is_some_and(|d| d.is_zero()) {
            problems.push(
                Problem::new(
                    format!("`{key}` of stage `{name}` must be longer than zero"),
                    loaded.span(path!["stages", name, key]),
                )
                .label("zero")
                .help("write a number with a unit, like `90s`, `10m` or `1h30m`"),
            );
        }
    }
    for (var, value) in &stage.env {
        check_template(
            loaded,
            path!["stages", name, "env", var.as_str()],
            value,
            template::GLOBAL_VARS,
            problems,
        );
    }
    if let Some(dir) = &stage.dir {
        check_template(
            loaded,
            path!["stages", name, "dir"],
            dir,
            template::GLOBAL_VARS,
            problems,
        );
    }
    if let Some(when) = &stage.when {
        for (key, patterns) in [("branch", &when.branch), ("tag", &when.tag)] {
            for (i, pattern) in patterns.iter().flat_map(|p| p.0.iter()).enumerate() {
                if let Err(e) = globset::Glob::new(pattern) {
                    let span = loaded.span_near(path!["stages", name, "when", key, i]);
                    problems.push(
                        Problem::new(
                            format!("invalid pattern in `when.{key}`: {}", e.kind()),
                            span,
                        )
                        .label("bad glob")
                        .help("use `*` for any text and `?` for one character, e.g. `release/*`"),
                    );
                }
            }
        }
    }
}

/// Built-in options used on a stage of another kind (or on a `run` stage).
fn check_option_owners(
    loaded: &Loaded,
    kinds: &dyn Extensions,
    name: &str,
    uses: Option<&str>,
    problems: &mut Vec<Problem>,
) {
    let common = common_stage_keys();
    for key in loaded.keys(path!["stages", name]) {
        if common.contains(&key) {
            continue;
        }
        let owners: Vec<&str> = kinds
            .kinds()
            .iter()
            .filter(|k| k.option_names.contains(&key))
            .map(|k| k.name)
            .collect();
        if owners.is_empty() || uses.is_some_and(|u| owners.contains(&u)) {
            continue;
        }
        let owner_list = owners
            .iter()
            .map(|o| format!("`uses = \"{o}\"`"))
            .collect::<Vec<_>>()
            .join(" or ");
        problems.push(
            Problem::new(
                format!("`{key}` does not apply to stage `{name}`"),
                loaded.key_span(path!["stages", name, key.as_str()]),
            )
            .label("not an option of this stage")
            .help(format!("`{key}` is an option of {owner_list}")),
        );
    }
}

fn common_stage_keys() -> &'static Vec<String> {
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let schema = schemars::schema_for!(super::StageConfig).to_value();
        schema["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    })
}

fn check_cycles(loaded: &Loaded, problems: &mut Vec<Problem>) {
    let graph: IndexMap<&str, Vec<&str>> = loaded
        .file
        .stages
        .iter()
        .map(|(name, stage)| {
            (
                name.as_str(),
                stage
                    .needs
                    .0
                    .iter()
                    .map(String::as_str)
                    .filter(|n| *n != name)
                    .collect(),
            )
        })
        .collect();
    let Some(cycle) = dag::find_cycle(&graph) else {
        return;
    };
    let (first, second) = (cycle[0], cycle[1]);
    let index = loaded.file.stages[first]
        .needs
        .0
        .iter()
        .position(|n| n == second)
        .unwrap_or(0);
    let chain = cycle
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(" -> ");
    problems.push(
        Problem::new(
            format!("dependency cycle: {chain}"),
            loaded.span_near(path!["stages", first, "needs", index]),
        )
        .label("closes the cycle")
        .help("each arrow is a `needs` entry; remove one to break the cycle"),
    );
}

/// Checks a template string, pointing inside it when the file writes it without escapes.
pub fn check_template(
    loaded: &Loaded,
    at: &[Seg<'_>],
    text: &str,
    vars: &[&str],
    problems: &mut Vec<Problem>,
) {
    if let Err(e) = template::check(text, vars) {
        problems.push(template_problem(loaded, at, text, e));
    }
}

/// A located problem for a template error.
pub fn template_problem(
    loaded: &Loaded,
    at: &[Seg<'_>],
    text: &str,
    e: template::TemplateError,
) -> Problem {
    let at = loaded.nearest(at);
    let span = match (loaded.string_span(at, text), e.range) {
        (Some(inner), Some(range)) if range.end <= inner.len() => {
            inner.start + range.start..inner.start + range.end
        }
        _ => loaded.span(at).unwrap_or(0..0),
    };
    let vars = template::GLOBAL_VARS
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let help = match e.hint {
        Some(hint) => hint.to_string(),
        None => {
            format!("templates may use {vars} (and `target`, `os`, `arch` in per-target options)")
        }
    };
    Problem::new(format!("bad template: {}", e.message), Some(span))
        .label("here")
        .help(help)
}
