//! Every environment variable shipit reads, named once with what it means (tests and docs
//! refer to these, and a new variable is added here first).

/// GitHub token for releases and pull requests (`contents: write`); also the `ghcr.io` password.
pub const GITHUB_TOKEN: &str = "GITHUB_TOKEN";
/// GitHub token, when `GITHUB_TOKEN` is not set (the `gh` CLI's name).
pub const GH_TOKEN: &str = "GH_TOKEN";
/// Token for pushing to the Homebrew tap; else the GitHub token.
pub const HOMEBREW_TAP_TOKEN: &str = "HOMEBREW_TAP_TOKEN";
/// The GitHub API root (`https://HOST/api/v3` on GitHub Enterprise Server).
pub const GITHUB_API_URL: &str = "GITHUB_API_URL";
/// The GitHub web root, for release and download URLs.
pub const GITHUB_SERVER_URL: &str = "GITHUB_SERVER_URL";
/// `true` under GitHub Actions: groups, annotations and a step summary.
pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
/// File the step's outputs are appended to.
pub const GITHUB_OUTPUT: &str = "GITHUB_OUTPUT";
/// File the step's Markdown summary is appended to.
pub const GITHUB_STEP_SUMMARY: &str = "GITHUB_STEP_SUMMARY";
/// Who runs the workflow: the `ghcr.io` user and the author of deploy records.
pub const GITHUB_ACTOR: &str = "GITHUB_ACTOR";
/// The workflow's trigger (`schedule` builds a nightly).
pub const GITHUB_EVENT_NAME: &str = "GITHUB_EVENT_NAME";
/// `branch` or `tag`: what `GITHUB_REF_NAME` names.
pub const GITHUB_REF_TYPE: &str = "GITHUB_REF_TYPE";
/// The branch or tag the workflow runs on.
pub const GITHUB_REF_NAME: &str = "GITHUB_REF_NAME";
/// A pull request's source branch.
pub const GITHUB_HEAD_REF: &str = "GITHUB_HEAD_REF";
/// Registry user for every image push, when the pipeline names no `auth`.
pub const SHIPIT_REGISTRY_USERNAME: &str = "SHIPIT_REGISTRY_USERNAME";
/// Registry password for every image push, with `SHIPIT_REGISTRY_USERNAME`.
pub const SHIPIT_REGISTRY_PASSWORD: &str = "SHIPIT_REGISTRY_PASSWORD";
/// The pipeline file, when `--pipeline` is not given.
pub const SHIPIT_PIPELINE: &str = "SHIPIT_PIPELINE";
/// Log filter for shipit's own tracing (`debug`, `shipit=trace`, ...).
pub const SHIPIT_LOG: &str = "SHIPIT_LOG";
/// Where shipit keeps provisioned tools; else `$XDG_CACHE_HOME/shipit` or `~/.cache/shipit`.
pub const SHIPIT_CACHE_DIR: &str = "SHIPIT_CACHE_DIR";
/// The longest one git call (clone, pull, push) of a publishing channel may take, as
/// `90s` or `10m`; default 10 minutes. git is killed past it.
pub const SHIPIT_GIT_TIMEOUT: &str = "SHIPIT_GIT_TIMEOUT";
/// Debug builds only: panic with this message (tests prove panics are masked and exit 3).
pub const SHIPIT_DEBUG_PANIC: &str = "SHIPIT_DEBUG_PANIC";
/// The build time every archive, image and signature carries (Unix seconds).
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";
/// The Docker CLI's config folder (credentials, helpers).
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
/// The Docker engine to use.
pub const DOCKER_HOST: &str = "DOCKER_HOST";
/// Any value: no colours.
pub const NO_COLOR: &str = "NO_COLOR";
