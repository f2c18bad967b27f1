//! Install scripts that carry their own digests: `install.sh` (POSIX sh) and `install.ps1`
//! (PowerShell, for the Windows archives) hold the SHA-256 of every archive they may download,
//! so the script itself is the trust anchor. Values reach a script only quoted for its
//! language, or as table entries whose characters were checked.

pub mod binstall;

use std::path::PathBuf;

use serde::Serialize;

use crate::checksum::{self, Algorithm};
use crate::file_error::FileError;

const INSTALL_SH: &str = include_str!("install.sh");
const INSTALL_PS1: &str = include_str!("install.ps1");

/// An archive the script may download.
#[derive(Debug, Clone, Serialize)]
pub struct InstallerArchive {
    /// The target it was built for (`linux-x64-musl`).
    pub target: String,
    /// Its operating system (`windows` archives go to `install.ps1`).
    pub os: String,
    /// The archive in dist.
    pub path: PathBuf,
    /// Its file name in the release.
    pub file: String,
}

/// Everything needed to write the scripts.
#[derive(Debug, Clone, Serialize)]
pub struct InstallerSpec {
    /// Project name.
    pub project: String,
    /// Version installed.
    pub version: String,
    /// Where the archives are downloaded from.
    pub base_url: String,
    /// The variable that overrides `base_url` (`DEMO_INSTALL_BASE_URL`).
    pub base_url_env: String,
    /// The archives, by target.
    pub archives: Vec<InstallerArchive>,
    /// Binaries each archive holds.
    pub binaries: Vec<String>,
    /// The minisign public key (its base64 line) that signs SHA256SUMS, if the release is signed.
    pub public_key: Option<String>,
    /// The identity and OIDC issuer that sign SHA256SUMS keyless, if they do.
    pub sigstore: Option<(String, String)>,
    /// `install.sh` to write.
    pub output: PathBuf,
    /// `install.ps1` to write, when there are Windows archives.
    pub output_ps1: Option<PathBuf>,
}

/// Why a script was not written.
#[derive(Debug, thiserror::Error)]
pub enum InstallerError {
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] FileError),
    /// A value holds characters a script line cannot carry.
    #[error("{0}")]
    Refused(String),
}

/// Characters a heredoc line of the script may hold: names, versions, file names, hex.
pub fn plain_word(word: &str) -> bool {
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

/// A variable name for the base URL (`DEMO_INSTALL_BASE_URL` for `demo`).
pub fn default_base_url_env(project: &str) -> String {
    let upper: String = project
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{upper}_INSTALL_BASE_URL")
}

/// A variable named like `base_url_env`, for the install folder (`DEMO_INSTALL_DIR`).
fn dir_var(base_url_env: &str) -> String {
    stem_var(base_url_env, "DIR")
}

/// A variable named like `base_url_env` with another last word (`DEMO_INSTALL_<word>`).
fn stem_var(base_url_env: &str, word: &str) -> String {
    match base_url_env.strip_suffix("_BASE_URL") {
        Some(stem) => format!("{stem}_{word}"),
        None => format!("{base_url_env}_{word}"),
    }
}

/// Renders `install.ps1` for the Windows archives.
pub fn render_ps1(spec: &InstallerSpec, sums: &[String]) -> Result<String, InstallerError> {
    check(spec, sums)?;
    let archives: Vec<String> = spec
        .archives
        .iter()
        .zip(sums)
        .filter(|(a, _)| a.os == "windows")
        .map(|(a, sum)| {
            format!(
                "    @{{ Target = {}; File = {}; Sha256 = {} }}",
                crate::quote::powershell(&a.target),
                crate::quote::powershell(&a.file),
                crate::quote::powershell(sum)
            )
        })
        .collect();
    let binaries: Vec<String> = spec
        .binaries
        .iter()
        .map(|b| crate::quote::powershell(b))
        .collect();
    let script_url = format!("{}/install.ps1", spec.base_url.trim_end_matches('/'));
    Ok(INSTALL_PS1
        .replace("@PROJECT@", &one_line(&spec.project))
        .replace("@VERSION@", &one_line(&spec.version))
        .replace("@SCRIPT_URL@", &one_line(&script_url))
        .replace("@PROJECT_Q@", &crate::quote::powershell(&spec.project))
        .replace("@VERSION_Q@", &crate::quote::powershell(&spec.version))
        .replace("@BASE_URL_Q@", &crate::quote::powershell(&spec.base_url))
        .replace("@BASE_URL_VAR@", &spec.base_url_env)
        .replace("@DIR_VAR@", &dir_var(&spec.base_url_env))
        .replace("@ARCHIVES@", &archives.join("\n"))
        .replace("@BINARIES@", &binaries.join(", ")))
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// Every value a script holds is checked: table words, the address, the variable, the key.
fn check(spec: &InstallerSpec, sums: &[String]) -> Result<(), InstallerError> {
    let refused = |what: &str, value: &str| {
        InstallerError::Refused(format!(
            "{what} {value:?} cannot be written into an install script"
        ))
    };
    for (archive, sum) in spec.archives.iter().zip(sums) {
        for (what, value) in [
            ("target", &archive.target),
            ("archive name", &archive.file),
            ("digest", sum),
        ] {
            if !plain_word(value) {
                return Err(refused(what, value));
            }
        }
    }
    for binary in &spec.binaries {
        if !plain_word(binary) {
            return Err(refused("binary name", binary));
        }
    }
    if spec.base_url.chars().any(char::is_control) {
        return Err(refused("base URL", &spec.base_url));
    }
    if let Some((identity, issuer)) = &spec.sigstore
        && (identity.chars().any(char::is_control) || issuer.chars().any(char::is_control))
    {
        return Err(refused("Sigstore identity", identity));
    }
    if !spec
        .base_url_env
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        || spec.base_url_env.is_empty()
    {
        return Err(refused("variable name", &spec.base_url_env));
    }
    let key = spec.public_key.clone().unwrap_or_default();
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
    {
        return Err(refused("public key", &key));
    }
    Ok(())
}

/// The `(archive file, SHA-256)` pairs an `install.sh` or `install.ps1` carries, as written
/// (for `release --check`, which compares them with the released archives).
pub fn embedded_digests(script: &str) -> Vec<(String, String)> {
    let sh = script
        .split_once("<<'SHIPIT_ARCHIVES'\n")
        .and_then(|(_, rest)| rest.split_once("\nSHIPIT_ARCHIVES"))
        .map(|(table, _)| table);
    if let Some(table) = sh {
        return table
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let (_, file, sum) = (words.next()?, words.next()?, words.next()?);
                Some((file.to_string(), sum.to_string()))
            })
            .collect();
    }
    // install.ps1: `@{ Target = '...'; File = '...'; Sha256 = '...' }`; the values are plain
    // words (checked when it was written), so their quotes are all there is to strip.
    script
        .lines()
        .filter_map(|line| {
            let entry = line.trim().strip_prefix("@{")?.strip_suffix('}')?;
            let field = |name: &str| {
                entry.split(';').find_map(|part| {
                    let (key, value) = part.split_once('=')?;
                    (key.trim() == name).then(|| value.trim().trim_matches('\'').to_string())
                })
            };
            Some((field("File")?, field("Sha256")?))
        })
        .collect()
}

/// Renders `install.sh` from the archives' digests.
pub fn render(spec: &InstallerSpec, sums: &[String]) -> Result<String, InstallerError> {
    check(spec, sums)?;
    let table: Vec<String> = spec
        .archives
        .iter()
        .zip(sums)
        .map(|(archive, sum)| format!("{} {} {sum}", archive.target, archive.file))
        .collect();
    let key = spec.public_key.clone().unwrap_or_default();
    let (identity, issuer) = spec.sigstore.clone().unwrap_or_default();
    let script_url = format!("{}/install.sh", spec.base_url.trim_end_matches('/'));
    Ok(INSTALL_SH
        .replace("@PROJECT@", &one_line(&spec.project))
        .replace("@VERSION@", &one_line(&spec.version))
        .replace("@SCRIPT_URL@", &one_line(&script_url))
        .replace("@PROJECT_Q@", &crate::quote::sh(&spec.project))
        .replace("@VERSION_Q@", &crate::quote::sh(&spec.version))
        .replace("@BASE_URL_VAR@", &spec.base_url_env)
        .replace("@BASE_URL_Q@", &crate::quote::sh(&spec.base_url))
        .replace("@ARCHIVES@", &table.join("\n"))
        .replace("@BINARIES@", &spec.binaries.join("\n"))
        .replace("@PUBLIC_KEY_Q@", &crate::quote::sh(&key))
        .replace("@SIGSTORE_IDENTITY_Q@", &crate::quote::sh(&identity))
        .replace("@SIGSTORE_ISSUER_Q@", &crate::quote::sh(&issuer))
        .replace("@SIGSTORE_VAR@", &stem_var(&spec.base_url_env, "SIGSTORE"))
        .replace(
            "@TRUST_VAR@",
            &stem_var(&spec.base_url_env, "SIGSTORE_TRUST_CONFIG"),
        ))
}

/// Hashes the archives and writes `install.sh` (mode 0755); returns how many archives it
/// knows.
pub fn write(spec: &InstallerSpec) -> Result<usize, InstallerError> {
    let mut sums = Vec::new();
    for archive in &spec.archives {
        sums.push(
            checksum::hash(&archive.path, Algorithm::Sha256)
                .map_err(FileError::on("read", &archive.path))?,
        );
    }
    let script = render(spec, &sums)?;
    std::fs::write(&spec.output, script).map_err(FileError::on("write", &spec.output))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&spec.output, std::fs::Permissions::from_mode(0o755))
        .map_err(FileError::on("write", &spec.output))?;
    if let Some(ps1) = &spec.output_ps1 {
        let script = render_ps1(spec, &sums)?;
        std::fs::write(ps1, script).map_err(FileError::on("write", ps1))?;
    }
    Ok(spec.archives.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> InstallerSpec {
        InstallerSpec {
            project: "demo".into(),
            version: "1.0.0".into(),
            base_url: "https://example.com/rel'ease".into(),
            base_url_env: "DEMO_INSTALL_BASE_URL".into(),
            archives: vec![
                InstallerArchive {
                    target: "linux-x64-musl".into(),
                    os: "linux".into(),
                    path: "x".into(),
                    file: "demo-1.0.0-linux-x64-musl.tar.gz".into(),
                },
                InstallerArchive {
                    target: "windows-x64".into(),
                    os: "windows".into(),
                    path: "y".into(),
                    file: "demo-1.0.0-windows-x64.zip".into(),
                },
            ],
            binaries: vec!["demo".into()],
            public_key: None,
            sigstore: None,
            output: "install.sh".into(),
            output_ps1: Some("install.ps1".into()),
        }
    }

    #[test]
    fn values_are_quoted_and_the_digest_table_is_embedded() {
        let script = render(&spec(), &["ab".repeat(32), "cd".repeat(32)]).unwrap();
        assert!(script.contains(&format!(
            "linux-x64-musl demo-1.0.0-linux-x64-musl.tar.gz {}",
            "ab".repeat(32)
        )));
        assert!(script.contains(r"base_url='https://example.com/rel'\''ease'"));
        assert!(!script.contains('@'));
    }

    /// No PowerShell runs here: the script is pinned, and its digests are checked against the
    /// manifest by `installer::` in the end-to-end tests.
    #[test]
    fn install_ps1_lists_the_windows_archives_with_their_digests() {
        let script = render_ps1(&spec(), &["ab".repeat(32), "cd".repeat(32)]).unwrap();
        assert!(!script.contains("linux-x64-musl"));
        assert!(script.contains("$DefaultBaseUrl = 'https://example.com/rel''ease'"));
        insta::assert_snapshot!("install_ps1", script);
    }

    #[test]
    fn both_scripts_give_back_the_digests_they_embed() {
        let sums = ["ab".repeat(32), "cd".repeat(32)];
        let sh = render(&spec(), &sums).unwrap();
        assert_eq!(
            embedded_digests(&sh),
            [
                (
                    "demo-1.0.0-linux-x64-musl.tar.gz".to_string(),
                    sums[0].clone()
                ),
                ("demo-1.0.0-windows-x64.zip".to_string(), sums[1].clone()),
            ]
        );
        let ps1 = render_ps1(&spec(), &sums).unwrap();
        assert_eq!(
            embedded_digests(&ps1),
            [("demo-1.0.0-windows-x64.zip".to_string(), sums[1].clone())]
        );
    }

    #[test]
    fn a_name_that_could_break_out_of_a_line_is_refused() {
        let mut bad = spec();
        bad.binaries = vec!["demo\nrm -rf /".into()];
        assert!(render(&bad, &["ab".repeat(32), "cd".repeat(32)]).is_err());
        let mut bad = spec();
        bad.archives[0].file = "x'.tar.gz".into();
        assert!(render(&bad, &["ab".repeat(32), "cd".repeat(32)]).is_err());
        assert!(render_ps1(&bad, &["ab".repeat(32), "cd".repeat(32)]).is_err());
        assert_eq!(default_base_url_env("my-tool"), "MY_TOOL_INSTALL_BASE_URL");
    }
}
