//! Sigstore, natively: keyless signing (an OIDC identity, a short-lived Fulcio certificate, a
//! Rekor entry, a v0.3 bundle beside each file) and checking such bundles offline against a
//! trusted root and an identity policy.
//!
//! The parts, one way: [`bundle`] is the file format; [`keys`] the ECDSA keys; [`trust`] the
//! trusted root; [`x509`] the certificate checks; [`rekor`] the log's proofs; [`verify`] puts
//! them in order; [`sign`] talks to the services.

pub mod bundle;
pub mod keys;
pub mod rekor;
pub mod sign;
pub mod trust;
pub mod verify;
pub mod x509;

pub use bundle::Bundle;
pub use sign::{Endpoints, Signer};
pub use trust::TrustedRoot;
pub use verify::{Policy, Verified, verify, verify_attestation};
