//! How `[release.npm]` fails, each failure keeping the error that caused it.

use crate::error::Error;
use crate::http::feed::FeedError;

/// A failure of the npm channel.
#[derive(Debug, thiserror::Error)]
pub enum NpmError {
    /// The registry could not be reached, refused, or answered something else than npm's
    /// documents; or its token is not set.
    #[error(transparent)]
    Feed(#[from] FeedError),
    /// The registry holds this version with other bytes; a published version cannot change.
    #[error(
        "the registry already has {package}@{version} with other contents (integrity {theirs}, this build's {ours}); a published version cannot change: release a new version"
    )]
    Changed {
        /// The package.
        package: String,
        /// Its version.
        version: String,
        /// The integrity the registry states.
        theirs: String,
        /// This build's.
        ours: String,
    },
    /// A binary the manifest records cannot be read.
    #[error("cannot read {0} from dist")]
    Read(String, #[source] std::io::Error),
    /// A package's tarball cannot be written.
    #[error("cannot pack the npm package {0}")]
    Pack(String, #[source] std::io::Error),
}

impl From<NpmError> for Error {
    fn from(e: NpmError) -> Self {
        match e {
            NpmError::Feed(feed) => feed.into(),
            other => Error::work(other),
        }
    }
}
