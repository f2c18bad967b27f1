//! Registry credentials and authentication challenges.
//!
//! Credentials come from, in order: the pipeline (`auth = { username, password_env }`),
//! `SHIPIT_REGISTRY_USERNAME` / `SHIPIT_REGISTRY_PASSWORD`, the Docker config
//! (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`: `credHelpers`, `credsStore`,
//! `auths`), and for `ghcr.io` `GITHUB_TOKEN`. None of them is ever printed.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

/// A user name with its password or token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name (`<token>` when the secret is an identity token).
    pub username: String,
    /// Password, access token or identity token.
    pub secret: String,
    /// Where they came from, for messages.
    pub source: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credentials({} from {}, secret ***)",
            self.username, self.source
        )
    }
}

impl Credentials {
    /// The `Authorization: Basic` value.
    pub fn basic(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.username, self.secret))
        )
    }

    /// An identity (refresh) token, exchanged for access tokens with OAuth2.
    pub fn identity_token(&self) -> Option<&str> {
        (self.username == "<token>").then_some(self.secret.as_str())
    }
}

/// Why credentials could not be looked up (finding none is not an error).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The Docker config file could not be read.
    #[error("cannot read {}", .0.display())]
    Read(PathBuf, #[source] std::io::Error),
    /// The Docker config file is not one.
    #[error("{} is not a valid Docker config", .0.display())]
    Config(PathBuf, #[source] serde_json::Error),
    /// An `auth` entry does not decode.
    #[error("the `auth` for {registry} in {file} is not base64 of `user:password`")]
    BadAuth {
        /// The registry.
        registry: String,
        /// The config file.
        file: String,
    },
    /// The credential helper could not be run.
    #[error("cannot run the Docker credential helper {0}")]
    Helper(String, #[source] std::io::Error),
    /// The credential helper answered something else than credentials.
    #[error("{0} answered something other than credentials")]
    HelperAnswer(String),
}

/// Finds credentials for `registry` (as written in the image name). Whatever is found is
/// registered with the process's secret masker, in the forms it travels in.
pub fn resolve(
    registry: &str,
    pipeline: Option<Credentials>,
) -> Result<Option<Credentials>, AuthError> {
    let found = find(registry, pipeline)?;
    if let Some(credentials) = &found {
        crate::secrets::register(&credentials.secret);
        crate::secrets::register(&credentials.basic());
    }
    Ok(found)
}

fn find(registry: &str, pipeline: Option<Credentials>) -> Result<Option<Credentials>, AuthError> {
    if pipeline.is_some() {
        return Ok(pipeline);
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let (Some(username), Some(secret)) = (
        env(crate::env_vars::SHIPIT_REGISTRY_USERNAME),
        env(crate::env_vars::SHIPIT_REGISTRY_PASSWORD),
    ) {
        return Ok(Some(Credentials {
            username,
            secret,
            source: "SHIPIT_REGISTRY_USERNAME/SHIPIT_REGISTRY_PASSWORD".into(),
        }));
    }
    if let Some(found) = from_docker_config(registry)? {
        return Ok(Some(found));
    }
    if normalize(registry) == "ghcr.io"
        && let Some(secret) = env(crate::env_vars::GITHUB_TOKEN)
    {
        return Ok(Some(Credentials {
            username: env(crate::env_vars::GITHUB_ACTOR).unwrap_or_else(|| "shipit".into()),
            secret,
            source: "GITHUB_TOKEN".into(),
        }));
    }
    Ok(None)
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os(crate::env_vars::DOCKER_CONFIG) {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json")),
    }
}

fn from_docker_config(registry: &str) -> Result<Option<Credentials>, AuthError> {
    match docker_config_path() {
        Some(path) => from_config_file(&path, registry),
        None => Ok(None),
    }
}

fn from_config_file(
    path: &std::path::Path,
    registry: &str,
) -> Result<Option<Credentials>, AuthError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuthError::Read(path.to_path_buf(), e)),
    };
    let config: DockerConfig =
        serde_json::from_str(&text).map_err(|e| AuthError::Config(path.to_path_buf(), e))?;
    let wanted = normalize(registry);
    let source = path.display().to_string();
    let helper = config
        .cred_helpers
        .iter()
        .find(|(host, _)| normalize(host) == wanted)
        .map(|(_, helper)| helper)
        .or(config.creds_store.as_ref());
    if let Some(helper) = helper
        && let Some(found) = from_helper(helper, &server_url(registry))?
    {
        return Ok(Some(found));
    }
    let Some(entry) = config
        .auths
        .iter()
        .find(|(host, _)| normalize(host) == wanted)
        .map(|(_, e)| e)
    else {
        return Ok(None);
    };
    if let Some(token) = &entry.identitytoken {
        return Ok(Some(Credentials {
            username: "<token>".into(),
            secret: token.clone(),
            source,
        }));
    }
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(Some(Credentials {
            username: username.clone(),
            secret: password.clone(),
            source,
        }));
    }
    if let Some(auth) = &entry.auth {
        let decoded = STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            })
            .ok_or_else(|| AuthError::BadAuth {
                registry: registry.to_string(),
                file: source.clone(),
            })?;
        return Ok(Some(Credentials {
            username: decoded.0,
            secret: decoded.1,
            source,
        }));
    }
    Ok(None)
}

/// Asks `docker-credential-<helper> get`, as the Docker CLI does.
fn from_helper(helper: &str, server: &str) -> Result<Option<Credentials>, AuthError> {
    let program = format!("docker-credential-{helper}");
    let mut child = match Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return Err(AuthError::Helper(program, e)),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let output = child
        .wait_with_output()
        .map_err(|e| AuthError::Helper(program.clone(), e))?;
    if !output.status.success() {
        // "credentials not found" is how helpers say they have nothing for this server.
        return Ok(None);
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        username: String,
        secret: String,
    }
    let answer: Answer = serde_json::from_slice(&output.stdout)
        .map_err(|_| AuthError::HelperAnswer(program.clone()))?;
    Ok(Some(Credentials {
        username: answer.username,
        secret: answer.secret,
        source: program,
    }))
}

/// The server name Docker keys credentials by.
fn server_url(registry: &str) -> String {
    if normalize(registry) == super::reference::DOCKER_HUB {
        "https://index.docker.io/v1/".into()
    } else {
        registry.into()
    }
}

/// A registry name as written in config files (`https://host/v1/`) reduced to its host.
fn normalize(key: &str) -> String {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            super::reference::DOCKER_HUB.into()
        }
        _ => host,
    }
}

/// What a registry's `WWW-Authenticate` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Send the user name and password on every request.
    Basic,
    /// Fetch a token from `realm` and send it.
    Bearer {
        /// Token endpoint.
        realm: String,
        /// `service` parameter.
        service: Option<String>,
        /// `scope` parameter, when the registry names one.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut params = BTreeMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        params.insert(key, value.to_string());
        rest = next.trim_start_matches([',', ' ']);
    }
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.remove("realm")?,
            service: params.remove("service"),
            scope: params.remove("scope"),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="shipit-test""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull,push".into()),
            })
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn config_keys_and_secrets_never_printed() {
        assert_eq!(normalize("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(normalize("https://GHCR.io"), "ghcr.io");
        let c = Credentials {
            username: "u".into(),
            secret: "hunter22".into(),
            source: "test".into(),
        };
        assert!(!format!("{c:?}").contains("hunter22"));
        assert_eq!(c.basic(), "Basic dTpodW50ZXIyMg==");
    }

    #[test]
    fn reads_docker_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"https://127.0.0.1:5999":{"auth":"c2hpcGl0OnMzY3JldA=="}}}"#,
        )
        .unwrap();
        let path = dir.path().join("config.json");
        let found = from_config_file(&path, "127.0.0.1:5999").unwrap().unwrap();
        assert_eq!(
            (found.username.as_str(), found.secret.as_str()),
            ("shipit", "s3cret")
        );
        assert_eq!(from_config_file(&path, "127.0.0.1:5998").unwrap(), None);
    }
}
