//! Build targets: the short aliases users write and the Rust triples they stand for.

use std::fmt;

use serde::Serialize;

/// Aliases for the targets shipit releases to, with their triple, OS and architecture.
pub const ALIASES: &[(&str, &str)] = &[
    ("linux-x64", "x86_64-unknown-linux-gnu"),
    ("linux-arm64", "aarch64-unknown-linux-gnu"),
    ("linux-x64-musl", "x86_64-unknown-linux-musl"),
    ("linux-arm64-musl", "aarch64-unknown-linux-musl"),
    ("darwin-x64", "x86_64-apple-darwin"),
    ("darwin-arm64", "aarch64-apple-darwin"),
    ("darwin-universal", UNIVERSAL_DARWIN),
    ("windows-x64", "x86_64-pc-windows-gnu"),
    ("windows-arm64", "aarch64-pc-windows-gnullvm"),
];

/// cargo-zigbuild's name for one fat Mach-O holding the x64 and arm64 macOS builds.
pub const UNIVERSAL_DARWIN: &str = "universal2-apple-darwin";

/// A resolved build target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// The name as used in artifact names: the alias when there is one, else the triple.
    pub name: String,
    /// The Rust target triple.
    pub triple: String,
    /// Operating system: `linux`, `darwin`, `windows`, ...
    pub os: String,
    /// Architecture: `x64`, `arm64`, ...
    pub arch: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Why a target name was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownTarget {
    /// What the user wrote.
    pub name: String,
    /// The closest alias, if one is close.
    pub suggestion: Option<&'static str>,
}

impl Target {
    /// Resolves an alias (`linux-x64-musl`), `host`, or a full Rust triple.
    pub fn parse(name: &str, host_triple: &str) -> Result<Target, UnknownTarget> {
        if name == "host" {
            return Target::from_triple(host_triple).ok_or_else(|| UnknownTarget {
                name: name.to_string(),
                suggestion: None,
            });
        }
        if let Some((alias, triple)) = ALIASES.iter().find(|(alias, _)| *alias == name) {
            let mut target = Target::from_triple(triple).expect("alias table holds valid triples");
            target.name = alias.to_string();
            return Ok(target);
        }
        Target::from_triple(name).ok_or_else(|| UnknownTarget {
            name: name.to_string(),
            suggestion: crate::words::did_you_mean(name, ALIASES.iter().map(|(a, _)| *a)),
        })
    }

    /// A target from a full triple, when its architecture and OS are recognised.
    pub fn from_triple(triple: &str) -> Option<Target> {
        let parts: Vec<&str> = triple.split('-').collect();
        // A triple reaches file names, cargo's command line and the generated workflow.
        let part_ok = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        };
        if !(3..=4).contains(&parts.len()) || !parts.iter().all(part_ok) {
            return None;
        }
        let arch = match parts[0] {
            "x86_64" => "x64",
            "universal2" => "universal",
            "aarch64" | "arm64" => "arm64",
            "i686" | "i586" => "x86",
            "armv7" | "arm" => "arm",
            "riscv64gc" => "riscv64",
            "powerpc64le" => "ppc64le",
            "s390x" => "s390x",
            "loongarch64" => "loong64",
            _ => return None,
        };
        let os = if parts.contains(&"linux") {
            "linux"
        } else if parts.contains(&"darwin") {
            "darwin"
        } else if parts.contains(&"windows") {
            "windows"
        } else if parts.contains(&"freebsd") {
            "freebsd"
        } else if parts.contains(&"netbsd") {
            "netbsd"
        } else if parts.contains(&"illumos") {
            "illumos"
        } else {
            return None;
        };
        let name = ALIASES
            .iter()
            .find(|(_, t)| *t == triple)
            .map_or(triple, |(alias, _)| *alias);
        Some(Target {
            name: name.to_string(),
            triple: triple.to_string(),
            os: os.to_string(),
            arch: arch.to_string(),
        })
    }

    /// The Rust targets whose standard library this target needs: both macOS ones for a
    /// universal binary, else its own triple.
    pub fn rust_triples(&self) -> Vec<String> {
        if self.triple == UNIVERSAL_DARWIN {
            vec!["x86_64-apple-darwin".into(), "aarch64-apple-darwin".into()]
        } else {
            vec![self.triple.clone()]
        }
    }

    /// Linux with glibc, where a glibc floor can be pinned.
    pub fn is_gnu_linux(&self) -> bool {
        self.os == "linux" && self.triple.ends_with("-gnu")
    }

    /// File name suffix of executables on this target.
    pub fn exe_suffix(&self) -> &'static str {
        if self.os == "windows" { ".exe" } else { "" }
    }
}

/// The list of aliases, for help texts.
pub fn alias_list() -> String {
    ALIASES
        .iter()
        .map(|(a, _)| format!("`{a}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve() {
        let t = Target::parse("linux-arm64-musl", "x86_64-unknown-linux-gnu").unwrap();
        assert_eq!(t.triple, "aarch64-unknown-linux-musl");
        assert_eq!((t.os.as_str(), t.arch.as_str()), ("linux", "arm64"));
        let w = Target::parse("windows-x64", "x").unwrap();
        assert_eq!(w.exe_suffix(), ".exe");
    }

    #[test]
    fn triples_and_host_resolve_to_aliases() {
        let host = Target::parse("host", "x86_64-unknown-linux-gnu").unwrap();
        assert_eq!(host.name, "linux-x64");
        let t = Target::parse("x86_64-unknown-freebsd", "x").unwrap();
        assert_eq!(
            (t.name.as_str(), t.os.as_str()),
            ("x86_64-unknown-freebsd", "freebsd")
        );
    }

    #[test]
    fn universal_darwin_needs_both_macos_std_libraries() {
        let t = Target::parse("darwin-universal", "x").unwrap();
        assert_eq!((t.os.as_str(), t.arch.as_str()), ("darwin", "universal"));
        assert_eq!(
            t.rust_triples(),
            ["x86_64-apple-darwin", "aarch64-apple-darwin"]
        );
        assert!(Target::parse("linux-arm64", "x").unwrap().is_gnu_linux());
        assert!(
            !Target::parse("linux-arm64-musl", "x")
                .unwrap()
                .is_gnu_linux()
        );
    }

    #[test]
    fn unknown_names_suggest() {
        let err = Target::parse("linux-x64-mussl", "x").unwrap_err();
        assert_eq!(err.suggestion, Some("linux-x64-musl"));
        assert!(Target::parse("plan9", "x").is_err());
    }
}
