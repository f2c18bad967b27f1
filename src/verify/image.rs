//! The cosign signatures of an image, read from its registry: the manifest a reference names
//! and, for an index, each platform manifest must carry a signature by the given key whose
//! payload names that digest in that repository.

use std::path::Path;
use std::time::Duration;

use super::Finding;
use crate::cosign::CosignPublicKey;
use crate::error::Error;
use crate::oci::layout::Layout;
use crate::oci::reference::Reference;
use crate::oci::registry::{Options, Registry};
use crate::oci::{auth, signature};

/// Checks the signatures of `reference` with the cosign public key in `key`, or keyless
/// against `keyless`'s trusted root and identity; `insecure` for a registry that speaks plain
/// HTTP.
pub fn image(
    reference: &str,
    key: Option<&Path>,
    keyless: &super::sigstore::Options,
    insecure: bool,
) -> Result<Vec<Finding>, Error> {
    let key = match key {
        Some(key) => {
            let text = std::fs::read_to_string(key)
                .map_err(|e| Error::Usage(format!("cannot read {}: {e}", key.display())))?;
            Some(
                CosignPublicKey::from_pem(&text)
                    .map_err(|e| Error::Usage(format!("{}: {e}", key.display())))?,
            )
        }
        None if keyless.policy.is_set() => None,
        None => {
            return Err(Error::Usage(
                "--image needs the cosign public key (--key cosign.pub), or for keyless signatures who must have signed (--certificate-identity or --github-repo, --certificate-oidc-issuer)".into(),
            ));
        }
    };
    let root = keyless.root()?;
    let verifier = match &key {
        Some(key) => signature::Verifier::Key(key),
        None => signature::Verifier::Keyless {
            root: &root,
            policy: &keyless.policy,
        },
    };
    let reference = Reference::parse(reference).map_err(|e| Error::Usage(e.to_string()))?;
    let credentials = auth::resolve(&reference.registry, None).map_err(Error::work)?;
    let registry = Registry::new(
        &reference.registry,
        reference.api_host(),
        credentials,
        &Options {
            insecure,
            max_retry: Duration::from_secs(60),
        },
    )
    .map_err(|e| Error::Failed(e.to_string()))?;
    let work = tempfile::tempdir().map_err(|e| Error::Failed(e.to_string()))?;
    let layout = Layout::create(work.path()).map_err(|e| Error::Failed(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Failed(e.to_string()))?;
    let name = reference.name();
    runtime.block_on(async {
        let failed = |e: crate::oci::registry::RegistryError| Error::Failed(e.to_string());
        let digests = signature::digests_of(&registry, &reference.repository, reference.target())
            .await
            .map_err(failed)?;
        let mut findings = Vec::new();
        for digest in digests {
            let repo = signature::Repository {
                registry: &registry,
                path: &reference.repository,
                name: &name,
            };
            let checked = signature::check(&repo, &digest, &verifier, &layout)
                .await
                .map_err(failed)?;
            findings.push(Finding {
                file: format!("{name}@{digest}"),
                check: "image signature",
                by: crate::cosign::signature_tag(&digest),
                ok: checked.ok,
                detail: checked.detail,
            });
        }
        Ok(findings)
    })
}
