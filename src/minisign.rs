//! Ed25519 signatures in minisign's formats, so `minisign -V` verifies what shipit signs and
//! keys made by `minisign -G` sign with shipit.
//!
//! Files, all base64 lines under a comment line:
//! - public key: `"Ed" | key id (8) | public key (32)`;
//! - secret key: `"Ed" | kdf "Sc" (or 0 0 when unencrypted) | "B2" | salt (32) | opslimit (8 LE)
//!   | memlimit (8 LE) | key id (8) | secret key (64) | checksum (32)`, the last 104 bytes XORed
//!   with scrypt(password) when encrypted; the checksum is BLAKE2b-256 of alg, key id and key;
//! - signature: `"ED" | key id | Ed25519(BLAKE2b-512(file))`, a trusted comment, and a global
//!   signature over the signature and the trusted comment.

use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use blake2::digest::consts::U32;
use blake2::{Blake2b, Blake2b512, Digest};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use zeroize::Zeroize;

const ALG: &[u8; 2] = b"Ed";
const ALG_PREHASHED: &[u8; 2] = b"ED";
const KDF_SCRYPT: &[u8; 2] = b"Sc";
const KDF_NONE: &[u8; 2] = &[0, 0];
const CHK_BLAKE2B: &[u8; 2] = b"B2";
/// minisign's (libsodium's "sensitive") scrypt limits, so its tools accept shipit's keys.
const OPSLIMIT: u64 = 33_554_432;
const MEMLIMIT: u64 = 1_073_741_824;
const KEYNUM_SK_LEN: usize = 8 + 64 + 32;
const SECRET_KEY_LEN: usize = 2 + 2 + 2 + 32 + 8 + 8 + KEYNUM_SK_LEN;

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
    BadSignature(&'static str),
    /// The operating system gave no random bytes.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| Error::Random(e.to_string()))?;
    Ok(bytes)
}

fn malformed(what: &'static str, why: impl Into<String>) -> Error {
    Error::Malformed {
        what,
        why: why.into(),
    }
}

/// The base64 payload of a minisign file: the first line that is not a comment.
fn payload(text: &str, what: &'static str) -> Result<Vec<u8>, Error> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
        .ok_or_else(|| malformed(what, "no key line"))?;
    BASE64
        .decode(line)
        .map_err(|e| malformed(what, format!("bad base64: {e}")))
}

/// `N` bytes of `bytes` from `at`; callers check the length first.
fn take<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

fn key_id_hex(id: &[u8; 8]) -> String {
    format!("{:016X}", u64::from_le_bytes(*id))
}

/// A minisign public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    id: [u8; 8],
    key: VerifyingKey,
}

impl PublicKey {
    /// Reads a `.pub` file's text (or just its base64 line).
    pub fn from_text(text: &str) -> Result<PublicKey, Error> {
        let bytes = payload(text, "public key")?;
        if bytes.len() != 42 || &bytes[..2] != ALG {
            return Err(malformed(
                "public key",
                "expected 42 bytes starting with `Ed`",
            ));
        }
        let id: [u8; 8] = take::<8>(&bytes, 2);
        let key: [u8; 32] = take::<32>(&bytes, 10);
        let key =
            VerifyingKey::from_bytes(&key).map_err(|e| malformed("public key", e.to_string()))?;
        Ok(PublicKey { id, key })
    }

    /// The `.pub` file's text.
    pub fn to_text(&self) -> String {
        let mut bytes = Vec::with_capacity(42);
        bytes.extend_from_slice(ALG);
        bytes.extend_from_slice(&self.id);
        bytes.extend_from_slice(self.key.as_bytes());
        format!(
            "untrusted comment: minisign public key {}\n{}\n",
            self.key_id(),
            BASE64.encode(bytes)
        )
    }

    /// The key id as minisign prints it.
    pub fn key_id(&self) -> String {
        key_id_hex(&self.id)
    }

    /// Checks `signature` against the data read from `data`. Returns the trusted comment.
    pub fn verify(&self, data: impl Read, signature: &Signature) -> Result<String, VerifyError> {
        if signature.key_id != self.id {
            return Err(VerifyError::Signature(Error::OtherKey {
                found: key_id_hex(&signature.key_id),
                expected: self.key_id(),
            }));
        }
        let message = if signature.prehashed {
            blake2b512(data).map_err(VerifyError::Io)?.to_vec()
        } else {
            let mut all = Vec::new();
            let mut data = data;
            data.read_to_end(&mut all).map_err(VerifyError::Io)?;
            all
        };
        let sig = ed25519_dalek::Signature::from_bytes(&signature.signature);
        self.key.verify(&message, &sig).map_err(|_| {
            VerifyError::Signature(Error::BadSignature("the signature does not match the file"))
        })?;
        let global = ed25519_dalek::Signature::from_bytes(&signature.global_signature);
        let mut signed = signature.signature.to_vec();
        signed.extend_from_slice(signature.trusted_comment.as_bytes());
        self.key.verify(&signed, &global).map_err(|_| {
            VerifyError::Signature(Error::BadSignature("the trusted comment was altered"))
        })?;
        Ok(signature.trusted_comment.clone())
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

/// A minisign secret key, decrypted.
pub struct SecretKey {
    id: [u8; 8],
    key: SigningKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", key_id_hex(&self.id))
    }
}

impl Clone for SecretKey {
    fn clone(&self) -> Self {
        SecretKey {
            id: self.id,
            key: SigningKey::from_bytes(&self.key.to_bytes()),
        }
    }
}

impl SecretKey {
    /// A new random key pair.
    pub fn generate() -> Result<SecretKey, Error> {
        let id = random::<8>()?;
        let mut seed = random::<32>()?;
        let key = SigningKey::from_bytes(&seed);
        seed.zeroize();
        Ok(SecretKey { id, key })
    }

    /// Reads a secret key file's text; `password` decrypts an encrypted one.
    pub fn from_text(text: &str, password: Option<&str>) -> Result<SecretKey, Error> {
        let mut bytes = payload(text, "secret key")?;
        if bytes.len() != SECRET_KEY_LEN || &bytes[..2] != ALG || &bytes[4..6] != CHK_BLAKE2B {
            return Err(malformed(
                "secret key",
                "expected an Ed25519 key with a BLAKE2b checksum",
            ));
        }
        let kdf: [u8; 2] = take::<2>(&bytes, 2);
        let salt: [u8; 32] = take::<32>(&bytes, 6);
        let opslimit = u64::from_le_bytes(take::<8>(&bytes, 38));
        let memlimit = u64::from_le_bytes(take::<8>(&bytes, 46));
        let keynum = &mut bytes[54..];
        match &kdf {
            k if k == KDF_SCRYPT => {
                let password = password.ok_or(Error::PasswordRequired)?;
                let mut stream = scrypt_stream(password, &salt, opslimit, memlimit)?;
                for (byte, mask) in keynum.iter_mut().zip(stream.iter()) {
                    *byte ^= mask;
                }
                stream.zeroize();
            }
            k if k == KDF_NONE => {}
            _ => return Err(malformed("secret key", "unknown key derivation")),
        }
        let id: [u8; 8] = take::<8>(keynum, 0);
        let mut sk: [u8; 64] = take::<64>(keynum, 8);
        let chk: [u8; 32] = take::<32>(keynum, 72);
        let ok = checksum(&id, &sk) == chk;
        let seed: [u8; 32] = take::<32>(&sk, 0);
        let key = SigningKey::from_bytes(&seed);
        let pk_matches = key.verifying_key().as_bytes() == &sk[32..];
        sk.zeroize();
        bytes.zeroize();
        if !ok || !pk_matches {
            return Err(if kdf == *KDF_SCRYPT {
                Error::WrongPassword
            } else {
                malformed("secret key", "its checksum does not match")
            });
        }
        Ok(SecretKey { id, key })
    }

    /// The secret key file's text, encrypted with `password` (scrypt, minisign's limits) or not.
    pub fn to_text(&self, password: Option<&str>) -> Result<String, Error> {
        let salt = random::<32>()?;
        let mut sk = [0u8; 64];
        sk[..32].copy_from_slice(&self.key.to_bytes());
        sk[32..].copy_from_slice(self.key.verifying_key().as_bytes());
        let mut keynum = Vec::with_capacity(KEYNUM_SK_LEN);
        keynum.extend_from_slice(&self.id);
        keynum.extend_from_slice(&sk);
        keynum.extend_from_slice(&checksum(&self.id, &sk));
        sk.zeroize();
        if let Some(password) = password {
            let mut stream = scrypt_stream(password, &salt, OPSLIMIT, MEMLIMIT)?;
            for (byte, mask) in keynum.iter_mut().zip(stream.iter()) {
                *byte ^= mask;
            }
            stream.zeroize();
        }
        let mut bytes = Vec::with_capacity(SECRET_KEY_LEN);
        bytes.extend_from_slice(ALG);
        bytes.extend_from_slice(if password.is_some() {
            KDF_SCRYPT
        } else {
            KDF_NONE
        });
        bytes.extend_from_slice(CHK_BLAKE2B);
        bytes.extend_from_slice(&salt);
        bytes.extend_from_slice(&OPSLIMIT.to_le_bytes());
        bytes.extend_from_slice(&MEMLIMIT.to_le_bytes());
        bytes.extend_from_slice(&keynum);
        keynum.zeroize();
        let comment = if password.is_some() {
            "minisign encrypted secret key"
        } else {
            "minisign secret key (unencrypted)"
        };
        let text = format!("untrusted comment: {comment}\n{}\n", BASE64.encode(&bytes));
        bytes.zeroize();
        Ok(text)
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// Signs the data read from `data` (prehashed with BLAKE2b-512), with a trusted comment
    /// holding `timestamp` and `file_name`.
    pub fn sign(
        &self,
        data: impl Read,
        file_name: &str,
        timestamp: u64,
    ) -> std::io::Result<Signature> {
        let hash = blake2b512(data)?;
        let signature = self.key.sign(&hash).to_bytes();
        // Tabs and newlines in a name would break the trusted comment's fields.
        let name: String = file_name
            .chars()
            .map(|c| if c.is_control() { '_' } else { c })
            .collect();
        let trusted_comment = format!("timestamp:{timestamp}\tfile:{name}\thashed");
        let mut signed = signature.to_vec();
        signed.extend_from_slice(trusted_comment.as_bytes());
        let global_signature = self.key.sign(&signed).to_bytes();
        Ok(Signature {
            key_id: self.id,
            prehashed: true,
            signature,
            trusted_comment,
            global_signature,
        })
    }
}

/// A `.minisig` signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    key_id: [u8; 8],
    prehashed: bool,
    signature: [u8; 64],
    trusted_comment: String,
    global_signature: [u8; 64],
}

impl Signature {
    /// The `.minisig` file's text.
    pub fn to_text(&self) -> String {
        let mut bytes = Vec::with_capacity(74);
        bytes.extend_from_slice(if self.prehashed { ALG_PREHASHED } else { ALG });
        bytes.extend_from_slice(&self.key_id);
        bytes.extend_from_slice(&self.signature);
        format!(
            "untrusted comment: signature from shipit secret key {}\n{}\ntrusted comment: {}\n{}\n",
            key_id_hex(&self.key_id),
            BASE64.encode(bytes),
            self.trusted_comment,
            BASE64.encode(self.global_signature)
        )
    }

    /// Reads a `.minisig` file's text.
    pub fn from_text(text: &str) -> Result<Signature, Error> {
        let what = "signature";
        let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
        let first = lines.next().ok_or_else(|| malformed(what, "empty file"))?;
        let sig_line = if first.starts_with("untrusted comment:") {
            lines
                .next()
                .ok_or_else(|| malformed(what, "no signature line"))?
        } else {
            first
        };
        let bytes = BASE64
            .decode(sig_line.trim())
            .map_err(|e| malformed(what, format!("bad base64: {e}")))?;
        if bytes.len() != 74 {
            return Err(malformed(what, "expected 74 bytes"));
        }
        let prehashed = match &bytes[..2] {
            a if a == ALG_PREHASHED => true,
            a if a == ALG => false,
            _ => return Err(malformed(what, "unknown signature algorithm")),
        };
        let trusted_comment = lines
            .next()
            .and_then(|l| l.strip_prefix("trusted comment: "))
            .ok_or_else(|| malformed(what, "no trusted comment"))?
            .to_string();
        let global = BASE64
            .decode(
                lines
                    .next()
                    .ok_or_else(|| malformed(what, "no global signature"))?
                    .trim(),
            )
            .map_err(|e| malformed(what, format!("bad base64: {e}")))?;
        Ok(Signature {
            key_id: take::<8>(&bytes, 2),
            prehashed,
            signature: take::<64>(&bytes, 10),
            trusted_comment,
            global_signature: global
                .try_into()
                .map_err(|_| malformed(what, "global signature is not 64 bytes"))?,
        })
    }
}

/// BLAKE2b-256 over algorithm, key id and secret key: detects a wrong password.
fn checksum(id: &[u8; 8], sk: &[u8; 64]) -> [u8; 32] {
    let mut hasher = Blake2b::<U32>::new();
    hasher.update(ALG);
    hasher.update(id);
    hasher.update(sk);
    hasher.finalize().into()
}

fn blake2b512(mut data: impl Read) -> std::io::Result<[u8; 64]> {
    let mut hasher = Blake2b512::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = data.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// libsodium's `crypto_pwhash_scryptsalsa208sha256` key stream: scrypt with N, r, p chosen from
/// opslimit and memlimit the way libsodium's `pickparams` does.
fn scrypt_stream(
    password: &str,
    salt: &[u8; 32],
    opslimit: u64,
    memlimit: u64,
) -> Result<[u8; KEYNUM_SK_LEN], Error> {
    let opslimit = opslimit.max(32_768);
    let r: u64 = 8;
    let (log_n, p) = if opslimit < memlimit / 32 {
        let max_n = opslimit / (r * 4);
        (log2_below(max_n), 1)
    } else {
        let max_n = memlimit / (r * 128);
        let log_n = log2_below(max_n);
        let max_rp = ((opslimit / 4) / (1u64 << log_n)).min(0x3fff_ffff);
        (log_n, (max_rp / r).max(1))
    };
    // The length in `Params` is for password hash strings; `scrypt()` fills any buffer.
    let params = scrypt::Params::new(
        log_n as u8,
        r as u32,
        p as u32,
        scrypt::Params::RECOMMENDED_LEN,
    )
    .map_err(|e| malformed("secret key", format!("unusable scrypt limits: {e}")))?;
    let mut out = [0u8; KEYNUM_SK_LEN];
    scrypt::scrypt(password.as_bytes(), salt, &params, &mut out)
        .map_err(|e| malformed("secret key", e.to_string()))?;
    Ok(out)
}

/// The smallest `n` (from 1) with `2^n > max_n / 2`, as in libsodium.
fn log2_below(max_n: u64) -> u32 {
    let mut n = 1;
    while n < 63 && (1u64 << n) <= max_n / 2 {
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libsodium_parameters_for_minisign_limits() {
        // opslimit 2^25, memlimit 2^30: N = 2^20, r = 8, p = 1 (1 GiB), as minisign uses.
        let max_n = MEMLIMIT / (8 * 128);
        assert_eq!(log2_below(max_n), 20);
    }

    #[test]
    fn sign_and_verify_round_trip_and_detect_tampering() {
        let key = SecretKey::generate().unwrap();
        let public = PublicKey::from_text(&key.public().to_text()).unwrap();
        let sig = key.sign(&b"hello"[..], "hello.txt", 1_700_000_000).unwrap();
        let sig = Signature::from_text(&sig.to_text()).unwrap();
        assert_eq!(
            public.verify(&b"hello"[..], &sig).unwrap(),
            "timestamp:1700000000\tfile:hello.txt\thashed"
        );
        assert!(matches!(
            public.verify(&b"hellO"[..], &sig),
            Err(VerifyError::Signature(Error::BadSignature(_)))
        ));
        let mut altered = sig.clone();
        altered.trusted_comment = "timestamp:1\tfile:evil\thashed".into();
        assert!(public.verify(&b"hello"[..], &altered).is_err());
        let other = SecretKey::generate().unwrap().public();
        assert!(matches!(
            other.verify(&b"hello"[..], &sig),
            Err(VerifyError::Signature(Error::OtherKey { .. }))
        ));
    }

    #[test]
    fn unencrypted_secret_keys_round_trip() {
        let key = SecretKey::generate().unwrap();
        let text = key.to_text(None).unwrap();
        let back = SecretKey::from_text(&text, None).unwrap();
        assert_eq!(back.public(), key.public());
    }
}
