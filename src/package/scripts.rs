//! Maintainer scripts: the user's, with shipit's systemd handling around them, following each
//! distribution's convention (debhelper's `dh_installsystemd` snippets for deb, the
//! `%systemd_post`/`%systemd_preun`/`%systemd_postun_with_restart` macros for rpm).
//!
//! A user script may hold the line `#SHIPIT#` to say where shipit's part goes; without it, the
//! part runs after the user's in `postinst`/`postrm` and before it in `preinst`/`prerm` (the
//! service stops before the user's clean-up and starts after the user's set-up).

use std::collections::BTreeMap;

use super::{PackageError, PackageSpec, Systemd};

/// The token a user script may hold where shipit's part goes.
pub const TOKEN: &str = "#SHIPIT#";

/// The four scripts, by their Debian names, each a whole `/bin/sh` script.
pub fn deb(spec: &PackageSpec) -> Result<BTreeMap<&'static str, String>, PackageError> {
    let ours = spec.systemd.as_ref().map(deb_snippets).unwrap_or_default();
    assemble(spec, ours, true)
}

/// The four scripts, by their Debian names (`preinst` is rpm's `%pre`, ...), each a body for
/// rpm's `/bin/sh`.
pub fn rpm(spec: &PackageSpec) -> Result<BTreeMap<&'static str, String>, PackageError> {
    let ours = spec.systemd.as_ref().map(rpm_snippets).unwrap_or_default();
    assemble(spec, ours, false)
}

fn assemble(
    spec: &PackageSpec,
    mut ours: BTreeMap<&'static str, String>,
    shebang: bool,
) -> Result<BTreeMap<&'static str, String>, PackageError> {
    let user = [
        ("preinst", &spec.scripts.preinst),
        ("postinst", &spec.scripts.postinst),
        ("prerm", &spec.scripts.prerm),
        ("postrm", &spec.scripts.postrm),
    ];
    let mut scripts = BTreeMap::new();
    for (name, path) in user {
        let mine = ours.remove(name).unwrap_or_default();
        let theirs = match path {
            Some(path) => {
                let text = String::from_utf8(super::read(path)?).map_err(|_| {
                    PackageError::Refused(format!("{} is not UTF-8 text", path.display()))
                })?;
                // The shebang is ours: every script runs under /bin/sh.
                let body = match text.strip_prefix("#!") {
                    Some(rest) => rest.split_once('\n').map_or("", |(_, body)| body),
                    None => text.as_str(),
                };
                Some(body.trim_end().to_owned())
            }
            None => None,
        };
        let body = match (theirs, mine.is_empty()) {
            (None, true) => continue,
            (None, false) => mine,
            (Some(theirs), _) if theirs.contains(TOKEN) => theirs.replace(TOKEN, mine.trim_end()),
            (Some(theirs), _) if name == "postinst" || name == "postrm" => {
                format!("{theirs}\n{mine}")
            }
            (Some(theirs), _) => format!("{mine}\n{theirs}"),
        };
        let header = if shebang { "#!/bin/sh\nset -e\n" } else { "" };
        scripts.insert(name, format!("{header}{}\n", body.trim()));
    }
    Ok(scripts)
}

/// `dh_installsystemd`'s snippets. Nothing touches the running system when dpkg installs into
/// another root (`DPKG_ROOT` set) or when systemd is not running.
fn deb_snippets(unit: &Systemd) -> BTreeMap<&'static str, String> {
    let name = crate::quote::sh(&unit.unit);
    let configure = r#"[ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ]"#;
    let mut postinst = String::new();
    if unit.enable {
        postinst.push_str(&format!(
            "if [ -z \"${{DPKG_ROOT:-}}\" ] && {{ {configure}; }}; then\n\
             \t# Removes only the mask left by a removal; was-enabled is true on a first install.\n\
             \tdeb-systemd-helper unmask {name} >/dev/null || true\n\
             \tif deb-systemd-helper --quiet was-enabled {name}; then\n\
             \t\tdeb-systemd-helper enable {name} >/dev/null || true\n\
             \telse\n\
             \t\tdeb-systemd-helper update-state {name} >/dev/null || true\n\
             \tfi\n\
             fi\n"
        ));
    }
    postinst.push_str(&format!(
        "if [ -z \"${{DPKG_ROOT:-}}\" ] && {{ {configure}; }} && [ -d /run/systemd/system ]; then\n\
         \tsystemctl --system daemon-reload >/dev/null || true\n"
    ));
    if unit.start {
        postinst.push_str(&format!(
            "\t# A second argument is the version upgraded from: restart, else start.\n\
             \tif [ -n \"$2\" ]; then _shipit_action=restart; else _shipit_action=start; fi\n\
             \tdeb-systemd-invoke \"$_shipit_action\" {name} >/dev/null || true\n"
        ));
    }
    postinst.push_str("fi\n");
    let prerm = format!(
        "if [ -z \"${{DPKG_ROOT:-}}\" ] && [ \"$1\" = remove ] && [ -d /run/systemd/system ]; then\n\
         \tdeb-systemd-invoke stop {name} >/dev/null || true\n\
         fi\n"
    );
    let postrm = format!(
        "if [ -z \"${{DPKG_ROOT:-}}\" ] && command -v deb-systemd-helper >/dev/null 2>&1; then\n\
         \tif [ \"$1\" = remove ]; then\n\
         \t\tdeb-systemd-helper mask {name} >/dev/null || true\n\
         \tfi\n\
         \tif [ \"$1\" = purge ]; then\n\
         \t\tdeb-systemd-helper purge {name} >/dev/null || true\n\
         \t\tdeb-systemd-helper unmask {name} >/dev/null || true\n\
         \tfi\n\
         fi\n\
         if [ -z \"${{DPKG_ROOT:-}}\" ] && [ -d /run/systemd/system ]; then\n\
         \tsystemctl --system daemon-reload >/dev/null || true\n\
         fi\n"
    );
    BTreeMap::from([("postinst", postinst), ("prerm", prerm), ("postrm", postrm)])
}

/// The expansions of Fedora's systemd scriptlet macros; `$1` counts the installed versions.
fn rpm_snippets(unit: &Systemd) -> BTreeMap<&'static str, String> {
    let name = crate::quote::sh(&unit.unit);
    let mut post = String::from("if [ \"$1\" -eq 1 ]; then\n");
    if unit.enable {
        post.push_str(&format!(
            "\tsystemctl --no-reload enable {name} >/dev/null 2>&1 || :\n"
        ));
    }
    if unit.start {
        post.push_str(&format!(
            "\tif [ -d /run/systemd/system ]; then systemctl start {name} >/dev/null 2>&1 || :; fi\n"
        ));
    }
    post.push_str("\t:\nfi\n");
    let preun = format!(
        "if [ \"$1\" -eq 0 ] && [ -d /run/systemd/system ]; then\n\
         \tsystemctl --no-reload disable --now {name} >/dev/null 2>&1 || :\n\
         fi\n"
    );
    let mut postun = String::from(
        "if [ -d /run/systemd/system ]; then\n\tsystemctl daemon-reload >/dev/null 2>&1 || :\n",
    );
    if unit.start {
        postun.push_str(&format!(
            "\tif [ \"$1\" -ge 1 ]; then systemctl try-restart {name} >/dev/null 2>&1 || :; fi\n"
        ));
    }
    postun.push_str("fi\n");
    BTreeMap::from([("postinst", post), ("prerm", preun), ("postrm", postun)])
}

/// Checks a systemd unit file name: `name.service` and the other unit types, in systemd's
/// character set.
pub fn check_unit_name(name: &str) -> Result<(), String> {
    const TYPES: [&str; 8] = [
        ".service", ".socket", ".timer", ".path", ".target", ".mount", ".slice", ".scope",
    ];
    let ok = TYPES
        .iter()
        .any(|t| name.len() > t.len() && name.ends_with(t))
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.@\\".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a systemd unit file name (`name.service`, `.socket`, `.timer`, ...)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::{Metadata, PackageFormat, UserScripts};

    fn spec(scripts: UserScripts) -> PackageSpec {
        PackageSpec {
            format: PackageFormat::Deb,
            output: "x.deb".into(),
            meta: Metadata::default(),
            entries: vec![],
            systemd: Some(Systemd {
                unit: "demo.service".into(),
                enable: true,
                start: true,
            }),
            scripts,
            mtime: 0,
            static_binaries: false,
            signed_by: None,
            compression: Default::default(),
        }
    }

    #[test]
    fn deb_scripts_enable_start_restart_and_stop_the_unit() {
        let scripts = deb(&spec(UserScripts::default())).unwrap();
        assert_eq!(
            scripts.keys().copied().collect::<Vec<_>>(),
            ["postinst", "postrm", "prerm"]
        );
        let postinst = &scripts["postinst"];
        assert!(postinst.starts_with("#!/bin/sh\nset -e\n"));
        assert!(postinst.contains("deb-systemd-helper enable 'demo.service'"));
        assert!(postinst.contains("_shipit_action=restart"));
        assert!(scripts["prerm"].contains("deb-systemd-invoke stop 'demo.service'"));
        assert!(scripts["postrm"].contains("deb-systemd-helper purge 'demo.service'"));
    }

    #[test]
    fn rpm_scriptlets_count_installed_versions() {
        let scripts = rpm(&spec(UserScripts::default())).unwrap();
        assert!(scripts["postinst"].contains("systemctl --no-reload enable 'demo.service'"));
        assert!(scripts["prerm"].contains("[ \"$1\" -eq 0 ]"));
        assert!(scripts["postrm"].contains("try-restart 'demo.service'"));
        assert!(!scripts["postinst"].starts_with("#!"));
    }

    #[test]
    fn a_user_script_keeps_its_place_around_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("postinst");
        std::fs::write(&path, "#!/bin/bash\nadduser demo\n#SHIPIT#\necho done\n").unwrap();
        let scripts = deb(&spec(UserScripts {
            postinst: Some(path),
            ..Default::default()
        }))
        .unwrap();
        let postinst = &scripts["postinst"];
        assert!(postinst.starts_with("#!/bin/sh\nset -e\nadduser demo\n"));
        let ours = postinst.find("deb-systemd-helper").unwrap();
        assert!(
            postinst.find("adduser").unwrap() < ours && ours < postinst.find("echo done").unwrap()
        );
        assert!(!postinst.contains("#!/bin/bash"));
    }

    #[test]
    fn unit_names_are_checked_and_quoted() {
        assert!(check_unit_name("demo.service").is_ok());
        assert!(check_unit_name("demo@.service").is_ok());
        assert!(check_unit_name("demo").is_err());
        assert!(check_unit_name("x'; rm -rf /;'.service").is_err());
        assert_eq!(crate::quote::sh("a'b"), r"'a'\''b'");
    }
}
