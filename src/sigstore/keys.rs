//! The public keys Sigstore signs with (ECDSA P-256 and P-384, from SubjectPublicKeyInfo DER)
//! and checking a DER signature over a message or its digest.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256, Sha384};

/// The digest a signature is made over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
}

impl Hash {
    /// `message` hashed.
    pub fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(message).to_vec(),
            Hash::Sha384 => Sha384::digest(message).to_vec(),
        }
    }
}

/// An ECDSA public key.
#[derive(Debug, Clone)]
pub enum PublicKey {
    /// P-256.
    P256(p256::ecdsa::VerifyingKey),
    /// P-384.
    P384(p384::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// From SubjectPublicKeyInfo DER; other algorithms are refused.
    pub fn from_spki(der: &[u8]) -> Result<PublicKey, String> {
        use p256::pkcs8::DecodePublicKey;
        if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
            return Ok(PublicKey::P256(key));
        }
        p384::ecdsa::VerifyingKey::from_public_key_der(der)
            .map(PublicKey::P384)
            .map_err(|_| "not an ECDSA P-256 or P-384 public key".to_owned())
    }

    /// Checks a DER signature over a digest already made.
    pub fn verify_prehash(&self, digest: &[u8], signature: &[u8]) -> Result<(), String> {
        let bad = |e: p256::ecdsa::Error| format!("the signature does not hold: {e}");
        match self {
            PublicKey::P256(key) => {
                let sig = p256::ecdsa::Signature::from_der(signature).map_err(bad)?;
                key.verify_prehash(digest, &sig).map_err(bad)
            }
            PublicKey::P384(key) => {
                let sig = p384::ecdsa::Signature::from_der(signature).map_err(bad)?;
                key.verify_prehash(digest, &sig).map_err(bad)
            }
        }
    }

    /// Checks a DER signature over `message` hashed with `hash`.
    pub fn verify(&self, hash: Hash, message: &[u8], signature: &[u8]) -> Result<(), String> {
        self.verify_prehash(&hash.digest(message), signature)
    }
}

/// The id Sigstore gives a key: the SHA-256 of its SubjectPublicKeyInfo DER.
pub fn key_id(spki: &[u8]) -> [u8; 32] {
    Sha256::digest(spki).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::EncodePublicKey;

    #[test]
    fn a_p256_signature_holds_only_over_its_message() {
        let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let signature: p256::ecdsa::Signature = key.sign(b"message");
        let spki = key.verifying_key().to_public_key_der().unwrap();
        let public = PublicKey::from_spki(spki.as_bytes()).unwrap();
        let der = signature.to_der();
        assert!(
            public
                .verify(Hash::Sha256, b"message", der.as_bytes())
                .is_ok()
        );
        assert!(
            public
                .verify(Hash::Sha256, b"massage", der.as_bytes())
                .is_err()
        );
    }
}
