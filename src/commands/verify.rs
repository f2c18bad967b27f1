//! `shipit verify`: every checksum and signature of a release folder, or one file's signature
//! (the checks are `crate::verify`'s).

use super::Session;
use crate::cli::VerifyArgs;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::verify::{Finding, Report, verify};

/// Verifies and reports; exit 1 naming every file that fails.
pub fn run(session: &Session, args: &VerifyArgs) -> Result<ExitCode, Error> {
    let Report { checks, unlisted } = match (&args.image, &args.path) {
        (Some(image), _) => Report {
            checks: crate::verify::image(
                image,
                args.key.as_deref(),
                &keyless(args),
                args.insecure,
            )?,
            unlisted: Vec::new(),
        },
        (None, Some(path)) if args.attestation.is_some() || args.github_attestation => {
            let from = match &args.attestation {
                Some(file) => crate::verify::sigstore::Attestations::File(file.clone()),
                None => crate::verify::sigstore::Attestations::Github,
            };
            Report {
                checks: crate::verify::sigstore::check_attestations(path, &from, &keyless(args))?,
                unlisted: Vec::new(),
            }
        }
        (None, Some(path)) => verify(
            path,
            args.key.as_deref(),
            args.pgp_key.as_deref(),
            &keyless(args),
        )?,
        (None, None) => return Err(Error::Usage("name a folder or file, or --image".into())),
    };
    let failed: Vec<&Finding> = checks.iter().filter(|f| !f.ok).collect();
    let strict_failure = args.strict && !unlisted.is_empty();
    if session.cli.global.json {
        session.printer.out(
            &serde_json::json!({
                "ok": failed.is_empty() && !strict_failure,
                "checks": checks,
                "unlisted": unlisted,
            })
            .to_string(),
        );
    } else {
        for f in &checks {
            let mark = if f.ok { "ok    " } else { "FAILED" };
            session.printer.out(&format!(
                "{mark} {} {} ({}): {}",
                f.check, f.file, f.by, f.detail
            ));
        }
        let mark = if args.strict { "FAILED" } else { "WARN  " };
        for file in &unlisted {
            session.printer.out(&format!(
                "{mark} unlisted {}: no checksum file, signature or index lists it, so its content is not checked",
                file.escape_debug()
            ));
        }
    }
    let mut names: Vec<String> = failed.iter().map(|f| f.file.clone()).collect();
    if args.strict {
        names.extend(unlisted.iter().map(|f| f.escape_debug().to_string()));
    }
    if names.is_empty() {
        if !unlisted.is_empty() {
            session.printer.err(&format!(
                "warning: {} not covered by any check (--strict fails on them)",
                crate::words::count(unlisted.len(), "file is", "files are")
            ));
        }
        Ok(ExitCode::Success)
    } else {
        Err(Error::Failed(format!(
            "{} of {} checks failed: {}",
            names.len(),
            checks.len() + if args.strict { unlisted.len() } else { 0 },
            names.join(", ")
        )))
    }
}

/// How Sigstore bundles are checked, from the identity options.
fn keyless(args: &VerifyArgs) -> crate::verify::sigstore::Options {
    const ACTIONS: &str = "https://token.actions.githubusercontent.com";
    let server = crate::github_urls::server_url();
    crate::verify::sigstore::Options {
        policy: crate::sigstore::Policy {
            identity: args.certificate_identity.clone(),
            identity_prefix: args
                .github_repo
                .as_ref()
                .map(|repo| format!("{server}/{repo}/.github/workflows/")),
            issuer: args
                .certificate_oidc_issuer
                .clone()
                .or_else(|| args.github_repo.as_ref().map(|_| ACTIONS.to_owned())),
        },
        trusted_root: args.trusted_root.clone(),
        github_repo: args.github_repo.clone(),
    }
}
