//! `[release.apt]`: the release's `.deb` packages added to a signed APT repository in a folder.

pub mod config;
pub mod repo;

use std::path::PathBuf;

use futures_util::future::LocalBoxFuture;

use self::config::AptConfig;
use self::repo::AptRepo;
use crate::config::{Loaded, Problem};
use crate::error::Error;
use crate::manifest::Manifest;
use crate::openpgp::PgpKey;
use crate::publish::recheck::Rechecked;
use crate::publish::{Context, Planned, Run, folder};

/// The APT repository channel.
pub struct Apt;

impl crate::publish::Channel for Apt {
    type Section = AptConfig;
    const NAME: &'static str = "apt";
    const ABOUT: &'static str =
        "the .deb packages in a signed APT repository (a folder any web server can serve)";

    fn check(&self, loaded: &Loaded, section: &AptConfig) -> Vec<Problem> {
        config::check(loaded, section)
    }

    fn plan(&self, cx: &Context<'_>, apt: AptConfig) -> Result<Box<dyn Planned>, Error> {
        let debs = folder::packages(cx, "apt", "deb")?;
        let key = folder::signing_key(cx, "apt", &apt.key)?;
        let origin = apt
            .origin
            .clone()
            .unwrap_or_else(|| cx.facts.project.clone());
        let location = folder::Location::from_config(cx, &apt.path, &apt.git)?;
        let url = apt
            .url
            .clone()
            .unwrap_or_else(|| location.folder_url("file:"));
        Ok(Box::new(AptPlan {
            location,
            repo: AptRepo {
                root: PathBuf::new(),
                suite: apt.suite.clone().unwrap_or_else(|| "stable".into()),
                component: apt.component.clone().unwrap_or_else(|| "main".into()),
                origin,
                keep: apt.keep,
            },
            debs,
            key,
            url,
        }))
    }
}

/// The packages to add and where.
struct AptPlan {
    location: folder::Location,
    /// The repository's settings; its root is the location's folder.
    repo: AptRepo,
    debs: Vec<PathBuf>,
    key: PgpKey,
    url: String,
}

impl AptPlan {
    /// What users run to add the repository.
    fn sources(&self) -> String {
        let keyring = format!(
            "/usr/share/keyrings/{}-archive-keyring.gpg",
            self.repo.origin
        );
        format!(
            "curl -fsSL {url}/key.gpg | sudo tee {keyring} >/dev/null\n\
             echo 'deb [signed-by={keyring}] {url} {suite} {component}' | sudo tee /etc/apt/sources.list.d/{origin}.list",
            url = self.url.trim_end_matches('/'),
            suite = self.repo.suite,
            component = self.repo.component,
            origin = self.repo.origin,
        )
    }
}

impl Planned for AptPlan {
    fn describe(&self, say: &dyn Fn(String)) {
        say(format!(
            "would add {} to the APT repository {} ({} {}), signed by {}",
            folder::names(&self.debs),
            self.location.describe(),
            self.repo.suite,
            self.repo.component,
            self.key.fingerprint()
        ));
    }

    fn apply<'a>(
        &'a self,
        run: &'a mut Run<'_>,
    ) -> LocalBoxFuture<'a, Result<serde_json::Value, Error>> {
        Box::pin(async move {
            let message = format!("{}: {}", self.repo.origin, folder::names(&self.debs));
            let (updated, pushed) = self.location.update(&message, |root| {
                let repo = AptRepo {
                    root: root.to_path_buf(),
                    ..self.repo.clone()
                };
                repo.add(&self.debs, &self.key, folder::now())
            })?;
            if let Some(pushed) = pushed {
                run.say(pushed);
            }
            updated.tell(run, "the APT repository", self.repo.keep);
            let sources = self.sources();
            run.say(format!("users add the APT repository with:\n{sources}"));
            let record = serde_json::json!({
                "location": self.location.describe(),
                "suite": self.repo.suite,
                "component": self.repo.component,
                "fingerprint": self.key.fingerprint(),
                "added": updated.added,
                "present": updated.present,
                "removed": updated.removed,
                "sources": sources,
            });
            run.manifest.published.record("apt", record.clone());
            run.record()?;
            Ok(record)
        })
    }

    fn recheck<'a>(&'a self, _: &'a Manifest) -> Rechecked<'a> {
        Box::pin(async move {
            let public = self.key.verifier().map_err(Error::work)?;
            let copy = self.location.read()?;
            let repo = AptRepo {
                root: copy.path().to_path_buf(),
                ..self.repo.clone()
            };
            repo.recheck(&self.debs, &public).map_err(Error::work)
        })
    }
}
