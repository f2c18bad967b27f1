//! `[release.winget]`: after the GitHub release, the three manifests of a winget package
//! (version, installer, default locale; schema [`SCHEMA`]) are written to
//! `manifests/<l>/<Publisher>/<Name>/<version>/` of a repository laid out like
//! `microsoft/winget-pkgs`, and pushed. Each Windows zip is an installer of type `zip` holding a
//! `portable` executable. Every string is a single-quoted YAML scalar, so no value can break
//! the file.

pub mod config;

use futures_util::future::LocalBoxFuture;
use serde_json::json;

use self::config::WingetConfig;
use crate::config::{Loaded, Problem};
use crate::error::Error;
use crate::manifest::Manifest;
use crate::publish::git::GitRemote;
use crate::publish::git::pull_request::{self, PullRequest};
use crate::publish::recheck::{self, Rechecked};
use crate::publish::windows::{WindowsRelease, WindowsZip, asset_url, windows_release};
use crate::publish::{Context, Planned, Run, Skipped, folder};

/// The manifest schema version written.
pub const SCHEMA: &str = "1.28.0";

/// The winget channel.
pub struct Winget;

impl crate::publish::Channel for Winget {
    type Section = WingetConfig;
    const NAME: &'static str = "winget";
    const ABOUT: &'static str =
        "winget manifests (zip with a portable exe) in a repository laid out like winget-pkgs";
    const NEEDS: &'static [&'static str] = &["github"];

    fn check(&self, loaded: &Loaded, section: &WingetConfig) -> Vec<Problem> {
        config::check(loaded, section)
    }

    fn plan(&self, cx: &Context<'_>, winget: WingetConfig) -> Result<Box<dyn Planned>, Error> {
        let release =
            match windows_release(cx, "winget", "the winget manifests", winget.prerelease)? {
                Ok(release) => release,
                Err(why) => return Ok(Box::new(Skipped(why))),
            };
        let WindowsRelease {
            web_repo,
            tag,
            zips,
        } = release;
        let remote = GitRemote {
            branch: winget.branch.clone(),
            ..GitRemote::for_channel(
                cx.loaded,
                "winget",
                winget.repository.parts(),
                winget
                    .commit_author
                    .as_ref()
                    .map(|a| (a.name.clone(), a.email.clone())),
            )?
        };
        let (first, _) = winget
            .identifier
            .split_once('.')
            .unwrap_or((&winget.identifier, ""));
        let pull_request = PullRequest::plan(
            cx.loaded,
            "winget",
            winget.pull_request.as_ref(),
            winget.repository.repo.as_deref(),
            format!("shipit/{}-{}", winget.identifier, cx.facts.version),
        )?;
        Ok(Box::new(Manifests {
            pull_request,
            publisher: winget.publisher.clone().unwrap_or_else(|| first.to_owned()),
            name: winget
                .name
                .clone()
                .unwrap_or_else(|| cx.facts.project.clone()),
            description: winget
                .description
                .clone()
                .or_else(|| cx.facts.cargo.description.clone())
                .unwrap_or_else(|| cx.facts.project.clone()),
            license: winget
                .license
                .clone()
                .or_else(|| cx.facts.cargo.license.clone())
                .unwrap_or_else(|| "Proprietary".into()),
            homepage: winget
                .homepage
                .clone()
                .or_else(|| cx.facts.cargo.homepage.clone())
                .unwrap_or_else(|| web_repo.clone()),
            identifier: winget.identifier.clone(),
            version: cx.facts.version.clone(),
            tag,
            web_repo,
            zips,
            remote,
        }))
    }
}

/// What the three manifests say.
struct Manifests {
    identifier: String,
    publisher: String,
    name: String,
    description: String,
    license: String,
    homepage: String,
    version: String,
    tag: String,
    web_repo: String,
    zips: Vec<WindowsZip>,
    remote: GitRemote,
    pull_request: Option<PullRequest>,
}

/// A single-quoted YAML scalar: `'` doubled, line breaks folded to spaces.
fn yaml(text: &str) -> String {
    format!("'{}'", text.replace(['\n', '\r'], " ").replace('\'', "''"))
}

impl Manifests {
    /// `manifests/a/Acme/Demo/0.1.0`.
    fn folder(&self) -> String {
        let parts: Vec<&str> = self.identifier.split('.').collect();
        let letter = self.identifier[..1].to_lowercase();
        format!("manifests/{letter}/{}/{}", parts.join("/"), self.version)
    }

    /// The three files, by name, with the release's download URLs.
    fn render(&self, url_of: impl Fn(&str) -> String) -> Vec<(String, String)> {
        let header = |kind: &str| {
            format!(
                "# yaml-language-server: $schema=https://aka.ms/winget-manifest.{kind}.{SCHEMA}.schema.json\n\n"
            )
        };
        let common = format!(
            "PackageIdentifier: {}\nPackageVersion: {}\n",
            yaml(&self.identifier),
            yaml(&self.version)
        );
        let tail = |kind: &str| format!("ManifestType: {kind}\nManifestVersion: {SCHEMA}\n");
        let version = format!(
            "{}{common}DefaultLocale: en-US\n{}",
            header("version"),
            tail("version")
        );
        let mut installers = String::new();
        for zip in &self.zips {
            installers.push_str(&format!(
                "  - Architecture: {}\n    InstallerUrl: {}\n    InstallerSha256: {}\n    NestedInstallerFiles:\n",
                zip.arch,
                yaml(&url_of(&zip.name)),
                zip.sha256.to_uppercase()
            ));
            for exe in &zip.bin {
                let path = match &zip.extract_dir {
                    Some(dir) => format!("{dir}\\{}", exe.replace('/', "\\")),
                    None => exe.replace('/', "\\"),
                };
                let alias = exe
                    .rsplit('/')
                    .next()
                    .unwrap_or(exe)
                    .trim_end_matches(".exe");
                installers.push_str(&format!(
                    "      - RelativeFilePath: {}\n        PortableCommandAlias: {}\n",
                    yaml(&path),
                    yaml(alias)
                ));
            }
        }
        let installer = format!(
            "{}{common}InstallerType: zip\nNestedInstallerType: portable\nInstallers:\n{installers}{}",
            header("installer"),
            tail("installer")
        );
        let locale = format!(
            "{}{common}PackageLocale: en-US\nPublisher: {}\nPackageName: {}\nPackageUrl: {}\nLicense: {}\nShortDescription: {}\n{}",
            header("defaultLocale"),
            yaml(&self.publisher),
            yaml(&self.name),
            yaml(&self.homepage),
            yaml(&self.license),
            yaml(&self.description),
            tail("defaultLocale")
        );
        let id = &self.identifier;
        vec![
            (format!("{id}.yaml"), version),
            (format!("{id}.installer.yaml"), installer),
            (format!("{id}.locale.en-US.yaml"), locale),
        ]
    }
}

/// The `(InstallerUrl, InstallerSha256)` pairs of an installer manifest.
fn installer_pairs(text: &str) -> Vec<(String, String)> {
    let value = |line: &str, key: &str| {
        let rest = line.trim().strip_prefix(key)?.trim();
        Some(
            match rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
                Some(quoted) => quoted.replace("''", "'"),
                None => rest.to_owned(),
            },
        )
    };
    let mut pairs = Vec::new();
    let mut url = None;
    for line in text.lines() {
        if let Some(found) = value(line, "InstallerUrl:") {
            url = Some(found);
        } else if let (Some(sha256), Some(address)) = (value(line, "InstallerSha256:"), url.take())
        {
            pairs.push((address, sha256.to_ascii_lowercase()));
        }
    }
    pairs
}

impl Planned for Manifests {
    fn describe(&self, say: &dyn Fn(String)) {
        let plan = self;
        say(format!(
            "would write the winget manifests of {} {} to {} in {} and {}, if they changed",
            plan.identifier,
            plan.version,
            plan.folder(),
            plan.remote.display_url(),
            if plan.pull_request.is_some() {
                "propose them in a pull request"
            } else {
                "push them"
            }
        ));
    }

    fn apply<'a>(
        &'a self,
        run: &'a mut Run<'_>,
    ) -> LocalBoxFuture<'a, Result<serde_json::Value, Error>> {
        Box::pin(async move {
            let plan = self;
            let files =
                plan.render(|name| asset_url(run.manifest, &plan.web_repo, &plan.tag, name));
            let folder = plan.folder();
            let message = format!("{} {}", plan.identifier, plan.version);
            let pushed = plan
                .remote
                .publish_folder(
                    &message,
                    plan.pull_request.as_ref().map(|p| p.branch.as_str()),
                    |root| {
                        for (name, text) in &files {
                            folder::Tree::new(root)
                                .write(&format!("{folder}/{name}"), text.as_bytes())?;
                        }
                        Ok::<(), crate::file_error::FileError>(())
                    },
                )
                .map_err(Error::work)?;
            pull_request::report(
                &pushed,
                plan.pull_request.as_ref(),
                &folder,
                "the repository",
                &format!("New version: {} version {}", plan.identifier, plan.version),
                format!("the winget manifests in {folder} are already up to date"),
                &|text| run.say(text),
            )
            .await?;
            let record = json!({
                "manifests": folder,
                "repository": plan.remote.display_url(),
                "identifier": plan.identifier,
                "version": plan.version,
                "schema": SCHEMA,
            });
            run.manifest.published.record("winget", record.clone());
            run.record()?;
            Ok(record)
        })
    }

    fn recheck<'a>(&'a self, manifest: &'a Manifest) -> Rechecked<'a> {
        Box::pin(async move {
            let branch = self.pull_request.as_ref().map(|p| p.branch.as_str());
            let copy = self.remote.read_copy(branch).map_err(Error::work)?;
            let file = format!("{}/{}.installer.yaml", self.folder(), self.identifier);
            let text = folder::Tree::new(&copy.folder)
                .read_text(&file)
                .map_err(Error::work)?;
            Ok(recheck::pointed(
                &file,
                text.map(|t| installer_pairs(&t)),
                manifest,
                &|name| asset_url(manifest, &self.web_repo, &self.tag, name),
            ))
        })
    }
}
