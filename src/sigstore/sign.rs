//! Keyless signing: the CI job's OIDC token proves who is signing, Fulcio certifies a key made
//! for this run alone for that identity (ten minutes), each file's digest is signed with it and
//! recorded in Rekor, and a bundle holding all of it is written beside each file. The key
//! never touches the disk and is gone when the run ends.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::pkcs8::EncodePublicKey;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::bundle::{
    B64, Bundle, Checkpoint, InclusionPromise, InclusionProof, Int, KindVersion, LogId, MEDIA_TYPE,
    MessageDigest, MessageSignature, RawBytes, TlogEntry, VerificationMaterial,
};
use super::x509::pem_der;

/// The public-good Fulcio.
pub const PUBLIC_FULCIO: &str = "https://fulcio.sigstore.dev";
/// The public-good Rekor.
pub const PUBLIC_REKOR: &str = "https://rekor.sigstore.dev";
/// The most an answer from Fulcio, Rekor or the token service may be.
const MAX_ANSWER: usize = 1 << 20;

/// Where keyless signing goes: the public-good instance by default, a private instance, or
/// test stand-ins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// Fulcio's root.
    pub fulcio: String,
    /// Rekor's root.
    pub rekor: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            fulcio: PUBLIC_FULCIO.into(),
            rekor: PUBLIC_REKOR.into(),
        }
    }
}

/// Why keyless signing failed; names the service and never the token.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// No OIDC token could be had.
    #[error(
        "keyless signing needs an OIDC token: in GitHub Actions give the job `permissions: id-token: write`; elsewhere set SIGSTORE_ID_TOKEN"
    )]
    NoToken,
    /// A file could not be read or its bundle written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// What the services answered does not verify against the trusted root.
    #[error("the bundle for {file} does not verify against the trusted root: {reason}")]
    Check {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
    /// A service refused or broke off.
    #[error("{service}: {message}")]
    Service {
        /// Which.
        service: &'static str,
        /// What happened.
        message: String,
    },
}

fn failed(service: &'static str, message: impl Into<String>) -> SignError {
    SignError::Service {
        service,
        message: message.into(),
    }
}

/// Where the token comes from, read from the environment: GitHub Actions' token service
/// (`ACTIONS_ID_TOKEN_REQUEST_URL` and `_TOKEN`, present when the job may write `id-token`),
/// else a token given in `SIGSTORE_ID_TOKEN`.
pub fn token_available() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    (set("ACTIONS_ID_TOKEN_REQUEST_URL") && set("ACTIONS_ID_TOKEN_REQUEST_TOKEN"))
        || set("SIGSTORE_ID_TOKEN")
}

/// Signs a stage's files keyless (see the module): one certificate for the stage, one Rekor
/// entry and bundle per file, each bundle checked against the trusted root before it is
/// written. Returns the line for the log.
pub fn sign_files(
    files: &[std::path::PathBuf],
    endpoints: &Endpoints,
    trusted_root: Option<&std::path::Path>,
) -> Result<String, SignError> {
    let root = match trusted_root {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| SignError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            Some(
                super::TrustedRoot::from_json(&text).map_err(|reason| SignError::Check {
                    file: path.display().to_string(),
                    reason,
                })?,
            )
        }
        None if *endpoints == Endpoints::default() => Some(super::TrustedRoot::public_good()),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed("runtime", e.to_string()))?;
    runtime.block_on(async {
        let signer = Signer::new(endpoints).await?;
        let mut identity = String::new();
        let mut entries = Vec::new();
        for file in files {
            let (_, sha256) = crate::manifest::hash_file(file).map_err(|source| SignError::Io {
                path: file.clone(),
                source,
            })?;
            let mut digest = [0u8; 32];
            hex::decode_to_slice(&sha256, &mut digest)
                .map_err(|e| failed("hash", e.to_string()))?;
            let bundle = signer.sign(&digest).await?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(root) = &root {
                let verified = super::verify(&bundle, &digest, root, &super::Policy::default())
                    .map_err(|reason| SignError::Check {
                        file: name.clone(),
                        reason,
                    })?;
                identity = verified.identity;
            }
            entries.push(
                bundle.verification_material.tlog_entries[0]
                    .log_index
                    .0
                    .to_string(),
            );
            let out = std::path::PathBuf::from(format!("{}.sigstore.json", file.display()));
            std::fs::write(&out, bundle.to_json()).map_err(|source| SignError::Io {
                path: out.clone(),
                source,
            })?;
        }
        Ok(format!(
            "signed {} keyless{} (Rekor entries {}){}",
            crate::words::count(files.len(), "file", "files"),
            match identity.is_empty() {
                true => String::new(),
                false => format!(" as {identity}"),
            },
            entries.join(", "),
            match root {
                Some(_) => "",
                None => "; not checked: no trusted_root given for this instance",
            }
        ))
    })
}

/// A signer for one run: an ephemeral key and Fulcio's certificate for it.
pub struct Signer {
    key: p256::ecdsa::SigningKey,
    /// The leaf certificate, DER.
    leaf: Vec<u8>,
    /// The leaf as PEM, as Rekor records it.
    leaf_pem: String,
    /// The certificates that issued it, PEM.
    chain_pem: String,
    http: reqwest::Client,
    endpoints: Endpoints,
}

impl Signer {
    /// Gets the job's token, makes the key and has Fulcio certify it.
    pub async fn new(endpoints: &Endpoints) -> Result<Signer, SignError> {
        let http = client()?;
        let token = token(&http).await?;
        Signer::certified(http, endpoints, &token).await
    }

    /// Makes the key and has Fulcio certify it for the identity `token` proves.
    pub async fn with_token(endpoints: &Endpoints, token: &str) -> Result<Signer, SignError> {
        crate::secrets::register(token);
        Signer::certified(client()?, endpoints, token).await
    }

    async fn certified(
        http: reqwest::Client,
        endpoints: &Endpoints,
        token: &str,
    ) -> Result<Signer, SignError> {
        let subject = subject(token)?;
        let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let public = key
            .verifying_key()
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .map_err(|e| failed("fulcio", e.to_string()))?;
        let proof: p256::ecdsa::Signature = key.sign(subject.as_bytes());
        let request = json!({
            "credentials": { "oidcIdentityToken": token },
            "publicKeyRequest": {
                "publicKey": { "algorithm": "ECDSA", "content": public },
                "proofOfPossession": STANDARD.encode(proof.to_der().as_bytes()),
            },
        });
        let url = format!(
            "{}/api/v2/signingCert",
            endpoints.fulcio.trim_end_matches('/')
        );
        let answer = post(&http, "fulcio", &url, &request).await?;
        let chain = answer["signedCertificateEmbeddedSct"]["chain"]["certificates"]
            .as_array()
            .ok_or_else(|| {
                failed(
                    "fulcio",
                    "no certificate with an embedded SCT in the answer",
                )
            })?;
        let leaf_pem = chain
            .first()
            .and_then(Value::as_str)
            .ok_or_else(|| failed("fulcio", "an empty certificate chain"))?
            .to_owned();
        let leaf =
            pem_der(&leaf_pem).ok_or_else(|| failed("fulcio", "a certificate that is not PEM"))?;
        let chain_pem = chain[1..]
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .concat();
        Ok(Signer {
            key,
            leaf,
            leaf_pem,
            chain_pem,
            http,
            endpoints: endpoints.clone(),
        })
    }

    /// The identity Fulcio certified.
    pub fn identity(&self) -> Option<String> {
        super::x509::Cert::from_der(&self.leaf).ok()?.identity()
    }

    /// The certificates that issued the signing certificate, PEM (as cosign's chain
    /// annotation holds them).
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// Signs the file whose SHA-256 is `sha256`, records it in Rekor and returns its bundle.
    pub async fn sign(&self, sha256: &[u8; 32]) -> Result<Bundle, SignError> {
        let signature: p256::ecdsa::Signature = self
            .key
            .sign_prehash(sha256)
            .map_err(|e| failed("signing", e.to_string()))?;
        let signature = signature.to_der().as_bytes().to_vec();
        let body = json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": { "hash": { "algorithm": "sha256", "value": hex::encode(sha256) } },
                "signature": {
                    "content": STANDARD.encode(&signature),
                    "publicKey": { "content": STANDARD.encode(self.leaf_pem.as_bytes()) },
                },
            },
        });
        let url = format!(
            "{}/api/v1/log/entries",
            self.endpoints.rekor.trim_end_matches('/')
        );
        let answer = post(&self.http, "rekor", &url, &body).await?;
        let entry = answer
            .as_object()
            .and_then(|o| o.values().next())
            .ok_or_else(|| failed("rekor", "no entry in the answer"))?;
        let tlog =
            tlog_entry(entry).ok_or_else(|| failed("rekor", "an entry without its proofs"))?;
        Ok(Bundle {
            media_type: MEDIA_TYPE.into(),
            verification_material: VerificationMaterial {
                certificate: RawBytes {
                    raw_bytes: B64(self.leaf.clone()),
                },
                tlog_entries: vec![tlog],
            },
            message_signature: Some(MessageSignature {
                message_digest: MessageDigest {
                    algorithm: "SHA2_256".into(),
                    digest: B64(sha256.to_vec()),
                },
                signature: B64(signature),
            }),
            dsse_envelope: None,
        })
    }
}

/// The client for the token service, Fulcio and Rekor.
fn client() -> Result<reqwest::Client, SignError> {
    crate::http::builder()
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(120))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| failed("http", crate::http::describe(&e)))
}

/// Rekor's answer for one entry, in the bundle's shape.
fn tlog_entry(entry: &Value) -> Option<TlogEntry> {
    let proof = &entry["verification"]["inclusionProof"];
    let hex_bytes = |v: &Value| v.as_str().and_then(|h| hex::decode(h).ok()).map(B64);
    Some(TlogEntry {
        log_index: Int(entry["logIndex"].as_u64()?),
        log_id: LogId {
            key_id: hex_bytes(&entry["logID"])?,
        },
        kind_version: KindVersion {
            kind: "hashedrekord".into(),
            version: "0.0.1".into(),
        },
        integrated_time: Int(entry["integratedTime"].as_u64()?),
        inclusion_promise: Some(InclusionPromise {
            signed_entry_timestamp: B64(STANDARD
                .decode(entry["verification"]["signedEntryTimestamp"].as_str()?)
                .ok()?),
        }),
        inclusion_proof: InclusionProof {
            log_index: Int(proof["logIndex"].as_u64()?),
            root_hash: hex_bytes(&proof["rootHash"])?,
            tree_size: Int(proof["treeSize"].as_u64()?),
            hashes: proof["hashes"]
                .as_array()?
                .iter()
                .map(hex_bytes)
                .collect::<Option<_>>()?,
            checkpoint: Checkpoint {
                envelope: proof["checkpoint"].as_str()?.to_owned(),
            },
        },
        canonicalized_body: B64(STANDARD.decode(entry["body"].as_str()?).ok()?),
    })
}

/// The job's OIDC token for the `sigstore` audience.
async fn token(http: &reqwest::Client) -> Result<String, SignError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let (Some(url), Some(request)) = (
        var("ACTIONS_ID_TOKEN_REQUEST_URL"),
        var("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    ) {
        crate::secrets::register(&request);
        let mut url = reqwest::Url::parse(&url).map_err(|e| failed("oidc", e.to_string()))?;
        url.query_pairs_mut().append_pair("audience", "sigstore");
        let response = http
            .get(url)
            .bearer_auth(&request)
            .send()
            .await
            .map_err(|e| failed("oidc", crate::http::describe(&e)))?;
        let answer = read(response, "oidc").await?;
        let token = answer["value"]
            .as_str()
            .ok_or_else(|| failed("oidc", "the token service answered without a token"))?
            .to_owned();
        crate::secrets::register(&token);
        return Ok(token);
    }
    let token = var("SIGSTORE_ID_TOKEN").ok_or(SignError::NoToken)?;
    crate::secrets::register(&token);
    Ok(token)
}

/// The token's `sub` claim (what Fulcio's proof of possession signs). The token is not checked
/// here: Fulcio checks it.
fn subject(token: &str) -> Result<String, SignError> {
    let payload = token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
        .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
        .ok_or_else(|| failed("oidc", "the token is not a JWT"))?;
    let subject = payload["sub"]
        .as_str()
        .or_else(|| payload["email"].as_str())
        .ok_or_else(|| failed("oidc", "the token names no subject"))?;
    Ok(subject.to_owned())
}

async fn post(
    http: &reqwest::Client,
    service: &'static str,
    url: &str,
    body: &Value,
) -> Result<Value, SignError> {
    let mut last = String::new();
    for attempt in 0..4u32 {
        if attempt > 0 {
            tokio::time::sleep(crate::retry::backoff(attempt)).await;
        }
        match http.post(url).json(body).send().await {
            Ok(response) if response.status().is_server_error() => {
                last = format!("answered {}", response.status());
            }
            Ok(response) => return read(response, service).await,
            Err(e) => last = crate::http::describe(&e),
        }
    }
    Err(failed(service, format!("{url}: {last} (4 attempts)")))
}

async fn read(response: reqwest::Response, service: &'static str) -> Result<Value, SignError> {
    let status = response.status();
    let mut body = Vec::new();
    let mut response = response;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| failed(service, crate::http::describe(&e)))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ANSWER {
            return Err(failed(service, "an answer over 1 MiB"));
        }
    }
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        let text: String = text.chars().take(300).collect();
        return Err(failed(
            service,
            format!("answered {status}: {}", text.trim()),
        ));
    }
    serde_json::from_slice(&body)
        .map_err(|e| failed(service, format!("an answer that is not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_is_read_from_the_tokens_claims() {
        let claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"repo:acme/tiny:ref:refs/tags/v1"}"#);
        assert_eq!(
            subject(&format!("e30.{claims}.sig")).unwrap(),
            "repo:acme/tiny:ref:refs/tags/v1"
        );
        assert!(subject("not-a-token").is_err());
    }

    #[test]
    fn a_rekor_answer_becomes_a_bundle_entry() {
        let entry = json!({
            "body": STANDARD.encode(b"{}"), "integratedTime": 1_700_000_000u64,
            "logID": "00".repeat(32), "logIndex": 7,
            "verification": { "signedEntryTimestamp": STANDARD.encode(b"set"),
                "inclusionProof": { "checkpoint": "c\n", "hashes": ["ab"], "logIndex": 3,
                                    "rootHash": "cd", "treeSize": 4 } },
        });
        let tlog = tlog_entry(&entry).unwrap();
        assert_eq!((tlog.log_index.0, tlog.inclusion_proof.log_index.0), (7, 3));
        assert_eq!(tlog.inclusion_proof.hashes, vec![B64(vec![0xab])]);
    }
}
