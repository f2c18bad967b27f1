//! SLSA provenance (v1) of a build: an in-toto Statement whose subjects are the artifacts with
//! their SHA-256, whose build definition names the pipeline file (by digest), the resolved
//! parameters, the commit and the toolchain, and whose run details name the builder and the
//! run's start and end; wrapped in a DSSE envelope signed with the release's Ed25519 key (the
//! minisign key pair, so one public key checks both). [`check`] is what `shipit verify` does.

pub mod dsse;

use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Value, json};

use crate::file_error::FileError;

/// The in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The SLSA provenance predicate type.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What kind of build this is, for readers of the predicate.
pub const BUILD_TYPE: &str = "https://github.com/shipit-rs/shipit/buildtypes/pipeline/v1";

/// A provenance document to write, planned before the run.
#[derive(Debug, Clone, Serialize)]
pub struct ProvenanceSpec {
    /// The artifacts: name and path (hashed when the task runs).
    pub subjects: Vec<(String, PathBuf)>,
    /// The `.intoto.jsonl` file.
    pub output: PathBuf,
    /// `externalParameters`: what the build was asked for.
    pub external: Value,
    /// `internalParameters`: what the builder chose (toolchain).
    pub internal: Value,
    /// `resolvedDependencies`: the source, by commit.
    pub dependencies: Value,
    /// `runDetails.builder.id`.
    pub builder_id: String,
    /// `runDetails.metadata.invocationId`, when the CI names the run.
    pub invocation_id: Option<String>,
}

/// The statement, with `subjects` as (name, SHA-256). It holds no clock reading (SLSA's
/// `startedOn`/`finishedOn` are optional): a clean rebuild of the same commit writes the same
/// statement, and so the same signed envelope; only `invocationId` names the CI run.
pub fn statement(spec: &ProvenanceSpec, subjects: &[(String, String)]) -> Value {
    let subject: Vec<Value> = subjects
        .iter()
        .map(|(name, sha256)| json!({ "name": name, "digest": { "sha256": sha256 } }))
        .collect();
    let mut metadata = json!({});
    if let Some(id) = &spec.invocation_id {
        metadata["invocationId"] = json!(id);
    }
    json!({
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": spec.external,
                "internalParameters": spec.internal,
                "resolvedDependencies": spec.dependencies,
            },
            "runDetails": {
                "builder": {
                    "id": spec.builder_id,
                    "version": { "shipit": env!("CARGO_PKG_VERSION") },
                },
                "metadata": metadata,
            },
        },
    })
}

/// Why provenance was not written.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    /// An artifact or the output could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// The key is not an Ed25519 key shipit can use.
    #[error("the signing key cannot sign provenance")]
    Key(#[source] crate::minisign::Error),
}

/// Hashes the subjects, signs the statement and writes the envelope (one JSON line); returns
/// how many subjects it names.
pub fn write(
    spec: &ProvenanceSpec,
    key: &crate::minisign::SecretKey,
) -> Result<usize, ProvenanceError> {
    let mut subjects = Vec::new();
    for (name, path) in &spec.subjects {
        let sha256 = std::fs::File::open(path)
            .and_then(|file| {
                crate::checksum::hash_reader(
                    std::io::BufReader::new(file),
                    crate::checksum::Algorithm::Sha256,
                )
            })
            .map_err(FileError::on("read", path))?;
        subjects.push((name.clone(), sha256));
    }
    let statement = statement(spec, &subjects);
    let signing = key.ed25519().map_err(ProvenanceError::Key)?;
    let envelope = dsse::sign(dsse::IN_TOTO, statement.to_string().as_bytes(), &signing);
    let write = FileError::on("write", &spec.output);
    let line = serde_json::to_string(&envelope)
        .map(|json| json + "\n")
        .map_err(std::io::Error::other)
        .and_then(|line| std::fs::write(&spec.output, line));
    line.map_err(write)?;
    Ok(subjects.len())
}

/// A subject a verified statement names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Its name (a file of the release).
    pub name: String,
    /// Its SHA-256.
    pub sha256: String,
}

/// Why a provenance file does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The envelope does not verify, or is not one.
    #[error(transparent)]
    Envelope(#[from] dsse::DsseError),
    /// The payload is not a SLSA provenance statement.
    #[error("not a SLSA provenance v1 statement: {0}")]
    Statement(String),
}

/// The subjects of one envelope line, once its signature verifies with `key` and its payload is
/// a SLSA v1 statement.
pub fn check(line: &str, key: &ed25519_dalek::VerifyingKey) -> Result<Vec<Subject>, CheckError> {
    let envelope = envelope(line)?;
    let payload = envelope.verify(key)?;
    subjects(&parse_statement(&payload)?)
}

/// The statement of one envelope line, its signature not checked: for reading what a build
/// was asked for (`shipit reproduce`), never for trusting what it says was built.
pub fn read_unverified(line: &str) -> Result<Value, CheckError> {
    use base64::Engine;
    let envelope = envelope(line)?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope.payload.as_bytes())
        .map_err(|e| dsse::DsseError::Malformed(e.to_string()))?;
    parse_statement(&payload)
}

/// An envelope line carrying an in-toto statement.
fn envelope(line: &str) -> Result<dsse::Envelope, CheckError> {
    let envelope: dsse::Envelope =
        serde_json::from_str(line).map_err(|e| dsse::DsseError::Malformed(e.to_string()))?;
    if envelope.payload_type != dsse::IN_TOTO {
        return Err(CheckError::Statement(format!(
            "payload type `{}`",
            envelope.payload_type
        )));
    }
    Ok(envelope)
}

/// A payload that is a SLSA v1 provenance statement.
fn parse_statement(payload: &[u8]) -> Result<Value, CheckError> {
    let statement: Value =
        serde_json::from_slice(payload).map_err(|e| CheckError::Statement(e.to_string()))?;
    if statement["_type"] != STATEMENT_TYPE || statement["predicateType"] != PREDICATE_TYPE {
        return Err(CheckError::Statement(format!(
            "type {} with predicate {}",
            statement["_type"], statement["predicateType"]
        )));
    }
    Ok(statement)
}

/// The subjects a statement names, each with a SHA-256.
pub fn subjects(statement: &Value) -> Result<Vec<Subject>, CheckError> {
    let subjects = statement["subject"]
        .as_array()
        .ok_or_else(|| CheckError::Statement("no subjects".into()))?;
    subjects
        .iter()
        .map(|s| {
            let name = s["name"].as_str();
            let sha256 = s["digest"]["sha256"].as_str();
            match (name, sha256) {
                (Some(name), Some(sha256))
                    if sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    Ok(Subject {
                        name: name.to_owned(),
                        sha256: sha256.to_ascii_lowercase(),
                    })
                }
                _ => Err(CheckError::Statement(format!(
                    "a subject without a SHA-256: {s}"
                ))),
            }
        })
        .collect()
}
