//! What signs the pushed images, opened once per release: a cosign key, or a keyless signer
//! (the job's OIDC identity certified by Fulcio, each signature recorded in Rekor and checked
//! against the trusted root before it is pushed); and what checks them again afterwards.

use super::DockerError;
use super::plan::ImageSigner;
use crate::oci::layout::Layout;
use crate::oci::push::PushOptions;
use crate::oci::{self, signature};
use crate::sigstore::sign::SignError;
use crate::sigstore::{Policy, Signer, TrustedRoot};

/// A signer, ready.
pub(super) enum Signing {
    /// A cosign key.
    Key(crate::cosign::CosignKey),
    /// Keyless.
    Keyless {
        /// Its certificate for this run.
        signer: Box<Signer>,
        /// What each signature is checked against before it is pushed.
        root: Option<TrustedRoot>,
    },
}

/// The trusted root of a keyless instance: the one named, else the public-good one for the
/// public-good endpoints.
fn root_of(
    endpoints: &crate::sigstore::Endpoints,
    file: Option<&std::path::Path>,
) -> Result<Option<TrustedRoot>, DockerError> {
    let bad = |reason: String| {
        DockerError::Keyless(SignError::Check {
            file: file.map(|f| f.display().to_string()).unwrap_or_default(),
            reason,
        })
    };
    match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| bad(e.to_string()))
            .and_then(|text| TrustedRoot::from_json(&text).map_err(bad))
            .map(Some),
        None if *endpoints == crate::sigstore::Endpoints::default() => {
            Ok(Some(TrustedRoot::public_good()))
        }
        None => Ok(None),
    }
}

impl Signing {
    /// Loads the key, or gets the keyless certificate.
    pub(super) async fn open(signer: &ImageSigner) -> Result<Signing, DockerError> {
        match signer {
            ImageSigner::Key(key) => key
                .load_cosign()
                .map(Signing::Key)
                .map_err(DockerError::Key),
            ImageSigner::Keyless {
                endpoints,
                trusted_root,
            } => Ok(Signing::Keyless {
                signer: Box::new(Signer::new(endpoints).await.map_err(DockerError::Keyless)?),
                root: root_of(endpoints, trusted_root.as_deref())?,
            }),
        }
    }

    /// Signs each of `digests` in `repo`; the signature tags.
    pub(super) async fn sign_all(
        &self,
        repo: &signature::Repository<'_>,
        digests: &[String],
        layout: &Layout,
        options: &PushOptions,
        say: &(dyn Fn(String) + Sync),
        detail: &(dyn Fn(String) + Sync),
    ) -> Result<Vec<String>, DockerError> {
        let mut tags = Vec::new();
        for digest in digests {
            let doing = format!("signing {}@{digest}", repo.name);
            let signed = match self {
                Signing::Key(key) => signature::sign(repo, digest, key, layout, options, detail)
                    .await
                    .map_err(DockerError::registry(doing))?,
                Signing::Keyless { signer, root } => {
                    let payload = signature::payload(repo, digest);
                    let sha256: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&payload).into();
                    let bundle = signer.sign(&sha256).await.map_err(DockerError::Keyless)?;
                    if let Some(root) = root {
                        crate::sigstore::verify(&bundle, &sha256, root, &Policy::default())
                            .map_err(|reason| {
                                DockerError::Keyless(SignError::Check {
                                    file: format!("{}@{digest}", repo.name),
                                    reason,
                                })
                            })?;
                    }
                    let identity = signer.identity().unwrap_or_default();
                    signature::add_keyless(
                        repo,
                        digest,
                        &bundle,
                        signer.chain_pem(),
                        &identity,
                        layout,
                        options,
                        detail,
                    )
                    .await
                    .map_err(DockerError::registry(doing))?
                }
            };
            let tag = crate::cosign::signature_tag(digest);
            say(format!(
                "{} {}@{} ({tag})",
                match signed {
                    signature::Signed::Added => "signed",
                    signature::Signed::Present => "already signed",
                },
                repo.name,
                oci::short(digest)
            ));
            tags.push(tag);
        }
        Ok(tags)
    }
}

/// What checks the signatures again (`release --check`).
pub(super) enum Checking {
    /// The key's public half.
    Key(crate::cosign::CosignPublicKey),
    /// The trusted root; any identity it certifies (who signed is in the finding's detail).
    Keyless(TrustedRoot, Policy),
}

impl Checking {
    /// From the plan's signer.
    pub(super) fn open(signer: &ImageSigner) -> Result<Checking, DockerError> {
        match signer {
            ImageSigner::Key(key) => key
                .load_cosign()
                .map(|k| Checking::Key(k.public()))
                .map_err(DockerError::Key),
            ImageSigner::Keyless {
                endpoints,
                trusted_root,
            } => Ok(Checking::Keyless(
                root_of(endpoints, trusted_root.as_deref())?
                    .unwrap_or_else(TrustedRoot::public_good),
                Policy::default(),
            )),
        }
    }

    /// The verifier to check with.
    pub(super) fn verifier(&self) -> signature::Verifier<'_> {
        match self {
            Checking::Key(key) => signature::Verifier::Key(key),
            Checking::Keyless(root, policy) => signature::Verifier::Keyless { root, policy },
        }
    }
}
