//! `shipit verify`: every checksum and signature of a release folder, or one file's signature
//! (the checks are `crate::verify`'s).

use super::Session;
use crate::cli::VerifyArgs;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::verify::{Finding, verify};

/// Verifies and reports; exit 1 naming every file that fails.
pub fn run(session: &Session, args: &VerifyArgs) -> Result<ExitCode, Error> {
    let findings = match (&args.image, &args.path) {
        (Some(image), _) => {
            let key = args.key.as_deref().ok_or_else(|| {
                Error::Usage("--image needs the cosign public key: --key cosign.pub".into())
            })?;
            crate::verify::image(image, key, args.insecure)?
        }
        (None, Some(path)) => verify(path, args.key.as_deref(), args.pgp_key.as_deref())?,
        (None, None) => return Err(Error::Usage("name a folder or file, or --image".into())),
    };
    let failed: Vec<&Finding> = findings.iter().filter(|f| !f.ok).collect();
    if session.cli.global.json {
        session
            .printer
            .out(&serde_json::json!({"ok": failed.is_empty(), "checks": findings}).to_string());
    } else {
        for f in &findings {
            let mark = if f.ok { "ok    " } else { "FAILED" };
            session.printer.out(&format!(
                "{mark} {} {} ({}): {}",
                f.check, f.file, f.by, f.detail
            ));
        }
    }
    if failed.is_empty() {
        Ok(ExitCode::Success)
    } else {
        let names: Vec<&str> = failed.iter().map(|f| f.file.as_str()).collect();
        Err(Error::Failed(format!(
            "{} of {} checks failed: {}",
            failed.len(),
            findings.len(),
            names.join(", ")
        )))
    }
}
