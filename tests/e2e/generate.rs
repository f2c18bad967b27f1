//! `uses = "generate"`: completions and a man page the built binary prints, shipped by the
//! archive and the .deb that name them under `dist/generated/`, with the pipeline's own
//! `dist = "dist"` and the default `--pipeline` (nothing there is looked for before the build).

use crate::common::{git, require, shipit, text, tiny_crate};

const MAIN: &str = r#"fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("completions") => println!("complete -W 'serve' tiny # {}", args[2]),
        Some("man") => print!(".TH TINY 1\n.SH NAME\ntiny \\- a tiny tool\n"),
        _ => println!("tiny"),
    }
}
"#;

const PIPELINE: &str = r#"version = 1

[project]
dist = "dist"

[stages.build]
uses = "cargo"
locked = false
targets = ["linux-x64-musl"]

[stages.generate]
uses = "generate"
needs = ["build"]
files = [
  { path = "completions/tiny.bash", command = ["tiny", "completions", "bash"] },
  { path = "man/tiny.1", command = ["tiny", "man"] },
]

[stages.package]
uses = "archive"
needs = ["build", "generate"]
files = [{ src = "dist/generated/completions/tiny.bash", dst = "completions/" }]

[stages.deb]
uses = "deb"
needs = ["build", "generate"]
maintainer = "Ada <ada@example.com>"
license = "MIT"
description = "A tiny tool"
completions = { bash = "dist/generated/completions/tiny.bash" }
man = ["dist/generated/man/tiny.1"]
"#;

#[test]
fn generated_completions_and_man_pages_reach_the_archive_and_the_deb() {
    require("dpkg-deb");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    tiny_crate(root, "1.0.0");
    std::fs::write(root.join("src/main.rs"), MAIN).unwrap();
    std::fs::write(root.join(".gitignore"), "target/\ndist/\n").unwrap();
    std::fs::write(root.join("shipit.toml"), PIPELINE).unwrap();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "feat: first"]);
    let run = |args: &[&str]| {
        let out = shipit(root)
            .args(args)
            .env("CARGO_TARGET_DIR", root.join("target"))
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        (out.status.code(), format!("{stdout}{stderr}"))
    };
    let (code, out) = run(&["check"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(&["build"]);
    assert_eq!(code, Some(0), "{out}");
    let completion =
        std::fs::read_to_string(root.join("dist/generated/completions/tiny.bash")).unwrap();
    assert_eq!(completion, "complete -W 'serve' tiny # bash\n");

    let listing = std::process::Command::new("tar")
        .arg("tzf")
        .arg(root.join("dist/tiny-1.0.0-linux-x64-musl.tar.gz"))
        .output()
        .unwrap();
    assert!(
        text(&listing)
            .0
            .lines()
            .any(|l| l == "tiny-1.0.0-linux-x64-musl/completions/tiny.bash"),
        "{:?}",
        text(&listing)
    );
    let deb = root.join("dist/tiny_1.0.0-1_amd64.deb");
    let contents = std::process::Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .unwrap();
    let (contents, _) = text(&contents);
    for path in [
        "./usr/share/bash-completion/completions/tiny",
        "./usr/share/man/man1/tiny.1.gz",
    ] {
        assert!(contents.contains(path), "no {path} in\n{contents}");
    }

    // A binary the needed stages do not build for this machine is named where it is written.
    std::fs::write(
        root.join("shipit.toml"),
        PIPELINE.replace("[\"tiny\", \"man\"]", "[\"other\", \"man\"]"),
    )
    .unwrap();
    let (code, out) = run(&["check"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("no stage this one needs builds `other` for this machine"),
        "{out}"
    );
    assert!(out.contains("shipit.toml:"), "{out}");
}
