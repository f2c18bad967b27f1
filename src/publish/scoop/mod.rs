//! `[release.scoop]`: after the GitHub release, `bucket/<name>.json` (a Scoop manifest: version,
//! the zip of each Windows architecture with its URL and SHA-256, the folder to extract, the
//! binaries, `checkver` and `autoupdate`) is pushed to a bucket the way the Homebrew tap is.
//! The manifest is JSON written by serde, so no value can break it.

pub mod config;

use futures_util::future::LocalBoxFuture;
use serde_json::{Map, Value, json};

use self::config::ScoopConfig;
use crate::config::{Loaded, Problem};
use crate::error::Error;
use crate::manifest::Manifest;
use crate::publish::folder::Tree;
use crate::publish::git::GitRemote;
use crate::publish::git::pull_request::{self, PullRequest};
use crate::publish::recheck::{self, Rechecked};
use crate::publish::windows::{WindowsRelease, WindowsZip, asset_url, windows_release};
use crate::publish::{Context, Planned, Run, Skipped};

/// The Scoop bucket channel.
pub struct Scoop;

impl crate::publish::Channel for Scoop {
    type Section = ScoopConfig;
    const NAME: &'static str = "scoop";
    const ABOUT: &'static str =
        "a manifest in a Scoop bucket, pointing at the GitHub release's Windows zips";
    const NEEDS: &'static [&'static str] = &["github"];

    fn check(&self, loaded: &Loaded, section: &ScoopConfig) -> Vec<Problem> {
        config::check(loaded, section)
    }

    fn plan(&self, cx: &Context<'_>, scoop: ScoopConfig) -> Result<Box<dyn Planned>, Error> {
        let release = match windows_release(cx, "scoop", "the Scoop manifest", scoop.prerelease)? {
            Ok(release) => release,
            Err(why) => return Ok(Box::new(Skipped(why))),
        };
        let WindowsRelease {
            web_repo,
            tag,
            zips,
        } = release;
        let name = scoop
            .name
            .clone()
            .unwrap_or_else(|| cx.facts.project.clone());
        let bucket = GitRemote {
            branch: scoop.branch.clone(),
            folder: scoop.folder.clone().unwrap_or_else(|| "bucket".into()),
            ..GitRemote::for_channel(
                cx.loaded,
                "scoop",
                scoop.bucket.parts(),
                scoop
                    .commit_author
                    .as_ref()
                    .map(|a| (a.name.clone(), a.email.clone())),
            )?
        };
        let pull_request = PullRequest::plan(
            cx.loaded,
            "scoop",
            scoop.pull_request.as_ref(),
            scoop.bucket.repo.as_deref(),
            format!("shipit/{name}-{}", cx.facts.version),
        )?;
        Ok(Box::new(ManifestPlan {
            pull_request,
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
            tag,
            web_repo,
            zips,
            bucket,
        }))
    }
}

struct ManifestPlan {
    name: String,
    version: String,
    description: String,
    homepage: String,
    license: String,
    tag: String,
    web_repo: String,
    zips: Vec<WindowsZip>,
    bucket: GitRemote,
    pull_request: Option<PullRequest>,
}

/// Scoop's name for a zip's architecture.
fn scoop_arch(zip: &WindowsZip) -> &'static str {
    match zip.arch {
        "x64" => "64bit",
        "x86" => "32bit",
        other => other,
    }
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
            architecture.insert(scoop_arch(zip).into(), Value::Object(entry));
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
            autoupdate.insert(scoop_arch(zip).into(), Value::Object(update));
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
        format!("{manifest:#}\n")
    }
}

/// The `(url, hash)` pairs of a bucket manifest: its own and each architecture's (not
/// `autoupdate`'s, which are templates). Anything but a manifest gives none.
fn bucket_pairs(text: &str) -> Vec<(String, String)> {
    let manifest: Value = serde_json::from_str(text).unwrap_or_default();
    let pair = |entry: &Value| {
        let url = entry["url"].as_str()?;
        let hash = entry["hash"].as_str()?;
        Some((
            url.to_owned(),
            hash.trim_start_matches("sha256:").to_owned(),
        ))
    };
    let mut pairs: Vec<(String, String)> = pair(&manifest).into_iter().collect();
    if let Some(arches) = manifest["architecture"].as_object() {
        pairs.extend(arches.values().filter_map(pair));
    }
    pairs
}

impl Planned for ManifestPlan {
    fn describe(&self, say: &dyn Fn(String)) {
        let plan = self;
        say(format!(
            "would write {}/{}.json ({}) to the bucket {} and {}, if it changed",
            plan.bucket.folder,
            plan.name,
            plan.zips
                .iter()
                .map(scoop_arch)
                .collect::<Vec<_>>()
                .join(", "),
            plan.bucket.display_url(),
            if plan.pull_request.is_some() {
                "propose it in a pull request"
            } else {
                "push it"
            }
        ));
    }

    fn apply<'a>(
        &'a self,
        run: &'a mut Run<'_>,
    ) -> LocalBoxFuture<'a, Result<serde_json::Value, Error>> {
        Box::pin(async move {
            let plan = self;
            let text = plan.render(|name| asset_url(run.manifest, &plan.web_repo, &plan.tag, name));
            let file = format!("{}.json", plan.name);
            let message = format!("{} {}", plan.name, plan.version);
            let pushed = plan
                .bucket
                .publish_file(
                    &file,
                    &text,
                    &message,
                    plan.pull_request.as_ref().map(|p| p.branch.as_str()),
                )
                .map_err(Error::work)?;
            let path = format!("{}/{file}", plan.bucket.folder);
            pull_request::report(
                &pushed,
                plan.pull_request.as_ref(),
                &path,
                "the bucket",
                &message,
                format!("the bucket's {file} is already up to date"),
                &|text| run.say(text),
            )
            .await?;
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

    fn recheck<'a>(&'a self, manifest: &'a Manifest) -> Rechecked<'a> {
        Box::pin(async move {
            let branch = self.pull_request.as_ref().map(|p| p.branch.as_str());
            let copy = self.bucket.read_copy(branch).map_err(Error::work)?;
            let file = format!("{}.json", self.name);
            let text = Tree::new(&copy.folder)
                .read_text(&file)
                .map_err(Error::work)?;
            Ok(recheck::pointed(
                &format!("{}/{file}", self.bucket.folder),
                text.map(|t| bucket_pairs(&t)),
                manifest,
                &|name| asset_url(manifest, &self.web_repo, &self.tag, name),
            ))
        })
    }
}
