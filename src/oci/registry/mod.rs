//! A client for the OCI distribution API: blob HEAD, cross-repository mount, monolithic and
//! chunked uploads, manifests, with Basic and Bearer (token) authentication and retries.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http::{HeaderMap, StatusCode, header};
use reqwest::{Method, Url};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::Mutex;

use super::auth::{Challenge, Credentials, parse_challenge};
use crate::retry::{self, Budget, Verdict};

mod transport;

pub use transport::next_page;
use transport::{content_length, header_str, pull_scope, push_scope};

/// Why a registry request failed. Never carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry refused the credentials (or their absence).
    #[error("{registry} refused {who}: {detail}")]
    Unauthorized {
        /// The registry, as written.
        registry: String,
        /// Whose credentials, e.g. `the credentials from SHIPIT_REGISTRY_PASSWORD`.
        who: String,
        /// What it said.
        detail: String,
    },
    /// An unexpected answer.
    #[error("{registry}: {method} {path} answered {status}{detail}")]
    Status {
        /// The registry.
        registry: String,
        /// Request method.
        method: String,
        /// Request path.
        path: String,
        /// Status code.
        status: u16,
        /// Error text from the body, with a leading `: `.
        detail: String,
    },
    /// The registry could not be reached.
    #[error("cannot reach {registry}: {detail}")]
    Transport {
        /// The registry.
        registry: String,
        /// What went wrong.
        detail: String,
    },
    /// The registry names content by another digest than ours.
    #[error("{registry} stored {what} as {theirs}, but its digest is {ours}")]
    DigestMismatch {
        /// The registry.
        registry: String,
        /// Blob or manifest.
        what: String,
        /// The registry's `Docker-Content-Digest`.
        theirs: String,
        /// Ours.
        ours: String,
    },
    /// A local file could not be read or written.
    #[error("{0}")]
    Io(String),
}

impl RegistryError {
    fn retryable(&self) -> bool {
        match self {
            RegistryError::Transport { .. } => true,
            RegistryError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// A request body that can be made again for a retry or an authentication round.
#[derive(Debug, Clone)]
pub enum Body {
    /// Nothing.
    Empty,
    /// Bytes in memory (manifests).
    Bytes(Bytes),
    /// A part of a file, streamed; counted as blob bytes sent.
    File {
        /// The file.
        path: PathBuf,
        /// Where the part starts.
        offset: u64,
        /// Its length.
        len: u64,
    },
}

/// Options for a registry.
#[derive(Debug, Clone)]
pub struct Options {
    /// Plain HTTP instead of HTTPS.
    pub insecure: bool,
    /// Longest total wait for retries.
    pub max_retry: Duration,
}

#[derive(Debug, Default)]
enum AuthState {
    /// No challenge seen yet: requests go without credentials.
    #[default]
    Unknown,
    /// Basic on every request.
    Basic,
    /// Tokens per scope.
    Bearer {
        realm: String,
        service: Option<String>,
        tokens: HashMap<String, String>,
    },
}

/// One registry.
pub struct Registry {
    http: reqwest::Client,
    base: Url,
    name: String,
    credentials: Option<Credentials>,
    auth: Mutex<AuthState>,
    budget: Budget,
    sent: Arc<AtomicU64>,
    insecure: bool,
}

/// The largest manifest or index read (the distribution spec's own limit is 4 MiB).
const MAX_MANIFEST: usize = 4 << 20;
/// The largest token answer or error body read.
const MAX_SMALL_BODY: usize = 1 << 20;
/// The largest page of a tag list.
const MAX_TAG_PAGE: usize = 16 << 20;
/// The most pages of a tag list followed.
const MAX_TAG_PAGES: usize = 10_000;

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Registry({})", self.name)
    }
}

impl Registry {
    /// A client for `host` (with port), named `name` in messages.
    pub fn new(
        name: &str,
        host: &str,
        credentials: Option<Credentials>,
        options: &Options,
    ) -> Result<Registry, RegistryError> {
        let scheme = if options.insecure { "http" } else { "https" };
        let base =
            Url::parse(&format!("{scheme}://{host}/")).map_err(|e| RegistryError::Transport {
                registry: name.into(),
                detail: format!("bad registry address: {e}"),
            })?;
        let http = crate::http::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| RegistryError::Transport {
                registry: name.into(),
                detail: e.to_string(),
            })?;
        Ok(Registry {
            http,
            base,
            name: name.into(),
            credentials,
            auth: Mutex::new(AuthState::Unknown),
            budget: Budget::new(options.max_retry),
            sent: Arc::new(AtomicU64::new(0)),
            insecure: options.insecure,
        })
    }

    /// The registry's name, as written.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Blob bytes sent so far.
    pub fn bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Checks that the registry answers and takes our credentials (`GET /v2/`, then a token
    /// for `repository`), before anything is uploaded.
    pub async fn login(&self, repository: &str) -> Result<(), RegistryError> {
        self.retrying(|| async {
            let scope = push_scope(repository);
            self.send(Method::GET, "v2/", &[], Body::Empty, &scope)
                .await?;
            Ok(())
        })
        .await
    }

    /// The size of a blob when the repository has it.
    pub async fn blob_size(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<u64>, RegistryError> {
        let path = format!("v2/{repository}/blobs/{digest}");
        let Some(response) = self.head(repository, &path, &[]).await? else {
            return Ok(None);
        };
        Ok(Some(
            response
                .content_length()
                .unwrap_or_else(|| content_length(response.headers())),
        ))
    }

    /// Mounts a blob from another repository of the same registry. `Ok(None)` when mounted;
    /// else the upload session the registry opened instead.
    pub async fn mount(
        &self,
        repository: &str,
        digest: &str,
        from: &str,
    ) -> Result<Option<Url>, RegistryError> {
        let path = format!("v2/{repository}/blobs/uploads/?mount={digest}&from={from}");
        let scope = format!("{} repository:{from}:pull", push_scope(repository));
        let response = self
            .send(Method::POST, &path, &[], Body::Empty, &scope)
            .await?;
        if response.status() == StatusCode::CREATED {
            return Ok(None);
        }
        self.location(response.headers(), &path).map(Some)
    }

    /// Uploads a blob from a file: in one request, or in `chunk` sized parts when it is larger.
    pub async fn upload(
        &self,
        repository: &str,
        digest: &str,
        file: &Path,
        size: u64,
        chunk: Option<u64>,
        session: Option<Url>,
    ) -> Result<(), RegistryError> {
        let scope = push_scope(repository);
        let start = format!("v2/{repository}/blobs/uploads/");
        let mut location = match session {
            Some(url) => url,
            None => {
                let response = self
                    .send(Method::POST, &start, &[], Body::Empty, &scope)
                    .await?;
                self.location(response.headers(), &start)?
            }
        };
        let octets = [(header::CONTENT_TYPE, "application/octet-stream".to_string())];
        let mut offset = 0;
        if let Some(chunk) = chunk.filter(|c| *c > 0 && size > *c) {
            while offset < size {
                let len = chunk.min(size - offset);
                let range = format!("{offset}-{}", offset + len - 1);
                let headers = [octets[0].clone(), (header::CONTENT_RANGE, range)];
                let body = Body::File {
                    path: file.into(),
                    offset,
                    len,
                };
                let response = self
                    .send(Method::PATCH, location.as_str(), &headers, body, &scope)
                    .await?;
                location = self.location(response.headers(), location.as_str())?;
                offset += len;
            }
        }
        let mut finish = location.clone();
        finish.query_pairs_mut().append_pair("digest", digest);
        let body = if offset < size {
            Body::File {
                path: file.into(),
                offset,
                len: size - offset,
            }
        } else {
            Body::Empty
        };
        let response = self
            .send(Method::PUT, finish.as_str(), &octets, body, &scope)
            .await?;
        self.check_digest(response.headers(), "the blob", digest)
    }

    /// The digest a manifest reference resolves to, when it exists.
    pub async fn manifest_digest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<String>, RegistryError> {
        let path = format!("v2/{repository}/manifests/{reference}");
        let accept = [(header::ACCEPT, super::MANIFEST_TYPES.join(", "))];
        let Some(response) = self.head(repository, &path, &accept).await? else {
            return Ok(None);
        };
        Ok(header_str(response.headers(), "docker-content-digest"))
    }

    /// `HEAD path`: the answer, or `None` for a 404.
    async fn head(
        &self,
        repository: &str,
        path: &str,
        headers: &[(header::HeaderName, String)],
    ) -> Result<Option<reqwest::Response>, RegistryError> {
        let scope = pull_scope(repository);
        let response = self
            .send_allowing(Method::HEAD, path, headers, Body::Empty, &scope, &[404])
            .await?;
        Ok((response.status() != StatusCode::NOT_FOUND).then_some(response))
    }

    /// Fetches a manifest: its media type and bytes.
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<(String, Bytes), RegistryError> {
        self.retrying(|| async {
            let path = format!("v2/{repository}/manifests/{reference}");
            let accept = [(header::ACCEPT, super::MANIFEST_TYPES.join(", "))];
            let response = self
                .send(
                    Method::GET,
                    &path,
                    &accept,
                    Body::Empty,
                    &pull_scope(repository),
                )
                .await?;
            let media_type = header_str(response.headers(), "content-type").unwrap_or_default();
            let bytes = self
                .read_capped(response, MAX_MANIFEST, "a manifest")
                .await?;
            // A manifest asked for by digest must be the one with that digest.
            if reference.starts_with("sha256:") {
                let got = super::sha256_digest(&bytes);
                if got != reference {
                    return Err(RegistryError::DigestMismatch {
                        registry: self.name.clone(),
                        what: format!("the manifest {reference}"),
                        theirs: got,
                        ours: reference.into(),
                    });
                }
            }
            Ok((media_type, bytes))
        })
        .await
    }

    /// Downloads a blob of `size` bytes into `out` (the caller checks its digest); a registry
    /// sending more than `size` is cut off.
    pub async fn download(
        &self,
        repository: &str,
        digest: &str,
        size: u64,
        out: &mut super::layout::BlobWriter,
    ) -> Result<(), RegistryError> {
        use std::io::Write;
        let path = format!("v2/{repository}/blobs/{digest}");
        let response = self
            .send(
                Method::GET,
                &path,
                &[],
                Body::Empty,
                &pull_scope(repository),
            )
            .await?;
        let mut stream = response.bytes_stream();
        let mut received = 0u64;
        while let Some(chunk) = stream.try_next().await.map_err(|e| self.transport(e))? {
            received = received.saturating_add(chunk.len() as u64);
            if received > size {
                return Err(RegistryError::Io(format!(
                    "{} sent more than the {size} bytes of blob {digest}",
                    self.name
                )));
            }
            out.write_all(&chunk)
                .map_err(|e| RegistryError::Io(e.to_string()))?;
        }
        if received != size {
            return Err(RegistryError::Io(format!(
                "{} sent {received} of the {size} bytes of blob {digest}",
                self.name
            )));
        }
        Ok(())
    }

    /// Stores a manifest under `reference` (a digest or a tag); checks the digest the registry
    /// reports against ours.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<(), RegistryError> {
        let digest = super::sha256_digest(&bytes);
        self.retrying(|| async {
            let path = format!("v2/{repository}/manifests/{reference}");
            let headers = [(header::CONTENT_TYPE, media_type.to_string())];
            let response = self
                .send(
                    Method::PUT,
                    &path,
                    &headers,
                    Body::Bytes(bytes.clone()),
                    &push_scope(repository),
                )
                .await?;
            self.check_digest(
                response.headers(),
                &format!("the manifest {reference}"),
                &digest,
            )
        })
        .await
    }

    /// Every tag of a repository (following `Link` pages); empty when it does not exist.
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        #[derive(Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        let mut tags = Vec::new();
        let mut path = format!("v2/{repository}/tags/list?n=1000");
        let scope = pull_scope(repository);
        let mut visited = std::collections::HashSet::new();
        loop {
            if !visited.insert(path.clone()) || visited.len() > MAX_TAG_PAGES {
                return Err(RegistryError::Io(format!(
                    "{} pages its tag list without end (a `Link` loops or never stops)",
                    self.name
                )));
            }
            let response = self
                .retrying(|| {
                    self.send_allowing(Method::GET, &path, &[], Body::Empty, &scope, &[404])
                })
                .await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Ok(tags);
            }
            let next = header_str(response.headers(), "link").and_then(|link| next_page(&link));
            let body = self
                .read_capped(response, MAX_TAG_PAGE, "a tag list")
                .await?;
            let page: TagList = serde_json::from_slice(&body).map_err(|e| {
                RegistryError::Io(format!(
                    "{} sent a tag list that is not JSON: {e}",
                    self.name
                ))
            })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(next) => path = next,
                None => return Ok(tags),
            }
        }
    }

    /// Deletes a manifest (and with it every tag pointing at it).
    pub async fn delete_manifest(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<(), RegistryError> {
        let path = format!("v2/{repository}/manifests/{digest}");
        let scope = format!("repository:{repository}:delete,pull,push");
        self.retrying(|| self.send(Method::DELETE, &path, &[], Body::Empty, &scope))
            .await?;
        Ok(())
    }

    /// Runs `attempt` again on connection failures and server errors, within the budget.
    pub async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, RegistryError>>,
    {
        let mut n = 0;
        loop {
            match attempt().await {
                Err(e) if e.retryable() => {
                    n += 1;
                    let wait = retry::backoff(n);
                    if !self.budget.spend(wait) {
                        return Err(e);
                    }
                    tracing::debug!("{e}; retrying in {wait:?}");
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    fn check_digest(
        &self,
        headers: &HeaderMap,
        what: &str,
        ours: &str,
    ) -> Result<(), RegistryError> {
        match header_str(headers, "docker-content-digest") {
            Some(theirs) if theirs != ours => Err(RegistryError::DigestMismatch {
                registry: self.name.clone(),
                what: what.into(),
                theirs,
                ours: ours.into(),
            }),
            _ => Ok(()),
        }
    }

    fn location(&self, headers: &HeaderMap, path: &str) -> Result<Url, RegistryError> {
        let location = header_str(headers, "location").ok_or_else(|| RegistryError::Status {
            registry: self.name.clone(),
            method: "POST".into(),
            path: path.into(),
            status: 202,
            detail: ": no Location for the upload".into(),
        })?;
        self.base
            .join(&location)
            .map_err(|e| RegistryError::Io(e.to_string()))
    }

    /// Reads a response body of at most `cap` bytes; a larger one is an error, not a download.
    async fn read_capped(
        &self,
        response: reqwest::Response,
        cap: usize,
        what: &str,
    ) -> Result<Bytes, RegistryError> {
        crate::http::read_capped(response, cap)
            .await
            .map_err(|e| match e {
                crate::http::ReadError::TooBig(_) => {
                    RegistryError::Io(format!("{} sent {what} over {cap} bytes", self.name))
                }
                crate::http::ReadError::Transport(e) => self.transport(e),
            })
    }

    fn transport(&self, e: reqwest::Error) -> RegistryError {
        RegistryError::Transport {
            registry: self.name.clone(),
            detail: crate::http::describe(&e),
        }
    }
}
