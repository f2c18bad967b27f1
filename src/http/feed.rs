//! A client for package feeds and indexes served over plain HTTP (the npm registry, NuGet v2
//! feeds, cargo's sparse index): every address is made under the feed's own root, so the credential goes nowhere
//! else; redirects are not followed; answers are read with a size cap; server errors, resets
//! and rate limits are retried with backoff inside a bounded total wait.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use url::Url;

use crate::retry::{self, Budget, Verdict};

/// Attempts per request.
const MAX_ATTEMPTS: u32 = 5;
/// Total time retries of one feed may wait.
const MAX_WAIT: Duration = Duration::from_secs(180);

/// A feed at a root address, with the header that carries its credential.
pub struct Feed {
    http: reqwest::Client,
    root: Url,
    auth: Option<(HeaderName, HeaderValue)>,
    budget: Budget,
}

/// A final answer.
#[derive(Debug)]
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// Its body, at most the cap the request gave.
    pub body: Bytes,
    /// Its `Location` header, for a redirect (which is never followed for the caller).
    pub location: Option<String>,
}

impl Reply {
    /// The answer as a failure of `what`.
    pub fn refused(&self, what: &str) -> FeedError {
        FeedError::Refused {
            what: what.to_string(),
            status: self.status,
            message: self.message(),
        }
    }

    /// The body as the JSON document `what` reads.
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, FeedError> {
        serde_json::from_slice(&self.body).map_err(|source| FeedError::Document {
            what: what.to_string(),
            source,
        })
    }

    /// The body as text, for messages (cut short).
    pub fn message(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let value: Option<serde_json::Value> = serde_json::from_str(&text).ok();
        let said = value
            .as_ref()
            .and_then(|v| v.get("error").or_else(|| v.get("message")))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| text.trim().to_owned());
        said.chars().take(300).collect()
    }
}

/// Why a feed request did not get a final answer.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The feed's address or credential is unusable.
    #[error("{0}")]
    Setup(String),
    /// Every attempt failed.
    #[error("{what}: gave up after {attempts} attempts: {last}")]
    GaveUp {
        /// What was being done.
        what: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// A credential the channel needs is not set.
    #[error("[release.{channel}] needs {what} in ${var}")]
    Credential {
        /// The channel.
        channel: String,
        /// What the credential is: `a registry token`.
        what: String,
        /// The variable that should hold it.
        var: String,
    },
    /// The feed gave a final answer that is not success.
    #[error("{what}: the feed answered {status} {message}")]
    Refused {
        /// What was being done.
        what: String,
        /// Its status.
        status: StatusCode,
        /// What it said (cut short).
        message: String,
    },
    /// The feed's answer is not the document it should be.
    #[error("{what}: not the document the feed should send")]
    Document {
        /// What was being done.
        what: String,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
}

impl From<FeedError> for crate::error::Error {
    fn from(e: FeedError) -> Self {
        match e {
            // A missing credential is the user's to set (exit 2); the rest failed work.
            FeedError::Credential { .. } => crate::error::Error::Usage(e.to_string()),
            other => crate::error::Error::work(other),
        }
    }
}

/// A request body.
pub enum Upload {
    /// No body.
    None,
    /// JSON.
    Json(serde_json::Value),
    /// `multipart/form-data` with one file part named `field`.
    File {
        /// The form field's name.
        field: &'static str,
        /// The file name sent.
        file_name: String,
        /// Its bytes.
        bytes: Bytes,
    },
}

impl Feed {
    /// A client for the feed at `root` (`https://registry.npmjs.org/`), sending `auth` (a
    /// header name and its secret value) with every request. `what` names the feed in errors.
    pub fn new(
        what: &str,
        root: &str,
        auth: Option<(&'static str, String)>,
    ) -> Result<Feed, FeedError> {
        let root = root_url(root).ok_or_else(|| {
            FeedError::Setup(format!(
                "bad {what} address `{root}`: expected https://HOST[/PATH]"
            ))
        })?;
        let auth = match auth {
            Some((name, secret)) => {
                crate::secrets::register(&secret);
                let mut value = HeaderValue::from_str(&secret).map_err(|_| {
                    FeedError::Setup(format!(
                        "the {what} credential holds characters a header cannot carry"
                    ))
                })?;
                value.set_sensitive(true);
                Some((HeaderName::from_static(name), value))
            }
            None => None,
        };
        let http = crate::http::builder()
            // A redirect must not carry the credential elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| {
                FeedError::Setup(format!(
                    "cannot set up the {what} client: {}",
                    crate::http::describe(&e)
                ))
            })?;
        Ok(Feed {
            http,
            root,
            auth,
            budget: Budget::new(MAX_WAIT),
        })
    }

    /// The feed's root address.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The address of `path` under the root; `path` is already escaped.
    pub fn url(&self, path: &str) -> Url {
        let mut url = self.root.clone();
        let joined = format!("{}{}", self.root.path(), path.trim_start_matches('/'));
        url.set_path(&joined);
        url
    }

    /// One request, retried through server errors, resets and rate limits; the answer's body
    /// is read up to `cap` bytes.
    pub async fn send(
        &self,
        what: &str,
        method: Method,
        url: &Url,
        upload: &Upload,
        cap: usize,
    ) -> Result<Reply, FeedError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (last, wait) = match self.send_once(method.clone(), url, upload, cap).await {
                Ok(reply) => {
                    match retry::classify(
                        reply.0.status,
                        &reply.1,
                        &String::from_utf8_lossy(&reply.0.body),
                        attempt,
                    ) {
                        Verdict::Final => return Ok(reply.0),
                        Verdict::After(wait) => {
                            (format!("{} {}", reply.0.status, reply.0.message()), wait)
                        }
                    }
                }
                Err(failure) => (failure, retry::backoff(attempt)),
            };
            if attempt >= MAX_ATTEMPTS || !self.budget.spend(wait) {
                return Err(FeedError::GaveUp {
                    what: what.to_owned(),
                    attempts: attempt,
                    last,
                });
            }
            tracing::debug!(what, attempt, ?wait, %last, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn send_once(
        &self,
        method: Method,
        url: &Url,
        upload: &Upload,
        cap: usize,
    ) -> Result<(Reply, http::HeaderMap), String> {
        let mut request = self.http.request(method, url.clone());
        if let Some((name, value)) = &self.auth {
            request = request.header(name, value.clone());
        }
        request = match upload {
            Upload::None => request,
            Upload::Json(value) => request.json(value),
            Upload::File {
                field,
                file_name,
                bytes,
            } => {
                let part = reqwest::multipart::Part::stream(bytes.clone())
                    .file_name(file_name.clone())
                    .mime_str("application/octet-stream")
                    .map_err(|e| crate::http::describe(&e))?;
                request.multipart(reqwest::multipart::Form::new().part(*field, part))
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| crate::http::describe(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = crate::http::read_capped(response, cap)
            .await
            .map_err(|e| e.to_string())?;
        let location = headers
            .get(http::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        Ok((
            Reply {
                status,
                body,
                location,
            },
            headers,
        ))
    }
}

/// The credential a channel's section names: the value of `var`, registered with the masker;
/// unset or blank is a usage error naming the variable.
pub fn credential(var: &str, channel: &str, what: &str) -> Result<String, FeedError> {
    let value = std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| FeedError::Credential {
            channel: channel.to_string(),
            what: what.to_string(),
            var: var.to_string(),
        })?;
    crate::secrets::register(&value);
    Ok(value)
}

/// `text` as a feed root: http(s), a host, no query or fragment, ending in `/`.
fn root_url(text: &str) -> Option<Url> {
    let mut url = Url::parse(text.trim()).ok()?;
    if !matches!(url.scheme(), "https" | "http")
        || !url.has_host()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Some(url)
}

/// Whether `text` is a usable feed address (for `shipit check`).
pub fn is_root_url(text: &str) -> bool {
    root_url(text).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_stay_under_the_root() {
        let feed = Feed::new("npm registry", "http://127.0.0.1:4873/npm", None).unwrap();
        assert_eq!(feed.root().as_str(), "http://127.0.0.1:4873/npm/");
        assert_eq!(
            feed.url("@acme%2fdemo").as_str(),
            "http://127.0.0.1:4873/npm/@acme%2fdemo"
        );
        assert_eq!(
            feed.url("/api/v2/package").as_str(),
            "http://127.0.0.1:4873/npm/api/v2/package"
        );
        // A path from data cannot climb out of the root or change host.
        assert!(
            feed.url("../../x")
                .as_str()
                .starts_with("http://127.0.0.1:4873/")
        );
        assert_eq!(feed.url("//evil.example/x").host_str(), Some("127.0.0.1"));
    }

    #[test]
    fn roots_with_credentials_queries_or_other_schemes_are_refused() {
        for bad in [
            "ftp://host/",
            "https://user:pw@host/",
            "https://host/?a=1",
            "https://host/#x",
            "host/",
            "",
        ] {
            assert!(!is_root_url(bad), "{bad}");
        }
        assert!(is_root_url("https://registry.npmjs.org"));
        assert!(is_root_url("https://push.chocolatey.org/"));
    }

    #[test]
    fn a_credential_with_a_newline_is_a_setup_error_without_the_value() {
        let Err(FeedError::Setup(message)) = Feed::new(
            "npm registry",
            "https://registry.npmjs.org/",
            Some(("authorization", "Bearer a\nb".into())),
        ) else {
            panic!("accepted");
        };
        assert!(!message.contains("a\nb"), "{message}");
    }
}
