//! Cross-compiling with real tools: the bundled demo for six targets, each binary's header
//! checked, the arm64 Linux binary run under qemu and the Windows one under wine; the cache;
//! a failing target; a linker that produces the wrong binary; missing tools.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shipit::binfmt;
use shipit::targets::Target;
use shipit::toolchain::{ZigSource, Zigbuild};

use crate::common::{
    demo_copy, demo_target_dir, require, shared_target_dir, shipit, text, tiny_crate,
};

const DEMO_TARGETS: [&str; 6] = [
    "linux-x64-musl",
    "linux-arm64-musl",
    "darwin-x64",
    "darwin-arm64",
    "windows-x64",
    "windows-arm64",
];

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("dist/manifest.json")).unwrap()).unwrap()
}

#[test]
fn demo_builds_six_targets_that_run_then_every_target_is_cached() {
    require("qemu-aarch64-static");
    require("wine");
    let dir = demo_copy();
    let target_dir = demo_target_dir("0.1.0");
    let build = || {
        shipit(dir.path())
            .args(["build", "--pipeline", "pipelines/demo.toml"])
            .env("CARGO_TARGET_DIR", &target_dir)
            .output()
            .unwrap()
    };

    let out = build();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for stage in ["lint", "test"] {
        assert!(stderr.contains(&format!("{stage}: done in")), "{stderr}");
        assert!(dir.path().join(format!("dist/logs/{stage}.log")).is_file());
    }
    for target in DEMO_TARGETS {
        let log = dir.path().join(format!("dist/logs/build-{target}.log"));
        assert!(log.is_file(), "no log for {target}");
    }

    let first = manifest(dir.path());
    assert_eq!(first["project"], "demo");
    assert_eq!(first["version"], "0.1.0");
    let binaries: Vec<&serde_json::Value> = first["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "binary")
        .collect();
    assert_eq!(binaries.len(), 6, "{binaries:#?}");
    let mut by_target = std::collections::BTreeMap::new();
    for artifact in binaries {
        let name = artifact["target"].as_str().unwrap();
        let target = Target::parse(name, "x").unwrap();
        assert_eq!(artifact["os"], target.os.as_str());
        assert_eq!(artifact["arch"], target.arch.as_str());
        assert_eq!(artifact["name"], format!("demo{}", target.exe_suffix()));
        let path = dir
            .path()
            .join("dist")
            .join(artifact["path"].as_str().unwrap());
        let (size, sha) = shipit::manifest::hash_file(&path).unwrap();
        assert_eq!(
            (&artifact["size"], &artifact["sha256"]),
            (&size.into(), &sha.into())
        );
        // Each header is the target's own: format and architecture.
        let header = binfmt::verify(&path, &target).unwrap();
        assert_eq!(header, binfmt::expected(&target), "{name}");
        by_target.insert(name.to_string(), path);
    }
    assert_eq!(by_target.keys().map(String::as_str).collect::<Vec<_>>(), {
        let mut sorted = DEMO_TARGETS.to_vec();
        sorted.sort();
        sorted
    });

    // The x64 Linux binary runs here and serves HTTP.
    let native = &by_target["linux-x64-musl"];
    assert_eq!(version_of(Command::new(native)), "demo 0.1.0");
    serves_its_version(native);
    // Run bare it prints its help and exits 0, as winget's validation wants of a CLI.
    let bare = Command::new(native).output().unwrap();
    assert_eq!(bare.status.code(), Some(0), "{:?}", text(&bare));
    assert!(text(&bare).0.contains("demo serve"), "{:?}", text(&bare));
    // The arm64 one under qemu, the Windows one under wine.
    let mut run = Command::new("qemu-aarch64-static");
    run.arg(&by_target["linux-arm64-musl"]);
    assert_eq!(version_of(run), "demo 0.1.0");
    assert_eq!(run_under_wine(&by_target["windows-x64"]), "demo 0.1.0");

    // Nothing changed: every target is cached and the manifest is the same.
    let again = build();
    let (_, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stderr}");
    for target in DEMO_TARGETS {
        assert!(
            stderr.contains(&format!("build {target}: cached")),
            "{target} not cached:\n{stderr}"
        );
    }
    assert!(stderr.contains("build: cached"), "{stderr}");
    assert_eq!(manifest(dir.path())["artifacts"], first["artifacts"]);
}

fn version_of(mut command: Command) -> String {
    let out = command.arg("--version").output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn serves_its_version(binary: &Path) {
    // An address of its own: whatever answers there is this server.
    let addr = crate::common::private_addr();
    let (ip, port) = addr.rsplit_once(':').unwrap();
    let mut server = Command::new(binary)
        .arg("serve")
        .env("PORT", port)
        .env("BIND", ip)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let reply = loop {
        if let Ok(mut stream) = TcpStream::connect(&addr) {
            stream
                .write_all(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut reply = String::new();
            stream.read_to_string(&mut reply).unwrap();
            break reply;
        }
        assert!(Instant::now() < deadline, "demo never listened");
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        reply.starts_with("HTTP/1.1 200 OK") && reply.ends_with("0.1.0\n"),
        "{reply}"
    );
}

/// Runs a Windows exe under wine, beside the `bcryptprimitives.dll` shim wine 8 lacks.
fn run_under_wine(exe: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("demo.exe");
    std::fs::copy(exe, &local).unwrap();
    std::fs::copy(bcrypt_shim(), dir.path().join("bcryptprimitives.dll")).unwrap();
    let mut wine = Command::new("wine");
    wine.arg(&local)
        .env("WINEPREFIX", shared_target_dir("wineprefix"))
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=");
    version_of(wine)
}

/// The shim DLL, compiled once with zig from `tests/fixtures/wine/bcryptprimitives.c`.
fn bcrypt_shim() -> PathBuf {
    let out = shared_target_dir("wine-shim/bcryptprimitives.dll");
    if out.is_file() {
        return out;
    }
    let zigbuild = Zigbuild::find().expect("zig was provisioned by the build");
    let mut zig = match &zigbuild.zig {
        ZigSource::Binary(zig) => Command::new(zig),
        ZigSource::Python(python) => {
            let mut c = Command::new(python);
            c.args(["-m", "ziglang"]);
            c
        }
    };
    if let Some(prefix) = &zigbuild.path_prefix {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let dirs = std::iter::once(prefix.clone()).chain(std::env::split_paths(&path));
        zig.env("PATH", std::env::join_paths(dirs).unwrap());
    }
    let source = crate::common::repo_root().join("tests/fixtures/wine/bcryptprimitives.c");
    let tmp = out.with_extension("tmp.dll");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let status = zig
        .args([
            "cc",
            "-target",
            "x86_64-windows-gnu",
            "-shared",
            "-O2",
            "-o",
        ])
        .arg(&tmp)
        .arg(&source)
        .status()
        .unwrap();
    assert!(status.success(), "zig cc failed to build the wine shim");
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// A crate with a feature that cannot compile, and a pipeline building it for two targets,
/// one of them with that feature.
fn broken_project(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"tiny\"\nversion = \"1.0.0\"\nedition = \"2021\"\n\n[features]\nbroken = []\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("src/main.rs"),
        "#[cfg(feature = \"broken\")]\ncompile_error!(\"broken on purpose\");\nfn main() {}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("shipit.toml"),
        format!(
            "version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\n\
             targets = [\"windows-x64\", \"linux-x64-musl\"]\n{extra}"
        ),
    )
    .unwrap();
    dir
}

#[test]
fn a_failing_target_is_named_and_stops_the_others_unless_keep_going() {
    let dir = broken_project("[stages.build.overrides.windows-x64]\nfeatures = [\"broken\"]\n");
    let target_dir = shared_target_dir("broken-target");
    let run = |extra: &[&str]| {
        shipit(dir.path())
            .args(["build", "-j", "1"])
            .args(extra)
            .env("CARGO_TARGET_DIR", &target_dir)
            .output()
            .unwrap()
    };

    let out = run(&[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("build windows-x64: failed"), "{stderr}");
    assert!(stderr.contains("broken on purpose"), "{stderr}");
    assert!(
        stderr.contains("dist/logs/build-windows-x64.log"),
        "{stderr}"
    );
    assert!(
        stderr.contains("build linux-x64-musl: cancelled"),
        "{stderr}"
    );
    assert!(!dir.path().join("dist/linux-x64-musl/tiny").exists());

    let out = run(&["--keep-going"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("build windows-x64: failed"), "{stderr}");
    assert!(stderr.contains("build linux-x64-musl: done"), "{stderr}");
    assert!(dir.path().join("dist/linux-x64-musl/tiny").is_file());
}

#[test]
fn a_linker_that_makes_the_wrong_binary_is_refused() {
    // A "linker" that leaves an arm64 ELF where an x64 one was asked for.
    let dir = broken_project("");
    let linker = dir.path().join("wrong-linker.sh");
    std::fs::write(
        &linker,
        "#!/bin/sh\nout=\nwhile [ $# -gt 0 ]; do [ \"$1\" = -o ] && out=\"$2\"; shift; done\n\
         # a 64-byte ELF header: 64-bit, little-endian, executable, machine 183 (aarch64)\n\
         printf '\\177ELF\\002\\001\\001\\000\\000\\000\\000\\000\\000\\000\\000\\000\\002\\000\\267\\000\\001\\000\\000\\000' > \"$out\"\n\
         head -c 40 /dev/zero >> \"$out\"\nchmod +x \"$out\"\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&linker)
        .status()
        .unwrap();
    let host = shipit::facts::host_triple(&shipit::facts::rustc_version());
    std::fs::write(
        dir.path().join("shipit.toml"),
        format!(
            "version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\ntargets = [\"host\"]\n\n\
             [stages.build.env]\nCARGO_TARGET_{}_LINKER = \"{}\"\n",
            host.to_uppercase().replace('-', "_"),
            linker.display()
        ),
    )
    .unwrap();
    let out = shipit(dir.path())
        .args(["build", "--no-cache"])
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is ELF arm64"), "{stderr}");
    assert!(
        stderr.contains("needs ELF x64; refusing to ship it"),
        "{stderr}"
    );
    let shipped = dir.path().join("dist/linux-x64/tiny");
    assert!(!shipped.exists(), "the wrong binary stayed in dist");
    assert!(!dir.path().join("dist/manifest.json").exists());
}

/// A PATH holding cargo and rustc but neither zig nor cargo-zigbuild.
fn path_without_zig() -> tempfile::TempDir {
    let bin = tempfile::tempdir().unwrap();
    for tool in ["cargo", "rustc", "rustup", "git"] {
        if let Ok(real) = which::which(tool) {
            std::os::unix::fs::symlink(real, bin.path().join(tool)).unwrap();
        }
    }
    bin
}

#[test]
fn no_provision_names_the_missing_tools_and_the_command_to_install_them() {
    let dir = broken_project("");
    let bin = path_without_zig();
    let cache = tempfile::tempdir().unwrap();
    let isolated = |cmd: &mut Command| {
        cmd.env("PATH", bin.path())
            .env("SHIPIT_CACHE_DIR", cache.path())
            .env_remove("ZIG");
    };

    let mut build = shipit(dir.path());
    build.args(["build", "--no-provision"]);
    isolated(&mut build);
    let out = build.output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--no-provision forbids installing them"),
        "{stderr}"
    );
    let venv = cache.path().join("tools/zigbuild");
    assert!(
        stderr.contains(&format!(
            "python3 -m venv {0} && {0}/bin/pip install ziglang cargo-zigbuild",
            venv.display()
        )),
        "{stderr}"
    );
    assert!(!venv.exists(), "--no-provision installed something");

    let mut doctor = shipit(dir.path());
    doctor.arg("doctor");
    isolated(&mut doctor);
    let out = doctor.output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    for needle in [
        "windows-x64",
        "x86_64-pc-windows-gnu",
        "cargo zigbuild",
        "MISSING cargo-zigbuild and zig",
        "fix: python3 -m venv",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
}

/// The workspace the reproducibility test builds: two crates with real dependencies, C code
/// compiled by the `cc` crate, LTO and debug info, and its own rustflags in
/// `.cargo/config.toml` (a `--cfg` the binary reports).
fn reproducible_workspace(root: &Path) {
    for dir in ["app/src", "core/src", ".cargo"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    let files = [
        (
            "Cargo.toml",
            "[workspace]\nmembers = [\"app\", \"core\"]\nresolver = \"2\"\n\n\
             [profile.release]\nlto = true\ndebug = 1\ncodegen-units = 1\n",
        ),
        (
            ".cargo/config.toml",
            "[build]\nrustflags = [\"--cfg\", \"repro_own_flag\"]\n",
        ),
        (
            "core/Cargo.toml",
            "[package]\nname = \"repro-core\"\nversion = \"0.3.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nserde = { version = \"1\", features = [\"derive\"] }\nserde_json = \"1\"\nsha2 = \"0.10\"\nhex = \"0.4\"\n",
        ),
        (
            "core/src/lib.rs",
            "use serde::{Deserialize, Serialize};\nuse sha2::Digest;\n\
             #[derive(Serialize, Deserialize)]\npub struct Report { pub name: String, pub digest: String }\n\
             pub fn report(name: &str) -> String {\n    let digest = hex::encode(sha2::Sha256::digest(name.as_bytes()));\n    \
             serde_json::to_string(&Report { name: name.into(), digest }).unwrap()\n}\n",
        ),
        (
            "app/Cargo.toml",
            "[package]\nname = \"repro\"\nversion = \"0.3.0\"\nedition = \"2021\"\nlicense = \"MIT/Apache-2.0\"\n\n\
             [dependencies]\nrepro-core = { path = \"../core\" }\n\n[build-dependencies]\ncc = \"1\"\n\n\
             [lints.rust]\nunexpected_cfgs = { level = \"allow\" }\n",
        ),
        (
            "app/build.rs",
            "fn main() {\n    cc::Build::new().file(\"src/probe.c\").compile(\"probe\");\n}\n",
        ),
        (
            "app/src/probe.c",
            "#include <stdint.h>\nuint32_t repro_probe(uint32_t x) { return x * 2654435761u; }\n",
        ),
        (
            "app/src/main.rs",
            "extern \"C\" { fn repro_probe(x: u32) -> u32; }\n\
             fn main() {\n    let name = std::env::args().nth(1).unwrap_or_default();\n    \
             let own = if cfg!(repro_own_flag) { \"own flags applied\" } else { \"own flags lost\" };\n    \
             println!(\"{} {} {}\", repro_core::report(&name), unsafe { repro_probe(3) }, own);\n}\n",
        ),
        (
            "shipit.toml",
            "version = 1\n[project]\ncargo = \"app/Cargo.toml\"\ndist = \"dist\"\n\n\
             [stages.build]\nuses = \"cargo\"\n\
             targets = [\"linux-x64\", \"linux-arm64\", \"linux-x64-musl\", \"linux-arm64-musl\", \"darwin-x64\", \"darwin-arm64\", \"darwin-universal\", \"windows-x64\"]\n\n\
             [stages.package]\nneeds = [\"build\"]\nuses = \"archive\"\n\n\
             [stages.checksum]\nneeds = [\"package\"]\nuses = \"checksum\"\n",
        ),
    ];
    for (path, text) in files {
        std::fs::write(root.join(path), text).unwrap();
    }
}

/// A user's home under `dir` for the reproducibility test: its own cargo home, holding the
/// crates this machine's cargo downloaded (hard links), and this machine's toolchains.
fn another_home(dir: &Path) -> PathBuf {
    let home = dir.join("home");
    let registry = home.join(".cargo/registry");
    std::fs::create_dir_all(&registry).unwrap();
    let own = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    for part in ["cache", "index"] {
        let copy = Command::new("cp")
            .arg("-al")
            .arg(own.join("registry").join(part))
            .arg(registry.join(part))
            .output()
            .unwrap();
        assert!(copy.status.success(), "{:?}", text(&copy));
    }
    home
}

/// Real projects (issue 20, point 1; issue 31, path-independent builds): the workspace above,
/// built from clean for every target in two clones at different paths, by users with different
/// home folders and cargo homes: every archive is the same, byte for byte, and the project's
/// own rustflags still apply. The linkers write link times, PDB GUIDs, Mach-O UUIDs and
/// debug-map times that differ on every link; shipit derives them; the folders are remapped
/// (regression, issue 31: the macOS debug map and zig's C runtime named the build folder).
#[test]
fn a_workspace_with_dependencies_lto_and_debug_info_is_byte_reproducible_for_every_target() {
    require("llvm-nm");
    let places = tempfile::tempdir().unwrap();
    let a = places.path().join("a");
    let b = places.path().join("second-user/somewhere/deeper");
    let rustup_home = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".rustup"));
    let cache = shipit::toolchain::cache_dir();
    let build = |place: &Path| {
        let root = place.join("project");
        reproducible_workspace(&root);
        let home = another_home(place);
        let lock = Command::new("cargo")
            .args(["generate-lockfile", "--offline"])
            .current_dir(&root)
            .env("HOME", &home)
            .env("CARGO_HOME", home.join(".cargo"))
            .env("RUSTUP_HOME", &rustup_home)
            .output()
            .unwrap();
        assert!(lock.status.success(), "{:?}", text(&lock));
        let out = shipit(&root)
            .args(["build", "--no-cache"])
            .env("HOME", &home)
            .env("CARGO_HOME", home.join(".cargo"))
            .env("RUSTUP_HOME", &rustup_home)
            .env("SHIPIT_CACHE_DIR", &cache)
            .env("CARGO_TARGET_DIR", root.join("target"))
            .env("CARGO_NET_OFFLINE", "true")
            .env("SOURCE_DATE_EPOCH", "1767322800")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
        std::fs::read_to_string(root.join("dist/SHA256SUMS")).unwrap()
    };
    let first = build(&a);
    assert_eq!(first.lines().count(), 8, "{first}");
    let root = a.join("project");
    let darwin_arm = root.join("dist/darwin-arm64/repro");
    let header = binfmt::read(&darwin_arm).unwrap();
    assert_eq!(header.arches, vec!["arm64".to_string()]);
    // The universal binary holds both architectures, and its archive is checksummed.
    let universal = binfmt::read(&root.join("dist/darwin-universal/repro")).unwrap();
    let mut arches = universal.arches.clone();
    arches.sort();
    assert_eq!(arches, ["arm64", "x64"], "{universal}");
    assert!(
        first
            .lines()
            .any(|l| l.ends_with("repro-0.3.0-darwin-universal.tar.gz")),
        "{first}"
    );
    // Targets built the same way share one cargo (its command names them all), and no cargo
    // ever waits for another's lock on the target folder.
    let logs = root.join("dist/logs");
    let musl = std::fs::read_to_string(logs.join("build-linux-x64-musl.log")).unwrap();
    let command = musl.lines().find(|l| l.starts_with("$ cargo")).unwrap();
    for triple in [
        "x86_64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
        "x86_64-pc-windows-gnu",
    ] {
        assert!(command.contains(&format!("--target {triple}")), "{command}");
    }
    // The universal binary is assembled from those two builds, not compiled a third time.
    let universal_log = std::fs::read_to_string(logs.join("build-darwin-universal.log")).unwrap();
    assert!(
        universal_log.contains("# shipit: assembled")
            && !command.contains("universal2-apple-darwin"),
        "{universal_log}"
    );
    for entry in std::fs::read_dir(&logs).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("Blocking waiting for file lock"),
            "{}:\n{text}",
            path.display()
        );
    }
    // The project's own rustflags and its C code are in the binary.
    let ran = Command::new(root.join("dist/linux-x64-musl/repro"))
        .arg("x")
        .output()
        .unwrap();
    let said = text(&ran).0;
    assert!(
        said.contains("own flags applied")
            && said.contains(&3u32.wrapping_mul(2654435761).to_string()),
        "{said}"
    );
    // No folder of this machine is left in a binary.
    for binary in [
        "linux-x64/repro",
        "linux-arm64/repro",
        "linux-arm64-musl/repro",
        "windows-x64/repro.exe",
        "darwin-arm64/repro",
        "darwin-x64/repro",
        "darwin-universal/repro",
    ] {
        let bytes = std::fs::read(root.join("dist").join(binary)).unwrap();
        for folder in [
            places.path().to_str().unwrap(),
            rustup_home.to_str().unwrap(),
        ] {
            if let Some(at) = bytes
                .windows(folder.len())
                .position(|w| w == folder.as_bytes())
            {
                let start = bytes[..at]
                    .iter()
                    .rposition(|b| !b.is_ascii_graphic())
                    .map_or(0, |i| i + 1);
                let end = bytes[at..]
                    .iter()
                    .position(|b| !b.is_ascii_graphic())
                    .map_or(bytes.len(), |i| at + i);
                panic!(
                    "{binary} holds {folder}: {}",
                    String::from_utf8_lossy(&bytes[start..end])
                );
            }
        }
    }
    // The macOS debug map still names the object files, as the build's folders are named.
    let nm = Command::new("llvm-nm")
        .args(["--debug-syms"])
        .arg(&darwin_arm)
        .output()
        .unwrap();
    let symbols = text(&nm).0;
    let objects: Vec<&str> = symbols.lines().filter(|l| l.contains(" OSO ")).collect();
    assert!(
        nm.status.success()
            && !objects.is_empty()
            && objects.iter().all(|l| l.contains(" ./target/")
                || l.contains(" /rustc/")
                || l.contains(" /cargo/")),
        "{symbols}"
    );
    let second = build(&b);
    std::fs::remove_dir_all(root.join("target")).unwrap();
    std::fs::remove_dir_all(root.join("dist")).unwrap();
    assert_eq!(first, build(&a), "two clean builds in one place differ");
    assert_eq!(first, second, "two clean builds in two places differ");
}

/// The newest `GLIBC_2.N` symbol version a Linux binary needs (from its version strings).
fn newest_glibc(binary: &Path) -> (u32, u32) {
    let data = std::fs::read(binary).unwrap();
    let needle = b"GLIBC_2.";
    let mut newest = (0, 0);
    for at in data
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i + needle.len())
    {
        let digits: String = data[at..]
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .map(|b| *b as char)
            .collect();
        let minor: u32 = digits.split('.').next().unwrap_or("").parse().unwrap_or(0);
        newest = newest.max((2, minor));
    }
    newest
}

/// A gnu target pinned to an old glibc (`glibc = "2.17"`) needs no newer symbol, and runs here.
#[test]
fn a_gnu_target_pinned_to_glibc_2_17_needs_nothing_newer() {
    let dir = tempfile::tempdir().unwrap();
    tiny_crate(dir.path(), "1.0.0");
    std::fs::write(
        dir.path().join("src/main.rs"),
        "fn main() {\n    let now = std::time::SystemTime::now();\n    let t = std::thread::spawn(move || now.elapsed().is_ok());\n    println!(\"pinned {}\", t.join().unwrap());\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("shipit.toml"),
        "version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\ntargets = [\"linux-x64\"]\nglibc = \"2.17\"\n",
    )
    .unwrap();
    let out = shipit(dir.path())
        .arg("build")
        .env("CARGO_TARGET_DIR", shared_target_dir("glibc-pin"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let binary = dir.path().join("dist/linux-x64/tiny");
    let newest = newest_glibc(&binary);
    assert!(newest > (2, 0), "no glibc version found: not a gnu binary?");
    assert!(newest <= (2, 17), "needs GLIBC_2.{}", newest.1);
    let run = Command::new(&binary).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "pinned true\n");
    // Unpinned, the same program links against this machine's newer glibc: the check can fail.
    std::fs::write(
        dir.path().join("shipit.toml"),
        "version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\ntargets = [\"linux-x64\"]\n",
    )
    .unwrap();
    let out = shipit(dir.path())
        .arg("build")
        .env("CARGO_TARGET_DIR", shared_target_dir("glibc-unpinned"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert!(
        newest_glibc(&binary) > (2, 17),
        "the unpinned build needs only 2.17 too"
    );
}

/// `shipit plan` and `--dry-run` show which targets one cargo builds together and why the others
/// are built apart (the host with plain cargo, a glibc pin, a target's own overrides).
#[test]
fn the_plan_shows_the_cargo_invocations_and_why_targets_are_apart() {
    let dir = tempfile::tempdir().unwrap();
    crate::common::tiny_crate(dir.path(), "1.0.0");
    let plan = |extra: &str| {
        std::fs::write(
            dir.path().join("shipit.toml"),
            format!(
                "version = 1\n\n[stages.build]\nuses = \"cargo\"\nlocked = false\n{extra}\n\
                 [stages.build.overrides.windows-x64]\nfeatures = []\n"
            ),
        )
        .unwrap();
        let out = shipit(dir.path()).arg("plan").output().unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        stdout
    };
    let stdout =
        plan("targets = [\"host\", \"linux-x64-musl\", \"linux-arm64-musl\", \"windows-x64\"]");
    for needle in [
        "one cargo builds linux-x64-musl, linux-arm64-musl together",
        "windows-x64 built apart: `windows-x64` has its own overrides",
        "built apart: the host builds with plain cargo",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    let stdout =
        plan("targets = [\"linux-x64-musl\", \"linux-arm64\", \"windows-x64\"]\nglibc = \"2.17\"");
    assert!(
        stdout.contains("linux-arm64 built apart: pinned to glibc 2.17"),
        "{stdout}"
    );
    let stdout =
        plan("targets = [\"darwin-x64\", \"darwin-arm64\", \"darwin-universal\", \"windows-x64\"]");
    assert!(
        stdout.contains("one cargo builds darwin-x64, darwin-arm64 together")
            && stdout.contains(
                "darwin-universal is assembled from the darwin-x64 and darwin-arm64 builds"
            ),
        "{stdout}"
    );
    // A split part building only darwin-universal compiles it whole: its slices are not there.
    let out = shipit(dir.path())
        .args([
            "build",
            "--dry-run",
            "--split",
            "--targets",
            "darwin-universal",
        ])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(
        stderr
            .contains("build: darwin-universal built apart: its slices are not built in this part")
            && !stderr.contains("build darwin-x64"),
        "{stderr}"
    );
    let stdout = plan("targets = [\"windows-x64\", \"darwin-universal\"]");
    assert!(
        stdout.contains("darwin-universal built apart: without darwin-x64 and darwin-arm64"),
        "{stdout}"
    );
    let out = shipit(dir.path())
        .args(["build", "--dry-run"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("build: darwin-universal built apart: without darwin-x64"),
        "{stderr}"
    );
}

/// Two targets in one cargo invocation, one of which does not compile: cargo's messages name
/// the binaries it made, so the failing target is named with the compiler's lines and the other
/// is built and collected (the invocation goes on with `--keep-going`).
#[test]
fn a_target_failing_inside_a_shared_invocation_is_named_and_the_other_is_built() {
    let dir = broken_project("");
    std::fs::write(
        dir.path().join("src/main.rs"),
        "#[cfg(windows)]\ncompile_error!(\"no windows here\");\nfn main() {}\n",
    )
    .unwrap();
    let out = shipit(dir.path())
        .arg("build")
        .env(
            "CARGO_TARGET_DIR",
            shared_target_dir("shared-invocation-target"),
        )
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("build windows-x64: failed"), "{stderr}");
    assert!(stderr.contains("no windows here"), "{stderr}");
    assert!(stderr.contains("build linux-x64-musl: done"), "{stderr}");
    assert!(dir.path().join("dist/linux-x64-musl/tiny").is_file());
    assert!(!dir.path().join("dist/windows-x64/tiny.exe").exists());
    // cargo does not say whose an error is; the crate that made nothing for windows tells.
    let windows =
        std::fs::read_to_string(dir.path().join("dist/logs/build-windows-x64.log")).unwrap();
    let own = windows
        .split("# shipit: the compiler's errors for windows-x64:")
        .nth(1)
        .unwrap_or_else(|| panic!("no errors of its own in:\n{windows}"));
    assert!(own.contains("error: no windows here"), "{windows}");
    let log =
        std::fs::read_to_string(dir.path().join("dist/logs/build-linux-x64-musl.log")).unwrap();
    assert!(!log.contains("# shipit: the compiler's errors"), "{log}");
    let command = log.lines().find(|l| l.starts_with("$ cargo")).unwrap();
    assert!(
        command.contains("--target x86_64-pc-windows-gnu --target x86_64-unknown-linux-musl"),
        "in plan order: {command}"
    );
}
