//! `shipit release`: publish `dist/manifest.json` to the `[release.github]` repository.
//!
//! Plan first (what to upload, title, notes, flags), as data that `--dry-run` prints; then a
//! draft release is found or created, assets are uploaded in parallel (skipping those already
//! there), and the release is published last.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;

use super::Session;
use crate::cli::VersionArgs;
use crate::config::{self, GithubConfig, Prerelease, validate::parse_duration};
use crate::error::Error;
use crate::exit::ExitCode;
use crate::facts::{Facts, FactsOptions};
use crate::manifest::{Manifest, PublishedRelease, hash_file};
use crate::publish::github::{self, Client, GithubError, ReleaseFields, Upload};
use crate::release_notes::{DEFAULT_TEMPLATE, Notes};
use crate::ui::{self, Event, Level, Reporter};
use crate::{plan, template};

/// Default uploads at once.
const DEFAULT_CONCURRENCY: usize = 4;
/// Default limit on total time spent waiting to retry.
const DEFAULT_MAX_RETRY: Duration = Duration::from_secs(600);

/// Everything the release will do, decided before any request.
#[derive(Debug, Serialize)]
struct ReleasePlan {
    repo: String,
    api_url: String,
    fields: ReleaseFields,
    /// Leave it a draft.
    draft: bool,
    replace: bool,
    concurrency: usize,
    #[serde(skip)]
    max_retry: Duration,
    uploads: Vec<Upload>,
}

/// Runs the release.
pub fn run(session: &Session, args: &VersionArgs) -> Result<ExitCode, Error> {
    let global = &session.cli.global;
    let loaded = config::load(&global.pipeline)?;
    let Some(github) = loaded.file.release.github.clone() else {
        return Err(Error::Usage(format!(
            "{} has no [release.github] section: add `[release.github]` with `repo = \"owner/name\"`",
            global.pipeline.display()
        )));
    };
    let facts = Facts::gather(&loaded, FactsOptions::from(args))?;
    let dist = plan::dist_dir(&loaded, &facts);
    let mut manifest = Manifest::read(&dist)
        .map_err(|e| Error::Usage(format!("{e}; run `shipit build` first")))?;
    if manifest.version != facts.version {
        return Err(Error::Usage(format!(
            "{} is for version {}, but this is {}; run `shipit build` again",
            dist.join("manifest.json").display(),
            manifest.version,
            facts.version
        )));
    }
    let plan = release_plan(&loaded, &facts, &github, &manifest, &dist)?;
    let reporter = ui::reporter(session.ui, session.printer.clone());

    if global.dry_run {
        describe(&plan, &*reporter);
        return Ok(ExitCode::Success);
    }
    let token = ["GITHUB_TOKEN", "GH_TOKEN"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|t| !t.trim().is_empty()))
        .ok_or_else(|| {
            Error::Usage(
                "no GitHub token: set GITHUB_TOKEN (or GH_TOKEN) with `contents: write`".into(),
            )
        })?;
    let runtime = super::runtime()?;
    let published = runtime.block_on(async {
        let interrupt = tokio_util::sync::CancellationToken::new();
        tokio::spawn(super::cancel_on_signal(interrupt.clone()));
        tokio::select! {
            result = publish(&plan, &token, &*reporter) => result.map_err(|e| Error::Failed(e.to_string())),
            _ = interrupt.cancelled() => Err(Error::Interrupted),
        }
    });
    runtime.shutdown_background();
    let published = published?;

    let url = published.url.clone();
    let asset_urls =
        serde_json::to_string(&published.assets).map_err(|e| Error::Internal(e.to_string()))?;
    manifest.published.github = Some(published);
    manifest
        .write(&dist)
        .map_err(|e| Error::Failed(e.to_string()))?;
    super::github_output(&[("release-url", url.clone()), ("asset-urls", asset_urls)])?;
    reporter.report(&Event::Message {
        level: Level::Info,
        text: &format!("released {} at {url}", plan.fields.tag),
    });
    Ok(ExitCode::Success)
}

fn release_plan(
    loaded: &config::Loaded,
    facts: &Facts,
    github: &GithubConfig,
    manifest: &Manifest,
    dist: &std::path::Path,
) -> Result<ReleasePlan, Error> {
    let vars = facts.template_vars();
    let name_template = github
        .name
        .as_deref()
        .unwrap_or("{{ project }} {{ version }}");
    let name = template::render(name_template, &vars)
        .map_err(|e| Error::Usage(format!("[release.github] name: {}", e.message)))?;
    let web = std::env::var("GITHUB_SERVER_URL").unwrap_or_else(|_| "https://github.com".into());
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
    let notes = Notes::gather(
        &facts.cargo.root,
        &facts.version,
        &facts.tag,
        Some(&format!("{}/{}", web.trim_end_matches('/'), github.repo)),
    )
    .render(&notes_template)
    .map_err(|e| Error::Usage(format!("release notes template: {}", e.message)))?;
    let prerelease = match &github.prerelease {
        Some(Prerelease::Fixed(flag)) => *flag,
        // A semver pre-release part (`1.2.0-rc.1`, nightlies, snapshots).
        _ => facts.version.contains('-'),
    };
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
                content_type: github::content_type(&path).to_string(),
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
    let max_retry = match &github.max_retry_time {
        Some(text) => parse_duration(text)
            .map_err(|e| Error::Usage(format!("[release.github] max_retry_time: {e}")))?,
        None => DEFAULT_MAX_RETRY,
    };
    Ok(ReleasePlan {
        repo: github.repo.clone(),
        api_url: std::env::var("GITHUB_API_URL")
            .unwrap_or_else(|_| "https://api.github.com".into()),
        fields: ReleaseFields {
            tag: facts.tag.clone(),
            commit: facts.commit.clone(),
            name,
            notes,
            prerelease,
            make_latest,
        },
        draft: github.draft,
        replace: github.replace,
        concurrency: github.concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1),
        max_retry,
        uploads,
    })
}

/// `--dry-run`: every action, nothing sent.
fn describe(plan: &ReleasePlan, reporter: &dyn Reporter) {
    let say = |text: String| {
        reporter.report(&Event::Message {
            level: Level::Info,
            text: &text,
        })
    };
    say(format!(
        "would find the release {} in {} at {}, or create it as a draft on commit {}",
        plan.fields.tag, plan.repo, plan.api_url, plan.fields.commit
    ));
    say(format!(
        "would title it \"{}\" (pre-release: {}, latest: {}), with {} lines of notes",
        plan.fields.name,
        plan.fields.prerelease,
        plan.fields.make_latest,
        plan.fields.notes.lines().count()
    ));
    for upload in &plan.uploads {
        say(format!(
            "would upload {} ({} bytes, {}) unless an identical asset is there{}",
            upload.name,
            upload.size,
            upload.content_type,
            if plan.replace {
                "; a different one is replaced"
            } else {
                ""
            }
        ));
    }
    say(if plan.draft {
        "would leave the release as a draft".to_string()
    } else {
        "would publish the release once every asset is there".to_string()
    });
}

/// Finds or creates the draft, uploads what is missing, publishes.
async fn publish(
    plan: &ReleasePlan,
    token: &str,
    reporter: &dyn Reporter,
) -> Result<PublishedRelease, GithubError> {
    let say = |text: String| {
        reporter.report(&Event::Message {
            level: Level::Info,
            text: &text,
        })
    };
    let client = Arc::new(Client::new(&plan.api_url, token, plan.max_retry)?);
    let release = match client.find_release(&plan.repo, &plan.fields.tag).await? {
        Some(release) => {
            say(format!(
                "found the {} release {}",
                if release.draft { "draft" } else { "published" },
                plan.fields.tag
            ));
            release
        }
        None => {
            let release = client.create_draft(&plan.repo, &plan.fields).await?;
            say(format!("created the draft release {}", plan.fields.tag));
            release
        }
    };
    let existing = client.assets(&plan.repo, release.id).await?;
    let mut to_upload = Vec::new();
    for upload in &plan.uploads {
        match existing.iter().find(|a| a.name == upload.name) {
            Some(asset) if github::is_complete(asset, upload) => {
                say(format!("{} is already uploaded", upload.name));
            }
            Some(asset) if asset.state != "uploaded" || plan.replace => {
                client.delete_asset(&plan.repo, asset).await?;
                say(format!(
                    "removed the {} asset {} left by an earlier run",
                    asset.state, asset.name
                ));
                to_upload.push(upload);
            }
            Some(asset) => {
                return Err(GithubError::Conflict {
                    name: upload.name.clone(),
                    found: asset.size,
                    expected: upload.size,
                });
            }
            None => to_upload.push(upload),
        }
    }
    let results: Vec<Result<(), GithubError>> = futures_util::stream::iter(to_upload)
        .map(|upload| {
            let client = client.clone();
            let release = release.clone();
            async move {
                let started = Instant::now();
                client.upload(&plan.repo, &release, upload).await?;
                say(format!(
                    "uploaded {} ({} bytes) in {}",
                    upload.name,
                    upload.size,
                    ui::short_duration(started.elapsed())
                ));
                Ok(())
            }
        })
        .buffer_unordered(plan.concurrency)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;

    let release = if release.draft && !plan.draft {
        let published = client
            .update(&plan.repo, release.id, &plan.fields, false)
            .await?;
        say(format!("published {}", published.html_url));
        published
    } else {
        release
    };
    let assets: BTreeMap<String, String> = client
        .assets(&plan.repo, release.id)
        .await?
        .into_iter()
        .filter(|a| plan.uploads.iter().any(|u| u.name == a.name))
        .map(|a| (a.name, a.browser_download_url))
        .collect();
    Ok(PublishedRelease {
        url: release.html_url,
        assets,
    })
}
