//! The build context for a Dockerfile build: a tar of the context folder without what
//! `.dockerignore` excludes (the Dockerfile and `.dockerignore` are always sent, as the Docker
//! CLI does).

use std::io::{self, Write};
use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Why the build context could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// `.dockerignore` holds a pattern that is not one.
    #[error("{file}:{line}: not a pattern")]
    Pattern {
        /// The `.dockerignore`.
        file: String,
        /// Its line.
        line: usize,
        /// What the pattern parser said.
        #[source]
        source: ignore::Error,
    },
    /// A file of the context could not be read or the tar written.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

fn io_error(what: String) -> impl FnOnce(io::Error) -> ContextError {
    move |source| ContextError::Io { what, source }
}

/// `.dockerignore` rules. Patterns are relative to the context root (`*.md` matches only at
/// the top, `**/*.md` anywhere); `!` re-includes.
pub fn dockerignore(context: &Path) -> Result<Gitignore, ContextError> {
    let mut builder = GitignoreBuilder::new(context);
    let path = context.join(".dockerignore");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_error(format!("cannot read {}", path.display()))(e)),
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (negate, pattern) = match line.strip_prefix('!') {
            Some(rest) => ("!", rest.trim()),
            None => ("", line),
        };
        // Docker anchors every pattern at the root; gitignore only those with a slash.
        let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
        builder
            .add_line(None, &format!("{negate}/{pattern}"))
            .map_err(|source| ContextError::Pattern {
                file: path.display().to_string(),
                line: n + 1,
                source,
            })?;
    }
    builder.build().map_err(|source| ContextError::Pattern {
        file: path.display().to_string(),
        line: 0,
        source,
    })
}

/// Writes the context tar to `out`; returns how many files it holds.
pub fn write_context(
    context: &Path,
    dockerfile: &str,
    out: impl Write,
) -> Result<usize, ContextError> {
    let rules = dockerignore(context)?;
    let always = [dockerfile.trim_start_matches("./"), ".dockerignore"];
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let mut files = 0;
    let mut walk = walkdir::WalkDir::new(context)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter();
    while let Some(entry) = walk.next() {
        let entry =
            entry.map_err(|e| io_error("cannot read the build context".into())(e.into()))?;
        // Entries are below the root they were walked from.
        let rel = entry
            .path()
            .strip_prefix(context)
            .unwrap_or(entry.path())
            .to_string_lossy()
            .replace('\\', "/");
        let is_dir = entry.file_type().is_dir();
        let ignored = rules
            .matched_path_or_any_parents(entry.path(), is_dir)
            .is_ignore();
        if ignored && !always.contains(&rel.as_str()) {
            // Skipping a folder skips its contents, unless a `!` rule might bring some back.
            if is_dir && !text_has_exceptions(&rules) {
                walk.skip_current_dir();
            }
            continue;
        }
        if is_dir {
            continue;
        }
        tar.append_path_with_name(entry.path(), &rel)
            .map_err(io_error(format!("cannot add {rel} to the build context")))?;
        files += 1;
    }
    tar.finish()
        .map_err(io_error("cannot write the build context".into()))?;
    Ok(files)
}

fn text_has_exceptions(rules: &Gitignore) -> bool {
    rules.num_whitelists() > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn honours_dockerignore() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in [
            "Dockerfile",
            "a.md",
            "src/b.md",
            "src/main.rs",
            "target/big",
            "keep/x.log",
            "keep/important.log",
        ] {
            std::fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
            std::fs::write(root.join(file), file).unwrap();
        }
        std::fs::write(
            root.join(".dockerignore"),
            "# comment\n*.md\ntarget\nkeep/*.log\n!keep/important.log\nDockerfile\n",
        )
        .unwrap();
        let mut out = Vec::new();
        let n = write_context(root, "Dockerfile", &mut out).unwrap();
        let mut archive = tar::Archive::new(&out[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                ".dockerignore",
                "Dockerfile",
                "keep/important.log",
                "src/b.md",
                "src/main.rs"
            ]
        );
        assert_eq!(n, 5);
    }
}
