//! What the release flow asks of the repository itself: a tag moved, a pull request opened,
//! the default branch.

use reqwest::Method;
use serde_json::{Value, json};

use super::encoding::encode_ref;
use super::{Body, Client, GithubError, StatusCode};

impl Client {
    /// Points `tag` at `sha`, creating the tag when it does not exist yet.
    pub async fn move_tag(&self, repo: &str, tag: &str, sha: &str) -> Result<(), GithubError> {
        let what = format!("moving the tag {tag}");
        let url = self.endpoint(&format!("/repos/{repo}/git/refs/tags/{}", encode_ref(tag)))?;
        let answer = self
            .call(
                &what,
                Method::PATCH,
                &url,
                Body::Json(&json!({"sha": sha, "force": true})),
            )
            .await?;
        if answer.status == StatusCode::OK {
            return Ok(());
        }
        let url = self.endpoint(&format!("/repos/{repo}/git/refs"))?;
        let answer = self
            .call(
                &what,
                Method::POST,
                &url,
                Body::Json(&json!({"ref": format!("refs/tags/{tag}"), "sha": sha})),
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
        let url = self.endpoint(&format!("/repos/{repo}/pulls"))?;
        let answer = self
            .call(&what, Method::POST, &url, Body::Json(&request))
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

    /// The repository's default branch.
    pub async fn default_branch(&self, repo: &str) -> Result<String, GithubError> {
        let what = format!("reading the repository {repo}");
        let url = self.endpoint(&format!("/repos/{repo}"))?;
        let answer = self.call(&what, Method::GET, &url, Body::None).await?;
        let answer = Self::expect(answer, &what, &[StatusCode::OK])?;
        let value: Value = Self::parse(&answer, &what)?;
        value["default_branch"]
            .as_str()
            .filter(|b| !b.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| GithubError::Api {
                what,
                status: 200,
                message: "the answer names no default branch".into(),
            })
    }

    /// The attestations of the artifact with `digest` (`sha256:<hex>`), as GitHub's API
    /// answers: `{"attestations": [{"bundle": ...}, ...]}`; none is an empty list.
    pub async fn attestations(&self, repo: &str, digest: &str) -> Result<Value, GithubError> {
        let what = format!("reading the attestations of {digest} on {repo}");
        let url = self.endpoint(&format!("/repos/{repo}/attestations/{digest}"))?;
        let answer = self.call(&what, Method::GET, &url, Body::None).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(json!({ "attestations": [] }));
        }
        let answer = Self::expect(answer, &what, &[StatusCode::OK])?;
        Self::parse(&answer, &what)
    }
}
