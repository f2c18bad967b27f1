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
/// Set on rustc's environment when it links through the shim: the linker the shim runs.
pub const LINKER: &str = "SHIPIT_LINKER";

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

/// `path` as the build names it: the most specific remap whose folder holds it replaces that
/// folder (as rustc does with the same remaps), or `None` when no remap applies.
pub fn apply(remaps: &[Remap], path: &str) -> Option<String> {
    remaps.iter().rev().find_map(|r| {
        let rest = path.strip_prefix(r.from.to_str()?)?;
        (rest.is_empty() || rest.starts_with('/')).then(|| format!("{}{rest}", r.to))
    })
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

/// zig's global cache for a build, unless the user chose one: under shipit's cache, beside the
/// zig it provisions. zig's compiler_rt names a file in that cache in its line table, so the
/// folder is as fixed as zig's own (the default, `~/.cache/zig`, would follow `HOME`).
pub fn zig_env(shipit_cache: &Path, env: &BTreeMap<String, String>) -> Vec<(String, String)> {
    const VAR: &str = "ZIG_GLOBAL_CACHE_DIR";
    if env.get(VAR).is_some_and(|v| !v.is_empty()) {
        return Vec::new();
    }
    vec![(VAR.into(), shipit_cache.join("zig").display().to_string())]
}

/// Points rustc's linker at `shim` when it is cargo-zigbuild's zig wrapper (`zigcc-*`), and
/// returns the wrapper. zig compiles its own C runtime (glibc's start files, libunwind) while
/// it links, naming the folder it runs in as their compilation folder; the shim runs it in
/// `/` so that folder is the same on every machine.
pub fn zig_linker_through(shim: &Path, args: &mut [OsString]) -> Option<OsString> {
    let mut at = None;
    for (i, arg) in args.iter().enumerate() {
        let value = match arg.to_str() {
            Some("-C") => args.get(i + 1).and_then(|a| a.to_str()).map(|a| (i + 1, a)),
            Some(joined) => joined.strip_prefix("-C").map(|a| (i, a)),
            None => None,
        };
        if let Some((index, value)) = value
            && let Some(linker) = value.strip_prefix("linker=")
        {
            at = Some((index, linker.to_string(), index != i));
        }
    }
    let (index, linker, separate) = at?;
    let name = Path::new(&linker).file_name()?.to_str()?;
    if !name.starts_with("zigcc-") {
        return None;
    }
    let mut flag = OsString::from(if separate { "linker=" } else { "-Clinker=" });
    flag.push(shim);
    args[index] = flag;
    Some(linker.into())
}

/// The linker's arguments for running it in another folder: relative paths that name files
/// here (objects, `-L` and `-o` folders, `@` response files) become absolute.
pub fn absolute_link_args(args: Vec<OsString>, here: &Path) -> Vec<OsString> {
    let absolute = |path: &str| -> OsString {
        if path.is_empty() || Path::new(path).is_absolute() {
            path.into()
        } else {
            here.join(path).into_os_string()
        }
    };
    let mut out = Vec::with_capacity(args.len());
    let mut next_is_path = false;
    for arg in args {
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        let converted = if std::mem::take(&mut next_is_path) {
            absolute(text)
        } else if text == "-o" || text == "-L" {
            next_is_path = true;
            arg.clone()
        } else if let Some(folder) = text.strip_prefix("-L") {
            let mut flag = OsString::from("-L");
            flag.push(absolute(folder));
            flag
        } else if let Some(file) = text.strip_prefix('@') {
            let mut flag = OsString::from("@");
            flag.push(absolute(file));
            flag
        } else if !text.starts_with('-') && here.join(text).exists() {
            absolute(text)
        } else {
            arg.clone()
        };
        out.push(converted);
    }
    out
}

/// Runs as rustc when cargo calls shipit through [`SHIM`], or as rustc's linker through
/// [`LINKER`]; `None` when this process is neither. The exit code is theirs.
pub fn run_shim() -> Option<i32> {
    use std::os::unix::process::CommandExt;
    if let Some(linker) = std::env::var_os(LINKER) {
        let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let args = absolute_link_args(std::env::args_os().skip(1).collect(), &here);
        let error = std::process::Command::new(&linker)
            .args(args)
            .current_dir("/")
            .env("PWD", "/")
            .env_remove(LINKER)
            .exec();
        eprintln!(
            "shipit: cannot run {} as the linker: {error}",
            Path::new(&linker).display()
        );
        return Some(101);
    }
    let real = std::env::var_os(SHIM)?;
    let remaps: Vec<Remap> = std::env::var(REMAPS)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let mut args = rustc_args(&remaps, std::env::args_os().skip(1).collect());
    let mut command = std::process::Command::new(&real);
    if let Ok(shim) = std::env::current_exe()
        && let Some(linker) = zig_linker_through(&shim, &mut args)
    {
        command.env(LINKER, linker);
    }
    command.args(args).env_remove(SHIM).env_remove(REMAPS);
    // Build scripts and cargo-zigbuild ask `$RUSTC`; they keep reaching this shim.
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
    fn a_path_takes_the_name_of_the_most_specific_folder_holding_it() {
        let remaps = remaps(&folders(
            Path::new("/src/app"),
            Path::new("/cache/t"),
            Path::new("/src/app/.cargo"),
        ));
        let named = |p: &str| apply(&remaps, p);
        assert_eq!(
            named("/cache/t/aarch64-apple-darwin/release/deps/a.o").as_deref(),
            Some("/target/aarch64-apple-darwin/release/deps/a.o")
        );
        assert_eq!(
            named("/src/app/.cargo/registry/x.rs").as_deref(),
            Some("/cargo/registry/x.rs")
        );
        assert_eq!(named("/src/app").as_deref(), Some("."));
        assert_eq!(
            named("/src/application/a.o"),
            None,
            "a folder, not a prefix of a name"
        );
        assert_eq!(named("/elsewhere/a.o"), None);
    }

    #[test]
    fn only_the_zig_wrapper_is_linked_through_the_shim() {
        let shim = Path::new("/bin/shipit");
        let mut args: Vec<OsString> = ["--crate-name", "app", "-C", "linker=/c/zigcc-aarch64.sh"]
            .map(OsString::from)
            .to_vec();
        assert_eq!(
            zig_linker_through(shim, &mut args),
            Some("/c/zigcc-aarch64.sh".into())
        );
        assert_eq!(args[3], "linker=/bin/shipit");
        let mut joined = vec![OsString::from("-Clinker=/c/zigcc-x.sh")];
        assert!(zig_linker_through(shim, &mut joined).is_some());
        assert_eq!(joined[0], "-Clinker=/bin/shipit");
        let mut other: Vec<OsString> = ["-C", "linker=clang"].map(OsString::from).to_vec();
        assert_eq!(zig_linker_through(shim, &mut other), None);
        assert_eq!(other[1], "linker=clang");
    }

    #[test]
    fn relative_link_arguments_become_absolute_and_flags_stay() {
        let here = tempfile::tempdir().unwrap();
        std::fs::write(here.path().join("a.o"), "").unwrap();
        let args = [
            "a.o", "-o", "out/app", "-Lnative", "-L", "lib", "@args", "-lc", "/abs/b.o", "gone.o",
        ]
        .map(OsString::from)
        .to_vec();
        let h = here.path().display();
        let want: Vec<OsString> = [
            format!("{h}/a.o"),
            "-o".into(),
            format!("{h}/out/app"),
            format!("-L{h}/native"),
            "-L".into(),
            format!("{h}/lib"),
            format!("@{h}/args"),
            "-lc".into(),
            "/abs/b.o".into(),
            "gone.o".into(),
        ]
        .map(OsString::from)
        .to_vec();
        assert_eq!(absolute_link_args(args, here.path()), want);
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
