//! The build cache: a unit is reused only while everything that changes its output is the
//! same. Each input named in the README (sources are covered in `cli.rs`) is changed on its
//! own, with the pipeline file itself kept out of the inputs, and `--dry-run` must say the
//! unit would build; changed back, it is cached again.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::{shipit, text, tiny_crate};

const PIPELINE: &str = "version = 1\n\n[stages.build]\nuses = \"cargo\"\n";

/// `shipit build` (or `--dry-run`) in `dir` with `env`; combined output.
fn build(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = shipit(dir);
    command
        .arg("build")
        .args(args)
        .env("CARGO_TARGET_DIR", dir.join("target"));
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    format!("{stdout}{stderr}")
}

const CACHED: &str = "cached: inputs unchanged, output intact";
const CHANGED: &str = "would build: its inputs changed";

/// A `rustc` that is the real one but reports another release, as an upgraded toolchain does.
fn other_toolchain(dir: &Path) -> String {
    let real = which::which("rustc").unwrap();
    let bin = dir.join("other-toolchain");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("rustc");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$1\" = \"-vV\" ]; then\n  '{}' -vV | sed 's/^release: .*/release: 1.999.0/'\nelse\n  exec '{}' \"$@\"\nfi\n",
            real.display(),
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn the_cache_key_covers_lock_features_flags_environment_and_toolchain() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    tiny_crate(root, "1.0.0");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        format!("{manifest}\n[features]\nextra = []\n"),
    )
    .unwrap();
    // The pipeline is not an input here, so a changed option is seen through the key alone.
    std::fs::write(
        root.join(".gitignore"),
        "target/\ndist/\nshipit.toml\nother-toolchain/\n",
    )
    .unwrap();
    std::fs::write(root.join("shipit.toml"), PIPELINE).unwrap();
    let lock = std::process::Command::new("cargo")
        .arg("generate-lockfile")
        .current_dir(root)
        .status()
        .unwrap();
    assert!(lock.success());
    build(root, &[], &[]);
    let dry = |env: &[(&str, &str)]| build(root, &["--dry-run"], env);
    assert!(dry(&[]).contains(CACHED), "{}", dry(&[]));

    let pipeline = |extra: &str| {
        std::fs::write(root.join("shipit.toml"), format!("{PIPELINE}{extra}")).unwrap();
    };
    // Cargo.lock.
    let lockfile = root.join("Cargo.lock");
    let locked = std::fs::read_to_string(&lockfile).unwrap();
    std::fs::write(&lockfile, format!("{locked}\n# another resolution\n")).unwrap();
    let out = dry(&[]);
    assert!(
        out.contains(&format!("{CHANGED}: Cargo.lock")),
        "Cargo.lock: {out}"
    );
    std::fs::write(&lockfile, &locked).unwrap();
    assert!(dry(&[]).contains(CACHED));

    // Features and flags in the pipeline.
    for (what, extra) in [
        ("features", "features = [\"extra\"]\n"),
        ("rustflags", "rustflags = \"-C opt-level=1\"\n"),
        ("profile", "profile = \"dev\"\n"),
    ] {
        pipeline(extra);
        let out = dry(&[]);
        assert!(out.contains(CHANGED), "{what}: {out}");
        pipeline("");
        assert!(dry(&[]).contains(CACHED), "{what} back");
    }

    // The environment cargo reads.
    for var in ["RUSTFLAGS", "CARGO_PROFILE_RELEASE_OPT_LEVEL", "CC"] {
        let value = if var == "CARGO_PROFILE_RELEASE_OPT_LEVEL" {
            "1"
        } else {
            "-O1"
        };
        let out = dry(&[(var, value)]);
        assert!(
            out.contains(&format!("{CHANGED}: the variable {var}")),
            "{var}: {out}"
        );
    }
    assert!(dry(&[]).contains(CACHED));
    // An unrelated variable is not an input.
    assert!(dry(&[("SHIPIT_TEST_UNRELATED", "1")]).contains(CACHED));

    // Another toolchain version.
    let path = other_toolchain(root);
    let out = dry(&[("PATH", path.as_str())]);
    assert!(
        out.contains(&format!("{CHANGED}: the toolchain (rustc -vV)")),
        "toolchain: {out}"
    );
    assert!(dry(&[]).contains(CACHED));
}
