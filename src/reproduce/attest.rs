//! A signed statement of what a reproduction found, for a third party to publish: an in-toto
//! statement whose subjects are the published files that were reproduced (by their published
//! SHA-256) and whose predicate is the whole comparison, in a DSSE envelope signed with the
//! reproducer's minisign key (as shipit's provenance is), one JSON line.

use std::path::Path;

use serde_json::{Value, json};

use super::{Report, ReproduceError};

/// The predicate type of a reproduction statement.
pub const PREDICATE_TYPE: &str = "https://github.com/shipit-rs/shipit/reproduce/v1";

/// The statement for `report`.
pub fn statement(report: &Report) -> Value {
    let subject: Vec<Value> = report
        .files
        .iter()
        .filter(|f| f.verdict.ok())
        .map(|f| json!({ "name": f.name, "digest": { "sha256": f.published } }))
        .collect();
    json!({
        "_type": crate::provenance::STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "release": report.release,
            "tag": report.tag,
            "commit": report.commit,
            "reproduced": report.reproduced(),
            "recorded": report.recorded,
            "rebuiltBy": {
                "shipit": env!("CARGO_PKG_VERSION"),
                "rustc": crate::facts::rustc_version(),
                "toolchain": report.toolchain,
            },
            "files": report.files,
        },
    })
}

/// Signs the statement for `report` with `key` and writes the envelope to `path`.
pub fn write(
    report: &Report,
    key: &crate::minisign::SecretKey,
    path: &Path,
) -> Result<(), ReproduceError> {
    let signing = key
        .ed25519()
        .map_err(|e| ReproduceError::Usage(format!("the key cannot sign the statement: {e}")))?;
    let envelope = crate::provenance::dsse::sign(
        crate::provenance::dsse::IN_TOTO,
        statement(report).to_string().as_bytes(),
        &signing,
    );
    let line = serde_json::to_string(&envelope).unwrap_or_default() + "\n";
    std::fs::write(path, line)
        .map_err(|e| ReproduceError::Setup(format!("{}: {e}", path.display())))
}
