//! `[release.yum]`: the release's `.rpm` packages added to a signed YUM/DNF repository in a
//! folder.

pub mod config;
pub mod recheck;
pub mod repo;

use std::path::PathBuf;

use futures_util::future::LocalBoxFuture;

use self::config::YumConfig;
use self::repo::YumRepo;
use crate::config::{Loaded, Problem};
use crate::error::Error;
use crate::manifest::Manifest;
use crate::openpgp::PgpKey;
use crate::publish::recheck::Rechecked;
use crate::publish::{Context, Planned, Run, folder};

/// The YUM repository channel.
pub struct Yum;

impl crate::publish::Channel for Yum {
    type Section = YumConfig;
    const NAME: &'static str = "yum";
    const ABOUT: &'static str =
        "the .rpm packages in a signed YUM/DNF repository (a folder any web server can serve)";

    fn check(&self, loaded: &Loaded, section: &YumConfig) -> Vec<Problem> {
        config::check(loaded, section)
    }

    fn plan(&self, cx: &Context<'_>, yum: YumConfig) -> Result<Box<dyn Planned>, Error> {
        let rpms = folder::packages(cx, "yum", "rpm")?;
        let key = folder::signing_key(cx, "yum", &yum.key)?;
        let location = folder::Location::from_config(cx, &yum.path, &yum.git)?;
        let url = yum
            .url
            .clone()
            .unwrap_or_else(|| location.folder_url("file://"));
        Ok(Box::new(YumPlan {
            location,
            repo: YumRepo {
                root: PathBuf::new(),
                keep: yum.keep,
            },
            id: yum.id.clone().unwrap_or_else(|| cx.facts.project.clone()),
            rpms,
            key,
            url,
        }))
    }
}

/// The packages to add and where.
struct YumPlan {
    location: folder::Location,
    /// The repository's settings; its root is the location's folder.
    repo: YumRepo,
    id: String,
    rpms: Vec<PathBuf>,
    key: PgpKey,
    url: String,
}

impl YumPlan {
    /// The `.repo` file users install.
    fn repo_file(&self) -> String {
        let url = self.url.trim_end_matches('/');
        format!(
            "[{id}]\nname={id}\nbaseurl={url}\nenabled=1\ngpgcheck=1\nrepo_gpgcheck=1\ngpgkey={url}/key.asc\n",
            id = self.id
        )
    }
}

impl Planned for YumPlan {
    fn describe(&self, say: &dyn Fn(String)) {
        say(format!(
            "would add {} to the YUM repository {}, signed by {}",
            folder::names(&self.rpms),
            self.location.describe(),
            self.key.fingerprint()
        ));
    }

    fn apply<'a>(
        &'a self,
        run: &'a mut Run<'_>,
    ) -> LocalBoxFuture<'a, Result<serde_json::Value, Error>> {
        Box::pin(async move {
            let repo_file = self.repo_file();
            let message = format!("{}: {}", self.id, folder::names(&self.rpms));
            let (updated, pushed) = self.location.update(&message, |root| {
                let repo = YumRepo {
                    root: root.to_path_buf(),
                    keep: self.repo.keep,
                };
                let updated = repo.add(&self.rpms, &self.key, folder::now())?;
                folder::Tree::new(root)
                    .write(&format!("{}.repo", self.id), repo_file.as_bytes())?;
                Ok::<_, repo::YumError>(updated)
            })?;
            if let Some(pushed) = pushed {
                run.say(pushed);
            }
            updated.tell(run, "the YUM repository", self.repo.keep);
            run.say(format!(
                "users add the YUM repository with /etc/yum.repos.d/{}.repo:\n{repo_file}",
                self.id
            ));
            let record = serde_json::json!({
                "location": self.location.describe(),
                "fingerprint": self.key.fingerprint(),
                "added": updated.added,
                "present": updated.present,
                "removed": updated.removed,
                "repo_file": repo_file,
            });
            run.manifest.published.record("yum", record.clone());
            run.record()?;
            Ok(record)
        })
    }

    fn recheck<'a>(&'a self, _: &'a Manifest) -> Rechecked<'a> {
        Box::pin(async move {
            let public = self.key.verifier().map_err(Error::work)?;
            let copy = self.location.read()?;
            recheck::recheck(&folder::Tree::new(copy.path()), &self.rpms, &public)
                .map_err(Error::work)
        })
    }
}
