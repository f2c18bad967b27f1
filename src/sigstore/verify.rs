//! Checking a bundle offline, in the order Sigstore's clients do: a verified time from the
//! log's signed promise, the certificate's chain at that time and its CT timestamp, its use
//! and identity against the policy, the log entry's proofs, then the signature over the file
//! and the entry's agreement with it.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use super::bundle::Bundle;
use super::keys::Hash;
use super::rekor;
use super::trust::{TrustedRoot, at};
use super::x509::{self, Cert};

/// Who must have signed.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// The certificate's identity (its email or URI), exactly.
    pub identity: Option<String>,
    /// Or: an identity starting with this (a repository's workflows, for attestations).
    pub identity_prefix: Option<String>,
    /// The OIDC issuer Fulcio recorded, exactly.
    pub issuer: Option<String>,
}

impl Policy {
    /// Whether it names anyone: a bundle checked against no identity proves nothing about who.
    pub fn is_set(&self) -> bool {
        (self.identity.is_some() || self.identity_prefix.is_some()) && self.issuer.is_some()
    }

    fn check(&self, cert: &Cert) -> Result<(String, String), String> {
        let identity = cert.identity().ok_or("the certificate names no identity")?;
        let issuer = cert
            .oidc_issuer()
            .ok_or("the certificate names no OIDC issuer")?;
        if let Some(wanted) = &self.identity
            && &identity != wanted
        {
            return Err(format!("signed by {identity}, not {wanted}"));
        }
        if let Some(prefix) = &self.identity_prefix
            && !identity.starts_with(prefix.as_str())
        {
            return Err(format!(
                "signed by {identity}, not a workflow under {prefix}"
            ));
        }
        if let Some(wanted) = &self.issuer
            && &issuer != wanted
        {
            return Err(format!("its identity was issued by {issuer}, not {wanted}"));
        }
        Ok((identity, issuer))
    }
}

/// What a bundle that holds says.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    /// Who signed.
    pub identity: String,
    /// Who vouched for them.
    pub issuer: String,
    /// The log entry.
    pub log_index: u64,
    /// When the log took it (Unix seconds).
    pub integrated_time: u64,
}

/// Checks `bundle` for the file whose SHA-256 is `sha256`.
pub fn verify(
    bundle: &Bundle,
    sha256: &[u8],
    root: &TrustedRoot,
    policy: &Policy,
) -> Result<Verified, String> {
    let signature = bundle
        .message_signature
        .as_ref()
        .ok_or("an attestation bundle (a signed statement), not a signature of the file")?;
    let (leaf, verified) = common(bundle, root, policy, "hashedrekord")?;
    let entry = &bundle.verification_material.tlog_entries[0];
    if signature.message_digest.algorithm != "SHA2_256"
        || signature.message_digest.digest.0 != sha256
    {
        return Err("the bundle is for another file (its digest differs)".into());
    }
    leaf.public_key()?
        .verify_prehash(sha256, &signature.signature.0)
        .map_err(|e| format!("over this file: {e}"))?;
    agrees(
        &entry.canonicalized_body.0,
        sha256,
        &signature.signature.0,
        &leaf.der,
    )?;
    Ok(verified)
}

/// Checks an attestation bundle (a DSSE envelope holding an in-toto statement, as GitHub's
/// artifact attestations and `sigstore attest` write); returns who signed and the statement.
/// The caller checks the statement names its file.
pub fn verify_attestation(
    bundle: &Bundle,
    root: &TrustedRoot,
    policy: &Policy,
) -> Result<(Verified, serde_json::Value), String> {
    let envelope = bundle
        .dsse_envelope
        .as_ref()
        .ok_or("a signature bundle, not an attestation")?;
    let (leaf, verified) = common(bundle, root, policy, "dsse")?;
    let entry = &bundle.verification_material.tlog_entries[0];
    let [signature] = envelope.signatures.as_slice() else {
        return Err("an envelope with other than one signature".into());
    };
    if envelope.payload_type != crate::provenance::dsse::IN_TOTO {
        return Err(format!(
            "a `{}` payload, not an in-toto statement",
            envelope.payload_type
        ));
    }
    let pae = crate::provenance::dsse::pae(&envelope.payload_type, &envelope.payload.0);
    leaf.public_key()?
        .verify(Hash::Sha256, &pae, &signature.sig.0)
        .map_err(|e| format!("its envelope: {e}"))?;
    rekor::dsse_agrees(
        &entry.canonicalized_body.0,
        &envelope.payload.0,
        &signature.sig.0,
        &leaf.der,
    )?;
    let statement = serde_json::from_slice(&envelope.payload.0)
        .map_err(|e| format!("its statement is not JSON: {e}"))?;
    Ok((verified, statement))
}

/// What both kinds of bundle are checked for, in Sigstore's order: one log entry of `kind`
/// 0.0.1 with a signed time, the certificate's chain at that time, its SCT, its use and its
/// identity, then the entry's proofs. Returns the certificate.
fn common(
    bundle: &Bundle,
    root: &TrustedRoot,
    policy: &Policy,
    kind: &str,
) -> Result<(Cert, Verified), String> {
    let [entry] = bundle.verification_material.tlog_entries.as_slice() else {
        return Err(format!(
            "{} transparency log entries, not one: without its entry nothing says when it was signed",
            bundle.verification_material.tlog_entries.len()
        ));
    };
    if entry.kind_version.kind != kind || entry.kind_version.version != "0.0.1" {
        return Err(format!(
            "a {} {} log entry, not a {kind} 0.0.1",
            entry.kind_version.kind, entry.kind_version.version
        ));
    }
    if entry.inclusion_promise.is_none() {
        return Err("no signed entry timestamp: nothing says when it was signed".into());
    }
    let time: SystemTime = at(entry.integrated_time.0);
    let leaf = Cert::from_der(&bundle.verification_material.certificate.raw_bytes.0)?;
    let (_, chain) = x509::chain(&leaf, root, time)?;
    let issuer_cert = chain.first().ok_or("an empty chain")?;
    x509::sct(&leaf, issuer_cert, root)?;
    leaf.for_code_signing()?;
    let (identity, issuer) = policy.check(&leaf)?;
    rekor::verify_entry(entry, root)?;
    Ok((
        leaf,
        Verified {
            identity,
            issuer,
            log_index: entry.log_index.0,
            integrated_time: entry.integrated_time.0,
        },
    ))
}

/// The log entry records this digest, this signature and this certificate.
fn agrees(body: &[u8], sha256: &[u8], signature: &[u8], cert: &[u8]) -> Result<(), String> {
    let inconsistent = || "its log entry records another signature, file or certificate".to_owned();
    let body: serde_json::Value = serde_json::from_slice(body).map_err(|_| inconsistent())?;
    let spec = &body["spec"];
    let pem = spec["signature"]["publicKey"]["content"]
        .as_str()
        .and_then(|c| STANDARD.decode(c).ok())
        .and_then(|p| String::from_utf8(p).ok())
        .and_then(|p| x509::pem_der(&p));
    let ok = body["kind"] == "hashedrekord"
        && spec["data"]["hash"]["algorithm"] == "sha256"
        && spec["data"]["hash"]["value"].as_str() == Some(hex::encode(sha256).as_str())
        && spec["signature"]["content"]
            .as_str()
            .and_then(|c| STANDARD.decode(c).ok())
            .as_deref()
            == Some(signature)
        && pem.as_deref() == Some(cert);
    ok.then_some(()).ok_or_else(inconsistent)
}
