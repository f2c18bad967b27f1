//! What Debian and RPM accept as package names, versions, architectures and installed paths,
//! and how a Cargo (semver) version and a Rust target map onto them.

use super::PackageFormat;

/// Checks a package name against the format's grammar; says why not.
pub fn check_name(format: PackageFormat, name: &str) -> Result<(), String> {
    match format {
        // Debian policy 5.6.1: lower case letters, digits, `+ - .`; at least two characters,
        // starting with an alphanumeric.
        PackageFormat::Deb => {
            let ok = name.len() >= 2
                && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "`{name}` is not a Debian package name: two or more of a-z, 0-9, `+`, `-` and `.`, starting with a letter or digit"
                ))
            }
        }
        // rpm: no whitespace or separators a spec file or a path would misread.
        PackageFormat::Rpm => {
            let ok = !name.is_empty()
                && name.len() <= 200
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-._".contains(&b));
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "`{name}` is not an rpm package name: letters, digits, `+`, `-`, `.` and `_`, starting with a letter or digit"
                ))
            }
        }
    }
}

/// Maps a version to the format's upstream version: a semver pre-release becomes a `~` suffix
/// (`1.2.0-rc.1` -> `1.2.0~rc.1`), which both dpkg and rpm sort before `1.2.0`; hyphens inside
/// it become dots. Anything the format cannot hold is refused with the reason.
pub fn map_version(format: PackageFormat, version: &str) -> Result<String, String> {
    let (core, build) = match version.split_once('+') {
        Some((core, build)) => (core, Some(build)),
        None => (version, None),
    };
    let mut mapped = match core.split_once('-') {
        Some((release, pre)) => format!("{release}~{}", pre.replace('-', ".")),
        None => core.to_owned(),
    };
    if let Some(build) = build {
        mapped.push('+');
        mapped.push_str(&build.replace('-', "."));
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"._+~".contains(&b);
    if !mapped.starts_with(|c: char| c.is_ascii_digit()) || !mapped.bytes().all(allowed) {
        return Err(format!(
            "version `{version}` cannot be a {} version: it must start with a digit and hold only letters, digits, `.`, `+`, `~` and `-`",
            format.extension()
        ));
    }
    Ok(mapped)
}

/// Checks a Debian revision / rpm release.
pub fn check_release(release: &str) -> Result<(), String> {
    if !release.is_empty()
        && release.len() <= 64
        && release
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+~".contains(&b))
    {
        Ok(())
    } else {
        Err(format!(
            "release `{release}` must be letters, digits, `.`, `+` and `~` (a Debian revision and an rpm release cannot hold `-`)"
        ))
    }
}

/// Checks an architecture name read from a package or a repository against the format's
/// grammar (Debian: `amd64`, `musl-linux-arm64`, `all`; RPM: `x86_64`, `noarch`); it becomes a
/// folder or file name, so nothing else passes.
pub fn check_arch(format: PackageFormat, arch: &str) -> Result<(), String> {
    let ok = !arch.is_empty()
        && arch.len() <= 64
        && match format {
            PackageFormat::Deb => {
                arch.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && arch
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            }
            PackageFormat::Rpm => arch.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a {} architecture name",
            arch.escape_debug(),
            match format {
                PackageFormat::Deb => "Debian",
                PackageFormat::Rpm => "RPM",
            }
        ))
    }
}

/// The format's name for a Linux target's architecture, or `None` for one it has no name for.
pub fn arch(format: PackageFormat, target: &crate::targets::Target) -> Option<&'static str> {
    let hard_float = target.triple.starts_with("armv7") && target.triple.ends_with("hf");
    let names = match target.arch.as_str() {
        "x64" => ("amd64", "x86_64"),
        "arm64" => ("arm64", "aarch64"),
        "x86" => ("i386", "i686"),
        "arm" if hard_float => ("armhf", "armv7hl"),
        "arm" => ("armel", "armv5tel"),
        "riscv64" => ("riscv64", "riscv64"),
        "ppc64le" => ("ppc64el", "ppc64le"),
        "s390x" => ("s390x", "s390x"),
        "loong64" => ("loong64", "loongarch64"),
        _ => return None,
    };
    Some(match format {
        PackageFormat::Deb => names.0,
        PackageFormat::Rpm => names.1,
    })
}

/// Normalises an installed path: absolute, no `.`/`..` parts, no empty parts, no trailing
/// slash, printable.
pub fn installed_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!(
            "`{path}` must be absolute (it is where the file is installed)"
        ));
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err("`/` itself cannot be installed".into());
    }
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(format!("`{path}` may not hold `.` or `..`"));
    }
    if path.chars().any(|c| c.is_control()) {
        return Err(format!("{path:?} holds a control character"));
    }
    Ok(format!("/{}", parts.join("/")))
}

/// Checks a relation (`libc6 (>= 2.31)`, `foo | bar`): names and versions only, no line
/// breaks or commas that would add fields or relations to the control file.
pub fn check_relation(relation: &str) -> Result<(), String> {
    let ok = !relation.trim().is_empty()
        && relation
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" .+-~:_()<>=|".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "relation {relation:?} may hold names, versions, spaces, `(`, `)`, `<`, `>`, `=` and `|`; list each package as its own item"
        ))
    }
}

/// Parses an octal permission string (`"0644"`, `"755"`), at most `0o7777`.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("mode `{text}` is not octal permission bits (0644, 0755, ...)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use PackageFormat::{Deb, Rpm};

    #[test]
    fn semver_pre_releases_sort_before_the_release() {
        assert_eq!(map_version(Deb, "1.2.0").unwrap(), "1.2.0");
        assert_eq!(map_version(Deb, "1.2.0-rc.1").unwrap(), "1.2.0~rc.1");
        assert_eq!(
            map_version(Rpm, "1.2.0-rc-1+git.5").unwrap(),
            "1.2.0~rc.1+git.5"
        );
        assert!(map_version(Deb, "v1.2").is_err());
        assert!(map_version(Rpm, "1.2 beta").is_err());
        assert!(map_version(Rpm, "1.2\nRelease: 9").is_err());
        // dpkg's order puts the mapped pre-release first (rpm's: `linux_packages::` asks rpm).
        let rc = map_version(Rpm, "1.2.0-rc.1").unwrap();
        assert_eq!(
            crate::package::debian::compare_versions(&format!("{rc}-1"), "1.2.0-1"),
            std::cmp::Ordering::Less
        );
    }

    #[test]
    fn names_follow_each_distribution() {
        assert!(check_name(Deb, "demo-cli").is_ok());
        assert!(check_name(Deb, "Demo").is_err());
        assert!(check_name(Deb, "d").is_err());
        assert!(check_name(Rpm, "Demo_CLI").is_ok());
        assert!(check_name(Rpm, "demo cli").is_err());
        assert!(check_name(Rpm, "-demo").is_err());
    }

    #[test]
    fn installed_paths_are_absolute_and_stay_put() {
        assert_eq!(installed_path("/usr//bin/demo/").unwrap(), "/usr/bin/demo");
        assert!(installed_path("usr/bin/demo").is_err());
        assert!(installed_path("/usr/../etc/shadow").is_err());
        assert!(installed_path("/").is_err());
        assert!(installed_path("/etc/x\ny").is_err());
    }

    #[test]
    fn relations_cannot_add_fields() {
        assert!(check_relation("libc6 (>= 2.31) | musl").is_ok());
        assert!(check_relation("a, b").is_err());
        assert!(check_relation("a\nEssential: yes").is_err());
        assert_eq!(parse_mode("0644").unwrap(), 0o644);
        assert!(parse_mode("0999").is_err());
        assert!(parse_mode("77777").is_err());
    }

    #[test]
    fn architecture_names_from_data_follow_the_grammar() {
        assert!(check_arch(Deb, "musl-linux-arm64").is_ok());
        assert!(check_arch(Rpm, "x86_64").is_ok());
        for bad in ["x/../../..", "", "amd64 ", "a.b", "../x"] {
            assert!(check_arch(Deb, bad).is_err(), "{bad}");
            assert!(check_arch(Rpm, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn architectures_have_each_formats_name() {
        let t = |s: &str| crate::targets::Target::parse(s, "x86_64-unknown-linux-gnu").unwrap();
        assert_eq!(arch(Deb, &t("linux-arm64-musl")), Some("arm64"));
        assert_eq!(arch(Rpm, &t("linux-arm64-musl")), Some("aarch64"));
        assert_eq!(arch(Deb, &t("linux-x64")), Some("amd64"));
        assert_eq!(
            arch(Rpm, &t("armv7-unknown-linux-gnueabihf")),
            Some("armv7hl")
        );
    }
}
