//! Work that shipit does itself rather than through a command: archiving, checksumming and
//! signing. Each task is plain data in the plan; the executor runs it on a blocking thread.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::archive::ArchiveSpec;
use crate::checksum::ChecksumSpec;
use crate::minisign::SecretKey;

/// A built-in piece of work.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Task {
    /// Write an archive.
    Archive(ArchiveSpec),
    /// Write a checksum file.
    Checksum(ChecksumSpec),
    /// Sign files with the stage's key.
    Sign(SignSpec),
}

/// Files to sign, planned before the run; the key itself never enters the plan, only where
/// to find it.
#[derive(Debug, Clone, Serialize)]
pub struct SignSpec {
    /// The stage whose key signs (see [`TaskContext::keys`]).
    pub stage: String,
    /// Where the secret key and its password come from.
    pub key: KeySource,
    /// Files to sign; each gets `<file>.minisig`.
    pub files: Vec<PathBuf>,
    /// Where to write the public key, for `shipit verify` and users.
    pub public_key: Option<PathBuf>,
    /// The time in each trusted comment (Unix seconds).
    pub timestamp: u64,
}

/// Where a secret key comes from: a file, or an environment variable holding the file's text;
/// its password from another variable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeySource {
    /// A minisign secret key file.
    pub file: Option<PathBuf>,
    /// A variable holding the key file's text.
    pub env: Option<String>,
    /// A variable holding the password.
    pub password_env: Option<String>,
}

impl KeySource {
    /// Reads and decrypts the key. Errors name where the key came from, never its content.
    pub fn load(&self) -> Result<SecretKey, String> {
        let (text, origin) = match (&self.file, &self.env) {
            (Some(file), _) => (
                std::fs::read_to_string(file)
                    .map_err(|e| format!("cannot read the signing key {}: {e}", file.display()))?,
                file.display().to_string(),
            ),
            (None, Some(var)) => (
                std::env::var(var)
                    .ok()
                    .filter(|v| !v.trim().is_empty())
                    .ok_or_else(|| format!("the signing key variable `{var}` is not set"))?,
                format!("${var}"),
            ),
            (None, None) => return Err("no signing key: set `key.file` or `key.env`".into()),
        };
        let password = match &self.password_env {
            Some(var) => std::env::var(var).ok(),
            None => None,
        };
        crate::secrets::register(&text);
        for line in text.lines() {
            crate::secrets::register(line.trim());
        }
        if let Some(password) = &password {
            crate::secrets::register(password);
        }
        SecretKey::from_text(&text, password.as_deref()).map_err(|e| match e {
            crate::minisign::Error::PasswordRequired => format!(
                "the signing key in {origin} is encrypted; set its password in {}",
                self.password_env
                    .as_deref()
                    .map(|v| format!("`{v}`"))
                    .unwrap_or_else(|| "a variable named by `key.password_env`".into())
            ),
            other => format!("the signing key in {origin}: {other}"),
        })
    }
}

/// What tasks may use besides their own data.
#[derive(Debug, Clone, Default)]
pub struct TaskContext {
    /// Decrypted signing keys, by stage; loaded (and the password checked) before the run.
    pub keys: BTreeMap<String, SecretKey>,
    /// Threads a task may use.
    pub threads: usize,
}

impl Task {
    /// Does the work; returns a line for the log.
    pub fn run(&self, context: &TaskContext) -> Result<String, String> {
        let threads = context.threads.max(1);
        match self {
            Task::Archive(spec) => {
                let entries = crate::archive::write(spec, threads)?;
                Ok(format!(
                    "wrote {} ({entries} entries)",
                    spec.output.display()
                ))
            }
            Task::Checksum(spec) => {
                let written = crate::checksum::write(spec, threads)?;
                Ok(format!(
                    "wrote {} ({} files listed)",
                    written[0].display(),
                    spec.files.len()
                ))
            }
            Task::Sign(spec) => {
                let key = context.keys.get(&spec.stage).ok_or_else(|| {
                    format!("no signing key was loaded for stage `{}`", spec.stage)
                })?;
                for file in &spec.files {
                    let data = std::fs::File::open(file)
                        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                    let name = file
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let signature = key
                        .sign(std::io::BufReader::new(data), &name, spec.timestamp)
                        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                    let out = signature_path(file);
                    std::fs::write(&out, signature.to_text())
                        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
                }
                if let Some(public) = &spec.public_key {
                    std::fs::write(public, key.public().to_text())
                        .map_err(|e| format!("cannot write {}: {e}", public.display()))?;
                }
                Ok(format!(
                    "signed {} file(s) with key {}",
                    spec.files.len(),
                    key.public().key_id()
                ))
            }
        }
    }
}

/// `<file>.minisig`.
pub fn signature_path(file: &std::path::Path) -> PathBuf {
    PathBuf::from(format!("{}.minisig", file.display()))
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |p: &PathBuf| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        match self {
            Task::Archive(spec) => write!(
                f,
                "archive {} ({}, {})",
                name(&spec.output),
                crate::words::count(spec.binaries.len(), "binary", "binaries"),
                crate::words::count(spec.files.len(), "file pattern", "file patterns")
            ),
            Task::Checksum(spec) => write!(
                f,
                "checksum {} files into {}",
                spec.files.len(),
                name(&spec.output)
            ),
            Task::Sign(spec) => {
                let files: Vec<String> = spec.files.iter().map(name).collect();
                write!(f, "sign {}", files.join(", "))
            }
        }
    }
}
