//! Sigstore bundles in a release folder (`<file>.sigstore.json`), or one file's: each checked
//! offline against the trusted root and the identity policy, over the file it names. The
//! bundle's name is untrusted: a file outside the folder, a link or a missing file fails.

use std::path::{Path, PathBuf};

use super::{Finding, read_small};
use crate::error::Error;
use crate::relpath::{self, RelPath};
use crate::sigstore::{Bundle, Policy, TrustedRoot};

/// How bundles are checked.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Who must have signed.
    pub policy: Policy,
    /// A `trusted_root.json`; the public-good root shipit ships when unset.
    pub trusted_root: Option<PathBuf>,
    /// The repository whose workflows must have signed, for attestations fetched from it.
    pub github_repo: Option<String>,
}

impl Options {
    /// The trusted root to check with.
    pub fn root(&self) -> Result<TrustedRoot, Error> {
        match &self.trusted_root {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::Usage(format!("--trusted-root {}: {e}", path.display())))?;
                TrustedRoot::from_json(&text)
                    .map_err(|e| Error::Usage(format!("--trusted-root {}: {e}", path.display())))
            }
            None => Ok(TrustedRoot::public_good()),
        }
    }

    pub(super) fn require_policy(&self) -> Result<(), Error> {
        if self.policy.is_set() {
            return Ok(());
        }
        Err(Error::Usage(
            "a Sigstore bundle says who signed, so say who must have: --certificate-identity \
             (or --github-repo) and --certificate-oidc-issuer"
                .into(),
        ))
    }
}

/// Every bundle among `files`.
pub fn check(dir: &Path, files: &[RelPath], options: &Options) -> Result<Vec<Finding>, Error> {
    let bundles: Vec<&RelPath> = files
        .iter()
        .filter(|p| p.as_str().ends_with(".sigstore.json"))
        .collect();
    if bundles.is_empty() {
        return Ok(Vec::new());
    }
    options.require_policy()?;
    let root = options.root()?;
    Ok(bundles
        .into_iter()
        .map(|bundle| {
            let subject = bundle.as_str().trim_end_matches(".sigstore.json");
            let outcome = RelPath::new(subject)
                .map_err(|e| e.to_string())
                .and_then(|subject| {
                    let text = read_small(dir, bundle).map_err(|e| format!("cannot read: {e}"))?;
                    let (file, _) = relpath::open_regular(dir, &subject)
                        .map_err(|e| format!("{subject}: {e}"))?;
                    check_one(&text, file, &root, &options.policy)
                });
            finding(subject, bundle.as_str(), outcome)
        })
        .collect())
}

/// `file`'s bundle: `bundle` when given, else `<file>.sigstore.json`.
pub fn check_file(file: &Path, bundle: Option<&Path>, options: &Options) -> Result<Finding, Error> {
    options.require_policy()?;
    let root = options.root()?;
    let bundle = bundle
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(format!("{}.sigstore.json", file.display())));
    let outcome = std::fs::read_to_string(&bundle)
        .map_err(|e| format!("cannot read {}: {e}", bundle.display()))
        .and_then(|text| {
            let data = std::fs::File::open(file).map_err(|e| e.to_string())?;
            check_one(&text, data, &root, &options.policy)
        });
    Ok(finding(
        &file.display().to_string(),
        &bundle.display().to_string(),
        outcome,
    ))
}

/// Where a file's attestations come from.
#[derive(Debug, Clone)]
pub enum Attestations {
    /// A file: one bundle, JSON lines of bundles (`gh attestation download`), or the API's
    /// `{"attestations": [{"bundle": ...}]}`.
    File(PathBuf),
    /// GitHub's API, for `--github-repo`'s repository.
    Github,
}

/// Every attestation of `file`: each must hold (chain, log, identity) and name the file's
/// SHA-256 among its subjects; at least one must.
pub fn check_attestations(
    file: &Path,
    from: &Attestations,
    options: &Options,
) -> Result<Vec<Finding>, Error> {
    options.require_policy()?;
    let root = options.root()?;
    let (_, sha256) = crate::manifest::hash_file(file)
        .map_err(|e| Error::Usage(format!("{}: {e}", file.display())))?;
    let (by, text) = match from {
        Attestations::File(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path)
                .map_err(|e| Error::Usage(format!("--attestation {}: {e}", path.display())))?,
        ),
        Attestations::Github => {
            let repo = options.github_repo.as_deref().ok_or_else(|| {
                Error::Usage("--github-attestation needs --github-repo OWNER/NAME".into())
            })?;
            (
                format!("GitHub's attestations for {repo}"),
                fetch(repo, &sha256)?,
            )
        }
    };
    let bundles = bundles(&text);
    if bundles.is_empty() {
        return Ok(vec![finding(
            &file.display().to_string(),
            &by,
            Err("no attestation names this file".into()),
        )]);
    }
    Ok(bundles
        .into_iter()
        .map(|bundle| {
            let outcome = bundle.and_then(|bundle| {
                let (verified, statement) =
                    crate::sigstore::verify_attestation(&bundle, &root, &options.policy)?;
                let named = statement["subject"].as_array().is_some_and(|subjects| {
                    subjects
                        .iter()
                        .any(|s| s["digest"]["sha256"].as_str() == Some(sha256.as_str()))
                });
                if !named {
                    return Err("its statement does not name this file's SHA-256".into());
                }
                Ok(format!(
                    "{} attested by {} (issuer {}), Rekor entry {}",
                    statement["predicateType"].as_str().unwrap_or("a statement"),
                    verified.identity,
                    verified.issuer,
                    verified.log_index
                ))
            });
            finding(&file.display().to_string(), &by, outcome)
        })
        .collect())
}

/// The bundles a text holds: one, one per line, or under the API's `attestations`.
fn bundles(text: &str) -> Vec<Result<Bundle, String>> {
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        if let Some(list) = value["attestations"].as_array() {
            return list
                .iter()
                .map(|a| Bundle::from_json(&a["bundle"].to_string()))
                .collect();
        }
        return vec![Bundle::from_json(text)];
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(Bundle::from_json)
        .collect()
}

/// `GET /repos/{repo}/attestations/sha256:{digest}` through the GitHub client.
fn fetch(repo: &str, sha256: &str) -> Result<String, Error> {
    let token = crate::publish::github::token().unwrap_or_default();
    let client = crate::publish::github::Client::new(
        &crate::github_urls::api_url(),
        &token,
        std::time::Duration::from_secs(120),
    )
    .map_err(Error::work)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Failed(e.to_string()))?;
    let value = runtime
        .block_on(client.attestations(repo, &format!("sha256:{sha256}")))
        .map_err(Error::work)?;
    Ok(value.to_string())
}

fn check_one(
    text: &str,
    data: std::fs::File,
    root: &TrustedRoot,
    policy: &Policy,
) -> Result<String, String> {
    let bundle = Bundle::from_json(text)?;
    let (_, sha256) = crate::manifest::hash_reader(std::io::BufReader::new(data))
        .map_err(|e| format!("cannot read: {e}"))?;
    let digest = hex::decode(sha256).map_err(|e| e.to_string())?;
    let verified = crate::sigstore::verify(&bundle, &digest, root, policy)?;
    Ok(format!(
        "signed by {} (issuer {}), Rekor entry {} at {}",
        verified.identity,
        verified.issuer,
        verified.log_index,
        humantime::format_rfc3339(crate::sigstore::trust::at(verified.integrated_time))
    ))
}

fn finding(file: &str, by: &str, outcome: Result<String, String>) -> Finding {
    let (ok, detail) = match outcome {
        Ok(detail) => (true, detail),
        Err(detail) => (false, detail),
    };
    Finding {
        file: file.to_owned(),
        check: "sigstore",
        by: by.to_owned(),
        ok,
        detail,
    }
}
