//! `[release.npm]`: the build's binaries as npm packages, published with the registry's own
//! HTTP protocol (no `npm` needed): one package per platform (`os`, `cpu`, `libc`) and a root
//! package that depends on them optionally and runs the right one, the way esbuild, biome
//! and turbo ship, so nothing downloads in an install script. Platform packages go first,
//! the root last, so the root never points at a package that is not there yet. A version the
//! registry already has is compared by integrity: the same bytes are skipped, other bytes are
//! an error (a published version cannot change).

pub mod config;
mod error;
pub mod package;

pub use error::NpmError;

use futures_util::future::LocalBoxFuture;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use self::config::{Access, NpmConfig};
use self::package::{Common, NpmPackage};
use crate::config::{Loaded, Problem};
use crate::error::Error;
use crate::http::feed::{self, Feed, FeedError, Upload};
use crate::manifest::Manifest;
use crate::publish::github;
use crate::publish::recheck::{Finding, Rechecked};
use crate::publish::{Context, Planned, Run};

/// The largest packument read back (a package with thousands of versions is a few MiB).
const MAX_PACKUMENT: usize = 64 << 20;
/// The largest tarball downloaded to compare (a platform package holds one binary).
const MAX_TARBALL: usize = 1 << 30;

/// The npm channel.
pub struct Npm;

impl crate::publish::Channel for Npm {
    type Section = NpmConfig;
    const NAME: &'static str = "npm";
    const ABOUT: &'static str =
        "npm packages: one per platform holding the binary, and a root package that runs it";

    fn check(&self, loaded: &Loaded, section: &NpmConfig) -> Vec<Problem> {
        config::check(loaded, section)
    }

    fn plan(&self, cx: &Context<'_>, npm: NpmConfig) -> Result<Box<dyn Planned>, Error> {
        let name = npm.name.clone().unwrap_or_else(|| cx.facts.project.clone());
        if let Some(why) = config::package_name_problem(&name) {
            return Err(Error::Usage(format!(
                "[release.npm]: {why}; set `name` (for example `@acme/{}`)",
                cx.facts.project.to_ascii_lowercase()
            )));
        }
        let repository = crate::publish::github::config::section(cx.loaded)?
            .map(|g| format!("{}/{}", github::server_url().trim_end_matches('/'), g.repo));
        let common = Common {
            name: name.clone(),
            version: cx.facts.version.clone(),
            description: npm
                .description
                .clone()
                .or_else(|| cx.facts.cargo.description.clone())
                .unwrap_or_else(|| name.clone()),
            license: npm
                .license
                .clone()
                .or_else(|| cx.facts.cargo.license.clone()),
            homepage: npm
                .homepage
                .clone()
                .or_else(|| cx.facts.cargo.homepage.clone())
                .or_else(|| repository.clone()),
            repository,
        };
        let platforms = package::platforms(&name, cx.manifest, npm.bin.as_deref())?;
        if platforms.is_empty() {
            return Err(Error::Usage(
                "[release.npm]: the manifest has no binaries for a platform npm knows".into(),
            ));
        }
        let mut packages = platforms
            .iter()
            .map(|p| package::platform_package(&common, p, cx.dist))
            .collect::<Result<Vec<_>, _>>()?;
        let readme = cx
            .facts
            .cargo
            .readme
            .as_ref()
            .and_then(|path| std::fs::read(path).ok());
        packages.push(package::root_package(
            &common,
            &platforms,
            &npm.keywords,
            readme,
        )?);
        let tag = npm.tag.clone().unwrap_or_else(|| {
            if cx.facts.version.contains('-') {
                "next".into()
            } else {
                "latest".into()
            }
        });
        let token_env = npm
            .token_env
            .clone()
            .unwrap_or_else(|| config::DEFAULT_TOKEN_ENV.into());
        crate::secrets::register_env(&token_env);
        Ok(Box::new(NpmPlan {
            registry: npm
                .registry
                .clone()
                .unwrap_or_else(|| config::DEFAULT_REGISTRY.into()),
            token_env,
            access: npm.access.unwrap_or(Access::Public),
            tag,
            version: cx.facts.version.clone(),
            packages,
        }))
    }
}

/// The packages and where they go.
struct NpmPlan {
    registry: String,
    token_env: String,
    access: Access,
    tag: String,
    version: String,
    /// Platform packages, then the root.
    packages: Vec<NpmPackage>,
}

/// What happened to one package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Published,
    Unchanged,
}

impl NpmPlan {
    fn token(&self) -> Result<String, FeedError> {
        feed::credential(&self.token_env, "npm", "a registry token")
    }

    /// Publishes `package` unless the registry has this version already (same bytes:
    /// unchanged; other bytes: an error).
    async fn publish(&self, feed: &Feed, package: &NpmPackage) -> Result<Outcome, NpmError> {
        // npm escapes the scope's slash, and only that.
        let escaped = package.name.replace('/', "%2f");
        let url = feed.url(&escaped);
        let what = format!("reading {} from the npm registry", package.name);
        let reply = feed
            .send(&what, Method::GET, &url, &Upload::None, MAX_PACKUMENT)
            .await?;
        match reply.status {
            StatusCode::OK => {
                let packument: Value = reply.json(&what)?;
                if let Some(existing) = packument["versions"].get(&self.version) {
                    let theirs = existing["dist"]["integrity"].as_str().unwrap_or("");
                    if theirs == package.integrity {
                        return Ok(Outcome::Unchanged);
                    }
                    return Err(NpmError::Changed {
                        package: package.name.clone(),
                        version: self.version.clone(),
                        theirs: if theirs.is_empty() { "unknown" } else { theirs }.to_string(),
                        ours: package.integrity.clone(),
                    });
                }
            }
            StatusCode::NOT_FOUND => {}
            _ => return Err(reply.refused(&what).into()),
        }
        let body = self.document(feed, package);
        let what = format!("publishing {}@{}", package.name, self.version);
        let reply = feed
            .send(&what, Method::PUT, &url, &Upload::Json(body), 1 << 20)
            .await?;
        if reply.status.is_success() {
            Ok(Outcome::Published)
        } else {
            Err(reply.refused(&what).into())
        }
    }

    /// The publish document: the version's manifest with its `dist`, the dist-tag, and the
    /// tarball as an attachment, as `npm publish` sends them.
    fn document(&self, feed: &Feed, package: &NpmPackage) -> Value {
        use base64::Engine;
        let tarball_name = format!("{}-{}.tgz", package.name, self.version);
        let tarball_url = feed.url(&format!("{}/-/{tarball_name}", package.name));
        let mut manifest = package.manifest.clone();
        manifest["_id"] = json!(format!("{}@{}", package.name, self.version));
        manifest["dist"] = json!({
            "integrity": package.integrity,
            "shasum": package.shasum,
            "tarball": tarball_url.as_str(),
        });
        json!({
            "_id": package.name,
            "name": package.name,
            "description": package.manifest["description"],
            "dist-tags": { self.tag.as_str(): self.version },
            "versions": { self.version.as_str(): manifest },
            "access": self.access.as_str(),
            "_attachments": {
                tarball_name: {
                    "content_type": "application/octet-stream",
                    "data": base64::engine::general_purpose::STANDARD.encode(&package.tarball),
                    "length": package.tarball.len(),
                }
            }
        })
    }
}

impl Planned for NpmPlan {
    fn describe(&self, say: &dyn Fn(String)) {
        for package in &self.packages {
            say(format!(
                "would publish {}@{} ({} bytes) to {} under the dist-tag {}, unless it is there already",
                package.name,
                self.version,
                package.tarball.len(),
                self.registry,
                self.tag
            ));
        }
    }

    fn preflight(&self) -> Result<(), Error> {
        Ok(self.token().map(drop)?)
    }

    fn apply<'a>(
        &'a self,
        run: &'a mut Run<'_>,
    ) -> LocalBoxFuture<'a, Result<serde_json::Value, Error>> {
        Box::pin(async move {
            let token = self.token()?;
            let feed = Feed::new(
                "npm registry",
                &self.registry,
                Some(("authorization", format!("Bearer {token}"))),
            )?;
            let mut done = serde_json::Map::new();
            for package in &self.packages {
                let outcome = self.publish(&feed, package).await;
                let outcome = match outcome {
                    Ok(outcome) => outcome,
                    Err(e) => {
                        // What went out before the failure stays recorded, for the re-run.
                        run.manifest
                            .published
                            .record("npm", self.record(&done, false));
                        run.record()?;
                        return Err(e.into());
                    }
                };
                run.say(match outcome {
                    Outcome::Published => format!(
                        "published {}@{} (dist-tag {})",
                        package.name, self.version, self.tag
                    ),
                    Outcome::Unchanged => format!(
                        "{}@{} is already on the registry with the same contents",
                        package.name, self.version
                    ),
                });
                done.insert(
                    package.name.clone(),
                    json!(match outcome {
                        Outcome::Published => "published",
                        Outcome::Unchanged => "unchanged",
                    }),
                );
            }
            let record = self.record(&done, true);
            run.manifest.published.record("npm", record.clone());
            run.record()?;
            Ok(record)
        })
    }

    fn recheck<'a>(&'a self, _: &'a Manifest) -> Rechecked<'a> {
        Box::pin(async move {
            let feed = Feed::new(
                "npm registry",
                &self.registry,
                Some(("authorization", format!("Bearer {}", self.token()?))),
            )?;
            let mut findings = Vec::new();
            for package in &self.packages {
                findings.extend(self.recheck_package(&feed, package).await?);
            }
            Ok(findings)
        })
    }
}

impl NpmPlan {
    /// What the registry holds of `package` at this version: the integrity its packument
    /// states, then the integrity of the tarball it serves (what `npm install` checks).
    async fn recheck_package(
        &self,
        feed: &Feed,
        package: &NpmPackage,
    ) -> Result<Vec<Finding>, NpmError> {
        let label = format!("{}@{}", package.name, self.version);
        let url = feed.url(&package.name.replace('/', "%2f"));
        let what = format!("reading {} from the npm registry", package.name);
        let reply = feed
            .send(&what, Method::GET, &url, &Upload::None, MAX_PACKUMENT)
            .await?;
        let missing = || vec![Finding::new(&label, &package.integrity, None)];
        match reply.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(missing()),
            _ => return Err(reply.refused(&what).into()),
        }
        let packument: Value = reply.json(&what)?;
        let dist = &packument["versions"][&self.version]["dist"];
        let Some(stated) = dist["integrity"].as_str() else {
            return Ok(missing());
        };
        let mut findings = vec![Finding::new(
            format!("{label} as its packument states it"),
            &package.integrity,
            Some(stated.to_owned()),
        )];
        let tarball = dist["tarball"]
            .as_str()
            .and_then(|t| reqwest::Url::parse(t).ok())
            .filter(|t| matches!(t.scheme(), "http" | "https"));
        let served = match tarball {
            // The token goes only to the registry's own origin.
            Some(address) if address.origin() == feed.root().origin() => {
                self.download(feed, &address).await?
            }
            Some(address) => {
                let open = Feed::new("npm tarball host", address.as_str(), None)?;
                self.download(&open, &address).await?
            }
            None => None,
        };
        findings.push(Finding::new(
            format!("{label} tarball"),
            &package.integrity,
            served,
        ));
        Ok(findings)
    }

    /// The npm integrity (`sha512-<base64>`) of what `address` serves; `None` when it is not
    /// there.
    async fn download(
        &self,
        feed: &Feed,
        address: &reqwest::Url,
    ) -> Result<Option<String>, FeedError> {
        use base64::Engine;
        use sha2::Digest;
        let what = format!("downloading {address}");
        let reply = feed
            .send(&what, Method::GET, address, &Upload::None, MAX_TARBALL)
            .await?;
        if !reply.status.is_success() {
            return Ok(None);
        }
        Ok(Some(format!(
            "sha512-{}",
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(&reply.body))
        )))
    }

    fn record(&self, done: &serde_json::Map<String, Value>, complete: bool) -> Value {
        json!({
            "registry": self.registry,
            "version": self.version,
            "tag": self.tag,
            "packages": done,
            "complete": complete,
        })
    }
}
