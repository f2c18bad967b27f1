//! Keys, signatures and verification in minisign's formats, through the `minisign` crate (the
//! format author's own implementation), so `minisign -V` verifies what shipit signs and keys
//! made by `minisign -G` (with or without `-W`) sign with shipit.
//!
//! What this wrapper adds to the crate, and why:
//! - unencrypted keys are read as minisign reads them: minisign writes an all-zero checksum for
//!   `-G -W` keys and never checks it, while the crate insists on a computed one;
//! - scrypt limits from an encrypted key file are bounded before any key derivation, so a crafted
//!   file cannot make shipit allocate or compute without end;
//! - a secret key's `Debug` shows its id only (the crate's prints the key bytes);
//! - errors are typed for the callers that match on them.

use std::io::{Read, Seek};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Length of a secret key file's decoded payload.
const SECRET_KEY_LEN: usize = 2 + 2 + 2 + 32 + 8 + 8 + 8 + 64 + 32;
/// The largest scrypt limits accepted from a key file: libsodium's "sensitive" ones (what
/// `minisign -G` writes). Anything above is refused before a byte is derived.
const MAX_OPSLIMIT: u64 = 33_554_432;
const MAX_MEMLIMIT: u64 = 1_073_741_824;
/// The longest key or signature file accepted (real ones are a few hundred bytes).
const MAX_TEXT_LEN: usize = 64 * 1024;

/// Why a key or signature could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The text is not a minisign key or signature.
    #[error("not a minisign {what}: {why}")]
    Malformed {
        /// Key or signature.
        what: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The key is encrypted and no password was given.
    #[error("the secret key is encrypted and no password was given")]
    PasswordRequired,
    /// Decrypting with the given password did not give a valid key.
    #[error("wrong password for the secret key")]
    WrongPassword,
    /// The signature was made by another key.
    #[error("signed by key {found}, not by key {expected}")]
    OtherKey {
        /// Key id of the signature.
        found: String,
        /// Key id of the public key.
        expected: String,
    },
    /// The signature does not match the data or the trusted comment.
    #[error("{0}")]
    BadSignature(String),
    /// Anything else the crate reports (randomness, I/O).
    #[error("{0}")]
    Other(String),
}

fn malformed(what: &'static str, why: impl std::fmt::Display) -> Error {
    Error::Malformed {
        what,
        why: why.to_string(),
    }
}

fn bounded<'a>(text: &'a str, what: &'static str) -> Result<&'a str, Error> {
    if text.len() > MAX_TEXT_LEN {
        return Err(malformed(what, "longer than any minisign file"));
    }
    Ok(text)
}

/// The base64 line of a key file: the first line that is not a comment.
fn payload_line<'a>(text: &'a str, what: &'static str) -> Result<&'a str, Error> {
    bounded(text, what)?
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
        .ok_or_else(|| malformed(what, "no key line"))
}

fn key_id_hex(id: &[u8]) -> String {
    let mut bytes = [0u8; 8];
    let n = id.len().min(8);
    bytes[..n].copy_from_slice(&id[..n]);
    format!("{:016X}", u64::from_le_bytes(bytes))
}

/// A minisign public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(minisign::PublicKey);

impl PublicKey {
    /// Reads a `.pub` file's text (or just its base64 line).
    pub fn from_text(text: &str) -> Result<PublicKey, Error> {
        let line = payload_line(text, "public key")?;
        minisign::PublicKey::from_base64(line)
            .map(PublicKey)
            .map_err(|e| malformed("public key", e))
    }

    /// The `.pub` file's text.
    pub fn to_text(&self) -> String {
        format!(
            "untrusted comment: minisign public key {}\n{}\n",
            self.key_id(),
            self.0.to_base64()
        )
    }

    /// The key id as minisign prints it.
    pub fn key_id(&self) -> String {
        key_id_hex(self.0.keynum())
    }

    /// The raw Ed25519 public key (what DSSE envelopes are checked with).
    pub fn ed25519(&self) -> Result<ed25519_dalek::VerifyingKey, Error> {
        // `Ed`, the 8-byte key number, then the 32-byte key.
        let bytes = self.0.to_bytes();
        let raw: [u8; 32] = bytes
            .get(10..42)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| malformed("public key", "too short"))?;
        ed25519_dalek::VerifyingKey::from_bytes(&raw).map_err(|e| malformed("public key", e))
    }

    /// Checks `signature` against the data read from `data`. Returns the trusted comment.
    pub fn verify(
        &self,
        data: impl Read + Seek,
        signature: &Signature,
    ) -> Result<String, VerifyError> {
        if signature.0.keynum() != self.0.keynum() {
            return Err(VerifyError::Signature(Error::OtherKey {
                found: key_id_hex(signature.0.keynum()),
                expected: self.key_id(),
            }));
        }
        minisign::verify(&self.0, &signature.0, data, true, false, false).map_err(|e| {
            match e.kind() {
                minisign::ErrorKind::Io => VerifyError::Io(std::io::Error::other(e.to_string())),
                _ => VerifyError::Signature(Error::BadSignature(format!(
                    "{e} (the file or its trusted comment was altered, or another key signed it)"
                ))),
            }
        })?;
        signature.trusted_comment()
    }
}

/// Why verification failed: unreadable data, or a signature that does not hold.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Reading the data failed.
    #[error("{0}")]
    Io(std::io::Error),
    /// The signature does not hold.
    #[error("{0}")]
    Signature(Error),
}

/// A minisign secret key, decrypted, with its public half.
#[derive(Clone)]
pub struct SecretKey {
    secret: minisign::SecretKey,
    public: minisign::PublicKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", key_id_hex(self.secret.keynum()))
    }
}

impl SecretKey {
    /// A new random key pair, with the secret key file's text: encrypted with `password`
    /// (scrypt) or not.
    pub fn generate(password: Option<&str>) -> Result<(SecretKey, String), Error> {
        let other = |e: minisign::PError| Error::Other(e.to_string());
        let (pair, comment) = match password {
            Some(password) => (
                minisign::KeyPair::generate_encrypted_keypair(Some(password.to_string())),
                "minisign encrypted secret key",
            ),
            None => (
                minisign::KeyPair::generate_unencrypted_keypair(),
                "minisign secret key (unencrypted)",
            ),
        };
        let pair = pair.map_err(other)?;
        let text = pair.sk.to_box(Some(comment)).map_err(other)?.into_string();
        // Read back what was written: the key in memory is the decrypted one.
        let key = SecretKey::from_text(&text, password)?;
        Ok((key, text))
    }

    /// Reads a secret key file's text; `password` decrypts an encrypted one.
    pub fn from_text(text: &str, password: Option<&str>) -> Result<SecretKey, Error> {
        const WHAT: &str = "secret key";
        let line = payload_line(text, WHAT)?;
        let bytes = BASE64.decode(line).map_err(|e| malformed(WHAT, e))?;
        if bytes.len() != SECRET_KEY_LEN || &bytes[..2] != b"Ed" || &bytes[4..6] != b"B2" {
            return Err(malformed(
                WHAT,
                "expected an Ed25519 key with a BLAKE2b checksum",
            ));
        }
        let limit = |at: usize| {
            let mut le = [0u8; 8];
            le.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(le)
        };
        let secret = match &bytes[2..4] {
            // minisign itself neither writes nor checks the checksum of an unencrypted key.
            [0, 0] => minisign::SecretKey::from_bytes(&bytes).map_err(|e| malformed(WHAT, e))?,
            b"Sc" => {
                let password = password.ok_or(Error::PasswordRequired)?;
                let (ops, mem) = (limit(38), limit(46));
                if ops > MAX_OPSLIMIT || mem > MAX_MEMLIMIT {
                    return Err(malformed(
                        WHAT,
                        format!(
                            "its scrypt limits (opslimit {ops}, memlimit {mem}) exceed minisign's \
                             (at most {MAX_OPSLIMIT} and {MAX_MEMLIMIT})"
                        ),
                    ));
                }
                let boxed = format!("untrusted comment: key\n{line}\n");
                minisign::SecretKeyBox::from_string(&boxed)
                    .and_then(|b| b.into_secret_key(Some(password.to_string())))
                    .map_err(|e| match e.kind() {
                        minisign::ErrorKind::Verify => Error::WrongPassword,
                        _ => malformed(WHAT, e),
                    })?
            }
            _ => return Err(malformed(WHAT, "unknown key derivation")),
        };
        let public =
            minisign::PublicKey::from_secret_key(&secret).map_err(|e| malformed(WHAT, e))?;
        Ok(SecretKey { secret, public })
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.public.clone())
    }

    /// The raw Ed25519 signing key (for DSSE envelopes, which sign with the same key pair).
    pub fn ed25519(&self) -> Result<ed25519_dalek::SigningKey, Error> {
        // The decrypted key, serialised: algorithm ids and scrypt parameters (54 bytes), the
        // 8-byte key number, then libsodium's 64-byte secret key, whose first half is the seed.
        let bytes = zeroize::Zeroizing::new(self.secret.to_bytes());
        let seed: [u8; 32] = bytes
            .get(62..94)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| malformed("secret key", "too short"))?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        if bytes.get(94..126) != Some(key.verifying_key().as_bytes().as_slice()) {
            return Err(malformed("secret key", "its two halves do not match"));
        }
        Ok(key)
    }

    /// Signs the data read from `data` (prehashed with BLAKE2b-512), with a trusted comment
    /// holding `timestamp` and `file_name`. Deterministic, as plain Ed25519 and the minisign
    /// CLI are: the same key, data and comment give the same `.minisig`, byte for byte (the
    /// `minisign` crate mixes random bytes into each signature, so signing is done here).
    pub fn sign(
        &self,
        mut data: impl Read,
        file_name: &str,
        timestamp: u64,
    ) -> Result<Signature, Error> {
        use base64::Engine;
        use blake2::Digest;
        use ed25519_dalek::Signer;
        // Tabs and newlines in a name would break the trusted comment's fields.
        let name: String = file_name
            .chars()
            .map(|c| if c.is_control() { '_' } else { c })
            .collect();
        let trusted = format!("timestamp:{timestamp}\tfile:{name}\thashed");
        let untrusted = format!(
            "signature from shipit secret key {}",
            key_id_hex(self.secret.keynum())
        );
        let key = self.ed25519()?;
        let mut hasher = blake2::Blake2b512::new();
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let n = data
                .read(&mut buffer)
                .map_err(|e| Error::Other(format!("cannot read what is signed: {e}")))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        // minisign's format: `ED` (prehashed Ed25519), the key number, the signature of the
        // hash; then a global signature over that signature and the trusted comment.
        let signature = key.sign(&hasher.finalize()).to_bytes();
        let mut signed_comment = signature.to_vec();
        signed_comment.extend_from_slice(trusted.as_bytes());
        let global = key.sign(&signed_comment).to_bytes();
        let mut line = b"ED".to_vec();
        line.extend_from_slice(self.secret.keynum());
        line.extend_from_slice(&signature);
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        Signature::from_text(&format!(
            "untrusted comment: {untrusted}\n{}\ntrusted comment: {trusted}\n{}\n",
            b64(&line),
            b64(&global)
        ))
    }
}

/// A `.minisig` signature.
pub struct Signature(minisign::SignatureBox);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({})", key_id_hex(self.0.keynum()))
    }
}

impl Signature {
    /// The `.minisig` file's text.
    pub fn to_text(&self) -> String {
        self.0.to_string()
    }

    /// Reads a `.minisig` file's text.
    pub fn from_text(text: &str) -> Result<Signature, Error> {
        minisign::SignatureBox::from_string(bounded(text, "signature")?)
            .map(Signature)
            .map_err(|e| malformed("signature", e))
    }

    /// The trusted comment.
    pub fn trusted_comment(&self) -> Result<String, VerifyError> {
        self.0
            .trusted_comment()
            .map_err(|e| VerifyError::Signature(malformed("signature", e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// The key file's payload, edited by `edit`, back as key file text.
    fn edited(text: &str, edit: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut bytes = BASE64.decode(payload_line(text, "k").unwrap()).unwrap();
        edit(&mut bytes);
        format!("untrusted comment: edited\n{}\n", BASE64.encode(bytes))
    }

    #[test]
    fn sign_and_verify_round_trip_and_detect_tampering() {
        let (key, _) = SecretKey::generate(None).unwrap();
        let public = PublicKey::from_text(&key.public().to_text()).unwrap();
        let sig = key.sign(&b"hello"[..], "hello.txt", 1_700_000_000).unwrap();
        let sig = Signature::from_text(&sig.to_text()).unwrap();
        assert_eq!(
            public.verify(Cursor::new(b"hello"), &sig).unwrap(),
            "timestamp:1700000000\tfile:hello.txt\thashed"
        );
        assert!(matches!(
            public.verify(Cursor::new(b"hellO"), &sig),
            Err(VerifyError::Signature(Error::BadSignature(_)))
        ));
        let altered = sig.to_text().replace("file:hello.txt", "file:evil.txt");
        let altered = Signature::from_text(&altered).unwrap();
        assert!(public.verify(Cursor::new(b"hello"), &altered).is_err());
        let (other, _) = SecretKey::generate(None).unwrap();
        assert!(matches!(
            other.public().verify(Cursor::new(b"hello"), &sig),
            Err(VerifyError::Signature(Error::OtherKey { .. }))
        ));
    }

    #[test]
    fn signing_is_deterministic_and_the_crate_verifies_it() {
        let (key, _) = SecretKey::generate(None).unwrap();
        let one = key
            .sign(&b"release"[..], "SHA256SUMS", 1_700_000_000)
            .unwrap();
        let two = key
            .sign(&b"release"[..], "SHA256SUMS", 1_700_000_000)
            .unwrap();
        assert_eq!(one.to_text(), two.to_text());
        key.public()
            .verify(
                Cursor::new(b"release"),
                &Signature::from_text(&one.to_text()).unwrap(),
            )
            .unwrap();
        assert!(key.public().verify(Cursor::new(b"releasE"), &one).is_err());
    }

    #[test]
    fn encrypted_keys_need_their_password() {
        let (key, text) = SecretKey::generate(Some("pw")).unwrap();
        assert_eq!(
            SecretKey::from_text(&text, Some("pw")).unwrap().public(),
            key.public()
        );
        assert_eq!(
            SecretKey::from_text(&text, None).unwrap_err(),
            Error::PasswordRequired
        );
        assert_eq!(
            SecretKey::from_text(&text, Some("no")).unwrap_err(),
            Error::WrongPassword
        );
    }

    #[test]
    fn unencrypted_key_with_minisign_zero_checksum_is_accepted() {
        // `minisign -G -W` leaves the checksum field zero; minisign signs with such keys.
        let (key, text) = SecretKey::generate(None).unwrap();
        let zeroed = edited(&text, |b| {
            let n = b.len();
            b[n - 32..].fill(0)
        });
        let back = SecretKey::from_text(&zeroed, None).unwrap();
        assert_eq!(back.public(), key.public());
        let sig = back.sign(&b"x"[..], "x", 1).unwrap();
        key.public().verify(Cursor::new(b"x"), &sig).unwrap();
    }

    #[test]
    fn crafted_scrypt_limits_are_refused_before_deriving() {
        let (_, text) = SecretKey::generate(Some("pw")).unwrap();
        for (at, value) in [(38, u64::MAX), (46, u64::MAX), (46, 1 << 40)] {
            let crafted = edited(&text, |b| {
                b[at..at + 8].copy_from_slice(&value.to_le_bytes())
            });
            let err = SecretKey::from_text(&crafted, Some("pw")).unwrap_err();
            assert!(err.to_string().contains("scrypt limits"), "{err}");
        }
    }

    #[test]
    fn debug_never_shows_key_material() {
        let (key, _) = SecretKey::generate(None).unwrap();
        assert_eq!(
            format!("{key:?}"),
            format!("SecretKey({})", key.public().key_id())
        );
    }
}
