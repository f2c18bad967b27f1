//! OpenPGP signing keys (the `pgp` crate): an armored secret key from the environment signs rpm
//! packages (a detached binary signature in the header), APT repositories (`InRelease`
//! clearsigned, `Release.gpg` detached) and YUM repositories (`repomd.xml.asc`). `shipit keygen
//! --pgp` makes a key. Signatures are v4 with SHA-256: what apt's gpgv, rpm 4.x and dnf accept.

use std::io::Read;

use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, KeyType,
    SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{PacketTrait, SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password, SigningKey, Timestamp};

/// Why a key could not be read, made or used. Never holds key material.
#[derive(Debug, thiserror::Error)]
pub enum PgpError {
    /// The text is not an armored OpenPGP secret key.
    #[error("not an armored OpenPGP secret key (\"-----BEGIN PGP PRIVATE KEY BLOCK-----\")")]
    NotAKey(#[source] pgp::errors::Error),
    /// The bytes are not an OpenPGP public key.
    #[error("not an OpenPGP public key")]
    NotAPublicKey(#[source] pgp::errors::Error),
    /// A signature does not verify with the key (or is not a signature).
    #[error("the signature does not verify with the key")]
    BadSignature,
    /// No key in the block can sign with an algorithm package managers accept.
    #[error("the key has no signing key that apt, rpm and dnf accept (RSA, EdDSA or ECDSA)")]
    NoSigningKey,
    /// The key is encrypted and the password is missing or wrong.
    #[error("the key's password is missing or wrong")]
    Password,
    /// Signing failed.
    #[error("cannot sign: {0}")]
    Sign(#[source] pgp::errors::Error),
    /// A key could not be generated or written.
    #[error("cannot make the key: {0}")]
    Generate(String),
}

/// Which part of a transferable key signs: a signing subkey when there is one (how gpg makes
/// keys), else the primary key.
#[derive(Debug, Clone)]
enum Signer {
    Primary(pgp::packet::SecretKey),
    Sub(pgp::packet::SecretSubkey),
}

/// A decrypted-on-use OpenPGP secret key and its password, checked when loaded.
pub struct PgpKey {
    key: SignedSecretKey,
    signer: Signer,
    password: String,
}

impl std::fmt::Debug for PgpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgpKey({})", self.fingerprint())
    }
}

impl Clone for PgpKey {
    fn clone(&self) -> Self {
        PgpKey {
            key: self.key.clone(),
            signer: self.signer.clone(),
            password: self.password.clone(),
        }
    }
}

fn accepted(algorithm: pgp::crypto::public_key::PublicKeyAlgorithm) -> bool {
    use pgp::crypto::public_key::PublicKeyAlgorithm as A;
    matches!(algorithm, A::RSA | A::EdDSALegacy | A::Ed25519 | A::ECDSA)
}

impl PgpKey {
    /// Reads an armored secret key and checks that `password` (empty for none) unlocks it.
    pub fn from_armored(text: &str, password: Option<&str>) -> Result<Self, PgpError> {
        let (key, _) = SignedSecretKey::from_string(text).map_err(PgpError::NotAKey)?;
        let signer = key
            .secret_subkeys
            .iter()
            .find(|sub| {
                sub.signatures.iter().any(|s| s.key_flags().sign()) && accepted(sub.key.algorithm())
            })
            .map(|sub| Signer::Sub(sub.key.clone()))
            .or_else(|| {
                accepted(key.primary_key.algorithm())
                    .then(|| Signer::Primary(key.primary_key.clone()))
            })
            .ok_or(PgpError::NoSigningKey)?;
        let loaded = PgpKey {
            key,
            signer,
            password: password.unwrap_or_default().to_owned(),
        };
        // A wrong password shows now, before any work, not at the first package.
        loaded
            .signature(SignatureType::Binary, 0, &b""[..])
            .map_err(|_| PgpError::Password)?;
        Ok(loaded)
    }

    /// The key's fingerprint, upper-case hex (as gpg prints it).
    pub fn fingerprint(&self) -> String {
        hex::encode_upper(self.key.primary_key.fingerprint().as_bytes())
    }

    /// The 16-hex-digit key id of the key that signs.
    pub fn signing_key_id(&self) -> String {
        hex::encode_upper(self.signing().legacy_key_id().as_ref())
    }

    /// The public key, armored (`KEY.asc`, for rpm and dnf).
    pub fn public_armored(&self) -> Result<String, PgpError> {
        self.public()
            .to_armored_string(ArmorOptions::default())
            .map_err(PgpError::Sign)
    }

    /// The public half, to check what this key signed.
    pub fn verifier(&self) -> Result<PgpPublicKey, PgpError> {
        PgpPublicKey::from_bytes(&self.public_binary()?)
    }

    /// The public key in binary form (`KEY.gpg`, what apt's `signed-by=` reads).
    pub fn public_binary(&self) -> Result<Vec<u8>, PgpError> {
        self.public().to_bytes().map_err(PgpError::Sign)
    }

    fn public(&self) -> SignedPublicKey {
        self.key.to_public_key()
    }

    fn signing(&self) -> &dyn KeyDetails {
        match &self.signer {
            Signer::Primary(k) => k,
            Signer::Sub(k) => k,
        }
    }

    fn signature(
        &self,
        typ: SignatureType,
        time: u32,
        data: impl Read,
    ) -> Result<pgp::packet::Signature, PgpError> {
        let password = Password::from(self.password.as_str());
        match &self.signer {
            Signer::Primary(k) => config(k, typ, time)?.sign(k, &password, data),
            Signer::Sub(k) => config(k, typ, time)?.sign(k, &password, data),
        }
        .map_err(PgpError::Sign)
    }

    /// A detached binary signature packet (with its header) over `data`, made at `time` (Unix
    /// seconds; Ed25519 and RSA signatures are deterministic, so a fixed time makes the same
    /// bytes every run).
    pub fn sign_binary(&self, data: impl Read, time: u64) -> Result<Vec<u8>, PgpError> {
        let signature = self.signature(SignatureType::Binary, clamp(time), data)?;
        let mut out = Vec::new();
        signature
            .to_writer_with_header(&mut out)
            .map_err(PgpError::Sign)?;
        Ok(out)
    }

    /// A detached armored signature over `data` (`Release.gpg`, `repomd.xml.asc`).
    pub fn sign_armored(&self, data: impl Read, time: u64) -> Result<String, PgpError> {
        let signature = self.signature(SignatureType::Binary, clamp(time), data)?;
        DetachedSignature::new(signature)
            .to_armored_string(ArmorOptions::default())
            .map_err(PgpError::Sign)
    }

    /// `text` as a cleartext-signed message (`InRelease`).
    pub fn clearsign(&self, text: &str, time: u64) -> Result<String, PgpError> {
        let password = Password::from(self.password.as_str());
        let message = match &self.signer {
            Signer::Primary(k) => CleartextSignedMessage::new(
                text,
                config(k, SignatureType::Text, clamp(time))?,
                k,
                &password,
            ),
            Signer::Sub(k) => CleartextSignedMessage::new(
                text,
                config(k, SignatureType::Text, clamp(time))?,
                k,
                &password,
            ),
        }
        .map_err(PgpError::Sign)?;
        message
            .to_armored_string(ArmorOptions::default())
            .map_err(PgpError::Sign)
    }
}

/// A public key that checks signatures: its primary key and every subkey are tried.
#[derive(Debug, Clone)]
pub struct PgpPublicKey(SignedPublicKey);

impl PgpPublicKey {
    /// Reads an armored (`KEY.asc`) or binary (`KEY.gpg`) public key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PgpError> {
        let armored = std::str::from_utf8(bytes)
            .ok()
            .filter(|t| t.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
        let key = match armored {
            Some(text) => SignedPublicKey::from_string(text).map(|(k, _)| k),
            None => SignedPublicKey::from_bytes(bytes),
        }
        .map_err(PgpError::NotAPublicKey)?;
        Ok(PgpPublicKey(key))
    }

    /// The key armored, whatever form it was read from (rpm's verifier reads only this one).
    pub fn armored(&self) -> Result<String, PgpError> {
        self.0
            .to_armored_string(ArmorOptions::default())
            .map_err(PgpError::Sign)
    }

    /// The fingerprint, upper-case hex.
    pub fn fingerprint(&self) -> String {
        hex::encode_upper(self.0.primary_key.fingerprint().as_bytes())
    }

    /// Whether `check` holds for the primary key or a subkey.
    fn any_key(
        &self,
        check: impl Fn(&dyn Fn(&pgp::packet::Signature, &[u8]) -> bool) -> bool,
    ) -> bool {
        let primary =
            |s: &pgp::packet::Signature, data: &[u8]| s.verify(&self.0.primary_key, data).is_ok();
        check(&primary)
            || self.0.public_subkeys.iter().any(|sub| {
                let subkey =
                    |s: &pgp::packet::Signature, data: &[u8]| s.verify(&sub.key, data).is_ok();
                check(&subkey)
            })
    }

    /// Checks a detached signature (armored or binary) over `data`.
    pub fn verify_detached(&self, data: &[u8], signature: &[u8]) -> Result<(), PgpError> {
        let armored = std::str::from_utf8(signature)
            .ok()
            .filter(|t| t.contains("-----BEGIN PGP SIGNATURE-----"));
        let signature = match armored {
            Some(text) => DetachedSignature::from_string(text).map(|(s, _)| s),
            None => DetachedSignature::from_bytes(signature),
        }
        .map_err(|_| PgpError::BadSignature)?;
        if self.any_key(|verify| verify(&signature.signature, data)) {
            Ok(())
        } else {
            Err(PgpError::BadSignature)
        }
    }

    /// Checks a cleartext-signed message and returns the text it signs (dash-unescaped):
    /// nothing outside the signature is returned.
    pub fn verify_cleartext(&self, message: &str) -> Result<String, PgpError> {
        let (message, _) =
            CleartextSignedMessage::from_string(message).map_err(|_| PgpError::BadSignature)?;
        let signed = message.signed_text();
        let good = self.any_key(|verify| {
            message
                .signatures()
                .iter()
                .any(|s| verify(s, signed.as_bytes()))
        });
        if !good {
            return Err(PgpError::BadSignature);
        }
        Ok(message
            .text()
            .lines()
            .map(|l| l.strip_prefix("- ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n")
    }
}

fn clamp(time: u64) -> u32 {
    u32::try_from(time).unwrap_or(u32::MAX)
}

/// A v4 signature made with SHA-256 at `time`, naming its issuer both ways (gpg and rpm look
/// for the key id, newer tools for the fingerprint).
fn config(
    key: &impl SigningKey,
    typ: SignatureType,
    time: u32,
) -> Result<SignatureConfig, PgpError> {
    let mut config = SignatureConfig::v4(typ, key.algorithm(), HashAlgorithm::Sha256);
    config.hashed_subpackets = vec![
        Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::from_secs(
            time,
        )))
        .map_err(PgpError::Sign)?,
        Subpacket::regular(SubpacketData::IssuerFingerprint(key.fingerprint()))
            .map_err(PgpError::Sign)?,
    ];
    config.unhashed_subpackets = vec![
        Subpacket::regular(SubpacketData::IssuerKeyId(key.legacy_key_id()))
            .map_err(PgpError::Sign)?,
    ];
    Ok(config)
}

/// A new Ed25519 signing key for `user_id` (`Name <email>`), its secret part armored and
/// encrypted with `password` when one is given, and its public part armored.
pub fn generate(user_id: &str, password: Option<&str>) -> Result<(String, String), PgpError> {
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(user_id.to_owned())
        .passphrase(password.filter(|p| !p.is_empty()).map(str::to_owned));
    let secret = params
        .build()
        .map_err(|e| PgpError::Generate(e.to_string()))?
        .generate(rand::thread_rng())
        .map_err(|e| PgpError::Generate(e.to_string()))?;
    let armored = secret
        .to_armored_string(ArmorOptions::default())
        .map_err(|e| PgpError::Generate(e.to_string()))?;
    let public = secret
        .to_public_key()
        .to_armored_string(ArmorOptions::default())
        .map_err(|e| PgpError::Generate(e.to_string()))?;
    Ok((armored, public))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_signs_and_its_password_is_checked_when_loaded() {
        let (secret, public) = generate("Test <test@example.com>", Some("pw")).unwrap();
        assert!(public.contains("BEGIN PGP PUBLIC KEY BLOCK"));
        assert!(matches!(
            PgpKey::from_armored(&secret, Some("wrong")),
            Err(PgpError::Password)
        ));
        assert!(matches!(
            PgpKey::from_armored(&secret, None),
            Err(PgpError::Password)
        ));
        let key = PgpKey::from_armored(&secret, Some("pw")).unwrap();
        // Same input, same time: the same bytes (reproducible signed packages).
        let a = key.sign_binary(&b"data"[..], 1_700_000_000).unwrap();
        let b = key.sign_binary(&b"data"[..], 1_700_000_000).unwrap();
        assert_eq!(a, b);
        let signature = pgp::composed::DetachedSignature::from_bytes(&a[..]).unwrap();
        let public_key = key.public();
        signature.verify(&public_key, b"data").unwrap();
        assert!(signature.verify(&public_key, b"datA").is_err());
        let clear = key
            .clearsign("Origin: x\nSuite: stable\n", 1_700_000_000)
            .unwrap();
        assert!(clear.starts_with("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n"));
        let (message, _) = CleartextSignedMessage::from_string(&clear).unwrap();
        message.verify(&public_key).unwrap();
        let checker = PgpPublicKey::from_bytes(&key.public_binary().unwrap()).unwrap();
        assert_eq!(checker.fingerprint(), key.fingerprint());
        assert_eq!(
            checker.verify_cleartext(&clear).unwrap(),
            "Origin: x\nSuite: stable\n"
        );
        assert!(
            checker
                .verify_cleartext(&clear.replace("Suite: stable", "Suite: stablE"))
                .is_err()
        );
        let armored = key.sign_armored(&b"data"[..], 1).unwrap();
        checker
            .verify_detached(b"data", armored.as_bytes())
            .unwrap();
        checker.verify_detached(b"data", &a).unwrap();
        assert!(
            checker
                .verify_detached(b"datA", armored.as_bytes())
                .is_err()
        );
    }

    #[test]
    fn text_that_is_not_a_key_is_refused_without_echoing_it() {
        let err = PgpKey::from_armored("secret-looking text", None).unwrap_err();
        assert!(!err.to_string().contains("secret-looking"));
    }
}
