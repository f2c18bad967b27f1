//! The tools cross-compiling needs, found on this machine or provisioned into shipit's cache.
//!
//! Stages declare [`Requirement`]s in the plan. Before the run, [`prepare`] checks each one:
//! Rust standard libraries come from `rustup target add`; `cargo-zigbuild` and `zig` come from
//! the user's `PATH`, or else from a private Python virtual environment in
//! `~/.cache/shipit/tools/zigbuild` that shipit creates with `pip install ziglang cargo-zigbuild`.
//! `--no-provision` turns every install into an error that prints the command to run.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

/// A tool a stage needs before it can run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "tool", rename_all = "snake_case")]
pub enum Requirement {
    /// The Rust standard library for a target triple.
    RustStd {
        /// The triple.
        triple: String,
    },
    /// `cargo-zigbuild` and `zig`, the cross linker.
    Zigbuild,
}

/// Whether missing tools may be installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provision {
    /// Install what is missing, saying so.
    Allowed,
    /// Fail, printing the command that would install it.
    Forbidden,
    /// Dry run: say what would be installed; install nothing.
    DryRun,
}

/// Why the toolchain is not ready.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    message: String,
    #[source]
    source: Option<CommandFailed>,
}

impl ToolError {
    fn new(message: impl Into<String>) -> ToolError {
        ToolError {
            message: message.into(),
            source: None,
        }
    }

    fn caused(message: impl Into<String>) -> impl FnOnce(CommandFailed) -> ToolError {
        let message = message.into();
        move |source| ToolError {
            message,
            source: Some(source),
        }
    }
}

/// A provisioning command that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommandFailed {
    /// It could not be started.
    #[error("it could not be started")]
    Spawn(#[source] std::io::Error),
    /// It ended with an error; its last lines of output.
    #[error("{status}\n{tail}")]
    Exited {
        /// How it ended.
        status: std::process::ExitStatus,
        /// The last lines it wrote to stderr.
        tail: String,
    },
}

/// shipit's cache folder: `$SHIPIT_CACHE_DIR`, else `$XDG_CACHE_HOME/shipit`, else `~/.cache/shipit`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(crate::env_vars::SHIPIT_CACHE_DIR).filter(|d| !d.is_empty())
    {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("shipit");
    }
    std::env::home_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache")
        .join("shipit")
}

/// The private virtual environment holding provisioned `zig` and `cargo-zigbuild`.
pub fn zigbuild_venv() -> PathBuf {
    cache_dir().join("tools").join("zigbuild")
}

/// Where `cargo install cargo-zigbuild` puts it when there is no Python to provision with.
fn cargo_root() -> PathBuf {
    cache_dir().join("tools").join("cargo")
}

/// Written last by a successful provisioning, so a half-made venv is never used.
const COMPLETE_MARKER: &str = ".shipit-complete";

/// Where `zig` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZigSource {
    /// An executable (from `$ZIG` or `PATH`).
    Binary(PathBuf),
    /// The `ziglang` Python package, run as `<python> -m ziglang`.
    Python(PathBuf),
}

/// A working `cargo zigbuild`.
#[derive(Debug, Clone)]
pub struct Zigbuild {
    /// The `cargo-zigbuild` executable.
    pub cargo_zigbuild: PathBuf,
    /// Its version line.
    pub version: String,
    /// Where zig comes from.
    pub zig: ZigSource,
    /// zig's version.
    pub zig_version: String,
    /// A folder to put first on `PATH` so cargo finds both (the private venv), if needed.
    pub path_prefix: Option<PathBuf>,
}

impl Zigbuild {
    /// Looks on `PATH`, then in the private venv, then in shipit's `cargo install` root.
    pub fn find() -> Option<Zigbuild> {
        let venv = zigbuild_venv();
        Zigbuild::find_in(None)
            .or_else(|| {
                venv.join(COMPLETE_MARKER)
                    .exists()
                    .then(|| Zigbuild::find_in(Some(&venv.join("bin"))))
                    .flatten()
            })
            .or_else(|| Zigbuild::find_in(Some(&cargo_root().join("bin"))))
    }

    /// Looks for both tools with `prefix` (if any) first on `PATH`.
    fn find_in(prefix: Option<&Path>) -> Option<Zigbuild> {
        let path = search_path(prefix);
        let cargo_zigbuild = which::which_in("cargo-zigbuild", path.as_ref(), ".").ok()?;
        let version = first_line_of(Command::new(&cargo_zigbuild).arg("--version"))?;
        // cargo-zigbuild's own order: $ZIG, `zig` on PATH, then `python3 -m ziglang`.
        let (zig, zig_version) = std::env::var_os("ZIG")
            .map(PathBuf::from)
            .or_else(|| which::which_in("zig", path.as_ref(), ".").ok())
            .and_then(|zig| {
                let v = first_line_of(Command::new(&zig).arg("version"))?;
                Some((ZigSource::Binary(zig), v))
            })
            .or_else(|| {
                let python = which::which_in("python3", path.as_ref(), ".").ok()?;
                let v = first_line_of(Command::new(&python).args(["-m", "ziglang", "version"]))?;
                Some((ZigSource::Python(python), v))
            })?;
        Some(Zigbuild {
            cargo_zigbuild,
            version,
            zig,
            zig_version,
            path_prefix: prefix.map(Path::to_path_buf),
        })
    }

    /// The versions that decide what zig links, for cache keys.
    pub fn fingerprint(&self) -> String {
        format!("{}; zig {}", self.version, self.zig_version)
    }
}

/// `PATH` with `prefix` first (unchanged without one); `None` when it cannot be joined.
pub fn search_path(prefix: Option<&Path>) -> Option<std::ffi::OsString> {
    let current = std::env::var_os("PATH").unwrap_or_default();
    match prefix {
        Some(prefix) => {
            let dirs = std::iter::once(prefix.to_path_buf()).chain(std::env::split_paths(&current));
            std::env::join_paths(dirs).ok()
        }
        None => Some(current),
    }
}

fn first_line_of(command: &mut Command) -> Option<String> {
    let out = command.stdin(std::process::Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

/// The active toolchain's sysroot, where each target's standard library lives.
fn sysroot() -> Option<PathBuf> {
    first_line_of(Command::new(rustc()).args(["--print", "sysroot"])).map(PathBuf::from)
}

fn rustc() -> String {
    std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())
}

/// Whether the standard library for `triple` is installed.
pub fn has_rust_std(sysroot: &Path, triple: &str) -> bool {
    sysroot
        .join("lib")
        .join("rustlib")
        .join(triple)
        .join("lib")
        .is_dir()
}

/// The command that installs Rust standard libraries.
fn rustup_command(triples: &[String]) -> String {
    format!("rustup target add {}", triples.join(" "))
}

/// The command that provisions zig and cargo-zigbuild the way shipit does.
pub fn zigbuild_command() -> String {
    let venv = zigbuild_venv();
    format!(
        "python3 -m venv {0} && {0}/bin/pip install ziglang cargo-zigbuild && touch {0}/{COMPLETE_MARKER}",
        venv.display()
    )
}

/// What [`prepare`] says while it works.
pub trait Announce {
    /// A line for the user.
    fn say(&self, text: &str);
}

impl<F: Fn(&str)> Announce for F {
    fn say(&self, text: &str) {
        self(text)
    }
}

/// Makes every requirement in `needed` hold (installing what is missing, as `mode` allows);
/// returns the cargo-zigbuild found when one was needed, for the plan to bind its stages to.
pub fn provide(
    needed: &BTreeSet<Requirement>,
    mode: Provision,
    announce: &dyn Announce,
) -> Result<Option<Zigbuild>, ToolError> {
    if needed.is_empty() {
        return Ok(None);
    }
    let triples: Vec<String> = needed
        .iter()
        .filter_map(|r| match r {
            Requirement::RustStd { triple } => Some(triple.clone()),
            Requirement::Zigbuild => None,
        })
        .collect();
    // With --no-provision every missing tool is reported at once, not one per attempt.
    let mut errors = Vec::new();
    if let Err(e) = ensure_rust_std(&triples, mode, announce) {
        if mode != Provision::Forbidden {
            return Err(e);
        }
        errors.push(e.message);
    }
    let zigbuild = if needed.contains(&Requirement::Zigbuild) {
        match Zigbuild::find() {
            Some(found) => Some(found),
            None => match mode {
                Provision::Forbidden => {
                    errors.push(format!(
                        "cargo-zigbuild and zig are needed to cross-compile, and --no-provision forbids installing them\n  install them with: {}\n  (or put `cargo-zigbuild` and `zig` on PATH: pip install ziglang cargo-zigbuild)",
                        zigbuild_command()
                    ));
                    None
                }
                Provision::DryRun => {
                    announce.say(&format!(
                        "would provision cargo-zigbuild and zig into {} (pip install ziglang cargo-zigbuild)",
                        zigbuild_venv().display()
                    ));
                    None
                }
                Provision::Allowed => Some(provision_zigbuild(announce)?),
            },
        }
    } else {
        None
    };
    if !errors.is_empty() {
        return Err(ToolError::new(errors.join("\n")));
    }
    Ok(zigbuild)
}

fn ensure_rust_std(
    triples: &[String],
    mode: Provision,
    announce: &dyn Announce,
) -> Result<(), ToolError> {
    if triples.is_empty() {
        return Ok(());
    }
    let Some(sysroot) = sysroot() else {
        return Err(ToolError::new(
            "cannot run `rustc --print sysroot`; is Rust installed? (https://rustup.rs)",
        ));
    };
    let missing: Vec<String> = triples
        .iter()
        .filter(|t| !has_rust_std(&sysroot, t))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let command = rustup_command(&missing);
    match mode {
        Provision::Forbidden => Err(ToolError::new(format!(
            "the Rust standard library is missing for {}, and --no-provision forbids installing it\n  install it with: {command}",
            missing.join(", ")
        ))),
        Provision::DryRun => {
            announce.say(&format!(
                "would install the Rust standard library: {command}"
            ));
            Ok(())
        }
        Provision::Allowed => {
            if which::which("rustup").is_err() {
                return Err(ToolError::new(format!(
                    "the Rust standard library is missing for {} and rustup is not installed to add it; install the targets for the toolchain at {}",
                    missing.join(", "),
                    sysroot.display()
                )));
            }
            let _lock = tools_lock()?;
            let missing: Vec<String> = missing
                .into_iter()
                .filter(|t| !has_rust_std(&sysroot, t))
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            let command = rustup_command(&missing);
            announce.say(&format!("installing the Rust standard library: {command}"));
            run_quietly(
                Command::new("rustup")
                    .args(["target", "add"])
                    .args(&missing),
            )
            .map_err(ToolError::caused(format!("`{command}` failed")))
        }
    }
}

/// Creates the private venv with zig and cargo-zigbuild, under a lock so that concurrent
/// shipit runs provision once.
fn provision_zigbuild(announce: &dyn Announce) -> Result<Zigbuild, ToolError> {
    let _lock = tools_lock()?;
    let venv = zigbuild_venv();
    // Another run may have finished provisioning while this one waited for the lock.
    if let Some(found) = Zigbuild::find() {
        return Ok(found);
    }
    let Ok(python) = which::which("python3") else {
        return install_with_cargo(announce);
    };
    announce.say(&format!(
        "provisioning cargo-zigbuild and zig into {} (pip install ziglang cargo-zigbuild)",
        venv.display()
    ));
    if venv.exists() {
        std::fs::remove_dir_all(&venv)
            .map_err(|e| ToolError::new(format!("cannot clear {}: {e}", venv.display())))?;
    }
    run_quietly(Command::new(&python).arg("-m").arg("venv").arg(&venv)).map_err(
        ToolError::caused(format!("cannot create a Python venv at {}", venv.display())),
    )?;
    run_quietly(Command::new(venv.join("bin").join("pip")).args([
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "ziglang",
        "cargo-zigbuild",
    ]))
    .map_err(ToolError::caused(
        "`pip install ziglang cargo-zigbuild` failed",
    ))?;
    let found = Zigbuild::find_in(Some(&venv.join("bin"))).ok_or_else(|| {
        ToolError::new(format!(
            "provisioned {} but cargo-zigbuild or zig does not run from it",
            venv.display()
        ))
    })?;
    std::fs::write(venv.join(COMPLETE_MARKER), b"")
        .map_err(|e| ToolError::new(format!("cannot write to {}: {e}", venv.display())))?;
    announce.say(&format!(
        "provisioned {} and zig {}",
        found.version, found.zig_version
    ));
    Ok(found)
}

/// Without Python there is no `ziglang` package: with a `zig` already on PATH, build
/// cargo-zigbuild from source into shipit's cache.
fn install_with_cargo(announce: &dyn Announce) -> Result<Zigbuild, ToolError> {
    let zig = std::env::var_os("ZIG").is_some() || which::which("zig").is_ok();
    if !zig {
        return Err(ToolError::new(
            "cargo-zigbuild and zig are missing, and python3 is not installed to provision them; install zig (https://ziglang.org/download) and shipit installs cargo-zigbuild with cargo",
        ));
    }
    let root = cargo_root();
    announce.say(&format!(
        "provisioning cargo-zigbuild into {} (cargo install --locked cargo-zigbuild)",
        root.display()
    ));
    run_quietly(
        Command::new("cargo")
            .args(["install", "--locked", "cargo-zigbuild", "--root"])
            .arg(&root),
    )
    .map_err(ToolError::caused("`cargo install cargo-zigbuild` failed"))?;
    Zigbuild::find_in(Some(&root.join("bin"))).ok_or_else(|| {
        ToolError::new(format!(
            "installed cargo-zigbuild into {} but it does not run",
            root.display()
        ))
    })
}

/// Holds the lock on shipit's tools folder, so concurrent runs install each tool once.
fn tools_lock() -> Result<File, ToolError> {
    let tools = cache_dir().join("tools");
    std::fs::create_dir_all(&tools)
        .map_err(|e| ToolError::new(format!("cannot create {}: {e}", tools.display())))?;
    let path = tools.join(".lock");
    let lock = File::create(&path)
        .map_err(|e| ToolError::new(format!("cannot create {}: {e}", path.display())))?;
    lock.lock()
        .map_err(|e| ToolError::new(format!("cannot lock {}: {e}", path.display())))?;
    Ok(lock)
}

/// Runs a command, keeping its output for the error message.
fn run_quietly(command: &mut Command) -> Result<(), CommandFailed> {
    let out = command
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(CommandFailed::Spawn)?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(CommandFailed::Exited {
        status: out.status,
        tail: tail.join("\n"),
    })
}

/// One line of `shipit doctor`.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub what: String,
    /// Present and working.
    pub ok: bool,
    /// Where it was found, or why it is missing.
    pub detail: String,
    /// How to fix it, when missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Checks every requirement without changing anything.
pub fn inspect(requirements: &BTreeSet<Requirement>) -> Vec<Check> {
    let sysroot = sysroot();
    let mut checks = Vec::new();
    for requirement in requirements {
        match requirement {
            Requirement::RustStd { triple } => {
                let ok = sysroot.as_deref().is_some_and(|s| has_rust_std(s, triple));
                checks.push(Check {
                    what: format!("Rust standard library for {triple}"),
                    ok,
                    detail: if ok {
                        "installed".into()
                    } else {
                        "missing".into()
                    },
                    fix: (!ok).then(|| rustup_command(std::slice::from_ref(triple))),
                });
            }
            Requirement::Zigbuild => match Zigbuild::find() {
                Some(z) => {
                    let zig = match &z.zig {
                        ZigSource::Binary(path) => path.display().to_string(),
                        ZigSource::Python(python) => format!("{} -m ziglang", python.display()),
                    };
                    checks.push(Check {
                        what: "cargo-zigbuild".into(),
                        ok: true,
                        detail: format!("{} ({})", z.cargo_zigbuild.display(), z.version),
                        fix: None,
                    });
                    checks.push(Check {
                        what: "zig".into(),
                        ok: true,
                        detail: format!("{zig} ({})", z.zig_version),
                        fix: None,
                    });
                }
                None => checks.push(Check {
                    what: "cargo-zigbuild and zig".into(),
                    ok: false,
                    detail: "not found on PATH or in shipit's cache (shipit build provisions them)"
                        .into(),
                    fix: Some(zigbuild_command()),
                }),
            },
        }
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_libraries_are_found_in_the_sysroot() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("lib/rustlib/x86_64-apple-darwin/lib")).unwrap();
        assert!(has_rust_std(dir.path(), "x86_64-apple-darwin"));
        assert!(!has_rust_std(dir.path(), "aarch64-apple-darwin"));
    }

    #[test]
    fn commands_name_every_missing_target() {
        assert_eq!(
            rustup_command(&["a-b-c".into(), "d-e-f".into()]),
            "rustup target add a-b-c d-e-f"
        );
        assert!(zigbuild_command().contains("pip install ziglang cargo-zigbuild"));
    }
}
