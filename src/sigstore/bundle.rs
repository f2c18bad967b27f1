//! The Sigstore bundle, v0.3 (`application/vnd.dev.sigstore.bundle.v0.3+json`), in the JSON
//! form of its protobuf definition (bytes as base64, 64-bit numbers as strings): the signing
//! certificate, one transparency log entry with its inclusion proof and promise, and the
//! signature over a file's SHA-256.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The media type shipit writes.
pub const MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Media types shipit reads (v0.2 has the same shape for what shipit checks).
pub const MEDIA_TYPES: [&str; 3] = [
    MEDIA_TYPE,
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
];
/// The file a bundle of `name` is written to, beside it.
pub fn file_name(name: &str) -> String {
    format!("{name}.sigstore.json")
}

/// Bytes as base64 in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct B64(pub Vec<u8>);

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.trim())
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text.trim()))
            .map(B64)
            .map_err(serde::de::Error::custom)
    }
}

/// A 64-bit number, written as protobuf's JSON writes it (a string), read either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Int(pub u64);

impl Serialize for Int {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(u64),
            Text(String),
        }
        match Either::deserialize(d)? {
            Either::Number(n) => Ok(Int(n)),
            Either::Text(t) => t.parse().map(Int).map_err(serde::de::Error::custom),
        }
    }
}

/// A bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// Its version.
    pub media_type: String,
    /// What it is checked with.
    pub verification_material: VerificationMaterial,
    /// The signature over a file's digest (a signature bundle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_signature: Option<MessageSignature>,
    /// A signed in-toto statement (an attestation bundle, as GitHub's attestations are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsse_envelope: Option<DsseEnvelope>,
}

/// A DSSE envelope as a bundle holds it (bytes as base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DsseEnvelope {
    /// The statement.
    pub payload: B64,
    /// `application/vnd.in-toto+json`.
    pub payload_type: String,
    /// Its signatures (exactly one, by the certificate's key).
    pub signatures: Vec<DsseSignature>,
}

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsseSignature {
    /// ECDSA (DER) over the envelope's pre-authentication encoding.
    pub sig: B64,
    /// Unused by Sigstore.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keyid: String,
}

/// The certificate and the log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMaterial {
    /// The signing certificate (v0.3: the leaf alone).
    pub certificate: RawBytes,
    /// The log entries (exactly one).
    #[serde(default)]
    pub tlog_entries: Vec<TlogEntry>,
}

/// DER bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawBytes {
    /// The bytes.
    pub raw_bytes: B64,
}

/// A Rekor entry as the bundle holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlogEntry {
    /// Its index in the log.
    pub log_index: Int,
    /// The log's id: the SHA-256 of its public key.
    pub log_id: LogId,
    /// `hashedrekord` `0.0.1`.
    pub kind_version: KindVersion,
    /// When the log took it (Unix seconds).
    pub integrated_time: Int,
    /// The log's signed promise to include it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_promise: Option<InclusionPromise>,
    /// The proof it is included, and the signed checkpoint.
    pub inclusion_proof: InclusionProof,
    /// The entry's body as the log canonicalized it.
    pub canonicalized_body: B64,
}

/// A log's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogId {
    /// SHA-256 of the log's public key (DER).
    pub key_id: B64,
}

/// An entry's kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindVersion {
    /// `hashedrekord`.
    pub kind: String,
    /// `0.0.1`.
    pub version: String,
}

/// A signed entry timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionPromise {
    /// ECDSA over the entry's canonical JSON.
    pub signed_entry_timestamp: B64,
}

/// An RFC 6962 inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    /// The entry's index in the tree the proof is for.
    pub log_index: Int,
    /// The tree's root.
    pub root_hash: B64,
    /// The tree's size.
    pub tree_size: Int,
    /// The audit path, leaf to root.
    #[serde(default)]
    pub hashes: Vec<B64>,
    /// The log's signed note for that tree.
    pub checkpoint: Checkpoint,
}

/// A signed note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Its text.
    pub envelope: String,
}

/// The signature over a file's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageSignature {
    /// The file's digest.
    pub message_digest: MessageDigest,
    /// ECDSA (DER) over that digest.
    pub signature: B64,
}

/// A digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDigest {
    /// `SHA2_256`.
    pub algorithm: String,
    /// The digest.
    pub digest: B64,
}

impl Bundle {
    /// Reads a bundle's JSON, refusing other media types.
    pub fn from_json(text: &str) -> Result<Bundle, String> {
        let bundle: Bundle = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if !MEDIA_TYPES.contains(&bundle.media_type.as_str()) {
            return Err(format!(
                "media type `{}` is not a bundle shipit reads",
                bundle.media_type
            ));
        }
        if bundle.message_signature.is_some() == bundle.dsse_envelope.is_some() {
            return Err("a bundle holds either a message signature or a DSSE envelope".into());
        }
        Ok(bundle)
    }

    /// The bundle's JSON, as written beside the file.
    pub fn to_json(&self) -> String {
        // Plain data: serializing cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_as_strings_or_numbers_and_written_as_strings() {
        let int: Int = serde_json::from_str("\"42\"").unwrap();
        assert_eq!(int, Int(42));
        let int: Int = serde_json::from_str("42").unwrap();
        assert_eq!(serde_json::to_string(&int).unwrap(), "\"42\"");
    }
}
