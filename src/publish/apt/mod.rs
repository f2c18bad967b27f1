//! `[release.apt]`: the release's `.deb` packages added to a signed APT repository in a folder.

pub mod config;
pub mod repo;

use std::path::PathBuf;

use futures_util::future::LocalBoxFuture;

use self::config::AptConfig;
use self::repo::AptRepo;
use crate::config::{Loaded, Problem};
use crate::error::Error;
use crate::manifest::ArtifactKind;
use crate::openpgp::PgpKey;
use crate::publish::{Context, Planned, Publisher, Run};
use crate::tasks::KeySource;

/// The APT repository channel.
pub struct Channel;

impl Publisher for Channel {
    fn name(&self) -> &'static str {
        "apt"
    }

    fn about(&self) -> &'static str {
        "the .deb packages in a signed APT repository (a folder any web server can serve)"
    }

    fn schema(&self) -> schemars::Schema {
        schemars::schema_for!(AptConfig)
    }

    fn check(&self, loaded: &Loaded) -> Vec<Problem> {
        config::check(loaded)
    }

    fn plan(&self, cx: &Context<'_>) -> Result<Option<Box<dyn Planned>>, Error> {
        let Some(apt) = crate::publish::section::<AptConfig>(cx.loaded, "apt")? else {
            return Ok(None);
        };
        let debs: Vec<PathBuf> = cx
            .manifest
            .artifacts
            .iter()
            .filter(|a| a.kind == ArtifactKind::Package && a.name.ends_with(".deb"))
            .map(|a| cx.dist.join(&a.path))
            .collect();
        if debs.is_empty() {
            return Err(Error::Usage(
                "[release.apt] publishes .deb packages, and the manifest has none: add a `uses = \"deb\"` stage".into(),
            ));
        }
        // The key before anything is written: a missing key or a wrong password is a usage
        // error with the repository untouched.
        let key = KeySource::from_config(&apt.key, cx.loaded)
            .load_pgp()
            .map_err(|e| Error::Usage(format!("[release.apt]: {e}")))?;
        let origin = apt
            .origin
            .clone()
            .unwrap_or_else(|| cx.facts.project.clone());
        let root = cx.loaded.resolve(&apt.path);
        let url = apt
            .url
            .clone()
            .unwrap_or_else(|| format!("file:{}", root.display()));
        Ok(Some(Box::new(AptPlan {
            repo: AptRepo {
                root,
                suite: apt.suite.clone().unwrap_or_else(|| "stable".into()),
                component: apt.component.clone().unwrap_or_else(|| "main".into()),
                origin,
                keep: apt.keep,
            },
            debs,
            key,
            url,
        })))
    }
}

/// The packages to add and where.
struct AptPlan {
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
        let names: Vec<String> = self
            .debs
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        say(format!(
            "would add {} to the APT repository {} ({} {}), signed by {}",
            names.join(", "),
            self.repo.root.display(),
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
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let updated = self
                .repo
                .add(&self.debs, &self.key, now)
                .map_err(Error::work)?;
            for added in &updated.added {
                run.say(format!("added {added} to the APT repository"));
            }
            for present in &updated.present {
                run.say(format!("{present} is already in the APT repository"));
            }
            for removed in &updated.removed {
                run.say(format!(
                    "removed {removed} (keep = {})",
                    self.repo.keep.unwrap_or(0)
                ));
            }
            let sources = self.sources();
            run.say(format!("users add the APT repository with:\n{sources}"));
            let record = serde_json::json!({
                "path": self.repo.root,
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
}
