//! Work that shipit does itself rather than through a command: archiving, checksumming and
//! signing. Each task is plain data in the plan; the executor runs it on a blocking thread.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::archive::ArchiveSpec;
use crate::checksum::ChecksumSpec;
use crate::minisign::SecretKey;
use crate::openpgp::PgpKey;
use crate::package::PackageSpec;

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
    /// Sign files keyless through Sigstore.
    Keyless(KeylessSpec),
    /// Write a .deb or .rpm (boxed: a package's spec is far larger than the other tasks).
    Package(Box<PackageTask>),
    /// Write `install.sh` with the archives' digests.
    Installer(Box<crate::installer::InstallerSpec>),
    /// Write one target's SBOMs.
    Sbom(Box<crate::sbom::SbomSpec>),
    /// Write the signed provenance of the artifacts.
    Provenance(Box<ProvenanceTask>),
    /// Check Cargo.lock against the advisory database.
    Audit(Box<crate::audit::AuditSpec>),
    /// Write what a built binary prints (completions, a man page).
    Generate(crate::generate::GenerateSpec),
}

/// A package to write and, for a signed rpm, where the stage's OpenPGP key comes from.
#[derive(Debug, Clone, Serialize)]
pub struct PackageTask {
    /// The package.
    pub spec: PackageSpec,
    /// The key that signs it (loaded before the run, see [`TaskContext::pgp_keys`]).
    pub key: Option<KeySource>,
}

/// Provenance to write, and the stage whose minisign key signs it (loaded before the run, see
/// [`TaskContext::keys`]).
#[derive(Debug, Clone, Serialize)]
pub struct ProvenanceTask {
    /// The document.
    pub spec: crate::provenance::ProvenanceSpec,
    /// The stage.
    pub stage: String,
    /// Where its key comes from.
    pub key: KeySource,
}

/// Files to sign keyless: the job's OIDC identity, certified by Fulcio, logged in Rekor; a
/// Sigstore bundle is written beside each.
#[derive(Debug, Clone, Serialize)]
pub struct KeylessSpec {
    /// The stage.
    pub stage: String,
    /// Files to sign; each gets `<file>.sigstore.json`.
    pub files: Vec<PathBuf>,
    /// Fulcio and Rekor.
    pub endpoints: crate::sigstore::Endpoints,
    /// The root each bundle is checked against once written (the public-good one when unset
    /// and the endpoints are the public-good ones).
    pub trusted_root: Option<PathBuf>,
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

/// Why a signing key could not be loaded; it names where the key came from, never its
/// content.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read the signing key {}", .0.display())]
    Read(PathBuf, #[source] std::io::Error),
    /// The variable that should hold the key is empty or not set.
    #[error("the signing key variable `{0}` is not set")]
    NotSet(String),
    /// Keyless signing has no OIDC token to prove who signs.
    #[error(
        "keyless signing needs an OIDC token: in GitHub Actions give the job `permissions: id-token: write`; elsewhere set SIGSTORE_ID_TOKEN"
    )]
    NoOidcToken,
    /// Neither a file nor a variable was named.
    #[error("no signing key: set `key.file` or `key.env`")]
    Unnamed,
    /// The key is encrypted and no password was given.
    #[error("the signing key in {origin} is encrypted; set its password in {variable}")]
    NeedsPassword {
        /// Where the key came from.
        origin: String,
        /// Which variable should hold the password.
        variable: String,
    },
    /// The OpenPGP key does not decode, or its password is wrong.
    #[error("the OpenPGP key in {origin}: {source}")]
    InvalidPgp {
        /// Where the key came from.
        origin: String,
        /// Why.
        source: crate::openpgp::PgpError,
    },
    /// The cosign key does not decode, or its password is wrong.
    #[error("the cosign key in {origin}: {source}")]
    InvalidCosign {
        /// Where the key came from.
        origin: String,
        /// Why.
        source: crate::cosign::CosignError,
    },
    /// The key does not decode or decrypt.
    #[error("the signing key in {origin}: {source}")]
    Invalid {
        /// Where the key came from.
        origin: String,
        /// Why.
        source: crate::minisign::Error,
    },
}

/// Why a task failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The archive was not written.
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    /// The checksum file was not written.
    #[error(transparent)]
    Checksum(#[from] crate::checksum::ChecksumError),
    /// Keyless signing failed.
    #[error(transparent)]
    Keyless(#[from] crate::sigstore::sign::SignError),
    /// The stage's signing key was not loaded before the run (a bug in the caller).
    #[error("no signing key was loaded for stage `{0}`")]
    NoKey(String),
    /// A file could not be signed.
    #[error("cannot sign {}", path.display())]
    Sign {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::minisign::Error,
    },
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] crate::file_error::FileError),
    /// A package was not written.
    #[error(transparent)]
    Package(#[from] crate::package::PackageError),
    /// The install script was not written.
    #[error(transparent)]
    Installer(#[from] crate::installer::InstallerError),
    /// A file was not generated.
    #[error(transparent)]
    Generate(#[from] crate::generate::GenerateError),
    /// The SBOMs were not written.
    #[error(transparent)]
    Sbom(#[from] crate::sbom::SbomError),
    /// The provenance was not written.
    #[error(transparent)]
    Provenance(#[from] crate::provenance::ProvenanceError),
    /// The audit found vulnerabilities, or could not run.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

fn io(action: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TaskError {
    let on = crate::file_error::FileError::on(action, path);
    move |source| TaskError::Io(on(source))
}

impl KeySource {
    /// Where the pipeline file says the key is; a key file is relative to the file.
    pub fn from_config(
        key: &crate::config::KeyConfig,
        loaded: &crate::config::Loaded,
    ) -> KeySource {
        KeySource {
            file: key.file.as_deref().map(|f| loaded.resolve(f)),
            env: key.env.clone(),
            password_env: key.password_env.clone(),
        }
    }

    /// Reads the key's text, where it came from, and its password; registers all three as
    /// secrets so that no output shows them.
    fn read(&self) -> Result<(String, String, Option<String>), KeyError> {
        let (text, origin) = match (&self.file, &self.env) {
            (Some(file), _) => (
                std::fs::read_to_string(file).map_err(|e| KeyError::Read(file.clone(), e))?,
                file.display().to_string(),
            ),
            (None, Some(var)) => (
                std::env::var(var)
                    .ok()
                    .filter(|v| !v.trim().is_empty())
                    .ok_or_else(|| KeyError::NotSet(var.clone()))?,
                format!("${var}"),
            ),
            (None, None) => return Err(KeyError::Unnamed),
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
        Ok((text, origin, password))
    }

    /// Reads and decrypts a minisign key. Errors name where the key came from, never its
    /// content.
    pub fn load(&self) -> Result<SecretKey, KeyError> {
        let (text, origin, password) = self.read()?;
        SecretKey::from_text(&text, password.as_deref()).map_err(|e| match e {
            crate::minisign::Error::PasswordRequired => KeyError::NeedsPassword {
                origin,
                variable: self
                    .password_env
                    .as_deref()
                    .map(|v| format!("`{v}`"))
                    .unwrap_or_else(|| "a variable named by `key.password_env`".into()),
            },
            source => KeyError::Invalid { origin, source },
        })
    }
}

impl KeySource {
    /// Reads and decrypts a cosign key file (cosign's keys are always sealed; an unset password
    /// variable is the empty password, as cosign takes it).
    pub fn load_cosign(&self) -> Result<crate::cosign::CosignKey, KeyError> {
        let (text, origin, password) = self.read()?;
        crate::cosign::CosignKey::from_encrypted_pem(&text, password.as_deref().unwrap_or(""))
            .map_err(|source| KeyError::InvalidCosign { origin, source })
    }

    /// Reads an armored OpenPGP key and checks its password.
    pub fn load_pgp(&self) -> Result<PgpKey, KeyError> {
        let (text, origin, password) = self.read()?;
        PgpKey::from_armored(&text, password.as_deref())
            .map_err(|source| KeyError::InvalidPgp { origin, source })
    }
}

/// What tasks may use besides their own data.
#[derive(Debug, Clone, Default)]
pub struct TaskContext {
    /// Decrypted signing keys, by stage; loaded (and the password checked) before the run.
    pub keys: BTreeMap<String, SecretKey>,
    /// OpenPGP keys, by stage, loaded and checked before the run like `keys`.
    pub pgp_keys: BTreeMap<String, PgpKey>,
    /// Threads a task may use.
    pub threads: usize,
}

impl Task {
    /// Whether it makes signatures only the project can make (a key, or its CI identity).
    pub fn signs(&self) -> bool {
        self.minisign_key().is_some() || matches!(self, Task::Keyless(_))
    }

    /// The stage and minisign key the task signs with, loaded before the run.
    pub fn minisign_key(&self) -> Option<(&str, &KeySource)> {
        match self {
            Task::Sign(spec) => Some((&spec.stage, &spec.key)),
            Task::Provenance(task) => Some((&task.stage, &task.key)),
            _ => None,
        }
    }

    /// Does the work; returns a line for the log.
    pub fn run(&self, context: &TaskContext) -> Result<String, TaskError> {
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
            Task::Keyless(spec) => crate::sigstore::sign::sign_files(
                &spec.files,
                &spec.endpoints,
                spec.trusted_root.as_deref(),
            )
            .map_err(TaskError::Keyless),
            Task::Sign(spec) => {
                let key = context
                    .keys
                    .get(&spec.stage)
                    .ok_or_else(|| TaskError::NoKey(spec.stage.clone()))?;
                for file in &spec.files {
                    let data = std::fs::File::open(file).map_err(io("read", file))?;
                    let name = file
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let signature = key
                        .sign(std::io::BufReader::new(data), &name, spec.timestamp)
                        .map_err(|source| TaskError::Sign {
                            path: file.clone(),
                            source,
                        })?;
                    let out = signature_path(file);
                    std::fs::write(&out, signature.to_text()).map_err(io("write", &out))?;
                }
                if let Some(public) = &spec.public_key {
                    std::fs::write(public, key.public().to_text()).map_err(io("write", public))?;
                }
                Ok(format!(
                    "signed {} file(s) with key {}",
                    spec.files.len(),
                    key.public().key_id()
                ))
            }
            Task::Generate(spec) => {
                let size = crate::generate::write(spec)?;
                Ok(format!("wrote {} ({size} bytes)", spec.output.display()))
            }
            Task::Installer(spec) => {
                let archives = crate::installer::write(spec)?;
                Ok(format!(
                    "wrote {} ({} with their SHA-256)",
                    spec.output.display(),
                    crate::words::count(archives, "archive", "archives")
                ))
            }
            Task::Provenance(task) => {
                let key = context
                    .keys
                    .get(&task.stage)
                    .ok_or_else(|| TaskError::NoKey(task.stage.clone()))?;
                let subjects = crate::provenance::write(&task.spec, key)?;
                Ok(format!(
                    "wrote {} ({}, signed by {})",
                    task.spec.output.display(),
                    crate::words::count(subjects, "subject", "subjects"),
                    key.public().key_id()
                ))
            }
            Task::Audit(spec) => {
                let report = crate::audit::run(spec)?;
                Ok(crate::audit::table(&report))
            }
            Task::Sbom(spec) => {
                let components = crate::sbom::write(spec)?;
                Ok(format!(
                    "wrote the SBOMs of {} ({})",
                    spec.target,
                    crate::words::count(components, "component", "components")
                ))
            }
            Task::Package(task) => {
                let key = match &task.spec.signed_by {
                    Some(stage) => Some(
                        context
                            .pgp_keys
                            .get(stage)
                            .ok_or_else(|| TaskError::NoKey(stage.clone()))?,
                    ),
                    None => None,
                };
                let entries = crate::package::write(&task.spec, key, threads)?;
                Ok(format!(
                    "wrote {} ({entries} entries{})",
                    task.spec.output.display(),
                    key.map(|k| format!(", signed by {}", k.signing_key_id()))
                        .unwrap_or_default()
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
            Task::Keyless(spec) => {
                let files: Vec<String> = spec.files.iter().map(name).collect();
                write!(f, "sign {} keyless (Sigstore)", files.join(", "))
            }
            Task::Generate(spec) => write!(
                f,
                "generate {} with {} {}",
                name(&spec.output),
                name(&spec.binary),
                spec.args.join(" ")
            ),
            Task::Installer(spec) => write!(
                f,
                "installer {} ({})",
                name(&spec.output),
                crate::words::count(spec.archives.len(), "archive", "archives")
            ),
            Task::Provenance(task) => write!(
                f,
                "provenance {} ({})",
                name(&task.spec.output),
                crate::words::count(task.spec.subjects.len(), "subject", "subjects")
            ),
            Task::Audit(spec) => write!(
                f,
                "audit {} against {} (gate: {:?})",
                name(&spec.lockfile),
                spec.db.display(),
                spec.fail_on
            ),
            Task::Sbom(spec) => {
                let files: Vec<String> = spec.outputs.iter().map(|(_, p)| name(p)).collect();
                write!(f, "sbom {}", files.join(", "))
            }
            Task::Package(task) => write!(
                f,
                "{} {} ({} to install{})",
                task.spec.format.extension(),
                name(&task.spec.output),
                crate::words::count(task.spec.entries.len(), "entry", "entries"),
                if task.key.is_some() { ", signed" } else { "" }
            ),
        }
    }
}
