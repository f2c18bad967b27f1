//! The options of the packager kinds and their checks without project facts.

use std::path::Path;

use schemars::JsonSchema;
use serde::Deserialize;

use super::super::StageRef;
use crate::config::{KeyConfig, Problem};
use crate::package::{PackageFormat, names, scripts};
use crate::path;

/// Options of `uses = "deb"` and `uses = "rpm"`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct PackageOptions {
    /// Package name. Default: the project's name.
    pub name: Option<String>,
    /// Which Linux targets of the stages it needs to package. Default: all of them (two
    /// targets of one architecture, such as `linux-x64` and `linux-x64-musl`, need a choice).
    pub targets: Option<Vec<String>>,
    /// Version (template), mapped to the format (`1.2.0-rc.1` becomes `1.2.0~rc.1`). Default: `{{ version }}`.
    pub version: Option<String>,
    /// Debian revision / rpm release. Default: `1`.
    pub release: Option<String>,
    /// `Name <email>`. Default: the first of Cargo's `authors`.
    pub maintainer: Option<String>,
    /// First line: the summary; the rest: the long description. Default: Cargo's `description`.
    pub description: Option<String>,
    /// SPDX license. Default: Cargo's `license`.
    pub license: Option<String>,
    /// Home page. Default: Cargo's `homepage` (or `repository`).
    pub homepage: Option<String>,
    /// Debian section / rpm group. Default: `utils` / `Applications/System`.
    pub section: Option<String>,
    /// Debian priority. Default: `optional`.
    pub priority: Option<String>,
    /// Packages it needs, in the format's syntax (`libc6 (>= 2.31)` / `glibc >= 2.31`).
    #[serde(default)]
    pub depends: Vec<String>,
    /// Packages it recommends.
    #[serde(default)]
    pub recommends: Vec<String>,
    /// Packages it cannot be installed with.
    #[serde(default)]
    pub conflicts: Vec<String>,
    /// Virtual packages it provides.
    #[serde(default)]
    pub provides: Vec<String>,
    /// Packages it replaces (rpm: obsoletes).
    #[serde(default)]
    pub replaces: Vec<String>,
    /// Where the binaries go. Default: `/usr/bin`.
    pub bin_dir: Option<String>,
    /// Files, config files, folders and links: `{ src, dst, mode, type }`, `type` one of `file` (default), `config` (kept when edited), `dir`, `symlink` (`src` is the link's target).
    #[serde(default)]
    pub contents: Vec<ContentEntry>,
    /// A systemd unit to install, enable, start, restart on upgrade and stop on removal.
    pub systemd: Option<SystemdOptions>,
    /// Maintainer scripts by path; shipit's systemd part goes where a script has the line `#SHIPIT#`.
    #[serde(default)]
    pub scripts: ScriptOptions,
    /// Man pages (globs, relative to the project), gzipped into `/usr/share/man/manN`. Default: `man/*.[1-9]` when there are any.
    pub man: Option<Vec<String>>,
    /// Shell completions (files relative to the project). Default: `completions/<bin>.bash`, `completions/_<bin>`, `completions/<bin>.fish` when present.
    #[serde(default)]
    pub completions: CompletionOptions,
    /// rpm only: the OpenPGP key that signs the package, `{ env = "...", password_env = "..." }` (armored; `shipit keygen --pgp` makes one).
    pub key: Option<KeyConfig>,
    /// rpm only: the payload's compression, `zstd` (default: fast, rpm 4.14+) or `gzip` (every rpm, CentOS 7 too).
    pub compression: Option<crate::package::Compression>,
}

/// One entry of `contents`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ContentEntry {
    /// The file in the project (for `symlink`: the link's target).
    pub src: Option<String>,
    /// Where it is installed (absolute).
    pub dst: String,
    /// Permission bits, octal (`"0644"`). Default: 0644 for files, 0755 for folders.
    pub mode: Option<String>,
    /// `file`, `config`, `dir` or `symlink`. Default: `file`.
    #[serde(rename = "type")]
    pub kind: Option<ContentKind>,
}

/// What a `contents` entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContentKind {
    /// A plain file.
    File,
    /// A config file: kept when the user edited it, across upgrades.
    Config,
    /// A folder, even empty.
    Dir,
    /// A symbolic link to `src`.
    Symlink,
}

/// `systemd = { unit = "...", enable = true, start = true }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SystemdOptions {
    /// The unit file in the project (`packaging/demo.service`).
    pub unit: String,
    /// Enable it on install. Default: true.
    pub enable: Option<bool>,
    /// Start it on install and restart it on upgrade. Default: true.
    pub start: Option<bool>,
    /// Folder it is installed to. Default: `/lib/systemd/system` (deb), `/usr/lib/systemd/system` (rpm).
    pub dir: Option<String>,
}

/// Maintainer scripts, by their Debian names (rpm: `%pre`, `%post`, `%preun`, `%postun`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ScriptOptions {
    /// Before unpacking.
    pub preinst: Option<String>,
    /// After unpacking.
    pub postinst: Option<String>,
    /// Before removal.
    pub prerm: Option<String>,
    /// After removal.
    pub postrm: Option<String>,
}

/// Completion files by shell.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CompletionOptions {
    /// bash completion file.
    pub bash: Option<String>,
    /// zsh completion file (`_name`).
    pub zsh: Option<String>,
    /// fish completion file.
    pub fish: Option<String>,
}

/// Checks without project facts (for `shipit check`).
pub(super) fn check(
    format: PackageFormat,
    stage: &StageRef<'_>,
    options: &PackageOptions,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut problem = |key: &str, message: String, help: &str| {
        problems.push(Problem::new(message, stage.span(key)).help(help.to_owned()));
    };
    if let Some(name) = &options.name
        && let Err(why) = names::check_name(format, name)
    {
        problem(
            "name",
            why,
            "package names are what users type after `apt install` / `dnf install`",
        );
    }
    if let Some(release) = &options.release
        && let Err(why) = names::check_release(release)
    {
        problem(
            "release",
            why,
            "`1` for a first package of a version, `2` for a rebuild",
        );
    }
    for (key, list) in [
        ("depends", &options.depends),
        ("recommends", &options.recommends),
        ("conflicts", &options.conflicts),
        ("provides", &options.provides),
        ("replaces", &options.replaces),
    ] {
        for relation in list {
            if let Err(why) = crate::package::check_relation(format, relation) {
                problem(
                    key,
                    why,
                    match format {
                        PackageFormat::Deb => "Debian syntax: `name`, `name (>= 1.0)`, `a | b`",
                        PackageFormat::Rpm => "rpm syntax: `name` or `name >= 1.0`",
                    },
                );
            }
        }
    }
    for (key, value) in [
        ("maintainer", &options.maintainer),
        ("license", &options.license),
        ("homepage", &options.homepage),
        ("section", &options.section),
        ("priority", &options.priority),
    ] {
        if value
            .as_deref()
            .is_some_and(|v| v.contains(['\n', '\r']) || v.trim().is_empty())
        {
            problem(
                key,
                format!("`{key}` must be one non-empty line"),
                "control fields are one line each",
            );
        }
    }
    if let Some(dir) = &options.bin_dir
        && let Err(why) = names::installed_path(dir)
    {
        problem("bin_dir", why, "binaries usually go to `/usr/bin`");
    }
    for (i, entry) in options.contents.iter().enumerate() {
        if let Err(why) = check_content(entry) {
            problems.push(
                Problem::new(
                    format!("`contents` entry: {why}"),
                    stage.loaded.span_near(path!["stages", stage.name, "contents", i]),
                )
                .help("`{ src = \"packaging/demo.toml\", dst = \"/etc/demo/demo.toml\", type = \"config\" }`"),
            );
        }
    }
    if let Some(systemd) = &options.systemd {
        let file_name = Path::new(&systemd.unit)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Err(why) = scripts::check_unit_name(&file_name) {
            problems.push(
                Problem::new(why, stage.span("systemd"))
                    .help("the unit's file name is its name: `packaging/demo.service`"),
            );
        }
        if let Some(dir) = &systemd.dir
            && let Err(why) = names::installed_path(dir)
        {
            problems.push(Problem::new(why, stage.span("systemd")));
        }
    }
    if options.compression.is_some() && format == PackageFormat::Deb {
        problems.push(
            Problem::new(
                "a deb's compression is not chosen here",
                stage.span("compression"),
            )
            .label("rpm only")
            .help("deb data is gzip, which every dpkg reads; remove `compression`"),
        );
    }
    match (&options.key, format) {
        (Some(_), PackageFormat::Deb) => problems.push(
            Problem::new("a deb package is not signed itself", stage.span("key"))
                .label("deb has no signature")
                .help("APT trusts packages through the signed repository: set `key` in `[release.apt]`"),
        ),
        (Some(key), PackageFormat::Rpm) if key.file.is_some() == key.env.is_some() => problems.push(
            Problem::new("`key` needs exactly one of `file` and `env`", stage.span("key"))
                .label("where is the key?")
                .help("`env` names a variable holding the armored key; `shipit keygen --pgp` makes one"),
        ),
        _ => {}
    }
    problems.extend(super::super::needs_none(
        stage,
        format!(
            "a {} stage needs the stage that builds the binaries",
            format.extension()
        ),
        "build",
    ));
    problems
}

fn check_content(entry: &ContentEntry) -> Result<(), String> {
    names::installed_path(&entry.dst)?;
    if let Some(mode) = &entry.mode {
        names::parse_mode(mode)?;
    }
    let kind = entry.kind.unwrap_or(ContentKind::File);
    match (kind, &entry.src) {
        (ContentKind::Dir, Some(_)) => Err("a `dir` entry has no `src`".into()),
        (ContentKind::Dir, None) => Ok(()),
        (ContentKind::Symlink, None) => {
            Err("a `symlink` entry needs `src`, the link's target".into())
        }
        (ContentKind::Symlink, Some(target)) if target.is_empty() || target.contains('\0') => {
            Err("a link's target may not be empty".into())
        }
        (ContentKind::Symlink, Some(_)) => Ok(()),
        (_, None) => Err(format!(
            "`{}` needs `src`, the file in the project",
            entry.dst
        )),
        (_, Some(src)) => crate::relpath::RelPath::new(src)
            .map(drop)
            .map_err(|e| format!("`src` {e}")),
    }
}
