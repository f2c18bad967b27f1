//! `[deploy.<env>.systemd]`: the systemd runtime's own table, read and checked here only.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{Loaded, Problem};
use crate::path;

/// The options of `runtime = "systemd"`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Where releases live on each host; relative paths are under the ssh user's home.
    /// Default: the application's name.
    pub root: Option<String>,
    /// The template unit (`<unit>@.service`) whose instances run the service: instance
    /// `<unit>@<name>` runs `<root>/instances/<name>/bin/<bin>` with `EnvironmentFile=
    /// <root>/instances/<name>.env` (`shipit deploy --init` prints one). Default: the
    /// application's name.
    pub unit: Option<String>,
    /// How systemctl is run, as words: `["systemctl", "--user"]`, `["sudo", "-n",
    /// "systemctl"]`. Default: `["systemctl"]`.
    pub systemctl: Option<Vec<String>>,
    /// Releases kept on each host, the one running included (1 to 100). Default: 3.
    pub keep: Option<u32>,
    /// The executables each release installs in `bin/` (from the archive's top, or its
    /// `bin/`). Default: the application's name.
    pub bins: Option<Vec<String>>,
    /// The key ssh logs in with (relative to the pipeline file). Default: ssh's own choice.
    pub identity: Option<String>,
    /// The known_hosts file host keys are checked against (relative to the pipeline file).
    /// Default: ssh's own (`~/.ssh/known_hosts`). Unknown hosts are refused, never learned.
    pub known_hosts: Option<String>,
    /// The minisign public key (the `RW...` line) the release's `SHA256SUMS.minisig` is
    /// checked with on each host before the archive is kept. Default: none (SHA-256 only).
    pub public_key: Option<String>,
    /// The target whose archive the hosts run (an alias or triple). Default: the Linux
    /// archive for each host's architecture (`uname -m`), static (musl) first.
    pub target: Option<String>,
}

/// A word that may be a unit, a file or a command word on the host: letters, digits and
/// `._-@:+=/`, not starting with `-` or `.`.
pub fn is_word(text: &str, extra: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(['-', '.'])
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c) || extra.contains(c))
}

/// Every problem of `[deploy.<env>.systemd]`, located.
pub fn check(loaded: &Loaded, env: &str) -> Vec<Problem> {
    let options: Options = match loaded.runtime_table(env, "systemd") {
        Ok(options) => options.unwrap_or_default(),
        Err(problems) => return problems,
    };
    let mut problems = Vec::new();
    let mut refuse = |key: &str, message: String, help: &str| {
        let span = loaded
            .span(path!["deploy", env, "systemd", key])
            .or_else(|| loaded.key_span(path!["deploy", env, "systemd"]));
        problems.push(Problem::new(message, span).label("here").help(help));
    };
    if let Some(unit) = &options.unit
        && !is_word(unit, "")
    {
        refuse(
            "unit",
            format!("`{unit}` is not a unit name"),
            "write the template's name without `@.service`, e.g. unit = \"demo\"",
        );
    }
    for word in options.systemctl.iter().flatten() {
        if !is_word(word, "/=") {
            refuse(
                "systemctl",
                format!("`{word}` cannot be a word of the systemctl command"),
                "letters, digits and `_-./=`, e.g. [\"sudo\", \"-n\", \"systemctl\"]",
            );
        }
    }
    if options.systemctl.as_ref().is_some_and(Vec::is_empty) {
        refuse("systemctl", "no command".into(), "write [\"systemctl\"]");
    }
    for bin in options.bins.iter().flatten() {
        if !is_word(bin, "") {
            refuse(
                "bins",
                format!("`{bin}` is not an executable's file name"),
                "a file name, e.g. \"demo\"",
            );
        }
    }
    if let Some(keep) = options.keep
        && !(1..=100).contains(&keep)
    {
        refuse(
            "keep",
            format!("keep = {keep} is out of bounds"),
            "keep between 1 and 100 releases",
        );
    }
    if let Some(root) = &options.root
        && (root.is_empty() || root.contains(['\n', '\0']) || root.split('/').any(|p| p == ".."))
    {
        refuse(
            "root",
            format!("`{root}` cannot be the releases' folder"),
            "a path without `..`, e.g. \"/srv/demo\"",
        );
    }
    if let Some(key) = &options.public_key
        && (key.len() != 56 || !key.starts_with("RW") || !is_word(key, "+/="))
    {
        refuse(
            "public_key",
            "not a minisign public key".into(),
            "the second line of the `.pub` file, starting with `RW`",
        );
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_refuse_what_a_shell_or_ssh_would_read() {
        assert!(is_word("demo", ""));
        assert!(is_word("systemctl", "/="));
        for bad in ["", "-x", ".hidden", "a b", "a;b", "$(x)", "a\nb"] {
            assert!(!is_word(bad, "/="), "{bad:?}");
        }
    }
}
