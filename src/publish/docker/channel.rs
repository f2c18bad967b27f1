//! `[release.docker]` as a release channel: images are planned from the manifest, assembled
//! (or built) into their OCI layout and pushed to every repository.

use futures_util::future::LocalBoxFuture;

use super::config::DockerConfig;
use super::{ImagePlan, ImageSource};
use crate::config::{Loaded, Problem};
use crate::error::Error;
use crate::events::Level;
use crate::manifest::Manifest;
use crate::publish::recheck::Rechecked;
use crate::publish::{Context, Planned, Run};

/// The container image channel.
pub struct Docker;

impl crate::publish::Channel for Docker {
    type Section = DockerConfig;
    const NAME: &'static str = "docker";
    const ABOUT: &'static str = "OCI / Docker images pushed to registries";

    fn check(&self, loaded: &Loaded, section: &DockerConfig) -> Vec<Problem> {
        super::config::check(loaded, section)
    }

    fn plan(&self, cx: &Context<'_>, config: DockerConfig) -> Result<Box<dyn Planned>, Error> {
        let plan = super::plan(cx.loaded, cx.facts, &config, cx.manifest, cx.dist)?;
        Ok(Box::new(plan))
    }
}

impl Planned for ImagePlan {
    fn describe(&self, say: &dyn Fn(String)) {
        describe_images(self, say);
    }

    fn preflight(&self) -> Result<(), Error> {
        match &self.sign {
            Some(super::plan::ImageSigner::Key(key)) => {
                key.load_cosign().map_err(super::DockerError::Key)?;
            }
            Some(super::plan::ImageSigner::Keyless { .. })
                if !crate::sigstore::sign::token_available() =>
            {
                return Err(Error::Usage(
                    crate::sigstore::sign::SignError::NoToken.to_string(),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    fn apply<'a>(
        &'a self,
        run: &'a mut Run<'_>,
    ) -> LocalBoxFuture<'a, Result<serde_json::Value, Error>> {
        Box::pin(async move {
            let reporter = run.reporter;
            let tell = |level: Level, text: String| {
                reporter.report(&crate::events::Event::Message { level, text: &text })
            };
            let pushed = super::publish(self, &|text| tell(Level::Info, text), &|text| {
                tell(Level::Debug, text)
            })
            .await?;
            for image in &pushed {
                reporter.report(&crate::events::Event::ImagePushed {
                    repository: &image.repository,
                    digest: &image.digest,
                    tags: &image.tags,
                });
            }
            let digests = pushed
                .iter()
                .map(|p| format!("{}@{}", p.repository, p.digest))
                .collect::<Vec<_>>()
                .join(" ");
            let record =
                serde_json::to_value(&pushed).map_err(|e| Error::Internal(e.to_string()))?;
            run.manifest.published.docker = pushed;
            run.record()?;
            run.outputs.push(("images", digests));
            for skipped in &self.skipped_tags {
                run.say(format!("not tagged {skipped}"));
            }
            Ok(record)
        })
    }

    fn recheck<'a>(&'a self, manifest: &'a Manifest) -> Rechecked<'a> {
        Box::pin(async move { Ok(super::recheck(self, manifest).await?) })
    }
}

fn describe_images(plan: &ImagePlan, say: &dyn Fn(String)) {
    match &plan.source {
        ImageSource::Binaries {
            base,
            platforms,
            config,
        } => {
            for platform in platforms {
                say(format!(
                    "would assemble the {} image from {} ({}) on {}",
                    platform.platform,
                    platform.target,
                    platform
                        .files
                        .iter()
                        .map(|f| format!("/{}", f.path))
                        .collect::<Vec<_>>()
                        .join(", "),
                    base.as_deref().unwrap_or("scratch")
                ));
            }
            say(format!(
                "with entrypoint {:?}, user {}",
                config.entrypoint,
                config.user.as_deref().unwrap_or("(the base image's)")
            ));
        }
        ImageSource::Dockerfile(build) => {
            for platform in &build.platforms {
                say(format!(
                    "would build {} in {} for {} through the Docker engine",
                    build.dockerfile,
                    build.context.display(),
                    platform.platform
                ));
            }
        }
    }
    say(format!("in the OCI layout {}", plan.layout.display()));
    for repository in &plan.repositories {
        say(format!(
            "would push it to {repository} (blobs the registry has are skipped) and tag it {}{}",
            plan.tags.join(", "),
            if plan.sign.is_some() {
                ", then sign the index and each platform manifest (cosign's sha256-<digest>.sig tags)"
            } else {
                ""
            }
        ));
    }
    for skipped in &plan.skipped_tags {
        say(format!("would not tag {skipped}"));
    }
}
