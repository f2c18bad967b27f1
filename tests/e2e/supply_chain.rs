//! Supply-chain evidence on a project with real dependencies: SBOMs of each target,
//! validated by CycloneDX's and SPDX's own Python tools and compared with `cargo tree`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::common::{git, require, shared_target_dir, shipit, text};

/// A crate with registry dependencies: one per platform (`hex` on unix, `memchr` on
/// windows), a feature only windows turns on (`once_cell`'s `critical-section`, whose
/// optional dependencies cargo metadata's resolve lists for every platform), a proc-macro
/// pulled in by a feature (serde's derive), a build-dependency (`autocfg`) and a
/// dev-dependency (`ryu`), none of which but the first kinds may appear in an SBOM;
/// committed with its lock file.
fn dependent_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"sbomfix\"\nversion = \"0.4.0\"\nedition = \"2021\"\nlicense = \"MIT/Apache-2.0\"\n\
         description = \"An SBOM fixture\"\n\n\
         [dependencies]\nitoa = \"1\"\nonce_cell = \"1\"\nserde = { version = \"1\", features = [\"derive\"] }\n\n\
         [target.'cfg(unix)'.dependencies]\nhex = \"0.4\"\n\n\
         [target.'cfg(windows)'.dependencies]\nmemchr = \"2\"\nonce_cell = { version = \"1\", features = [\"critical-section\"] }\n\n\
         [build-dependencies]\nautocfg = \"1\"\n\n[dev-dependencies]\nryu = \"1\"\n\n\
         [profile.release]\nlto = true\ncodegen-units = 1\n",
    )
    .unwrap();
    std::fs::write(
        root.join("build.rs"),
        "fn main() { let _ = autocfg::new(); }\n",
    )
    .unwrap();
    std::fs::write(
        root.join("src/main.rs"),
        "#[derive(serde::Serialize)]\nstruct Point { x: i32 }\n\
         fn main() {\n    let p = Point { x: 1 };\n    let _ = &p.x;\n    let mut b = itoa::Buffer::new();\n    println!(\"sbomfix {}\", b.format(4));\n    \
         #[cfg(unix)]\n    println!(\"{}\", hex::encode([1u8]));\n    \
         #[cfg(windows)]\n    println!(\"{:?}\", memchr::memchr(b'a', b\"abc\"));\n}\n",
    )
    .unwrap();
    std::fs::write(
        root.join("shipit.toml"),
        "version = 1\n\n[stages.build]\nuses = \"cargo\"\ntargets = [\"linux-x64-musl\", \"windows-x64\"]\n\n\
         [stages.sbom]\nuses = \"sbom\"\nneeds = [\"build\"]\n",
    )
    .unwrap();
    std::fs::write(root.join(".gitignore"), "/target\n/dist\n").unwrap();
    let lock = Command::new("cargo")
        .arg("generate-lockfile")
        .current_dir(root)
        .output()
        .unwrap();
    assert!(lock.status.success(), "{:?}", text(&lock));
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "fixture"]);
    dir
}

/// `name@version` of every package `cargo tree -e normal --target <triple>` prints, the root
/// left out.
fn cargo_tree(root: &Path, triple: &str) -> BTreeSet<String> {
    let out = Command::new("cargo")
        .args([
            "tree", "-e", "normal", "--prefix", "none", "--target", triple,
        ])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    text(&out)
        .0
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some(format!(
                "{}@{}",
                words.next()?,
                words.next()?.trim_start_matches('v')
            ))
        })
        .filter(|p| !p.starts_with("sbomfix@"))
        .collect()
}

/// `shipit build` of the fixture (its cargo target folder shared by the tests): the manifest.
fn build_fixture(root: &Path) -> serde_json::Value {
    let out = shipit(root)
        .arg("build")
        .env("CARGO_TARGET_DIR", shared_target_dir("sbom-target"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    read_json(&root.join("dist/manifest.json"))
}

/// A JSON file, parsed.
fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs Python `code` with `args`; fails the test with what it printed.
fn python(code: &str, args: &[&Path]) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
}

#[test]
fn sboms_list_exactly_what_cargo_tree_links_per_target_and_pass_the_cyclonedx_and_spdx_tools() {
    require("python3");
    require("pyspdxtools");
    let dir = dependent_project();
    let root = dir.path();
    let build = || {
        let _ = std::fs::remove_dir_all(root.join("dist"));
        build_fixture(root)
    };
    let manifest = build();
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
    for (target, triple, only, never) in [
        (
            "linux-x64-musl",
            "x86_64-unknown-linux-musl",
            "hex",
            "memchr",
        ),
        ("windows-x64", "x86_64-pc-windows-gnu", "memchr", "hex"),
    ] {
        let cdx_path = root.join(format!("dist/sbomfix-0.4.0-{target}.cdx.json"));
        let spdx_path = root.join(format!("dist/sbomfix-0.4.0-{target}.spdx.json"));
        // Both are artifacts of the manifest, of kind sbom, for their target.
        for path in [&cdx_path, &spdx_path] {
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(
                manifest["artifacts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["name"] == name && a["kind"] == "sbom" && a["target"] == target),
                "{name} not in the manifest"
            );
        }
        // The standards' own validators accept them.
        python(
            "import sys\n\
             from cyclonedx.validation.json import JsonStrictValidator\n\
             from cyclonedx.schema import SchemaVersion\n\
             error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
             sys.exit(f'invalid: {error.data.message} at {list(error.data.absolute_path)}' if error else 0)\n",
            &[&cdx_path],
        );
        let spdx_check = Command::new("pyspdxtools")
            .arg("-i")
            .arg(&spdx_path)
            .output()
            .unwrap();
        let (out, err) = text(&spdx_check);
        assert!(
            spdx_check.status.success() && !format!("{out}{err}").contains("error"),
            "{out}{err}"
        );

        // The components are exactly cargo tree's for that platform: no build- or
        // dev-dependency, no other platform's crate.
        let cdx = read_json(&cdx_path);
        let components: BTreeSet<String> = cdx["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["type"] == "library")
            .map(|c| {
                format!(
                    "{}@{}",
                    c["name"].as_str().unwrap(),
                    c["version"].as_str().unwrap()
                )
            })
            .collect();
        let tree = cargo_tree(root, triple);
        assert_eq!(components, tree, "{target}");
        let names: BTreeSet<&str> = components
            .iter()
            .map(|c| c.split('@').next().unwrap())
            .collect();
        assert!(
            names.contains(only) && !names.contains(never),
            "{target}: {names:?}"
        );
        assert!(
            names.contains("serde_derive") && !names.contains("autocfg") && !names.contains("ryu")
        );
        // Regression (issue 30, point 8): a feature another platform turns on adds nothing here.
        assert_eq!(
            names.contains("critical-section"),
            target.starts_with("windows"),
            "{target}: {names:?}"
        );

        // Purls, licences, Cargo.lock's checksums, and the binary's own digest.
        let itoa = cdx["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "itoa")
            .unwrap();
        let version = itoa["version"].as_str().unwrap();
        assert_eq!(itoa["purl"], format!("pkg:cargo/itoa@{version}"));
        assert_eq!(itoa["licenses"][0]["expression"], "MIT OR Apache-2.0");
        let sum = itoa["hashes"][0]["content"].as_str().unwrap();
        assert!(
            lock.contains(&format!("name = \"itoa\"\nversion = \"{version}\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{sum}\"")),
            "{sum} is not itoa's checksum in Cargo.lock"
        );
        assert_eq!(
            cdx["metadata"]["component"]["licenses"][0]["expression"],
            "MIT OR Apache-2.0"
        );
        let exe = if target.starts_with("windows") {
            "sbomfix.exe"
        } else {
            "sbomfix"
        };
        let binary = manifest["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == "binary" && a["target"] == target)
            .unwrap();
        assert_eq!(binary["name"], exe);
        let file = cdx["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "file")
            .unwrap();
        assert_eq!(file["name"], exe);
        assert_eq!(file["hashes"][0]["content"], binary["sha256"]);
        let spdx = read_json(&spdx_path);
        assert_eq!(
            spdx["packages"].as_array().unwrap().len(),
            components.len() + 1,
            "the project and each component"
        );
        assert_eq!(
            spdx["files"][0]["checksums"][1]["checksumValue"],
            binary["sha256"]
        );
    }

    // From clean again: the same bytes.
    let sboms = || -> Vec<Vec<u8>> {
        ["linux-x64-musl", "windows-x64"]
            .iter()
            .flat_map(|t| {
                [".cdx.json", ".spdx.json"].map(|e| root.join(format!("dist/sbomfix-0.4.0-{t}{e}")))
            })
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    };
    let first = sboms();
    build();
    let second = sboms();
    assert!(first == second, "the SBOMs changed between two builds");
}

/// The fixture with archives, signed checksums and a provenance stage, signed by a new minisign key
/// (`keys/shipit.key`, `keys/shipit.pub`), built once.
fn built_with_provenance() -> tempfile::TempDir {
    let dir = dependent_project();
    let root = dir.path();
    std::fs::write(
        root.join("shipit.toml"),
        "version = 1\n\n[stages.build]\nuses = \"cargo\"\ntargets = [\"linux-x64-musl\"]\n\n\
         [stages.sbom]\nuses = \"sbom\"\nneeds = [\"build\"]\n\n\
         [stages.package]\nuses = \"archive\"\nneeds = [\"build\"]\n\n\
         [stages.checksum]\nuses = \"checksum\"\nneeds = [\"package\", \"sbom\"]\n\n\
         [stages.sign]\nuses = \"sign\"\nneeds = [\"checksum\"]\nkey = { file = \"keys/shipit.key\" }\n\n\
         [stages.provenance]\nuses = \"provenance\"\nneeds = [\"sign\"]\nkey = { file = \"keys/shipit.key\" }\n",
    )
    .unwrap();
    std::fs::write(root.join(".gitignore"), "/target\n/dist\n/keys\n").unwrap();
    git(root, &["commit", "-qam", "provenance"]);
    crate::common::unencrypted_keys(root);
    build_fixture(root);
    dir
}

/// Regression (issue 28, 7): the `minisign` crate mixed 64 random bytes into every signature and
/// provenance carried the run's clock, so two clean builds wrote different `SHA256SUMS.minisig`,
/// provenance and manifest (seen before the fix: the signatures differed byte for byte). Now
/// signing is plain deterministic Ed25519, as the minisign CLI does, and nothing of the run's
/// time is recorded.
#[test]
fn two_clean_builds_with_a_signing_key_give_byte_identical_signatures_provenance_and_manifest() {
    let dir = built_with_provenance();
    let root = dir.path();
    let signed = |root: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(root.join("dist"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).unwrap())
            })
            .collect();
        files.sort();
        files
    };
    let first = signed(root);
    let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    for expected in ["SHA256SUMS", "SHA256SUMS.minisig", "manifest.json"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    assert!(
        names.iter().any(|n| n.ends_with(".intoto.jsonl")),
        "{names:?}"
    );
    std::fs::remove_dir_all(root.join("dist")).unwrap();
    let out = shipit(root)
        .args(["build", "--no-cache"])
        .env("CARGO_TARGET_DIR", shared_target_dir("sbom-target"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let second = signed(root);
    assert_eq!(
        first.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        second.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for ((name, a), (_, b)) in first.iter().zip(&second) {
        assert!(a == b, "{name} differs between two clean builds");
    }
    // And minisign itself accepts the deterministic signature, and makes the very same bytes
    // when it signs with the same key and comments.
    crate::common::require("minisign");
    let out = Command::new("minisign")
        .args(["-V", "-p", "keys/shipit.pub", "-m", "dist/SHA256SUMS"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    let ours = std::fs::read_to_string(root.join("dist/SHA256SUMS.minisig")).unwrap();
    let comment = |prefix: &str| {
        ours.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap()
            .to_string()
    };
    let theirs = root.join("theirs.minisig");
    let out = Command::new("minisign")
        .args(["-S", "-s", "keys/shipit.key", "-m", "dist/SHA256SUMS", "-x"])
        .arg(&theirs)
        .args(["-c", &comment("untrusted comment: ")])
        .args(["-t", &comment("trusted comment: ")])
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(std::fs::read_to_string(&theirs).unwrap(), ours);
}

/// `shipit verify dist --key keys/shipit.pub`: exit code and stdout.
fn verify(root: &Path) -> (Option<i32>, String, String) {
    let out = shipit(root)
        .args(["verify", "dist", "--key", "keys/shipit.pub"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

#[test]
fn provenance_verifies_with_securesystemslib_and_a_changed_artifact_or_statement_fails_verify() {
    require("python3");
    let dir = built_with_provenance();
    let root = dir.path();
    let envelope_path = root.join("dist/sbomfix-0.4.0.intoto.jsonl");
    let manifest = read_json(&root.join("dist/manifest.json"));

    // securesystemslib checks the DSSE signature with the release's public key (the raw
    // Ed25519 key inside the minisign .pub, with securesystemslib's own key id) and hands
    // back the statement.
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, json, base64, hashlib\n\
             from securesystemslib.dsse import Envelope\n\
             from securesystemslib.signer import SSlibKey\n\
             from securesystemslib.formats import encode_canonical\n\
             raw = base64.b64decode(open(sys.argv[2]).read().splitlines()[1])[10:42]\n\
             keyval = {'public': raw.hex()}\n\
             keyid = hashlib.sha256(encode_canonical({'keytype': 'ed25519', 'scheme': 'ed25519', 'keyval': keyval}).encode()).hexdigest()\n\
             key = SSlibKey(keyid, 'ed25519', 'ed25519', keyval)\n\
             envelope = Envelope.from_dict(json.loads(open(sys.argv[1]).read()))\n\
             envelope.verify([key], 1)\n\
             print(envelope.pae().decode().split(' ', 4)[4])\n",
        )
        .arg(&envelope_path)
        .arg(root.join("keys/shipit.pub"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    let statement: serde_json::Value = serde_json::from_str(text(&out).0.trim()).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    let definition = &statement["predicate"]["buildDefinition"];
    assert_eq!(definition["externalParameters"]["version"], "0.4.0");
    assert_eq!(
        definition["externalParameters"]["pipeline"]["path"],
        "shipit.toml"
    );
    assert!(
        definition["internalParameters"]["rustc"]
            .as_str()
            .unwrap()
            .contains("rustc "),
        "{definition}"
    );
    assert_eq!(
        definition["resolvedDependencies"][0]["digest"]["gitCommit"],
        manifest["commit"]
    );
    // No clock reading: a rebuild writes the same statement.
    let run = &statement["predicate"]["runDetails"];
    assert_eq!(run["metadata"], serde_json::json!({}), "{run}");
    // Every artifact before it is a subject, with the manifest's digest.
    let subjects: std::collections::BTreeMap<&str, &str> = statement["subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["digest"]["sha256"].as_str().unwrap(),
            )
        })
        .collect();
    let released: std::collections::BTreeMap<&str, &str> = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| !a["name"].as_str().unwrap().ends_with(".intoto.jsonl"))
        .map(|a| (a["path"].as_str().unwrap(), a["sha256"].as_str().unwrap()))
        .collect();
    assert_eq!(subjects, released);

    // shipit verify checks the envelope and every subject.
    let (code, stdout, stderr) = verify(root);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("ok     provenance sbomfix-0.4.0.intoto.jsonl"),
        "{stdout}"
    );

    // One changed artifact: exit 1, named by the provenance check.
    let archive = root.join("dist/sbomfix-0.4.0-linux-x64-musl.tar.gz");
    let original = std::fs::read(&archive).unwrap();
    let mut changed = original.clone();
    changed.push(0);
    std::fs::write(&archive, &changed).unwrap();
    let (code, stdout, stderr) = verify(root);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "FAILED provenance sbomfix-0.4.0-linux-x64-musl.tar.gz (sbomfix-0.4.0.intoto.jsonl): content does not match the signed statement"
        ),
        "{stdout}"
    );
    std::fs::write(&archive, &original).unwrap();

    // A changed statement (a subject's digest swapped, signature kept): exit 1, named.
    let mut envelope = read_json(&envelope_path);
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut payload: serde_json::Value = serde_json::from_slice(
        &engine
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    payload["subject"][0]["digest"]["sha256"] = serde_json::json!("0".repeat(64));
    envelope["payload"] = serde_json::json!(engine.encode(payload.to_string()));
    std::fs::write(&envelope_path, format!("{envelope}\n")).unwrap();
    let (code, stdout, stderr) = verify(root);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("FAILED provenance sbomfix-0.4.0.intoto.jsonl")
            && stdout.contains("no signature by key"),
        "{stdout}"
    );
    assert!(stderr.contains("sbomfix-0.4.0.intoto.jsonl"), "{stderr}");
}

/// `shipit build` of `root` with `pipeline` as its only stages (no build needed to audit).
fn audit(root: &Path, stage: &str) -> (Option<i32>, String, String) {
    std::fs::write(root.join("shipit.toml"), format!("version = 1\n\n{stage}")).unwrap();
    let out = shipit(root).arg("build").output().unwrap();
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

#[test]
fn the_audit_gate_names_the_advisory_honours_ignores_until_they_expire_and_passes_a_clean_lock() {
    let dir = dependent_project();
    let root = dir.path();
    let db = crate::common::repo_root().join("tests/fixtures/advisory-db");
    // A sparse index that says the locked itoa is yanked.
    let index = tempfile::tempdir().unwrap();
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
    let itoa_version = lock
        .split("name = \"itoa\"\nversion = \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    std::fs::create_dir_all(index.path().join("it/oa")).unwrap();
    std::fs::write(
        index.path().join("it/oa/itoa"),
        format!("{{\"name\":\"itoa\",\"vers\":\"{itoa_version}\",\"deps\":[],\"cksum\":\"00\",\"features\":{{}},\"yanked\":true}}\n"),
    )
    .unwrap();
    let addr = crate::common::private_addr();
    let (ip, port) = addr.rsplit_once(':').unwrap();
    let mut server = Command::new("python3")
        .args(["-m", "http.server", port, "--bind", ip, "--directory"])
        .arg(index.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the index server never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let stage = |extra: &str| {
        format!(
            "[stages.audit]\nuses = \"audit\"\ndb = \"{}\"\nindex = \"http://{addr}/\"\n{extra}",
            db.display()
        )
    };

    // The critical advisory fails the gate, naming advisory, crate, range and fix.
    let (code, stdout, stderr) = audit(root, &stage(""));
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains(&format!(
            "RUSTSEC-2099-0001 in itoa {itoa_version} (critical 9.8): Fixture: itoa writes past its buffer; affected <99.0.0; fixed in >=99.0.0"
        )),
        "{all}"
    );
    let report = read_json(&root.join("dist/sbomfix-0.4.0-audit.json"));
    assert_eq!(report["passed"], false);
    let kinds: Vec<&str> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    for kind in ["unmaintained", "database", "yanked"] {
        assert!(kinds.contains(&kind), "{kind} missing: {report:#}");
    }
    assert!(
        report
            .to_string()
            .contains(&format!("itoa {itoa_version} is yanked")),
        "{report:#}"
    );
    let hex = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "RUSTSEC-2099-0002")
        .unwrap();
    assert_eq!(hex["severity"], "low");
    assert_eq!(hex["status"], "failing", "the gate is `low` by default");

    // Ignored until a future date, with the gate at medium: it passes, and says why.
    let ignore = "fail_on = \"medium\"\nignore = [{ id = \"RUSTSEC-2099-0001\", until = \"2999-01-01\", reason = \"our build never formats untrusted numbers\" }]\n";
    let (code, stdout, stderr) = audit(root, &stage(ignore));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let report = read_json(&root.join("dist/sbomfix-0.4.0-audit.json"));
    assert_eq!(report["passed"], true);
    let statuses: Vec<(&str, &str)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["id"].as_str().unwrap(), f["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("RUSTSEC-2099-0001", "ignored"),
            ("RUSTSEC-2099-0002", "below")
        ]
    );

    // Once `until` has passed, it fails again.
    let expired = ignore.replace("2999-01-01", "2020-06-01");
    let (code, stdout, stderr) = audit(root, &stage(&expired));
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("(its ignore expired after 2020-06-01)"),
        "{stdout}{stderr}"
    );

    // A lock file without the affected crates passes.
    let clean = tempfile::tempdir().unwrap();
    crate::common::tiny_crate(clean.path(), "1.0.0");
    let lock = Command::new("cargo")
        .args(["generate-lockfile", "--offline"])
        .current_dir(clean.path())
        .output()
        .unwrap();
    assert!(lock.status.success(), "{:?}", text(&lock));
    let (code, stdout, stderr) = audit(clean.path(), &stage(""));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn an_audit_database_named_by_git_url_is_cloned_into_the_cache_then_updated() {
    let dir = dependent_project();
    let root = dir.path();
    // The fixture database as a git repository, committed on an old date.
    let repo = tempfile::tempdir().unwrap();
    let db = repo.path().join("advisory-db");
    let copy = Command::new("cp")
        .arg("-r")
        .arg(crate::common::repo_root().join("tests/fixtures/advisory-db"))
        .arg(&db)
        .output()
        .unwrap();
    assert!(copy.status.success(), "{:?}", text(&copy));
    git(&db, &["init", "-q", "-b", "main"]);
    git(&db, &["add", "."]);
    git(&db, &["commit", "-qm", "advisories"]);
    let cache = tempfile::tempdir().unwrap();
    let run = || {
        std::fs::write(
            root.join("shipit.toml"),
            format!(
                "version = 1\n\n[stages.audit]\nuses = \"audit\"\ndb = \"file://{}\"\nindex = \"\"\n\
                 ignore = [{{ id = \"RUSTSEC-2099-0001\", reason = \"fixture\" }}, {{ id = \"RUSTSEC-2099-0002\", reason = \"fixture\" }}]\n",
                db.display()
            ),
        )
        .unwrap();
        let out = shipit(root)
            .arg("build")
            .env("XDG_CACHE_HOME", cache.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
        read_json(&root.join("dist/sbomfix-0.4.0-audit.json"))
    };
    let report = run();
    assert_eq!(report["advisories"], 3, "{report:#}");
    let clones: Vec<_> = std::fs::read_dir(cache.path().join("shipit/advisory-db"))
        .unwrap()
        .collect();
    assert_eq!(clones.len(), 1);
    // A new advisory upstream reaches the next audit through a pull.
    let extra = db.join("crates/serde/RUSTSEC-2099-0004.md");
    std::fs::create_dir_all(extra.parent().unwrap()).unwrap();
    std::fs::write(
        &extra,
        "```toml\n[advisory]\nid = \"RUSTSEC-2099-0004\"\npackage = \"serde\"\ndate = \"2020-01-04\"\n\
         informational = \"notice\"\n\n[versions]\npatched = []\n```\n\n# Fixture: a notice about serde\n\nMade up.\n",
    )
    .unwrap();
    git(&db, &["add", "."]);
    git(&db, &["commit", "-qm", "another"]);
    let report = run();
    assert_eq!(report["advisories"], 4, "{report:#}");
    assert!(
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["text"].as_str().unwrap().contains("RUSTSEC-2099-0004")),
        "{report:#}"
    );
}
