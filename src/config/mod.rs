//! Reading pipeline files: TOML with spans -> [`PipelineFile`], with every problem located.
//!
//! Loading collects every problem it can find instead of stopping at the first one: syntax
//! errors first (nothing else is meaningful without a parse), then wrong types section by
//! section, unknown keys anywhere, and finally the semantic checks of [`validate`].

pub mod bounds;
mod diagnostic;
mod keys;
mod kinds;
mod load_error;
pub mod names;
pub mod schema;
mod types;
pub mod validate;
mod values;

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeOwned, IntoDeserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub use diagnostic::{ConfigError, Problem, ProblemDiagnostic, did_you_mean, line_col};
pub use kinds::{ChannelInfo, Extensions, KindInfo, StageRef, TableInfo};
pub use load_error::LoadError;
use load_error::candidates;
pub use types::*;
pub use values::{Duration, KeyConfig, SigstoreInstance, SigstoreKey, Size, ValueError};

/// One step of a path into the TOML document: a key or an array index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg<'a> {
    /// A table key.
    Key(&'a str),
    /// An array position.
    Index(usize),
}

impl<'a> From<&'a str> for Seg<'a> {
    fn from(key: &'a str) -> Self {
        Seg::Key(key)
    }
}

impl From<usize> for Seg<'_> {
    fn from(index: usize) -> Self {
        Seg::Index(index)
    }
}

/// Builds a `&[Seg]` path from keys and indices: `path!["stages", name, "run", 0]`.
#[macro_export]
macro_rules! path {
    ($($seg:expr),* $(,)?) => { &[$($crate::config::Seg::from($seg)),*][..] };
}

/// A pipeline file read from disk, parsed and type-checked, with its source kept for spans.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Path of the pipeline file as given.
    pub path: PathBuf,
    /// Folder the file's relative paths are resolved against.
    pub base_dir: PathBuf,
    /// The file's text.
    pub text: String,
    /// The typed contents.
    pub file: PipelineFile,
    /// Stages that exist in the file but did not type-check (already reported).
    broken_stages: Vec<String>,
    /// The parsed document with spans, parsed once: every span lookup reads it.
    doc: std::sync::Arc<Document>,
}

/// A parsed document with spans.
type SpannedDoc<'a> = Spanned<DeTable<'a>>;

self_cell::self_cell!(
    /// The file's text with the document parsed from it (which borrows the text).
    struct Document {
        owner: String,
        #[covariant]
        dependent: SpannedDoc,
    }
    impl {Debug}
);

impl Document {
    fn parse(text: String) -> Document {
        Document::new(text, |text| {
            DeTable::parse(text).unwrap_or_else(|_| Spanned::new(0..0, DeTable::new()))
        })
    }
}

/// The largest pipeline file read: far beyond any real one, small enough to parse quickly.
pub const MAX_FILE_LEN: u64 = 16 << 20;

/// Reads, parses and validates a pipeline file whose stages may use `kinds`, reporting every
/// problem at once.
pub fn load(path: &Path, kinds: &dyn Extensions) -> Result<Loaded, LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    // A FIFO or a device would block or never end: only regular files, and not huge ones.
    let meta = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LoadError::Missing {
                path: path.to_path_buf(),
                candidates: candidates(path),
            });
        }
        meta => meta.map_err(read_error)?,
    };
    if !meta.is_file() {
        return Err(read_error(std::io::Error::other("not a regular file")));
    }
    if meta.len() > MAX_FILE_LEN {
        return Err(read_error(std::io::Error::other(format!(
            "{} bytes; a pipeline file is at most {MAX_FILE_LEN}",
            meta.len()
        ))));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(std::fs::File::open(path).map_err(read_error)?, MAX_FILE_LEN),
        &mut bytes,
    )
    .map_err(read_error)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
        let problem = Problem::new(
            "the pipeline file is not valid UTF-8",
            Some(offset..offset + 1),
        )
        .label("invalid byte")
        .help("save the file as UTF-8");
        ConfigError::new(display_name(path), lossy, vec![problem])
    })?;
    Ok(load_str(path, text, kinds)?)
}

/// Parses, type-checks and validates pipeline text that claims to come from `path`.
pub fn load_str(path: &Path, text: String, kinds: &dyn Extensions) -> Result<Loaded, ConfigError> {
    let name = display_name(path);
    let (root, errors) = DeTable::parse_recoverable(&text);
    if !errors.is_empty() {
        // Nothing else is meaningful without a parse.
        let mut problems: Vec<Problem> = errors
            .iter()
            .map(|e| Problem::new(e.message().trim_end(), e.span()).label("here"))
            .collect();
        problems.sort_by_key(|p| p.span.as_ref().map_or(0, |s| s.start));
        return Err(ConfigError::new(name, text, problems));
    }
    let mut problems = Vec::new();
    keys::check_unknown(&root, kinds, &mut problems);
    let (file, broken_stages) = typed(&root, &mut problems);
    drop(root);
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let loaded = Loaded {
        path: path.to_path_buf(),
        base_dir,
        doc: std::sync::Arc::new(Document::parse(text.clone())),
        text,
        file,
        broken_stages,
    };
    for var in secret_variables(loaded.doc().get_ref(), None) {
        crate::secrets::register_env(&var);
    }
    problems.extend(validate::validate(&loaded, kinds));
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(loaded.error(problems))
    }
}

/// How a path is shown in diagnostics: as given, without a leading `./`.
fn display_name(path: &Path) -> String {
    let shown = path.display().to_string();
    shown.strip_prefix("./").map(str::to_owned).unwrap_or(shown)
}

impl Loaded {
    /// Whether a stage of this name is written in the file, even if it did not type-check.
    pub fn has_stage(&self, name: &str) -> bool {
        self.file.stages.contains_key(name) || self.broken_stages.iter().any(|s| s == name)
    }

    /// The parsed document with spans.
    pub fn doc(&self) -> &Spanned<DeTable<'_>> {
        self.doc.borrow_dependent()
    }

    /// Bundles problems with this file's text for rendering.
    pub fn error(&self, mut problems: Vec<Problem>) -> ConfigError {
        problems.sort_by_key(|p| p.span.as_ref().map_or(0, |s| s.start));
        ConfigError::new(display_name(&self.path), self.text.clone(), problems)
    }

    /// Span of the value at `path`, e.g. `path!["stages", "lint", "timeout"]`.
    pub fn span(&self, path: &[Seg<'_>]) -> Option<Range<usize>> {
        value_at(self.doc(), path).map(|v| v.span())
    }

    /// The longest prefix of `path` that exists in the file. Lists may be written as a single
    /// string (`needs = "lint"`), so item `i` of a list falls back to the whole value.
    pub fn nearest<'p, 'a>(&self, path: &'p [Seg<'a>]) -> &'p [Seg<'a>] {
        let doc = self.doc();
        let mut end = path.len();
        while end > 0 && value_at(doc, &path[..end]).is_none() {
            end -= 1;
        }
        &path[..end]
    }

    /// Span of the value at `path`, or of the nearest part of it that exists.
    pub fn span_near(&self, path: &[Seg<'_>]) -> Option<Range<usize>> {
        self.span(self.nearest(path))
    }

    /// Span of the key that ends `path` (for unknown or misplaced keys), else of its value.
    pub fn key_span(&self, path: &[Seg<'_>]) -> Option<Range<usize>> {
        let doc = self.doc();
        let (last, parent) = path.split_last()?;
        let Seg::Key(name) = last else {
            return value_at(doc, path).map(|v| v.span());
        };
        let table = match parent {
            [] => Some(doc.get_ref()),
            _ => value_at(doc, parent).and_then(|v| v.get_ref().as_table()),
        }?;
        table
            .iter()
            .find(|(k, _)| k.get_ref() == name)
            .map(|(k, _)| k.span())
    }

    /// Span of the text inside a string value at `path` when it is written without escapes,
    /// so that positions inside the string (template errors) map onto the file exactly.
    pub fn string_span(&self, path: &[Seg<'_>], value: &str) -> Option<Range<usize>> {
        let span = self.span(path)?;
        let raw = self.text.get(span.clone())?;
        for quote in [r#"""""#, "'''", "\"", "'"] {
            if let Some(inner) = raw.strip_prefix(quote).and_then(|r| r.strip_suffix(quote))
                && inner == value
            {
                let start = span.start + quote.len();
                return Some(start..start + inner.len());
            }
        }
        None
    }

    /// Deserializes the value at `path` into `T`; a located problem on failure.
    pub fn deserialize_at<T: DeserializeOwned>(
        &self,
        path: &[Seg<'_>],
    ) -> Result<Option<T>, Problem> {
        let doc = self.doc();
        match value_at(doc, path) {
            None => Ok(None),
            Some(value) => deserialize(value.clone()).map(Some),
        }
    }

    /// Deserializes the table at `path` into `T`, reporting every key of the wrong type (not
    /// only the first serde meets); `what` names the table in messages.
    pub fn deserialize_table_at<T: DeserializeOwned>(
        &self,
        path: &[Seg<'_>],
        what: &str,
    ) -> Result<Option<T>, Vec<Problem>> {
        match value_at(self.doc(), path) {
            None => Ok(None),
            Some(value) => match deserialize_table(value, what) {
                (Some(v), problems) if problems.is_empty() => Ok(Some(v)),
                (_, problems) => Err(problems),
            },
        }
    }

    /// Whether the file has a `[release.<channel>]` section.
    pub fn has_channel(&self, channel: &str) -> bool {
        self.file.release.0.contains_key(channel)
    }

    /// The `[release.<channel>]` section as the channel reads it; `None` when the file has
    /// none; type errors located, every one of them.
    pub fn channel_section<T: DeserializeOwned>(
        &self,
        channel: &str,
    ) -> Result<Option<T>, Vec<Problem>> {
        self.deserialize_table_at(path!["release", channel], &format!("`[release.{channel}]`"))
    }

    /// The `[deploy.<env>.<runtime>]` table as `T` (a runtime's own options), type errors
    /// located; `None` when the environment has no such table.
    pub fn runtime_table<T: DeserializeOwned>(
        &self,
        env: &str,
        runtime: &str,
    ) -> Result<Option<T>, Vec<Problem>> {
        self.deserialize_table_at(
            path!["deploy", env, runtime],
            &format!("`[deploy.{env}.{runtime}]`"),
        )
    }

    /// Checks the `[release.<channel>]` section with `check` once it reads as `T`; otherwise
    /// its type errors; nothing when the file has no such section.
    pub fn check_channel_section<T: DeserializeOwned>(
        &self,
        channel: &str,
        check: impl FnOnce(T) -> Vec<Problem>,
    ) -> Vec<Problem> {
        match self.channel_section::<T>(channel) {
            Ok(Some(section)) => check(section),
            Ok(None) => Vec::new(),
            Err(problems) => problems,
        }
    }

    /// The keys of the table at `path`, in file order.
    pub fn keys(&self, path: &[Seg<'_>]) -> Vec<String> {
        let doc = self.doc();
        let table = match path {
            [] => Some(doc.get_ref()),
            _ => value_at(doc, path).and_then(|v| v.get_ref().as_table()),
        };
        table
            .map(|t| t.keys().map(|k| k.get_ref().to_string()).collect())
            .unwrap_or_default()
    }

    /// A path written in this file, resolved against the file's folder.
    pub fn resolve(&self, rel: &str) -> PathBuf {
        normalize(&self.base_dir.join(rel))
    }
}

/// Finds the value at `path` below the root table.
fn value_at<'d, 'i>(
    root: &'d Spanned<DeTable<'i>>,
    path: &[Seg<'_>],
) -> Option<&'d Spanned<DeValue<'i>>> {
    let (first, rest) = path.split_first()?;
    let Seg::Key(first) = first else { return None };
    let mut current = find_key(root.get_ref(), first)?;
    for seg in rest {
        current = match (seg, current.get_ref()) {
            (Seg::Key(key), DeValue::Table(table)) => find_key(table, key)?,
            (Seg::Index(i), DeValue::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(current)
}

/// The variables the file names as holding secrets, whatever their names: `password_env`,
/// `token_env` and a signing key's `key.env`, anywhere in the file.
fn secret_variables(table: &DeTable<'_>, parent: Option<&str>) -> Vec<String> {
    let mut found = Vec::new();
    for (key, value) in table {
        let key = key.get_ref().as_ref();
        match value.get_ref() {
            DeValue::Table(inner) => found.extend(secret_variables(inner, Some(key))),
            DeValue::String(name)
                if key.ends_with("password_env")
                    || key.ends_with("token_env")
                    || (key == "env" && parent == Some("key")) =>
            {
                found.push(name.to_string())
            }
            _ => {}
        }
    }
    found
}

fn find_key<'d, 'i>(table: &'d DeTable<'i>, key: &str) -> Option<&'d Spanned<DeValue<'i>>> {
    // Spanned keys hash and compare by their text only: a hashed lookup, not a scan (a scan
    // made loading quadratic in the number of stages).
    table.get(&Spanned::new(
        0..0,
        std::borrow::Cow::Owned(key.to_string()),
    ))
}

/// Deserializes one spanned value; serde errors keep the location of the bad value.
fn deserialize<T: DeserializeOwned>(value: Spanned<DeValue<'_>>) -> Result<T, Problem> {
    let span = value.span();
    T::deserialize(value.into_deserializer()).map_err(|e| {
        let message = e.message().trim_end().to_string();
        let problem = Problem::new(message, e.span().or(Some(span)));
        match values::hint(&problem.message) {
            Some((label, help)) => problem.label(label).help(help),
            None => problem.label("wrong type"),
        }
    })
}

/// `[deploy.<env>]` one environment at a time, so a bad one does not hide the others.
fn deploy_environments(
    value: &Spanned<DeValue<'_>>,
    file: &mut PipelineFile,
    problems: &mut Vec<Problem>,
) {
    let DeValue::Table(table) = value.get_ref() else {
        collect(deserialize(value.clone()), problems, |d| file.deploy = d);
        return;
    };
    for (env, item) in table {
        let what = format!("deploy environment `{}`", env.get_ref());
        let (config, mut found) = deserialize_table(item, &what);
        problems.append(&mut found);
        if let Some(config) = config {
            file.deploy.insert(env.get_ref().to_string(), config);
        }
    }
}

/// The dotted keys from `value` down to the value written at `span` (`health.deadline`).
fn key_path_to(value: &Spanned<DeValue<'_>>, span: &Range<usize>) -> Option<String> {
    match value.get_ref() {
        DeValue::Table(table) => table.iter().find_map(|(key, item)| {
            if item.span() == *span {
                return Some(key.get_ref().to_string());
            }
            let inner = key_path_to(item, span)?;
            Some(format!("{}.{inner}", key.get_ref()))
        }),
        DeValue::Array(items) => items.iter().find_map(|item| key_path_to(item, span)),
        _ => None,
    }
}

/// Builds the typed [`PipelineFile`] section by section, so a bad section does not hide
/// problems in the others.
fn typed(root: &Spanned<DeTable<'_>>, problems: &mut Vec<Problem>) -> (PipelineFile, Vec<String>) {
    let mut file = PipelineFile::default();
    let mut broken = Vec::new();
    let top = root.get_ref();
    let get = |key: &str| find_key(top, key).cloned();

    match get("version") {
        Some(v) => match deserialize::<u32>(v) {
            Ok(version) => file.version = version,
            Err(p) => problems.push(p.help("the only pipeline format is `version = 1`")),
        },
        None => problems.push(
            Problem::new("missing `version`", Some(0..0))
                .label("expected `version = 1` at the top of the file")
                .help("add `version = 1` as the first line"),
        ),
    }
    if let Some(v) = get("project") {
        let (project, mut found) = deserialize_table(&v, "`project`");
        problems.append(&mut found);
        file.project = project.unwrap_or_default();
    }
    if let Some(v) = get("env") {
        collect(deserialize(v), problems, |e| file.env = e);
    }
    if let Some(v) = get("release") {
        // Each channel reads and checks its own section (`Extensions::check_channel`).
        collect(deserialize(v), problems, |r| file.release = r);
    }
    if let Some(v) = get("deploy") {
        deploy_environments(&v, &mut file, problems);
    }
    let Some(stages) = get("stages") else {
        return (file, broken);
    };
    let DeValue::Table(table) = stages.get_ref() else {
        problems.push(
            Problem::new("`stages` must be a table of stages", Some(stages.span()))
                .label("expected a table")
                .help("write each stage as `[stages.<name>]`"),
        );
        return (file, broken);
    };
    for (name, value) in table {
        let name = name.get_ref();
        if !value.get_ref().is_table() {
            problems.push(
                Problem::new(
                    format!("stage `{name}` must be a table"),
                    Some(value.span()),
                )
                .label("expected a table")
                .help(format!(
                    "write it as `[stages.{name}]` followed by its keys"
                )),
            );
            broken.push(name.to_string());
            continue;
        }
        let (stage, mut found) =
            deserialize_table::<StageConfig>(value, &format!("stage `{name}`"));
        problems.append(&mut found);
        match stage {
            Some(stage) => {
                file.stages.insert(name.to_string(), stage);
            }
            None => broken.push(name.to_string()),
        }
    }
    (file, broken)
}

/// Deserializes a table, reporting every bad key (not only the first serde meets): a key
/// whose value is wrong is reported and left out, and the rest is tried again, so one bad key
/// does not hide the others. `None` when a key had the wrong type or what is left is not a
/// `T` (a required key is missing); `what` names the table in messages.
fn deserialize_table<T: DeserializeOwned>(
    value: &Spanned<DeValue<'_>>,
    what: &str,
) -> (Option<T>, Vec<Problem>) {
    let DeValue::Table(table) = value.get_ref() else {
        return match deserialize(value.clone()) {
            Ok(v) => (Some(v), Vec::new()),
            Err(problem) => (None, vec![problem]),
        };
    };
    let mut left = table.clone();
    let mut problems = Vec::new();
    loop {
        let problem =
            match deserialize::<T>(Spanned::new(value.span(), DeValue::Table(left.clone()))) {
                // A key of the wrong type leaves the table out (checks on what is left would
                // only guess); a well-typed value that does not parse is just that key's problem.
                Ok(v) if problems.iter().all(is_value_problem) => return (Some(v), problems),
                Ok(_) => return (None, problems),
                Err(problem) => problem,
            };
        let bad_key = problem.span.as_ref().and_then(|span| {
            left.iter()
                .find(|(_, item)| {
                    // A `[table]` header's span does not cover its keys: look inside too.
                    (item.span().start <= span.start && span.end <= item.span().end)
                        || key_path_to(item, span).is_some()
                })
                .map(|(key, item)| (key.clone(), item.clone()))
        });
        let Some((key, item)) = bad_key else {
            // Not one key's fault (a missing key): worth saying unless it follows from a bad
            // key already reported.
            if problems.is_empty() {
                problems.push(problem);
            }
            return (None, problems);
        };
        left.remove(&key);
        problems.push(key_problem(problem, key.get_ref(), &item, what));
    }
}

/// Whether `problem` is a value of the right type that does not parse (a duration, a size).
fn is_value_problem(problem: &Problem) -> bool {
    values::hint(&problem.message).is_some()
}

/// Names the key of `what` that holds a problem.
fn key_problem(
    mut problem: Problem,
    key: &str,
    item: &Spanned<DeValue<'_>>,
    what: &str,
) -> Problem {
    problem.message = if values::hint(&problem.message).is_some() {
        // A value of the right type that does not parse: name the key holding it.
        let inner = problem
            .span
            .as_ref()
            .filter(|span| item.span() != **span)
            .and_then(|span| key_path_to(item, span));
        let at = match inner {
            Some(inner) => format!("{key}.{inner}"),
            None => key.to_string(),
        };
        format!("`{at}` of {what}: {}", problem.message)
    } else {
        format!("wrong type for `{key}` in {what}: {}", problem.message)
    };
    problem
}

fn collect<T>(result: Result<T, Problem>, problems: &mut Vec<Problem>, store: impl FnOnce(T)) {
    match result {
        Ok(value) => store(value),
        Err(problem) => problems.push(problem),
    }
}

/// Removes `.` and resolves `..` lexically, so `pipelines/../dist` reads as `dist`.
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `/..` is `/`.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_lexically() {
        assert_eq!(
            normalize(Path::new("pipelines/../dist")),
            PathBuf::from("dist")
        );
        assert_eq!(normalize(Path::new("./a/./b/../c")), PathBuf::from("a/c"));
        assert_eq!(normalize(Path::new("../x")), PathBuf::from("../x"));
        assert_eq!(normalize(Path::new("a/..")), PathBuf::from("."));
        assert_eq!(normalize(Path::new("/a/../../b")), PathBuf::from("/b"));
    }
}
