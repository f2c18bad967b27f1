//! String templates (`{{ version }}`), rendered with minijinja and strict undefined: a typo in a
//! variable name is an error, never an empty string.

mod shell;

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

pub use shell::{Refusal, variable};

/// Variables available in every template.
pub const GLOBAL_VARS: &[&str] = &[
    "project",
    "version",
    "major",
    "minor",
    "patch",
    "prerelease",
    "tag",
    "commit",
    "short_commit",
    "date",
    "branch",
    "nightly",
    "snapshot",
    "env",
];
/// Variables available only where a template is rendered once per target.
pub const TARGET_VARS: &[&str] = &["target", "os", "arch"];

fn base_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(base_environment)
}

/// A template problem, with a byte range inside the template text when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// What is wrong.
    pub message: String,
    /// Where, inside the template text.
    pub range: Option<Range<usize>>,
    /// How to fix it, when the problem is more than a name or syntax.
    pub hint: Option<&'static str>,
}

impl TemplateError {
    fn new(message: impl Into<String>, range: Option<Range<usize>>) -> TemplateError {
        TemplateError {
            message: message.into(),
            range,
            hint: None,
        }
    }
}

fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// Checks syntax and that every variable used is one of `allowed`, without rendering.
pub fn check(text: &str, allowed: &[&str]) -> Result<(), TemplateError> {
    if !is_template(text) {
        return Ok(());
    }
    let template = environment()
        .template_from_str(text)
        .map_err(|e| TemplateError::new(e.detail().unwrap_or("invalid template"), e.range()))?;
    let used: BTreeSet<String> = template.undeclared_variables(false).into_iter().collect();
    if let Some(unknown) = used.iter().find(|v| !allowed.contains(&v.as_str())) {
        let range = text
            .find(unknown.as_str())
            .map(|start| start..start + unknown.len());
        let mut message = format!("unknown template variable `{unknown}`");
        if TARGET_VARS.contains(&unknown.as_str()) {
            message.push_str(" (only defined where a template is rendered per target)");
        }
        return Err(TemplateError::new(message, range));
    }
    Ok(())
}

/// Renders `text` with `vars`. Plain strings are returned unchanged.
pub fn render(text: &str, vars: &Value) -> Result<String, TemplateError> {
    render_in(environment(), text, vars)
}

/// Renders `text` as JSON: every value it prints is written as JSON (a string quoted and
/// escaped), so no value can break out of its place; the result must parse as JSON.
pub fn render_json(text: &str, vars: &Value) -> Result<serde_json::Value, TemplateError> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    let env = ENV.get_or_init(|| {
        let mut env = base_environment();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Json);
        env
    });
    let text = render_in(env, text, vars)?;
    serde_json::from_str(&text)
        .map_err(|e| TemplateError::new(format!("the template does not give JSON: {e}"), None))
}

/// A `run` command, rendered: a script for `sh -c` that refers to each printed value by an
/// environment variable, and the values (see [`shell`] for why). It serialises (in the plan's
/// JSON) as the script alone, as a log shows it: values may be secrets (`env.TOKEN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCommand {
    /// The script, with `"${SHIPIT_VALUE_n}"` where the template printed a value.
    pub script: String,
    /// The printed values, in order; `values[n]` is `SHIPIT_VALUE_n`.
    pub values: Vec<String>,
}

impl Serialize for ShellCommand {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.script)
    }
}

impl ShellCommand {
    /// The variables the script needs, to set on its process.
    pub fn env(&self) -> impl Iterator<Item = (String, &str)> + '_ {
        self.values
            .iter()
            .enumerate()
            .map(|(i, v)| (variable(i), v.as_str()))
    }
}

impl From<&str> for ShellCommand {
    fn from(script: &str) -> ShellCommand {
        ShellCommand {
            script: script.to_string(),
            values: Vec::new(),
        }
    }
}

/// Checks a `run` command's template: besides [`check`], no value may stand where the shell
/// parses text (quotes, heredocs, `sh -c` scripts; see [`shell`]).
pub fn check_shell(text: &str, allowed: &[&str]) -> Result<(), TemplateError> {
    check(text, allowed)?;
    let (marked, values) = mark_source(text)?;
    shell::substitute(&marked)
        .map(drop)
        .map_err(|(index, why)| {
            let mut e = TemplateError::new(why.to_string(), values.get(index).cloned());
            e.hint = Some(why.hint());
            e
        })
}

/// The template's text with every `{{ ... }}` as a marker and every `{% ... %}` and `{# ... #}`
/// dropped, and where each marker's expression is in the text.
fn mark_source(text: &str) -> Result<(String, Vec<Range<usize>>), TemplateError> {
    refuse_marker(text)?;
    let mut marked = String::with_capacity(text.len());
    let mut values = Vec::new();
    let mut rest = 0;
    while let Some(found) = text[rest..].find('{') {
        let open = rest + found;
        let close = match text.get(open + 1..open + 2) {
            Some("{") => "}}",
            Some("%") => "%}",
            Some("#") => "#}",
            _ => {
                marked.push_str(&text[rest..=open]);
                rest = open + 1;
                continue;
            }
        };
        marked.push_str(&text[rest..open]);
        let end = text[open + 2..]
            .find(close)
            .map_or(text.len(), |p| open + 2 + p + 2);
        if close == "}}" {
            marked.push(shell::MARKER);
            values.push(open..end);
        }
        rest = end;
    }
    marked.push_str(&text[rest..]);
    Ok((marked, values))
}

fn refuse_marker(text: &str) -> Result<(), TemplateError> {
    match text.find(shell::MARKER) {
        Some(at) => Err(TemplateError::new(
            "a command may not hold the control character U+0001",
            Some(at..at + 1),
        )),
        None => Ok(()),
    }
}

/// Renders a `run` command: each printed value becomes a variable reference (see [`shell`]).
/// A value where the shell would parse it is an error, as in [`check_shell`].
pub fn render_shell(text: &str, vars: &Value) -> Result<ShellCommand, TemplateError> {
    if !is_template(text) {
        return Ok(text.into());
    }
    refuse_marker(text)?;
    let values = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut env = base_environment();
    let sink = Arc::clone(&values);
    env.set_formatter(move |out, _state, value| {
        if let Ok(mut values) = sink.lock() {
            values.push(value.to_string());
        }
        out.write_str(shell::MARKER.encode_utf8(&mut [0; 4]))
            .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()))
    });
    let rendered = render_in(&env, text, vars)?;
    drop(env);
    let values = Arc::try_unwrap(values)
        .ok()
        .and_then(|m| m.into_inner().ok())
        .unwrap_or_default();
    let printed = rendered.matches(shell::MARKER).count();
    if printed != values.len() || values.iter().any(|v| v.contains(shell::MARKER)) {
        return Err(TemplateError::new(
            "a command may print values only with `{{ ... }}`, not through `set` blocks, macros or filter blocks",
            None,
        ));
    }
    if values.iter().any(|v| v.contains('\0')) {
        return Err(TemplateError::new(
            "a template value holds a NUL byte",
            None,
        ));
    }
    let script = shell::substitute(&rendered).map_err(|(index, why)| {
        let mut e = TemplateError::new(
            format!(
                "{why} (the value printed {} in the rendered command)",
                ordinal(index + 1)
            ),
            None,
        );
        e.hint = Some(why.hint());
        e
    })?;
    Ok(ShellCommand { script, values })
}

/// `1st`, `2nd`, `3rd`, `4th`.
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn render_in(env: &Environment<'_>, text: &str, vars: &Value) -> Result<String, TemplateError> {
    if !is_template(text) {
        return Ok(text.to_string());
    }
    env.render_str(text, vars).map_err(|e| {
        let mut message = e.detail().unwrap_or("cannot render template").to_string();
        if e.kind() == minijinja::ErrorKind::UndefinedError {
            message = match e.detail() {
                Some(d) => format!("undefined value: {d}"),
                None => "undefined value (an unset `env.NAME`, or a variable not defined here)"
                    .to_string(),
            };
        }
        TemplateError::new(message, e.range())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_template_writes_every_value_as_json() {
        let vars = Value::from_serialize(serde_json::json!({"name": "a\"}, \"x\": {\"", "n": 3}));
        let rendered = render_json("{\"text\": {{ name }}, \"n\": {{ n }}}", &vars).unwrap();
        assert_eq!(
            rendered,
            serde_json::json!({"text": "a\"}, \"x\": {\"", "n": 3})
        );
        assert!(render_json("{{ name }} plain", &vars).is_err());
    }

    #[test]
    fn plain_strings_pass_through() {
        assert_eq!(
            render("cargo test", &Value::UNDEFINED).unwrap(),
            "cargo test"
        );
        assert!(check("cargo test --all", GLOBAL_VARS).is_ok());
    }

    #[test]
    fn renders_and_rejects_undefined() {
        let vars =
            minijinja::context! { version => "1.2.3", env => minijinja::context!{ A => "x" } };
        assert_eq!(
            render("v{{ version }}-{{ env.A }}", &vars).unwrap(),
            "v1.2.3-x"
        );
        assert!(render("{{ env.MISSING }}", &vars).is_err());
        assert!(render("{{ nope }}", &vars).is_err());
    }

    #[test]
    fn shell_rendering_passes_values_in_variables() {
        let vars = minijinja::context! {
            branch => "x$(id)",
            tag => "a;touch pwned",
            version => "1.2.3",
        };
        let command = render_shell("echo {{ branch }} v{{ version }}", &vars).unwrap();
        assert_eq!(
            command.script,
            r#"echo "${SHIPIT_VALUE_0}" v"${SHIPIT_VALUE_1}""#
        );
        assert_eq!(command.values, ["x$(id)", "1.2.3"]);
        // `safe` and `e` change nothing: no value is ever shell text.
        let command = render_shell("{{ tag | safe }} {{ tag | e }}", &vars).unwrap();
        assert_eq!(command.script, r#""${SHIPIT_VALUE_0}" "${SHIPIT_VALUE_1}""#);
        let plain = render_shell("cargo test", &vars).unwrap();
        assert_eq!(
            (plain.script.as_str(), plain.values.len()),
            ("cargo test", 0)
        );
    }

    #[test]
    fn shell_rendering_refuses_what_the_source_hides() {
        let vars = minijinja::context! { branch => "main" };
        // The source reads as `echo ''{{ branch }}`; rendered, the loop leaves a quote open.
        let text = "echo '{% for i in [1, 2] %}'{% endfor %}{{ branch }}";
        assert!(check_shell(text, GLOBAL_VARS).is_ok());
        let err = render_shell(text, &vars).unwrap_err();
        assert!(err.message.contains("single quotes"), "{}", err.message);
        assert!(err.hint.is_some());
        assert!(render_shell("echo \u{1}{{ branch }}", &vars).is_err());
    }

    #[test]
    fn check_shell_points_at_the_value() {
        let text = "echo \"building {{ branch }}\"";
        let err = check_shell(text, GLOBAL_VARS).unwrap_err();
        assert_eq!(err.message, "a template value inside double quotes");
        assert_eq!(&text[err.range.unwrap()], "{{ branch }}");
        let text = "cat <<EOT\n{% if nightly %}x{% endif %} {{ tag }}\nEOT";
        let err = check_shell(text, GLOBAL_VARS).unwrap_err();
        assert_eq!(&text[err.range.unwrap()], "{{ tag }}");
        assert!(check_shell("echo {{ branch }} {# \" #}", GLOBAL_VARS).is_ok());
    }

    #[test]
    fn check_finds_syntax_and_unknown_variables() {
        let err = check("a {{ version", GLOBAL_VARS).unwrap_err();
        assert!(err.range.is_some());
        let err = check("x {{ verison }}", GLOBAL_VARS).unwrap_err();
        assert_eq!(err.message, "unknown template variable `verison`");
        assert_eq!(err.range, Some(5..12));
        assert!(check("{{ target }}", GLOBAL_VARS).is_err());
        let all: Vec<&str> = GLOBAL_VARS.iter().chain(TARGET_VARS).copied().collect();
        assert!(check("{{ project }}-{{ target }}", &all).is_ok());
    }
}
