//! `[release.chocolatey]`: after the GitHub release, a `.nupkg` whose install script downloads
//! the release's Windows zip (x64, and x86 when built) and checks its SHA-256, pushed to a
//! NuGet v2 feed with NuGet's push protocol (`PUT <feed>/api/v2/package`, the key in
//! `X-NuGet-ApiKey`, the package as multipart form data). A version the feed already has is
//! not pushed again: the same bytes, or a feed that says it exists (409), is skipped; other
//! bytes under that version are an error.

pub mod config;
pub mod nupkg;

use futures_util::future::LocalBoxFuture;
use http::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha512};

use self::config::ChocolateyConfig;
use self::nupkg::{Download, Nuspec};
use crate::config::{Loaded, Problem};
use crate::error::Error;
use crate::http::feed::{self, Feed, FeedError, Upload};
use crate::manifest::Manifest;
use crate::publish::recheck::{Finding, Rechecked};
use crate::publish::windows::{WindowsRelease, WindowsZip, asset_url, windows_release};
use crate::publish::{Context, Planned, Run, Skipped};

/// The largest package read back to compare.
const MAX_PACKAGE: usize = 256 << 20;

/// The Chocolatey channel.
pub struct Chocolatey;

impl crate::publish::Channel for Chocolatey {
    type Section = ChocolateyConfig;
    const NAME: &'static str = "chocolatey";
    const ABOUT: &'static str = "a Chocolatey package pushed to a NuGet v2 feed, installing the GitHub release's Windows zip";
    const NEEDS: &'static [&'static str] = &["github"];

    fn check(&self, loaded: &Loaded, section: &ChocolateyConfig) -> Vec<Problem> {
        config::check(loaded, section)
    }

    fn plan(&self, cx: &Context<'_>, choco: ChocolateyConfig) -> Result<Box<dyn Planned>, Error> {
        let release =
            match windows_release(cx, "chocolatey", "the Chocolatey package", choco.prerelease)? {
                Ok(release) => release,
                Err(why) => return Ok(Box::new(Skipped(why))),
            };
        let WindowsRelease {
            web_repo,
            tag,
            zips,
        } = release;
        let pick = |arch: &str| zips.iter().find(|z| z.arch == arch).cloned();
        let (x86, x64) = (pick("x86"), pick("x64"));
        if x86.is_none() && x64.is_none() {
            return Err(Error::Usage(
                "[release.chocolatey]: Chocolatey installs x64 or x86 builds; the manifest has neither Windows zip".into(),
            ));
        }
        let id = choco.id.clone().unwrap_or_else(|| cx.facts.project.clone());
        if let Some(why) = config::id_problem(&id) {
            return Err(Error::Usage(format!(
                "[release.chocolatey]: {why}; set `id`"
            )));
        }
        let description = choco
            .description
            .clone()
            .or_else(|| cx.facts.cargo.description.clone())
            .unwrap_or_else(|| id.clone());
        let authors = choco.authors.clone().unwrap_or_else(|| {
            let names: Vec<&str> = cx
                .facts
                .cargo
                .authors
                .iter()
                .map(|a| a.split('<').next().unwrap_or(a).trim())
                .filter(|a| !a.is_empty())
                .collect();
            if names.is_empty() {
                cx.facts.project.clone()
            } else {
                names.join(", ")
            }
        });
        let api_key_env = choco
            .api_key_env
            .clone()
            .unwrap_or_else(|| config::DEFAULT_API_KEY_ENV.into());
        crate::secrets::register_env(&api_key_env);
        Ok(Box::new(PackagePlan {
            nuspec: Nuspec {
                title: choco.title.clone().unwrap_or_else(|| id.clone()),
                id,
                version: cx.facts.version.clone(),
                authors,
                summary: choco
                    .summary
                    .clone()
                    .or_else(|| cx.facts.cargo.description.clone()),
                description,
                project_url: choco
                    .project_url
                    .clone()
                    .or_else(|| cx.facts.cargo.homepage.clone())
                    .or_else(|| Some(web_repo.clone())),
                license_url: choco.license_url.clone(),
                icon_url: choco.icon_url.clone(),
                tags: choco.tags.clone(),
                release_notes: choco.release_notes.clone(),
                require_license_acceptance: choco.require_license_acceptance,
                repository: Some((web_repo.clone(), cx.facts.commit.clone())),
            },
            source: choco
                .source
                .clone()
                .unwrap_or_else(|| config::DEFAULT_SOURCE.into()),
            api_key_env,
            web_repo,
            tag,
            x86,
            x64,
            mtime: cx.facts.source_date_epoch,
        }))
    }
}

struct PackagePlan {
    nuspec: Nuspec,
    source: String,
    api_key_env: String,
    web_repo: String,
    tag: String,
    x86: Option<WindowsZip>,
    x64: Option<WindowsZip>,
    mtime: u64,
}

/// What the feed did with the package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pushed {
    /// Sent now.
    Sent,
    /// The feed has these very bytes.
    Unchanged,
    /// The feed says this version exists (it may hold it for moderation, or redirect its
    /// downloads elsewhere), so it was not pushed again.
    Exists,
}

impl PackagePlan {
    fn api_key(&self) -> Result<String, FeedError> {
        feed::credential(&self.api_key_env, "chocolatey", "the feed's API key")
    }

    /// The `.nupkg`, pointing at the released zips.
    fn package(&self, manifest: &Manifest) -> Result<Vec<u8>, ChocolateyError> {
        let download = |zip: &WindowsZip| Download {
            url: asset_url(manifest, &self.web_repo, &self.tag, &zip.name),
            sha256: zip.sha256.clone(),
        };
        let mut nuspec = self.nuspec.clone();
        if nuspec.release_notes.is_none() {
            nuspec.release_notes = Some(
                manifest
                    .published
                    .github
                    .as_ref()
                    .map(|p| p.url.clone())
                    .unwrap_or_else(|| format!("{}/releases/tag/{}", self.web_repo, self.tag)),
            );
        }
        let script = nupkg::install_script(
            self.x86.as_ref().map(download).as_ref(),
            self.x64.as_ref().map(download).as_ref(),
        );
        nupkg::build(&nuspec, &script, self.mtime).map_err(ChocolateyError::Build)
    }

    /// NuGet's push address under the feed: `api/v2/package` for a bare host (the community
    /// feed), else `package` under the feed's own path (`.../api/v2` -> `.../api/v2/package`).
    fn push_path(feed: &Feed) -> &'static str {
        if feed.root().path() == "/" {
            "api/v2/package"
        } else {
            "package"
        }
    }

    async fn push(&self, feed: &Feed, bytes: Vec<u8>) -> Result<Pushed, ChocolateyError> {
        let push = Self::push_path(feed);
        let (id, version) = (&self.nuspec.id, &self.nuspec.version);
        let what = format!("looking for {id} {version} on the feed");
        let url = feed.url(&format!("{push}/{id}/{version}"));
        let reply = feed
            .send(&what, Method::GET, &url, &Upload::None, MAX_PACKAGE)
            .await?;
        match reply.status {
            StatusCode::OK => {
                if Sha512::digest(&reply.body) == Sha512::digest(&bytes) {
                    return Ok(Pushed::Unchanged);
                }
                return Err(ChocolateyError::Changed {
                    id: id.clone(),
                    version: version.clone(),
                });
            }
            status if status.is_redirection() => return Ok(Pushed::Exists),
            StatusCode::NOT_FOUND => {}
            _ => return Err(reply.refused(&what).into()),
        }
        let what = format!("pushing {id} {version}");
        let upload = Upload::File {
            field: "package",
            file_name: "package.nupkg".into(),
            bytes: bytes.into(),
        };
        let reply = feed
            .send(&what, Method::PUT, &feed.url(push), &upload, 1 << 20)
            .await?;
        match reply.status {
            status if status.is_success() => Ok(Pushed::Sent),
            StatusCode::CONFLICT => Ok(Pushed::Exists),
            _ => Err(reply.refused(&what).into()),
        }
    }
}

impl Planned for PackagePlan {
    fn describe(&self, say: &dyn Fn(String)) {
        let plan = self;
        say(format!(
            "would push {} {} ({}) to {}, unless the feed has it",
            plan.nuspec.id,
            plan.nuspec.version,
            [&plan.x64, &plan.x86]
                .into_iter()
                .flatten()
                .map(|z| z.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            plan.source
        ));
    }

    fn preflight(&self) -> Result<(), Error> {
        Ok(self.api_key().map(drop)?)
    }

    fn apply<'a>(
        &'a self,
        run: &'a mut Run<'_>,
    ) -> LocalBoxFuture<'a, Result<serde_json::Value, Error>> {
        Box::pin(async move {
            let plan = self;
            let key = plan.api_key()?;
            let feed = Feed::new(
                "Chocolatey feed",
                &plan.source,
                Some(("x-nuget-apikey", key)),
            )?;
            let bytes = plan.package(run.manifest)?;
            let size = bytes.len();
            let pushed = plan.push(&feed, bytes).await?;
            let (id, version) = (&plan.nuspec.id, &plan.nuspec.version);
            run.say(match pushed {
                Pushed::Sent => {
                    format!("pushed {id} {version} ({size} bytes) to {}", plan.source)
                }
                Pushed::Unchanged => {
                    format!("the feed already has {id} {version} with the same contents")
                }
                Pushed::Exists => {
                    format!("the feed already has {id} {version} (it says so); not pushed again")
                }
            });
            let record = json!({
                "id": id,
                "version": version,
                "source": plan.source,
                "status": match pushed {
                    Pushed::Sent => "pushed",
                    Pushed::Unchanged => "unchanged",
                    Pushed::Exists => "exists",
                },
            });
            run.manifest.published.record("chocolatey", record.clone());
            run.record()?;
            Ok(record)
        })
    }

    fn recheck<'a>(&'a self, manifest: &'a Manifest) -> Rechecked<'a> {
        Box::pin(async move {
            let feed = Feed::new(
                "Chocolatey feed",
                &self.source,
                Some(("x-nuget-apikey", self.api_key()?)),
            )?;
            // The package is made again, byte for byte (reproducible at its mtime): the
            // feed's copy must be those bytes, and so carry the same addresses and checksums.
            let ours = self.package(manifest)?;
            let (id, version) = (&self.nuspec.id, &self.nuspec.version);
            let what = format!("downloading {id} {version} from the feed");
            let url = feed.url(&format!("{}/{id}/{version}", Self::push_path(&feed)));
            let mut reply = feed
                .send(&what, Method::GET, &url, &Upload::None, MAX_PACKAGE)
                .await?;
            if reply.status.is_redirection() {
                // Downloads may be served from elsewhere; the API key stays with the feed.
                let Some(target) = reply.location.as_deref().and_then(|l| url.join(l).ok()) else {
                    return Err(ChocolateyError::Redirect(what).into());
                };
                let elsewhere = Feed::new("Chocolatey download host", target.as_str(), None)?;
                reply = elsewhere
                    .send(&what, Method::GET, &target, &Upload::None, MAX_PACKAGE)
                    .await?;
            }
            let file = format!("{id}.{version}.nupkg");
            let expected = hex::encode(sha2::Sha256::digest(&ours));
            let held = manifest
                .published
                .channels
                .get("chocolatey")
                .is_some_and(|r| r["status"] == "exists");
            if reply.status == StatusCode::NOT_FOUND && held {
                return Ok(vec![Finding::pending(
                    file,
                    format!("sha256:{expected}"),
                    "the feed said it has this version, and holds it back (moderation)",
                )]);
            }
            let found = reply
                .status
                .is_success()
                .then(|| hex::encode(sha2::Sha256::digest(&reply.body)));
            Ok(vec![Finding::sha256(file, &expected, found.as_deref())])
        })
    }
}

/// A failure of the Chocolatey channel, keeping what caused it.
#[derive(Debug, thiserror::Error)]
pub enum ChocolateyError {
    /// The feed could not be reached or refused; or its key is not set.
    #[error(transparent)]
    Feed(#[from] FeedError),
    /// The feed holds this version with other bytes.
    #[error(
        "the feed already has {id} {version} with other contents; a pushed version cannot change: release a new version"
    )]
    Changed {
        /// The package id.
        id: String,
        /// Its version.
        version: String,
    },
    /// The `.nupkg` cannot be written.
    #[error("cannot build the Chocolatey package")]
    Build(#[source] zip::result::ZipError),
    /// The feed redirected a download without saying where.
    #[error("{0}: a redirect without a usable Location")]
    Redirect(String),
}

impl From<ChocolateyError> for Error {
    fn from(e: ChocolateyError) -> Self {
        match e {
            ChocolateyError::Feed(feed) => feed.into(),
            other => Error::work(other),
        }
    }
}
