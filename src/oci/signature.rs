//! Image signatures the way cosign stores them, so `cosign verify --key` and shipit read the
//! same thing: for a manifest digest `sha256:<hex>`, an image tagged `sha256-<hex>.sig` in the
//! same repository whose layers are simple signing payloads (naming that digest) with the
//! signature in the `dev.cosignproject.cosign/signature` annotation. Signing adds a layer to
//! what is there (another key's signatures are kept); the same payload and key give the same
//! signature, so signing again changes nothing.

use std::collections::BTreeMap;

use serde_json::json;

use super::layout::Layout;
use super::push::{self, PushOptions};
use super::registry::{Registry, RegistryError};
use super::{CONFIG, Descriptor, ImageManifest, MANIFEST};
use crate::cosign::{self, CosignKey, CosignPublicKey, PAYLOAD_MEDIA_TYPE, SIGNATURE_ANNOTATION};

/// The largest payload layer read back.
const MAX_PAYLOAD: u64 = 1 << 20;

/// What signing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed {
    /// The signature image gained this signature.
    Added,
    /// It held this very signature already.
    Present,
}

/// The signature image's manifest under `tag`, when there is one.
async fn existing(
    registry: &Registry,
    repository: &str,
    tag: &str,
) -> Result<Option<ImageManifest>, RegistryError> {
    if registry.manifest_digest(repository, tag).await?.is_none() {
        return Ok(None);
    }
    let (_, bytes) = registry.manifest(repository, tag).await?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| RegistryError::Io(format!("the signature image {tag} is not a manifest: {e}")))
}

/// Downloads a small blob into `layout` (payloads are tiny; a larger one is refused).
async fn fetch(
    registry: &Registry,
    repository: &str,
    layout: &Layout,
    blob: &Descriptor,
) -> Result<Vec<u8>, RegistryError> {
    let io = |e: std::io::Error| RegistryError::Io(e.to_string());
    if blob.size > MAX_PAYLOAD {
        return Err(RegistryError::Io(format!(
            "a signature payload of {} bytes (at most {MAX_PAYLOAD})",
            blob.size
        )));
    }
    if !layout.has(blob) {
        let mut writer = layout.writer().map_err(io)?;
        registry
            .download(repository, &blob.digest, blob.size, &mut writer)
            .await?;
        let got = writer.commit(&blob.media_type).map_err(io)?;
        if got.digest != blob.digest {
            return Err(RegistryError::Io(format!(
                "blob {} arrived with digest {}",
                blob.digest, got.digest
            )));
        }
    }
    layout.read(&blob.digest).map_err(io)
}

/// Where signatures live: a repository of a registry, by its path there and by the
/// `registry/repository` name payloads carry.
pub struct Repository<'a> {
    /// The registry.
    pub registry: &'a Registry,
    /// The repository's path on it (`acme/demo`).
    pub path: &'a str,
    /// `registry/repository`, as payloads name it.
    pub name: &'a str,
}

/// Signs `digest` in `repo`, pushing the signature image.
pub async fn sign(
    repo: &Repository<'_>,
    digest: &str,
    key: &CosignKey,
    layout: &Layout,
    options: &PushOptions,
    say: &(dyn Fn(String) + Sync),
) -> Result<Signed, RegistryError> {
    let io = |e: std::io::Error| RegistryError::Io(e.to_string());
    let payload = cosign::payload(repo.name, digest);
    let signature = key.sign(&payload);
    let mut layer = layout.put(PAYLOAD_MEDIA_TYPE, &payload).map_err(io)?;
    layer
        .annotations
        .insert(SIGNATURE_ANNOTATION.to_owned(), signature);
    let same = layer.clone();
    add_layer(
        repo,
        digest,
        layer,
        &|old| *old == same,
        layout,
        options,
        say,
    )
    .await
}

/// cosign's annotation of a keyless signature's certificate (PEM).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// cosign's annotation of the certificate's chain (PEM).
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
/// cosign's annotation of Rekor's promise (its legacy bundle: the signed entry timestamp and
/// the entry).
pub const REKOR_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// The whole Sigstore bundle (v0.3, with the inclusion proof the legacy one lacks), which
/// shipit and Sigstore's clients check offline against a trusted root.
pub const BUNDLE_ANNOTATION: &str = "dev.shipit.sigstore/bundle";

/// The payload a signature of `digest` in `repo` signs (keyless signers sign its SHA-256).
pub fn payload(repo: &Repository<'_>, digest: &str) -> Vec<u8> {
    cosign::payload(repo.name, digest)
}

/// Adds a keyless signature of `digest` (`bundle`, over [`payload`]; `chain` the issuing
/// chain as PEM) to its signature image. One by the same identity already there is kept, so
/// a re-run adds none.
#[allow(clippy::too_many_arguments)]
pub async fn add_keyless(
    repo: &Repository<'_>,
    digest: &str,
    bundle: &crate::sigstore::Bundle,
    chain: &str,
    identity: &str,
    layout: &Layout,
    options: &PushOptions,
    say: &(dyn Fn(String) + Sync),
) -> Result<Signed, RegistryError> {
    use base64::Engine;
    let io = |e: std::io::Error| RegistryError::Io(e.to_string());
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = payload(repo, digest);
    let mut layer = layout.put(PAYLOAD_MEDIA_TYPE, &payload).map_err(io)?;
    let (Some(signature), [entry]) = (
        &bundle.message_signature,
        bundle.verification_material.tlog_entries.as_slice(),
    ) else {
        return Err(RegistryError::Io(
            "a keyless signature without its log entry".into(),
        ));
    };
    let certificate =
        crate::sigstore::x509::der_pem(&bundle.verification_material.certificate.raw_bytes.0);
    let promise = entry
        .inclusion_promise
        .as_ref()
        .map(|p| b64.encode(&p.signed_entry_timestamp.0))
        .unwrap_or_default();
    let rekor = json!({
        "SignedEntryTimestamp": promise,
        "Payload": {
            "body": b64.encode(&entry.canonicalized_body.0),
            "integratedTime": entry.integrated_time.0,
            "logIndex": entry.log_index.0,
            "logID": hex::encode(&entry.log_id.key_id.0),
        },
    });
    for (name, value) in [
        (SIGNATURE_ANNOTATION, b64.encode(&signature.signature.0)),
        (CERTIFICATE_ANNOTATION, certificate),
        (CHAIN_ANNOTATION, chain.to_owned()),
        (REKOR_ANNOTATION, rekor.to_string()),
        (
            BUNDLE_ANNOTATION,
            serde_json::to_string(bundle).unwrap_or_default(),
        ),
    ] {
        layer.annotations.insert(name.to_owned(), value);
    }
    let payload_digest = layer.digest.clone();
    let by_identity = |old: &Descriptor| {
        old.digest == payload_digest
            && old
                .annotations
                .get(CERTIFICATE_ANNOTATION)
                .and_then(|pem| crate::sigstore::x509::pem_der(pem))
                .and_then(|der| crate::sigstore::x509::Cert::from_der(&der).ok())
                .and_then(|cert| cert.identity())
                .as_deref()
                == Some(identity)
    };
    add_layer(repo, digest, layer, &by_identity, layout, options, say).await
}

/// Adds `layer` to `digest`'s signature image (the layers there kept), unless one `same`
/// accepts is there already.
async fn add_layer(
    repo: &Repository<'_>,
    digest: &str,
    layer: Descriptor,
    same: &(dyn Fn(&Descriptor) -> bool + Sync),
    layout: &Layout,
    options: &PushOptions,
    say: &(dyn Fn(String) + Sync),
) -> Result<Signed, RegistryError> {
    let tag = cosign::signature_tag(digest);
    let mut layers = Vec::new();
    if let Some(manifest) = existing(repo.registry, repo.path, &tag).await? {
        if manifest.layers.iter().any(same) {
            return Ok(Signed::Present);
        }
        for old in manifest.layers {
            fetch(repo.registry, repo.path, layout, &old).await?;
            layers.push(old);
        }
    }
    layers.push(layer);
    push_layers(repo, &tag, layers, layout, options, say).await?;
    Ok(Signed::Added)
}

/// Pushes an image of `layers` (already in `layout`) with an empty config, the shape cosign
/// gives signature and attachment images, under `tag`.
async fn push_layers(
    repo: &Repository<'_>,
    tag: &str,
    layers: Vec<Descriptor>,
    layout: &Layout,
    options: &PushOptions,
    say: &(dyn Fn(String) + Sync),
) -> Result<(), RegistryError> {
    let io = |e: std::io::Error| RegistryError::Io(e.to_string());
    let config = json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{ "created": "0001-01-01T00:00:00Z" }],
        "os": "",
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>(),
        },
    });
    let config = layout
        .put(CONFIG, config.to_string().as_bytes())
        .map_err(io)?;
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: MANIFEST.to_owned(),
        config,
        layers,
        annotations: BTreeMap::new(),
    };
    let bytes = serde_json::to_vec(&manifest).map_err(|e| RegistryError::Io(e.to_string()))?;
    let root = layout.put(MANIFEST, &bytes).map_err(io)?;
    // Nothing of these small images is in a base image's repository.
    let options = PushOptions {
        mount_from: None,
        ..options.clone()
    };
    push::push(
        repo.registry,
        repo.path,
        layout,
        &root,
        &[tag.to_owned()],
        &options,
        say,
    )
    .await?;
    Ok(())
}

/// The tag cosign attaches an image's SBOM under: `sha256-<hex>.sbom`.
pub fn sbom_tag(digest: &str) -> String {
    format!("{}.sbom", digest.replacen(':', "-", 1))
}

/// Attaches SBOM documents (media type and bytes) to `digest` in `repo`, as `cosign attach
/// sbom` does: an image of one layer per document under [`sbom_tag`]. The same documents
/// give the same image, so attaching again changes nothing. Returns the tag.
pub async fn attach_sboms(
    repo: &Repository<'_>,
    digest: &str,
    documents: &[(String, Vec<u8>)],
    layout: &Layout,
    options: &PushOptions,
    say: &(dyn Fn(String) + Sync),
) -> Result<String, RegistryError> {
    let io = |e: std::io::Error| RegistryError::Io(e.to_string());
    let layers = documents
        .iter()
        .map(|(media_type, bytes)| layout.put(media_type, bytes).map_err(io))
        .collect::<Result<Vec<_>, _>>()?;
    let tag = sbom_tag(digest);
    push_layers(repo, &tag, layers, layout, options, say).await?;
    Ok(tag)
}

/// What checking one digest's signatures found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The digest.
    pub digest: String,
    /// Whether a signature by the key names it.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// How signatures are checked: by a cosign key, or keyless by a trusted root and who must
/// have signed.
pub enum Verifier<'a> {
    /// A cosign public key.
    Key(&'a CosignPublicKey),
    /// Sigstore bundles, checked offline.
    Keyless {
        /// The trusted root.
        root: &'a crate::sigstore::TrustedRoot,
        /// Who must have signed.
        policy: &'a crate::sigstore::Policy,
    },
}

/// Checks the signatures of `digest`: a payload layer whose bytes match its digest, whose
/// signature verifies (with the key, or its Sigstore bundle against the trusted root and
/// policy), and which names this digest in `repo`.
pub async fn check(
    repo: &Repository<'_>,
    digest: &str,
    verifier: &Verifier<'_>,
    layout: &Layout,
) -> Result<Checked, RegistryError> {
    let (registry, repository, reference) = (repo.registry, repo.path, repo.name);
    let tag = cosign::signature_tag(digest);
    let Some(manifest) = existing(registry, repository, &tag).await? else {
        return Ok(Checked {
            digest: digest.to_owned(),
            ok: false,
            detail: format!("no signature image ({tag})"),
        });
    };
    let mut seen = Vec::new();
    for layer in manifest
        .layers
        .iter()
        .filter(|l| l.media_type == PAYLOAD_MEDIA_TYPE)
    {
        let who = match verifier {
            Verifier::Key(key) => {
                let Some(signature) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
                    continue;
                };
                let payload = fetch(registry, repository, layout, layer).await?;
                if key.verify(&payload, signature).is_err() {
                    seen.push("a signature by another key".to_owned());
                    continue;
                }
                (payload, String::new())
            }
            Verifier::Keyless { root, policy } => {
                let Some(bundle) = layer.annotations.get(BUNDLE_ANNOTATION) else {
                    continue;
                };
                let payload = fetch(registry, repository, layout, layer).await?;
                let sha256 = <sha2::Sha256 as sha2::Digest>::digest(&payload);
                let verified = crate::sigstore::Bundle::from_json(bundle)
                    .and_then(|b| crate::sigstore::verify(&b, &sha256, root, policy));
                match verified {
                    Ok(v) => (payload, format!(" by {} (issuer {})", v.identity, v.issuer)),
                    Err(e) => {
                        seen.push(format!("a keyless signature that does not hold: {e}"));
                        continue;
                    }
                }
            }
        };
        let (payload, by) = who;
        let value: serde_json::Value = serde_json::from_slice(&payload).unwrap_or_default();
        let critical = &value["critical"];
        if critical["image"]["docker-manifest-digest"] != digest {
            seen.push(format!(
                "a signed payload for {}",
                critical["image"]["docker-manifest-digest"]
            ));
            continue;
        }
        if critical["identity"]["docker-reference"] != reference {
            seen.push(format!(
                "a signed payload for {}",
                critical["identity"]["docker-reference"]
            ));
            continue;
        }
        return Ok(Checked {
            digest: digest.to_owned(),
            ok: true,
            detail: format!("signed ({tag}){by}"),
        });
    }
    Ok(Checked {
        digest: digest.to_owned(),
        ok: false,
        detail: if seen.is_empty() {
            format!("no signature in {tag}")
        } else {
            format!("no valid signature in {tag}: {}", seen.join("; "))
        },
    })
}

/// The manifests a reference stands for: the digest itself and, for an index, each of its
/// platform manifests.
pub async fn digests_of(
    registry: &Registry,
    repository: &str,
    reference: &str,
) -> Result<Vec<String>, RegistryError> {
    let (media_type, bytes) = registry.manifest(repository, reference).await?;
    let root = super::sha256_digest(&bytes);
    let mut digests = vec![root];
    if media_type.starts_with(super::INDEX) || media_type.starts_with(super::DOCKER_LIST) {
        let index: super::ImageIndex = serde_json::from_slice(&bytes)
            .map_err(|e| RegistryError::Io(format!("{reference}: not an index: {e}")))?;
        digests.extend(index.manifests.into_iter().map(|m| m.digest));
    }
    Ok(digests)
}
