//! The signing certificate: its chain to a trusted Fulcio, its embedded certificate-
//! transparency timestamp, its use (code signing) and the identity it names.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use x509_cert::Certificate;
use x509_cert::der::{self, Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName};

use super::keys::{Hash, PublicKey, key_id};
use super::trust::{Authority, TrustedRoot};

const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
const SCT_LIST: &str = "1.3.6.1.4.1.11129.2.4.2";
/// Fulcio's OIDC issuer extension (a DER UTF8String).
const ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
/// The first, deprecated issuer extension (the raw string).
const ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";

/// A certificate, read.
pub struct Cert {
    /// Parsed.
    pub cert: Certificate,
    /// As given.
    pub der: Vec<u8>,
}

impl Cert {
    /// Parses DER.
    pub fn from_der(der: &[u8]) -> Result<Cert, String> {
        Certificate::from_der(der)
            .map(|cert| Cert {
                cert,
                der: der.to_vec(),
            })
            .map_err(|e| format!("not an X.509 certificate: {e}"))
    }

    /// Its public key.
    pub fn public_key(&self) -> Result<PublicKey, String> {
        let spki = self.spki()?;
        PublicKey::from_spki(&spki)
    }

    fn spki(&self) -> Result<Vec<u8>, String> {
        self.cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| e.to_string())
    }

    /// Whether `time` is inside its validity.
    pub fn valid_at(&self, time: SystemTime) -> bool {
        let v = &self.cert.tbs_certificate.validity;
        v.not_before.to_system_time() <= time && time <= v.not_after.to_system_time()
    }

    /// Checks it is signed by `issuer`'s key and names `issuer` as its issuer.
    fn signed_by(&self, issuer: &Cert) -> Result<(), String> {
        if self.cert.tbs_certificate.issuer != issuer.cert.tbs_certificate.subject {
            return Err("its issuer is not the authority's certificate".into());
        }
        let hash = match self.cert.signature_algorithm.oid.to_string().as_str() {
            ECDSA_SHA256 => Hash::Sha256,
            ECDSA_SHA384 => Hash::Sha384,
            other => return Err(format!("signature algorithm {other} is not ECDSA")),
        };
        let tbs = self
            .cert
            .tbs_certificate
            .to_der()
            .map_err(|e| e.to_string())?;
        let signature = self
            .cert
            .signature
            .as_bytes()
            .ok_or("a signature of partial bytes")?;
        issuer.public_key()?.verify(hash, &tbs, signature)
    }

    fn extension(&self, oid: &str) -> Option<&x509_cert::ext::Extension> {
        self.cert
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id.to_string() == oid)
    }

    fn decoded<T: for<'a> Decode<'a>>(&self, oid: &str) -> Option<T> {
        T::from_der(self.extension(oid)?.extn_value.as_bytes()).ok()
    }

    fn is_ca(&self) -> bool {
        self.decoded::<BasicConstraints>("2.5.29.19")
            .is_some_and(|b| b.ca)
    }

    /// The identity it names: its one email or URI subject alternative name.
    pub fn identity(&self) -> Option<String> {
        let names = self.decoded::<SubjectAltName>("2.5.29.17")?;
        names.0.iter().find_map(|name| match name {
            GeneralName::Rfc822Name(email) => Some(email.to_string()),
            GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
            _ => None,
        })
    }

    /// The OIDC issuer Fulcio recorded.
    pub fn oidc_issuer(&self) -> Option<String> {
        if let Some(ext) = self.extension(ISSUER_V2) {
            return der::asn1::Utf8StringRef::from_der(ext.extn_value.as_bytes())
                .ok()
                .map(|t| t.as_str().to_owned());
        }
        let raw = self.extension(ISSUER_V1)?.extn_value.as_bytes();
        String::from_utf8(raw.to_vec()).ok()
    }

    /// Checks it may sign code: digital signature, the code-signing extended use, not a CA.
    pub fn for_code_signing(&self) -> Result<(), String> {
        let usage = self
            .decoded::<KeyUsage>("2.5.29.15")
            .ok_or("no key usage")?;
        if !usage.digital_signature() {
            return Err("its key usage is not digital signature".into());
        }
        let extended = self
            .decoded::<ExtendedKeyUsage>("2.5.29.37")
            .ok_or("no extended key usage")?;
        if !extended.0.iter().any(|oid| oid.to_string() == CODE_SIGNING) {
            return Err("its extended key usage is not code signing".into());
        }
        if self.is_ca() {
            return Err("it is a CA certificate".into());
        }
        Ok(())
    }
}

/// Checks `leaf` chains to one of the root's authorities valid at `time`, every certificate
/// valid then; returns that authority's chain.
pub fn chain<'a>(
    leaf: &Cert,
    root: &'a TrustedRoot,
    time: SystemTime,
) -> Result<(&'a Authority, Vec<Cert>), String> {
    if !leaf.valid_at(time) {
        return Err("the certificate was not valid when the log took the signature".into());
    }
    let mut last = String::from("no certificate authority in the trusted root");
    for authority in root.authorities.iter().filter(|a| a.valid.contains(time)) {
        let certs: Vec<Cert> = match authority.chain.iter().map(|d| Cert::from_der(d)).collect() {
            Ok(certs) => certs,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let Some(first) = certs.first() else { continue };
        let mut result = leaf.signed_by(first);
        for pair in certs.windows(2) {
            result = result.and_then(|_| pair[0].signed_by(&pair[1]));
        }
        if let Some(root_cert) = certs.last() {
            result = result.and_then(|_| root_cert.signed_by(root_cert));
        }
        result = result.and_then(|_| {
            certs
                .iter()
                .all(|c| c.valid_at(time) && c.is_ca())
                .then_some(())
                .ok_or_else(|| "a certificate of the chain is not a CA valid then".to_owned())
        });
        match result {
            Ok(()) => return Ok((authority, certs)),
            Err(e) => last = e,
        }
    }
    Err(format!(
        "the certificate does not chain to the trusted root: {last}"
    ))
}

/// Checks the certificate's one embedded SCT: signed by a CT log of the root over the
/// precertificate (the certificate without its SCT list) and the issuer's key id.
pub fn sct(leaf: &Cert, issuer: &Cert, root: &TrustedRoot) -> Result<(), String> {
    let ext = leaf
        .extension(SCT_LIST)
        .ok_or("no certificate transparency timestamp")?;
    let list = der::asn1::OctetStringRef::from_der(ext.extn_value.as_bytes())
        .map_err(|e| format!("SCT list: {e}"))?;
    let scts = tls_list(list.as_bytes())?;
    let [sct] = scts.as_slice() else {
        return Err(format!(
            "{} certificate transparency timestamps, not one",
            scts.len()
        ));
    };
    let mut tbs = leaf.cert.tbs_certificate.clone();
    if let Some(extensions) = &mut tbs.extensions {
        extensions.retain(|e| e.extn_id.to_string() != SCT_LIST);
    }
    let tbs = tbs.to_der().map_err(|e| e.to_string())?;
    let issuer_id = key_id(&issuer.spki()?);
    let mut signed = vec![sct.version, 0];
    signed.extend_from_slice(&sct.timestamp.to_be_bytes());
    signed.extend_from_slice(&1u16.to_be_bytes());
    signed.extend_from_slice(&issuer_id);
    let len = u32::try_from(tbs.len()).map_err(|_| "a certificate too long")?;
    signed.extend_from_slice(&len.to_be_bytes()[1..]);
    signed.extend_from_slice(&tbs);
    signed.extend_from_slice(&(sct.extensions.len() as u16).to_be_bytes());
    signed.extend_from_slice(&sct.extensions);
    if sct.hash != 4 {
        return Err("an SCT not over SHA-256".into());
    }
    let log = root
        .ct_logs
        .iter()
        .find(|l| l.id == sct.log_id)
        .ok_or("its SCT is from a log the trusted root does not know")?;
    log.key
        .verify(Hash::Sha256, &signed, &sct.signature)
        .map_err(|e| format!("its SCT: {e}"))
}

/// One SCT, as RFC 6962 lays it out.
struct Sct {
    version: u8,
    log_id: [u8; 32],
    timestamp: u64,
    extensions: Vec<u8>,
    hash: u8,
    signature: Vec<u8>,
}

/// A TLS `SignedCertificateTimestampList`.
fn tls_list(bytes: &[u8]) -> Result<Vec<Sct>, String> {
    let mut r = Reader(bytes);
    let mut list = Reader(r.vec16()?);
    let mut scts = Vec::new();
    while !list.0.is_empty() {
        let mut s = Reader(list.vec16()?);
        let version = s.take(1)?[0];
        let log_id: [u8; 32] = s.take(32)?.try_into().map_err(|_| "log id")?;
        let timestamp = u64::from_be_bytes(s.take(8)?.try_into().map_err(|_| "timestamp")?);
        let extensions = s.vec16()?.to_vec();
        let hash = s.take(1)?[0];
        let _signature_algorithm = s.take(1)?[0];
        let signature = s.vec16()?.to_vec();
        scts.push(Sct {
            version,
            log_id,
            timestamp,
            extensions,
            hash,
            signature,
        });
    }
    Ok(scts)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("a truncated SCT list".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn vec16(&mut self) -> Result<&'a [u8], String> {
        let len = self.take(2)?;
        let len = u16::from_be_bytes([len[0], len[1]]) as usize;
        self.take(len)
    }
}

/// The DER of a PEM certificate.
pub fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    STANDARD.decode(body).ok()
}

/// A DER certificate as PEM.
pub fn der_pem(der: &[u8]) -> String {
    let text = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}
