//! The rebuild: the tag cloned into a fresh folder and built by this shipit, as someone
//! without the project's keys builds it, with the toolchain and time the release records.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::ReproduceError;

/// How long one git call may take.
const GIT_DEADLINE: Duration = Duration::from_secs(600);

/// What the release says it was built with, from its provenance and manifest.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Recorded {
    /// The commit built.
    pub commit: Option<String>,
    /// SOURCE_DATE_EPOCH of the build.
    pub source_date_epoch: Option<u64>,
    /// `rustc -vV` of the build.
    pub rustc: Option<String>,
    /// The shipit that built it.
    pub shipit: Option<String>,
    /// The pipeline file, relative to the workspace root.
    pub pipeline: Option<String>,
    /// Its SHA-256.
    pub pipeline_sha256: Option<String>,
}

impl Recorded {
    /// Reads a provenance statement's build parameters (`externalParameters`,
    /// `internalParameters`, the source commit); fields it lacks stay unset.
    pub fn from_provenance(statement: &serde_json::Value) -> Recorded {
        let definition = &statement["predicate"]["buildDefinition"];
        let external = &definition["externalParameters"];
        let str_of = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        let commit = definition["resolvedDependencies"]
            .as_array()
            .and_then(|deps| deps.iter().find(|d| d["name"] == "source"))
            .and_then(|d| str_of(&d["digest"]["gitCommit"]));
        Recorded {
            commit,
            source_date_epoch: external["source_date_epoch"]
                .as_u64()
                .filter(|e| *e <= crate::facts::MAX_SOURCE_DATE_EPOCH),
            rustc: str_of(&definition["internalParameters"]["rustc"]),
            shipit: str_of(&definition["internalParameters"]["shipit"]),
            pipeline: str_of(&external["pipeline"]["path"]),
            pipeline_sha256: str_of(&external["pipeline"]["digest"]["sha256"]),
        }
    }
}

/// The `release:` line of `rustc -vV`.
pub fn rust_release(version: &str) -> Option<&str> {
    version
        .lines()
        .find_map(|l| l.strip_prefix("release: "))
        .map(str::trim)
}

/// The toolchain to rebuild with: the active one when it is the recorded one, else the
/// recorded stable release installed through rustup (`RUSTUP_TOOLCHAIN` for the build).
/// `Ok(None)` means the active toolchain; `any` goes on with it whatever it is.
pub fn toolchain(recorded: Option<&str>, any: bool) -> Result<Option<String>, ReproduceError> {
    let local = crate::facts::rustc_version();
    let Some(recorded) = recorded.filter(|r| *r != local) else {
        return Ok(None);
    };
    if any {
        return Ok(None);
    }
    let wanted = rust_release(recorded).unwrap_or("?");
    let plain = !wanted.is_empty() && wanted.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let mismatch = || {
        ReproduceError::Usage(format!(
            "the release was built with rustc {wanted}, this machine's is {}; install it \
             (`rustup toolchain install {wanted}`) or pass --any-toolchain to rebuild anyway",
            rust_release(&local).unwrap_or("missing")
        ))
    };
    if !plain {
        return Err(mismatch());
    }
    let installed = Command::new("rustup")
        .args([
            "toolchain",
            "install",
            "--profile",
            "minimal",
            "--no-self-update",
            wanted,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let same = installed
        && Command::new("rustc")
            .arg("-vV")
            .env("RUSTUP_TOOLCHAIN", wanted)
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == recorded);
    if same {
        Ok(Some(wanted.to_owned()))
    } else {
        Err(mismatch())
    }
}

/// Runs git in `dir` with `args`; its stdout, or its stderr as the error.
fn git(dir: &Path, args: &[&str]) -> Result<String, ReproduceError> {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .args([
            "-c",
            "advice.detachedHead=false",
            "-c",
            "http.lowSpeedLimit=1024",
        ])
        .args(["-c", "http.lowSpeedTime=60"])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null());
    let out = crate::child::output_within(&mut command, GIT_DEADLINE)
        .map_err(|e| ReproduceError::Setup(format!("git {}: {e}", args[0])))?;
    if !out.status.success() {
        return Err(ReproduceError::Refused(format!(
            "git {}: {}",
            args[0],
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Clones `source` into `dir/source` and checks out `tag`; the commit it names, which must be
/// `expected` when the release records one.
pub fn clone(
    source: &str,
    tag: &str,
    expected: Option<&str>,
    dir: &Path,
) -> Result<(PathBuf, String), ReproduceError> {
    // The tag is data: a name git takes as a tag, never as an option.
    let reference = format!("refs/tags/{tag}");
    if tag.starts_with('-') || git(dir, &["check-ref-format", &reference]).is_err() {
        return Err(ReproduceError::Usage(format!(
            "`{}` is not a tag name git accepts",
            tag.escape_debug()
        )));
    }
    let folder = dir.join("source");
    let target = folder.to_string_lossy().into_owned();
    git(
        dir,
        &["clone", "--quiet", "--no-checkout", "--", source, &target],
    )?;
    let commit = git(
        &folder,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{reference}^{{commit}}"),
        ],
    )
    .map_err(|_| ReproduceError::Usage(format!("{source} has no tag {tag}")))?;
    if let Some(expected) = expected.filter(|e| !e.eq_ignore_ascii_case(&commit)) {
        return Err(ReproduceError::Refused(format!(
            "tag {tag} in {source} names commit {commit}, the release was built from {expected}"
        )));
    }
    git(&folder, &["checkout", "--quiet", "--detach", &commit])?;
    Ok((folder, commit))
}

/// Where the rebuild left its files.
pub struct Rebuilt {
    /// Its dist folder.
    pub dist: PathBuf,
    /// Its manifest.
    pub manifest: crate::manifest::Manifest,
}

/// Builds the clone with this shipit: `build --no-cache --without-keys`, a target folder of
/// its own, the recorded SOURCE_DATE_EPOCH and toolchain. Its output goes to `log`.
pub fn build(
    source: &Path,
    pipeline: &Path,
    epoch: Option<u64>,
    toolchain: Option<&str>,
    work: &Path,
    log: &Path,
) -> Result<Rebuilt, ReproduceError> {
    let exe = std::env::current_exe()
        .map_err(|e| ReproduceError::Setup(format!("cannot find this shipit: {e}")))?;
    let outputs = work.join("build-outputs");
    let log_file = std::fs::File::create(log)
        .map_err(|e| ReproduceError::Setup(format!("{}: {e}", log.display())))?;
    let err_file = log_file
        .try_clone()
        .map_err(|e| ReproduceError::Setup(format!("{}: {e}", log.display())))?;
    let mut command = Command::new(exe);
    command
        .current_dir(source)
        .arg("--pipeline")
        .arg(source.join(pipeline))
        .args(["build", "--no-cache", "--without-keys"])
        .env("CARGO_TARGET_DIR", work.join("target"))
        .env("GITHUB_OUTPUT", &outputs)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("SHIPIT_PIPELINE")
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(err_file);
    if let Some(epoch) = epoch {
        command.env("SOURCE_DATE_EPOCH", epoch.to_string());
    }
    if let Some(toolchain) = toolchain {
        command.env("RUSTUP_TOOLCHAIN", toolchain);
    }
    let status = command
        .status()
        .map_err(|e| ReproduceError::Setup(format!("cannot run the rebuild: {e}")))?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(ReproduceError::Rebuild(format!(
            "the rebuild failed ({status}); its log is {}:\n{}",
            log.display(),
            tail.join("\n")
        )));
    }
    let written = std::fs::read_to_string(&outputs).unwrap_or_default();
    let manifest_path = written
        .lines()
        .find_map(|l| l.strip_prefix("manifest="))
        .map(PathBuf::from)
        .ok_or_else(|| ReproduceError::Rebuild("the rebuild wrote no manifest".into()))?;
    let dist = manifest_path
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| ReproduceError::Rebuild("the rebuild wrote no manifest".into()))?;
    let manifest = crate::manifest::Manifest::read(&dist)
        .map_err(|e| ReproduceError::Rebuild(e.to_string()))?;
    Ok(Rebuilt { dist, manifest })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_parameters_are_read_from_a_provenance_statement() {
        let statement = serde_json::json!({
            "predicate": { "buildDefinition": {
                "externalParameters": {
                    "source_date_epoch": 1_700_000_000u64,
                    "pipeline": { "path": "shipit.toml", "digest": { "sha256": "ab" } },
                },
                "internalParameters": { "rustc": "rustc 1.95.0\nrelease: 1.95.0" },
                "resolvedDependencies": [ { "name": "source", "digest": { "gitCommit": "c0ffee" } } ],
            }}
        });
        let recorded = Recorded::from_provenance(&statement);
        assert_eq!(recorded.commit.as_deref(), Some("c0ffee"));
        assert_eq!(recorded.source_date_epoch, Some(1_700_000_000));
        assert_eq!(recorded.pipeline.as_deref(), Some("shipit.toml"));
        assert_eq!(
            rust_release(recorded.rustc.as_deref().unwrap()),
            Some("1.95.0")
        );
    }

    #[test]
    fn an_epoch_past_year_9999_is_not_taken() {
        let statement = serde_json::json!({ "predicate": { "buildDefinition": {
            "externalParameters": { "source_date_epoch": u64::MAX } } } });
        assert_eq!(
            Recorded::from_provenance(&statement).source_date_epoch,
            None
        );
    }
}
