//! Path-independent builds: the folders a build happens in (the project, cargo's home, the
//! target folder, the toolchain) never reach a binary, so two clones in different places, by
//! users with different homes, link the same bytes.
//!
//! Rust code gets `--remap-path-prefix` from a rustc shim: cargo runs shipit itself as `RUSTC`
//! (shipit's cargo units set it), and shipit, seeing [`SHIM`], runs the real rustc with the
//! remaps added in front of the arguments cargo computed. Adding them there, rather than in
//! `RUSTFLAGS`, keeps every flag cargo would use anyway: the project's `.cargo/config.toml`
//! (`build.rustflags`, `target.<triple>.rustflags`, `target.<cfg>.rustflags`), `RUSTFLAGS`
//! and `CARGO_ENCODED_RUSTFLAGS`; and since rustc lets the last matching remap win, a remap the
//! project sets itself still wins over shipit's. C code compiled by the `cc` crate (with zig
//! for cross targets) gets `-ffile-prefix-map` in the one `CFLAGS` variable `cc` reads for the
//! target, appended to what it holds.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Set on cargo's environment: the rustc the shim runs (`rustc`, or the user's `RUSTC`).
pub const SHIM: &str = "SHIPIT_RUSTC";
/// Set beside it: the remaps, as JSON `[[from, to], ...]`.
pub const REMAPS: &str = "SHIPIT_REMAP_PATH_PREFIX";

/// One folder and the name it has in the binary.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Remap {
    /// The folder as it is on this machine.
    pub from: PathBuf,
    /// What it becomes: the same on every machine.
    pub to: String,
}

/// Where a build's paths come from.
pub struct Folders<'a> {
    /// The workspace root: becomes `.`, as if built where it stands.
    pub workspace: &'a Path,
    /// Cargo's target folder: `/target` when it is outside the workspace.
    pub target_dir: &'a Path,
    /// Cargo's home (the registry's sources, git checkouts): `/cargo`.
    pub cargo_home: Option<&'a Path>,
    /// The toolchain's sysroot: `/rustc/<commit>`, the name its own std already carries.
    pub sysroot: Option<&'a Path>,
    /// The toolchain's commit (`commit-hash:` of `rustc -vV`).
    pub rustc_commit: Option<&'a str>,
}

/// The remaps for a build in `folders`, the more specific (longer) folders last, so that one
/// folder inside another (a `CARGO_HOME` inside the project) gets its own name.
pub fn remaps(folders: &Folders<'_>) -> Vec<Remap> {
    let mut remaps = vec![Remap {
        from: folders.workspace.to_path_buf(),
        to: ".".into(),
    }];
    if !folders.target_dir.starts_with(folders.workspace) {
        remaps.push(Remap {
            from: folders.target_dir.to_path_buf(),
            to: "/target".into(),
        });
    }
    if let Some(home) = folders.cargo_home {
        remaps.push(Remap {
            from: home.to_path_buf(),
            to: "/cargo".into(),
        });
    }
    if let Some(sysroot) = folders.sysroot {
        let commit = folders.rustc_commit.unwrap_or("toolchain");
        remaps.push(Remap {
            from: sysroot.join("lib/rustlib/src/rust"),
            to: format!("/rustc/{commit}"),
        });
        remaps.push(Remap {
            from: sysroot.to_path_buf(),
            to: format!("/rustc/{commit}/sysroot"),
        });
    }
    remaps.sort_by_key(|r| r.from.as_os_str().len());
    remaps.dedup_by(|a, b| a.from == b.from);
    remaps
}

/// The environment that makes cargo build through the shim with `remaps`: `RUSTC` is `shipit`
/// itself, and the rustc it stands for is the one cargo would have run.
pub fn cargo_env(
    remaps: &[Remap],
    shipit: &Path,
    env: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let real = env
        .get("RUSTC")
        .filter(|r| !r.is_empty())
        .cloned()
        .unwrap_or_else(|| "rustc".into());
    BTreeMap::from([
        ("RUSTC".to_string(), shipit.display().to_string()),
        (SHIM.to_string(), real),
        (
            REMAPS.to_string(),
            serde_json::to_string(remaps).unwrap_or_default(),
        ),
    ])
}

/// The `CFLAGS`-family variable `cc` reads for `triple` and what it should hold: `cc` takes
/// the first of `<VAR>_<triple>`, `<VAR>_<triple with underscores>`, `TARGET_<VAR>` and
/// `<VAR>` that is set, so the remaps are appended to that one (or set the first when none
/// is). Folders whose path has whitespace are left out: `cc` splits these variables on it.
pub fn c_flags(
    remaps: &[Remap],
    triple: &str,
    env: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let maps: Vec<String> = remaps
        .iter()
        .filter(|r| !r.from.to_string_lossy().contains(char::is_whitespace))
        .map(|r| format!("-ffile-prefix-map={}={}", r.from.display(), r.to))
        .collect();
    if maps.is_empty() {
        return Vec::new();
    }
    ["CFLAGS", "CXXFLAGS"]
        .into_iter()
        .map(|var| {
            let names = [
                format!("{var}_{triple}"),
                format!("{var}_{}", triple.replace('-', "_")),
                format!("TARGET_{var}"),
                var.to_string(),
            ];
            let (name, held) = names
                .iter()
                .find_map(|n| env.get(n).map(|v| (n.clone(), v.clone())))
                .unwrap_or_else(|| (names[1].clone(), String::new()));
            let value = std::iter::once(held.as_str())
                .filter(|h| !h.trim().is_empty())
                .chain(maps.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ");
            (name, value)
        })
        .collect()
}

/// The arguments rustc runs with: the remaps first, then cargo's own (whose later remaps
/// win). Queries that compile nothing (`-vV`) are passed as they are.
pub fn rustc_args(remaps: &[Remap], args: Vec<OsString>) -> Vec<OsString> {
    if !args.iter().any(|a| a == "--crate-name") {
        return args;
    }
    let mut all: Vec<OsString> = remaps
        .iter()
        .map(|r| {
            let mut flag = OsString::from("--remap-path-prefix=");
            flag.push(&r.from);
            flag.push("=");
            flag.push(&r.to);
            flag
        })
        .collect();
    all.extend(args);
    all
}

/// Runs as rustc when cargo calls shipit through [`SHIM`]; `None` when this process is not
/// the shim. The exit code is rustc's.
pub fn run_shim() -> Option<i32> {
    let real = std::env::var_os(SHIM)?;
    let remaps: Vec<Remap> = std::env::var(REMAPS)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let args = rustc_args(&remaps, std::env::args_os().skip(1).collect());
    let mut command = std::process::Command::new(&real);
    command.args(args).env_remove(SHIM).env_remove(REMAPS);
    // Build scripts and cargo-zigbuild ask `$RUSTC`; they keep reaching this shim.
    use std::os::unix::process::CommandExt;
    let error = command.exec();
    eprintln!(
        "shipit: cannot run {} as rustc: {error}",
        Path::new(&real).display()
    );
    Some(101)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folders<'a>(workspace: &'a Path, target: &'a Path, home: &'a Path) -> Folders<'a> {
        Folders {
            workspace,
            target_dir: target,
            cargo_home: Some(home),
            sysroot: Some(Path::new("/opt/rust/toolchains/stable")),
            rustc_commit: Some("abc123"),
        }
    }

    #[test]
    fn a_folder_inside_another_gets_its_own_name_and_comes_later() {
        let remaps = remaps(&folders(
            Path::new("/src/app"),
            Path::new("/src/app/target"),
            Path::new("/src/app/.cargo"),
        ));
        let names: Vec<(&str, &str)> = remaps
            .iter()
            .map(|r| (r.from.to_str().unwrap(), r.to.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("/src/app", "."),
                ("/src/app/.cargo", "/cargo"),
                ("/opt/rust/toolchains/stable", "/rustc/abc123/sysroot"),
                (
                    "/opt/rust/toolchains/stable/lib/rustlib/src/rust",
                    "/rustc/abc123"
                ),
            ]
        );
    }

    #[test]
    fn a_target_folder_elsewhere_is_remapped_too() {
        let remaps = remaps(&folders(
            Path::new("/src/app"),
            Path::new("/cache/t"),
            Path::new("/home/u/.cargo"),
        ));
        assert!(remaps.iter().any(|r| r.to == "/target"));
    }

    #[test]
    fn the_remaps_go_first_so_the_projects_own_flags_keep_their_place_and_win() {
        let remaps = vec![Remap {
            from: "/w".into(),
            to: ".".into(),
        }];
        let cargo: Vec<OsString> = ["--crate-name", "app", "--remap-path-prefix=/w=/mine"]
            .map(OsString::from)
            .to_vec();
        let args = rustc_args(&remaps, cargo.clone());
        assert_eq!(args[0], "--remap-path-prefix=/w=.");
        assert_eq!(&args[1..], &cargo[..]);
        let query = vec![OsString::from("-vV")];
        assert_eq!(rustc_args(&remaps, query.clone()), query);
    }

    #[test]
    fn c_flags_append_to_the_variable_cc_reads_and_never_replace_it() {
        let remaps = vec![Remap {
            from: "/w".into(),
            to: ".".into(),
        }];
        let env = BTreeMap::from([
            ("CFLAGS".to_string(), "-O3".to_string()),
            (
                "CXXFLAGS_x86_64_unknown_linux_musl".to_string(),
                "-DX".to_string(),
            ),
        ]);
        let flags = c_flags(&remaps, "x86_64-unknown-linux-musl", &env);
        assert_eq!(
            flags,
            [
                (
                    "CFLAGS".to_string(),
                    "-O3 -ffile-prefix-map=/w=.".to_string()
                ),
                (
                    "CXXFLAGS_x86_64_unknown_linux_musl".to_string(),
                    "-DX -ffile-prefix-map=/w=.".to_string()
                ),
            ]
        );
        let spaced = vec![Remap {
            from: "/my dir".into(),
            to: ".".into(),
        }];
        assert!(c_flags(&spaced, "x", &BTreeMap::new()).is_empty());
    }
}
