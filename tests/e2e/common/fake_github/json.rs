//! The fake's answers, built from the recorded GitHub responses so that every field a client
//! may read is there, in GitHub's shape.

use serde_json::{Value, json};

use super::{Asset, Release};

pub const RELEASE_FIXTURE: &str =
    include_str!("../../../fixtures/github-recorded/release-assets/normalized-fixture.json");
pub const CONFLICT_FIXTURE: &str = include_str!(
    "../../../fixtures/github-recorded/release-assets-conflict/normalized-fixture.json"
);
pub const REFS_FIXTURE: &str =
    include_str!("../../../fixtures/github-recorded/git-refs/normalized-fixture.json");
pub const REPOSITORY_FIXTURE: &str =
    include_str!("../../../fixtures/github-recorded/get-repository/normalized-fixture.json");
pub const ERRORS_FIXTURE: &str =
    include_str!("../../../fixtures/github-recorded/errors/normalized-fixture.json");

/// The recorded exchanges of a fixture.
pub fn fixture(text: &str) -> Vec<Value> {
    serde_json::from_str(text).unwrap()
}

/// Where the fake's two hosts are, as a client sees them.
pub struct Hosts<'a> {
    /// The API root, e.g. `http://127.0.0.1:1234/api/v3`.
    pub api: &'a str,
    /// The upload host, e.g. `http://127.0.0.1:5678`.
    pub uploads: &'a str,
    /// Whether assets carry `digest` (GitHub has none for assets uploaded before June 2025).
    pub digests: bool,
    /// Whether published releases are immutable.
    pub immutable: bool,
}

/// A repository as `GET /repos/{owner}/{repo}` answers, its default branch as recorded.
pub fn repository_json(owner: &str, repo: &str) -> Value {
    let mut json = fixture(REPOSITORY_FIXTURE)[0]["response"].clone();
    json["name"] = json!(repo);
    json["full_name"] = json!(format!("{owner}/{repo}"));
    json["owner"]["login"] = json!(owner);
    json["html_url"] = json!(format!("https://github.com/{owner}/{repo}"));
    json
}

pub fn release_json(hosts: &Hosts, owner: &str, repo: &str, r: &Release) -> Value {
    let mut json = fixture(RELEASE_FIXTURE)[0]["response"].clone();
    let api = format!("{}/repos/{owner}/{repo}/releases/{}", hosts.api, r.id);
    json["url"] = json!(api);
    json["assets_url"] = json!(format!("{api}/assets"));
    json["upload_url"] = json!(format!(
        "{}/repos/{owner}/{repo}/releases/{}/assets{{?name,label}}",
        hosts.uploads, r.id
    ));
    json["html_url"] = json!(format!(
        "https://github.com/{owner}/{repo}/releases/tag/{}",
        r.tag_name
    ));
    json["id"] = json!(r.id);
    json["tag_name"] = json!(r.tag_name);
    json["target_commitish"] = json!(r.target_commitish);
    json["name"] = json!(r.name);
    json["body"] = json!(r.body);
    json["draft"] = json!(r.draft);
    json["prerelease"] = json!(r.prerelease);
    if r.draft {
        json["published_at"] = Value::Null;
    }
    json["immutable"] = json!(hosts.immutable && !r.draft);
    json["assets"] = Value::Array(
        r.assets
            .iter()
            .map(|a| asset_json(hosts, owner, repo, r, a))
            .collect(),
    );
    json
}

pub fn asset_json(hosts: &Hosts, owner: &str, repo: &str, r: &Release, a: &Asset) -> Value {
    let mut json = fixture(RELEASE_FIXTURE)[1]["response"].clone();
    json["url"] = json!(format!(
        "{}/repos/{owner}/{repo}/releases/assets/{}",
        hosts.api, a.id
    ));
    json["id"] = json!(a.id);
    json["name"] = json!(a.name);
    json["label"] = json!(a.label);
    json["content_type"] = json!(a.content_type);
    json["state"] = json!(a.state);
    json["size"] = json!(a.data.len());
    // GitHub reports each uploaded asset's SHA-256, as `sha256:<hex>`.
    json["digest"] = if a.state == "uploaded" && hosts.digests {
        json!(format!("sha256:{}", super::sha256(&a.data)))
    } else {
        Value::Null
    };
    json["browser_download_url"] = json!(format!(
        "https://github.com/{owner}/{repo}/releases/download/{}/{}",
        r.tag_name, a.name
    ));
    json
}

pub fn ref_json(hosts: &Hosts, owner: &str, repo: &str, name: &str, sha: &str) -> Value {
    let mut json = fixture(REFS_FIXTURE)[1]["response"].clone();
    json["ref"] = json!(name);
    json["url"] = json!(format!("{}/repos/{owner}/{repo}/git/{name}", hosts.api));
    json["object"]["sha"] = json!(sha);
    json["object"]["url"] = json!(format!(
        "{}/repos/{owner}/{repo}/git/commits/{sha}",
        hosts.api
    ));
    json
}

/// The recorded 422 for an upload whose name is taken.
pub fn conflict_body() -> Value {
    fixture(CONFLICT_FIXTURE)[1]["response"].clone()
}

pub fn ok(status: u16, json: Value) -> crate::common::wire::Response {
    (status, Vec::new(), json.to_string().into_bytes())
}

pub fn message(status: u16, text: &str) -> crate::common::wire::Response {
    (
        status,
        Vec::new(),
        json!({"message": text, "documentation_url": "https://docs.github.com/rest"})
            .to_string()
            .into_bytes(),
    )
}

pub fn not_found() -> crate::common::wire::Response {
    message(404, "Not Found")
}

/// GitHub's 422 in the recorded shape (`errors/` fixture).
pub fn validation(resource: &str, code: &str, field: &str) -> crate::common::wire::Response {
    let mut json = fixture(ERRORS_FIXTURE)[0]["response"].clone();
    json["errors"] = json!([{"resource": resource, "code": code, "field": field}]);
    (422, Vec::new(), json.to_string().into_bytes())
}
