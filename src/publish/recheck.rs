//! `shipit release --check` (and the check after every release): each channel re-reads what
//! it published, the way its users would get it (GitHub's assets, the registry's manifests,
//! npm's packument, the repositories' signed indexes, the formula in the tap), and compares
//! every file with the manifest. A channel answers with one [`Finding`] per file; a file that
//! differs or is missing fails the check, naming the channel, the file and both digests.

use futures_util::future::LocalBoxFuture;
use serde::Serialize;

use crate::error::Error;
use crate::events::{Event, Level, Reporter};
use crate::manifest::Manifest;

/// What a channel holds of one file, against what it should hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The file, package, index or image tag, as the channel names it.
    pub file: String,
    /// The digest it should have: `sha256:<hex>` (npm: `sha512-<base64>`).
    pub expected: String,
    /// The digest the channel holds; `None` when it does not hold the file at all.
    pub found: Option<String>,
    /// Why the channel cannot serve it yet although it accepted it (a feed's moderation):
    /// not a failure, and said so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

impl Finding {
    /// A finding for `file`.
    pub fn new(
        file: impl Into<String>,
        expected: impl Into<String>,
        found: Option<String>,
    ) -> Self {
        Finding {
            file: file.into(),
            expected: expected.into(),
            found,
            pending: None,
        }
    }

    /// A file the channel accepted but does not serve yet, and why.
    pub fn pending(
        file: impl Into<String>,
        expected: impl Into<String>,
        why: impl Into<String>,
    ) -> Self {
        Finding {
            pending: Some(why.into()),
            ..Finding::new(file, expected, None)
        }
    }

    /// A file compared by SHA-256, both given as lowercase or uppercase hex.
    pub fn sha256(file: impl Into<String>, expected: &str, found: Option<&str>) -> Self {
        let digest = |hex: &str| format!("sha256:{}", hex.to_ascii_lowercase());
        Finding::new(file, digest(expected), found.map(digest))
    }

    /// Whether the channel holds what it should.
    pub fn holds(&self) -> bool {
        self.pending.is_some() || self.found.as_deref() == Some(self.expected.as_str())
    }

    /// One line for people: `github: NAME matches sha256:…`, or what differs.
    pub fn describe(&self, channel: &str) -> String {
        match &self.found {
            _ if self.pending.is_some() => format!(
                "{channel}: {} is not served yet ({}); checked again by a later `release --check`",
                self.file,
                self.pending.as_deref().unwrap_or_default()
            ),
            _ if self.holds() => format!("{channel}: {} matches {}", self.file, self.expected),
            Some(found) => format!(
                "{channel}: {} differs: published as {}, the channel now has {found}",
                self.file, self.expected
            ),
            None => format!(
                "{channel}: {} is missing (published as {})",
                self.file, self.expected
            ),
        }
    }
}

/// What a channel's re-check returns.
pub type Rechecked<'a> = LocalBoxFuture<'a, Result<Vec<Finding>, Error>>;

/// Reports every channel's findings and fails, naming each one that does not hold, when any
/// file differs, is missing, or a channel could not be read.
pub fn conclude(
    results: Vec<(&'static str, Result<Vec<Finding>, Error>)>,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let mut failures = Vec::new();
    let mut files = 0;
    for (channel, result) in results {
        match result {
            Ok(findings) => {
                for finding in findings {
                    files += 1;
                    reporter.report(&Event::Rechecked {
                        channel,
                        file: &finding.file,
                        expected: &finding.expected,
                        found: finding.found.as_deref(),
                    });
                    let text = finding.describe(channel);
                    let level = if finding.holds() {
                        // One line per file is for -v; the total follows.
                        Level::Debug
                    } else {
                        failures.push(text.clone());
                        Level::Error
                    };
                    reporter.report(&Event::Message { level, text: &text });
                }
            }
            Err(e) => failures.push(format!(
                "{channel}: cannot check: {}",
                crate::error::chain(&e)
            )),
        }
    }
    if failures.is_empty() {
        reporter.report(&Event::Message {
            level: Level::Info,
            text: &format!("checked {files} published files: every one matches the manifest"),
        });
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "the published release does not match the manifest:\n{}",
            failures.join("\n")
        )))
    }
}

/// What a file a channel pushed (a formula, a bucket manifest, winget's manifests) says of
/// the release's files: each `(address, sha256)` it holds, against the released file at that
/// address (`url_of` gives a file's download address) and its digest in the manifest. `None`
/// for `pairs`: the file is not in the repository.
pub fn pointed(
    label: &str,
    pairs: Option<Vec<(String, String)>>,
    manifest: &Manifest,
    url_of: &dyn Fn(&str) -> String,
) -> Vec<Finding> {
    let Some(pairs) = pairs else {
        return vec![Finding::new(label, "the file pushed", None)];
    };
    pairs
        .into_iter()
        .map(|(url, sha256)| {
            let released = manifest
                .artifacts
                .iter()
                .filter(|a| !a.path.contains('/'))
                .find(|a| url_of(&a.name) == url);
            match released {
                Some(file) => Finding::sha256(
                    format!("{} as {label} names it", file.name),
                    &file.sha256,
                    Some(&sha256),
                ),
                None => Finding::new(
                    format!("{url} in {label}"),
                    "an address of a released file",
                    Some(url.clone()),
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pushed_file_is_checked_by_address_and_digest() {
        let manifest: Manifest = serde_json::from_value(serde_json::json!({
            "schema": 1, "project": "demo", "version": "1.0.0", "tag": "v1.0.0", "commit": "c",
            "date": "2026-01-01", "artifacts": [
                {"name": "demo.tar.gz", "path": "demo.tar.gz", "kind": "archive", "size": 1, "sha256": "ab"},
            ]
        }))
        .unwrap();
        let url_of = |name: &str| format!("https://x/download/{name}");
        let found = pointed(
            "Formula/demo.rb",
            Some(vec![
                ("https://x/download/demo.tar.gz".into(), "ab".into()),
                ("https://evil/demo.tar.gz".into(), "ab".into()),
            ]),
            &manifest,
            &url_of,
        );
        assert!(found[0].holds(), "{found:?}");
        assert_eq!(found[0].file, "demo.tar.gz as Formula/demo.rb names it");
        assert!(!found[1].holds(), "{found:?}");
        let missing = pointed("Formula/demo.rb", None, &manifest, &url_of);
        assert_eq!(missing[0].found, None);
    }

    #[test]
    fn a_finding_names_both_digests_or_the_missing_file() {
        let same = Finding::sha256("a.tar.gz", "AB", Some("ab"));
        assert!(same.holds());
        assert_eq!(
            same.describe("github"),
            "github: a.tar.gz matches sha256:ab"
        );
        let differs = Finding::sha256("a.tar.gz", "ab", Some("cd"));
        assert!(!differs.holds());
        assert_eq!(
            differs.describe("github"),
            "github: a.tar.gz differs: published as sha256:ab, the channel now has sha256:cd"
        );
        let missing = Finding::sha256("a.tar.gz", "ab", None);
        assert_eq!(
            missing.describe("apt"),
            "apt: a.tar.gz is missing (published as sha256:ab)"
        );
    }
}
