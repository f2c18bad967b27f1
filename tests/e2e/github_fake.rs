//! The fake GitHub (tests/common/fake_github/) checked against GitHub's recorded exchanges and
//! the behaviours GitHub has today, so that what the release tests prove holds against GitHub.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;

use regex::Regex;
use serde_json::{Value, json};

use crate::common::fake_github::{
    CONFLICT_FIXTURE, FakeGithub, Fault, MAIN_SHA, REFS_FIXTURE, RELEASE_FIXTURE, fixture,
};

const TOKEN: &str = "0000000000000000000000000000000000000001";

/// An answer: status, headers (lower-case names), body.
struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// One request over a fresh connection, written by hand so that every header is the test's.
fn send(url: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Body) -> Reply {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, base) = rest.split_once('/').map_or((rest, ""), |(a, b)| (a, b));
    let mut stream = TcpStream::connect(authority).unwrap();
    let target = if base.is_empty() {
        path.to_string()
    } else {
        format!("/{base}{path}")
    };
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let payload = match body {
        Body::None => Vec::new(),
        Body::Bytes(bytes) => {
            head.push_str(&format!("content-length: {}\r\n", bytes.len()));
            bytes.to_vec()
        }
        Body::Chunked(bytes) => {
            head.push_str("transfer-encoding: chunked\r\n");
            let mut chunked = format!("{:x}\r\n", bytes.len()).into_bytes();
            chunked.extend_from_slice(bytes);
            chunked.extend_from_slice(b"\r\n0\r\n\r\n");
            chunked
        }
    };
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&payload).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let text = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = text.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status: status.parse().unwrap(),
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

enum Body<'a> {
    None,
    Bytes(&'a [u8]),
    Chunked(&'a [u8]),
}

const AUTH: (&str, &str) = (
    "authorization",
    "token 0000000000000000000000000000000000000001",
);
const AGENT: (&str, &str) = ("user-agent", "octokit-fixtures-test");

/// The keys of an object, or of a list's first object.
fn keys(value: &Value) -> Vec<String> {
    let object = match value {
        Value::Array(items) => items.first().and_then(Value::as_object),
        other => other.as_object(),
    };
    let mut keys: Vec<String> = object
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// Replays a recorded exchange list against the fake: same statuses, every recorded field
/// present (the fake adds `digest`, which GitHub reports today and the recording predates),
/// recorded error bodies equal. Release and asset ids are mapped from the recording's to the
/// fake's as the answers name them.
fn replay(fake: &FakeGithub, recording: &str, repo: &str, release_id: u64) {
    let release_path = Regex::new(r"/releases/(\d+)/assets").unwrap();
    let asset_path = Regex::new(r"/releases/assets/(\d+)").unwrap();
    let mut asset_ids: HashMap<String, String> = HashMap::new();
    for (step, exchange) in fixture(recording).iter().enumerate() {
        let method = exchange["method"].as_str().unwrap().to_ascii_uppercase();
        let recorded_path = exchange["path"].as_str().unwrap().replace(
            &format!("/repos/octokit-fixture-org/{repo}/"),
            "/repos/acme/tiny/",
        );
        let path = release_path.replace(&recorded_path, format!("/releases/{release_id}/assets"));
        let path = asset_path
            .replace(&path, |c: &regex::Captures| {
                format!(
                    "/releases/assets/{}",
                    asset_ids.get(&c[1]).unwrap_or(&c[1].to_string())
                )
            })
            .into_owned();
        let base = if exchange["scope"].as_str().unwrap().contains("uploads.") {
            fake.uploads.clone()
        } else {
            fake.url.clone()
        };
        let content_type = exchange["reqheaders"]["content-type"].as_str();
        let mut headers = vec![AUTH, AGENT];
        if let Some(content_type) = content_type {
            headers.push(("content-type", content_type));
        }
        let bytes = match &exchange["body"] {
            Value::String(text) if text.is_empty() => None,
            Value::String(text) => Some(text.as_bytes().to_vec()),
            other => Some(other.to_string().into_bytes()),
        };
        let reply = send(
            &base,
            &method,
            &path,
            &headers,
            bytes.as_deref().map_or(Body::None, Body::Bytes),
        );
        let what = format!("step {step}: {method} {path}");
        assert_eq!(
            reply.status,
            exchange["status"].as_u64().unwrap() as u16,
            "{what}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        let recorded = &exchange["response"];
        let answered = reply.json();
        let mut expected = keys(recorded);
        // Fields GitHub added after the recording: assets' `digest` (June 2025) and
        // releases' `immutable` (immutable releases, 2025).
        if expected.contains(&"browser_download_url".to_string()) {
            expected.push("digest".into());
            expected.sort();
        }
        if expected.contains(&"upload_url".to_string()) {
            expected.push("immutable".into());
            expected.sort();
        }
        assert_eq!(keys(&answered), expected, "{what}");
        if reply.status == 422 {
            assert_eq!(answered["errors"], recorded["errors"], "{what}");
            assert_eq!(answered["message"], recorded["message"], "{what}");
        }
        // Learn the fake's ids for the recording's assets.
        let pairs: Vec<(&Value, &Value)> = match (recorded, &answered) {
            (Value::Array(r), Value::Array(a)) => r.iter().zip(a.iter()).collect(),
            (r, a) => vec![(r, a)],
        };
        for (r, a) in pairs {
            if r.get("browser_download_url").is_some() {
                asset_ids.insert(r["id"].to_string(), a["id"].to_string());
            }
        }
        // Headers GitHub sends on every API answer.
        if reply.status != 204 {
            assert!(
                reply.headers.contains_key("x-github-request-id"),
                "{what}: {:?}",
                reply.headers
            );
        }
    }
}

#[test]
fn the_fake_replays_the_recorded_release_asset_exchanges() {
    let fake = FakeGithub::start(TOKEN);
    fake.add_release("v1.0.0", false);
    let id = fake.releases()[0].id;
    replay(&fake, RELEASE_FIXTURE, "release-assets", id);
    let calls = fake.calls();
    assert!(
        calls[1].starts_with("POST /uploads/repos/acme/tiny/releases/"),
        "{calls:#?}"
    );
    assert!(fake.releases()[0].assets.is_empty());
}

#[test]
fn the_fake_replays_the_recorded_name_conflict_and_its_resolution() {
    let fake = FakeGithub::start(TOKEN);
    fake.add_release("v1.0.0", false);
    fake.add_asset("v1.0.0", "test-upload.txt", b"Hello, world!\n");
    let id = fake.releases()[0].id;
    replay(&fake, CONFLICT_FIXTURE, "release-assets-conflict", id);
    let assets = &fake.releases()[0].assets;
    assert_eq!(assets.len(), 1);
    assert_eq!(assets[0].data, b"Hello, world!\n");
    assert_eq!(assets[0].content_type, "text/plain");
}

#[test]
fn refs_are_created_once_moved_and_deleted_as_recorded() {
    let fake = FakeGithub::start(TOKEN);
    let recorded = fixture(REFS_FIXTURE);
    let post = |sha: &str| {
        send(
            &fake.url,
            "POST",
            "/repos/acme/tiny/git/refs",
            &[AUTH, AGENT, ("content-type", "application/json")],
            Body::Bytes(
                json!({"ref": "refs/heads/test", "sha": sha})
                    .to_string()
                    .as_bytes(),
            ),
        )
    };
    let created = post("0000000000000000000000000000000000000002");
    assert_eq!(created.status, 201);
    assert_eq!(keys(&created.json()), keys(&recorded[1]["response"]));
    // GitHub refuses to create a ref that exists.
    let again = post("0000000000000000000000000000000000000003");
    assert_eq!(again.status, 422);
    assert_eq!(again.json()["message"], "Reference already exists");
    let moved = send(
        &fake.url,
        "PATCH",
        "/repos/acme/tiny/git/refs/heads/test",
        &[AUTH, AGENT, ("content-type", "application/json")],
        Body::Bytes(br#"{"sha":"0000000000000000000000000000000000000001"}"#),
    );
    assert_eq!(moved.status, recorded[2]["status"].as_u64().unwrap() as u16);
    assert_eq!(
        moved.json()["object"]["sha"],
        recorded[2]["response"]["object"]["sha"]
    );
    let deleted = send(
        &fake.url,
        "DELETE",
        "/repos/acme/tiny/git/refs/heads/test",
        &[AUTH, AGENT],
        Body::None,
    );
    assert_eq!(deleted.status, 204);
    let missing = send(
        &fake.url,
        "PATCH",
        "/repos/acme/tiny/git/refs/heads/test",
        &[AUTH, AGENT, ("content-type", "application/json")],
        Body::Bytes(br#"{"sha":"0000000000000000000000000000000000000001"}"#),
    );
    assert_eq!(missing.status, 422);
    assert_eq!(fake.ref_sha("refs/heads/test"), None);
}

fn create_release(fake: &FakeGithub, body: Value) -> Reply {
    send(
        &fake.url,
        "POST",
        "/repos/acme/tiny/releases",
        &[AUTH, AGENT, ("content-type", "application/json")],
        Body::Bytes(body.to_string().as_bytes()),
    )
}

fn patch_release(fake: &FakeGithub, id: &Value, body: Value) -> Reply {
    send(
        &fake.url,
        "PATCH",
        &format!("/repos/acme/tiny/releases/{id}"),
        &[AUTH, AGENT, ("content-type", "application/json")],
        Body::Bytes(body.to_string().as_bytes()),
    )
}

#[test]
fn publishing_creates_the_tag_at_target_commitish_and_records_make_latest() {
    let fake = FakeGithub::start(TOKEN);
    let commit = "2222222222222222222222222222222222222222";
    let draft = create_release(
        &fake,
        json!({"tag_name": "v1.0.0", "target_commitish": commit, "draft": true}),
    );
    assert_eq!(draft.status, 201);
    // A draft owns no tag yet.
    assert_eq!(fake.ref_sha("refs/tags/v1.0.0"), None);
    let id = draft.json()["id"].clone();
    let published = patch_release(&fake, &id, json!({"draft": false, "make_latest": "true"}));
    assert_eq!(published.status, 200);
    assert_eq!(fake.ref_sha("refs/tags/v1.0.0").as_deref(), Some(commit));
    assert_eq!(fake.latest().as_deref(), Some("v1.0.0"));
    assert_eq!(fake.releases()[0].make_latest.as_deref(), Some("true"));

    // A branch name resolves to its head; a pre-release never becomes latest.
    let pre = create_release(
        &fake,
        json!({"tag_name": "v2.0.0-rc.1", "target_commitish": "main", "prerelease": true, "make_latest": "true"}),
    );
    assert_eq!(pre.status, 201);
    assert_eq!(
        fake.ref_sha("refs/tags/v2.0.0-rc.1").as_deref(),
        Some(MAIN_SHA)
    );
    assert_eq!(fake.latest().as_deref(), Some("v1.0.0"));
    // `make_latest: false` leaves the latest alone; the default makes a stable release latest.
    let quiet = create_release(&fake, json!({"tag_name": "v0.9.1", "make_latest": "false"}));
    assert_eq!(quiet.status, 201);
    assert_eq!(fake.latest().as_deref(), Some("v1.0.0"));
    let newest = create_release(&fake, json!({"tag_name": "v1.1.0"}));
    assert_eq!(newest.status, 201);
    assert_eq!(fake.latest().as_deref(), Some("v1.1.0"));
    let latest = send(
        &fake.url,
        "GET",
        "/repos/acme/tiny/releases/latest",
        &[AUTH, AGENT],
        Body::None,
    );
    assert_eq!(latest.json()["tag_name"], "v1.1.0");

    // A second published release for one tag is refused, as a branch that does not exist.
    let twice = create_release(&fake, json!({"tag_name": "v1.0.0"}));
    assert_eq!(twice.status, 422);
    assert_eq!(twice.json()["errors"][0]["code"], "already_exists");
    let nowhere = create_release(
        &fake,
        json!({"tag_name": "v3.0.0", "target_commitish": "no-such-branch"}),
    );
    assert_eq!(nowhere.status, 422);
}

#[test]
fn lists_page_by_link_with_at_most_100_per_page() {
    let fake = FakeGithub::start(TOKEN);
    for n in 0..130 {
        fake.add_release(&format!("v0.{n}.0"), false);
    }
    let first = send(
        &fake.url,
        "GET",
        "/repos/acme/tiny/releases?per_page=500",
        &[AUTH, AGENT],
        Body::None,
    );
    assert_eq!(first.json().as_array().unwrap().len(), 100);
    let link = &first.headers["link"];
    assert!(
        link.contains("rel=\"next\"") && link.contains("rel=\"last\""),
        "{link}"
    );
    // Following `next` as written (GitHub names the repository by id) gives the rest.
    let next = Regex::new(r#"<([^>]+)>; rel="next""#)
        .unwrap()
        .captures(link)
        .unwrap()[1]
        .to_string();
    let next_path = next.strip_prefix(&fake.url).unwrap();
    let second = send(&fake.url, "GET", next_path, &[AUTH, AGENT], Body::None);
    assert_eq!(second.status, 200);
    assert_eq!(second.json().as_array().unwrap().len(), 30);
    assert!(!second.headers["link"].contains("rel=\"next\""));
    // Without per_page GitHub gives 30.
    let default = send(
        &fake.url,
        "GET",
        "/repos/acme/tiny/releases",
        &[AUTH, AGENT],
        Body::None,
    );
    assert_eq!(default.json().as_array().unwrap().len(), 30);
    // Newest first.
    assert_eq!(default.json()[0]["tag_name"], "v0.129.0");
}

#[test]
fn the_api_lives_under_its_prefix_and_uploads_on_their_own_host() {
    let fake = FakeGithub::start(TOKEN);
    fake.add_release("v1.0.0", false);
    let id = fake.releases()[0].id;
    let origin = fake.url.strip_suffix("/api/v3").unwrap();
    let outside = send(
        origin,
        "GET",
        "/repos/acme/tiny/releases",
        &[AUTH, AGENT],
        Body::None,
    );
    assert_eq!(outside.status, 404);
    let release = send(
        &fake.url,
        "GET",
        "/repos/acme/tiny/releases/tags/v1.0.0",
        &[AUTH, AGENT],
        Body::None,
    );
    let upload_url = release.json()["upload_url"].as_str().unwrap().to_string();
    assert!(
        upload_url.starts_with(&format!(
            "{}/repos/acme/tiny/releases/{id}/assets",
            fake.uploads
        )),
        "{upload_url}"
    );
    // The upload route is not on the API host.
    let upload_path = format!("/repos/acme/tiny/releases/{id}/assets?name=a.txt");
    let on_api = send(
        &fake.url,
        "POST",
        &upload_path,
        &[AUTH, AGENT, ("content-type", "text/plain")],
        Body::Bytes(b"a"),
    );
    assert_eq!(on_api.status, 404);
    let uploaded = send(
        &fake.uploads,
        "POST",
        &upload_path,
        &[AUTH, AGENT, ("content-type", "text/plain")],
        Body::Bytes(b"a"),
    );
    assert_eq!(uploaded.status, 201);
    assert_eq!(
        uploaded.json()["digest"],
        json!(format!(
            "sha256:{}",
            crate::common::fake_github::sha256(b"a")
        ))
    );
}

#[test]
fn requests_github_refuses_are_refused() {
    let fake = FakeGithub::start(TOKEN);
    fake.add_release("v1.0.0", false);
    let id = fake.releases()[0].id;
    let path = format!("/repos/acme/tiny/releases/{id}/assets?name=b.txt");
    let no_agent = send(
        &fake.url,
        "GET",
        "/repos/acme/tiny/releases",
        &[AUTH],
        Body::None,
    );
    assert_eq!(no_agent.status, 403);
    let bad_token = send(
        &fake.url,
        "GET",
        "/repos/acme/tiny/releases",
        &[("authorization", "token nope"), AGENT],
        Body::None,
    );
    assert_eq!(bad_token.status, 401);
    assert_eq!(bad_token.json()["message"], "Bad credentials");
    let chunked = send(
        &fake.uploads,
        "POST",
        &path,
        &[AUTH, AGENT, ("content-type", "text/plain")],
        Body::Chunked(b"abc"),
    );
    assert_eq!(chunked.status, 400);
    assert_eq!(chunked.json()["message"], "Bad Content-Length: ");
    let untyped = send(
        &fake.uploads,
        "POST",
        &path,
        &[AUTH, AGENT],
        Body::Bytes(b"abc"),
    );
    assert_eq!(untyped.status, 400);
    assert!(fake.releases()[0].assets.is_empty());

    // Renaming onto a name in use is refused, as GitHub does.
    let a = fake.add_asset("v1.0.0", "a", b"1");
    fake.add_asset("v1.0.0", "b", b"2");
    let rename = send(
        &fake.url,
        "PATCH",
        &format!("/repos/acme/tiny/releases/assets/{a}"),
        &[AUTH, AGENT, ("content-type", "application/json")],
        Body::Bytes(br#"{"name":"b"}"#),
    );
    assert_eq!(rename.status, 422);
    assert_eq!(rename.json()["errors"][0]["code"], "already_exists");
}

#[test]
fn faults_fire_exactly_as_named_and_requests_are_timed() {
    let fake = FakeGithub::start(TOKEN);
    fake.add_release("v1.0.0", false);
    let id = fake.releases()[0].id;
    fake.inject(Fault::StarterThen502 { after: 2 });
    fake.inject(Fault::Status {
        method: "GET",
        path: "/repos/acme/tiny/releases",
        status: 503,
        headers: vec![("retry-after", "7".into())],
        body: json!({"message": "Service Unavailable"}),
    });
    let path = format!("/repos/acme/tiny/releases/{id}/assets?name=c.txt");
    // A 502 after a partial upload is a 502 answer, and leaves a `starter` asset.
    let broken = send(
        &fake.uploads,
        "POST",
        &path,
        &[AUTH, AGENT, ("content-type", "text/plain")],
        Body::Bytes(b"hello"),
    );
    assert_eq!(broken.status, 502);
    let assets = &fake.releases()[0].assets;
    assert_eq!(
        (assets[0].state.as_str(), assets[0].data.as_slice()),
        ("starter", &b"he"[..])
    );
    let refused = send(
        &fake.url,
        "GET",
        "/repos/acme/tiny/releases",
        &[AUTH, AGENT],
        Body::None,
    );
    assert_eq!(refused.status, 503);
    assert_eq!(refused.headers["retry-after"], "7");
    // Fired once each: the same request now succeeds.
    let fine = send(
        &fake.url,
        "GET",
        "/repos/acme/tiny/releases",
        &[AUTH, AGENT],
        Body::None,
    );
    assert_eq!(fine.status, 200);
    assert_eq!(fake.fired().len(), 2);
    let times: Vec<_> = fake.timed_calls().into_iter().map(|(at, _)| at).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    let upload = &fake.requests()[0];
    assert_eq!(upload.header("content-type"), Some("text/plain"));
}

#[test]
fn a_scripted_fault_that_never_fires_fails_the_test() {
    let outcome = std::panic::catch_unwind(|| {
        let fake = FakeGithub::start(TOKEN);
        fake.inject(Fault::LoseAnswer {
            method: "POST",
            path: "/repos/acme/tiny/releases",
        });
        drop(fake);
    });
    let message = outcome.unwrap_err();
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(text.contains("never fired"), "{text}");
}
