//! Pipeline file diagnostics, rendered exactly as users see them (snapshots), and the promise
//! that no input makes `shipit check` panic.

use std::path::Path;

use shipit::commands::render_config_error;
use shipit::config;

fn rendered(fixture: &str) -> String {
    let path = Path::new("tests/fixtures/config").join(fixture);
    match config::load(&path, shipit::commands::PIPELINE) {
        Ok(_) => panic!("{fixture} should not load"),
        Err(config::LoadError::Config(e)) => render_config_error(&e, false),
        Err(e) => panic!("{fixture}: {e}"),
    }
}

/// `text` as a `shipit.toml` of its own (with a Cargo.toml beside it), rendered.
fn rendered_text(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"t\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    let path = dir.path().join("shipit.toml");
    match config::load_str(&path, text.to_string(), shipit::commands::PIPELINE) {
        Ok(_) => panic!("should not load"),
        Err(e) => render_config_error(&e, false),
    }
}

#[test]
fn unknown_key_cycle_and_bad_duration_are_all_reported() {
    let out = rendered("unknown-key-cycle-duration.toml");
    assert!(
        out.contains("unknown-key-cycle-duration.toml:8:1]"),
        "{out}"
    );
    assert!(
        out.contains("unknown-key-cycle-duration.toml:11:10]"),
        "{out}"
    );
    assert!(
        out.contains("unknown-key-cycle-duration.toml:13:11]"),
        "{out}"
    );
    insta::assert_snapshot!(out);
}

#[test]
fn wrong_types_templates_references_and_kinds() {
    insta::assert_snapshot!(rendered("types-and-templates.toml"));
}

#[test]
fn syntax_errors() {
    insta::assert_snapshot!(rendered("syntax.toml"));
}

#[test]
fn version_manifest_self_need_misplaced_option_and_section_typo() {
    insta::assert_snapshot!(rendered("misc.toml"));
}

#[test]
fn the_bundled_pipelines_are_valid() {
    for file in ["pipelines/demo.toml", "pipelines/production.toml"] {
        if let Err(e) = config::load(Path::new(file), shipit::commands::PIPELINE) {
            panic!("{file}: {e:?}");
        }
    }
}

/// Mutated copies of real pipeline files: every one must load or fail with problems, never panic.
#[test]
fn mangled_input_never_panics() {
    let seeds: Vec<Vec<u8>> = [
        "pipelines/demo.toml",
        "tests/fixtures/config/types-and-templates.toml",
    ]
    .iter()
    .map(|f| std::fs::read(f).unwrap())
    .collect();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"[]{}=\"'.,#\n\\ {}%-_azAZ09\xff\xc3";
    let dir = tempfile::tempdir().unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for round in 0..3000 {
        let mut bytes = seeds[round % seeds.len()].clone();
        for _ in 0..(1 + next() % 4) {
            let at = (next() as usize) % bytes.len().max(1);
            match next() % 3 {
                0 => bytes[at] = alphabet[(next() as usize) % alphabet.len()],
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, alphabet[(next() as usize) % alphabet.len()]),
            }
        }
        // Every input is loaded, invalid UTF-8 too (through the file reader that reports it).
        let file = dir.path().join("fuzz.toml");
        std::fs::write(&file, &bytes).unwrap();
        if std::str::from_utf8(&bytes).is_ok() {
            valid += 1;
        } else {
            invalid += 1;
        }
        let result =
            std::panic::catch_unwind(|| match config::load(&file, shipit::commands::PIPELINE) {
                Err(config::LoadError::Config(e)) => {
                    let _ = render_config_error(&e, false);
                }
                Err(config::LoadError::Read { .. } | config::LoadError::Missing { .. }) | Ok(_) => {
                }
            });
        assert!(
            result.is_ok(),
            "panic on input:\n{}",
            String::from_utf8_lossy(&bytes)
        );
    }
    // The test cannot pass by running nothing, or by skipping one kind of input.
    assert_eq!(valid + invalid, 3000);
    assert!(
        valid > 300 && invalid > 300,
        "{valid} valid, {invalid} invalid inputs"
    );
}

/// Real projects (issue 20, point 5): a stage's unknown key suggests that stage's own keys, not
/// every kind's; every option of the wrong type is reported, not only the first.
#[test]
fn stage_problems_are_all_reported_and_suggestions_fit_the_kind() {
    let text = "version = 1\n[stages.build]\nuses = \"cargo\"\nlocked = false\nfooo = 1\n\
                [stages.x]\nrun = \"true\"\nbarr = 2\n\
                [stages.sum]\nuses = \"checksum\"\nneeds = [\"build\"]\nsha512 = 5\nfile = 7\n";
    let out = rendered_text(text);
    let cargo_help = out
        .lines()
        .find(|l| l.contains("expected one of `backoff`, `bins`"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        !cargo_help.contains("`artifacts`"),
        "a sign option suggested for cargo: {out}"
    );
    assert!(
        out.contains("wrong type for `sha512` in stage `sum`"),
        "{out}"
    );
    assert!(
        out.contains("wrong type for `file` in stage `sum`"),
        "{out}"
    );
}

/// `shipit check` validates every section: a bad `[deploy.*]` duration and a bad
/// `[release.docker]` tag come in one run, each located, exit 2.
#[test]
fn check_reports_a_bad_deploy_duration_and_a_bad_image_tag_in_one_run() {
    let (code, stderr) = check_tiny_crate(
        "version = 1\n\n[stages.build]\nuses = \"cargo\"\n\n\
         [release.docker]\nimage = \"127.0.0.1:5000/acme/tiny\"\ntags = [\"{{ version }}+build\"]\n\n\
         [deploy.production]\nimage = \"127.0.0.1:5000/acme/tiny\"\nport = 8080\n\
         router = { haproxy = \"unix:///tmp/x.sock\", backend = \"tiny\" }\n\
         strategy = \"blue-green\"\nhealth = { deadline = \"soon\" }\n",
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("shipit.toml:8:9"), "{stderr}");
    assert!(stderr.contains("is not a valid image tag"), "{stderr}");
    assert!(stderr.contains("shipit.toml:15:23"), "{stderr}");
    assert!(stderr.contains("`soon` is not a duration"), "{stderr}");
    assert!(stderr.contains("has 2 problems"), "{stderr}");
}

/// Each release channel checks its own section through config's seam: an unknown key is
/// reported once (by the schema walk, not again by the channel's deserializer), and the
/// channel's bounds, names and typed values are each located; an unknown channel gets a
/// suggestion from the registered ones.
#[test]
fn release_channels_check_their_own_sections_and_unknown_ones_are_named() {
    let (code, stderr) = check_tiny_crate(
        "version = 1\n\n[release.github]\nrepo = \"acme/tiny\"\nconcurency = 3\nkeep = 0\n\n\
         [release.gitlabb]\nx = 1\n\n\
         [release.docker]\nimage = \"127.0.0.1:5000/acme/tiny\"\nchunk_size = \"9 parsecs\"\n\n\
         [release.homebrew]\ntap = { repo = \"not a repo\" }\n",
    );
    assert_eq!(code, Some(2), "{stderr}");
    for needle in [
        "unknown key `concurency` in `release.github`",
        "did you mean `concurrency`?",
        "`keep` is 0; it must be from 1 to 10000",
        "shipit.toml:6:8",
        "unknown key `gitlabb` in `release`",
        "did you mean `github`?",
        "`chunk_size` of `[release.docker]`: `9 parsecs` is not a size",
        "`not a repo` is not `owner/name`",
        "has 5 problems",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("unknown field"), "{stderr}");
}

/// The npm and Chocolatey channels check names, addresses, tags and variables from the file
/// alone, each problem located, in one run.
#[test]
fn npm_and_chocolatey_sections_report_names_addresses_and_tags_with_locations() {
    let (code, stderr) = check_tiny_crate(
        "version = 1\n\n[release.github]\nrepo = \"acme/tiny\"\n\n\
         [release.npm]\nname = \"Tiny\"\nregistry = \"https://user:pw@npm.example/\"\n\
         tag = \"1.0.0\"\ntoken_env = \"NPM TOKEN\"\naccess = \"restricted\"\n\n\
         [release.chocolatey]\nid = \"-tiny\"\nsource = \"ftp://feed/\"\n\
         tags = [\"two words\"]\nproject_url = \"javascript:alert(1)\"\n",
    );
    assert_eq!(code, Some(2), "{stderr}");
    for needle in [
        "`Tiny` is not an npm package name",
        "shipit.toml:7:8",
        "`https://user:pw@npm.example/` is not a registry address",
        "`1.0.0` reads as a version",
        "`NPM TOKEN` is not an environment variable name",
        "`access = \"restricted\"` needs a scoped `name`",
        "`-tiny` is not a package id",
        "`ftp://feed/` is not a feed address",
        "`two words` is not a tag",
        "`javascript:alert(1)` is not an http(s) address",
        "has 9 problems",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
}

/// The supply-chain kinds and image signing check their options from the file alone: an SBOM
/// stage without formats or needs, a provenance stage without a key, an audit stage without a
/// database or with bad ignore rules, a signing key named twice; each located.
#[test]
fn supply_chain_stages_report_missing_keys_databases_and_bad_ignores_with_locations() {
    let (code, stderr) = check_tiny_crate(
        "version = 1\n\n[stages.build]\nuses = \"cargo\"\n\n\
         [stages.sbom]\nuses = \"sbom\"\nformats = []\n\n\
         [stages.provenance]\nuses = \"provenance\"\nneeds = [\"sbom\"]\n\n\
         [stages.audit]\nuses = \"audit\"\n\
         ignore = [{ id = \"CVE-1\", until = \"someday\", reason = \"\" }]\n\n\
         [release.docker]\nimage = \"127.0.0.1:5000/acme/tiny\"\n\
         sign = { key = { env = \"K\", file = \"k.key\" } }\n",
    );
    assert_eq!(code, Some(2), "{stderr}");
    for needle in [
        "`formats` is empty",
        "an SBOM stage needs the cargo stage that builds the binaries",
        "a provenance stage needs a `key`",
        "an audit stage needs the advisory database: `db`",
        "`CVE-1` is not an advisory id",
        "`until = \"someday\"` is not a date",
        "an ignored advisory needs a `reason`",
        "`sign.key` needs exactly one of `file` and `env`",
        "shipit.toml:8:11",
        "shipit.toml:20:16",
        "has 8 problems",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
}

/// `shipit check` of `pipeline` in a tiny crate: its exit code and stderr (without colour).
fn check_tiny_crate(pipeline: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    crate::common::tiny_crate(dir.path(), "1.0.0");
    std::fs::write(dir.path().join("shipit.toml"), pipeline).unwrap();
    let out = crate::common::shipit(dir.path())
        .arg("check")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (out.status.code(), crate::common::text(&out).1)
}

/// The packager kinds check names, relations, one-line fields and keys from the file alone,
/// every problem located, all in one run.
#[test]
fn package_stages_report_bad_names_relations_and_keys_with_locations() {
    let (code, stderr) = check_tiny_crate(
        "version = 1\n\n[stages.build]\nuses = \"cargo\"\ntargets = [\"linux-x64-musl\"]\n\n\
         [stages.deb]\nuses = \"deb\"\nneeds = [\"build\"]\nname = \"Tiny_Pkg\"\n\
         depends = [\"libc6, evil\"]\nkey = { env = \"K\" }\n\n\
         [stages.rpm]\nuses = \"rpm\"\nneeds = [\"build\"]\ndepends = [\"glibc (>= 2.31)\"]\n\
         maintainer = \"a\\nb\"\n",
    );
    assert_eq!(code, Some(2), "{stderr}");
    for needle in [
        "`Tiny_Pkg` is not a Debian package name",
        "shipit.toml:10:8",
        "relation \"libc6, evil\"",
        "a deb package is not signed itself",
        "`glibc (>= 2.31)` is not `name` or `name OP version`",
        "`maintainer` must be one non-empty line",
        "has 5 problems",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
}

/// What the plan resolves against the project is checked before any stage runs: a version
/// that cannot be mapped, files and units that are not there, a target that is not built; a
/// missing OpenPGP key is exit 2 too.
#[test]
fn package_stages_check_versions_files_units_targets_and_keys_before_anything_runs() {
    let stage = "version = 1\n\n[stages.build]\nuses = \"cargo\"\ntargets = [\"linux-x64-musl\"]\n\n\
         [stages.rpm]\nuses = \"rpm\"\nneeds = [\"build\"]\nmaintainer = \"T <t@example.com>\"\n\
         description = \"tiny\"\nlicense = \"MIT\"\n";
    let (code, stderr) = check_tiny_crate(&format!(
        "{stage}version = \"v{{{{ version }}}}\"\n\
         contents = [{{ src = \"missing.conf\", dst = \"/etc/tiny.conf\", type = \"config\" }}]\n\
         systemd = {{ unit = \"tiny.service\" }}\ntargets = [\"linux-x64-musl\", \"linux-arm64-musl\"]\n"
    ));
    assert_eq!(code, Some(2), "{stderr}");
    for needle in [
        "version `v1.0.0` cannot be a rpm version",
        "`missing.conf` is not a file in the project",
        "`tiny.service` is not a file in the project",
        "`linux-arm64-musl` is not a Linux target of the stages this stage needs",
        "shipit.toml:",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
    let (code, stderr) = check_tiny_crate(&format!(
        "{stage}key = {{ env = \"SHIPIT_TEST_UNSET_PGP_KEY\" }}\n"
    ));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("the signing key variable `SHIPIT_TEST_UNSET_PGP_KEY` is not set"),
        "{stderr}"
    );
}

/// `strategy = "reload"` needs a runtime that swaps a running instance in place: on Docker it
/// is a located error naming the runtimes that can, found by `check` before any deploy.
#[test]
fn reload_on_a_runtime_that_cannot_reload_is_a_located_error() {
    let text = "version = 1\n[deploy.production]\nstrategy = \"reload\"\nimage = \"demo:1\"\n\
                port = 8080\nrouter = { haproxy = \"tcp://127.0.0.1:9\", backend = \"demo\" }\n";
    let out = rendered_text(text);
    assert!(
        out.contains("the docker runtime cannot swap a running instance in place"),
        "{out}"
    );
    assert!(out.contains("shipit.toml:3:12]"), "{out}");
    assert!(out.contains("runtime = \"systemd\""), "{out}");
}

/// `router` names exactly one router, whose value that router checks: none, an unknown key
/// and a bad HAProxy address are each located, in one run.
#[test]
fn a_router_table_naming_no_router_an_unknown_one_or_a_bad_address_is_located() {
    let text = "version = 1\n\
                [deploy.a]\nstrategy = \"rolling\"\nimage = \"demo:1\"\nport = 8080\n\
                router = { backend = \"demo\" }\n\
                [deploy.b]\nstrategy = \"rolling\"\nimage = \"demo:1\"\nport = 8080\n\
                router = { haproxy = \"http://x\", backend = \"demo\", nginx = \"y\" }\n";
    let out = rendered_text(text);
    assert!(
        out.contains("`router` in [deploy.a] names no router"),
        "{out}"
    );
    assert!(out.contains("shipit.toml:6:1]"), "{out}");
    assert!(
        out.contains("`http://x` is not a runtime API address"),
        "{out}"
    );
    assert!(out.contains("shipit.toml:11:22]"), "{out}");
    assert!(out.contains("nginx"), "{out}");
}
