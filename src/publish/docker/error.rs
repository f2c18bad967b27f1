//! How `[release.docker]` fails: each variant names what it was doing and keeps the error
//! that stopped it, so the report reads `pushing ghcr.io/acme/demo` / `Caused by: ...`.

use std::path::PathBuf;

use crate::error::Error;
use crate::invalid::Invalid;
use crate::oci::auth::AuthError;
use crate::oci::engine::EngineError;
use crate::oci::registry::RegistryError;
use crate::tasks::KeyError;

/// A failure of the Docker channel.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The cosign key cannot be loaded (exit 2: the pipeline or its variables).
    #[error("[release.docker] sign: cannot load the cosign key")]
    Key(#[source] KeyError),
    /// Keyless signing failed (the token, Fulcio, Rekor, or a bundle that does not check).
    #[error("[release.docker] sign: keyless signing failed")]
    Keyless(#[source] crate::sigstore::sign::SignError),
    /// A credential the pipeline names is missing (exit 2).
    #[error("[release.docker] auth: {0}")]
    Auth(String),
    /// The credentials for a registry cannot be resolved (a broken Docker config, a helper).
    #[error("cannot find the credentials for {registry}")]
    Credentials {
        /// The registry host.
        registry: String,
        /// Why.
        #[source]
        source: AuthError,
    },
    /// A repository or base image is not an image reference.
    #[error("`{reference}` is not an image reference")]
    Reference {
        /// What was written.
        reference: String,
        /// Why.
        #[source]
        source: Invalid,
    },
    /// The local image layout cannot be created, read or written.
    #[error("the image layout {}", .path.display())]
    Layout {
        /// The layout folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file the image holds cannot be read.
    #[error("cannot read {}", .0.display())]
    Read(PathBuf, #[source] std::io::Error),
    /// An image for one platform cannot be assembled.
    #[error("cannot assemble the image")]
    Assemble(#[source] std::io::Error),
    /// The Docker engine's build failed.
    #[error(transparent)]
    Engine(EngineError),
    /// A registry could not be reached or refused a request while doing `doing`.
    #[error("{doing}")]
    Registry {
        /// What was asked of it: `pushing ghcr.io/acme/demo`.
        doing: String,
        /// Its answer (boxed: a registry error is large, and rare).
        #[source]
        source: Box<RegistryError>,
    },
    /// The base image is not usable: no image for a platform, or one for another platform.
    #[error("base image {base}: {why}")]
    Base {
        /// The base's reference.
        base: String,
        /// What is wrong with it.
        why: String,
    },
    /// The base image's manifest or config is not the JSON it should be.
    #[error("base image {base}: not a valid image document")]
    BaseDocument {
        /// The base's reference.
        base: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A blocking task panicked (a bug in shipit).
    #[error("internal error: {0}")]
    Internal(String),
}

impl DockerError {
    /// A registry failure while doing `doing`.
    pub fn registry(doing: impl Into<String>) -> impl FnOnce(RegistryError) -> DockerError {
        let doing = doing.into();
        move |source| DockerError::Registry {
            doing,
            source: Box::new(source),
        }
    }

    /// A reference that does not parse.
    pub fn reference(reference: &str) -> impl FnOnce(Invalid) -> DockerError + '_ {
        move |source| DockerError::Reference {
            reference: reference.to_string(),
            source,
        }
    }
}

impl From<DockerError> for Error {
    fn from(e: DockerError) -> Self {
        match e {
            DockerError::Key(_) | DockerError::Auth(_) => Error::Usage(crate::error::chain(&e)),
            DockerError::Internal(why) => Error::Internal(why),
            other => Error::work(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::ExitCode;

    #[test]
    fn a_registry_failure_says_what_was_being_done_and_keeps_the_answer_as_its_cause() {
        let refused = RegistryError::Io("connection reset".into());
        let error = DockerError::registry("pushing 127.0.0.1:5000/acme/demo")(refused);
        assert_eq!(
            crate::error::chain(&error),
            format!(
                "pushing 127.0.0.1:5000/acme/demo: {}",
                RegistryError::Io("connection reset".into())
            )
        );
        let error = Error::from(error);
        assert_eq!(error.exit_code(), ExitCode::Failed);
        assert_eq!(error.causes().len(), 1);
    }

    #[test]
    fn a_missing_credential_is_a_usage_error() {
        let error = Error::from(DockerError::Auth("`REGISTRY_PASSWORD` is not set".into()));
        assert_eq!(error.exit_code(), ExitCode::Usage);
        assert_eq!(
            error.to_string(),
            "[release.docker] auth: `REGISTRY_PASSWORD` is not set"
        );
    }
}
