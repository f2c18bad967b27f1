//! The unit template `shipit deploy --init` prints for a systemd environment: what every host
//! installs once, so that instance `<unit>@<name>` runs the release linked at
//! `<root>/instances/<name>` with the environment shipit writes beside it.

use super::Options;

/// The template unit for `app` with `options`, ready to install as `<unit>@.service`.
pub fn template(app: &str, options: &Options) -> String {
    let unit = options.unit.as_deref().unwrap_or(app);
    let root = options.root.as_deref().unwrap_or(app);
    // A relative root is under the ssh user's home: `%h` in a unit.
    let root = if root.starts_with('/') {
        root.trim_end_matches('/').to_string()
    } else {
        format!("%h/{}", root.trim_end_matches('/'))
    };
    let bin = options
        .bins
        .as_ref()
        .and_then(|b| b.first())
        .map_or(app, String::as_str);
    let user = options
        .systemctl
        .as_ref()
        .is_some_and(|words| words.iter().any(|w| w == "--user"));
    let (path, wanted) = if user {
        ("~/.config/systemd/user", "default.target")
    } else {
        ("/etc/systemd/system", "multi-user.target")
    };
    format!(
        "# {path}/{unit}@.service, installed once on every host (then `systemctl daemon-reload`).\n\
         # shipit starts one instance per revision, `{unit}@<name>`, on a port of its own: PORT and\n\
         # BIND come from the instance's environment file, with the [deploy] env.\n\
         [Unit]\n\
         Description={app} %i (deployed by shipit)\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         EnvironmentFile={root}/instances/%i.env\n\
         # Add the service's own arguments after the binary.\n\
         ExecStart={root}/instances/%i/bin/{bin}\n\
         # What `strategy = \"reload\"` sends once `current` names the new release.\n\
         ExecReload=/bin/kill -HUP $MAINPID\n\
         KillSignal=SIGTERM\n\
         TimeoutStopSec=30\n\
         Restart=on-failure\n\
         NoNewPrivileges=yes\n\
         \n\
         [Install]\n\
         WantedBy={wanted}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_names_the_instance_paths_shipit_writes() {
        insta::assert_snapshot!(template("demo", &Options::default()));
        let absolute = Options {
            root: Some("/srv/demo/".into()),
            systemctl: Some(vec!["systemctl".into(), "--user".into()]),
            ..Default::default()
        };
        let text = template("demo", &absolute);
        assert!(text.contains("ExecStart=/srv/demo/instances/%i/bin/demo\n"));
        assert!(text.contains("~/.config/systemd/user/demo@.service"));
    }
}
