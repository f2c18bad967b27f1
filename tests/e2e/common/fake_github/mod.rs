//! A fake of GitHub's REST API for releases, run inside the test process on 127.0.0.1.
//!
//! It is shaped as GitHub is today: the API under a path prefix (`/api/v3`, as GitHub
//! Enterprise Server serves it) and uploads on a second listener, another origin (as
//! `uploads.github.com`). Answers come from the exchanges recorded in
//! `tests/fixtures/github-recorded/` (release and asset objects, ref objects, headers, the 422
//! bodies), and it refuses what GitHub refuses: no User-Agent (403), a bad token (401), an
//! upload without `Content-Length` or `Content-Type` (400), a name or ref already taken (422).
//! Assets carry `digest`; publishing creates the tag at `target_commitish`; `make_latest` is
//! honoured and recorded; lists page by `per_page` (at most 100) with `Link` headers.
//!
//! Faults are scripted per request and fire exactly as named; one never consumed fails the
//! test when the fake is dropped. Every request is recorded with when it arrived and its
//! headers.

mod json;

use std::collections::{BTreeMap, VecDeque};
use std::io::BufReader;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};

use super::wire::{self, Head, Response, read_body, read_head, write_response};
use json::{Hosts, message, not_found, ok, repository_json, validation};

#[allow(unused_imports)]
pub use json::{CONFLICT_FIXTURE, ERRORS_FIXTURE, REFS_FIXTURE, RELEASE_FIXTURE, fixture};

/// Where the API lives on the API listener, as on GitHub Enterprise Server.
pub const API_PREFIX: &str = "/api/v3";
/// The id GitHub's `Link` headers use for the repository (`/repositories/{id}/...`).
const REPO_ID: &str = "1296269";
/// The default branch's head before a test sets another.
pub const MAIN_SHA: &str = "1111111111111111111111111111111111111111";

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
    /// What the tag is created on when the release is published and the tag is missing.
    pub target_commitish: String,
    /// Title.
    pub name: Option<String>,
    /// Notes.
    pub body: Option<String>,
    /// Still a draft.
    pub draft: bool,
    /// Marked as a pre-release.
    pub prerelease: bool,
    /// `make_latest` as last sent (`None` when never sent).
    pub make_latest: Option<String>,
    /// Its assets.
    pub assets: Vec<Asset>,
}

/// A scripted misbehaviour for the next request matching `method` and a path starting with
/// `path` (paths as in [`FakeGithub::calls`]: API paths without the prefix, uploads under
/// `/uploads`).
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
    /// Answer with `status` and a message that quotes the request's `Authorization` header,
    /// as some proxies do: whatever prints the message must mask the token.
    EchoAuthorization {
        /// Method to match.
        method: &'static str,
        /// Start of the path to match.
        path: &'static str,
        /// Status code.
        status: u16,
    },
    /// Take the whole upload, keep a `starter` asset holding its first `after` bytes (as
    /// GitHub does when storing fails), answer 502.
    StarterThen502 {
        /// Bytes the starter keeps.
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
    /// An asset of the uploaded name is already there (`complete`: with these very bytes, as
    /// an earlier attempt whose answer was lost; else a `starter`), and the upload gets the
    /// recorded 422 `already_exists`.
    AlreadyThere {
        /// Whether what is there is the same, finished file.
        complete: bool,
    },
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Call {
    /// When it arrived.
    pub at: Instant,
    /// `METHOD /path?query` as in [`FakeGithub::calls`].
    pub line: String,
    /// Its headers.
    pub headers: Vec<(String, String)>,
}

impl Call {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct State {
    /// `(owner, repo)` of the repository the client talks about.
    repo: Option<(String, String)>,
    releases: Vec<Release>,
    next_id: u64,
    calls: Vec<Call>,
    faults: VecDeque<Fault>,
    fired: Vec<String>,
    pulls: Vec<Value>,
    refs: BTreeMap<String, String>,
    ref_log: Vec<(String, String)>,
    /// After every call that changed assets: the first release's assets as (name, SHA-256).
    history: Vec<Vec<(String, String)>>,
    latest: Option<u64>,
    max_per_page: usize,
    upload_origin_override: Option<String>,
    /// Assets are listed without `digest`, as GitHub lists those uploaded before it kept one.
    no_digests: bool,
    /// Published releases are immutable, as in a repository with immutable releases enabled.
    immutable: bool,
    /// Tags of deleted immutable releases: GitHub never lets a release use them again.
    burned_tags: std::collections::BTreeSet<String>,
    /// Requests refused because a release is immutable (`METHOD path: why`).
    immutability_refusals: Vec<String>,
    /// Artifact attestations by subject digest (`sha256:<hex>`): their bundles.
    attestations: BTreeMap<String, Vec<Value>>,
}

/// Which listener a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Host {
    Api,
    Uploads,
}

#[derive(Clone)]
struct Server {
    state: Arc<Mutex<State>>,
    token: String,
    api: String,
    uploads: String,
}

/// The running fake. Dropping it checks that every scripted fault fired.
pub struct FakeGithub {
    /// The API root, `http://127.0.0.1:<port>/api/v3` (`GITHUB_API_URL`).
    pub url: String,
    /// The upload origin, `http://127.0.0.1:<other port>`.
    pub uploads: String,
    /// The token it accepts.
    pub token: String,
    server: Server,
}

fn listen(server: &Server, listener: TcpListener, host: Host) {
    let server = server.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let server = server.clone();
            std::thread::spawn(move || server.serve(stream, host));
        }
    });
}

pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

impl FakeGithub {
    /// Starts a fake accepting `token`.
    pub fn start(token: &str) -> FakeGithub {
        let api_listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let upload_listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}{API_PREFIX}", api_listener.local_addr().unwrap());
        let uploads = format!("http://{}", upload_listener.local_addr().unwrap());
        let mut refs = BTreeMap::new();
        refs.insert("refs/heads/main".to_string(), MAIN_SHA.to_string());
        let server = Server {
            state: Arc::new(Mutex::new(State {
                repo: None,
                releases: Vec::new(),
                next_id: 1000,
                calls: Vec::new(),
                faults: VecDeque::new(),
                fired: Vec::new(),
                pulls: Vec::new(),
                refs,
                ref_log: Vec::new(),
                history: Vec::new(),
                latest: None,
                max_per_page: 100,
                upload_origin_override: None,
                no_digests: false,
                attestations: BTreeMap::new(),
                immutable: false,
                burned_tags: Default::default(),
                immutability_refusals: Vec::new(),
            })),
            token: token.to_string(),
            api: url.clone(),
            uploads: uploads.clone(),
        };
        listen(&server, api_listener, Host::Api);
        listen(&server, upload_listener, Host::Uploads);
        FakeGithub {
            url,
            uploads,
            token: token.to_string(),
            server,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.server.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a fault for a later request.
    pub fn inject(&self, fault: Fault) {
        self.state().faults.push_back(fault);
    }

    /// The faults that fired, in order, as `Debug` text.
    pub fn fired(&self) -> Vec<String> {
        self.state().fired.clone()
    }

    /// Every call so far, as `METHOD /path?query` (API paths without [`API_PREFIX`],
    /// uploads under `/uploads`).
    pub fn calls(&self) -> Vec<String> {
        self.state().calls.iter().map(|c| c.line.clone()).collect()
    }

    /// Every request so far, with its query, headers and when it arrived.
    pub fn requests(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// Every call so far with when it arrived, so waits between calls can be asserted.
    pub fn timed_calls(&self) -> Vec<(Instant, String)> {
        self.requests()
            .into_iter()
            .map(|c| (c.at, c.line))
            .collect()
    }

    /// The asset lists of the first release after every change, oldest first.
    pub fn history(&self) -> Vec<Vec<(String, String)>> {
        self.state().history.clone()
    }

    /// The repository's refs now: (ref, sha).
    pub fn refs(&self) -> Vec<(String, String)> {
        self.state()
            .refs
            .iter()
            .map(|(r, s)| (r.clone(), s.clone()))
            .collect()
    }

    /// Where a ref points now.
    pub fn ref_sha(&self, name: &str) -> Option<String> {
        self.state().refs.get(name).cloned()
    }

    /// Every ref write (created or moved), oldest first.
    pub fn ref_log(&self) -> Vec<(String, String)> {
        self.state().ref_log.clone()
    }

    /// The bodies of every pull request opened.
    pub fn pulls(&self) -> Vec<Value> {
        self.state().pulls.clone()
    }

    /// Every release, drafts included, oldest first.
    pub fn releases(&self) -> Vec<Release> {
        self.state().releases.clone()
    }

    /// The tag of the release GitHub shows as latest.
    pub fn latest(&self) -> Option<String> {
        let state = self.state();
        let id = state.latest?;
        state
            .releases
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.tag_name.clone())
    }

    /// From now on, published releases are immutable as GitHub's are: no asset is uploaded to,
    /// changed on or deleted from one, its tag is neither moved nor deleted while it exists, and
    /// once it is deleted no release may use its tag again. Each refusal is recorded
    /// ([`FakeGithub::immutability_refusals`]).
    pub fn make_immutable(&self) {
        self.state().immutable = true;
    }

    /// The requests refused because a release was immutable.
    pub fn immutability_refusals(&self) -> Vec<String> {
        self.state().immutability_refusals.clone()
    }

    /// Pages hold at most this many items, whatever `per_page` asks (GitHub: 100).
    pub fn set_max_per_page(&self, items: usize) {
        self.state().max_per_page = items.max(1);
    }

    /// Releases name this origin for uploads instead of the fake's upload listener.
    /// Lists assets without `digest` from now on; their bytes are then only to be had by
    /// downloading them (`Accept: application/octet-stream`, redirected to storage on another
    /// host that refuses a token).
    pub fn hide_digests(&self) {
        self.state().no_digests = true;
    }

    pub fn set_upload_origin(&self, origin: &str) {
        self.state().upload_origin_override = Some(origin.to_string());
    }

    /// Adds a published release (and its tag on the default branch's head), as an earlier
    /// tool might have left; a stable one becomes latest.
    pub fn add_release(&self, tag: &str, prerelease: bool) {
        let mut state = self.state();
        let id = state.next_id;
        state.next_id += 1;
        state.releases.push(Release {
            id,
            tag_name: tag.to_string(),
            target_commitish: "main".into(),
            name: Some(tag.to_string()),
            body: None,
            draft: false,
            prerelease,
            make_latest: None,
            assets: Vec::new(),
        });
        state
            .refs
            .insert(format!("refs/tags/{tag}"), MAIN_SHA.to_string());
        if !prerelease {
            state.latest = Some(id);
        }
    }
}

impl FakeGithub {
    /// Stores an attestation bundle for the artifact with `digest` (`sha256:<hex>`), as
    /// `actions/attest-build-provenance` does.
    pub fn add_attestation(&self, digest: &str, bundle: Value) {
        self.state()
            .attestations
            .entry(digest.to_owned())
            .or_default()
            .push(bundle);
    }

    /// Adds a finished asset to the release for `tag`; returns its id.
    pub fn add_asset(&self, tag: &str, name: &str, data: &[u8]) -> u64 {
        let mut state = self.state();
        let id = state.next_id;
        state.next_id += 1;
        let release = state
            .releases
            .iter_mut()
            .find(|r| r.tag_name == tag)
            .expect("add_asset: no release with that tag");
        release.assets.push(Asset {
            id,
            name: name.to_string(),
            label: None,
            content_type: "application/octet-stream".into(),
            state: "uploaded".into(),
            data: data.to_vec(),
        });
        id
    }

    /// Swaps the bytes of the asset `name` of the release for `tag`, as someone with write
    /// access (or a compromised token) could on a mutable release.
    pub fn replace_asset_data(&self, tag: &str, name: &str, data: &[u8]) {
        let mut state = self.state();
        let asset = state
            .releases
            .iter_mut()
            .find(|r| r.tag_name == tag)
            .and_then(|r| r.assets.iter_mut().find(|a| a.name == name))
            .expect("replace_asset_data: no such asset");
        asset.data = data.to_vec();
    }

    /// Sets a branch's head.
    pub fn set_branch(&self, branch: &str, sha: &str) {
        self.state()
            .refs
            .insert(format!("refs/heads/{branch}"), sha.to_string());
    }
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let left: Vec<Fault> = self.state().faults.drain(..).collect();
        assert!(
            left.is_empty(),
            "scripted faults never fired (the test did not exercise what it set up): {left:#?}"
        );
    }
}

impl Server {
    fn serve(&self, stream: TcpStream, host: Host) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        // Keep-alive: serve requests until the client closes.
        while let Some(request) = read_head(&mut reader) {
            let line = match host {
                Host::Api => format!(
                    "{} {}",
                    request.method,
                    request
                        .path
                        .strip_prefix(API_PREFIX)
                        .unwrap_or(&format!("(outside {API_PREFIX}) {}", request.path))
                ),
                Host::Uploads => format!("{} /uploads{}", request.method, request.path),
            };
            let fault = {
                let mut state = self.state.lock().unwrap();
                state.calls.push(Call {
                    at: Instant::now(),
                    line: line.clone(),
                    headers: request.headers.clone(),
                });
                let index = state.faults.iter().position(|f| f.matches(&line));
                let fault = index.and_then(|i| state.faults.remove(i));
                if let Some(fault) = &fault {
                    state.fired.push(format!("{fault:?}"));
                }
                fault
            };
            let response = match fault {
                Some(Fault::ResetMidUpload { after }) => {
                    let _ = read_body(&mut reader, &request, Some(after));
                    let _ = writer.shutdown(Shutdown::Both);
                    return;
                }
                Some(Fault::StarterThen502 { after }) => {
                    let Some(body) = read_body(&mut reader, &request, None) else {
                        return;
                    };
                    let kept = body[..after.min(body.len())].to_vec();
                    self.keep(&request, kept, "starter");
                    message(502, "Server Error")
                }
                Some(Fault::AlreadyThere { complete }) => {
                    let Some(body) = read_body(&mut reader, &request, None) else {
                        return;
                    };
                    if complete {
                        self.keep(&request, body, "uploaded");
                    } else {
                        self.keep(&request, Vec::new(), "starter");
                    }
                    (
                        422,
                        Vec::new(),
                        json::conflict_body().to_string().into_bytes(),
                    )
                }
                Some(Fault::LoseAnswer { .. }) => {
                    if let Some(body) = read_body(&mut reader, &request, None) {
                        self.handle(host, &request, body);
                    }
                    let _ = writer.shutdown(Shutdown::Both);
                    return;
                }
                Some(Fault::Stall { seconds }) => {
                    std::thread::sleep(std::time::Duration::from_secs(seconds));
                    let Some(body) = read_body(&mut reader, &request, None) else {
                        return;
                    };
                    self.handle(host, &request, body)
                }
                Some(Fault::Status {
                    status,
                    headers,
                    body,
                    ..
                }) => {
                    let _ = read_body(&mut reader, &request, None);
                    (status, headers, body.to_string().into_bytes())
                }
                Some(Fault::EchoAuthorization { status, .. }) => {
                    let _ = read_body(&mut reader, &request, None);
                    let sent = request.header("authorization").unwrap_or_default();
                    message(
                        status,
                        &format!("upstream refused the request (Authorization: {sent})"),
                    )
                }
                None => {
                    let Some(body) = read_body(&mut reader, &request, None) else {
                        return;
                    };
                    self.handle(host, &request, body)
                }
            };
            if request.method != "GET" {
                self.snapshot();
            }
            let recorded = &fixture(RELEASE_FIXTURE)[0]["headers"];
            if write_response(&mut writer, recorded, response).is_err()
                || request
                    .header("connection")
                    .is_some_and(|c| c.eq_ignore_ascii_case("close"))
            {
                return;
            }
        }
    }

    fn snapshot(&self) {
        let mut state = self.state.lock().unwrap();
        let assets = state
            .releases
            .first()
            .map(|r| {
                r.assets
                    .iter()
                    .map(|a| (a.name.clone(), sha256(&a.data)))
                    .collect()
            })
            .unwrap_or_default();
        state.history.push(assets);
    }

    /// Stores an asset from an upload request without answering it (faults use this).
    fn keep(&self, request: &Head, data: Vec<u8>, asset_state: &str) {
        let Some((release_id, name, label)) = upload_target(request) else {
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
                state: asset_state.into(),
                data,
            });
        }
    }

    fn handle(&self, host: Host, request: &Head, body: Vec<u8>) -> Response {
        if request.header("user-agent").is_none_or(|ua| ua.is_empty()) {
            // GitHub's answer to a request without a User-Agent.
            return (
                403,
                Vec::new(),
                "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://githubstatus.com for possible ongoing issues.\n".into(),
            );
        }
        if let (Host::Uploads, Some(id)) = (host, request.route().strip_prefix("/storage/")) {
            // Signed storage addresses: a token sent here went somewhere it must not.
            if request.header("authorization").is_some() {
                return message(400, "a token was sent to storage");
            }
            let state = self.state.lock().unwrap();
            let asset = state
                .releases
                .iter()
                .flat_map(|r| &r.assets)
                .find(|a| a.id.to_string() == id);
            return match asset {
                Some(asset) => (200, Vec::new(), asset.data.clone()),
                None => not_found(),
            };
        }
        let authorized = request.header("authorization").is_some_and(|a| {
            a == format!("token {}", self.token) || a == format!("Bearer {}", self.token)
        });
        if !authorized {
            return message(401, "Bad credentials");
        }
        let mut state = self.state.lock().unwrap();
        let route = request.route();
        let path = match host {
            Host::Api => match route.strip_prefix(API_PREFIX) {
                Some(path) => path,
                None => return not_found(),
            },
            Host::Uploads => route,
        };
        let mut parts: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .map(wire::percent_decode)
            .collect();
        if parts.first().is_some_and(|p| p == "repos") && parts.len() >= 3 {
            state.repo = Some((parts[1].clone(), parts[2].clone()));
        } else if parts.len() >= 2 && parts[0] == "repositories" && parts[1] == REPO_ID {
            // `Link` headers name the repository by id, as GitHub's do.
            let Some((owner, repo)) = state.repo.clone() else {
                return not_found();
            };
            parts.splice(0..2, ["repos".to_string(), owner, repo]);
        }
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let uploads = state
            .upload_origin_override
            .clone()
            .unwrap_or_else(|| self.uploads.clone());
        let hosts = Hosts {
            api: &self.api,
            uploads: &uploads,
            digests: !state.no_digests,
            immutable: state.immutable,
        };
        if let Some(why) = immutability_refusal(&state, host, &request.method, &parts, &input) {
            let call = format!("{} {path}: {why}", request.method);
            state.immutability_refusals.push(call);
            return message(422, why);
        }
        match (host, request.method.as_str(), parts.as_slice()) {
            (Host::Uploads, "POST", ["repos", owner, repo, "releases", _, "assets"]) => {
                upload(&mut state, &hosts, request, owner, repo, body)
            }
            (Host::Uploads, ..) => not_found(),
            (_, "GET", ["repos", owner, repo]) => ok(200, repository_json(owner, repo)),
            // The artifact attestations API: the bundles stored for a subject digest.
            (_, "GET", ["repos", _, _, "attestations", digest]) => {
                match state.attestations.get(*digest) {
                    Some(bundles) => ok(
                        200,
                        serde_json::json!({ "attestations": bundles.iter().map(|b| serde_json::json!({ "bundle": b, "repository_id": 1 })).collect::<Vec<_>>() }),
                    ),
                    None => not_found(),
                }
            }
            (_, "GET", ["repos", owner, repo, "releases", "tags", tag]) => {
                match state
                    .releases
                    .iter()
                    .find(|r| r.tag_name == *tag && !r.draft)
                {
                    Some(r) => ok(200, json::release_json(&hosts, owner, repo, r)),
                    None => not_found(),
                }
            }
            (_, "GET", ["repos", owner, repo, "releases", "latest"]) => {
                let latest = state.latest;
                match state.releases.iter().find(|r| Some(r.id) == latest) {
                    Some(r) => ok(200, json::release_json(&hosts, owner, repo, r)),
                    None => not_found(),
                }
            }
            (_, "GET", ["repos", owner, repo, "releases"]) => {
                let list: Vec<Value> = state
                    .releases
                    .iter()
                    .rev()
                    .map(|r| json::release_json(&hosts, owner, repo, r))
                    .collect();
                page(&state, &hosts, request, "releases", list)
            }
            (_, "POST", ["repos", owner, repo, "releases"]) => {
                create_release(&mut state, &hosts, owner, repo, &input)
            }
            (_, "PATCH", ["repos", owner, repo, "releases", id]) => {
                let Some(index) = state.releases.iter().position(|r| r.id.to_string() == *id)
                else {
                    return not_found();
                };
                edit_release(&mut state, &hosts, owner, repo, index, &input)
            }
            (_, "GET", ["repos", owner, repo, "releases", id, "assets"]) => {
                let Some(r) = state.releases.iter().find(|r| r.id.to_string() == *id) else {
                    return not_found();
                };
                let list = r
                    .assets
                    .iter()
                    .map(|a| json::asset_json(&hosts, owner, repo, r, a))
                    .collect();
                page(
                    &state,
                    &hosts,
                    request,
                    &format!("releases/{id}/assets"),
                    list,
                )
            }
            (_, "GET", ["repos", _, _, "releases", "assets", id])
                if request.header("accept").as_deref() == Some("application/octet-stream") =>
            {
                // As GitHub does: a redirect to storage, on a host the token is not for.
                let storage = self.uploads.replace("127.0.0.1", "localhost");
                (
                    302,
                    vec![("Location", format!("{storage}/storage/{id}"))],
                    Vec::new(),
                )
            }
            (_, "GET", ["repos", owner, repo, "releases", "assets", id]) => {
                for release in &state.releases {
                    if let Some(asset) = release.assets.iter().find(|a| a.id.to_string() == *id) {
                        return ok(200, json::asset_json(&hosts, owner, repo, release, asset));
                    }
                }
                not_found()
            }
            (_, "PATCH", ["repos", owner, repo, "releases", "assets", id]) => {
                for release in &mut state.releases {
                    let Some(i) = release.assets.iter().position(|a| a.id.to_string() == *id)
                    else {
                        continue;
                    };
                    if let Some(name) = input["name"].as_str() {
                        // Names are unique within a release: GitHub refuses a rename onto one.
                        if release
                            .assets
                            .iter()
                            .any(|a| a.name == name && a.id.to_string() != *id)
                        {
                            return validation("ReleaseAsset", "already_exists", "name");
                        }
                        release.assets[i].name = name.to_string();
                    }
                    if let Some(label) = input["label"].as_str() {
                        release.assets[i].label = Some(label.to_string());
                    }
                    let asset = release.assets[i].clone();
                    return ok(200, json::asset_json(&hosts, owner, repo, release, &asset));
                }
                not_found()
            }
            (_, "DELETE", ["repos", _, _, "releases", "assets", id]) => {
                for release in &mut state.releases {
                    if let Some(i) = release.assets.iter().position(|a| a.id.to_string() == *id) {
                        release.assets.remove(i);
                        return (204, Vec::new(), Vec::new());
                    }
                }
                not_found()
            }
            (_, "DELETE", ["repos", _, _, "releases", id]) => {
                let before = state.releases.len();
                if state.immutable {
                    let burned: Vec<String> = state
                        .releases
                        .iter()
                        .filter(|r| r.id.to_string() == *id && !r.draft)
                        .map(|r| r.tag_name.clone())
                        .collect();
                    state.burned_tags.extend(burned);
                }
                state.releases.retain(|r| r.id.to_string() != *id);
                if state.releases.len() == before {
                    return not_found();
                }
                if state.latest.is_some_and(|l| l.to_string() == *id) {
                    state.latest = None;
                }
                (204, Vec::new(), Vec::new())
            }
            (_, "POST", ["repos", owner, repo, "pulls"]) => {
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
            (_, "POST", ["repos", owner, repo, "git", "refs"]) => {
                let name = input["ref"].as_str().unwrap_or_default().to_string();
                let sha = input["sha"].as_str().unwrap_or_default().to_string();
                if !name.starts_with("refs/") || name.matches('/').count() < 2 {
                    return message(
                        422,
                        "Reference name must start with 'refs/' and have at least two slashes.",
                    );
                }
                if state.refs.contains_key(&name) {
                    return message(422, "Reference already exists");
                }
                write_ref(&mut state, &name, &sha);
                ok(201, json::ref_json(&hosts, owner, repo, &name, &sha))
            }
            (_, "PATCH", ["repos", owner, repo, "git", "refs", rest @ ..]) => {
                let name = format!("refs/{}", rest.join("/"));
                let sha = input["sha"].as_str().unwrap_or_default().to_string();
                if !state.refs.contains_key(&name) {
                    return message(422, "Reference does not exist");
                }
                write_ref(&mut state, &name, &sha);
                ok(200, json::ref_json(&hosts, owner, repo, &name, &sha))
            }
            (_, "DELETE", ["repos", _, _, "git", "refs", rest @ ..]) => {
                let name = format!("refs/{}", rest.join("/"));
                if state.refs.remove(&name).is_none() {
                    return message(422, "Reference does not exist");
                }
                (204, Vec::new(), Vec::new())
            }
            _ => not_found(),
        }
    }
}

/// Why GitHub would refuse this request because of an immutable release, if it would.
fn immutability_refusal(
    state: &State,
    host: Host,
    method: &str,
    parts: &[&str],
    input: &Value,
) -> Option<&'static str> {
    if !state.immutable {
        return None;
    }
    let published = |id: &str| {
        state
            .releases
            .iter()
            .any(|r| r.id.to_string() == id && !r.draft)
    };
    let asset_published = |id: &str| {
        state
            .releases
            .iter()
            .any(|r| !r.draft && r.assets.iter().any(|a| a.id.to_string() == id))
    };
    let tag_locked = |rest: &[&str]| {
        rest.first() == Some(&"tags")
            && state
                .releases
                .iter()
                .any(|r| !r.draft && r.tag_name == rest[1..].join("/"))
    };
    match (host, method, parts) {
        (Host::Uploads, "POST", ["repos", _, _, "releases", id, "assets"]) if published(id) => {
            Some("Cannot upload assets to an immutable release")
        }
        (Host::Api, "PATCH" | "DELETE", ["repos", _, _, "releases", "assets", id])
            if asset_published(id) =>
        {
            Some("Cannot modify assets of an immutable release")
        }
        (Host::Api, "PATCH" | "DELETE", ["repos", _, _, "git", "refs", rest @ ..])
            if tag_locked(rest) =>
        {
            Some("Cannot change a tag of an immutable release")
        }
        (Host::Api, "POST", ["repos", _, _, "releases"])
            if input["tag_name"]
                .as_str()
                .is_some_and(|t| state.burned_tags.contains(t)) =>
        {
            Some("tag_name was used by an immutable release")
        }
        _ => None,
    }
}

fn write_ref(state: &mut State, name: &str, sha: &str) {
    state.refs.insert(name.to_string(), sha.to_string());
    state.ref_log.push((name.to_string(), sha.to_string()));
}

fn create_release(
    state: &mut State,
    hosts: &Hosts,
    owner: &str,
    repo: &str,
    input: &Value,
) -> Response {
    let Some(tag) = input["tag_name"].as_str() else {
        return validation("Release", "missing_field", "tag_name");
    };
    if state.releases.iter().any(|r| r.tag_name == tag && !r.draft) {
        return validation("Release", "already_exists", "tag_name");
    }
    let id = state.next_id;
    state.next_id += 1;
    state.releases.push(Release {
        id,
        tag_name: tag.to_string(),
        target_commitish: input["target_commitish"]
            .as_str()
            .unwrap_or("main")
            .to_string(),
        name: input["name"].as_str().map(str::to_string),
        body: input["body"].as_str().map(str::to_string),
        draft: true,
        prerelease: input["prerelease"].as_bool().unwrap_or(false),
        make_latest: None,
        assets: Vec::new(),
    });
    let index = state.releases.len() - 1;
    if !input["draft"].as_bool().unwrap_or(false)
        && let Err(refused) = publish(state, index, input)
    {
        state.releases.pop();
        return refused;
    }
    (
        201,
        Vec::new(),
        json::release_json(hosts, owner, repo, &state.releases[index])
            .to_string()
            .into_bytes(),
    )
}

fn edit_release(
    state: &mut State,
    hosts: &Hosts,
    owner: &str,
    repo: &str,
    index: usize,
    input: &Value,
) -> Response {
    let release = &mut state.releases[index];
    if let Some(pre) = input["prerelease"].as_bool() {
        release.prerelease = pre;
    }
    if let Some(name) = input["name"].as_str() {
        release.name = Some(name.to_string());
    }
    if let Some(notes) = input["body"].as_str() {
        release.body = Some(notes.to_string());
    }
    if let Some(target) = input["target_commitish"].as_str() {
        release.target_commitish = target.to_string();
    }
    let publishing = release.draft && input["draft"].as_bool() == Some(false);
    if publishing {
        if let Err(refused) = publish(state, index, input) {
            return refused;
        }
    } else if let Some(latest) = input["make_latest"].as_str() {
        state.releases[index].make_latest = Some(latest.to_string());
        mark_latest(state, index, latest);
    }
    ok(
        200,
        json::release_json(hosts, owner, repo, &state.releases[index]),
    )
}

/// Publishes a draft as GitHub does: the tag must not belong to another published release; a
/// missing tag is created at `target_commitish` (a commit, or a branch's head); `make_latest`
/// (default `true`) decides whether it becomes latest, which a pre-release never does.
fn publish(state: &mut State, index: usize, input: &Value) -> Result<(), Response> {
    let tag = state.releases[index].tag_name.clone();
    let id = state.releases[index].id;
    if state
        .releases
        .iter()
        .any(|r| r.tag_name == tag && !r.draft && r.id != id)
    {
        return Err(validation("Release", "already_exists", "tag_name"));
    }
    let tag_ref = format!("refs/tags/{tag}");
    if !state.refs.contains_key(&tag_ref) {
        let target = state.releases[index].target_commitish.clone();
        let sha = if target.len() == 40 && target.bytes().all(|b| b.is_ascii_hexdigit()) {
            target
        } else {
            match state.refs.get(&format!("refs/heads/{target}")) {
                Some(sha) => sha.clone(),
                None => return Err(validation("Release", "invalid", "target_commitish")),
            }
        };
        write_ref(state, &tag_ref, &sha);
    }
    let latest = input["make_latest"].as_str().unwrap_or("true").to_string();
    let release = &mut state.releases[index];
    release.draft = false;
    release.make_latest = input["make_latest"].as_str().map(str::to_string);
    mark_latest(state, index, &latest);
    Ok(())
}

fn mark_latest(state: &mut State, index: usize, make_latest: &str) {
    let release = &state.releases[index];
    if release.draft || release.prerelease {
        return;
    }
    match make_latest {
        "true" => state.latest = Some(release.id),
        // `legacy`: the newest published stable release.
        "legacy" => {
            state.latest = state
                .releases
                .iter()
                .rev()
                .find(|r| !r.draft && !r.prerelease)
                .map(|r| r.id);
        }
        _ => {}
    }
}

fn upload(
    state: &mut State,
    hosts: &Hosts,
    request: &Head,
    owner: &str,
    repo: &str,
    body: Vec<u8>,
) -> Response {
    // GitHub needs the size up front and a type to serve the file with.
    let length = request
        .header("content-length")
        .and_then(|l| l.parse::<usize>().ok());
    if request.chunked() || length != Some(body.len()) {
        return message(400, "Bad Content-Length: ");
    }
    let Some(content_type) = request.header("content-type").filter(|t| !t.is_empty()) else {
        return message(400, "Bad Content-Type: ");
    };
    let Some((release_id, name, label)) = upload_target(request) else {
        return validation("ReleaseAsset", "missing_field", "name");
    };
    let id = state.next_id;
    let Some(release) = state.releases.iter_mut().find(|r| r.id == release_id) else {
        return not_found();
    };
    if release.assets.iter().any(|a| a.name == name) {
        return (
            422,
            Vec::new(),
            json::conflict_body().to_string().into_bytes(),
        );
    }
    let asset = Asset {
        id,
        name,
        label,
        content_type,
        state: "uploaded".into(),
        data: body,
    };
    release.assets.push(asset.clone());
    let release = release.clone();
    state.next_id += 1;
    ok(201, json::asset_json(hosts, owner, repo, &release, &asset))
}

/// One page of `items` as `page` and `per_page` ask (30 by default, at most the cap), with
/// GitHub's `Link` header naming the others.
fn page(state: &State, hosts: &Hosts, request: &Head, what: &str, items: Vec<Value>) -> Response {
    let per_page = request
        .query("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, state.max_per_page);
    let number = request
        .query("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let pages = items.len().div_ceil(per_page).max(1);
    let link = |n: usize, rel: &str| {
        format!(
            "<{}/repositories/{REPO_ID}/{what}?per_page={per_page}&page={n}>; rel=\"{rel}\"",
            hosts.api
        )
    };
    let mut links = Vec::new();
    if number > 1 {
        links.push(link(number - 1, "prev"));
    }
    if number < pages {
        links.push(link(number + 1, "next"));
        links.push(link(pages, "last"));
    }
    if number > 1 {
        links.push(link(1, "first"));
    }
    let slice: Vec<Value> = items
        .into_iter()
        .skip((number - 1) * per_page)
        .take(per_page)
        .collect();
    let headers = if links.is_empty() {
        Vec::new()
    } else {
        vec![("link", links.join(", "))]
    };
    (200, headers, Value::Array(slice).to_string().into_bytes())
}

impl Fault {
    fn matches(&self, line: &str) -> bool {
        let (method_sent, path_sent) = line.split_once(' ').unwrap_or((line, ""));
        match self {
            Fault::Status { method, path, .. }
            | Fault::LoseAnswer { method, path }
            | Fault::EchoAuthorization { method, path, .. } => {
                method_sent == *method && path_sent.starts_with(path)
            }
            Fault::StarterThen502 { .. }
            | Fault::ResetMidUpload { .. }
            | Fault::Stall { .. }
            | Fault::AlreadyThere { .. } => {
                method_sent == "POST" && path_sent.starts_with("/uploads/")
            }
        }
    }
}

/// `(release id, name, label)` of an upload `/repos/o/r/releases/ID/assets?name=..`.
fn upload_target(request: &Head) -> Option<(u64, String, Option<String>)> {
    let id = request
        .route()
        .trim_end_matches("/assets")
        .rsplit('/')
        .next()?
        .parse()
        .ok()?;
    Some((id, request.query("name")?, request.query("label")))
}
