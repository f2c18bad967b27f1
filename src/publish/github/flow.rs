//! The release flow on top of the client: find or create the draft, upload what is missing
//! (resuming an interrupted run without duplicates), publish; the rolling nightly; pruning old
//! nightlies.

use super::*;
use crate::events::{Event, Level, Reporter, UploadState};
use crate::publish::recheck::Finding;

/// A GitHub release to make, decided before any request.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseSpec {
    /// `owner/name`.
    pub repo: String,
    /// Title, notes and flags.
    pub fields: ReleaseFields,
    /// Leave it a draft.
    pub draft: bool,
    /// Replace a same-named asset with other content.
    pub replace: bool,
    /// Uploads at once.
    pub concurrency: usize,
    /// The files.
    pub uploads: Vec<Upload>,
    /// One rolling `nightly` pre-release whose assets are replaced.
    pub nightly: bool,
}

/// Replaces the assets of the published `nightly` release so that a complete set is always
/// there: new files are uploaded first (a name already taken gets a `.next` suffix), then each
/// old file of the same name is deleted and the new one renamed into place, then the other old
/// files are deleted; last the notes are updated and the tag moved to this commit.
async fn roll_nightly(
    spec: &ReleaseSpec,
    client: &Arc<Client>,
    release: Release,
    say: &(dyn Fn(String) + Sync),
) -> Result<PublishedRelease, GithubError> {
    let old = client.assets(&spec.repo, release.id).await?;
    let mut renames = Vec::new();
    let mut staged = Vec::new();
    for upload in &spec.uploads {
        let found = old.iter().find(|a| a.name == upload.name);
        match found {
            Some(asset) if is_same(client, &spec.repo, asset, upload).await? => {}
            Some(_) => {
                let temp = format!("{}.next", upload.name);
                if let Some(stale) = old.iter().find(|a| a.name == temp) {
                    client.delete_asset(&spec.repo, stale).await?;
                }
                renames.push(upload.name.clone());
                staged.push(Upload {
                    name: temp,
                    ..upload.clone()
                });
            }
            None => staged.push(upload.clone()),
        }
    }
    let results: Vec<Result<Asset, GithubError>> = futures_util::stream::iter(&staged)
        .map(|upload| {
            let client = client.clone();
            let release = release.clone();
            async move { client.upload(&spec.repo, &release, upload).await }
        })
        .buffer_unordered(spec.concurrency)
        .collect()
        .await;
    let uploaded = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    say(format!("uploaded {} new nightly files", uploaded.len()));
    for name in &renames {
        let temp = format!("{name}.next");
        if let Some(previous) = old.iter().find(|a| a.name == *name) {
            client.delete_asset(&spec.repo, previous).await?;
        }
        if let Some(next) = uploaded.iter().find(|a| a.name == temp) {
            client.rename_asset(&spec.repo, next, name).await?;
        }
    }
    let keep: Vec<&str> = spec.uploads.iter().map(|u| u.name.as_str()).collect();
    for asset in old.iter().filter(|a| !keep.contains(&a.name.as_str())) {
        client.delete_asset(&spec.repo, asset).await?;
    }
    say(format!(
        "replaced the nightly's files with {}",
        spec.fields.name
    ));
    let release = client
        .update(&spec.repo, release.id, &spec.fields, false)
        .await?;
    client
        .move_tag(&spec.repo, &spec.fields.tag, &spec.fields.commit)
        .await?;
    let assets: BTreeMap<String, String> = client
        .assets(&spec.repo, release.id)
        .await?
        .into_iter()
        .filter(|a| keep.contains(&a.name.as_str()))
        .map(|a| (a.name, a.browser_download_url))
        .collect();
    Ok(PublishedRelease {
        url: release.html_url,
        assets,
    })
}

/// Finds or creates the draft, uploads what is missing, publishes (or, for a nightly, rolls
/// the one `nightly` release forward).
pub async fn publish(
    client: &Arc<Client>,
    spec: &ReleaseSpec,
    reporter: &dyn Reporter,
) -> Result<PublishedRelease, GithubError> {
    let say = &|text: String| {
        reporter.report(&Event::Message {
            level: Level::Info,
            text: &text,
        })
    };
    let upload_event = |upload: &Upload, state: UploadState| {
        reporter.report(&Event::Upload {
            channel: "github",
            name: &upload.name,
            size: upload.size,
            state,
        })
    };
    let release = match client.find_release(&spec.repo, &spec.fields.tag).await? {
        Some(release) => {
            say(format!(
                "found the {} release {}",
                if release.draft { "draft" } else { "published" },
                spec.fields.tag
            ));
            release
        }
        None => {
            let release = client.create_draft(&spec.repo, &spec.fields).await?;
            say(format!("created the draft release {}", spec.fields.tag));
            release
        }
    };
    if spec.nightly && !release.draft {
        if release.immutable {
            return Err(GithubError::Immutable {
                tag: release.tag_name,
            });
        }
        return roll_nightly(spec, client, release, say).await;
    }
    let existing = client.assets(&spec.repo, release.id).await?;
    let mut to_upload = Vec::new();
    for upload in &spec.uploads {
        let found = existing.iter().find(|a| a.name == upload.name);
        let same = match found {
            Some(asset) => is_same(client, &spec.repo, asset, upload).await?,
            None => false,
        };
        match found {
            Some(_) if same => {
                say(format!("{} is already uploaded", upload.name));
                upload_event(upload, UploadState::Present);
            }
            Some(asset) if asset.state != "uploaded" || spec.replace => {
                client.delete_asset(&spec.repo, asset).await?;
                say(format!(
                    "removed the {} asset {} left by an earlier run",
                    asset.state, asset.name
                ));
                to_upload.push(upload);
            }
            Some(asset) => {
                let found = match &asset.digest {
                    Some(digest) => format!("{} bytes, {digest}", asset.size),
                    None => format!("{} bytes", asset.size),
                };
                return Err(GithubError::Conflict {
                    name: upload.name.clone(),
                    found,
                    expected: format!("{} bytes, sha256:{}", upload.size, upload.sha256),
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
                upload_event(upload, UploadState::Started);
                if let Err(e) = client.upload(&spec.repo, &release, upload).await {
                    upload_event(upload, UploadState::Failed);
                    return Err(e);
                }
                upload_event(
                    upload,
                    UploadState::Done {
                        elapsed: started.elapsed(),
                    },
                );
                say(format!(
                    "uploaded {} ({} bytes) in {}",
                    upload.name,
                    upload.size,
                    crate::words::short_duration(started.elapsed())
                ));
                Ok(())
            }
        })
        .buffer_unordered(spec.concurrency)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;

    let release = if release.draft && !spec.draft {
        let published = client
            .update(&spec.repo, release.id, &spec.fields, false)
            .await?;
        say(format!("published {}", published.html_url));
        published
    } else {
        release
    };
    let assets: BTreeMap<String, String> = client
        .assets(&spec.repo, release.id)
        .await?
        .into_iter()
        .filter(|a| spec.uploads.iter().any(|u| u.name == a.name))
        .map(|a| (a.name, a.browser_download_url))
        .collect();
    Ok(PublishedRelease {
        url: release.html_url,
        assets,
    })
}

/// Deletes dated nightly releases (tags such as `v0.4.0-nightly.20261123.3c2b19e` or
/// `nightly-20261123`, as other tools and per-night setups leave) beyond the `keep` newest,
/// with their tags. The rolling `nightly` release is never touched. Returns the tags deleted.
pub async fn prune_nightlies(
    client: &Client,
    repo: &str,
    keep: usize,
) -> Result<Vec<String>, GithubError> {
    let releases = client.releases(repo).await?;
    let mut dated: Vec<(&str, &Release)> = releases
        .iter()
        .filter(|r| !r.draft)
        .filter_map(|r| Some((crate::facts::nightly_date(&r.tag_name)?, r)))
        .collect();
    // Newest date first; GitHub lists newest first, and the sort is stable, so two nightlies
    // of one day stay in the order they were made.
    dated.sort_by(|a, b| b.0.cmp(a.0));
    let mut deleted = Vec::new();
    for (_, release) in dated.into_iter().skip(keep) {
        client.delete_release(repo, release).await?;
        deleted.push(release.tag_name.clone());
    }
    Ok(deleted)
}

/// What the release on GitHub holds of each file it should (by GitHub's digest, or the bytes
/// downloaded and hashed), then the archive digests each install script on it carries. The
/// assets of a draft that should be published count as missing: nobody can download them.
pub async fn recheck(client: &Client, spec: &ReleaseSpec) -> Result<Vec<Finding>, GithubError> {
    let release = client.find_release(&spec.repo, &spec.fields.tag).await?;
    let assets = match &release {
        Some(release) if !release.draft || spec.draft => {
            client.assets(&spec.repo, release.id).await?
        }
        _ => Vec::new(),
    };
    let mut findings = Vec::new();
    for upload in &spec.uploads {
        let asset = assets
            .iter()
            .find(|a| a.name == upload.name && a.state == "uploaded");
        let found = match asset {
            Some(asset) => Some(
                match asset
                    .digest
                    .as_deref()
                    .and_then(|d| d.strip_prefix("sha256:"))
                {
                    Some(digest) => digest.to_owned(),
                    None => client.asset_sha256(&spec.repo, asset).await?,
                },
            ),
            None => None,
        };
        let finding = Finding::sha256(&upload.name, &upload.sha256, found.as_deref());
        let script =
            finding.holds() && matches!(upload.name.as_str(), "install.sh" | "install.ps1");
        findings.push(finding);
        if script {
            // The script on GitHub is this file (same digest), so its table is read from here.
            let text = std::fs::read_to_string(&upload.path).map_err(|source| GithubError::Io {
                path: upload.path.clone(),
                source,
            })?;
            for (file, sum) in crate::installer::embedded_digests(&text) {
                let label = format!("{file} as {} names it", upload.name);
                findings.push(match spec.uploads.iter().find(|u| u.name == file) {
                    Some(archive) => Finding::sha256(label, &archive.sha256, Some(&sum)),
                    None => Finding::sha256(label, &sum, None),
                });
            }
        }
    }
    Ok(findings)
}

/// Whether an asset on GitHub is the same file as `file`: fully uploaded, and the same SHA-256,
/// by GitHub's `digest` or, where GitHub reports none, by downloading and hashing the asset.
/// Never by size alone: a rebuilt signature or provenance file keeps its size.
pub async fn is_same(
    client: &Client,
    repo: &str,
    asset: &Asset,
    file: &Upload,
) -> Result<bool, GithubError> {
    if asset.state != "uploaded" || asset.size != file.size {
        return Ok(false);
    }
    let reported = asset
        .digest
        .as_deref()
        .and_then(|d| d.strip_prefix("sha256:"));
    let digest = match reported {
        Some(digest) => digest.to_owned(),
        None => client.asset_sha256(repo, asset).await?,
    };
    Ok(digest.eq_ignore_ascii_case(&file.sha256))
}
