//! `[release.github]` as a release channel: the release is planned (title, notes, flags,
//! assets) before any request, then drafted, filled and published by [`super::publish`].

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use serde::Serialize;

use super::config::{GithubConfig, NightlyMode, Prerelease};
use super::{Client, ReleaseFields, ReleaseSpec, Upload};
use crate::config::{self, Loaded, Problem};
use crate::error::Error;
use crate::facts::Facts;
use crate::manifest::{Manifest, hash_file};
use crate::publish::recheck::Rechecked;
use crate::publish::{Context, Planned, Run};
use crate::release_notes::{DEFAULT_TEMPLATE, Notes};
use crate::template;

/// Default uploads at once.
const DEFAULT_CONCURRENCY: usize = 4;
/// Default limit on total time spent waiting to retry.
pub const DEFAULT_MAX_RETRY: Duration = Duration::from_secs(600);

/// The GitHub release channel.
pub struct Github;

impl crate::publish::Channel for Github {
    type Section = GithubConfig;
    const NAME: &'static str = super::config::NAME;
    const ABOUT: &'static str = "GitHub Releases: the manifest's artifacts as a release";

    fn check(&self, loaded: &Loaded, section: &GithubConfig) -> Vec<Problem> {
        super::config::check(loaded, section)
    }

    fn plan(&self, cx: &Context<'_>, github: GithubConfig) -> Result<Box<dyn Planned>, Error> {
        let plan = github_plan(cx.loaded, cx.facts, &github, cx.manifest, cx.dist)?;
        Ok(Box::new(plan))
    }
}

/// The GitHub release, decided before any request.
#[derive(Debug, Serialize)]
pub struct GithubPlan {
    api_url: String,
    #[serde(skip)]
    max_retry: Duration,
    /// The GitHub release.
    github: ReleaseSpec,
    /// Where the release notes come from.
    notes_source: String,
    /// For a nightly: how many dated nightly releases to keep.
    prune_keep: Option<usize>,
}

pub use crate::github_urls::{api_url, server_url};

/// A released file's address: what the GitHub channel recorded, else the release's usual
/// download address (`<web_repo>/releases/download/<tag>/<name>`).
pub fn asset_url(manifest: &Manifest, web_repo: &str, tag: &str, name: &str) -> String {
    manifest
        .published
        .github
        .as_ref()
        .and_then(|p| p.assets.get(name).cloned())
        .unwrap_or_else(|| format!("{web_repo}/releases/download/{tag}/{name}"))
}

/// The token from `GITHUB_TOKEN` or `GH_TOKEN`.
pub fn token() -> Option<String> {
    [crate::env_vars::GITHUB_TOKEN, crate::env_vars::GH_TOKEN]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|t| !t.trim().is_empty()))
}

/// The token, or the usage error that says how to give one.
fn required_token() -> Result<String, Error> {
    token().ok_or_else(|| {
        Error::Usage(
            "no GitHub token: set GITHUB_TOKEN (or GH_TOKEN) with `contents: write`".into(),
        )
    })
}

/// `max_retry_time` of `[release.github]`, or the default.
pub fn max_retry(github: &GithubConfig) -> Duration {
    github
        .max_retry_time
        .map_or(DEFAULT_MAX_RETRY, config::Duration::get)
}

/// Whether this version is released as a pre-release: as `prerelease` says, else when it has a
/// semver pre-release part (`1.2.0-rc.1`, nightlies, snapshots).
pub fn is_prerelease(github: &GithubConfig, facts: &Facts) -> bool {
    match &github.prerelease {
        Some(Prerelease::Fixed(flag)) => *flag,
        _ => facts.version.contains('-'),
    }
}

/// The tag the release goes under: the version's; for a nightly, `nightly` (rolling) or
/// `nightly-YYYYMMDD-<commit>` (tagged).
pub fn release_tag(github: &GithubConfig, facts: &Facts) -> String {
    match (facts.nightly, github.nightly_mode()) {
        (false, _) => facts.tag.clone(),
        (true, NightlyMode::Rolling) => "nightly".into(),
        (true, NightlyMode::Tagged) => tagged_nightly(facts),
    }
}

/// A tagged nightly's tag: the build date and the commit, `nightly-20261207-3c2b19e`.
fn tagged_nightly(facts: &Facts) -> String {
    format!(
        "nightly-{}-{}",
        facts.date.replace('-', ""),
        facts.short_commit
    )
}

impl Planned for GithubPlan {
    fn describe(&self, say: &dyn Fn(String)) {
        describe_github(self, say);
    }

    fn preflight(&self) -> Result<(), Error> {
        required_token().map(|_| ())
    }

    fn apply<'a>(
        &'a self,
        run: &'a mut Run<'_>,
    ) -> LocalBoxFuture<'a, Result<serde_json::Value, Error>> {
        Box::pin(async move {
            let token = required_token()?;
            let client = Arc::new(Client::new(&self.api_url, &token, self.max_retry)?);
            let published = super::publish(&client, &self.github, run.reporter).await?;
            if let Some(keep) = self.prune_keep {
                let deleted = super::prune_nightlies(&client, &self.github.repo, keep)
                    .await
                    .map_err(|e| Error::work(Pruning(e)))?;
                if !deleted.is_empty() {
                    run.say(format!(
                        "deleted {} older nightly release{} (keeping {keep}): {}",
                        deleted.len(),
                        if deleted.len() == 1 { "" } else { "s" },
                        deleted.join(", ")
                    ));
                }
            }
            let url = published.url.clone();
            let asset_urls = serde_json::to_string(&published.assets)
                .map_err(|e| Error::Internal(e.to_string()))?;
            let record =
                serde_json::to_value(&published).map_err(|e| Error::Internal(e.to_string()))?;
            run.manifest.published.github = Some(published);
            run.record()?;
            run.outputs.push(("release-url", url.clone()));
            run.outputs.push(("asset-urls", asset_urls));
            run.say(format!("released {} at {url}", self.github.fields.tag));
            Ok(record)
        })
    }

    fn recheck<'a>(&'a self, _: &'a Manifest) -> Rechecked<'a> {
        Box::pin(async move {
            let client = Client::new(&self.api_url, &required_token()?, self.max_retry)
                .map_err(Error::work)?;
            super::recheck(&client, &self.github)
                .await
                .map_err(Error::work)
        })
    }
}

pub(crate) fn github_plan(
    loaded: &config::Loaded,
    facts: &Facts,
    github: &GithubConfig,
    manifest: &Manifest,
    dist: &std::path::Path,
) -> Result<GithubPlan, Error> {
    let vars = facts.template_vars();
    let name_template = github
        .name
        .as_deref()
        .unwrap_or("{{ project }} {{ version }}");
    let name = template::render(name_template, &vars)
        .map_err(|e| Error::Usage(format!("[release.github] name: {}", e.message)))?;
    let web = server_url();
    let notes_template = match &github.notes {
        Some(file) => {
            let path = loaded.resolve(file);
            std::fs::read_to_string(&path).map_err(|e| {
                Error::Usage(format!(
                    "cannot read the notes template {}: {e}",
                    path.display()
                ))
            })?
        }
        None => DEFAULT_TEMPLATE.to_string(),
    };
    let gathered = Notes::gather(
        &facts.cargo.root,
        &facts.version,
        &facts.tag,
        Some(&format!("{}/{}", web.trim_end_matches('/'), github.repo)),
    );
    let notes = gathered
        .render(&notes_template)
        .map_err(|e| Error::Usage(format!("release notes template: {}", e.message)))?;
    let prerelease = is_prerelease(github, facts);
    let make_latest = github
        .make_latest
        .clone()
        .unwrap_or_else(|| if prerelease { "false" } else { "true" }.into());
    // Assets are the files at the top of dist: archives, checksums, signatures, keys, bare
    // binaries. Per-target folders hold build outputs that the archives already carry.
    let uploads = manifest
        .artifacts
        .iter()
        .filter(|a| !a.path.contains('/'))
        .map(|a| {
            let path = dist.join(&a.path);
            Upload {
                name: a.name.clone(),
                label: a
                    .target
                    .as_ref()
                    .map(|t| format!("{} for {t}", manifest.project)),
                content_type: super::content_type(&path).to_string(),
                path,
                size: a.size,
                sha256: a.sha256.clone(),
            }
        })
        .collect::<Vec<_>>();
    if uploads.is_empty() {
        return Err(Error::Usage(format!(
            "the manifest in {} lists no release files (archives, checksums, signatures)",
            dist.display()
        )));
    }
    // Publish exactly what was built: a file changed or missing since is refused up front.
    for upload in &uploads {
        match hash_file(&upload.path) {
            Ok((size, sha256)) if size == upload.size && sha256 == upload.sha256 => {}
            Ok(_) => {
                return Err(Error::Usage(format!(
                    "{} changed since `shipit build` (it no longer matches dist/manifest.json); build again",
                    upload.path.display()
                )));
            }
            Err(e) => {
                return Err(Error::Usage(format!(
                    "cannot read {}: {e}; build again",
                    upload.path.display()
                )));
            }
        }
    }
    let max_retry = max_retry(github);
    // A nightly is a pre-release, never the latest: one rolling release under the `nightly`
    // tag, or one release per night.
    let nightly = facts.nightly;
    let rolling = nightly && github.nightly_mode() == NightlyMode::Rolling;
    let tag = release_tag(github, facts);
    let (prerelease, make_latest) = if nightly {
        (true, "false".to_string())
    } else {
        (prerelease, make_latest)
    };
    Ok(GithubPlan {
        api_url: api_url(),
        max_retry,
        notes_source: gathered.source,
        github: ReleaseSpec {
            repo: github.repo.clone(),
            fields: ReleaseFields {
                tag,
                commit: facts.commit.clone(),
                name,
                notes,
                prerelease,
                make_latest,
            },
            draft: github.draft,
            replace: github.replace,
            concurrency: github.concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1),
            uploads,
            nightly: rolling,
        },
        prune_keep: github.keep.filter(|_| nightly),
    })
}

fn describe_github(plan: &GithubPlan, say: &dyn Fn(String)) {
    say(format!(
        "would find the release {} in {} at {}, or create it as a draft on commit {}",
        plan.github.fields.tag, plan.github.repo, plan.api_url, plan.github.fields.commit
    ));
    say(format!(
        "would title it \"{}\" (pre-release: {}, latest: {}), with {} lines of notes from {}",
        plan.github.fields.name,
        plan.github.fields.prerelease,
        plan.github.fields.make_latest,
        plan.github.fields.notes.lines().count(),
        plan.notes_source
    ));
    for upload in &plan.github.uploads {
        say(format!(
            "would upload {} ({} bytes, {}) unless an identical asset is there{}",
            upload.name,
            upload.size,
            upload.content_type,
            if plan.github.replace {
                "; a different one is replaced"
            } else {
                ""
            }
        ));
    }
    say(if plan.github.draft {
        "would leave the release as a draft".to_string()
    } else {
        "would publish the release once every asset is there".to_string()
    });
}

/// Old nightlies could not all be deleted (the new one is out).
#[derive(Debug, thiserror::Error)]
#[error("pruning old nightly releases")]
struct Pruning(#[source] super::GithubError);
