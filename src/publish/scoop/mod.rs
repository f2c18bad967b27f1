//! `[release.scoop]`: after the GitHub release, `bucket/<name>.json` (a Scoop manifest: version,
//! the zip of each Windows architecture with its URL and SHA-256, the folder to extract, the
//! binaries, `checkver` and `autoupdate`) is pushed to a bucket the way the Homebrew tap is.
//! The manifest is JSON written by serde, so no value can break it.

pub mod config;

use std::path::Path;

use futures_util::future::LocalBoxFuture;
use serde_json::{Map, Value, json};

use self::config::ScoopConfig;
use crate::config::{Loaded, Problem};
use crate::error::Error;
use crate::manifest::{Artifact, ArtifactKind, Manifest};
use crate::publish::git::{GitRemote, Pushed};
use crate::publish::github::{self, config::GithubConfig};
use crate::publish::{Context, Planned, Publisher, Run};

/// The Scoop bucket channel.
pub struct Channel;

impl Publisher for Channel {
    fn name(&self) -> &'static str {
        "scoop"
    }

    fn about(&self) -> &'static str {
        "a manifest in a Scoop bucket, pointing at the GitHub release's Windows zips"
    }

    fn schema(&self) -> schemars::Schema {
        schemars::schema_for!(ScoopConfig)
    }

    fn check(&self, loaded: &Loaded) -> Vec<Problem> {
        config::check(loaded)
    }

    fn needs(&self) -> &'static [&'static str] {
        &["github"]
    }

    fn plan(&self, cx: &Context<'_>) -> Result<Option<Box<dyn Planned>>, Error> {
        let Some(scoop) = crate::publish::section::<ScoopConfig>(cx.loaded, "scoop")? else {
            return Ok(None);
        };
        let Some(release) = crate::publish::section::<GithubConfig>(cx.loaded, "github")? else {
            return Err(Error::Usage(
                "[release.scoop] downloads from the GitHub release: add `[release.github]` too"
                    .into(),
            ));
        };
        if github::is_prerelease(&release, cx.facts) && !scoop.prerelease {
            return Ok(Some(Box::new(ScoopPlan::Skipped(format!(
                "skipping the Scoop manifest: {} is a pre-release (set `prerelease = true` in [release.scoop] to publish it)",
                cx.facts.version
            )))));
        }
        let web_repo = format!(
            "{}/{}",
            github::server_url().trim_end_matches('/'),
            release.repo
        );
        let name = scoop
            .name
            .clone()
            .unwrap_or_else(|| cx.facts.project.clone());
        let zips: Vec<Zip> = cx
            .manifest
            .artifacts
            .iter()
            .filter(|a| a.kind == ArtifactKind::Archive && a.os.as_deref() == Some("windows"))
            .filter(|a| a.name.ends_with(".zip"))
            .filter_map(|a| Zip::read(cx.dist, a).transpose())
            .collect::<Result<_, _>>()?;
        if zips.is_empty() {
            return Err(Error::Usage(
                "[release.scoop]: the manifest has no Windows zip archives (x64, arm64 or x86)"
                    .into(),
            ));
        }
        let url = match (&scoop.bucket.url, &scoop.bucket.repo) {
            (Some(url), _) if url.contains("://") || url.contains('@') => url.clone(),
            (Some(path), _) => cx.loaded.resolve(path).display().to_string(),
            (None, Some(repo)) => {
                format!("{}/{repo}.git", github::server_url().trim_end_matches('/'))
            }
            (None, None) => {
                return Err(Error::Usage(
                    "[release.scoop] bucket needs `repo = \"owner/scoop-bucket\"` or `url`".into(),
                ));
            }
        };
        let author = scoop
            .commit_author
            .as_ref()
            .map(|a| (a.name.clone(), a.email.clone()))
            .unwrap_or_else(|| ("shipit".into(), "shipit@users.noreply.github.com".into()));
        Ok(Some(Box::new(ScoopPlan::Manifest(Box::new(
            ManifestPlan {
                description: scoop
                    .description
                    .clone()
                    .or_else(|| cx.facts.cargo.description.clone())
                    .unwrap_or_else(|| name.clone()),
                homepage: scoop
                    .homepage
                    .clone()
                    .or_else(|| cx.facts.cargo.homepage.clone())
                    .unwrap_or_else(|| web_repo.clone()),
                license: scoop
                    .license
                    .clone()
                    .or_else(|| cx.facts.cargo.license.clone())
                    .unwrap_or_else(|| "Unknown".into()),
                name,
                version: cx.facts.version.clone(),
                tag: github::release_tag(cx.facts),
                web_repo,
                zips,
                bucket: GitRemote {
                    url,
                    token: github::token(),
                    branch: scoop.branch.clone(),
                    folder: scoop.folder.clone().unwrap_or_else(|| "bucket".into()),
                    author,
                },
            },
        )))))
    }
}

/// A Windows zip as Scoop needs it: the architecture, the folder to extract, where the
/// binaries are inside it.
#[derive(Debug, Clone)]
struct Zip {
    /// `64bit`, `arm64` or `32bit`.
    architecture: &'static str,
    name: String,
    sha256: String,
    /// The one top folder every entry is in, if there is one.
    extract_dir: Option<String>,
    /// The `.exe` files, relative to `extract_dir`.
    bin: Vec<String>,
}

impl Zip {
    /// Reads the archive's entries (from dist, written by this build).
    fn read(dist: &Path, artifact: &Artifact) -> Result<Option<Zip>, Error> {
        let architecture = match artifact.arch.as_deref() {
            Some("x64") => "64bit",
            Some("arm64") => "arm64",
            Some("x86") => "32bit",
            _ => return Ok(None),
        };
        let path = dist.join(&artifact.path);
        let failed = |e: &dyn std::fmt::Display| {
            Error::Failed(format!("cannot read {}: {e}", path.display()))
        };
        let file = std::fs::File::open(&path).map_err(|e| failed(&e))?;
        let zip = zip::ZipArchive::new(file).map_err(|e| failed(&e))?;
        let mut names = Vec::new();
        for name in zip.file_names() {
            let name = name.map_err(|e| failed(&e))?;
            if !name.ends_with('/') {
                names.push(name.into_owned());
            }
        }
        names.sort();
        let top = names
            .first()
            .and_then(|n| n.split_once('/'))
            .map(|(t, _)| t.to_owned());
        let extract_dir = top.filter(|t| names.iter().all(|n| n.starts_with(&format!("{t}/"))));
        let bin = names
            .iter()
            .filter(|n| n.ends_with(".exe"))
            .map(|n| match &extract_dir {
                Some(dir) => n[dir.len() + 1..].to_owned(),
                None => n.clone(),
            })
            .collect();
        Ok(Some(Zip {
            architecture,
            name: artifact.name.clone(),
            sha256: artifact.sha256.clone(),
            extract_dir,
            bin,
        }))
    }
}

/// What the channel does this time.
enum ScoopPlan {
    /// Nothing, and why.
    Skipped(String),
    /// Push this manifest.
    Manifest(Box<ManifestPlan>),
}

struct ManifestPlan {
    name: String,
    version: String,
    description: String,
    homepage: String,
    license: String,
    tag: String,
    web_repo: String,
    zips: Vec<Zip>,
    bucket: GitRemote,
}

impl ManifestPlan {
    /// The manifest, with the release's download URLs (`url_of` a released asset's name).
    fn render(&self, url_of: impl Fn(&str) -> String) -> String {
        let mut architecture = Map::new();
        let mut autoupdate = Map::new();
        for zip in &self.zips {
            let mut entry = Map::new();
            entry.insert("url".into(), json!(url_of(&zip.name)));
            entry.insert("hash".into(), json!(zip.sha256));
            if let Some(dir) = &zip.extract_dir {
                entry.insert("extract_dir".into(), json!(dir));
            }
            architecture.insert(zip.architecture.into(), Value::Object(entry));
            // Scoop's autoupdate puts the new version where this one is.
            let templated = |text: &str| text.replace(&self.version, "$version");
            let mut update = Map::new();
            update.insert(
                "url".into(),
                json!(format!(
                    "{}/releases/download/{}/{}",
                    self.web_repo,
                    templated(&self.tag),
                    templated(&zip.name)
                )),
            );
            if let Some(dir) = &zip.extract_dir {
                update.insert("extract_dir".into(), json!(templated(dir)));
            }
            autoupdate.insert(zip.architecture.into(), Value::Object(update));
        }
        let mut bin: Vec<&String> = self.zips.iter().flat_map(|z| &z.bin).collect();
        bin.sort();
        bin.dedup();
        let manifest = json!({
            "version": self.version,
            "description": self.description,
            "homepage": self.homepage,
            "license": self.license,
            "architecture": architecture,
            "bin": bin,
            "checkver": { "github": self.web_repo },
            "autoupdate": { "architecture": autoupdate },
        });
        let mut text = serde_json::to_string_pretty(&manifest).expect("JSON values serialize");
        text.push('\n');
        text
    }
}

impl Planned for ScoopPlan {
    fn describe(&self, say: &dyn Fn(String)) {
        match self {
            ScoopPlan::Skipped(why) => say(why.clone()),
            ScoopPlan::Manifest(plan) => say(format!(
                "would write {}/{}.json ({}) to the bucket {} and push it, if it changed",
                plan.bucket.folder,
                plan.name,
                plan.zips
                    .iter()
                    .map(|z| z.architecture)
                    .collect::<Vec<_>>()
                    .join(", "),
                plan.bucket.display_url()
            )),
        }
    }

    fn apply<'a>(
        &'a self,
        run: &'a mut Run<'_>,
    ) -> LocalBoxFuture<'a, Result<serde_json::Value, Error>> {
        Box::pin(async move {
            let plan = match self {
                ScoopPlan::Skipped(why) => {
                    run.say(why.clone());
                    return Ok(json!({"skipped": why}));
                }
                ScoopPlan::Manifest(plan) => plan,
            };
            let text = plan.render(|name| url_of(run.manifest, plan, name));
            let file = format!("{}.json", plan.name);
            let message = format!("{} {}", plan.name, plan.version);
            let pushed = plan
                .bucket
                .publish_file(&file, &text, &message, None)
                .map_err(Error::work)?;
            run.say(match &pushed {
                Pushed::Unchanged => format!("the bucket's {file} is already up to date"),
                Pushed::Committed { branch, .. } => {
                    format!(
                        "pushed {}/{file} to the bucket's {branch}",
                        plan.bucket.folder
                    )
                }
            });
            let record = json!({
                "manifest": format!("{}/{file}", plan.bucket.folder),
                "bucket": plan.bucket.display_url(),
                "version": plan.version,
            });
            run.manifest.published.record("scoop", record.clone());
            run.record()?;
            Ok(record)
        })
    }
}

/// The released asset's address: what the GitHub channel recorded, else the release's usual
/// download address.
fn url_of(manifest: &Manifest, plan: &ManifestPlan, name: &str) -> String {
    manifest
        .published
        .github
        .as_ref()
        .and_then(|p| p.assets.get(name).cloned())
        .unwrap_or_else(|| format!("{}/releases/download/{}/{name}", plan.web_repo, plan.tag))
}
