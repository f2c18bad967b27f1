//! `shipit release`: publish `dist/manifest.json` to the `[release.github]` repository.
//!
//! Plan first (what to upload, title, notes, flags), as data that `--dry-run` prints; then a
//! draft release is found or created, assets are uploaded in parallel (skipping those already
//! there), and the release is published last.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::Session;
use crate::cli::ReleaseArgs;
use crate::config::{self, GithubConfig, HomebrewConfig, Prerelease, validate::parse_duration};
use crate::error::Error;
use crate::exit::ExitCode;
use crate::facts::{Facts, FactsOptions};
use crate::manifest::{ArtifactKind, Manifest, hash_file};
use crate::plan::kinds;
use crate::publish::docker::{self, ImagePlan, ImageSource};
use crate::publish::github::{self, Client, ReleaseFields, ReleaseSpec, Upload};
use crate::publish::homebrew::{self, Formula, ManPage, Pushed, Tap};
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
    /// Container images, pushed first so the release announces images that exist.
    docker: Option<ImagePlan>,
    /// The GitHub release and the Homebrew formula that points at it.
    github: Option<GithubPlan>,
}

/// The GitHub release and what follows it.
#[derive(Debug, Serialize)]
struct GithubPlan {
    api_url: String,
    #[serde(skip)]
    max_retry: Duration,
    /// The GitHub release.
    github: ReleaseSpec,
    /// Where the release notes come from.
    notes_source: String,
    /// The formula to push, when `[release.homebrew]` is set and applies.
    homebrew: Option<FormulaPlan>,
    /// Why a configured formula is not pushed this time.
    homebrew_skipped: Option<String>,
    /// For a nightly: how many dated nightly releases to keep.
    prune_keep: Option<usize>,
}

/// A formula for a tap. URLs are filled in once the GitHub release exists.
#[derive(Debug, Serialize)]
struct FormulaPlan {
    formula: Formula,
    template: String,
    /// Web address of the GitHub repository, for download URLs.
    web_repo: String,
    #[serde(skip)]
    tap: Tap,
    tap_repo: Option<String>,
    pull_request: bool,
}

/// Runs the release.
pub fn run(session: &Session, release_args: &ReleaseArgs) -> Result<ExitCode, Error> {
    let args = &release_args.version;
    let global = &session.cli.global;
    let loaded = config::load(&global.pipeline, kinds::BUILTINS)?;
    let release = &loaded.file.release;
    if release.github.is_none() && release.docker.is_none() {
        return Err(Error::Usage(format!(
            "{} has nothing to release: add `[release.github]` (`repo = \"owner/name\"`) or `[release.docker]` (`image = \"registry/owner/name\"`)",
            global.pipeline.display()
        )));
    }
    if release.homebrew.is_some() && release.github.is_none() {
        return Err(Error::Usage(
            "[release.homebrew] downloads from the GitHub release: add `[release.github]` too"
                .into(),
        ));
    }
    let facts = Facts::gather(&loaded, FactsOptions::from(args))?;
    let dist = plan::dist_dir(&loaded, &facts);
    if !release_args.merge.is_empty() {
        super::merge::merge(session, &loaded, &facts, &release_args.merge)?;
        if global.dry_run {
            return Ok(ExitCode::Success);
        }
    }
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
    let plan = ReleasePlan {
        docker: match &release.docker {
            Some(config) => Some(docker::plan(&loaded, &facts, config, &manifest, &dist)?),
            None => None,
        },
        github: match &release.github {
            Some(github) => Some(github_plan(&loaded, &facts, github, &manifest, &dist)?),
            None => None,
        },
    };
    let reporter = ui::reporter(session.ui, session.printer.clone());
    if global.dry_run {
        describe(&plan, &*reporter);
        return Ok(ExitCode::Success);
    }
    let token = ["GITHUB_TOKEN", "GH_TOKEN"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|t| !t.trim().is_empty()));
    if plan.github.is_some() && token.is_none() {
        return Err(Error::Usage(
            "no GitHub token: set GITHUB_TOKEN (or GH_TOKEN) with `contents: write`".into(),
        ));
    }
    let manifest_path = std::path::absolute(dist.join("manifest.json")).unwrap_or_default();
    let mut outputs = vec![
        ("version", facts.version.clone()),
        ("manifest", manifest_path.display().to_string()),
    ];
    let say = |level: Level, text: String| reporter.report(&Event::Message { level, text: &text });

    if let Some(images) = &plan.docker {
        let pushed = super::block_on_interruptible(docker::publish(
            images,
            &|text| say(Level::Info, text),
            &|text| say(Level::Debug, text),
        ))?;
        let digests = pushed
            .iter()
            .map(|p| format!("{}@{}", p.repository, p.digest))
            .collect::<Vec<_>>()
            .join(" ");
        manifest.published.docker = pushed;
        manifest
            .write(&dist)
            .map_err(|e| Error::Failed(e.to_string()))?;
        outputs.push(("images", digests));
        for skipped in &images.skipped_tags {
            say(Level::Info, format!("not tagged {skipped}"));
        }
    }
    if let (Some(github), Some(token)) = (&plan.github, &token) {
        let published = super::block_on_interruptible(async {
            let client = Arc::new(
                Client::new(&github.api_url, token, github.max_retry)
                    .map_err(|e| Error::Failed(e.to_string()))?,
            );
            let published =
                github::publish(&client, &github.github, &|text| say(Level::Info, text))
                    .await
                    .map_err(|e| Error::Failed(e.to_string()))?;
            if let Some(keep) = github.prune_keep {
                let deleted = github::prune_nightlies(&client, &github.github.repo, keep)
                    .await
                    .map_err(|e| Error::Failed(format!("pruning old nightly releases: {e}")))?;
                if !deleted.is_empty() {
                    say(
                        Level::Info,
                        format!(
                            "deleted {} older nightly release{} (keeping {keep}): {}",
                            deleted.len(),
                            if deleted.len() == 1 { "" } else { "s" },
                            deleted.join(", ")
                        ),
                    );
                }
            }
            Ok(published)
        })?;
        let url = published.url.clone();
        let asset_urls =
            serde_json::to_string(&published.assets).map_err(|e| Error::Internal(e.to_string()))?;
        manifest.published.github = Some(published);
        manifest
            .write(&dist)
            .map_err(|e| Error::Failed(e.to_string()))?;
        outputs.push(("release-url", url.clone()));
        outputs.push(("asset-urls", asset_urls));
        if let Some(brew) = &github.homebrew {
            push_formula(brew, github, &manifest, token, &*reporter)?;
        }
        if let Some(why) = &github.homebrew_skipped {
            say(Level::Info, why.clone());
        }
        say(
            Level::Info,
            format!("released {} at {url}", github.github.fields.tag),
        );
    }
    super::github_output(&outputs)?;
    Ok(ExitCode::Success)
}

/// Renders the formula with the release's download URLs and pushes it to the tap.
fn push_formula(
    brew: &FormulaPlan,
    plan: &GithubPlan,
    manifest: &Manifest,
    token: &str,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let published = manifest.published.github.as_ref();
    let url_of = |name: &str| {
        published
            .and_then(|p| p.assets.get(name).cloned())
            .unwrap_or_else(|| {
                format!(
                    "{}/releases/download/{}/{name}",
                    brew.web_repo, plan.github.fields.tag
                )
            })
    };
    let mut formula = brew.formula.clone();
    (formula.macos, formula.linux) = Formula::platforms(manifest, url_of);
    if formula.macos.is_none() && formula.linux.is_none() {
        return Err(Error::Usage(
            "[release.homebrew]: the manifest has no macOS or Linux archives".into(),
        ));
    }
    let text = formula.render(&brew.template).map_err(Error::Usage)?;
    let message = format!("{} {}", formula.name, formula.version);
    let pr_branch = brew
        .pull_request
        .then(|| format!("shipit/{}-{}", formula.name, formula.version));
    let pushed = brew
        .tap
        .publish(&formula.name, &text, &message, pr_branch.as_deref())
        .map_err(Error::Failed)?;
    let say = |text: String| {
        reporter.report(&Event::Message {
            level: Level::Info,
            text: &text,
        })
    };
    match pushed {
        Pushed::Unchanged => say(format!(
            "the tap's {}.rb is already up to date",
            formula.name
        )),
        Pushed::Committed { branch, attempts } => {
            say(format!(
                "pushed {}/{}.rb to the tap's {branch}{}",
                brew.tap.folder,
                formula.name,
                if attempts > 1 {
                    " (rebased on newer commits)"
                } else {
                    ""
                }
            ));
            if let (Some(head), Some(repo)) = (&pr_branch, &brew.tap_repo) {
                let runtime = super::runtime()?;
                let base = brew.tap.branch.clone().unwrap_or_else(|| "main".into());
                let body = format!("Formula for {message}, released by shipit.");
                // The client needs the runtime from its creation on.
                let url = runtime
                    .block_on(async {
                        Client::new(&plan.api_url, token, plan.max_retry)?
                            .open_pull_request(repo, head, &base, &message, &body)
                            .await
                    })
                    .map_err(|e| Error::Failed(e.to_string()))?;
                runtime.shutdown_background();
                say(match url {
                    Some(url) => format!("opened {url}"),
                    None => format!("a pull request for {head} is already open"),
                });
            }
        }
    }
    Ok(())
}

fn github_plan(
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
    let gathered = Notes::gather(
        &facts.cargo.root,
        &facts.version,
        &facts.tag,
        Some(&format!("{}/{}", web.trim_end_matches('/'), github.repo)),
    );
    let notes = gathered
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
    let (homebrew, homebrew_skipped) = match &loaded.file.release.homebrew {
        Some(config) if prerelease && !config.prerelease => (
            None,
            Some(format!(
                "skipping the Homebrew formula: {} is a pre-release (set `prerelease = true` in [release.homebrew] to publish it)",
                facts.version
            )),
        ),
        Some(config) => (
            Some(formula_plan(
                loaded,
                facts,
                config,
                manifest,
                &web,
                &github.repo,
            )?),
            None,
        ),
        None => (None, None),
    };
    // A nightly goes to one rolling pre-release under the `nightly` tag.
    let nightly = facts.nightly;
    let (tag, prerelease, make_latest) = if nightly {
        ("nightly".to_string(), true, "false".to_string())
    } else {
        (facts.tag.clone(), prerelease, make_latest)
    };
    Ok(GithubPlan {
        api_url: std::env::var("GITHUB_API_URL")
            .unwrap_or_else(|_| "https://api.github.com".into()),
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
            nightly,
        },
        homebrew,
        homebrew_skipped,
        prune_keep: github.keep.filter(|_| nightly),
    })
}

fn formula_plan(
    loaded: &config::Loaded,
    facts: &Facts,
    config: &HomebrewConfig,
    manifest: &Manifest,
    web: &str,
    github_repo: &str,
) -> Result<FormulaPlan, Error> {
    let name = config.name.clone().unwrap_or_else(|| facts.project.clone());
    let template = match &config.template {
        Some(file) => {
            let path = loaded.resolve(file);
            std::fs::read_to_string(&path).map_err(|e| {
                Error::Usage(format!(
                    "cannot read the formula template {}: {e}",
                    path.display()
                ))
            })?
        }
        None => homebrew::DEFAULT_TEMPLATE.to_string(),
    };
    let web_repo = format!("{}/{github_repo}", web.trim_end_matches('/'));
    let mut binaries: Vec<String> = manifest
        .artifacts
        .iter()
        .filter(|a| a.kind == ArtifactKind::Binary && a.os.as_deref() != Some("windows"))
        .map(|a| a.name.clone())
        .collect();
    binaries.sort();
    binaries.dedup();
    if binaries.is_empty() {
        return Err(Error::Usage(
            "[release.homebrew]: the manifest lists no macOS or Linux binaries to install".into(),
        ));
    }
    let formula = Formula {
        class: homebrew::class_name(&name),
        name: name.clone(),
        desc: config
            .description
            .clone()
            .or_else(|| facts.cargo.description.clone())
            .unwrap_or_else(|| name.clone()),
        homepage: config
            .homepage
            .clone()
            .or_else(|| facts.cargo.homepage.clone())
            .unwrap_or_else(|| web_repo.clone()),
        version: facts.version.clone(),
        license: config
            .license
            .clone()
            .or_else(|| facts.cargo.license.clone()),
        macos: None,
        linux: None,
        binaries,
        completions: config.completions.clone(),
        manpages: config
            .manpages
            .iter()
            .map(|path| ManPage {
                section: homebrew::man_section(path),
                path: path.clone(),
            })
            .collect(),
        depends_on: config.depends_on.clone(),
        conflicts_with: config.conflicts_with.clone(),
        caveats: config.caveats.clone(),
        service: config.service.clone(),
    };
    let url = match (&config.tap.url, &config.tap.repo) {
        (Some(url), _) => {
            // A local path is taken relative to the pipeline file.
            if url.contains("://") || url.contains('@') {
                url.clone()
            } else {
                loaded.resolve(url).display().to_string()
            }
        }
        (None, Some(repo)) => format!("{}/{repo}.git", web.trim_end_matches('/')),
        (None, None) => {
            return Err(Error::Usage(
                "[release.homebrew] tap needs `repo = \"owner/homebrew-tap\"` or `url`".into(),
            ));
        }
    };
    if config.pull_request && config.tap.repo.is_none() {
        return Err(Error::Usage(
            "[release.homebrew] pull_request = true needs `tap.repo`, to open the pull request on"
                .into(),
        ));
    }
    let author = config
        .commit_author
        .as_ref()
        .map(|a| (a.name.clone(), a.email.clone()))
        .unwrap_or_else(|| ("shipit".into(), "shipit@users.noreply.github.com".into()));
    let token = ["HOMEBREW_TAP_TOKEN", "GITHUB_TOKEN", "GH_TOKEN"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|t| !t.trim().is_empty()));
    Ok(FormulaPlan {
        formula,
        template,
        web_repo,
        tap: Tap {
            url,
            token,
            branch: config.branch.clone(),
            folder: config.folder.clone().unwrap_or_else(|| "Formula".into()),
            author,
        },
        tap_repo: config.tap.repo.clone(),
        pull_request: config.pull_request,
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
    if let Some(docker) = &plan.docker {
        describe_images(docker, &say);
    }
    if let Some(github) = &plan.github {
        describe_github(github, &say);
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
            "would push it to {repository} (blobs the registry has are skipped) and tag it {}",
            plan.tags.join(", ")
        ));
    }
    for skipped in &plan.skipped_tags {
        say(format!("would not tag {skipped}"));
    }
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
    if let Some(brew) = &plan.homebrew {
        say(format!(
            "would write {}/{}.rb (class {}) to the tap {} and {}",
            brew.tap.folder,
            brew.formula.name,
            brew.formula.class,
            brew.tap.display_url(),
            if brew.pull_request {
                "open a pull request"
            } else {
                "push it, if it changed"
            }
        ));
    }
}
