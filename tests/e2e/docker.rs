//! Container images against real parts: Debian's `docker-registry` with htpasswd on
//! 127.0.0.1, results checked with `skopeo` and `docker pull` / `docker run` on the dockerd
//! `.ci/run` starts.

use std::path::Path;

use crate::common::registry::{self, PASSWORD, Registry, docker, require_docker};
use crate::common::{demo_copy, demo_target_dir, git, shipit, text};

/// The demo with a build stage for the two Linux targets and `docker` appended as
/// `[release.docker]`, committed and built.
fn built_demo(docker: &str) -> tempfile::TempDir {
    let dir = committed_demo(docker);
    build(dir.path(), &[], &[]);
    dir
}

fn build(dir: &Path, args: &[&str], env: &[(&str, &str)]) {
    let out = shipit(dir)
        .args(["build", "--pipeline", "pipelines/image.toml"])
        .args(args)
        .envs(env.iter().copied())
        // Its own target folder: relinking the demo test's binaries while that test checks
        // they stay cached failed it (regression: `demo_builds_six_targets..._cached`).
        .env("CARGO_TARGET_DIR", demo_target_dir("0.1.0-docker"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}

/// The demo with an image pipeline (`pipelines/image.toml`), committed.
fn committed_demo(docker: &str) -> tempfile::TempDir {
    let dir = demo_copy();
    std::fs::write(
        dir.path().join("pipelines/image.toml"),
        format!(
            "version = 1\n\n[project]\nname = \"demo\"\ncargo = \"../demo/Cargo.toml\"\ndist = \"../dist\"\n\n\
             [stages.build]\nuses = \"cargo\"\ntargets = [\"linux-x64-musl\", \"linux-arm64-musl\"]\nprofile = \"release\"\n\n\
             [release.docker]\n{docker}\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join(".gitignore"), "dist/\n").unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "demo"]);
    dir
}

fn release(dir: &Path, docker_config: &Path) -> std::process::Output {
    shipit(dir)
        .args(["release", "--pipeline", "pipelines/image.toml"])
        .env("DOCKER_CONFIG", docker_config)
        .output()
        .unwrap()
}

/// `shipit verify --image <registry>/acme/demo:0.1.0 --insecure` with `args`, logged in
/// through `docker_config`.
fn verify_image(
    dir: &Path,
    registry: &Registry,
    docker_config: &Path,
    args: &[&std::ffi::OsStr],
) -> std::process::Output {
    shipit(dir)
        .args([
            "verify",
            "--image",
            &format!("{}/acme/demo:0.1.0", registry.addr),
            "--insecure",
        ])
        .args(args)
        .env("DOCKER_CONFIG", docker_config)
        .output()
        .unwrap()
}

/// The index digest of a published image, then each platform manifest's.
fn image_digests(image: &serde_json::Value) -> Vec<String> {
    let mut digests = vec![image["digest"].as_str().unwrap().to_owned()];
    digests.extend(
        image["platforms"]
            .as_object()
            .unwrap()
            .values()
            .map(|d| d.as_str().unwrap().to_owned()),
    );
    digests
}

fn published(dir: &Path) -> serde_json::Value {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("dist/manifest.json")).unwrap())
            .unwrap();
    manifest["published"]["docker"][0].clone()
}

#[test]
fn the_demo_image_runs_on_both_platforms_and_a_second_push_sends_nothing() {
    require_docker();
    let registry = Registry::start();
    let dir = built_demo(&format!(
        "image = \"{}/acme/demo\"\ninsecure = true\nports = [8080]\ntags = [\"{{{{ version }}}}\", \"{{{{ major }}}}.{{{{ minor }}}}\", \"latest\"]",
        registry.addr
    ));
    let config = registry.docker_config(PASSWORD);

    let out = release(dir.path(), config.path());
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let first = published(dir.path());
    assert_eq!(first["tags"], serde_json::json!(["0.1.0", "0.1", "latest"]));
    assert!(
        first["bytes_uploaded"].as_u64().unwrap() > 100_000,
        "{first}"
    );

    let index = registry.raw_manifest("acme/demo:0.1.0");
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let mut platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    platforms.sort();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    assert_eq!(
        index["annotations"]["org.opencontainers.image.version"],
        "0.1.0"
    );
    let digest = first["digest"].as_str().unwrap();
    for tag in ["0.1", "latest"] {
        let out = registry.skopeo(&[
            "inspect",
            "--format",
            "{{.Digest}}",
            &format!("docker://{}/acme/demo:{tag}", registry.addr),
        ]);
        assert_eq!(text(&out).0.trim(), digest, "{tag}: {:?}", text(&out));
    }

    // The amd64 image runs under dockerd and prints the demo's version.
    let image = format!("{}/acme/demo:0.1.0", registry.addr);
    let pull = docker(
        config.path(),
        &["pull", "--platform", "linux/amd64", &image],
    );
    assert!(pull.status.success(), "{:?}", text(&pull));
    let run = docker(
        config.path(),
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--platform",
            "linux/amd64",
            &image,
            "--version",
        ],
    );
    assert_eq!(text(&run).0.trim(), "demo 0.1.0", "{:?}", text(&run));
    let inspect = docker(
        config.path(),
        &[
            "image",
            "inspect",
            "--format",
            "{{.Config.User}} {{json .Config.ExposedPorts}}",
            &image,
        ],
    );
    assert_eq!(text(&inspect).0.trim(), r#"65532:65532 {"8080/tcp":{}}"#);

    // The arm64 manifest's binary is an aarch64 ELF.
    let copy = tempfile::tempdir().unwrap();
    let out = registry.skopeo(&[
        "copy",
        "--override-arch",
        "arm64",
        "--override-variant",
        "v8",
        &format!("docker://{image}"),
        &format!("dir:{}", copy.path().display()),
    ]);
    assert!(out.status.success(), "{:?}", text(&out));
    let binary = registry::file_in_top_layer(copy.path(), "usr/local/bin/demo");
    let header = shipit::binfmt::parse(&binary).unwrap();
    assert_eq!(
        header,
        shipit::binfmt::expected(&shipit::targets::Target::parse("linux-arm64-musl", "x").unwrap())
    );

    // Again, with nothing changed and the image assembled anew: the same digests, every blob
    // is there, no blob byte is sent.
    std::fs::remove_dir_all(dir.path().join("dist/oci")).unwrap();
    let out = release(dir.path(), config.path());
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let stderr = text(&out).1;
    assert!(
        stderr.contains("4 blobs, 0 uploaded (0 B), 0 mounted, 4 already present"),
        "{stderr}"
    );
    let second = published(dir.path());
    assert_eq!(
        second["digest"], first["digest"],
        "the image is reproducible"
    );
    assert_eq!(second["bytes_uploaded"], 0);
    assert_eq!(second["blobs_uploaded"], 0);

    assert!(
        stderr.contains("published files: every one matches the manifest"),
        "{stderr}"
    );

    // `latest` moved to one platform's image behind shipit's back: `--check` names the tag.
    let creds = "--dest-creds=shipit:".to_string() + PASSWORD;
    let out = registry.skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &creds,
        &format!("docker://{}/acme/demo:0.1.0", registry.addr),
        &format!("docker://{}/acme/demo:latest", registry.addr),
    ]);
    assert!(out.status.success(), "{:?}", text(&out));
    let out = shipit(dir.path())
        .args(["release", "--check", "--pipeline", "pipelines/image.toml"])
        .env("DOCKER_CONFIG", config.path())
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let repository = format!("{}/acme/demo", registry.addr);
    assert!(
        stderr.contains(&format!(
            "docker: {repository}:latest differs: published as {}",
            first["digest"].as_str().unwrap()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains(":0.1.0 differs"), "{stderr}");
}

#[test]
fn a_wrong_password_names_the_registry_not_the_password_and_tags_nothing() {
    let registry = Registry::start();
    let dir = built_demo(&format!(
        "image = \"{}/acme/refused\"\ninsecure = true",
        registry.addr
    ));
    let wrong = "not-the-Passw0rd";
    let config = registry.docker_config(wrong);
    let out = release(dir.path(), config.path());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: pushing {}/acme/refused\n  Caused by: {} refused the credentials for `shipit`",
            registry.addr, registry.addr
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains(wrong) && !stdout.contains(wrong),
        "{stderr}"
    );
    let tags = registry.skopeo(&[
        "list-tags",
        &format!("docker://{}/acme/refused", registry.addr),
    ]);
    assert!(
        !tags.status.success(),
        "the repository exists: {:?}",
        text(&tags)
    );
    assert!(
        text(&tags).1.contains("404 (Not Found)"),
        "{:?}",
        text(&tags)
    );
}

#[test]
fn an_image_on_a_base_mounts_the_base_layers() {
    require_docker();
    let registry = Registry::start();
    let config = registry.docker_config(PASSWORD);
    // A base image built locally (nothing can be pulled) and pushed with the docker CLI.
    let base_dir = tempfile::tempdir().unwrap();
    std::fs::write(base_dir.path().join("marker"), "base\n").unwrap();
    std::fs::write(
        base_dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY marker /etc/base-marker\nENV FROM_BASE=1\nUSER 1000\n",
    )
    .unwrap();
    let base = format!("{}/acme/base:1", registry.addr);
    let build = std::process::Command::new("docker")
        .arg("--config")
        .arg(config.path())
        .args(["build", "-q", "-t", &base])
        .arg(base_dir.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(build.status.success(), "{:?}", text(&build));
    let push = docker(config.path(), &["push", "-q", &base]);
    assert!(push.status.success(), "{:?}", text(&push));

    let dir = built_demo(&format!(
        "image = \"{}/acme/on-base\"\nbase = \"{base}\"\nplatforms = [\"linux-x64-musl\"]\ninsecure = true",
        registry.addr
    ));
    let out = release(dir.path(), config.path());
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert!(
        text(&out).1.contains("2 blobs, 1 uploaded")
            || text(&out).1.contains("3 blobs, 2 uploaded"),
        "{:?}",
        text(&out)
    );
    assert!(text(&out).1.contains("1 mounted"), "{:?}", text(&out));
    let image = format!("{}/acme/on-base:0.1.0", registry.addr);
    let pull = docker(config.path(), &["pull", &image]);
    assert!(pull.status.success(), "{:?}", text(&pull));
    let inspect = docker(
        config.path(),
        &[
            "image",
            "inspect",
            "--format",
            "{{.Config.User}} {{json .Config.Env}} {{len .RootFS.Layers}}",
            &image,
        ],
    );
    assert_eq!(
        text(&inspect).0.trim(),
        r#"1000 ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","FROM_BASE=1"] 2"#
    );
}

#[test]
fn a_dockerfile_builds_through_dockerd_and_pushes() {
    require_docker();
    let registry = Registry::start();
    let config = registry.docker_config(PASSWORD);
    let dir = built_demo(&format!(
        "image = \"{}/acme/from-dockerfile\"\ninsecure = true\ndockerfile = \"Dockerfile\"\ncontext = \"..\"\nplatforms = [\"linux/amd64\"]\nbuild_args = {{ VERSION = \"{{{{ version }}}}\" }}",
        registry.addr
    ));
    // The classic builder keeps the platform on `FROM scratch` only if files come first.
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY dist/linux-x64-musl/demo /usr/local/bin/demo\nARG VERSION\nLABEL demo.version=${VERSION}\nENTRYPOINT [\"/usr/local/bin/demo\"]\n",
    )
    .unwrap();
    std::fs::write(dir.path().join(".dockerignore"), ".git\ndemo/target\n").unwrap();
    let out = release(dir.path(), config.path());
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let image = format!("{}/acme/from-dockerfile:0.1.0", registry.addr);
    let pull = docker(config.path(), &["pull", &image]);
    assert!(pull.status.success(), "{:?}", text(&pull));
    let run = docker(
        config.path(),
        &["run", "--rm", "--network", "none", &image, "--version"],
    );
    assert_eq!(text(&run).0.trim(), "demo 0.1.0", "{:?}", text(&run));
    let label = docker(
        config.path(),
        &[
            "image",
            "inspect",
            "--format",
            "{{index .Config.Labels \"demo.version\"}} {{index .Config.Labels \"org.opencontainers.image.revision\"}}",
            &image,
        ],
    );
    let labels = text(&label).0;
    assert!(
        labels.starts_with("0.1.0 ") && labels.trim().len() == 46,
        "{labels}"
    );

    // A Dockerfile that fails says so, with the engine's words, and pushes nothing new.
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY no-such-file /x\n",
    )
    .unwrap();
    let out = release(dir.path(), config.path());
    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: the Dockerfile build for linux/amd64 failed:"),
        "{stderr}"
    );
    assert!(stderr.contains("no-such-file"), "{stderr}");
}

#[test]
fn tags_and_platforms_are_checked_before_anything_is_uploaded() {
    let dir = committed_demo(
        "image = \"127.0.0.1:9/acme/demo\"\ninsecure = true\ntags = [\"{{ version }}+build\"]",
    );
    // A tag no version can make valid is refused as soon as the file is read (here by
    // `build`, as by `check`), before anything is built or uploaded.
    let out = shipit(dir.path())
        .args(["build", "--pipeline", "pipelines/image.toml"])
        .output()
        .unwrap();
    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tag `{{ version }}+build` gives `1.2.3+build` is not a valid image tag: `+` is not allowed"), "{stderr}");
    assert!(stderr.contains("image.toml:16:9"), "{stderr}");

    let pipeline = dir.path().join("pipelines/image.toml");
    let text_now = std::fs::read_to_string(&pipeline).unwrap();
    std::fs::write(
        &pipeline,
        text_now.replace(
            "tags = [\"{{ version }}+build\"]",
            "platforms = [\"linux-arm64-mus\"]",
        ),
    )
    .unwrap();
    build(dir.path(), &[], &[]);
    let out = release(dir.path(), dir.path());
    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown platform `linux-arm64-mus` (did you mean `linux-arm64-musl`?)"),
        "{stderr}"
    );
}

#[test]
fn a_registry_that_wants_tokens_gets_them_from_its_realm() {
    let registry = Registry::start_with_tokens();
    let dir = built_demo(&format!(
        "image = \"{}/acme/tokens\"\nplatforms = [\"linux-x64-musl\"]\ninsecure = true\nchunk_size = \"64KiB\"",
        registry.addr
    ));
    let config = registry.docker_config(PASSWORD);
    let out = release(dir.path(), config.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{:?}\n{}",
        text(&out),
        registry.log()
    );
    let tokens = registry.tokens.as_ref().unwrap();
    let requests = tokens.requests.lock().unwrap().clone();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r.authenticated && r.service == "shipit-test-registry"),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.scopes == ["repository:acme/tokens:pull,push"]),
        "{requests:?}"
    );
    // Blobs over 64 KiB went up in chunks.
    assert!(
        registry
            .log()
            .contains("\"PATCH /v2/acme/tokens/blobs/uploads/"),
        "{}",
        registry.log()
    );
    let out = registry.skopeo(&[
        "copy",
        &format!("docker://{}/acme/tokens:0.1.0", registry.addr),
        &format!("dir:{}", tempfile::tempdir().unwrap().path().display()),
    ]);
    assert!(out.status.success(), "{:?}", text(&out));

    let wrong = registry.docker_config("wrong-password-123");
    let out = release(dir.path(), wrong.path());
    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} refused the credentials for `shipit`",
            registry.addr
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-password-123"), "{stderr}");
}

#[test]
fn nightly_images_beyond_keep_are_deleted() {
    let registry = Registry::start();
    let config = registry.docker_config(PASSWORD);
    let dir = committed_demo(&format!(
        "image = \"{}/acme/nightly\"\nplatforms = [\"linux-x64-musl\"]\ninsecure = true\nkeep = 2",
        registry.addr
    ));
    let day = |n: u64| (1_795_000_000 + n * 86_400).to_string();
    for n in 1..=3 {
        let epoch = day(n);
        let env = [("SOURCE_DATE_EPOCH", epoch.as_str())];
        build(dir.path(), &["--nightly"], &env);
        let out = shipit(dir.path())
            .args(["release", "--nightly", "--pipeline", "pipelines/image.toml"])
            .env("DOCKER_CONFIG", config.path())
            .envs(env)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
        if n == 3 {
            assert!(
                text(&out).1.contains("deleted 1 older nightly image from"),
                "{:?}",
                text(&out)
            );
        }
    }
    let out = registry.skopeo(&[
        "list-tags",
        &format!("docker://{}/acme/nightly", registry.addr),
    ]);
    let tags: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut tags: Vec<String> = tags["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    tags.sort();
    assert_eq!(tags.len(), 3, "{tags:?}");
    assert_eq!(tags[2], "nightly");
    // Nights 2 and 3 are 2026-11-20 and 2026-11-21 (UTC); the first night is gone.
    assert!(
        tags[0].starts_with("0.1.0-nightly.20261120.")
            && tags[1].starts_with("0.1.0-nightly.20261121."),
        "{tags:?}"
    );
    let nightly = registry.skopeo(&[
        "inspect",
        "--format",
        "{{.Digest}}",
        &format!("docker://{}/acme/nightly:nightly", registry.addr),
    ]);
    let newest = registry.skopeo(&[
        "inspect",
        "--format",
        "{{.Digest}}",
        &format!("docker://{}/acme/nightly:{}", registry.addr, tags[1]),
    ]);
    assert_eq!(text(&nightly).0, text(&newest).0);
}

/// The tags of `repository` in `registry`, read directly (not through any proxy); none when
/// the repository does not exist.
fn tags_of(registry: &Registry, repository: &str) -> Vec<String> {
    let out = registry.skopeo(&[
        "list-tags",
        &format!("docker://{}/{repository}", registry.addr),
    ]);
    if !out.status.success() {
        assert!(text(&out).1.contains("404"), "{:?}", text(&out));
        return Vec::new();
    }
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list["Tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A push that fails part-way (a blob cut off mid-body, then a tag refused) leaves no tag on
/// half an image; once the registry answers again, a re-run sends what is missing and tags.
#[test]
fn a_push_failing_part_way_leaves_no_tag_and_a_rerun_completes_it() {
    use crate::common::proxy::{Failure, Proxy, Rule};
    let registry = Registry::start();
    // Two blob uploads get through; every later one is cut off after 1 KiB.
    let proxy = Proxy::start(
        &registry.addr,
        vec![Rule {
            method: "PUT",
            path_has: "/blobs/uploads/",
            path_lacks: "",
            pass: 2,
            failure: Failure::CutAfter(1024),
        }],
    );
    let dir = built_demo(&format!(
        "image = \"{}/acme/half\"\ninsecure = true\nmax_retry_time = \"2s\"\ntags = [\"{{{{ version }}}}\", \"latest\"]",
        proxy.addr
    ));
    let config = registry.docker_config_at(&proxy.addr, PASSWORD);
    let out = release(dir.path(), config.path());
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert!(proxy.failed() > 0, "{:#?}", proxy.log());
    assert!(
        proxy
            .log()
            .iter()
            .any(|l| l.contains("/blobs/uploads/") && l.ends_with("201")),
        "no blob landed, so nothing was half-pushed: {:#?}",
        proxy.log()
    );
    assert_eq!(tags_of(&registry, "acme/half"), Vec::<String>::new());

    // Every blob and manifest lands, but the registry refuses the first tag.
    proxy.set_rules(vec![Rule {
        method: "PUT",
        path_has: "/manifests/",
        path_lacks: "/manifests/sha256:",
        pass: 0,
        failure: Failure::Status(500),
    }]);
    let out = release(dir.path(), config.path());
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert!(proxy.failed() > 0, "{:#?}", proxy.log());
    assert_eq!(tags_of(&registry, "acme/half"), Vec::<String>::new());

    // The registry answers again: the re-run completes the push and tags it.
    proxy.set_rules(Vec::new());
    let out = release(dir.path(), config.path());
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let mut tags = tags_of(&registry, "acme/half");
    tags.sort();
    assert_eq!(tags, ["0.1.0", "latest"]);
}

/// Rewrites the `[release.docker]` section of the committed demo's image pipeline.
fn set_docker_section(dir: &Path, docker: &str) {
    let path = dir.join("pipelines/image.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let head = text.split("[release.docker]").next().unwrap();
    std::fs::write(&path, format!("{head}[release.docker]\n{docker}\n")).unwrap();
}

/// A `docker-credential-shipittest` helper on a PATH of its own, which knows the test user's
/// password for `server` only (as `docker login` with a helper stores it).
fn credential_helper(server: &str) -> (tempfile::TempDir, String) {
    use std::os::unix::fs::PermissionsExt;
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-shipittest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread -r server\nif [ \"$server\" = '{server}' ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{}\",\"Secret\":\"{}\"}}' \"$server\"\nelse\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
            registry::USER,
            PASSWORD
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (bin, path)
}

/// Every credential source the README lists gets an image pushed: pipeline `auth`,
/// `SHIPIT_REGISTRY_*`, Docker's `credHelpers` and `credsStore`, and an identity token
/// exchanged through OAuth2; an image list goes to every registry in it.
#[test]
fn every_credential_source_pushes_and_an_image_list_reaches_each_registry() {
    use crate::common::token_service::IDENTITY_TOKEN;
    let (a, b) = (Registry::start(), Registry::start());
    let tokens = Registry::start_with_tokens();
    let dir = built_demo(&format!(
        "image = \"{}/acme/first\"\ninsecure = true",
        a.addr
    ));
    let empty = tempfile::tempdir().unwrap();
    let run = |docker: &str, config: &Path, env: &[(&str, &str)]| {
        set_docker_section(dir.path(), docker);
        let out = shipit(dir.path())
            .args(["release", "--pipeline", "pipelines/image.toml"])
            .env("DOCKER_CONFIG", config)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{docker}: {stdout}{stderr}");
        assert!(!stderr.contains(PASSWORD), "{stderr}");
        stderr
    };
    let tagged = |registry: &Registry, repository: &str| {
        assert!(
            tags_of(registry, repository).contains(&"0.1.0".to_string()),
            "{repository} on {} has no 0.1.0",
            registry.addr
        );
    };

    // The pipeline's `auth`, with the password from the environment, for both registries.
    run(
        &format!(
            "image = [\"{}/acme/piped\", \"{}/acme/piped\"]\ninsecure = true\nauth = {{ username = \"{}\", password_env = \"REGISTRY_PW\" }}",
            a.addr,
            b.addr,
            registry::USER
        ),
        empty.path(),
        &[("REGISTRY_PW", PASSWORD)],
    );
    tagged(&a, "acme/piped");
    tagged(&b, "acme/piped");

    // SHIPIT_REGISTRY_USERNAME / SHIPIT_REGISTRY_PASSWORD.
    run(
        &format!(
            "image = [\"{}/acme/env\", \"{}/acme/env\"]\ninsecure = true",
            a.addr, b.addr
        ),
        empty.path(),
        &[
            ("SHIPIT_REGISTRY_USERNAME", registry::USER),
            ("SHIPIT_REGISTRY_PASSWORD", PASSWORD),
        ],
    );
    tagged(&a, "acme/env");
    tagged(&b, "acme/env");

    // A credential helper named for one registry (`credHelpers`), then as the default store.
    let (_bin_a, path_a) = credential_helper(&a.addr);
    let helpers = tempfile::tempdir().unwrap();
    std::fs::write(
        helpers.path().join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"shipittest"}}}}"#, a.addr),
    )
    .unwrap();
    run(
        &format!("image = \"{}/acme/helper\"\ninsecure = true", a.addr),
        helpers.path(),
        &[("PATH", path_a.as_str())],
    );
    tagged(&a, "acme/helper");
    let (_bin_b, path_b) = credential_helper(&b.addr);
    let store = tempfile::tempdir().unwrap();
    std::fs::write(
        store.path().join("config.json"),
        r#"{"credsStore":"shipittest"}"#,
    )
    .unwrap();
    run(
        &format!("image = \"{}/acme/store\"\ninsecure = true", b.addr),
        store.path(),
        &[("PATH", path_b.as_str())],
    );
    tagged(&b, "acme/store");

    // An identity token, exchanged for access tokens at the registry's realm.
    let identity = tempfile::tempdir().unwrap();
    std::fs::write(
        identity.path().join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"identitytoken":"{IDENTITY_TOKEN}"}}}}}}"#,
            tokens.addr
        ),
    )
    .unwrap();
    let stderr = run(
        &format!("image = \"{}/acme/identity\"\ninsecure = true", tokens.addr),
        identity.path(),
        &[],
    );
    assert!(!stderr.contains(IDENTITY_TOKEN), "{stderr}");
    // shipit's token requests (skopeo's own checks come after, with Basic credentials).
    let requests = tokens
        .tokens
        .as_ref()
        .unwrap()
        .requests
        .lock()
        .unwrap()
        .clone();
    tagged(&tokens, "acme/identity");
    assert!(
        !requests.is_empty() && requests.iter().all(|r| r.oauth && r.authenticated),
        "{requests:?}"
    );
}

/// `docker://<registry>/acme/demo:<tag>` copied by skopeo into a `dir:` folder under `work`:
/// the folder (blobs named by their hex digest) and its manifest.
fn copy_tag(
    registry: &Registry,
    tag: &str,
    work: &Path,
) -> (std::path::PathBuf, serde_json::Value) {
    let copied = work.join(tag);
    let out = registry.skopeo(&[
        "copy",
        &format!("docker://{}/acme/demo:{tag}", registry.addr),
        &format!("dir:{}", copied.display()),
    ]);
    assert!(out.status.success(), "{tag}: {:?}", text(&out));
    let manifest =
        serde_json::from_slice(&std::fs::read(copied.join("manifest.json")).unwrap()).unwrap();
    (copied, manifest)
}

/// `shipit keygen --cosign` in `dir` with `password`: (cosign.key, cosign.pub).
fn cosign_keys(dir: &Path, password: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let out = shipit(dir)
        .args(["keygen", "--cosign"])
        .env("SHIPIT_SIGNING_PASSWORD", password)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    (dir.join("cosign.key"), dir.join("cosign.pub"))
}

#[test]
fn a_cosign_key_file_opens_with_the_documented_scrypt_and_secretbox_parameters() {
    crate::common::require("python3");
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = cosign_keys(dir.path(), "pass phrase");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Written from cosign's description of the format (sigstore's `encrypted` package): PEM
    // "ENCRYPTED SIGSTORE PRIVATE KEY" around JSON; scrypt N=32768 r=8 p=1 over a 32-byte salt
    // gives the 32-byte NaCl secretbox key; the box (24-byte nonce) holds the PKCS#8 DER of an
    // ECDSA P-256 key, whose public half is cosign.pub.
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, json, base64, hashlib\n\
             import nacl.secret\n\
             from cryptography.hazmat.primitives import serialization\n\
             from cryptography.hazmat.primitives.asymmetric import ec\n\
             text = open(sys.argv[1]).read()\n\
             assert text.startswith('-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\\n'), text[:60]\n\
             body = ''.join(l for l in text.splitlines() if not l.startswith('-----'))\n\
             data = json.loads(base64.b64decode(body))\n\
             assert data['kdf']['name'] == 'scrypt' and data['kdf']['params'] == {'N': 32768, 'r': 8, 'p': 1}, data['kdf']\n\
             assert data['cipher']['name'] == 'nacl/secretbox'\n\
             salt = base64.b64decode(data['kdf']['salt']); nonce = base64.b64decode(data['cipher']['nonce'])\n\
             assert len(salt) == 32 and len(nonce) == 24\n\
             key = hashlib.scrypt(sys.argv[3].encode(), salt=salt, n=32768, r=8, p=1, maxmem=64*1024*1024, dklen=32)\n\
             der = nacl.secret.SecretBox(key).decrypt(base64.b64decode(data['ciphertext']), nonce)\n\
             private = serialization.load_der_private_key(der, None)\n\
             assert isinstance(private.curve, ec.SECP256R1)\n\
             mine = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)\n\
             assert mine.decode().strip() == open(sys.argv[2]).read().strip(), (mine, open(sys.argv[2]).read())\n",
        )
        .arg(&key)
        .arg(&public)
        .arg("pass phrase")
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
}

#[test]
fn signed_images_carry_cosign_signatures_that_openssl_accepts_and_verify_checks() {
    require_docker();
    crate::common::require("openssl");
    let registry = Registry::start();
    // The image section, then an SBOM stage (its documents are attached to the images).
    let dir = built_demo(&format!(
        "image = \"{}/acme/demo\"\ninsecure = true\n\
         sign = {{ key = {{ env = \"COSIGN_KEY\", password_env = \"COSIGN_PASSWORD\" }} }}\n\n\
         [stages.sbom]\nuses = \"sbom\"\nneeds = [\"build\"]",
        registry.addr
    ));
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = cosign_keys(keys.path(), "s3cret-pass");
    let key_text = std::fs::read_to_string(&key).unwrap();
    let config = registry.docker_config(PASSWORD);
    let release = |password: &str| {
        shipit(dir.path())
            .args(["release", "--pipeline", "pipelines/image.toml"])
            .env("DOCKER_CONFIG", config.path())
            .env("COSIGN_KEY", &key_text)
            .env("COSIGN_PASSWORD", password)
            .output()
            .unwrap()
    };

    // A wrong password stops the release before anything is pushed.
    let out = release("not-the-right-one");
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(
        text(&out).1.contains("wrong password for the cosign key"),
        "{:?}",
        text(&out)
    );
    assert!(
        registry
            .skopeo(&[
                "inspect",
                "--raw",
                &format!("docker://{}/acme/demo:0.1.0", registry.addr)
            ])
            .status
            .code()
            != Some(0)
    );

    let out = release("s3cret-pass");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(!format!("{stdout}{stderr}").contains("s3cret-pass"));
    let image = published(dir.path());
    let digests = image_digests(&image);
    assert_eq!(digests.len(), 3, "{image}");
    assert_eq!(image["signatures"].as_array().unwrap().len(), 3, "{image}");

    // Each digest's signature tag holds a payload naming that digest, and openssl accepts the
    // signature over it with the public key.
    let work = tempfile::tempdir().unwrap();
    for digest in &digests {
        let tag = digest.replacen(':', "-", 1) + ".sig";
        let (copied, manifest) = copy_tag(&registry, &tag, work.path());
        let layer = &manifest["layers"][0];
        assert_eq!(
            layer["mediaType"],
            "application/vnd.dev.cosign.simplesigning.v1+json"
        );
        let payload_path = copied.join(
            layer["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        );
        let payload: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&payload_path).unwrap()).unwrap();
        assert_eq!(
            payload["critical"]["image"]["docker-manifest-digest"],
            digest.as_str()
        );
        assert_eq!(
            payload["critical"]["identity"]["docker-reference"],
            format!("{}/acme/demo", registry.addr)
        );
        assert_eq!(
            payload["critical"]["type"],
            "cosign container image signature"
        );
        use base64::Engine;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(
                layer["annotations"]["dev.cosignproject.cosign/signature"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        let sig_path = work.path().join(format!("{tag}.der"));
        std::fs::write(&sig_path, signature).unwrap();
        let openssl = std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(&public)
            .arg("-signature")
            .arg(&sig_path)
            .arg(&payload_path)
            .output()
            .unwrap();
        assert!(
            openssl.status.success() && text(&openssl).0.contains("Verified OK"),
            "{tag}: {:?}",
            text(&openssl)
        );
    }

    // Each platform manifest has its target's SBOMs attached, as `cosign attach sbom` does.
    assert_eq!(image["sboms"].as_array().unwrap().len(), 2, "{image}");
    for (platform, target) in [
        ("linux/amd64", "linux-x64-musl"),
        ("linux/arm64", "linux-arm64-musl"),
    ] {
        // arm64 is `linux/arm64/v8`.
        let digest = image["platforms"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(key, _)| key.starts_with(platform))
            .and_then(|(_, d)| d.as_str())
            .unwrap();
        let tag = digest.replacen(':', "-", 1) + ".sbom";
        let (copied, manifest) = copy_tag(&registry, &tag, work.path());
        let mut found = Vec::new();
        for layer in manifest["layers"].as_array().unwrap() {
            let bytes = std::fs::read(
                copied.join(
                    layer["digest"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches("sha256:"),
                ),
            )
            .unwrap();
            let (media_type, ext) = match layer["mediaType"].as_str().unwrap() {
                "application/vnd.cyclonedx+json" => ("cdx", ".cdx.json"),
                "application/spdx+json" => ("spdx", ".spdx.json"),
                other => panic!("{other}"),
            };
            let file = dir.path().join(format!("dist/demo-0.1.0-{target}{ext}"));
            assert_eq!(bytes, std::fs::read(&file).unwrap(), "{tag}: {media_type}");
            found.push(media_type);
        }
        found.sort();
        assert_eq!(found, ["cdx", "spdx"], "{tag}");
    }

    // shipit verify --image checks the index and both platform manifests.
    let verify = |key: &Path| {
        verify_image(
            dir.path(),
            &registry,
            config.path(),
            &["--key".as_ref(), key.as_os_str()],
        )
    };
    let out = verify(&public);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout.matches("ok     image signature").count(),
        3,
        "{stdout}"
    );

    // Again: nothing new is signed, the signature tags keep their digests.
    let signature_manifests = || -> Vec<String> {
        digests
            .iter()
            .map(|d| {
                registry
                    .raw_manifest(&format!("acme/demo:{}.sig", d.replacen(':', "-", 1)))
                    .to_string()
            })
            .collect()
    };
    let before = signature_manifests();
    let out = release("s3cret-pass");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stderr.matches("already signed").count(), 3, "{stderr}");
    assert_eq!(before, signature_manifests());

    // Another key's public half finds no valid signature: exit 1, each digest named.
    let other = tempfile::tempdir().unwrap();
    let (_, other_public) = cosign_keys(other.path(), "x");
    let out = verify(&other_public);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(
        stdout.matches("FAILED image signature").count(),
        3,
        "{stdout}"
    );
    assert!(stdout.contains("a signature by another key"), "{stdout}");
}

/// Images signed keyless (`sign = { sigstore = ... }`) against the Sigstore stand-ins: each
/// digest's signature image holds cosign's keyless layer (signature, certificate, chain,
/// Rekor's promise) and the whole bundle, which the Sigstore project's verifier accepts over
/// the payload; `shipit verify --image` checks them by identity and refuses another; a second
/// release adds no signature; `release --check` finds them holding.
#[test]
fn images_signed_keyless_verify_by_identity_and_a_rerun_adds_no_signature() {
    require_docker();
    crate::common::require("sigstore");
    use crate::common::sigstore::{ISSUER, REQUEST_TOKEN, Sigstore, identity};
    let registry = Registry::start();
    let sigstore = Sigstore::start();
    let dir = built_demo(&format!(
        "image = \"{}/acme/demo\"\ninsecure = true\n\
         sign = {{ sigstore = {{ fulcio = \"{}\", rekor = \"{}\", trusted_root = \"trusted_root.json\" }} }}\n",
        registry.addr, sigstore.fulcio, sigstore.rekor
    ));
    let root_file = dir.path().join("pipelines/trusted_root.json");
    std::fs::write(&root_file, sigstore.trusted_root().to_string()).unwrap();
    let config = registry.docker_config(PASSWORD);
    let release = |extra: &[&str]| {
        shipit(dir.path())
            .args(["release", "--pipeline", "pipelines/image.toml"])
            .args(extra)
            .env("DOCKER_CONFIG", config.path())
            .env("ACTIONS_ID_TOKEN_REQUEST_URL", &sigstore.token_url)
            .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN)
            .output()
            .unwrap()
    };
    // Without an OIDC token nothing is pushed (exit 2).
    let out = shipit(dir.path())
        .args(["release", "--pipeline", "pipelines/image.toml"])
        .env("DOCKER_CONFIG", config.path())
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .env_remove("SIGSTORE_ID_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(text(&out).1.contains("id-token: write"), "{:?}", text(&out));
    let tag = format!("docker://{}/acme/demo:0.1.0", registry.addr);
    assert_ne!(
        registry.skopeo(&["inspect", "--raw", &tag]).status.code(),
        Some(0)
    );

    let out = release(&[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(!format!("{stdout}{stderr}").contains(REQUEST_TOKEN));
    let image = published(dir.path());
    let digests = image_digests(&image);

    // The layer cosign's keyless verification reads, and the bundle Sigstore's client checks.
    let trust = dir.path().join("trust_config.json");
    std::fs::write(&trust, sigstore.trust_config().to_string()).unwrap();
    let work = tempfile::tempdir().unwrap();
    for digest in &digests {
        let tag = digest.replacen(':', "-", 1) + ".sig";
        let (copied, manifest) = copy_tag(&registry, &tag, work.path());
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1, "{manifest}");
        let annotations = &layers[0]["annotations"];
        for name in [
            "dev.cosignproject.cosign/signature",
            "dev.sigstore.cosign/certificate",
            "dev.sigstore.cosign/chain",
            "dev.sigstore.cosign/bundle",
        ] {
            assert!(annotations[name].is_string(), "{name}: {annotations}");
        }
        let payload = copied.join(
            layers[0]["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        );
        let bundle = work.path().join(format!("{tag}.sigstore.json"));
        std::fs::write(
            &bundle,
            annotations["dev.shipit.sigstore/bundle"].as_str().unwrap(),
        )
        .unwrap();
        let out = std::process::Command::new("sigstore")
            .arg("--trust-config")
            .arg(&trust)
            .args(["verify", "identity", "--bundle"])
            .arg(&bundle)
            .args(["--cert-identity", &identity(), "--cert-oidc-issuer", ISSUER])
            .arg(&payload)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sigstore verify {tag}: {:?}",
            text(&out)
        );
    }

    let verify = |who: &str| {
        let args = [
            "--certificate-identity",
            who,
            "--certificate-oidc-issuer",
            ISSUER,
            "--trusted-root",
        ];
        let mut args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        args.push(root_file.as_os_str());
        verify_image(dir.path(), &registry, config.path(), &args)
    };
    let out = verify(&identity());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        3,
        "{stdout}"
    );
    let out = verify("https://github.com/evil/demo/.github/workflows/release.yml@refs/tags/v0.1.0");
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));

    // Again: every digest is already signed by this identity; the check finds them holding.
    let out = release(&[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        format!("{stdout}{stderr}")
            .matches("already signed")
            .count(),
        3,
        "{stdout}{stderr}"
    );
    let again = work.path().join("again");
    std::fs::create_dir_all(&again).unwrap();
    for digest in &digests {
        let tag = digest.replacen(':', "-", 1) + ".sig";
        let (_, manifest) = copy_tag(&registry, &tag, &again);
        assert_eq!(manifest["layers"].as_array().unwrap().len(), 1, "{tag}");
    }
}
