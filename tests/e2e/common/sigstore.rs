//! Local stand-ins for the services keyless signing uses, written from their API docs:
//! GitHub Actions' OIDC token service (`ACTIONS_ID_TOKEN_REQUEST_URL`), Fulcio
//! (`POST /api/v2/signingCert`, a test CA, certificates with an embedded SCT from a test CT
//! log) and Rekor (`POST /api/v1/log/entries`, an RFC 6962 tree, signed checkpoints and
//! entry timestamps from a test log key). `trusted_root()` and `trust_config()` describe them
//! in Sigstore's formats, for shipit and for the Sigstore project's own verifier.

use std::collections::BTreeSet;
use std::io::BufReader;
use std::net::TcpListener;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::asn1::{BitString, Ia5String, OctetString, Utf8StringRef};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

use super::wire::{read_body, read_head, write_response};

/// The issuer GitHub Actions' tokens name.
pub const ISSUER: &str = "https://token.actions.githubusercontent.com";
/// The workflow the tokens are for.
pub const WORKFLOW: &str = "acme/tiny/.github/workflows/release.yml@refs/tags/v1.0.0";
/// The identity Fulcio certifies for that workflow.
pub fn identity() -> String {
    format!("https://github.com/{WORKFLOW}")
}
/// The bearer token the job's token request carries.
pub const REQUEST_TOKEN: &str = "ghs_requesttoken_FAKE0123456789";

struct State {
    ca: SigningKey,
    root: Certificate,
    ct: SigningKey,
    rekor: SigningKey,
    tokens: BTreeSet<String>,
    leaves: Vec<Vec<u8>>,
    /// How long certificates are valid, from when: default now, ten minutes.
    window: Option<(SystemTime, Duration)>,
    serial: u8,
    /// The GitHub server workflow identities are under.
    server: String,
}

/// The three stand-ins.
pub struct Sigstore {
    /// The token service's address (`ACTIONS_ID_TOKEN_REQUEST_URL`).
    pub token_url: String,
    /// Fulcio's root.
    pub fulcio: String,
    /// Rekor's root.
    pub rekor: String,
    state: Arc<Mutex<State>>,
}

fn key() -> SigningKey {
    SigningKey::random(&mut rand::rngs::OsRng)
}

fn spki(key: &VerifyingKey) -> Vec<u8> {
    key.to_public_key_der().unwrap().as_bytes().to_vec()
}

fn log_id(key: &VerifyingKey) -> Vec<u8> {
    Sha256::digest(spki(key)).to_vec()
}

/// What a stand-in answers a request with: its status and JSON.
type Handler = fn(&Mutex<State>, &super::wire::Head, &[u8]) -> (u16, Value);

/// Serves `handle` on a loopback port.
fn serve(state: Arc<Mutex<State>>, handle: Handler) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let state = state.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let Some(head) = read_head(&mut reader) else {
                    return;
                };
                let body = read_body(&mut reader, &head, Some(1 << 20)).unwrap_or_default();
                let (status, answer) = handle(&state, &head, &body);
                let mut stream = stream;
                let _ = write_response(
                    &mut stream,
                    &Value::Null,
                    (status, Vec::new(), answer.to_string().into_bytes()),
                );
            });
        }
    });
    url
}

impl Sigstore {
    /// Starts them, with a new CA, CT log and Rekor key.
    pub fn start() -> Sigstore {
        let ca = key();
        let name = Name::from_str("CN=shipit test sigstore,O=shipit.test").unwrap();
        let root = CertificateBuilder::new(
            Profile::Root,
            SerialNumber::new(&[1]).unwrap(),
            Validity::from_now(Duration::from_secs(365 * 86400)).unwrap(),
            name,
            SubjectPublicKeyInfoOwned::from_key(*ca.verifying_key()).unwrap(),
            &ca,
        )
        .unwrap()
        .build::<DerSignature>()
        .unwrap();
        let state = Arc::new(Mutex::new(State {
            ca,
            root,
            ct: key(),
            rekor: key(),
            tokens: BTreeSet::new(),
            leaves: Vec::new(),
            window: None,
            serial: 2,
            server: "https://github.com".into(),
        }));
        Sigstore {
            token_url: format!("{}/token?api-version=2.0", serve(state.clone(), token)),
            fulcio: serve(state.clone(), fulcio),
            rekor: serve(state.clone(), rekor),
            state,
        }
    }

    /// Certificates issued from now on are valid for `length` from `start`.
    pub fn set_certificate_window(&self, start: SystemTime, length: Duration) {
        self.state.lock().unwrap().window = Some((start, length));
    }

    /// The trusted root (`trusted_root.json`) for these stand-ins.
    pub fn trusted_root(&self) -> Value {
        let state = self.state.lock().unwrap();
        let key = |k: &SigningKey, url: &str| {
            json!({
                "baseUrl": url, "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": STANDARD.encode(spki(k.verifying_key())),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": { "start": "2020-01-01T00:00:00Z" },
                },
                "logId": { "keyId": STANDARD.encode(log_id(k.verifying_key())) },
            })
        };
        json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [key(&state.rekor, &self.rekor)],
            "certificateAuthorities": [{
                "subject": { "organization": "shipit.test", "commonName": "shipit test sigstore" },
                "uri": self.fulcio,
                "certChain": { "certificates": [{ "rawBytes": STANDARD.encode(state.root.to_der().unwrap()) }] },
                "validFor": { "start": "2020-01-01T00:00:00Z" },
            }],
            "ctlogs": [key(&state.ct, "http://ct.test")],
            "timestampAuthorities": [],
        })
    }

    /// The client trust configuration the `sigstore` Python client takes (`--trust-config`).
    pub fn trust_config(&self) -> Value {
        let service = |url: &str| json!({ "url": url, "majorApiVersion": 1, "validFor": { "start": "2020-01-01T00:00:00Z" }, "operator": "shipit.test" });
        json!({
            "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
            "trustedRoot": self.trusted_root(),
            "signingConfig": {
                "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                "caUrls": [service(&self.fulcio)],
                "oidcUrls": [service(&self.token_url)],
                "rekorTlogUrls": [service(&self.rekor)],
                "tsaUrls": [],
                "rekorTlogConfig": { "selector": "ANY" },
                "tsaConfig": { "selector": "ANY" },
            },
        })
    }
}

impl Sigstore {
    /// A token the stand-in Fulcio accepts, as a job would get it.
    pub fn mint_token(&self) -> String {
        mint(&self.state, WORKFLOW)
    }

    /// A token for the job of `workflow` (`owner/repo/.github/workflows/f.yml@ref`) on
    /// `server`, whose identity Fulcio then certifies as `<server>/<workflow>`.
    pub fn mint_token_for(&self, server: &str, workflow: &str) -> String {
        self.state.lock().unwrap().server = server.trim_end_matches('/').to_owned();
        mint(&self.state, workflow)
    }
}

/// `GET /token?audience=sigstore`: a JWT for the workflow, for the request token only.
fn token(state: &Mutex<State>, head: &super::wire::Head, _: &[u8]) -> (u16, Value) {
    let auth = head.header("authorization").unwrap_or_default();
    if !auth.eq_ignore_ascii_case(&format!("bearer {REQUEST_TOKEN}")) {
        return (401, json!({ "message": "bad request token" }));
    }
    if head.query("audience").as_deref() != Some("sigstore") {
        return (400, json!({ "message": "audience must be sigstore" }));
    }
    (200, json!({ "value": mint(state, WORKFLOW) }))
}

/// A JWT for the workflow, remembered as issued.
fn mint(state: &Mutex<State>, workflow: &str) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": ISSUER, "aud": "sigstore", "sub": "repo:acme/tiny:ref:refs/tags/v1.0.0",
        "repository": workflow.split("/.github").next().unwrap_or_default(), "job_workflow_ref": workflow,
        "iat": now, "exp": now + 300,
    });
    let jwt = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()),
    );
    state.lock().unwrap().tokens.insert(jwt.clone());
    jwt
}

/// The JSON body of a POST to `route`.
fn posted(head: &super::wire::Head, route: &str, body: &[u8]) -> Option<Value> {
    (head.method == "POST" && head.route() == route)
        .then(|| serde_json::from_slice(body).ok())
        .flatten()
}

/// `POST /api/v2/signingCert`: a certificate for a key whose owner proves possession by
/// signing the token's subject, for a token the token service issued.
fn fulcio(state: &Mutex<State>, head: &super::wire::Head, body: &[u8]) -> (u16, Value) {
    let Some(request) = posted(head, "/api/v2/signingCert", body) else {
        return (400, json!({ "message": "not a JSON POST to this service" }));
    };
    // The token in the body (a public key request) or as the bearer (a CSR).
    let bearer = head
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer ").map(str::to_owned));
    let token = request["credentials"]["oidcIdentityToken"]
        .as_str()
        .map(str::to_owned)
        .or(bearer)
        .unwrap_or_default();
    let mut state = state.lock().unwrap();
    if !state.tokens.contains(&token) {
        return (401, json!({ "message": "unknown token" }));
    }
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let sub = claims["sub"].as_str().unwrap();
    let proven = match request["certificateSigningRequest"].as_str() {
        // A CSR proves possession by its own signature.
        Some(csr) => STANDARD
            .decode(csr)
            .ok()
            .and_then(|pem| shipit::sigstore::x509::pem_der(&String::from_utf8_lossy(&pem)))
            .and_then(|der| x509_cert::request::CertReq::from_der(&der).ok())
            .and_then(|csr| {
                let spki = csr.info.public_key.to_der().ok()?;
                let key = VerifyingKey::from_public_key_der(&spki).ok()?;
                let sig = p256::ecdsa::Signature::from_der(csr.signature.as_bytes()?).ok()?;
                p256::ecdsa::signature::Verifier::verify(&key, &csr.info.to_der().ok()?, &sig)
                    .ok()
                    .map(|_| key)
            }),
        None => {
            let pem = request["publicKeyRequest"]["publicKey"]["content"]
                .as_str()
                .unwrap_or_default();
            let proof = request["publicKeyRequest"]["proofOfPossession"]
                .as_str()
                .and_then(|p| STANDARD.decode(p).ok())
                .and_then(|p| p256::ecdsa::Signature::from_der(&p).ok());
            VerifyingKey::from_public_key_pem(pem)
                .ok()
                .filter(|public| {
                    proof.is_some_and(|sig| {
                        p256::ecdsa::signature::Verifier::verify(public, sub.as_bytes(), &sig)
                            .is_ok()
                    })
                })
        }
    };
    let Some(public) = proven else {
        return (
            400,
            json!({ "message": "proof of possession does not hold" }),
        );
    };
    let identity = format!(
        "{}/{}",
        state.server,
        claims["job_workflow_ref"].as_str().unwrap()
    );
    let leaf = issue(
        &mut state,
        &public,
        &identity,
        claims["iss"].as_str().unwrap(),
    );
    let pem = |der: &[u8]| shipit::sigstore::x509::der_pem(der);
    (
        201,
        json!({ "signedCertificateEmbeddedSct": { "chain": { "certificates": [
            pem(&leaf), pem(&state.root.to_der().unwrap()),
        ] } } }),
    )
}

/// A leaf for `public`: SAN `identity`, code signing, the issuer extension, and an SCT over
/// the precertificate (the certificate without its SCT list), then signed again whole.
fn issue(state: &mut State, public: &VerifyingKey, identity: &str, issuer: &str) -> Vec<u8> {
    let validity = match state.window {
        Some((start, length)) => Validity {
            not_before: Time::try_from(start).unwrap(),
            not_after: Time::try_from(start + length).unwrap(),
        },
        None => Validity::from_now(Duration::from_secs(600)).unwrap(),
    };
    state.serial += 1;
    let mut builder = CertificateBuilder::new(
        Profile::Leaf {
            issuer: state.root.tbs_certificate.subject.clone(),
            enable_key_agreement: false,
            enable_key_encipherment: false,
        },
        SerialNumber::new(&[state.serial]).unwrap(),
        validity,
        Name::default(),
        SubjectPublicKeyInfoOwned::from_key(*public).unwrap(),
        &state.ca,
    )
    .unwrap();
    builder
        .add_extension(&SubjectAltName(vec![
            GeneralName::UniformResourceIdentifier(Ia5String::new(identity).unwrap()),
        ]))
        .unwrap();
    let mut cert: Certificate = builder.build::<DerSignature>().unwrap();
    // Code signing, not critical (as Fulcio writes it; verifiers refuse a critical one).
    cert.tbs_certificate
        .extensions
        .get_or_insert_with(Vec::new)
        .push(Extension {
            extn_id: "2.5.29.37".parse().unwrap(),
            critical: false,
            extn_value: OctetString::new(
                ExtendedKeyUsage(vec![x509_cert::der::oid::db::rfc5280::ID_KP_CODE_SIGNING])
                    .to_der()
                    .unwrap(),
            )
            .unwrap(),
        });
    cert.tbs_certificate
        .extensions
        .get_or_insert_with(Vec::new)
        .push(Extension {
            extn_id: "1.3.6.1.4.1.57264.1.8".parse().unwrap(),
            critical: false,
            extn_value: OctetString::new(Utf8StringRef::new(issuer).unwrap().to_der().unwrap())
                .unwrap(),
        });
    // Fulcio writes the issuer twice: the first, raw extension, which clients still read.
    cert.tbs_certificate
        .extensions
        .get_or_insert_with(Vec::new)
        .push(Extension {
            extn_id: "1.3.6.1.4.1.57264.1.1".parse().unwrap(),
            critical: false,
            extn_value: OctetString::new(issuer.as_bytes()).unwrap(),
        });
    // The SCT: RFC 6962's signed data for a precertificate entry.
    let precert = cert.tbs_certificate.to_der().unwrap();
    let issuer_key_hash = Sha256::digest(spki(state.ca.verifying_key()));
    let timestamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut signed = vec![0u8, 0];
    signed.extend_from_slice(&timestamp.to_be_bytes());
    signed.extend_from_slice(&1u16.to_be_bytes());
    signed.extend_from_slice(&issuer_key_hash);
    signed.extend_from_slice(&(precert.len() as u32).to_be_bytes()[1..]);
    signed.extend_from_slice(&precert);
    signed.extend_from_slice(&0u16.to_be_bytes());
    let sct_signature: DerSignature = state.ct.sign(&signed);
    let mut sct = vec![0u8];
    sct.extend_from_slice(&log_id(state.ct.verifying_key()));
    sct.extend_from_slice(&timestamp.to_be_bytes());
    sct.extend_from_slice(&0u16.to_be_bytes());
    sct.extend_from_slice(&[4, 3]);
    sct.extend_from_slice(&(sct_signature.as_bytes().len() as u16).to_be_bytes());
    sct.extend_from_slice(sct_signature.as_bytes());
    let mut list = ((sct.len() + 2) as u16).to_be_bytes().to_vec();
    list.extend_from_slice(&(sct.len() as u16).to_be_bytes());
    list.extend_from_slice(&sct);
    cert.tbs_certificate
        .extensions
        .get_or_insert_with(Vec::new)
        .push(Extension {
            extn_id: "1.3.6.1.4.1.11129.2.4.2".parse().unwrap(),
            critical: false,
            extn_value: OctetString::new(OctetString::new(list).unwrap().to_der().unwrap())
                .unwrap(),
        });
    let tbs = cert.tbs_certificate.to_der().unwrap();
    let signature: DerSignature = state.ca.sign(&tbs);
    cert.signature = BitString::from_bytes(signature.as_bytes()).unwrap();
    let der = cert.to_der().unwrap();
    assert!(Certificate::from_der(&der).is_ok());
    der
}

/// RFC 8785 for what Rekor's bodies hold: keys sorted, no spaces.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&map[*k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

fn leaf_hash(leaf: &[u8]) -> Vec<u8> {
    shipit::sigstore::rekor::leaf_hash(leaf)
}

fn tree_root(leaves: &[Vec<u8>]) -> Vec<u8> {
    if leaves.len() == 1 {
        return leaves[0].clone();
    }
    let split = leaves.len().next_power_of_two() / 2;
    shipit::sigstore::rekor::node_hash(&tree_root(&leaves[..split]), &tree_root(&leaves[split..]))
}

fn audit_path(index: usize, leaves: &[Vec<u8>]) -> Vec<Vec<u8>> {
    if leaves.len() <= 1 {
        return Vec::new();
    }
    let split = leaves.len().next_power_of_two() / 2;
    let (mut path, other) = if index < split {
        (
            audit_path(index, &leaves[..split]),
            tree_root(&leaves[split..]),
        )
    } else {
        (
            audit_path(index - split, &leaves[split..]),
            tree_root(&leaves[..split]),
        )
    };
    path.push(other);
    path
}

/// `POST /api/v1/log/entries`: a hashedrekord whose signature holds over its digest with its
/// certificate's key is appended; the answer carries the proof, checkpoint and SET.
fn rekor(state: &Mutex<State>, head: &super::wire::Head, body: &[u8]) -> (u16, Value) {
    let Some(entry) = posted(head, "/api/v1/log/entries", body) else {
        return (400, json!({ "message": "not a JSON POST to this service" }));
    };
    if entry["kind"] == "dsse" && entry["apiVersion"] == "0.0.1" {
        return match dsse_body(&entry) {
            Some(body) => append(state, body),
            None => (
                400,
                json!({ "message": "the envelope's signature does not verify" }),
            ),
        };
    }
    if entry["kind"] != "hashedrekord" || entry["apiVersion"] != "0.0.1" {
        return (400, json!({ "message": "only hashedrekord 0.0.1" }));
    }
    let spec = &entry["spec"];
    let digest = spec["data"]["hash"]["value"]
        .as_str()
        .and_then(|h| hex::decode(h).ok());
    let signature = spec["signature"]["content"]
        .as_str()
        .and_then(|s| STANDARD.decode(s).ok());
    let cert = spec["signature"]["publicKey"]["content"]
        .as_str()
        .and_then(|c| STANDARD.decode(c).ok())
        .and_then(|pem| shipit::sigstore::x509::pem_der(&String::from_utf8_lossy(&pem)))
        .and_then(|der| Certificate::from_der(&der).ok());
    let holds = match (digest, signature, cert) {
        (Some(digest), Some(signature), Some(cert)) => {
            let spki = cert
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .unwrap();
            VerifyingKey::from_public_key_der(&spki).is_ok_and(|key| {
                p256::ecdsa::Signature::from_der(&signature).is_ok_and(|sig| {
                    p256::ecdsa::signature::hazmat::PrehashVerifier::verify_prehash(
                        &key, &digest, &sig,
                    )
                    .is_ok()
                })
            })
        }
        _ => false,
    };
    if !holds {
        return (400, json!({ "message": "the signature does not verify" }));
    }
    append(state, canonical(&entry).into_bytes())
}

/// The `dsse` entry Rekor stores for a proposed envelope whose one signature holds with the
/// proposed certificate's key: the envelope's and payload's hashes and the signature.
fn dsse_body(entry: &Value) -> Option<Vec<u8>> {
    let proposed = &entry["spec"]["proposedContent"];
    let envelope_text = proposed["envelope"].as_str()?;
    let envelope: Value = serde_json::from_str(envelope_text).ok()?;
    let verifier = proposed["verifiers"].as_array()?.first()?.as_str()?;
    let pem = STANDARD.decode(verifier).ok()?;
    let der = shipit::sigstore::x509::pem_der(&String::from_utf8_lossy(&pem))?;
    let cert = Certificate::from_der(&der).ok()?;
    let spki = cert.tbs_certificate.subject_public_key_info.to_der().ok()?;
    let key = VerifyingKey::from_public_key_der(&spki).ok()?;
    let payload = STANDARD.decode(envelope["payload"].as_str()?).ok()?;
    let payload_type = envelope["payloadType"].as_str()?;
    let [signature] = envelope["signatures"].as_array()?.as_slice() else {
        return None;
    };
    let sig_b64 = signature["sig"].as_str()?;
    let sig = p256::ecdsa::Signature::from_der(&STANDARD.decode(sig_b64).ok()?).ok()?;
    let pae = shipit::provenance::dsse::pae(payload_type, &payload);
    p256::ecdsa::signature::Verifier::verify(&key, &pae, &sig).ok()?;
    let body = json!({
        "apiVersion": "0.0.1", "kind": "dsse",
        "spec": {
            "envelopeHash": { "algorithm": "sha256", "value": hex::encode(Sha256::digest(envelope_text.as_bytes())) },
            "payloadHash": { "algorithm": "sha256", "value": hex::encode(Sha256::digest(&payload)) },
            "signatures": [{ "signature": sig_b64, "verifier": verifier }],
        },
    });
    Some(canonical(&body).into_bytes())
}

/// Appends a canonical body to the log; the answer Rekor gives for it.
fn append(state: &Mutex<State>, body: Vec<u8>) -> (u16, Value) {
    let mut state = state.lock().unwrap();
    state.leaves.push(leaf_hash(&body));
    let index = state.leaves.len() - 1;
    let size = state.leaves.len();
    let root = tree_root(&state.leaves);
    let path = audit_path(index, &state.leaves);
    let id = log_id(state.rekor.verifying_key());
    let note = format!(
        "rekor.shipit.test - 1\n{size}\n{}\n",
        STANDARD.encode(&root)
    );
    let note_signature: DerSignature = state.rekor.sign(note.as_bytes());
    let mut signed_note = id[..4].to_vec();
    signed_note.extend_from_slice(note_signature.as_bytes());
    let checkpoint = format!(
        "{note}\n\u{2014} rekor.shipit.test {}\n",
        STANDARD.encode(signed_note)
    );
    let integrated = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let set_payload = format!(
        "{{\"body\":\"{}\",\"integratedTime\":{integrated},\"logID\":\"{}\",\"logIndex\":{index}}}",
        STANDARD.encode(&body),
        hex::encode(&id)
    );
    let set: DerSignature = state.rekor.sign(set_payload.as_bytes());
    let uuid = hex::encode(leaf_hash(&body));
    (
        201,
        json!({ uuid: {
            "body": STANDARD.encode(&body),
            "integratedTime": integrated,
            "logID": hex::encode(&id),
            "logIndex": index,
            "verification": {
                "signedEntryTimestamp": STANDARD.encode(set.as_bytes()),
                "inclusionProof": {
                    "checkpoint": checkpoint,
                    "hashes": path.iter().map(hex::encode).collect::<Vec<_>>(),
                    "logIndex": index,
                    "rootHash": hex::encode(&root),
                    "treeSize": size,
                },
            },
        }}),
    )
}
