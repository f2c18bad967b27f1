//! GitHub Releases: find or create a draft for the tag, upload every asset (streamed from disk,
//! several at once, retried through server errors, resets and rate limits), publish last.
//! A run stopped at any point can be run again: finished assets are kept, broken ones
//! (`starter`) replaced, and the draft is reused, so the end state is one complete release.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use octocrab::Octocrab;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::manifest::PublishedRelease;
use crate::retry::{self, Budget, Verdict};

mod flow;
mod types;

pub use flow::{ReleaseSpec, is_complete, prune_nightlies, publish};
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
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
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

/// Attempts per request before giving up, whatever the time budget.
const MAX_ATTEMPTS: u32 = 8;

/// The HTTP methods the API calls use.
#[derive(Debug, Clone, Copy)]
enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

/// A connection to the GitHub API, retrying what can be retried.
pub struct Client {
    octo: Octocrab,
    budget: Arc<Budget>,
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
}

impl Client {
    /// A client for `api_url` (`https://api.github.com`, a GitHub Enterprise `/api/v3`, or a
    /// test server) with `token`.
    pub fn new(api_url: &str, token: &str, max_wait: Duration) -> Result<Client, GithubError> {
        let octo = Octocrab::builder()
            .personal_token(token.to_string())
            .base_uri(api_url)
            .map_err(|e| GithubError::Setup(format!("bad GitHub API URL `{api_url}`: {e}")))?
            // A server that stops answering is a failure, not a hang (per read, so large
            // uploads that keep moving are fine).
            .set_connect_timeout(Some(Duration::from_secs(30)))
            .set_read_timeout(Some(Duration::from_secs(120)))
            .set_write_timeout(Some(Duration::from_secs(120)))
            .build()
            .map_err(|e| GithubError::Setup(format!("cannot set up the GitHub client: {e}")))?;
        Ok(Client {
            octo,
            budget: Arc::new(Budget::new(max_wait)),
        })
    }

    /// One JSON request, retried through server errors, resets and rate limits.
    async fn call(
        &self,
        what: &str,
        method: Verb,
        uri: &str,
        body: Option<&Value>,
    ) -> Result<Answer, GithubError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.call_once(method, uri, body, attempt).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => self.wait(what, attempt, failure).await?,
            }
        }
    }

    /// One attempt: the answer when it is final, else why it failed and how long to wait.
    async fn call_once(
        &self,
        method: Verb,
        uri: &str,
        body: Option<&Value>,
        attempt: u32,
    ) -> Result<Answer, (String, Duration)> {
        let result = match method {
            Verb::Get => self.octo._get(uri).await,
            Verb::Post => self.octo._post(uri, body).await,
            Verb::Patch => self.octo._patch(uri, body).await,
            Verb::Delete => self.octo._delete(uri, None::<&()>).await,
        };
        let response = result.map_err(|e| (connection_error(&e), retry::backoff(attempt)))?;
        let (parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(|e| (e.to_string(), retry::backoff(attempt)))?
            .to_bytes();
        let answer = Answer {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        };
        match retry::classify(answer.status, &answer.headers, &answer.body, attempt) {
            Verdict::Final => Ok(answer),
            Verdict::After(wait) => Err((format!("{} {}", answer.status, answer.message()), wait)),
        }
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
            Err(GithubError::Api {
                what: what.to_string(),
                status: answer.status.as_u16(),
                message: answer.message(),
            })
        }
    }

    fn parse<T: for<'de> Deserialize<'de>>(answer: &Answer, what: &str) -> Result<T, GithubError> {
        serde_json::from_str(&answer.body).map_err(|e| GithubError::Api {
            what: what.to_string(),
            status: answer.status.as_u16(),
            message: format!("unexpected answer: {e}"),
        })
    }

    /// The release for `tag`: the published one, else a draft for it, else `None`.
    pub async fn find_release(
        &self,
        repo: &str,
        tag: &str,
    ) -> Result<Option<Release>, GithubError> {
        let what = format!("looking up the release for {tag}");
        let answer = self
            .call(
                &what,
                Verb::Get,
                &format!("/repos/{repo}/releases/tags/{tag}"),
                None,
            )
            .await?;
        if answer.status == StatusCode::OK {
            return Ok(Some(Self::parse(&answer, &what)?));
        }
        Self::expect(answer, &what, &[StatusCode::NOT_FOUND])?;
        // Drafts are not found by tag; they are in the list (newest first).
        let answer = self
            .call(
                &what,
                Verb::Get,
                &format!("/repos/{repo}/releases?per_page=100"),
                None,
            )
            .await?;
        let answer = Self::expect(answer, &what, &[StatusCode::OK])?;
        let releases: Vec<Release> = Self::parse(&answer, &what)?;
        Ok(releases.into_iter().find(|r| r.tag_name == tag && r.draft))
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
        let uri = format!("/repos/{repo}/releases");
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.call_once(Verb::Post, &uri, Some(&body), attempt).await {
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
        });
        if !draft {
            body["make_latest"] = json!(fields.make_latest);
        }
        let answer = self
            .call(
                &what,
                Verb::Patch,
                &format!("/repos/{repo}/releases/{id}"),
                Some(&body),
            )
            .await?;
        let answer = Self::expect(answer, &what, &[StatusCode::OK])?;
        Self::parse(&answer, &what)
    }

    /// The assets on a release.
    pub async fn assets(&self, repo: &str, id: u64) -> Result<Vec<Asset>, GithubError> {
        const PAGE: usize = 100;
        let what = "listing the release's assets";
        let mut all = Vec::new();
        for page in 1.. {
            let answer = self
                .call(
                    what,
                    Verb::Get,
                    &format!("/repos/{repo}/releases/{id}/assets?per_page={PAGE}&page={page}"),
                    None,
                )
                .await?;
            let answer = Self::expect(answer, what, &[StatusCode::OK])?;
            let assets: Vec<Asset> = Self::parse(&answer, what)?;
            let last = assets.len() < PAGE;
            all.extend(assets);
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// Renames an asset.
    pub async fn rename_asset(
        &self,
        repo: &str,
        asset: &Asset,
        name: &str,
    ) -> Result<Asset, GithubError> {
        let what = format!("renaming the asset {} to {name}", asset.name);
        let answer = self
            .call(
                &what,
                Verb::Patch,
                &format!("/repos/{repo}/releases/assets/{}", asset.id),
                Some(&json!({"name": name})),
            )
            .await?;
        let answer = Self::expect(answer, &what, &[StatusCode::OK])?;
        Self::parse(&answer, &what)
    }

    /// Points `tag` at `sha`, creating the tag when it does not exist yet.
    pub async fn move_tag(&self, repo: &str, tag: &str, sha: &str) -> Result<(), GithubError> {
        let what = format!("moving the tag {tag}");
        let answer = self
            .call(
                &what,
                Verb::Patch,
                &format!("/repos/{repo}/git/refs/tags/{tag}"),
                Some(&json!({"sha": sha, "force": true})),
            )
            .await?;
        if answer.status == StatusCode::OK {
            return Ok(());
        }
        let answer = self
            .call(
                &what,
                Verb::Post,
                &format!("/repos/{repo}/git/refs"),
                Some(&json!({"ref": format!("refs/tags/{tag}"), "sha": sha})),
            )
            .await?;
        Self::expect(answer, &what, &[StatusCode::CREATED]).map(|_| ())
    }

    /// Opens a pull request from `head` into `base`; one already open for `head` is fine.
    /// Returns its address when GitHub gives one.
    pub async fn open_pull_request(
        &self,
        repo: &str,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<Option<String>, GithubError> {
        let what = format!("opening a pull request on {repo}");
        let request = json!({"title": title, "head": head, "base": base, "body": body});
        let answer = self
            .call(
                &what,
                Verb::Post,
                &format!("/repos/{repo}/pulls"),
                Some(&request),
            )
            .await?;
        if answer.status == StatusCode::UNPROCESSABLE_ENTITY
            && answer.body.contains("A pull request already exists")
        {
            return Ok(None);
        }
        let answer = Self::expect(answer, &what, &[StatusCode::CREATED])?;
        let value: Value = Self::parse(&answer, &what)?;
        Ok(value["html_url"].as_str().map(str::to_string))
    }

    /// Every release of the repository, drafts included, newest first.
    pub async fn releases(&self, repo: &str) -> Result<Vec<Release>, GithubError> {
        const PER_PAGE: usize = 100;
        let what = "listing the releases".to_string();
        let mut all = Vec::new();
        for page in 1.. {
            let answer = self
                .call(
                    &what,
                    Verb::Get,
                    &format!("/repos/{repo}/releases?per_page={PER_PAGE}&page={page}"),
                    None,
                )
                .await?;
            let answer = Self::expect(answer, &what, &[StatusCode::OK])?;
            let releases: Vec<Release> = Self::parse(&answer, &what)?;
            let last = releases.len() < PER_PAGE;
            all.extend(releases);
            if last {
                break;
            }
        }
        Ok(all)
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
            &format!("/repos/{repo}/git/refs/tags/{tag}"),
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
        let answer = self.call(&what, Verb::Delete, path, None).await?;
        let gone = [
            StatusCode::NO_CONTENT,
            StatusCode::NOT_FOUND,
            StatusCode::UNPROCESSABLE_ENTITY,
        ];
        Self::expect(answer, &what, &gone).map(|_| ())
    }

    /// One upload attempt, streamed from disk with its exact length.
    async fn upload_once(&self, release: &Release, file: &Upload) -> Result<Answer, String> {
        let base = release
            .upload_url
            .split('{')
            .next()
            .unwrap_or(&release.upload_url);
        let mut query = format!("name={}", encode(&file.name));
        if let Some(label) = &file.label {
            query.push_str(&format!("&label={}", encode(label)));
        }
        let handle = tokio::fs::File::open(&file.path)
            .await
            .map_err(|e| format!("cannot read {}: {e}", file.path.display()))?;
        let frames = tokio_util::io::ReaderStream::with_capacity(handle, 256 * 1024)
            .map(|chunk: std::io::Result<Bytes>| chunk.map(http_body::Frame::data));
        let body = octocrab::OctoBody::new(http_body_util::StreamBody::new(frames));
        let request = http::Request::builder()
            .method(Method::POST)
            .uri(format!("{base}?{query}"))
            .header(http::header::CONTENT_TYPE, &file.content_type)
            .header(http::header::CONTENT_LENGTH, file.size)
            .header(http::header::ACCEPT, "application/vnd.github+json")
            .body(body)
            .map_err(|e| e.to_string())?;
        let response = self
            .octo
            .execute(request)
            .await
            .map_err(|e| connection_error(&e))?;
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    /// Uploads `file`, retrying. Before each retry, whatever the failed attempt left under
    /// that name (a `starter`, or a complete asset whose answer was lost) is checked: a
    /// complete one is kept, anything else is deleted.
    pub async fn upload(
        &self,
        repo: &str,
        release: &Release,
        file: &Upload,
    ) -> Result<Asset, GithubError> {
        let what = format!("uploading {}", file.name);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.upload_once(release, file).await {
                Ok(answer) if answer.status == StatusCode::CREATED => {
                    return Self::parse(&answer, &what);
                }
                Ok(answer) => {
                    match retry::classify(answer.status, &answer.headers, &answer.body, attempt) {
                        // 422 already_exists: an earlier attempt landed; reconciled below.
                        Verdict::Final if answer.status != StatusCode::UNPROCESSABLE_ENTITY => {
                            return Err(GithubError::Api {
                                what,
                                status: answer.status.as_u16(),
                                message: answer.message(),
                            });
                        }
                        Verdict::Final => (answer.message(), Duration::ZERO),
                        Verdict::After(wait) => {
                            (format!("{} {}", answer.status, answer.message()), wait)
                        }
                    }
                }
                Err(e) => (e, retry::backoff(attempt)),
            };
            if let Some(existing) = self
                .assets(repo, release.id)
                .await?
                .into_iter()
                .find(|a| a.name == file.name)
            {
                if is_complete(&existing, file) {
                    return Ok(existing);
                }
                self.delete_asset(repo, &existing).await?;
            }
            self.wait(&what, attempt, failure).await?;
        }
    }
}

/// Describes a connection-level failure without the request (which carries no secret, but
/// keeps messages short).
fn connection_error(error: &octocrab::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        // Layers often repeat their cause's text (`client error (Connect)` twice).
        let cause = inner.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
        source = inner.source();
    }
    text
}

/// Percent-encodes a query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The MIME type GitHub should serve a file with.
pub fn content_type(path: &Path) -> &'static str {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        "application/gzip"
    } else if name.ends_with(".zip") {
        "application/zip"
    } else if name.ends_with(".json") {
        "application/json"
    } else if name.ends_with("sums")
        || name.ends_with(".sha256")
        || name.ends_with(".sha512")
        || name.ends_with(".minisig")
        || name.ends_with(".pub")
        || name.ends_with(".txt")
    {
        "text/plain"
    } else {
        "application/octet-stream"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_and_query_encoding() {
        assert_eq!(
            content_type(Path::new("a-1.0-linux.tar.gz")),
            "application/gzip"
        );
        assert_eq!(content_type(Path::new("a.zip")), "application/zip");
        assert_eq!(content_type(Path::new("SHA256SUMS")), "text/plain");
        assert_eq!(
            content_type(Path::new("demo.exe")),
            "application/octet-stream"
        );
        assert_eq!(encode("demo 1.0+x/y"), "demo%201.0%2Bx%2Fy");
    }

    #[test]
    fn complete_means_uploaded_same_size_and_digest() {
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
        assert!(is_complete(&asset("uploaded", 3, None), &file));
        assert!(is_complete(&asset("uploaded", 3, Some("sha256:AB")), &file));
        assert!(!is_complete(
            &asset("uploaded", 3, Some("sha256:cd")),
            &file
        ));
        assert!(!is_complete(&asset("starter", 3, None), &file));
        assert!(!is_complete(&asset("uploaded", 4, None), &file));
    }
}
