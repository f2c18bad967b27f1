//! String templates (`{{ version }}`), rendered with minijinja and strict undefined: a typo in a
//! variable name is an error, never an empty string.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::OnceLock;

use minijinja::{Environment, UndefinedBehavior, Value};

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

/// The environment for shell command lines: every value an expression prints becomes one
/// shell word, quoted as needed, so a branch named `x$(id)` stays text. `{{ value | safe }}`
/// pastes a value unquoted, for the rare template that builds shell syntax on purpose.
fn shell_environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = base_environment();
        env.set_formatter(|out, _state, value| {
            let text = value.to_string();
            let written = if value.is_safe() {
                out.write_str(&text)
            } else {
                out.write_str(&shell_words::quote(&text))
            };
            written.map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
            })
        });
        env
    })
}

/// A template problem, with a byte range inside the template text when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// What is wrong.
    pub message: String,
    /// Where, inside the template text.
    pub range: Option<Range<usize>>,
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
        .map_err(|e| TemplateError {
            message: e.detail().unwrap_or("invalid template").to_string(),
            range: e.range(),
        })?;
    let used: BTreeSet<String> = template.undeclared_variables(false).into_iter().collect();
    if let Some(unknown) = used.iter().find(|v| !allowed.contains(&v.as_str())) {
        let range = text
            .find(unknown.as_str())
            .map(|start| start..start + unknown.len());
        let mut message = format!("unknown template variable `{unknown}`");
        if TARGET_VARS.contains(&unknown.as_str()) {
            message.push_str(" (only defined where a template is rendered per target)");
        }
        return Err(TemplateError { message, range });
    }
    Ok(())
}

/// Renders `text` with `vars`. Plain strings are returned unchanged.
pub fn render(text: &str, vars: &Value) -> Result<String, TemplateError> {
    render_in(environment(), text, vars)
}

/// Renders a shell command line: every printed value is shell-quoted unless marked `| safe`.
pub fn render_shell(text: &str, vars: &Value) -> Result<String, TemplateError> {
    render_in(shell_environment(), text, vars)
}

fn render_in(
    env: &Environment<'static>,
    text: &str,
    vars: &Value,
) -> Result<String, TemplateError> {
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
        TemplateError {
            message,
            range: e.range(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn shell_rendering_quotes_every_value() {
        let vars = minijinja::context! {
            branch => "x$(id)",
            tag => "a;touch pwned",
            version => "1.2.3",
            env => minijinja::context!{ X => "it's `here`" },
        };
        assert_eq!(
            render_shell("echo {{ branch }} {{ tag }}", &vars).unwrap(),
            "echo 'x$(id)' 'a;touch pwned'"
        );
        assert_eq!(
            render_shell("echo {{ env.X }}", &vars).unwrap(),
            r#"echo 'it'\''s `here`'"#
        );
        // Plain values stay as they are; one expression is one word; `safe` opts out.
        assert_eq!(render_shell("v{{ version }}", &vars).unwrap(), "v1.2.3");
        assert_eq!(
            render_shell("echo {{ 'on ' ~ branch }}", &vars).unwrap(),
            "echo 'on x$(id)'"
        );
        assert_eq!(
            render_shell("{{ tag | safe }}", &vars).unwrap(),
            "a;touch pwned"
        );
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
