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
use crate::cli::ReleaseArgs;
use crate::config::{self, GithubConfig, HomebrewConfig, Prerelease, validate::parse_duration};
use crate::error::Error;
use crate::exit::ExitCode;
use crate::facts::{Facts, FactsOptions};
use crate::manifest::{ArtifactKind, Manifest, PublishedRelease, hash_file};
use crate::publish::github::{self, Client, GithubError, ReleaseFields, Upload};
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
    /// The formula to push, when `[release.homebrew]` is set and applies.
    homebrew: Option<FormulaPlan>,
    /// Why a configured formula is not pushed this time.
    homebrew_skipped: Option<String>,
    /// A nightly: one rolling `nightly` pre-release whose assets are replaced.
    nightly: bool,
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
    let loaded = config::load(&global.pipeline)?;
    let Some(github) = loaded.file.release.github.clone() else {
        return Err(Error::Usage(format!(
            "{} has no [release.github] section: add `[release.github]` with `repo = \"owner/name\"`",
            global.pipeline.display()
        )));
    };
    let facts = Facts::gather(&loaded, FactsOptions::from(args))?;
    let dist = plan::dist_dir(&loaded, &facts);
    if !release_args.merge.is_empty() {
        merge(session, &loaded, &facts, &release_args.merge)?;
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
    let manifest_path = std::path::absolute(dist.join("manifest.json")).unwrap_or_default();
    super::github_output(&[
        ("version", facts.version.clone()),
        ("manifest", manifest_path.display().to_string()),
        ("release-url", url.clone()),
        ("asset-urls", asset_urls),
    ])?;
    if let Some(brew) = &plan.homebrew {
        push_formula(brew, &plan, &manifest, &token, &*reporter)?;
    }
    if let Some(why) = &plan.homebrew_skipped {
        reporter.report(&Event::Message {
            level: Level::Info,
            text: why,
        });
    }
    reporter.report(&Event::Message {
        level: Level::Info,
        text: &format!("released {} at {url}", plan.fields.tag),
    });
    Ok(ExitCode::Success)
}

/// `--merge`: checks that the parts of a split build agree and together cover every target
/// exactly once, copies them into dist, then runs the checksum and sign stages once and writes
/// the combined manifest.
fn merge(
    session: &Session,
    loaded: &config::Loaded,
    facts: &Facts,
    parts: &[std::path::PathBuf],
) -> Result<(), Error> {
    let mut plan = plan::build(loaded, facts)?;
    let expected = plan::targets(&plan);
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    let mut merged: Vec<crate::manifest::Artifact> = Vec::new();
    let mut paths: BTreeMap<String, String> = BTreeMap::new();
    let mut manifests = Vec::new();
    for part in parts {
        let name = part.display().to_string();
        let manifest = Manifest::read(part).map_err(|e| Error::Usage(e.to_string()))?;
        for (what, found, want) in [
            ("project", &manifest.project, &facts.project),
            ("version", &manifest.version, &facts.version),
            ("commit", &manifest.commit, &facts.commit),
        ] {
            if found != want {
                return Err(Error::Usage(format!(
                    "{name} was built for {what} {found}, but this release is {what} {want}: parts must come from one commit and version"
                )));
            }
        }
        let targets = manifest.split.clone().unwrap_or_else(|| {
            let mut all: Vec<String> = manifest
                .artifacts
                .iter()
                .filter_map(|a| a.target.clone())
                .collect();
            all.dedup();
            all
        });
        for target in targets {
            if let Some(first) = owner.insert(target.clone(), name.clone()) {
                return Err(Error::Usage(format!(
                    "target `{target}` is in both {first} and {name}: each target belongs to one part"
                )));
            }
        }
        manifests.push((part.clone(), name, manifest));
    }
    let missing: Vec<&String> = expected
        .iter()
        .filter(|t| !owner.contains_key(*t))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "no part holds target(s) {}: build them with `shipit build --split --targets ...`",
            missing
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let reporter = ui::reporter(session.ui, session.printer.clone());
    if session.cli.global.dry_run {
        reporter.report(&Event::Message {
            level: Level::Info,
            text: &format!(
                "the {} parts agree and cover every target; would copy them into {}, write checksums and signatures, then publish",
                parts.len(),
                plan.dist.display()
            ),
        });
        return Ok(());
    }
    for (dir, name, manifest) in &manifests {
        for artifact in &manifest.artifacts {
            if let Some(first) = paths.insert(artifact.path.clone(), name.clone()) {
                return Err(Error::Usage(format!(
                    "`{}` is in both {first} and {name}",
                    artifact.path
                )));
            }
            let from = dir.join(&artifact.path);
            let to = plan.dist.join(&artifact.path);
            if from != to {
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        Error::Failed(format!("cannot create {}: {e}", parent.display()))
                    })?;
                }
                std::fs::copy(&from, &to)
                    .map_err(|e| Error::Failed(format!("cannot copy {}: {e}", from.display())))?;
            }
            match hash_file(&to) {
                Ok((size, sha)) if size == artifact.size && sha == artifact.sha256 => {}
                _ => {
                    return Err(Error::Usage(format!(
                        "{} does not match the manifest of {name}",
                        from.display()
                    )));
                }
            }
            merged.push(artifact.clone());
        }
    }
    // Only the stages that work on the whole set run now.
    for stage in &mut plan.stages {
        if !matches!(stage.kind.as_str(), "checksum" | "sign") && stage.skip.is_none() {
            stage.skip = Some("built by the parts being merged".into());
        }
    }
    let options = crate::executor::ExecOptions {
        jobs: 2,
        ..Default::default()
    };
    let report = super::build::execute(session, &plan, options, &reporter)?;
    merged.extend(report.artifacts());
    merged.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = Manifest {
        schema: crate::manifest::SCHEMA,
        project: facts.project.clone(),
        version: facts.version.clone(),
        tag: facts.tag.clone(),
        commit: facts.commit.clone(),
        date: manifests[0].2.date.clone(),
        artifacts: merged,
        published: Default::default(),
        split: None,
    };
    manifest
        .write(&plan.dist)
        .map_err(|e| Error::Failed(e.to_string()))?;
    reporter.report(&Event::Message {
        level: Level::Info,
        text: &format!(
            "merged {} parts into {} ({} artifacts)",
            parts.len(),
            plan.dist.display(),
            manifest.artifacts.len()
        ),
    });
    Ok(())
}

/// Renders the formula with the release's download URLs and pushes it to the tap.
fn push_formula(
    brew: &FormulaPlan,
    plan: &ReleasePlan,
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
                    brew.web_repo, plan.fields.tag
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
    Ok(ReleasePlan {
        nightly,
        homebrew,
        homebrew_skipped,
        repo: github.repo.clone(),
        api_url: std::env::var("GITHUB_API_URL")
            .unwrap_or_else(|_| "https://api.github.com".into()),
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
        max_retry,
        uploads,
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

/// Replaces the assets of the published `nightly` release so that a complete set is always
/// there: new files are uploaded first (a name already taken gets a `.next` suffix), then each
/// old file of the same name is deleted and the new one renamed into place, then the other old
/// files are deleted; last the notes are updated and the tag moved to this commit.
async fn roll_nightly(
    plan: &ReleasePlan,
    client: &Arc<Client>,
    release: github::Release,
    say: &(dyn Fn(String) + Sync),
) -> Result<PublishedRelease, GithubError> {
    let old = client.assets(&plan.repo, release.id).await?;
    let mut renames = Vec::new();
    let mut staged = Vec::new();
    for upload in &plan.uploads {
        match old.iter().find(|a| a.name == upload.name) {
            // Nightly files keep their names from night to night, so only a matching digest
            // (not just the size) proves a file unchanged.
            Some(asset) if asset.digest.is_some() && github::is_complete(asset, upload) => {}
            Some(_) => {
                let temp = format!("{}.next", upload.name);
                if let Some(stale) = old.iter().find(|a| a.name == temp) {
                    client.delete_asset(&plan.repo, stale).await?;
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
    let results: Vec<Result<github::Asset, GithubError>> = futures_util::stream::iter(&staged)
        .map(|upload| {
            let client = client.clone();
            let release = release.clone();
            async move { client.upload(&plan.repo, &release, upload).await }
        })
        .buffer_unordered(plan.concurrency)
        .collect()
        .await;
    let uploaded = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    say(format!("uploaded {} new nightly files", uploaded.len()));
    for name in &renames {
        let temp = format!("{name}.next");
        if let Some(previous) = old.iter().find(|a| a.name == *name) {
            client.delete_asset(&plan.repo, previous).await?;
        }
        if let Some(next) = uploaded.iter().find(|a| a.name == temp) {
            client.rename_asset(&plan.repo, next, name).await?;
        }
    }
    let keep: Vec<&str> = plan.uploads.iter().map(|u| u.name.as_str()).collect();
    for asset in old.iter().filter(|a| !keep.contains(&a.name.as_str())) {
        client.delete_asset(&plan.repo, asset).await?;
    }
    say(format!(
        "replaced the nightly's files with {}",
        plan.fields.name
    ));
    let release = client
        .update(&plan.repo, release.id, &plan.fields, false)
        .await?;
    client
        .move_tag(&plan.repo, &plan.fields.tag, &plan.fields.commit)
        .await?;
    let assets: BTreeMap<String, String> = client
        .assets(&plan.repo, release.id)
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
    if plan.nightly && !release.draft {
        return roll_nightly(plan, &client, release, &say).await;
    }
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
