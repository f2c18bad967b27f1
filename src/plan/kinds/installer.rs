//! `uses = "installer"`: `install.sh` (POSIX sh) and, with Windows archives, `install.ps1`,
//! installers that hold the SHA-256 of every archive of the stages they need (see
//! [`crate::installer`]).

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Context, Expansion, Kind, StageRef};
use crate::config::Problem;
use crate::config::validate::{check_template, template_problem};
use crate::installer::{InstallerArchive, InstallerSpec, default_base_url_env};
use crate::manifest::ArtifactKind;
use crate::path;
use crate::plan::{PlannedArtifact, Unit};
use crate::tasks::Task;
use crate::template::{self, GLOBAL_VARS};

/// Options of `uses = "installer"`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct InstallerOptions {
    /// Where the archives are downloaded from (template). Default: the GitHub release of `[release.github]`, `https://github.com/<repo>/releases/download/{{ tag }}`.
    pub base_url: Option<String>,
    /// The variable that overrides the address when the script runs (a mirror). Default: `<PROJECT>_INSTALL_BASE_URL`.
    pub base_url_env: Option<String>,
    /// A minisign public key file in the project: when minisign is installed, the script also checks the release's SHA256SUMS against its signature.
    pub minisign_key: Option<String>,
    /// The keyless signer of SHA256SUMS (a keyless sign stage): when cosign or sigstore is installed (or `--sigstore` asks for it), the script checks `SHA256SUMS.sigstore.json` is this identity's.
    pub sigstore: Option<InstallerSigstore>,
}

/// Who signs the release keyless, as the install script checks it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallerSigstore {
    /// The certificate identity (template): `https://github.com/acme/demo/.github/workflows/release.yml@refs/tags/{{ tag }}`.
    pub identity: String,
    /// The OIDC issuer. Default: GitHub Actions' (`https://token.actions.githubusercontent.com`).
    pub issuer: Option<String>,
}

/// The `installer` kind.
pub struct Installer;

impl Kind for Installer {
    type Options = InstallerOptions;
    const NAME: &'static str = "installer";
    const ABOUT: &'static str =
        "install.sh, which carries the SHA-256 of every archive it may download";

    fn check(&self, stage: &StageRef<'_>, options: &InstallerOptions) -> Vec<Problem> {
        let mut problems = Vec::new();
        if let Some(url) = &options.base_url {
            check_template(
                stage.loaded,
                path!["stages", stage.name, "base_url"],
                url,
                GLOBAL_VARS,
                &mut problems,
            );
        }
        if let Some(var) = &options.base_url_env
            && (var.is_empty()
                || !var
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'))
        {
            problems.push(
                Problem::new(
                    format!("`{var}` is not a variable name"),
                    stage.span("base_url_env"),
                )
                .help("upper-case letters, digits and `_`"),
            );
        }
        if let Some(key) = &options.minisign_key
            && let Err(e) = crate::relpath::RelPath::new(key)
        {
            problems.push(Problem::new(
                format!("`minisign_key` {e}"),
                stage.span("minisign_key"),
            ));
        }
        problems.extend(super::needs_none(
            stage,
            "an installer stage needs the stage that writes the archives",
            "package",
        ));
        problems
    }

    fn expand(
        &self,
        stage: &StageRef<'_>,
        options: InstallerOptions,
        context: &Context<'_>,
    ) -> Result<Expansion, Vec<Problem>> {
        let facts = context.facts;
        let archives: Vec<InstallerArchive> = context
            .needed_artifacts(stage)
            .into_iter()
            .filter(|a| a.kind == ArtifactKind::Archive)
            .filter_map(|a| {
                Some(InstallerArchive {
                    target: a.target.as_ref()?.name.clone(),
                    os: a.target.as_ref()?.os.clone(),
                    path: context.dist_path(&a.path),
                    file: a.name.clone(),
                })
            })
            .collect();
        if archives.is_empty() {
            return Err(vec![
                Problem::new(
                    "none of the stages this installer needs writes archives",
                    stage.span("needs"),
                )
                .help("list the `uses = \"archive\"` stage in `needs`"),
            ]);
        }
        let windows = archives.iter().any(|a| a.os == "windows");
        let mut binaries: Vec<String> = context
            .upstream_artifacts(stage)
            .into_iter()
            .filter(|a| a.kind == ArtifactKind::Binary)
            .map(|a| a.name.trim_end_matches(".exe").to_owned())
            .collect();
        binaries.sort();
        binaries.dedup();
        let vars = facts.template_vars();
        let base_url = match &options.base_url {
            Some(text) => template::render(text, &vars).map_err(|e| {
                vec![template_problem(
                    stage.loaded,
                    path!["stages", stage.name, "base_url"],
                    text,
                    e,
                )]
            })?,
            None => match crate::github_urls::release_repo(stage.loaded) {
                Some(repo) => crate::github_urls::download_base(&repo, &facts.tag),
                None => {
                    return Err(vec![
                        Problem::new(
                            "the installer does not know where the archives are downloaded from",
                            stage.span("uses"),
                        )
                        .help("set `base_url`, or add `[release.github]` (its release is the default)"),
                    ]);
                }
            },
        };
        let public_key = match &options.minisign_key {
            Some(file) => {
                let path = facts.cargo.root.join(file);
                let key = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|text| crate::minisign::PublicKey::from_text(&text).ok());
                match key {
                    Some(key) => key.to_text().lines().nth(1).map(str::to_owned),
                    None => {
                        return Err(vec![
                            Problem::new(
                                format!("`{file}` is not a minisign public key in the project"),
                                stage.span("minisign_key"),
                            )
                            .help("the `.pub` file `shipit keygen` or `minisign -G` wrote"),
                        ]);
                    }
                }
            }
            None => None,
        };
        let sigstore = match &options.sigstore {
            Some(signer) => {
                let identity =
                    template::render(&signer.identity, &facts.template_vars()).map_err(|e| {
                        vec![template_problem(
                            stage.loaded,
                            path!["stages", stage.name, "sigstore", "identity"],
                            &signer.identity,
                            e,
                        )]
                    })?;
                let issuer = signer
                    .issuer
                    .clone()
                    .unwrap_or_else(|| "https://token.actions.githubusercontent.com".into());
                Some((identity, issuer))
            }
            None => None,
        };
        let spec = InstallerSpec {
            project: facts.project.clone(),
            version: facts.version.clone(),
            base_url,
            base_url_env: options
                .base_url_env
                .clone()
                .unwrap_or_else(|| default_base_url_env(&facts.project)),
            archives,
            binaries,
            public_key,
            sigstore,
            output: context.dist_path("install.sh"),
            output_ps1: windows.then(|| context.dist_path("install.ps1")),
        };
        let scripts = if windows {
            &["install.sh", "install.ps1"][..]
        } else {
            &["install.sh"][..]
        };
        let artifacts = scripts
            .iter()
            .map(|name| PlannedArtifact::written((*name).into(), ArtifactKind::File, None))
            .collect();
        Ok(Expansion {
            units: vec![Unit::task(None, Task::Installer(Box::new(spec)), artifacts)],
            requires: Vec::new(),
        })
    }
}
