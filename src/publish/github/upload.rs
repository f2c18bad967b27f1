//! Uploading release assets: to the address GitHub names (on a host the token may go to),
//! streamed from disk with their length and type, reconciling what a failed attempt left.

use super::*;

impl Client {
    /// Where `release` takes uploads: its `upload_url` template without `{?name,label}`, on a
    /// host the token may go to.
    fn upload_address(&self, release: &Release) -> Result<Url, GithubError> {
        let base = release
            .upload_url
            .split('{')
            .next()
            .unwrap_or(&release.upload_url);
        let url = Url::parse(base).map_err(|e| {
            GithubError::Setup(format!(
                "GitHub gave an unusable upload address `{base}`: {e}"
            ))
        })?;
        if !self.trusted(&url) {
            return Err(GithubError::Setup(format!(
                "GitHub named {} for uploads, which is neither the API's host ({}) nor its `uploads.` host; not sending the token there",
                url.origin().ascii_serialization(),
                self.api.origin().ascii_serialization()
            )));
        }
        Ok(url)
    }

    /// One upload attempt, streamed from disk with its exact length and type.
    async fn upload_once(&self, address: &Url, file: &Upload) -> Result<Answer, AttemptError> {
        let mut url = address.clone();
        url.query_pairs_mut().append_pair("name", &file.name);
        if let Some(label) = &file.label {
            url.query_pairs_mut().append_pair("label", label);
        }
        let handle = tokio::fs::File::open(&file.path)
            .await
            .map_err(|e| AttemptError::File(file.path.clone(), e))?;
        let stream = tokio_util::io::ReaderStream::with_capacity(handle, 64 * 1024);
        let response = self
            .authorized(self.http.post(url))
            .header(http::header::CONTENT_TYPE, &file.content_type)
            .header(http::header::CONTENT_LENGTH, file.size)
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .map_err(|e| AttemptError::Read(crate::http::ReadError::Transport(e)))?;
        Ok(Self::answer(response).await?)
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
        let address = self.upload_address(release)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.upload_once(&address, file).await {
                Ok(answer) if answer.status == StatusCode::CREATED => {
                    return Self::parse(&answer, &what);
                }
                // 422 already_exists: an earlier attempt landed; reconciled below.
                Ok(answer) if answer.already_exists() => (answer.message(), Duration::ZERO),
                Ok(answer) => {
                    match retry::classify(answer.status, &answer.headers, &answer.body, attempt) {
                        Verdict::Final => return Err(Self::refused(answer, &what)),
                        Verdict::After(wait) => {
                            (format!("{} {}", answer.status, answer.message()), wait)
                        }
                    }
                }
                Err(e) => (crate::error::chain(&e), retry::backoff(attempt)),
            };
            {
                let _listing = self.reconciling.lock().await;
                if let Some(existing) = self
                    .assets(repo, release.id)
                    .await?
                    .into_iter()
                    .find(|a| a.name == file.name)
                {
                    if flow::is_same(self, repo, &existing, file).await? {
                        return Ok(existing);
                    }
                    self.delete_asset(repo, &existing).await?;
                }
            }
            self.wait(&what, attempt, failure).await?;
        }
    }
}

impl Client {
    /// The SHA-256 of an asset's bytes, downloaded and hashed as they stream (for an asset GitHub
    /// reports no digest for). The API answers with a redirect to storage, which is followed
    /// once, with the token only when it goes to a host the token may go to; no more than the
    /// asset's size is read.
    pub async fn asset_sha256(&self, repo: &str, asset: &Asset) -> Result<String, GithubError> {
        Ok(self
            .download_asset(repo, asset, &mut std::io::sink())
            .await?
            .unwrap_or_default())
    }

    /// Streams an asset's bytes into `to` (redirect and token as [`Client::asset_sha256`]),
    /// and returns their SHA-256; `None` when GitHub sends more than the asset's size, which
    /// is then not the file, whatever it holds.
    pub async fn download_asset(
        &self,
        repo: &str,
        asset: &Asset,
        to: &mut dyn std::io::Write,
    ) -> Result<Option<String>, GithubError> {
        use sha2::Digest;
        let what = format!("downloading {}", asset.name);
        let failed = |e: reqwest::Error| GithubError::GaveUp {
            what: what.clone(),
            attempts: 1,
            last: crate::http::describe(&e),
        };
        let url = self.endpoint(&format!("/repos/{repo}/releases/assets/{}", asset.id))?;
        let get = |url: Url| {
            let request = self
                .http
                .get(url.clone())
                .header(http::header::ACCEPT, "application/octet-stream");
            if self.trusted(&url) {
                self.authorized(request)
            } else {
                request
            }
        };
        let mut response = get(url.clone()).send().await.map_err(failed)?;
        if response.status().is_redirection() {
            let target = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .ok_or_else(|| GithubError::Api {
                    what: what.clone(),
                    status: response.status().as_u16(),
                    message: "a redirect without a usable Location".into(),
                })?;
            response = get(target).send().await.map_err(failed)?;
        }
        if !response.status().is_success() {
            let answer = Self::answer(response)
                .await
                .map_err(|e| GithubError::GaveUp {
                    what: what.clone(),
                    attempts: 1,
                    last: e.to_string(),
                })?;
            return Err(Self::refused(answer, &what));
        }
        let mut hasher = sha2::Sha256::new();
        let mut read = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            read += chunk.len() as u64;
            if read > asset.size {
                return Ok(None);
            }
            hasher.update(&chunk);
            to.write_all(&chunk).map_err(|e| GithubError::GaveUp {
                what: what.clone(),
                attempts: 1,
                last: e.to_string(),
            })?;
        }
        Ok(Some(hex::encode(hasher.finalize())))
    }
}

/// Why one upload attempt got no answer (retried).
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    /// The file to upload could not be opened.
    #[error("cannot read {}", .0.display())]
    File(std::path::PathBuf, #[source] std::io::Error),
    /// The request or its answer broke off.
    #[error(transparent)]
    Read(#[from] crate::http::ReadError),
}
