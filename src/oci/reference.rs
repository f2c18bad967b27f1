//! Image references (`registry/repository[:tag][@digest]`) and the distribution spec's
//! grammar for repository names and tags.

use crate::invalid::Invalid;
use std::fmt;

use regex::Regex;
use std::sync::LazyLock;

/// Docker Hub's registry name as users write it.
pub const DOCKER_HUB: &str = "docker.io";
/// The host Docker Hub's API is served from.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

static REPOSITORY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
        .expect("valid regex")
});
static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").expect("valid regex"));

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host (with port), as written: `ghcr.io`, `127.0.0.1:5000`, `docker.io`.
    pub registry: String,
    /// Repository path: `acme/demo` (`library/x` for official Docker Hub images).
    pub repository: String,
    /// Tag, if given.
    pub tag: Option<String>,
    /// Digest, if given.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses a reference; a missing registry means Docker Hub.
    pub fn parse(text: &str) -> Result<Reference, Invalid> {
        let text = text.trim();
        if text.is_empty() {
            return Err("an image reference cannot be empty".into());
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                if super::digest_hex(digest).is_none() {
                    return Err(format!("`{digest}` is not a sha256 digest").into());
                }
                (rest, Some(digest.to_string()))
            }
            None => (text, None),
        };
        // A tag follows the last `:` after the last `/` (a port's colon comes before one).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if !REPOSITORY.is_match(&repository) {
            return Err(format!(
                "`{repository}` is not a valid repository name: use lowercase letters, digits and separators (`.`, `_`, `-`, `/`)"
            ).into());
        }
        if let Some(tag) = &tag {
            check_tag(tag)?;
        }
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host the registry API answers on.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The tag or digest to fetch: the digest when both are given, else the tag, else `latest`.
    pub fn target(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Checks a tag against the distribution spec: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), Invalid> {
    if TAG.is_match(tag) {
        return Ok(());
    }
    let hint = if tag.contains('+') {
        ": `+` is not allowed in tags (semver build metadata); use `{{ version | replace(\"+\", \"-\") }}`"
    } else if tag.is_empty() {
        ": it is empty"
    } else if tag.len() > 128 {
        ": tags are at most 128 characters"
    } else {
        ": tags use letters, digits, `_`, `.` and `-`, and cannot start with `.` or `-`"
    };
    Err(format!("`{tag}` is not a valid image tag{hint}").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registries_ports_tags_and_digests() {
        let r = Reference::parse("127.0.0.1:5000/acme/demo:1.2.3").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "acme/demo", Some("1.2.3"))
        );
        let r = Reference::parse("127.0.0.1:5000/acme/demo").unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.target(), "latest");
        let r = Reference::parse("alpine").unwrap();
        assert_eq!(r.name(), "docker.io/library/alpine");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("ghcr.io/acme/demo:1@{d}")).unwrap();
        assert_eq!(r.target(), d);
        assert_eq!(r.to_string(), format!("ghcr.io/acme/demo:1@{d}"));
        assert!(Reference::parse("localhost/x").unwrap().registry == "localhost");
    }

    #[test]
    fn refuses_bad_names_and_tags() {
        assert!(
            Reference::parse("ghcr.io/Acme/demo")
                .unwrap_err()
                .to_string()
                .contains("not a valid repository")
        );
        assert!(
            Reference::parse("ghcr.io/acme/demo:1.0+build")
                .unwrap_err()
                .to_string()
                .contains("`+` is not allowed")
        );
        assert!(Reference::parse("x@sha256:zz").is_err());
        assert!(check_tag("latest").is_ok());
        assert!(check_tag("1.2.3-nightly.20261123.abc1234").is_ok());
        assert!(check_tag(".hidden").is_err());
        assert!(
            check_tag(&"a".repeat(129))
                .unwrap_err()
                .to_string()
                .contains("128")
        );
        assert!(check_tag("").is_err());
    }
}
