//! `[release.scoop]` and `[release.winget]`: the demo's Windows zips in a Scoop manifest pushed
//! to a bucket and in winget's three manifests pushed to a winget-pkgs-like repository, each
//! validated against its project's own published schema (vendored in `tests/fixtures/`); and
//! the Chocolatey package, checked against NuGet's nuspec schema and pushed to a NuGet v2 feed.

use std::process::Command;

use crate::common::fake_github::FakeGithub;
use crate::common::nuget_feed::NugetFeed;
use crate::common::{repo_root, require, shipit, text};
use crate::homebrew::{TOKEN, bare_tap, built_demo, release_demo, tap_file, tap_log};

/// Validates `document` (JSON, or YAML with `yaml`) against a vendored JSON schema (draft-07)
/// with Python's `jsonschema`.
fn validate(schema: &str, document: &str, yaml: bool) {
    let schema = repo_root().join("tests/fixtures").join(schema);
    let check = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml, jsonschema\n\
             schema = json.load(open(sys.argv[1], encoding='utf-8-sig'))\n\
             doc = yaml.safe_load(sys.argv[2]) if sys.argv[3] == 'yaml' else json.loads(sys.argv[2])\n\
             jsonschema.Draft7Validator(schema).validate(doc)\n",
        ])
        .arg(&schema)
        .arg(document)
        .arg(if yaml { "yaml" } else { "json" })
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}: {}\n{document}",
        schema.display(),
        text(&check).1
    );
}

#[test]
fn scoop_and_winget_manifests_validate_against_their_schemas_and_a_rerun_changes_nothing() {
    require("python3");
    let (_bucket_dir, bare) = bare_tap();
    let (_winget_dir, winget) = bare_tap();
    let dir = built_demo(&format!(
        "\n[release.github]\nrepo = \"acme/demo\"\n\n[release.scoop]\nbucket = {{ url = \"{}\" }}\n\n\
         [release.winget]\nrepository = {{ url = \"{}\" }}\nidentifier = \"Acme.Demo\"\n\
         description = \"Acme's tiny HTTP service: it answers\"\n",
        bare.display(),
        winget.display()
    ));
    let fake = FakeGithub::start(TOKEN);
    let release = || release_demo(dir.path(), &fake);
    let out = release();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let out = release();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert!(
        text(&out)
            .1
            .contains("the bucket's demo.json is already up to date"),
        "{:?}",
        text(&out)
    );
    assert!(
        text(&out)
            .1
            .contains("the winget manifests in manifests/a/Acme/Demo/0.1.0 are already up to date"),
        "{:?}",
        text(&out)
    );
    assert_eq!(tap_log(&bare), ["demo 0.1.0", "tap"]);
    assert_eq!(tap_log(&winget), ["Acme.Demo 0.1.0", "tap"]);

    let manifest_text = tap_file(&bare, "bucket/demo.json");
    let scoop: serde_json::Value = serde_json::from_str(&manifest_text).unwrap();
    let built: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("dist/manifest.json")).unwrap(),
    )
    .unwrap();
    for (arch, key) in [("x64", "64bit"), ("arm64", "arm64")] {
        let zip = built["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == "archive" && a["os"] == "windows" && a["arch"] == arch)
            .unwrap();
        let entry = &scoop["architecture"][key];
        assert_eq!(entry["hash"], zip["sha256"], "{manifest_text}");
        assert_eq!(
            entry["url"],
            built["published"]["github"]["assets"][zip["name"].as_str().unwrap()],
            "{manifest_text}"
        );
        let stem = zip["name"].as_str().unwrap().trim_end_matches(".zip");
        assert_eq!(entry["extract_dir"], stem, "{manifest_text}");
        let update = scoop["autoupdate"]["architecture"][key]["url"]
            .as_str()
            .unwrap();
        assert!(
            update.contains("$version") && !update.contains("0.1.0"),
            "{update}"
        );
    }
    assert_eq!(scoop["bin"], serde_json::json!(["demo.exe"]));
    assert_eq!(scoop["version"], "0.1.0");

    // Scoop's own schema accepts it.
    validate("scoop/schema.json", &manifest_text, false);

    // winget: three manifests, each accepted by its schema, the installers holding the
    // release's URLs, the manifest's digests and the exe inside each zip's folder.
    let folder = "manifests/a/Acme/Demo/0.1.0";
    for (file, kind) in [
        ("Acme.Demo.yaml", "version"),
        ("Acme.Demo.installer.yaml", "installer"),
        ("Acme.Demo.locale.en-US.yaml", "defaultLocale"),
    ] {
        let text = tap_file(&winget, &format!("{folder}/{file}"));
        validate(&format!("winget/manifest.{kind}.1.28.0.json"), &text, true);
        assert!(text.contains("ManifestVersion: 1.28.0"), "{text}");
    }
    let installer = tap_file(&winget, &format!("{folder}/Acme.Demo.installer.yaml"));
    for artifact in built["artifacts"].as_array().unwrap() {
        if artifact["kind"] == "archive" && artifact["os"] == "windows" {
            let name = artifact["name"].as_str().unwrap();
            let url = built["published"]["github"]["assets"][name]
                .as_str()
                .unwrap();
            assert!(
                installer.contains(&format!("InstallerUrl: '{url}'")),
                "{installer}"
            );
            let sum = artifact["sha256"].as_str().unwrap().to_uppercase();
            assert!(
                installer.contains(&format!("InstallerSha256: {sum}")),
                "{installer}"
            );
            let exe = format!(
                "RelativeFilePath: '{}\\demo.exe'",
                name.trim_end_matches(".zip")
            );
            assert!(installer.contains(&exe), "{installer}");
        }
    }
    let locale = tap_file(&winget, &format!("{folder}/Acme.Demo.locale.en-US.yaml"));
    assert!(
        locale.contains("ShortDescription: 'Acme''s tiny HTTP service: it answers'"),
        "{locale}"
    );
}

const CHOCO_KEY: &str = "oy2-test-api-key-0123456789";

/// `shipit release` of the built demo against the fake GitHub, with a Chocolatey key.
fn release_with_key(dir: &std::path::Path, fake: &FakeGithub, key: &str) -> std::process::Output {
    shipit(dir)
        .args(["release", "--pipeline", "pipelines/demo.toml"])
        .env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_TOKEN", TOKEN)
        .env("CHOCOLATEY_API_KEY", key)
        .output()
        .unwrap()
}

#[test]
fn the_chocolatey_package_validates_against_the_nuspec_schema_and_is_pushed_to_a_nuget_feed_once() {
    require("xmllint");
    let feed = NugetFeed::start(CHOCO_KEY);
    let dir = built_demo(&format!(
        "\n[release.github]\nrepo = \"acme/demo\"\n\n[release.chocolatey]\nsource = \"{}\"\n\
         tags = [\"http\", \"demo\"]\ntitle = \"Demo <&> 'quoted'\"\n",
        feed.url
    ));
    let fake = FakeGithub::start(TOKEN);

    // A wrong key: the feed refuses, the release fails, and the key is nowhere in the output.
    let out = release_with_key(dir.path(), &fake, "wrong-key-0123456789");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("403"), "{stderr}");
    assert!(!format!("{stdout}{stderr}").contains("wrong-key-0123456789"));

    let out = release_with_key(dir.path(), &fake, CHOCO_KEY);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(!format!("{stdout}{stderr}").contains(CHOCO_KEY));
    let pushes = feed.pushes();
    let sent: Vec<(u16, &str, &str)> = pushes
        .iter()
        .map(|p| (p.status, p.field.as_str(), p.file_name.as_str()))
        .collect();
    assert_eq!(sent, [(403, "", ""), (201, "package", "package.nupkg")]);

    // The nupkg opens as a zip with NuGet's parts, and its nuspec passes NuGet's schema.
    let nupkg = feed.package("demo", "0.1.0").expect("stored");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(nupkg.clone())).unwrap();
    let mut names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    names.sort();
    assert_eq!(
        names[..3],
        ["[Content_Types].xml", "_rels/.rels", "demo.nuspec"]
    );
    assert!(names[3].starts_with("package/services/metadata/core-properties/"));
    assert_eq!(names[4], "tools/chocolateyinstall.ps1");
    let read = |zip: &mut zip::ZipArchive<_>, name: &str| {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut zip.by_name(name).unwrap(), &mut text).unwrap();
        text
    };
    let nuspec = read(&mut zip, "demo.nuspec");
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("demo.nuspec"), &nuspec).unwrap();
    let check = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(repo_root().join("tests/fixtures/chocolatey/nuspec.xsd"))
        .arg(work.path().join("demo.nuspec"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{:?}\n{nuspec}", text(&check));
    assert!(
        nuspec.contains("<title>Demo &lt;&amp;&gt; &apos;quoted&apos;</title>"),
        "{nuspec}"
    );
    assert!(nuspec.contains("<tags>http demo</tags>"), "{nuspec}");

    // The install script downloads the released x64 zip and checks the manifest's digest.
    let script = read(&mut zip, "tools/chocolateyinstall.ps1");
    let built: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("dist/manifest.json")).unwrap(),
    )
    .unwrap();
    let zip64 = built["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "archive" && a["os"] == "windows" && a["arch"] == "x64")
        .unwrap();
    let url = &built["published"]["github"]["assets"][zip64["name"].as_str().unwrap()];
    assert!(
        script.contains(&format!("url64bit       = '{}'", url.as_str().unwrap())),
        "{script}"
    );
    assert!(
        script.contains(&format!(
            "checksum64     = '{}'",
            zip64["sha256"].as_str().unwrap()
        )),
        "{script}"
    );
    assert!(
        script.contains("Install-ChocolateyZipPackage @packageArgs"),
        "{script}"
    );
    assert_eq!(built["published"]["chocolatey"]["status"], "pushed");

    // Again: the feed has these bytes, so nothing is pushed.
    let out = release_with_key(dir.path(), &fake, CHOCO_KEY);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("the feed already has demo 0.1.0 with the same contents"),
        "{stderr}"
    );
    assert_eq!(feed.pushes().len(), 2);
}

#[test]
fn a_chocolatey_version_the_feed_holds_is_never_pushed_over() {
    let dir = built_demo(
        "\n[release.github]\nrepo = \"acme/demo\"\n\n[release.chocolatey]\nsource = \"http://feed.invalid/\"\n",
    );
    let pipeline = dir.path().join("pipelines/demo.toml");
    let fake = FakeGithub::start(TOKEN);

    // Other bytes under the version: an error naming it, and the feed keeps its package.
    let feed = NugetFeed::start(CHOCO_KEY);
    feed.seed("demo", "0.1.0", b"other bytes");
    let text_now = std::fs::read_to_string(&pipeline).unwrap();
    std::fs::write(
        &pipeline,
        text_now.replace("http://feed.invalid/", &feed.url),
    )
    .unwrap();
    let out = release_with_key(dir.path(), &fake, CHOCO_KEY);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("the feed already has demo 0.1.0 with other contents"),
        "{stderr}"
    );
    assert!(feed.pushes().is_empty());
    assert_eq!(feed.package("demo", "0.1.0").unwrap(), b"other bytes");

    // A feed holding the version for review (downloads 404, the push 409): not an error.
    let moderated = NugetFeed::start(CHOCO_KEY);
    moderated.seed("demo", "0.1.0", b"under review");
    moderated.moderate();
    let text_now = std::fs::read_to_string(&pipeline).unwrap();
    std::fs::write(&pipeline, text_now.replace(&feed.url, &moderated.url)).unwrap();
    let out = release_with_key(dir.path(), &fake, CHOCO_KEY);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("the feed already has demo 0.1.0 (it says so); not pushed again"),
        "{stderr}"
    );
    assert_eq!(moderated.pushes().len(), 1);
    assert_eq!(moderated.pushes()[0].status, 409);
}

/// `git log` subjects of `branch` in a bare repository.
fn branch_log(bare: &std::path::Path, branch: &str) -> Vec<String> {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(bare)
        .args(["log", "--format=%s", branch])
        .output()
        .unwrap();
    text(&out).0.lines().map(str::to_owned).collect()
}

#[test]
fn scoop_and_winget_pull_requests_leave_main_alone_and_winget_proposes_from_a_fork() {
    let (_bucket_dir, bucket) = bare_tap();
    let (_fork_dir, fork) = bare_tap();
    let dir = built_demo(&format!(
        "\n[release.github]\nrepo = \"acme/demo\"\n\n[release.scoop]\n\
         bucket = {{ repo = \"acme/scoop-bucket\", url = \"{}\" }}\npull_request = true\n\n\
         [release.winget]\nrepository = {{ repo = \"ada/winget-pkgs\", url = \"{}\" }}\n\
         identifier = \"Acme.Demo\"\npull_request = {{ repo = \"microsoft/winget-pkgs\" }}\n",
        bucket.display(),
        fork.display()
    ));
    let fake = FakeGithub::start(TOKEN);
    let out = release_demo(dir.path(), &fake);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");

    // Both default branches are untouched; each change waits on a branch of its own.
    assert_eq!(tap_log(&bucket), ["tap"]);
    assert_eq!(tap_log(&fork), ["tap"]);
    assert_eq!(
        branch_log(&bucket, "shipit/demo-0.1.0"),
        ["demo 0.1.0", "tap"]
    );
    assert_eq!(
        branch_log(&fork, "shipit/Acme.Demo-0.1.0"),
        ["Acme.Demo 0.1.0", "tap"]
    );
    let show = Command::new("git")
        .arg("--git-dir")
        .arg(&fork)
        .args([
            "show",
            "shipit/Acme.Demo-0.1.0:manifests/a/Acme/Demo/0.1.0/Acme.Demo.installer.yaml",
        ])
        .output()
        .unwrap();
    assert!(
        text(&show).0.contains("InstallerType: zip"),
        "{:?}",
        text(&show)
    );

    // The bucket's pull request is on the bucket, into the branch it was cloned from; the
    // winget one goes from the fork to the upstream, into its default branch (as GitHub
    // answers for it: `master`).
    let pulls = fake.pulls();
    assert_eq!(pulls.len(), 2, "{pulls:?}");
    assert_eq!(pulls[0]["head"], "shipit/demo-0.1.0");
    assert_eq!(pulls[0]["base"], "main");
    assert_eq!(pulls[1]["head"], "ada:shipit/Acme.Demo-0.1.0");
    assert_eq!(pulls[1]["base"], "master");
    assert_eq!(pulls[1]["title"], "New version: Acme.Demo version 0.1.0");
    assert!(
        stderr.contains("opened https://github.com/acme/scoop-bucket/pull/")
            && stderr.contains("opened https://github.com/microsoft/winget-pkgs/pull/"),
        "{stderr}"
    );
}
