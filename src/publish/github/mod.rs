//! GitHub Releases: find or create a draft for the tag, upload every asset (streamed from disk,
//! several at once, retried through server errors, resets and rate limits), publish last.
//! A run stopped at any point can be run again: finished assets are kept, broken ones
//! (`starter`) replaced, and the draft is reused, so the end state is one complete release.
//!
//! The API may live under a path (`https://HOST/api/v3` on GitHub Enterprise Server) and
//! uploads on another host (`uploads.github.com`); the token goes to the API's origin and to
//! an upload host GitHub names only when that host is the API's own or its `uploads.` sibling.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode};
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::manifest::PublishedRelease;
use crate::retry::{self, Budget, Verdict};

mod channel;
pub mod config;
mod encoding;
mod flow;
mod repository;
mod types;
mod upload;

pub use channel::{
    DEFAULT_MAX_RETRY, Github, api_url, asset_url, is_prerelease, max_retry, release_tag,
    server_url, token,
};
pub use encoding::content_type;
use encoding::{encode, encode_ref};
pub use flow::{ReleaseSpec, is_same, prune_nightlies, publish, recheck};
pub use types::{Asset, Release, ReleaseFields, Upload};

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// The token or URL could not be used.
    #[error("{0}")]
    Setup(String),
    /// GitHub answered with an error that retrying cannot fix.
    #[error("GitHub answered {status} to {what}: {message}")]
    Api {
        /// What was being done.
        what: String,
        /// HTTP status.
        status: u16,
        /// GitHub's message.
        message: String,
    },
    /// Retries ran out (time budget or attempts).
    #[error("gave up on {what} after {attempts} attempts: {last}")]
    GaveUp {
        /// What was being done.
        what: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// A local file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The rolling nightly would replace files of an immutable release.
    #[error(
        "the `{tag}` release is immutable, so its files cannot be replaced nor its tag moved; set `nightly = {{ mode = \"tagged\" }}` in [release.github] for a release per nightly"
    )]
    Immutable {
        /// The release's tag.
        tag: String,
    },
    /// An asset with the same name but other content is already on the release.
    #[error(
        "asset `{name}` is already on the release with other content ({found}; here: {expected}); set `replace = true` in [release.github] to replace it"
    )]
    Conflict {
        /// Asset name.
        name: String,
        /// What GitHub has: size, and digest when GitHub reports one.
        found: String,
        /// What is here: size and digest.
        expected: String,
    },
}

/// Every GitHub failure is failed work (exit 1): a setup problem here is met while publishing
/// (an upload host GitHub names), after the token was checked.
impl From<GithubError> for crate::error::Error {
    fn from(e: GithubError) -> Self {
        crate::error::Error::work(e)
    }
}

/// Attempts per request before giving up, whatever the time budget.
const MAX_ATTEMPTS: u32 = 8;
/// The most a JSON answer may be (100 releases with long notes fit easily).
const MAX_ANSWER: usize = 64 << 20;
/// Pages followed through `Link` before a list is called endless.
const MAX_PAGES: usize = 1000;
/// Items per page GitHub allows at most.
const PER_PAGE: usize = 100;
/// The REST API version shipit speaks.
const API_VERSION: &str = "2022-11-28";

/// A connection to the GitHub API, retrying what can be retried.
pub struct Client {
    http: reqwest::Client,
    /// The API root, without a trailing slash (`https://api.github.com`,
    /// `https://HOST/api/v3`).
    api: Url,
    /// `Bearer <token>`; none for anonymous reads (`shipit reproduce` of a public release).
    auth: Option<HeaderValue>,
    budget: Arc<Budget>,
    /// Held while an upload lists a release's assets and deletes a broken one: GitHub pages
    /// lists by offset, so a delete by a concurrent upload would shift an asset past the page
    /// another one is reading, and a finished file would look missing and go up again.
    reconciling: tokio::sync::Mutex<()>,
}

/// A response: status, headers, body text.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn message(&self) -> String {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|v| {
                let message = v["message"].as_str()?.to_string();
                let codes: Vec<String> = v["errors"]
                    .as_array()
                    .map(|errors| {
                        errors
                            .iter()
                            .filter_map(|e| e["code"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                Some(if codes.is_empty() {
                    message
                } else {
                    format!("{message} ({})", codes.join(", "))
                })
            })
            .unwrap_or_else(|| self.body.chars().take(200).collect())
    }

    /// GitHub's 422 saying the thing to create is already there.
    fn already_exists(&self) -> bool {
        self.status == StatusCode::UNPROCESSABLE_ENTITY
            && (self.body.contains("already_exists") || self.body.contains("already exists"))
    }
}

/// What a request sends.
enum Body<'a> {
    None,
    Json(&'a Value),
}

impl Client {
    /// A client for `api_url` (`https://api.github.com`, a GitHub Enterprise `/api/v3`, or a
    /// test server) with `token`.
    pub fn new(api_url: &str, token: &str, max_wait: Duration) -> Result<Client, GithubError> {
        let api = Url::parse(api_url.trim_end_matches('/'))
            .ok()
            .filter(|url| matches!(url.scheme(), "https" | "http") && url.has_host())
            .filter(|url| url.query().is_none() && url.fragment().is_none())
            .ok_or_else(|| {
                GithubError::Setup(format!(
                    "bad GitHub API URL `{api_url}`: expected https://HOST[/PATH]"
                ))
            })?;
        let auth = match token {
            "" => None,
            token => {
                let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                    GithubError::Setup(
                        "the GitHub token holds characters a header cannot carry".into(),
                    )
                })?;
                auth.set_sensitive(true);
                Some(auth)
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static(API_VERSION),
        );
        let http = crate::http::builder()
            .default_headers(headers)
            // Answers are followed by hand: a redirect must not carry the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            // A server that stops answering is a failure, not a hang (per read, so large
            // uploads that keep moving are fine).
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| {
                GithubError::Setup(format!(
                    "cannot set up the GitHub client: {}",
                    crate::http::describe(&e)
                ))
            })?;
        Ok(Client {
            http,
            api,
            auth,
            budget: Arc::new(Budget::new(max_wait)),
            reconciling: tokio::sync::Mutex::new(()),
        })
    }

    /// `request` with the token, when there is one.
    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Some(auth) => request.header(http::header::AUTHORIZATION, auth.clone()),
            None => request,
        }
    }

    /// The address of `path` (`/repos/...`, with its query) under the API root.
    fn endpoint(&self, path: &str) -> Result<Url, GithubError> {
        let text = format!("{}{path}", self.api.as_str().trim_end_matches('/'));
        Url::parse(&text).map_err(|e| GithubError::Setup(format!("bad API address {text}: {e}")))
    }

    /// Whether the token may go to `url`: the API's own origin, or an upload host GitHub
    /// named that is the API's host or its `uploads.` sibling, over the same scheme.
    fn trusted(&self, url: &Url) -> bool {
        if url.scheme() != self.api.scheme() {
            return false;
        }
        let (Some(host), Some(api)) = (url.host_str(), self.api.host_str()) else {
            return false;
        };
        if url.origin() == self.api.origin() {
            return true;
        }
        let sibling = api
            .strip_prefix("api.")
            .is_some_and(|domain| host.strip_prefix("uploads.") == Some(domain));
        host == api || sibling
    }

    /// One JSON request, retried through server errors, resets and rate limits.
    async fn call(
        &self,
        what: &str,
        method: Method,
        url: &Url,
        body: Body<'_>,
    ) -> Result<Answer, GithubError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.call_once(method.clone(), url, &body, attempt).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => self.wait(what, attempt, failure).await?,
            }
        }
    }

    /// One attempt: the answer when it is final, else why it failed and how long to wait.
    async fn call_once(
        &self,
        method: Method,
        url: &Url,
        body: &Body<'_>,
        attempt: u32,
    ) -> Result<Answer, (String, Duration)> {
        let mut request = self.authorized(self.http.request(method, url.clone()));
        if let Body::Json(value) = body {
            request = request.json(value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| (crate::http::describe(&e), retry::backoff(attempt)))?;
        let answer = Self::answer(response)
            .await
            .map_err(|e| (e.to_string(), retry::backoff(attempt)))?;
        match retry::classify(answer.status, &answer.headers, &answer.body, attempt) {
            Verdict::Final => Ok(answer),
            Verdict::After(wait) => Err((format!("{} {}", answer.status, answer.message()), wait)),
        }
    }

    /// Reads a response whole (bounded).
    async fn answer(response: reqwest::Response) -> Result<Answer, crate::http::ReadError> {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = crate::http::read_capped(response, MAX_ANSWER).await?;
        Ok(Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    /// Sleeps before the next attempt, or gives up when attempts or the time budget run out.
    async fn wait(
        &self,
        what: &str,
        attempt: u32,
        (last, wait): (String, Duration),
    ) -> Result<(), GithubError> {
        if attempt >= MAX_ATTEMPTS || !self.budget.spend(wait) {
            return Err(GithubError::GaveUp {
                what: what.to_string(),
                attempts: attempt,
                last,
            });
        }
        tracing::debug!(what, attempt, ?wait, %last, "retrying");
        tokio::time::sleep(wait).await;
        Ok(())
    }

    fn expect(answer: Answer, what: &str, ok: &[StatusCode]) -> Result<Answer, GithubError> {
        if ok.contains(&answer.status) {
            Ok(answer)
        } else {
            Err(Self::refused(answer, what))
        }
    }

    fn refused(answer: Answer, what: &str) -> GithubError {
        GithubError::Api {
            what: what.to_string(),
            status: answer.status.as_u16(),
            message: answer.message(),
        }
    }

    fn parse<T: for<'de> Deserialize<'de>>(answer: &Answer, what: &str) -> Result<T, GithubError> {
        serde_json::from_str(&answer.body).map_err(|e| GithubError::Api {
            what: what.to_string(),
            status: answer.status.as_u16(),
            message: format!("unexpected answer: {e}"),
        })
    }

    /// Every item of a list, following `Link: <...>; rel="next"` on the API's own origin.
    async fn list<T: for<'de> Deserialize<'de>>(
        &self,
        what: &str,
        path: &str,
    ) -> Result<Vec<T>, GithubError> {
        let mut url = self.endpoint(path)?;
        let mut seen = HashSet::new();
        let mut all = Vec::new();
        loop {
            if !seen.insert(url.clone()) || seen.len() > MAX_PAGES {
                return Err(GithubError::Api {
                    what: what.to_string(),
                    status: 200,
                    message: "the list pages without end (its `Link` loops or never stops)".into(),
                });
            }
            let answer = self.call(what, Method::GET, &url, Body::None).await?;
            let answer = Self::expect(answer, what, &[StatusCode::OK])?;
            let page: Vec<T> = Self::parse(&answer, what)?;
            all.extend(page);
            let next = answer
                .headers
                .get(http::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(crate::http::next_link)
                .and_then(|target| self.api.join(target).ok());
            match next {
                Some(next) if next.origin() == self.api.origin() => url = next,
                Some(next) => {
                    return Err(GithubError::Api {
                        what: what.to_string(),
                        status: 200,
                        message: format!(
                            "the next page is on another host ({}); not following it with the token",
                            next.origin().ascii_serialization()
                        ),
                    });
                }
                None => return Ok(all),
            }
        }
    }

    /// The release for `tag`: the published one, else a draft for it, else `None`.
    pub async fn find_release(
        &self,
        repo: &str,
        tag: &str,
    ) -> Result<Option<Release>, GithubError> {
        let what = format!("looking up the release for {tag}");
        let url = self.endpoint(&format!("/repos/{repo}/releases/tags/{}", encode(tag)))?;
        let answer = self.call(&what, Method::GET, &url, Body::None).await?;
        if answer.status == StatusCode::OK {
            return Ok(Some(Self::parse(&answer, &what)?));
        }
        Self::expect(answer, &what, &[StatusCode::NOT_FOUND])?;
        // Drafts are not found by tag; they are in the list.
        Ok(self
            .releases(repo)
            .await?
            .into_iter()
            .find(|r| r.tag_name == tag && r.draft))
    }

    /// Creates a draft release.
    pub async fn create_draft(
        &self,
        repo: &str,
        fields: &ReleaseFields,
    ) -> Result<Release, GithubError> {
        let what = format!("creating the draft release {}", fields.tag);
        let body = json!({
            "tag_name": fields.tag,
            "target_commitish": fields.commit,
            "name": fields.name,
            "body": fields.notes,
            "draft": true,
            "prerelease": fields.prerelease,
        });
        // Creating is not idempotent: after a failure whose answer may have been lost, look
        // for the draft before trying again, so a retry never makes a second one.
        let url = self.endpoint(&format!("/repos/{repo}/releases"))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .call_once(Method::POST, &url, &Body::Json(&body), attempt)
                .await
            {
                Ok(answer) if answer.already_exists() => {
                    // A published release holds the tag: someone else released it meanwhile.
                    if let Some(release) = self.find_release(repo, &fields.tag).await? {
                        return Ok(release);
                    }
                    return Err(Self::refused(answer, &what));
                }
                Ok(answer) => {
                    let answer = Self::expect(answer, &what, &[StatusCode::CREATED])?;
                    return Self::parse(&answer, &what);
                }
                Err(failure) => {
                    self.wait(&what, attempt, failure).await?;
                    if let Some(release) = self.find_release(repo, &fields.tag).await? {
                        return Ok(release);
                    }
                }
            }
        }
    }

    /// Updates title, notes and flags; publishes when `draft` is false.
    pub async fn update(
        &self,
        repo: &str,
        id: u64,
        fields: &ReleaseFields,
        draft: bool,
    ) -> Result<Release, GithubError> {
        let what = format!("publishing the release {}", fields.tag);
        let mut body = json!({
            "name": fields.name,
            "body": fields.notes,
            "draft": draft,
            "prerelease": fields.prerelease,
            "target_commitish": fields.commit,
        });
        if !draft {
            body["make_latest"] = json!(fields.make_latest);
        }
        let url = self.endpoint(&format!("/repos/{repo}/releases/{id}"))?;
        let answer = self
            .call(&what, Method::PATCH, &url, Body::Json(&body))
            .await?;
        let answer = Self::expect(answer, &what, &[StatusCode::OK])?;
        Self::parse(&answer, &what)
    }

    /// The assets on a release.
    pub async fn assets(&self, repo: &str, id: u64) -> Result<Vec<Asset>, GithubError> {
        self.list(
            "listing the release's assets",
            &format!("/repos/{repo}/releases/{id}/assets?per_page={PER_PAGE}"),
        )
        .await
    }

    /// Renames an asset.
    pub async fn rename_asset(
        &self,
        repo: &str,
        asset: &Asset,
        name: &str,
    ) -> Result<Asset, GithubError> {
        let what = format!("renaming the asset {} to {name}", asset.name);
        let url = self.endpoint(&format!("/repos/{repo}/releases/assets/{}", asset.id))?;
        let answer = self
            .call(
                &what,
                Method::PATCH,
                &url,
                Body::Json(&json!({"name": name})),
            )
            .await?;
        let answer = Self::expect(answer, &what, &[StatusCode::OK])?;
        Self::parse(&answer, &what)
    }

    /// Every release of the repository, drafts included, newest first.
    pub async fn releases(&self, repo: &str) -> Result<Vec<Release>, GithubError> {
        self.list(
            "listing the releases",
            &format!("/repos/{repo}/releases?per_page={PER_PAGE}"),
        )
        .await
    }

    /// Deletes a release and then its tag (either already gone is fine).
    pub async fn delete_release(&self, repo: &str, release: &Release) -> Result<(), GithubError> {
        let tag = &release.tag_name;
        self.delete(
            &format!("the release {tag}"),
            &format!("/repos/{repo}/releases/{}", release.id),
        )
        .await?;
        self.delete(
            &format!("the tag {tag}"),
            &format!("/repos/{repo}/git/refs/tags/{}", encode_ref(tag)),
        )
        .await
    }

    /// Deletes an asset (already gone is fine).
    pub async fn delete_asset(&self, repo: &str, asset: &Asset) -> Result<(), GithubError> {
        self.delete(
            &format!("the asset {}", asset.name),
            &format!("/repos/{repo}/releases/assets/{}", asset.id),
        )
        .await
    }

    /// `DELETE path`; a thing already gone (404, or 422 for a tag) is fine.
    async fn delete(&self, thing: &str, path: &str) -> Result<(), GithubError> {
        let what = format!("deleting {thing}");
        let url = self.endpoint(path)?;
        let answer = self.call(&what, Method::DELETE, &url, Body::None).await?;
        let gone = [
            StatusCode::NO_CONTENT,
            StatusCode::NOT_FOUND,
            StatusCode::UNPROCESSABLE_ENTITY,
        ];
        Self::expect(answer, &what, &gone).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_to_the_api_and_its_upload_host_only() {
        let client = |api: &str| Client::new(api, "t0ken", Duration::from_secs(1)).unwrap();
        let url = |text: &str| Url::parse(text).unwrap();
        let dotcom = client("https://api.github.com");
        assert!(dotcom.trusted(&url(
            "https://uploads.github.com/repos/o/r/releases/1/assets"
        )));
        assert!(dotcom.trusted(&url("https://api.github.com/repos/o/r")));
        assert!(!dotcom.trusted(&url(
            "http://uploads.github.com/repos/o/r/releases/1/assets"
        )));
        assert!(!dotcom.trusted(&url("https://uploads.github.com.evil.io/x")));
        assert!(!dotcom.trusted(&url("https://evil.io/uploads.github.com")));
        let enterprise = client("https://ghe.example.com/api/v3/");
        assert!(enterprise.trusted(&url(
            "https://ghe.example.com/api/uploads/repos/o/r/releases/1/assets"
        )));
        assert!(!enterprise.trusted(&url("https://uploads.example.com/x")));
        assert_eq!(
            enterprise.endpoint("/repos/o/r/releases").unwrap().as_str(),
            "https://ghe.example.com/api/v3/repos/o/r/releases"
        );
        assert!(Client::new("ftp://x", "t", Duration::ZERO).is_err());
        assert!(Client::new("https://x/api?q=1", "t", Duration::ZERO).is_err());
    }

    #[test]
    fn same_means_uploaded_and_the_same_digest_never_the_size_alone() {
        let file = Upload {
            name: "a".into(),
            label: None,
            path: "a".into(),
            size: 3,
            sha256: "ab".into(),
            content_type: "text/plain".into(),
        };
        let asset = |state: &str, size, digest: Option<&str>| Asset {
            id: 1,
            name: "a".into(),
            size,
            state: state.into(),
            browser_download_url: String::new(),
            digest: digest.map(str::to_string),
        };
        // Nothing listens there: an asset without a digest must be downloaded to be compared.
        let client = Client::new("http://127.0.0.1:9", "t", Duration::ZERO).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let same = |a: Asset| runtime.block_on(is_same(&client, "o/r", &a, &file));
        assert!(same(asset("uploaded", 3, Some("sha256:AB"))).unwrap());
        assert!(!same(asset("uploaded", 3, Some("sha256:cd"))).unwrap());
        assert!(!same(asset("starter", 3, None)).unwrap());
        assert!(!same(asset("uploaded", 4, None)).unwrap());
        assert!(same(asset("uploaded", 3, None)).is_err());
    }
}
