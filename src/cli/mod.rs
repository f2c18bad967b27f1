//! The command line, parsed purely into plain data. `commands` turns it into work.

pub mod manual;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::ui::ColorChoice;

/// shipit: one binary from source to production.
#[derive(Debug, Parser)]
#[command(
    name = "shipit",
    version,
    about,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Whether a parse error is shipit run with no arguments at all. Then it shows its help on
/// stdout and succeeds, as cargo does: nothing asked for failed (winget's validation runs a
/// tool that way and wants exit 0).
pub fn is_bare_run(error: &clap::Error) -> bool {
    error.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        && std::env::args_os().len() == 1
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The pipeline file.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        default_value = "shipit.toml",
        env = "SHIPIT_PIPELINE"
    )]
    pub pipeline: PathBuf,
    /// More output (-vv for even more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less output: only failures.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
    /// Machine-readable JSON lines on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// When to use colour.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Show what would be done; change nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,
}

impl GlobalArgs {
    /// `-v` count minus `-q` count.
    pub fn verbosity(&self) -> i8 {
        (self.verbose.min(3) as i8) - (self.quiet.min(3) as i8)
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline's stages: lint, test, build, package, checksum, sign.
    Build(BuildArgs),
    /// Publish dist/manifest.json through the configured channels.
    #[command(long_about = crate::publish::help())]
    Release(ReleaseArgs),
    /// Deploy a released version to an environment.
    Deploy(DeployArgs),
    /// Return an environment to its previous version.
    Rollback(RollbackArgs),
    /// Print the stages in order, their commands and the artifacts they produce.
    Plan(VersionArgs),
    /// Validate the pipeline file and report every problem.
    Check,
    /// List what each build target needs (Rust targets, zig, cargo-zigbuild) and what is present.
    Doctor,
    /// Generate CI configuration for the pipeline.
    #[command(subcommand)]
    Ci(CiCommand),
    /// Write a commented starter shipit.toml for the Cargo project here.
    Init(InitArgs),
    /// Generate a minisign-compatible signing key pair.
    Keygen(KeygenArgs),
    /// Verify the checksums and signatures of a release folder.
    Verify(VerifyArgs),
    /// Rebuild a published release from its tag in a fresh folder and compare every file.
    Reproduce(ReproduceArgs),
    /// Print the pipeline file's JSON Schema, for editors.
    Schema,
    /// Print shipit's man page, or write one page per command into a folder.
    Man(ManArgs),
    /// Print the completion script for a shell.
    Completions(CompletionsArgs),
    /// Print shipit's version.
    Version,
}

/// How the version is chosen.
#[derive(Debug, Clone, Copy, Args)]
pub struct VersionArgs {
    /// Build a snapshot: version `X.Y.Z-snapshot.<commit>`, no release tag needed.
    #[arg(long)]
    pub snapshot: bool,
    /// A nightly build (also implied by a scheduled GitHub Actions run).
    #[arg(long)]
    pub nightly: bool,
}

impl From<&VersionArgs> for crate::facts::FactsOptions {
    fn from(args: &VersionArgs) -> Self {
        crate::facts::FactsOptions {
            snapshot: args.snapshot,
            nightly: args.nightly,
        }
    }
}

/// `shipit build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Version selection.
    #[command(flatten)]
    pub version: VersionArgs,
    /// Commands to run at once, across stages and targets [default: number of CPUs].
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Keep going after a failure: independent stages, and the other targets of a build.
    #[arg(long)]
    pub keep_going: bool,
    /// Rebuild targets whose inputs are unchanged instead of reporting them `cached`.
    #[arg(long)]
    pub no_cache: bool,
    /// Never install missing tools (zig, cargo-zigbuild, Rust targets); fail and print the command instead.
    #[arg(long)]
    pub no_provision: bool,
    /// With `--split`: the targets this part builds (comma-separated aliases or triples).
    #[arg(long, value_name = "LIST", value_delimiter = ',', requires = "split")]
    pub targets: Vec<String>,
    /// One part of a build split across machines: with `--targets`, write a partial manifest and
    /// leave checksums and signatures to `shipit release --merge`.
    #[arg(long, requires = "targets")]
    pub split: bool,
    /// Build as someone without the project's keys does (what `shipit reproduce` runs): skip
    /// the stages that sign with a minisign key (signatures, provenance), write packages unsigned.
    #[arg(long)]
    pub without_keys: bool,
}

/// `shipit release`.
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// Version selection.
    #[command(flatten)]
    pub version: VersionArgs,
    /// Merge the dist folders of split builds (`shipit build --split`), checksum and sign
    /// them once, then publish.
    #[arg(long, value_name = "DIR", num_args = 1..)]
    pub merge: Vec<PathBuf>,
    /// Publish only these configured channels (comma-separated: `--only npm,github`); the
    /// others are not contacted and keep what an earlier run recorded.
    #[arg(
        long,
        value_name = "CHANNEL",
        value_delimiter = ',',
        conflicts_with = "skip"
    )]
    pub only: Vec<String>,
    /// Publish every configured channel but these (comma-separated).
    #[arg(long, value_name = "CHANNEL", value_delimiter = ',')]
    pub skip: Vec<String>,
    /// Publish nothing: re-read what every channel (or those --only/--skip pick) holds and
    /// compare each file with the manifest; exit 1 naming each that differs or is missing.
    #[arg(long, conflicts_with = "merge")]
    pub check: bool,
    /// Skip the check that follows publishing (as `check = false` under `[release]`).
    #[arg(long, conflicts_with = "check")]
    pub no_check: bool,
}

/// `shipit deploy`.
#[derive(Debug, Args)]
#[command(subcommand_negates_reqs = true, disable_version_flag = true)]
pub struct DeployArgs {
    /// What else to do than deploying.
    #[command(subcommand)]
    pub action: Option<DeployAction>,
    /// The environment, a `[deploy.<name>]` section.
    #[arg(long, value_name = "NAME", required_unless_present = "init")]
    pub env: Option<String>,
    /// The version to deploy (the image tag). Default: dist/manifest.json's, else the project's.
    #[arg(long = "version", id = "deploy_version", value_name = "V")]
    pub version: Option<String>,
    /// Print a starter HAProxy configuration for the environment's router and exit.
    #[arg(long)]
    pub init: bool,
}

/// `shipit deploy <action>`.
#[derive(Debug, Subcommand)]
pub enum DeployAction {
    /// Revisions, versions, weights and health of an environment, and its deploy history.
    Status {
        /// The environment.
        #[arg(long, value_name = "NAME")]
        env: String,
    },
    /// Holds the running deploy of an environment where it is (its analysis still running).
    Pause {
        /// The environment.
        #[arg(long, value_name = "NAME")]
        env: String,
    },
    /// Lets a paused deploy go on.
    Resume {
        /// The environment.
        #[arg(long, value_name = "NAME")]
        env: String,
    },
    /// Skips the pauses left in the running deploy: it goes to 100% now.
    Promote {
        /// The environment.
        #[arg(long, value_name = "NAME")]
        env: String,
    },
    /// Rolls the running deploy back (it exits 4).
    Abort {
        /// The environment.
        #[arg(long, value_name = "NAME")]
        env: String,
    },
    /// Every recorded deploy of an environment, with DORA figures over a window: deployment
    /// frequency, change failure rate and time to restore.
    History {
        /// The environment.
        #[arg(long, value_name = "NAME")]
        env: String,
        /// The window the figures cover, ending now (`7d`, `30d`, `12h`).
        #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = humantime::parse_duration)]
        window: std::time::Duration,
    },
}

/// `shipit rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The environment, a `[deploy.<name>]` section.
    #[arg(long, value_name = "NAME")]
    pub env: String,
    /// The revision to return to. Default: the one before the revision serving now (after an
    /// interrupted deploy: the last one promoted).
    #[arg(long, value_name = "REVISION")]
    pub to: Option<u64>,
}

/// `shipit init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The Cargo manifest of the project.
    #[arg(long, value_name = "FILE", default_value = "Cargo.toml")]
    pub manifest: PathBuf,
    /// Print the `[package.metadata.binstall]` block for Cargo.toml (cargo-binstall then finds
    /// shipit's archives) instead of writing a pipeline.
    #[arg(long)]
    pub binstall: bool,
    /// With `--binstall`: the minisign public key file whose signatures cargo-binstall checks.
    #[arg(long, value_name = "FILE", requires = "binstall")]
    pub key: Option<PathBuf>,
}

/// `shipit ci ...`.
#[derive(Debug, Subcommand)]
pub enum CiCommand {
    /// Write a GitHub Actions workflow: builds on pull requests, releases on `v*` tags, a nightly
    /// schedule, one build job per target, then one job that merges, signs and publishes.
    Github(CiGithubArgs),
}

/// `shipit ci github`.
#[derive(Debug, Args)]
pub struct CiGithubArgs {
    /// Where the workflow goes.
    #[arg(
        long,
        value_name = "FILE",
        default_value = ".github/workflows/release.yml"
    )]
    pub output: PathBuf,
    /// Write nothing; fail if the file is not what this command would write.
    #[arg(long)]
    pub check: bool,
    /// With --check: a file edited by hand passes. Without: overwrite such a file.
    #[arg(long)]
    pub allow_edits: bool,
    /// The shipit action to use.
    #[arg(long, value_name = "REF", default_value = "shipit-rs/shipit@v1")]
    pub action: String,
    /// When the nightly build runs (cron, UTC).
    #[arg(long, value_name = "CRON", default_value = "0 3 * * *")]
    pub cron: String,
    /// Leave out the GitHub artifact attestation of the released files (it needs a public
    /// repository, or GitHub Enterprise Cloud for a private one).
    #[arg(long)]
    pub no_attestations: bool,
}

/// `shipit man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `shipit.1` and `shipit-<command>.1` for every command here instead of printing
    /// `shipit(1)`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `shipit completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `shipit keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Make an OpenPGP key (Ed25519, armored) for signing rpm packages and APT/YUM
    /// repositories, instead of a minisign key.
    #[arg(long)]
    pub pgp: bool,
    /// Make a cosign key pair (ECDSA P-256, cosign's encrypted key file) for signing images.
    #[arg(long, conflicts_with_all = ["pgp", "unencrypted"])]
    pub cosign: bool,
    /// The OpenPGP key's user id.
    #[arg(
        long,
        value_name = "NAME <EMAIL>",
        default_value = "shipit release key <release@localhost>",
        requires = "pgp"
    )]
    pub user_id: String,
    /// Secret key file to write (mode 0600). Default: shipit.key (shipit-pgp.key with --pgp,
    /// cosign.key with --cosign).
    #[arg(long, value_name = "FILE")]
    pub secret_key: Option<PathBuf>,
    /// Public key file to write. Default: shipit.pub (shipit-pgp.asc with --pgp, cosign.pub
    /// with --cosign).
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,
    /// Store the secret key without a password (for secret stores that protect it already).
    #[arg(long)]
    pub unencrypted: bool,
    /// Variable holding the password; asked for on a terminal when it is unset.
    #[arg(long, value_name = "NAME", default_value = "SHIPIT_SIGNING_PASSWORD")]
    pub password_env: String,
    /// Replace existing key files.
    #[arg(long)]
    pub force: bool,
}

/// `shipit reproduce`.
#[derive(Debug, Args)]
pub struct ReproduceArgs {
    /// The release's tag [default: the manifest's, with --manifest].
    pub tag: Option<String>,
    /// The GitHub repository [default: `[release.github] repo` of the pipeline here].
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,
    /// Compare with this manifest.json (a file, its folder, or an https address with the
    /// release's files beside it) instead of the GitHub release.
    #[arg(long, value_name = "FILE|URL")]
    pub manifest: Option<String>,
    /// The git repository to clone [default: the GitHub repository].
    #[arg(long, value_name = "GIT-URL|PATH")]
    pub source: Option<String>,
    /// Work in this new or empty folder and keep it (clone, rebuild, log, fetched files)
    /// [default: a temporary folder, removed unless the rebuild fails].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// The minisign public key the release's signatures are checked with [default: the
    /// release's one .pub].
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,
    /// Rebuild with this machine's Rust toolchain even when the release records another
    /// (without it, the recorded stable release is installed with rustup).
    #[arg(long)]
    pub any_toolchain: bool,
    /// Check the release's Sigstore bundles against this `trusted_root.json` [default: the
    /// public-good instance's root, shipped with shipit].
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// Write a signed in-toto statement of the result here (the reproduced files as subjects,
    /// the comparison as predicate), for publishing.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub attest: Option<PathBuf>,
    /// The minisign secret key that signs the statement (its password in
    /// SHIPIT_SIGNING_PASSWORD when encrypted).
    #[arg(long, value_name = "FILE", requires = "attest")]
    pub key: Option<PathBuf>,
}

/// `shipit verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A release folder or a single file.
    #[arg(required_unless_present = "image")]
    pub path: Option<PathBuf>,
    /// Check an image's cosign signatures in its registry instead (`registry/repo:tag` or
    /// `@sha256:...`; with an index, every platform manifest too); needs `--key cosign.pub`, or
    /// for keyless signatures the identity options.
    #[arg(long, value_name = "REF", conflicts_with = "path")]
    pub image: Option<String>,
    /// The registry of `--image` speaks plain HTTP (a local registry only).
    #[arg(long, requires = "image")]
    pub insecure: bool,
    /// Public key: minisign's for a folder or file, cosign's PEM for `--image`.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// OpenPGP public key (armored or binary) for the rpm packages and APT/YUM repositories in
    /// the folder; without it, a repository's own `key.asc` is used (integrity only).
    #[arg(long, value_name = "FILE")]
    pub pgp_key: Option<PathBuf>,
    /// Fail on files of the folder that no checksum file, signature or index lists (without
    /// it, each is a warning).
    #[arg(long, conflicts_with = "image")]
    pub strict: bool,
    /// Sigstore bundles (`*.sigstore.json`) must be signed by this identity (an email, or a
    /// workflow's URI).
    #[arg(long, value_name = "IDENTITY", conflicts_with = "github_repo")]
    pub certificate_identity: Option<String>,
    /// Sigstore bundles must be signed by a GitHub Actions workflow of this repository
    /// (the issuer defaults to GitHub Actions').
    #[arg(long, value_name = "OWNER/NAME")]
    pub github_repo: Option<String>,
    /// The OIDC issuer that vouched for the identity (`https://token.actions.githubusercontent.com`,
    /// `https://accounts.google.com`, ...).
    #[arg(long, value_name = "URL")]
    pub certificate_oidc_issuer: Option<String>,
    /// Check Sigstore bundles against this `trusted_root.json` [default: the public-good
    /// instance's root, shipped with shipit].
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// Check the file's attestations in this file (a bundle, `gh attestation download`'s JSON
    /// lines, or the API's answer).
    #[arg(long, value_name = "FILE", conflicts_with = "github_attestation")]
    pub attestation: Option<PathBuf>,
    /// Check the file's attestations as GitHub's API holds them for --github-repo.
    #[arg(long, requires = "github_repo")]
    pub github_attestation: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn globals_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "shipit",
            "build",
            "--pipeline",
            "p.toml",
            "-j",
            "3",
            "--json",
            "-vv",
        ])
        .unwrap();
        assert_eq!(cli.global.pipeline, PathBuf::from("p.toml"));
        assert_eq!(cli.global.verbosity(), 2);
        assert!(matches!(
            cli.command,
            Command::Build(BuildArgs { jobs: Some(3), .. })
        ));
        assert!(Cli::try_parse_from(["shipit", "build", "-j", "0"]).is_err());
    }
}
