//! Requests to a registry: sending with the right credentials (to its own origin only),
//! answering authentication challenges, fetching and caching tokens; and the small helpers
//! that read its answers.

use super::*;

impl Registry {
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(header::HeaderName, String)],
        body: Body,
        scope: &str,
    ) -> Result<reqwest::Response, RegistryError> {
        self.send_allowing(method, path, headers, body, scope, &[])
            .await
    }

    /// Sends a request, answering one authentication challenge; statuses in `allowed` (besides
    /// 2xx) are returned rather than turned into errors.
    pub(super) async fn send_allowing(
        &self,
        method: Method,
        path: &str,
        headers: &[(header::HeaderName, String)],
        body: Body,
        scope: &str,
        allowed: &[u16],
    ) -> Result<reqwest::Response, RegistryError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| RegistryError::Io(e.to_string()))?;
        let mut challenged = false;
        loop {
            let mut request = self.http.request(method.clone(), url.clone());
            for (name, value) in headers {
                request = request.header(name, value);
            }
            // Credentials go to the registry's own origin only, never to a host an upload
            // `Location` or a `Link` names.
            let same_origin = url.origin() == self.base.origin();
            if same_origin && let Some(auth) = self.authorization(scope).await? {
                request = request.header(header::AUTHORIZATION, auth);
            }
            request = self.attach(request, &body).await?;
            let response = request.send().await.map_err(|e| self.transport(e))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !challenged && same_origin {
                challenged = true;
                let challenge = header_str(response.headers(), "www-authenticate")
                    .and_then(|h| parse_challenge(&h));
                self.answer(challenge, scope).await?;
                continue;
            }
            if status.is_success() || allowed.contains(&status.as_u16()) {
                return Ok(response);
            }
            let detail = error_detail(response).await;
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(self.unauthorized(detail));
            }
            if let Verdict::After(_) = retry::classify(status, &HeaderMap::new(), &detail, 0) {
                tracing::debug!("{} {} answered {status}", method, url.path());
            }
            return Err(RegistryError::Status {
                registry: self.name.clone(),
                method: method.to_string(),
                path: url.path().to_string(),
                status: status.as_u16(),
                detail: if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                },
            });
        }
    }

    pub(super) fn unauthorized(&self, detail: String) -> RegistryError {
        RegistryError::Unauthorized {
            registry: self.name.clone(),
            who: match &self.credentials {
                Some(c) => format!("the credentials for `{}` from {}", c.username, c.source),
                None => "anonymous access (no credentials found: set SHIPIT_REGISTRY_USERNAME and SHIPIT_REGISTRY_PASSWORD, `auth` in [release.docker], or `docker login`)".into(),
            },
            detail: if detail.is_empty() { "unauthorized".into() } else { detail },
        }
    }

    pub(super) async fn attach(
        &self,
        request: reqwest::RequestBuilder,
        body: &Body,
    ) -> Result<reqwest::RequestBuilder, RegistryError> {
        Ok(match body {
            Body::Empty => request.header(header::CONTENT_LENGTH, 0),
            Body::Bytes(bytes) => request.body(bytes.clone()),
            Body::File { path, offset, len } => {
                let mut file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| RegistryError::Io(format!("{}: {e}", path.display())))?;
                file.seek(std::io::SeekFrom::Start(*offset))
                    .await
                    .map_err(|e| RegistryError::Io(e.to_string()))?;
                let sent = self.sent.clone();
                let stream =
                    tokio_util::io::ReaderStream::with_capacity(file.take(*len), 256 * 1024)
                        .inspect_ok(move |chunk| {
                            sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        });
                request
                    .header(header::CONTENT_LENGTH, *len)
                    .body(reqwest::Body::wrap_stream(stream))
            }
        })
    }

    /// The `Authorization` value for a request in `scope`. Once the registry wants tokens, one
    /// is fetched for each new scope up front, so no upload is sent only to be refused.
    pub(super) async fn authorization(&self, scope: &str) -> Result<Option<String>, RegistryError> {
        let mut state = self.auth.lock().await;
        Ok(match &mut *state {
            AuthState::Basic => self.credentials.as_ref().map(Credentials::basic),
            AuthState::Bearer {
                realm,
                service,
                tokens,
            } => {
                if !tokens.contains_key(scope) {
                    let token = self.fetch_token(realm, service.as_deref(), scope).await?;
                    tokens.insert(scope.to_string(), token);
                }
                tokens.get(scope).map(|t| format!("Bearer {t}"))
            }
            AuthState::Unknown => None,
        })
    }

    /// Learns from a 401: switches to Basic, or fetches a token for the scope.
    pub(super) async fn answer(
        &self,
        challenge: Option<Challenge>,
        scope: &str,
    ) -> Result<(), RegistryError> {
        let mut state = self.auth.lock().await;
        match challenge {
            Some(Challenge::Basic) => {
                if self.credentials.is_none() {
                    return Err(self.unauthorized(String::new()));
                }
                *state = AuthState::Basic;
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                let token = self.fetch_token(&realm, service.as_deref(), scope).await?;
                let tokens = match std::mem::take(&mut *state) {
                    AuthState::Bearer {
                        tokens, realm: r, ..
                    } if r == realm => tokens,
                    _ => HashMap::new(),
                };
                let mut tokens = tokens;
                tokens.insert(scope.to_string(), token);
                *state = AuthState::Bearer {
                    realm,
                    service,
                    tokens,
                };
            }
            None => return Err(self.unauthorized("no usable WWW-Authenticate challenge".into())),
        }
        Ok(())
    }

    /// Gets a token from the realm (OAuth2 refresh for identity tokens, else GET with Basic).
    pub(super) async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, RegistryError> {
        #[derive(Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
        let mut url = Url::parse(realm).map_err(|e| RegistryError::Transport {
            registry: self.name.clone(),
            detail: format!("bad token realm `{realm}`: {e}"),
        })?;
        if url.scheme() != "https" && !self.insecure {
            return Err(self.unauthorized(format!(
                "the token realm `{realm}` is not https; credentials are sent to https realms only \
                 (`insecure = true` allows plain http, on a network you trust)"
            )));
        }
        let request = match self
            .credentials
            .as_ref()
            .and_then(Credentials::identity_token)
        {
            Some(refresh) => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_string()),
                    ("client_id", "shipit".into()),
                    ("refresh_token", refresh.to_string()),
                ];
                if let Some(service) = service {
                    form.push(("service", service.into()));
                }
                form.push(("scope", scopes.join(" ")));
                let body = form
                    .iter()
                    .map(|(k, v)| format!("{k}={}", urlencode(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                self.http
                    .post(url)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body)
            }
            None => {
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(service) = service {
                        query.append_pair("service", service);
                    }
                    for scope in &scopes {
                        query.append_pair("scope", scope);
                    }
                }
                let request = self.http.get(url);
                match &self.credentials {
                    Some(c) => request.header(header::AUTHORIZATION, c.basic()),
                    None => request,
                }
            }
        };
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        if !status.is_success() {
            let detail = error_detail(response).await;
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(self.unauthorized(detail));
            }
            return Err(RegistryError::Status {
                registry: self.name.clone(),
                method: "GET".into(),
                path: "token".into(),
                status: status.as_u16(),
                detail: format!(": {detail}"),
            });
        }
        let body = self
            .read_capped(response, MAX_SMALL_BODY, "a token")
            .await?;
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
            self.unauthorized(format!("the token endpoint answered something else: {e}"))
        })?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.unauthorized("the token endpoint returned no token".into()))?;
        crate::secrets::register(&token);
        Ok(token)
    }
}

/// The token scope for pushing to a repository.
pub(super) fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// The token scope for reading a repository.
pub(super) fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The `rel="next"` target of a `Link` header, as a path on the registry: `</v2/x/tags/list?
/// last=a>; rel="next"`. Anything malformed is no next page.
pub fn next_page(link: &str) -> Option<String> {
    crate::http::next_link(link).map(|target| target.trim_start_matches('/').to_string())
}

pub(super) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

pub(super) fn content_length(headers: &HeaderMap) -> u64 {
    header_str(headers, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The distribution spec's error messages, else the body's first line.
pub(super) async fn error_detail(response: reqwest::Response) -> String {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(Deserialize)]
    struct ErrorItem {
        code: Option<String>,
        message: Option<String>,
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Ok(Some(chunk)) = stream.try_next().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_SMALL_BODY {
            body.truncate(MAX_SMALL_BODY);
            break;
        }
    }
    let text = String::from_utf8_lossy(&body);
    if let Ok(errors) = serde_json::from_str::<Errors>(&text) {
        return errors
            .errors
            .iter()
            .map(|e| match (&e.code, &e.message) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.clone(),
                (None, Some(m)) => m.clone(),
                (None, None) => String::new(),
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}
