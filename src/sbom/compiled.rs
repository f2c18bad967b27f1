//! Which packages cargo compiles for one platform: `cargo tree -e normal --target`, which
//! resolves features per platform and per dependency kind (resolver 2), unlike the resolve
//! `cargo metadata` answers with, where a feature one platform (or a dev-dependency) turns on
//! is on for every platform and pulls its optional dependencies into all of them.

use std::collections::BTreeSet;
use std::process::Command;

use super::{SbomError, SbomSpec};

/// `(name, version)` of every package built along normal edges from `roots` for `platform`.
pub(super) fn compiled(
    spec: &SbomSpec,
    platform: &str,
    roots: &[&str],
) -> Result<BTreeSet<(String, String)>, SbomError> {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .args([
            "tree", "--edges", "normal", "--prefix", "none", "--format", "{p}",
        ])
        .args(["--target", platform, "--locked", "--manifest-path"])
        .arg(&spec.manifest);
    for root in roots {
        command.args(["--package", root]);
    }
    if spec.no_default_features {
        command.arg("--no-default-features");
    }
    if !spec.features.is_empty() {
        command.args(["--features", &spec.features.join(",")]);
    }
    let failed = |message: String| SbomError::Metadata {
        triple: spec.triple.clone(),
        message,
    };
    let out = command
        .output()
        .map_err(|e| failed(format!("cannot run cargo tree: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(failed(format!(
            "cargo tree: {}",
            stderr
                .lines()
                .find(|l| l.contains("error"))
                .unwrap_or(stderr.trim())
        )));
    }
    Ok(parse(&String::from_utf8_lossy(&out.stdout)))
}

/// `name v1.2.3 (...)` lines as `(name, version)`.
fn parse(tree: &str) -> BTreeSet<(String, String)> {
    tree.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let version = words.next()?.strip_prefix('v')?;
            Some((name.to_owned(), version.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_lines_give_names_and_versions() {
        let found = parse(
            "sbt v0.1.0 (/tmp/sbt)\nonce_cell v1.21.4\nserde_derive v1.0.200 (proc-macro)\n\n",
        );
        assert!(found.contains(&("once_cell".into(), "1.21.4".into())));
        assert!(found.contains(&("serde_derive".into(), "1.0.200".into())));
        assert_eq!(found.len(), 3);
    }
}
