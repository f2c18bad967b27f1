//! Secret masking: every line shipit prints or logs passes through [`Masker::mask`].
//!
//! A masker knows the secrets of its environment (by variable name) plus every secret
//! registered anywhere in the process with [`register`]: the variables a pipeline names
//! (`password_env`, `key.env`, registry auth), and values resolved at run time (Docker
//! credentials, a token's Basic form). Each secret is masked as written and in the escaped
//! forms output formats give it (JSON strings, for `--json`).

use std::borrow::Cow;
use std::sync::RwLock;

use regex::Regex;

/// Environment variable name endings whose values are treated as secrets.
const SECRET_SUFFIXES: &[&str] = &["_TOKEN", "_KEY", "_SECRET", "_PASSWORD"];
/// Shorter values are not masked: masking `1` or `yes` everywhere would garble output.
const MIN_SECRET_LEN: usize = 4;
/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Replaces known secret values and token-shaped strings with `***`.
#[derive(Debug, Clone)]
pub struct Masker {
    values: Vec<String>,
    shapes: Regex,
}

impl Masker {
    /// A masker for the secrets in the current process environment.
    pub fn from_env() -> Masker {
        Masker::new(std::env::vars())
    }

    /// A masker for the secrets among `vars` (name, value pairs).
    pub fn new(vars: impl IntoIterator<Item = (String, String)>) -> Masker {
        let mut values: Vec<String> = vars
            .into_iter()
            .filter(|(name, _)| is_secret_name(name))
            // A multi-line secret (a key file's text) is masked line by line too, since output
            // is shown one line at a time.
            .flat_map(|(_, value)| {
                let lines: Vec<String> = if value.contains('\n') {
                    value.lines().map(|l| l.trim().to_string()).collect()
                } else {
                    Vec::new()
                };
                std::iter::once(value).chain(lines)
            })
            .filter(|value| value.len() >= MIN_SECRET_LEN)
            .collect();
        values = values.iter().flat_map(|v| escaped_forms(v)).collect();
        // Longest first, so a secret that contains another is masked whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        let shapes = Regex::new(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")
            .expect("token pattern is valid");
        Masker { values, shapes }
    }

    /// Adds a value that must never be shown (a value read from a key file, say).
    pub fn add(&mut self, secret: impl Into<String>) {
        for form in escaped_forms(&secret.into()) {
            if !self.values.contains(&form) {
                self.values.push(form);
            }
        }
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    /// `text` with every secret replaced by `***`.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        let registered = REGISTERED.read().unwrap_or_else(|e| e.into_inner());
        // Longest first across both lists, so a secret that contains another is masked whole.
        let mut values: Vec<&String> = self.values.iter().chain(registered.iter()).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        for value in values {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), MASK));
            }
        }
        if self.shapes.is_match(&out) {
            out = Cow::Owned(self.shapes.replace_all(&out, MASK).into_owned());
        }
        out
    }
}

/// Secrets registered by the pipeline and at run time, for every masker of the process.
static REGISTERED: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers a secret value for every masker of the process (short values are ignored, as
/// masking them everywhere would garble output).
pub fn register(secret: &str) {
    let mut registered = REGISTERED.write().unwrap_or_else(|e| e.into_inner());
    for form in escaped_forms(secret) {
        if !registered.contains(&form) {
            registered.push(form);
        }
    }
}

/// Registers the value of the environment variable `name`, if set: for variables a pipeline
/// names as holding a secret, whatever their name.
pub fn register_env(name: &str) {
    if let Ok(value) = std::env::var(name) {
        register(&value);
        // A multi-line secret (a key file's text) shows up line by line too.
        for line in value.lines() {
            register(line.trim());
        }
    }
}

/// The secret as written and as output formats escape it (a JSON string's inside); only forms
/// long enough to mask.
fn escaped_forms(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_string()];
    if let Ok(json) = serde_json::to_string(secret) {
        forms.push(json[1..json.len() - 1].to_string());
    }
    forms.retain(|f| f.len() >= MIN_SECRET_LEN);
    forms.dedup();
    forms
}

/// Whether an environment variable of this name holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_SUFFIXES.iter().any(|s| upper.ends_with(s))
        || SECRET_SUFFIXES.iter().any(|s| upper == s[1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn masks_values_of_secret_variables() {
        let m = Masker::new(vars(&[
            ("GITHUB_TOKEN", "s3cr3t-value"),
            ("REGISTRY_PASSWORD", "hunter22"),
            ("SIGNING_KEY", "abcd"),
            ("AWS_SECRET", "zzzzzz"),
            ("PATH", "/usr/bin"),
            ("SHORT_TOKEN", "ab"),
        ]));
        assert_eq!(
            m.mask("token=s3cr3t-value pw=hunter22 k=abcd z=zzzzzz"),
            "token=*** pw=*** k=*** z=***"
        );
        assert_eq!(m.mask("/usr/bin ab"), "/usr/bin ab");
    }

    #[test]
    fn masks_token_shapes_without_env() {
        let m = Masker::new(vars(&[]));
        let classic = format!("ghp_{}", "a1B2".repeat(9));
        let server = format!("ghs_{}", "Z9".repeat(18));
        let fine = format!("github_pat_{}", "11AB_cd".repeat(10));
        let line = format!("auth {classic} and {server} and {fine}.");
        assert_eq!(m.mask(&line), "auth *** and *** and ***.");
    }

    #[test]
    fn json_escaped_forms_are_masked() {
        let m = Masker::new(vars(&[("A_TOKEN", r#"p"a\ss\word"#)]));
        let json = serde_json::json!({ "line": r#"pw=p"a\ss\word"# }).to_string();
        assert_eq!(m.mask(&json), r#"{"line":"pw=***"}"#);
    }

    #[test]
    fn registered_secrets_are_masked_by_every_masker() {
        let m = Masker::new(vars(&[]));
        register("registered-secret-value");
        assert_eq!(m.mask("x registered-secret-value y"), "x *** y");
    }

    #[test]
    fn longer_secrets_win_over_their_substrings() {
        let mut m = Masker::new(vars(&[("A_TOKEN", "abcd")]));
        m.add("abcdefgh");
        assert_eq!(m.mask("abcdefgh abcd"), "*** ***");
    }
}
