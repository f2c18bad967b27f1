//! `[release.homebrew]` as a release channel: after the GitHub release, the formula is
//! rendered with the release's download URLs and pushed to the tap (or proposed in a pull
//! request).

use futures_util::future::LocalBoxFuture;
use serde::Serialize;

use super::config::HomebrewConfig;
use super::{Formula, ManPage, Tap};
use crate::config::{self, Loaded, Problem};
use crate::error::Error;
use crate::facts::Facts;
use crate::manifest::{ArtifactKind, Manifest};
use crate::publish::folder::Tree;
use crate::publish::git::pull_request::PullRequest;
use crate::publish::github;
use crate::publish::github::config::GithubConfig;
use crate::publish::recheck::{self, Rechecked};
use crate::publish::{Context, Planned, Run, Skipped};

/// The Homebrew tap channel.
pub struct Homebrew;

impl crate::publish::Channel for Homebrew {
    type Section = HomebrewConfig;
    const NAME: &'static str = "homebrew";
    const ABOUT: &'static str = "a formula in a Homebrew tap, pointing at the GitHub release";
    const NEEDS: &'static [&'static str] = &["github"];

    fn check(&self, loaded: &Loaded, section: &HomebrewConfig) -> Vec<Problem> {
        super::config::check(loaded, section)
    }

    fn plan(&self, cx: &Context<'_>, config: HomebrewConfig) -> Result<Box<dyn Planned>, Error> {
        let Some(release) = crate::publish::github::config::section(cx.loaded)? else {
            return Err(Error::Usage(
                "[release.homebrew] downloads from the GitHub release: add `[release.github]` too"
                    .into(),
            ));
        };
        if github::is_prerelease(&release, cx.facts) && !config.prerelease {
            return Ok(Box::new(Skipped(format!(
                "skipping the Homebrew formula: {} is a pre-release (set `prerelease = true` in [release.homebrew] to publish it)",
                cx.facts.version
            ))));
        }
        let plan = formula_plan(cx.loaded, cx.facts, &config, cx.manifest, &release)?;
        Ok(Box::new(plan))
    }
}

/// A formula for a tap. URLs are filled in once the GitHub release exists.
#[derive(Debug, Serialize)]
struct FormulaPlan {
    formula: Formula,
    template: String,
    /// Web address of the GitHub repository, for download URLs.
    web_repo: String,
    /// The release's tag, for download URLs the manifest does not record.
    tag: String,
    #[serde(skip)]
    tap: Tap,
    /// The pull request proposing the formula, in pull-request mode.
    pull_request: Option<PullRequest>,
}

impl Planned for FormulaPlan {
    fn describe(&self, say: &dyn Fn(String)) {
        let brew = self;
        say(format!(
            "would write {}/{}.rb (class {}) to the tap {} and {}",
            brew.tap.folder,
            brew.formula.name,
            brew.formula.class,
            brew.tap.display_url(),
            if brew.pull_request.is_some() {
                "open a pull request"
            } else {
                "push it, if it changed"
            }
        ));
    }

    fn apply<'a>(
        &'a self,
        run: &'a mut Run<'_>,
    ) -> LocalBoxFuture<'a, Result<serde_json::Value, Error>> {
        Box::pin(async move {
            let brew = self;
            let say = |text: String| run.say(text);
            let warn = |text: String| run.tell(crate::events::Level::Warn, text);
            push_formula(brew, run.manifest, &say, &warn).await?;
            let record = serde_json::json!({
                "formula": format!("{}/{}.rb", brew.tap.folder, brew.formula.name),
                "tap": brew.tap.display_url(),
                "version": brew.formula.version,
            });
            run.manifest.published.record("homebrew", record.clone());
            run.record()?;
            Ok(record)
        })
    }

    fn recheck<'a>(&'a self, manifest: &'a Manifest) -> Rechecked<'a> {
        Box::pin(async move {
            let branch = self.pull_request.as_ref().map(|p| p.branch.as_str());
            let copy = self.tap.read_copy(branch).map_err(Error::work)?;
            let file = format!("{}.rb", self.formula.name);
            let text = Tree::new(&copy.folder)
                .read_text(&file)
                .map_err(Error::work)?;
            Ok(recheck::pointed(
                &format!("{}/{file}", self.tap.folder),
                text.map(|t| formula_pairs(&t)),
                manifest,
                &|name| github::asset_url(manifest, &self.web_repo, &self.tag, name),
            ))
        })
    }
}

/// The `(url, sha256)` pairs of a formula: each `url "..."` with the `sha256 "..."` after it.
fn formula_pairs(formula: &str) -> Vec<(String, String)> {
    let value = |line: &str, key: &str| {
        let rest = line.trim().strip_prefix(key)?.strip_prefix(' ')?.trim();
        let quoted = rest.strip_prefix('"')?.strip_suffix('"')?;
        Some(quoted.replace("\\\"", "\"").replace("\\\\", "\\"))
    };
    let mut pairs = Vec::new();
    let mut url = None;
    for line in formula.lines() {
        if let Some(found) = value(line, "url") {
            url = Some(found);
        } else if let (Some(sha256), Some(address)) = (value(line, "sha256"), url.take()) {
            pairs.push((address, sha256));
        }
    }
    pairs
}

/// What a formula lacks: a platform without its block installs nothing there, and brew only
/// says so when a user tries.
fn missing_platforms(formula: &Formula) -> Vec<String> {
    [
        ("macOS", formula.macos.is_none(), "darwin-arm64 and darwin-x64"),
        ("Linux", formula.linux.is_none(), "linux-x64-musl and linux-arm64-musl"),
    ]
    .into_iter()
    .filter(|(_, missing, _)| *missing)
    .map(|(platform, _, targets)| {
        format!(
            "the {} formula has no {platform} archive, so `brew install` fails on {platform}: build {targets} to cover it",
            formula.name
        )
    })
    .collect()
}

/// Renders the formula with the release's download URLs and pushes it to the tap.
async fn push_formula(
    brew: &FormulaPlan,
    manifest: &Manifest,
    say: &dyn Fn(String),
    warn: &dyn Fn(String),
) -> Result<(), Error> {
    let url_of = |name: &str| github::asset_url(manifest, &brew.web_repo, &brew.tag, name);
    let mut formula = brew.formula.clone();
    (formula.macos, formula.linux) = Formula::platforms(manifest, url_of);
    if formula.macos.is_none() && formula.linux.is_none() {
        return Err(Error::Usage(
            "[release.homebrew]: the manifest has no macOS or Linux archives".into(),
        ));
    }
    for gap in missing_platforms(&formula) {
        warn(gap);
    }
    let text = formula
        .render(&brew.template)
        .map_err(|e| Error::Usage(crate::error::chain(&e)))?;
    let message = format!("{} {}", formula.name, formula.version);
    let pr_branch = brew.pull_request.as_ref().map(|p| p.branch.as_str());
    let pushed = brew
        .tap
        .publish(&formula.name, &text, &message, pr_branch)
        .map_err(Error::work)?;
    crate::publish::git::pull_request::report(
        &pushed,
        brew.pull_request.as_ref(),
        &format!("{}/{}.rb", brew.tap.folder, formula.name),
        "the tap",
        &message,
        format!("the tap's {}.rb is already up to date", formula.name),
        say,
    )
    .await
}

/// The formula for the release `release` makes, and where it goes.
fn formula_plan(
    loaded: &config::Loaded,
    facts: &Facts,
    config: &HomebrewConfig,
    manifest: &Manifest,
    release: &GithubConfig,
) -> Result<FormulaPlan, Error> {
    let web = &github::server_url();
    let github_repo = &release.repo;
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
        None => super::DEFAULT_TEMPLATE.to_string(),
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
        class: super::class_name(&name),
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
                section: super::man_section(path),
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
    let pull_request = PullRequest::plan(
        loaded,
        "homebrew",
        config.pull_request.as_ref(),
        config.tap.repo.as_deref(),
        format!("shipit/{name}-{}", facts.version),
    )?;
    let author = config
        .commit_author
        .as_ref()
        .map(|a| (a.name.clone(), a.email.clone()))
        .unwrap_or_else(|| ("shipit".into(), "shipit@users.noreply.github.com".into()));
    let token = crate::publish::git::token_for(
        &url,
        config.tap.token_env.as_deref(),
        &[
            crate::env_vars::HOMEBREW_TAP_TOKEN,
            crate::env_vars::GITHUB_TOKEN,
            crate::env_vars::GH_TOKEN,
        ],
    )?;
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
        pull_request,
        tag: github::release_tag(release, facts),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_formulas_addresses_pair_with_the_digest_after_them() {
        let formula = "  on_arm do\n    url \"https://x/a.tar.gz\"\n    sha256 \"ab\"\n  end\n  on_intel do\n    url \"https://x/b.tar.gz\"\n    sha256 \"cd\"\n";
        assert_eq!(
            formula_pairs(formula),
            [
                ("https://x/a.tar.gz".to_string(), "ab".to_string()),
                ("https://x/b.tar.gz".to_string(), "cd".to_string())
            ]
        );
    }

    #[test]
    fn a_formula_without_a_macos_archive_is_warned_about() {
        let mut formula = Formula {
            class: "Demo".into(),
            name: "demo".into(),
            desc: "d".into(),
            homepage: "h".into(),
            version: "1.0.0".into(),
            license: None,
            macos: None,
            linux: Some(Default::default()),
            binaries: vec!["demo".into()],
            completions: Default::default(),
            manpages: Vec::new(),
            depends_on: Vec::new(),
            conflicts_with: Vec::new(),
            caveats: None,
            service: None,
        };
        let gaps = missing_platforms(&formula);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert!(gaps[0].contains("no macOS archive") && gaps[0].contains("darwin-arm64"));
        formula.macos = Some(Default::default());
        assert!(missing_platforms(&formula).is_empty());
    }
}
