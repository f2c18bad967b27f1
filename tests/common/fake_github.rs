//! A fake of GitHub's REST API for releases, run inside the test process on 127.0.0.1.
//!
//! It answers as GitHub does, from the exchanges recorded in `tests/fixtures/github-recorded/`:
//! the release and asset objects (with `upload_url` pointing back at this server), their
//! headers, `state` of assets, the 422 `already_exists` body, `401 Bad credentials`.
//! Drafts are invisible to `GET .../releases/tags/{tag}`, as on GitHub. Faults can be scripted
//! per request (a status with headers, a reset connection mid-body, a `starter` asset left by
//! a failed upload), and every call is recorded in order.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

const RELEASE_FIXTURE: &str =
    include_str!("../fixtures/github-recorded/release-assets/normalized-fixture.json");
const CONFLICT_FIXTURE: &str =
    include_str!("../fixtures/github-recorded/release-assets-conflict/normalized-fixture.json");

/// An asset as the fake holds it.
#[derive(Debug, Clone)]
pub struct Asset {
    /// Asset id.
    pub id: u64,
    /// File name.
    pub name: String,
    /// Label.
    pub label: Option<String>,
    /// Content type sent on upload.
    pub content_type: String,
    /// `uploaded`, or `starter` for a broken upload.
    pub state: String,
    /// The bytes received.
    pub data: Vec<u8>,
}

/// A release as the fake holds it.
#[derive(Debug, Clone)]
pub struct Release {
    /// Release id.
    pub id: u64,
    /// Tag.
    pub tag_name: String,
    /// Title.
    pub name: Option<String>,
    /// Notes.
    pub body: Option<String>,
    /// Still a draft.
    pub draft: bool,
    /// Marked as a pre-release.
    pub prerelease: bool,
    /// Its assets.
    pub assets: Vec<Asset>,
}

/// A scripted misbehaviour for the next request matching `method` and a path containing `path`.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status, headers and JSON body instead of doing the work.
    Status {
        /// Method to match.
        method: &'static str,
        /// Start of the path to match.
        path: &'static str,
        /// Status code.
        status: u16,
        /// Extra headers.
        headers: Vec<(&'static str, String)>,
        /// JSON body.
        body: Value,
    },
    /// Read this many bytes of an upload's body, keep a `starter` asset, answer 502.
    StarterThen502 {
        /// Bytes to read first.
        after: usize,
    },
    /// Read this many bytes of an upload's body, then reset the connection.
    ResetMidUpload {
        /// Bytes to read first.
        after: usize,
    },
    /// Do the work of the next matching request, then close the connection without answering.
    LoseAnswer {
        /// Method to match.
        method: &'static str,
        /// Start of the path to match.
        path: &'static str,
    },
    /// Hold an upload this long before handling it (to stop a client half-way).
    Stall {
        /// How long.
        seconds: u64,
    },
}

#[derive(Debug, Default)]
struct State {
    releases: Vec<Release>,
    next_id: u64,
    calls: Vec<String>,
    /// When each call arrived, in the order of `calls`.
    times: Vec<std::time::Instant>,
    faults: VecDeque<Fault>,
    pulls: Vec<Value>,
    refs: Vec<(String, String)>,
    /// After every call that changed assets: each release's assets as (name, SHA-256 of data).
    history: Vec<Vec<(String, String)>>,
}

/// The running fake.
#[derive(Clone)]
pub struct FakeGithub {
    /// `http://127.0.0.1:<port>`: the API root (`GITHUB_API_URL`).
    pub url: String,
    /// The token it accepts.
    pub token: String,
    state: Arc<Mutex<State>>,
}

impl FakeGithub {
    /// Starts a fake accepting `token`.
    pub fn start(token: &str) -> FakeGithub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fake = FakeGithub {
            url,
            token: token.to_string(),
            state: Arc::new(Mutex::new(State {
                next_id: 1000,
                ..State::default()
            })),
        };
        let server = fake.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let server = server.clone();
                std::thread::spawn(move || server.serve(stream));
            }
        });
        fake
    }

    /// Queues a fault for a later request.
    pub fn inject(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push_back(fault);
    }

    /// Every call so far, as `METHOD /path`.
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Every call so far with when it arrived, so waits between calls can be asserted.
    pub fn timed_calls(&self) -> Vec<(std::time::Instant, String)> {
        let state = self.state.lock().unwrap();
        state
            .times
            .iter()
            .copied()
            .zip(state.calls.iter().cloned())
            .collect()
    }

    /// The asset lists of the first release after every change, oldest first.
    pub fn history(&self) -> Vec<Vec<(String, String)>> {
        self.state.lock().unwrap().history.clone()
    }

    /// Tags moved or created through the git refs API: (ref, sha).
    pub fn refs(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().refs.clone()
    }

    /// The bodies of every pull request opened.
    pub fn pulls(&self) -> Vec<Value> {
        self.state.lock().unwrap().pulls.clone()
    }

    /// Every release, drafts included.
    pub fn releases(&self) -> Vec<Release> {
        self.state.lock().unwrap().releases.clone()
    }

    /// Adds a published release (and its tag), as an earlier tool might have left.
    pub fn add_release(&self, tag: &str, prerelease: bool) {
        let mut state = self.state.lock().unwrap();
        let id = state.next_id;
        state.next_id += 1;
        state.releases.push(Release {
            id,
            tag_name: tag.to_string(),
            name: Some(tag.to_string()),
            body: None,
            draft: false,
            prerelease,
            assets: Vec::new(),
        });
        state
            .refs
            .push((format!("refs/tags/{tag}"), "0".repeat(40)));
    }

    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        // Keep-alive: serve requests until the client closes.
        while let Some(request) = read_head(&mut reader) {
            let fault = {
                let mut state = self.state.lock().unwrap();
                state
                    .calls
                    .push(format!("{} {}", request.method, request.path));
                state.times.push(std::time::Instant::now());
                let index = state.faults.iter().position(|f| f.matches(&request));
                index.and_then(|i| state.faults.remove(i))
            };
            let response = match fault {
                Some(Fault::ResetMidUpload { after }) => {
                    let _ = read_body(&mut reader, &request, Some(after));
                    let _ = writer.shutdown(Shutdown::Both);
                    return;
                }
                Some(Fault::StarterThen502 { after }) => {
                    let partial = read_body(&mut reader, &request, Some(after)).unwrap_or_default();
                    self.starter(&request, partial);
                    let _ = writer.shutdown(Shutdown::Both);
                    return;
                }
                Some(Fault::LoseAnswer { .. }) => {
                    if let Some(body) = read_body(&mut reader, &request, None) {
                        self.handle(&request, body);
                    }
                    let _ = writer.shutdown(Shutdown::Both);
                    return;
                }
                Some(Fault::Stall { seconds }) => {
                    std::thread::sleep(std::time::Duration::from_secs(seconds));
                    let Some(body) = read_body(&mut reader, &request, None) else {
                        return;
                    };
                    self.handle(&request, body)
                }
                Some(Fault::Status {
                    status,
                    headers,
                    body,
                    ..
                }) => {
                    let _ = read_body(&mut reader, &request, None);
                    (status, headers, body.to_string())
                }
                None => {
                    let Some(body) = read_body(&mut reader, &request, None) else {
                        return;
                    };
                    let response = self.handle(&request, body);
                    if request.method != "GET" {
                        self.snapshot();
                    }
                    response
                }
            };
            if write_response(&mut writer, response).is_err() {
                return;
            }
        }
    }

    fn snapshot(&self) {
        use sha2::Digest;
        let mut state = self.state.lock().unwrap();
        let assets = state
            .releases
            .first()
            .map(|r| {
                r.assets
                    .iter()
                    .map(|a| (a.name.clone(), hex::encode(sha2::Sha256::digest(&a.data))))
                    .collect()
            })
            .unwrap_or_default();
        state.history.push(assets);
    }

    /// Records a broken upload: GitHub keeps an empty `starter` asset after a failed upload.
    fn starter(&self, request: &Head, _partial: Vec<u8>) {
        let Some((release_id, name, label)) = upload_target(&request.path) else {
            return;
        };
        let mut state = self.state.lock().unwrap();
        let id = state.next_id;
        state.next_id += 1;
        if let Some(release) = state.releases.iter_mut().find(|r| r.id == release_id) {
            release.assets.push(Asset {
                id,
                name,
                label,
                content_type: request.header("content-type").unwrap_or_default(),
                state: "starter".into(),
                data: Vec::new(),
            });
        }
    }

    fn handle(&self, request: &Head, body: Vec<u8>) -> (u16, Vec<(&'static str, String)>, String) {
        let authorized = request.header("authorization").is_some_and(|a| {
            a == format!("token {}", self.token) || a == format!("Bearer {}", self.token)
        });
        if !authorized {
            return (
                401,
                Vec::new(),
                json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
                    .to_string(),
            );
        }
        let path = request.path.split('?').next().unwrap_or("");
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let mut state = self.state.lock().unwrap();
        let base = self.url.clone();
        match (request.method.as_str(), parts.as_slice()) {
            ("GET", ["repos", owner, repo, "releases", "tags", tag]) => {
                match state
                    .releases
                    .iter()
                    .find(|r| r.tag_name == *tag && !r.draft)
                {
                    Some(r) => ok(200, release_json(&base, owner, repo, r)),
                    None => not_found(),
                }
            }
            ("GET", ["repos", owner, repo, "releases"]) => {
                let list: Vec<Value> = state
                    .releases
                    .iter()
                    .rev()
                    .map(|r| release_json(&base, owner, repo, r))
                    .collect();
                ok(200, Value::Array(list))
            }
            ("POST", ["repos", owner, repo, "releases"]) => {
                let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let Some(tag) = input["tag_name"].as_str() else {
                    return validation("Release", "missing_field", "tag_name");
                };
                if state.releases.iter().any(|r| r.tag_name == tag && !r.draft) {
                    return validation("Release", "already_exists", "tag_name");
                }
                let id = state.next_id;
                state.next_id += 1;
                let release = Release {
                    id,
                    tag_name: tag.to_string(),
                    name: input["name"].as_str().map(str::to_string),
                    body: input["body"].as_str().map(str::to_string),
                    draft: input["draft"].as_bool().unwrap_or(false),
                    prerelease: input["prerelease"].as_bool().unwrap_or(false),
                    assets: Vec::new(),
                };
                let json = release_json(&base, owner, repo, &release);
                state.releases.push(release);
                ok(201, json)
            }
            ("PATCH", ["repos", owner, repo, "releases", id]) => {
                let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let Some(release) = state.releases.iter_mut().find(|r| r.id.to_string() == *id)
                else {
                    return not_found();
                };
                if let Some(draft) = input["draft"].as_bool() {
                    release.draft = draft;
                }
                if let Some(pre) = input["prerelease"].as_bool() {
                    release.prerelease = pre;
                }
                if let Some(name) = input["name"].as_str() {
                    release.name = Some(name.to_string());
                }
                if let Some(notes) = input["body"].as_str() {
                    release.body = Some(notes.to_string());
                }
                let release = release.clone();
                ok(200, release_json(&base, owner, repo, &release))
            }
            ("GET", ["repos", owner, repo, "releases", id, "assets"]) => {
                match state.releases.iter().find(|r| r.id.to_string() == *id) {
                    Some(r) => ok(
                        200,
                        Value::Array(
                            r.assets
                                .iter()
                                .map(|a| asset_json(&base, owner, repo, r, a))
                                .collect(),
                        ),
                    ),
                    None => not_found(),
                }
            }
            ("POST", ["repos", owner, repo, "pulls"]) => {
                let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let number = state.next_id;
                state.next_id += 1;
                state.pulls.push(input);
                ok(
                    201,
                    json!({
                        "number": number,
                        "state": "open",
                        "html_url": format!("https://github.com/{owner}/{repo}/pull/{number}"),
                    }),
                )
            }
            ("PATCH", ["repos", owner, repo, "releases", "assets", id]) => {
                let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                for release in &mut state.releases {
                    let Some(i) = release.assets.iter().position(|a| a.id.to_string() == *id)
                    else {
                        continue;
                    };
                    if let Some(name) = input["name"].as_str() {
                        release.assets[i].name = name.to_string();
                    }
                    let asset = release.assets[i].clone();
                    return ok(200, asset_json(&base, owner, repo, release, &asset));
                }
                not_found()
            }
            ("PATCH", ["repos", _, _, "git", "refs", "tags", tag]) => {
                let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let sha = input["sha"].as_str().unwrap_or_default().to_string();
                let name = format!("refs/tags/{tag}");
                if !state.refs.iter().any(|(r, _)| *r == name) {
                    return validation("Reference", "invalid", "ref");
                }
                state.refs.push((name.clone(), sha.clone()));
                ok(
                    200,
                    json!({"ref": name, "object": {"sha": sha, "type": "commit"}}),
                )
            }
            ("POST", ["repos", _, _, "git", "refs"]) => {
                let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let name = input["ref"].as_str().unwrap_or_default().to_string();
                let sha = input["sha"].as_str().unwrap_or_default().to_string();
                state.refs.push((name.clone(), sha.clone()));
                ok(
                    201,
                    json!({"ref": name, "object": {"sha": sha, "type": "commit"}}),
                )
            }
            ("DELETE", ["repos", _, _, "releases", id]) if *id != "assets" => {
                let before = state.releases.len();
                state.releases.retain(|r| r.id.to_string() != *id);
                if state.releases.len() == before {
                    return not_found();
                }
                (204, Vec::new(), String::new())
            }
            ("DELETE", ["repos", _, _, "git", "refs", "tags", tag]) => {
                let name = format!("refs/tags/{tag}");
                if !state.refs.iter().any(|(r, _)| *r == name) {
                    return validation("Reference", "invalid", "ref");
                }
                state.refs.retain(|(r, _)| *r != name);
                (204, Vec::new(), String::new())
            }
            ("DELETE", ["repos", _, _, "releases", "assets", id]) => {
                for release in &mut state.releases {
                    if let Some(i) = release.assets.iter().position(|a| a.id.to_string() == *id) {
                        release.assets.remove(i);
                        return (204, Vec::new(), String::new());
                    }
                }
                not_found()
            }
            ("POST", ["uploads", "repos", owner, repo, "releases", _, "assets"]) => {
                let Some((release_id, name, label)) = upload_target(&request.path) else {
                    return validation("ReleaseAsset", "missing_field", "name");
                };
                let id = state.next_id;
                let Some(release) = state.releases.iter_mut().find(|r| r.id == release_id) else {
                    return not_found();
                };
                if release.assets.iter().any(|a| a.name == name) {
                    return (422, Vec::new(), conflict_body().to_string());
                }
                let asset = Asset {
                    id,
                    name,
                    label,
                    content_type: request.header("content-type").unwrap_or_default(),
                    state: "uploaded".into(),
                    data: body,
                };
                release.assets.push(asset.clone());
                let release = release.clone();
                state.next_id += 1;
                ok(201, asset_json(&base, owner, repo, &release, &asset))
            }
            _ => not_found(),
        }
    }
}

impl Fault {
    fn matches(&self, request: &Head) -> bool {
        match self {
            Fault::Status { method, path, .. } | Fault::LoseAnswer { method, path } => {
                request.method == *method && request.path.starts_with(path)
            }
            Fault::StarterThen502 { .. } | Fault::ResetMidUpload { .. } | Fault::Stall { .. } => {
                request.method == "POST" && request.path.starts_with("/uploads/")
            }
        }
    }
}

/// `(release id, name, label)` of an upload path `/uploads/repos/o/r/releases/ID/assets?name=..`.
fn upload_target(path: &str) -> Option<(u64, String, Option<String>)> {
    let (path, query) = path.split_once('?')?;
    let id = path
        .trim_end_matches("/assets")
        .rsplit('/')
        .next()?
        .parse()
        .ok()?;
    let mut name = None;
    let mut label = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=')?;
        let value = percent_decode(value);
        match key {
            "name" => name = Some(value),
            "label" => label = Some(value),
            _ => {}
        }
    }
    Some((id, name?, label))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn fixture(text: &str) -> Vec<Value> {
    serde_json::from_str(text).unwrap()
}

fn release_json(base: &str, owner: &str, repo: &str, r: &Release) -> Value {
    let mut json = fixture(RELEASE_FIXTURE)[0]["response"].clone();
    let api = format!("{base}/repos/{owner}/{repo}/releases/{}", r.id);
    json["url"] = json!(api);
    json["assets_url"] = json!(format!("{api}/assets"));
    json["upload_url"] = json!(format!(
        "{base}/uploads/repos/{owner}/{repo}/releases/{}/assets{{?name,label}}",
        r.id
    ));
    json["html_url"] = json!(format!(
        "https://github.com/{owner}/{repo}/releases/tag/{}",
        r.tag_name
    ));
    json["id"] = json!(r.id);
    json["tag_name"] = json!(r.tag_name);
    json["name"] = json!(r.name);
    json["body"] = json!(r.body);
    json["draft"] = json!(r.draft);
    json["prerelease"] = json!(r.prerelease);
    if r.draft {
        json["published_at"] = Value::Null;
    }
    json["assets"] = Value::Array(
        r.assets
            .iter()
            .map(|a| asset_json(base, owner, repo, r, a))
            .collect(),
    );
    json
}

fn asset_json(base: &str, owner: &str, repo: &str, r: &Release, a: &Asset) -> Value {
    let mut json = fixture(RELEASE_FIXTURE)[1]["response"].clone();
    json["url"] = json!(format!(
        "{base}/repos/{owner}/{repo}/releases/assets/{}",
        a.id
    ));
    json["id"] = json!(a.id);
    json["name"] = json!(a.name);
    json["label"] = json!(a.label);
    json["content_type"] = json!(a.content_type);
    json["state"] = json!(a.state);
    json["size"] = json!(a.data.len());
    // GitHub reports each uploaded asset's SHA-256, as `sha256:<hex>`.
    json["digest"] = if a.state == "uploaded" {
        use sha2::Digest;
        json!(format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(&a.data))
        ))
    } else {
        Value::Null
    };
    json["browser_download_url"] = json!(format!(
        "https://github.com/{owner}/{repo}/releases/download/{}/{}",
        r.tag_name, a.name
    ));
    json
}

fn conflict_body() -> Value {
    fixture(CONFLICT_FIXTURE)[1]["response"].clone()
}

fn ok(status: u16, json: Value) -> (u16, Vec<(&'static str, String)>, String) {
    (status, Vec::new(), json.to_string())
}

fn not_found() -> (u16, Vec<(&'static str, String)>, String) {
    (
        404,
        Vec::new(),
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
            .to_string(),
    )
}

fn validation(
    resource: &str,
    code: &str,
    field: &str,
) -> (u16, Vec<(&'static str, String)>, String) {
    (
        422,
        Vec::new(),
        json!({
            "message": "Validation Failed",
            "errors": [{"resource": resource, "code": code, "field": field}],
            "documentation_url": "https://docs.github.com/rest"
        })
        .to_string(),
    )
}

/// A request line and headers.
struct Head {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

fn read_head(reader: &mut impl BufRead) -> Option<Head> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Some(Head {
        method,
        path,
        headers,
    })
}

/// Reads the body (content-length or chunked); with `limit`, stops after that many bytes.
fn read_body(reader: &mut impl BufRead, head: &Head, limit: Option<usize>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    if head
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            if size == 0 {
                let mut end = String::new();
                reader.read_line(&mut end).ok()?;
                return Some(body);
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).ok()?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf).ok()?;
            if limit.is_some_and(|l| body.len() >= l) {
                return Some(body);
            }
        }
    }
    let length: usize = head
        .header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let take = limit.map_or(length, |l| l.min(length));
    body.resize(take, 0);
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

fn write_response(
    writer: &mut impl Write,
    (status, extra, body): (u16, Vec<(&'static str, String)>, String),
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        502 => "Bad Gateway",
        _ => "Status",
    };
    let recorded = &fixture(RELEASE_FIXTURE)[0]["headers"];
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    for name in [
        "x-github-media-type",
        "x-github-request-id",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-resource",
    ] {
        if let Some(value) = recorded[name].as_str()
            && !extra.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    for (name, value) in &extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if status != 204 {
        head.push_str("content-type: application/json; charset=utf-8\r\n");
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    writer.write_all(head.as_bytes())?;
    writer.write_all(body.as_bytes())?;
    writer.flush()
}
