//! DSSE envelopes (github.com/secure-systems-lab/dsse): a payload and its type, signed over
//! the pre-authentication encoding `DSSEv1 <len> <type> <len> <payload>`, with Ed25519 keys.
//! Key ids are securesystemslib's: the SHA-256 of the key's canonical JSON.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, Verifier};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The payload type of an in-toto statement.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

/// An envelope as JSON holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// The payload, base64.
    pub payload: String,
    /// Its type.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The signatures.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// The signing key's id.
    #[serde(default)]
    pub keyid: String,
    /// The signature, base64.
    pub sig: String,
}

/// Why an envelope does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsseError {
    /// Not an envelope.
    #[error("not a DSSE envelope: {0}")]
    Malformed(String),
    /// No signature by this key verifies.
    #[error("no signature by key {0} verifies")]
    Unverified(String),
}

/// The pre-authentication encoding of a payload.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// securesystemslib's id of an Ed25519 public key.
pub fn key_id(key: &ed25519_dalek::VerifyingKey) -> String {
    // Canonical JSON: keys sorted, no spaces.
    let canonical = format!(
        "{{\"keytype\":\"ed25519\",\"keyval\":{{\"public\":\"{}\"}},\"scheme\":\"ed25519\"}}",
        hex::encode(key.as_bytes())
    );
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// `payload` of `payload_type`, signed by `key`.
pub fn sign(payload_type: &str, payload: &[u8], key: &ed25519_dalek::SigningKey) -> Envelope {
    let signature = key.sign(&pae(payload_type, payload));
    Envelope {
        payload: STANDARD.encode(payload),
        payload_type: payload_type.to_owned(),
        signatures: vec![EnvelopeSignature {
            keyid: key_id(&key.verifying_key()),
            sig: STANDARD.encode(signature.to_bytes()),
        }],
    }
}

impl Envelope {
    /// The payload, once a signature by `key` verifies over it.
    pub fn verify(&self, key: &ed25519_dalek::VerifyingKey) -> Result<Vec<u8>, DsseError> {
        let payload = STANDARD
            .decode(&self.payload)
            .map_err(|e| DsseError::Malformed(format!("payload: {e}")))?;
        let message = pae(&self.payload_type, &payload);
        let verified = self.signatures.iter().any(|s| {
            STANDARD
                .decode(&s.sig)
                .ok()
                .and_then(|bytes| ed25519_dalek::Signature::from_slice(&bytes).ok())
                .is_some_and(|sig| key.verify(&message, &sig).is_ok())
        });
        if verified {
            Ok(payload)
        } else {
            Err(DsseError::Unverified(key_id(key)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_the_spec_encoding() {
        // The example of the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn a_signed_envelope_verifies_and_a_changed_payload_does_not() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let envelope = sign(IN_TOTO, b"{\"a\":1}", &key);
        assert_eq!(
            envelope.verify(&key.verifying_key()).unwrap(),
            b"{\"a\":1}".to_vec()
        );
        let mut changed = envelope.clone();
        changed.payload = STANDARD.encode(b"{\"a\":2}");
        assert!(matches!(
            changed.verify(&key.verifying_key()),
            Err(DsseError::Unverified(_))
        ));
        let other = ed25519_dalek::SigningKey::from_bytes(&[8u8; 32]);
        assert!(envelope.verify(&other.verifying_key()).is_err());
        assert_eq!(envelope.signatures[0].keyid, key_id(&key.verifying_key()));
    }
}
