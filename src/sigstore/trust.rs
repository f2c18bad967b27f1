//! The trusted root (Sigstore's `trusted_root.json`): the certificate authorities, transparency
//! logs and certificate-transparency logs a bundle is checked against, each valid for a time.
//! The public-good instance's root ships inside shipit; a newer one, or a private instance's,
//! is given as a file.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::bundle::B64;
use super::keys::{PublicKey, key_id};

/// The public-good instance's trusted root, as Sigstore's TUF repository published it.
pub const PUBLIC_GOOD: &str = include_str!("trusted_root.json");

/// A trusted root, read.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    /// Fulcio instances: their chains, root last.
    pub authorities: Vec<Authority>,
    /// Rekor instances.
    pub logs: Vec<Log>,
    /// Certificate-transparency logs.
    pub ct_logs: Vec<Log>,
}

/// A certificate authority.
#[derive(Debug, Clone)]
pub struct Authority {
    /// Its certificates (DER), leafmost first, root last.
    pub chain: Vec<Vec<u8>>,
    /// When it may have issued.
    pub valid: Validity,
}

/// A log (Rekor or CT) and its key.
#[derive(Debug, Clone)]
pub struct Log {
    /// SHA-256 of its public key.
    pub id: [u8; 32],
    /// Its key.
    pub key: PublicKey,
    /// When the key was in use.
    pub valid: Validity,
}

/// A span of time; `end` open when unset.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    /// From.
    pub start: SystemTime,
    /// Until.
    pub end: Option<SystemTime>,
}

impl Validity {
    /// Whether `time` is inside.
    pub fn contains(&self, time: SystemTime) -> bool {
        self.start <= time && self.end.is_none_or(|end| time <= end)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RootJson {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<LogJson>,
    #[serde(default)]
    certificate_authorities: Vec<AuthorityJson>,
    #[serde(default)]
    ctlogs: Vec<LogJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogJson {
    public_key: KeyJson,
    log_id: LogIdJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyJson {
    raw_bytes: B64,
    valid_for: ValidJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogIdJson {
    key_id: B64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorityJson {
    cert_chain: ChainJson,
    valid_for: ValidJson,
}

#[derive(Deserialize)]
struct ChainJson {
    certificates: Vec<CertJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CertJson {
    raw_bytes: B64,
}

#[derive(Deserialize)]
struct ValidJson {
    start: String,
    #[serde(default)]
    end: Option<String>,
}

fn time(text: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
        .or_else(|_| humantime::parse_rfc3339(text))
        .map_err(|e| format!("time `{text}`: {e}"))
}

impl TryFrom<ValidJson> for Validity {
    type Error = String;
    fn try_from(v: ValidJson) -> Result<Self, String> {
        Ok(Validity {
            start: time(&v.start)?,
            end: v.end.as_deref().map(time).transpose()?,
        })
    }
}

impl TrustedRoot {
    /// Reads a `trusted_root.json`.
    pub fn from_json(text: &str) -> Result<TrustedRoot, String> {
        let root: RootJson = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if !root
            .media_type
            .starts_with("application/vnd.dev.sigstore.trustedroot")
        {
            return Err(format!(
                "media type `{}` is not a trusted root",
                root.media_type
            ));
        }
        // A log whose key is of a kind shipit does not check (Rekor v2's Ed25519 logs, whose
        // entries shipit does not read either) is left out.
        let logs = |logs: Vec<LogJson>| -> Result<Vec<Log>, String> {
            logs.into_iter()
                .filter(|log| PublicKey::from_spki(&log.public_key.raw_bytes.0).is_ok())
                .map(|log| {
                    let key = PublicKey::from_spki(&log.public_key.raw_bytes.0)?;
                    let id = key_id(&log.public_key.raw_bytes.0);
                    if log.log_id.key_id.0 != id {
                        return Err("a log whose id is not its key's SHA-256".to_owned());
                    }
                    Ok(Log {
                        id,
                        key,
                        valid: log.public_key.valid_for.try_into()?,
                    })
                })
                .collect()
        };
        let authorities = root
            .certificate_authorities
            .into_iter()
            .map(|ca| {
                Ok(Authority {
                    chain: ca
                        .cert_chain
                        .certificates
                        .into_iter()
                        .map(|c| c.raw_bytes.0)
                        .collect(),
                    valid: ca.valid_for.try_into()?,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(TrustedRoot {
            authorities,
            logs: logs(root.tlogs)?,
            ct_logs: logs(root.ctlogs)?,
        })
    }

    /// The public-good root shipit ships.
    pub fn public_good() -> TrustedRoot {
        // Checked by a unit test: the shipped file always reads.
        TrustedRoot::from_json(PUBLIC_GOOD).unwrap_or(TrustedRoot {
            authorities: Vec::new(),
            logs: Vec::new(),
            ct_logs: Vec::new(),
        })
    }
}

/// Seconds since 1970 as a time.
pub fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_public_good_root_reads() {
        let root = TrustedRoot::from_json(PUBLIC_GOOD).unwrap();
        assert!(!root.authorities.is_empty() && !root.logs.is_empty() && !root.ct_logs.is_empty());
        assert!(root.authorities.iter().all(|a| !a.chain.is_empty()));
    }
}
