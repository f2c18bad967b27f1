//! cosign's keyed signing, offline and without cosign: ECDSA P-256 keys in cosign's encrypted
//! key file (PEM `ENCRYPTED SIGSTORE PRIVATE KEY`: JSON naming scrypt with N=32768, r=8, p=1
//! and a 32-byte salt, and NaCl secretbox with a 24-byte nonce, sealing the PKCS#8 DER key),
//! public keys as PKIX PEM, and signatures (ASN.1 DER, base64) over the "simple signing"
//! payload that names an image by repository and manifest digest.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::aead::{Aead, KeyInit};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The PEM label cosign writes (it also reads the older `ENCRYPTED COSIGN PRIVATE KEY`).
pub const PRIVATE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
const OLD_PRIVATE_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// The scrypt parameters cosign uses; a file asking for others is refused (a file could ask
/// for gigabytes of memory).
const SCRYPT_N: u32 = 32768;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
/// The annotation holding a signature on its layer.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The media type of a simple signing payload layer.
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// Why a key or signature is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignError {
    /// The file is not a key of the expected kind.
    #[error("not a cosign {what}: {why}")]
    Malformed {
        /// Private key, public key or signature.
        what: &'static str,
        /// Why.
        why: String,
    },
    /// The password does not open the key.
    #[error("wrong password for the cosign key")]
    WrongPassword,
    /// The signature does not verify.
    #[error("the signature does not verify with this key")]
    Unverified,
}

fn malformed(what: &'static str, why: impl std::fmt::Display) -> CosignError {
    CosignError::Malformed {
        what,
        why: why.to_string(),
    }
}

mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// The encrypted key file's JSON.
#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u32,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

/// The secretbox key scrypt derives from `password` and `salt`.
fn derive(password: &str, salt: &[u8]) -> Result<zeroize::Zeroizing<[u8; 32]>, CosignError> {
    let params = scrypt::Params::new(SCRYPT_N.ilog2() as u8, SCRYPT_R, SCRYPT_P, 32)
        .map_err(|e| malformed("private key", e))?;
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password.as_bytes(), salt, &params, key.as_mut())
        .map_err(|e| malformed("private key", e))?;
    Ok(key)
}

/// A cosign signing key.
pub struct CosignKey(p256::ecdsa::SigningKey);

impl std::fmt::Debug for CosignKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CosignKey(***)")
    }
}

impl CosignKey {
    /// A new random key.
    pub fn generate() -> CosignKey {
        CosignKey(p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng))
    }

    /// The key file's text, sealed with `password`.
    pub fn to_encrypted_pem(&self, password: &str) -> Result<String, CosignError> {
        let der = self
            .0
            .to_pkcs8_der()
            .map_err(|e| malformed("private key", e))?;
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let key = derive(password, &salt)?;
        let ciphertext =
            crypto_secretbox::XSalsa20Poly1305::new(&crypto_secretbox::Key::from(*key))
                .encrypt(&nonce.into(), der.as_bytes())
                .map_err(|e| malformed("private key", e))?;
        let sealed = Sealed {
            kdf: Kdf {
                name: "scrypt".into(),
                params: ScryptParams {
                    n: SCRYPT_N,
                    r: SCRYPT_R,
                    p: SCRYPT_P,
                },
                salt: salt.to_vec(),
            },
            cipher: Cipher {
                name: "nacl/secretbox".into(),
                nonce: nonce.to_vec(),
            },
            ciphertext,
        };
        let json = serde_json::to_vec(&sealed).map_err(|e| malformed("private key", e))?;
        Ok(pem_encode(PRIVATE_LABEL, &json))
    }

    /// Opens a key file's text with `password`.
    pub fn from_encrypted_pem(text: &str, password: &str) -> Result<CosignKey, CosignError> {
        const WHAT: &str = "private key";
        let (label, json) = pem_decode(text).ok_or_else(|| malformed(WHAT, "no PEM block"))?;
        if label != PRIVATE_LABEL && label != OLD_PRIVATE_LABEL {
            return Err(malformed(WHAT, format!("a PEM block labelled `{label}`")));
        }
        let sealed: Sealed = serde_json::from_slice(&json).map_err(|e| malformed(WHAT, e))?;
        if sealed.kdf.name != "scrypt" || sealed.cipher.name != "nacl/secretbox" {
            return Err(malformed(
                WHAT,
                format!("sealed with {} and {}", sealed.kdf.name, sealed.cipher.name),
            ));
        }
        let ScryptParams { n, r, p } = sealed.kdf.params;
        if (n, r, p) != (SCRYPT_N, SCRYPT_R, SCRYPT_P) {
            return Err(malformed(
                WHAT,
                format!("scrypt parameters N={n} r={r} p={p}, not cosign's"),
            ));
        }
        let nonce: [u8; 24] = sealed
            .cipher
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| malformed(WHAT, "a nonce that is not 24 bytes"))?;
        let key = derive(password, &sealed.kdf.salt)?;
        let der = zeroize::Zeroizing::new(
            crypto_secretbox::XSalsa20Poly1305::new(&crypto_secretbox::Key::from(*key))
                .decrypt(&nonce.into(), sealed.ciphertext.as_slice())
                .map_err(|_| CosignError::WrongPassword)?,
        );
        p256::ecdsa::SigningKey::from_pkcs8_der(&der)
            .map(CosignKey)
            .map_err(|e| malformed(WHAT, format!("not an ECDSA P-256 key: {e}")))
    }

    /// The public key.
    pub fn public(&self) -> CosignPublicKey {
        CosignPublicKey(*self.0.verifying_key())
    }

    /// A signature of `payload`: ECDSA P-256 over its SHA-256, ASN.1 DER, base64 (RFC 6979
    /// nonces, so the same payload gets the same signature).
    pub fn sign(&self, payload: &[u8]) -> String {
        let signature: p256::ecdsa::Signature = self.0.sign(payload);
        STANDARD.encode(signature.to_der().as_bytes())
    }
}

/// A cosign public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignPublicKey(p256::ecdsa::VerifyingKey);

impl CosignPublicKey {
    /// Reads a `PUBLIC KEY` PEM.
    pub fn from_pem(text: &str) -> Result<CosignPublicKey, CosignError> {
        p256::ecdsa::VerifyingKey::from_public_key_pem(text.trim())
            .map(CosignPublicKey)
            .map_err(|e| malformed("public key", format!("not an ECDSA P-256 PEM key: {e}")))
    }

    /// The `PUBLIC KEY` PEM text.
    pub fn to_pem(&self) -> Result<String, CosignError> {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| malformed("public key", e))
    }

    /// Checks a base64 DER signature of `payload`.
    pub fn verify(&self, payload: &[u8], signature: &str) -> Result<(), CosignError> {
        let der = STANDARD
            .decode(signature.trim())
            .map_err(|e| malformed("signature", e))?;
        let signature =
            p256::ecdsa::Signature::from_der(&der).map_err(|e| malformed("signature", e))?;
        self.0
            .verify(payload, &signature)
            .map_err(|_| CosignError::Unverified)
    }
}

/// The simple signing payload naming `digest` in `repository` (`registry/owner/name`), keys in
/// cosign's order.
pub fn payload(repository: &str, digest: &str) -> Vec<u8> {
    serde_json::json!({
        "critical": {
            "identity": { "docker-reference": repository },
            "image": { "docker-manifest-digest": digest },
            "type": "cosign container image signature",
        },
        "optional": null,
    })
    .to_string()
    .into_bytes()
}

/// The tag cosign stores the signatures of `digest` under: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

fn pem_encode(label: &str, bytes: &[u8]) -> String {
    let body = STANDARD.encode(bytes);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_decode(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let (label, rest) = rest.split_once("-----")?;
    let end = rest.find(&format!("-----END {label}-----"))?;
    let body: String = rest[..end].split_whitespace().collect();
    Some((label.to_owned(), STANDARD.decode(body).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_with_its_password_only_and_signs_verifiably() {
        let key = CosignKey::generate();
        let pem = key.to_encrypted_pem("correct horse").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        let opened = CosignKey::from_encrypted_pem(&pem, "correct horse").unwrap();
        assert_eq!(opened.public(), key.public());
        assert_eq!(
            CosignKey::from_encrypted_pem(&pem, "wrong").unwrap_err(),
            CosignError::WrongPassword
        );
        let payload = payload("127.0.0.1:5000/acme/demo", "sha256:abc");
        let signature = opened.sign(&payload);
        assert_eq!(signature, key.sign(&payload), "RFC 6979: deterministic");
        let public = CosignPublicKey::from_pem(&key.public().to_pem().unwrap()).unwrap();
        public.verify(&payload, &signature).unwrap();
        assert_eq!(
            public.verify(b"other", &signature),
            Err(CosignError::Unverified)
        );
    }

    #[test]
    fn a_key_file_asking_for_other_scrypt_parameters_is_refused_before_scrypt_runs() {
        let key = CosignKey::generate();
        let pem = key.to_encrypted_pem("pw").unwrap();
        let (_, json) = pem_decode(&pem).unwrap();
        let text = String::from_utf8(json)
            .unwrap()
            .replace("\"N\":32768", "\"N\":1073741824");
        let hostile = pem_encode(PRIVATE_LABEL, text.as_bytes());
        assert!(matches!(
            CosignKey::from_encrypted_pem(&hostile, "pw"),
            Err(CosignError::Malformed { .. })
        ));
    }

    #[test]
    fn the_payload_and_tag_are_cosigns() {
        assert_eq!(
            String::from_utf8(payload("r.example/a/b", "sha256:00")).unwrap(),
            r#"{"critical":{"identity":{"docker-reference":"r.example/a/b"},"image":{"docker-manifest-digest":"sha256:00"},"type":"cosign container image signature"},"optional":null}"#
        );
        assert_eq!(signature_tag("sha256:abcd"), "sha256-abcd.sig");
    }
}
