//! The `[package.metadata.binstall]` block that lets `cargo binstall` find shipit's archives:
//! shipit names archives by target alias (`demo-1.0.0-linux-x64-musl.tar.gz`), which
//! cargo-binstall cannot guess from a Rust triple, so every target gets an override with its
//! own URL, format and folder; minisign signatures when a public key is given.

use crate::targets::Target;

/// The block for `targets`, with shipit's default archive names (`{name}-{version}-{alias}`,
/// a folder of the same name inside) and the `v` tag prefix. `public_key` is the base64 line of
/// a minisign public key: cargo-binstall then checks `<archive>.minisig` (a `sign` stage with
/// `artifacts = "all"`).
pub fn block(targets: &[Target], public_key: Option<&str>) -> String {
    let mut text = String::from(
        "[package.metadata.binstall]\n\
         pkg-url = \"{ repo }/releases/download/v{ version }/{ name }-{ version }-{ target }{ archive-suffix }\"\n\
         bin-dir = \"{ name }-{ version }-{ target }/{ bin }{ binary-ext }\"\n\
         pkg-fmt = \"tgz\"\n",
    );
    for target in targets {
        let (suffix, format) = if target.os == "windows" {
            (".zip", "zip")
        } else {
            (".tar.gz", "tgz")
        };
        let alias = &target.name;
        text.push_str(&format!(
            "\n[package.metadata.binstall.overrides.{triple}]\n\
             pkg-url = \"{{ repo }}/releases/download/v{{ version }}/{{ name }}-{{ version }}-{alias}{suffix}\"\n\
             bin-dir = \"{{ name }}-{{ version }}-{alias}/{{ bin }}{{ binary-ext }}\"\n\
             pkg-fmt = \"{format}\"\n",
            triple = target.triple,
        ));
    }
    if let Some(key) = public_key {
        text.push_str(&format!(
            "\n[package.metadata.binstall.signing]\nalgorithm = \"minisign\"\npubkey = \"{key}\"\nfile = \"{{ url }}.minisig\"\n"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_gets_its_own_url_folder_and_format() {
        let targets: Vec<Target> = ["linux-x64-musl", "windows-x64"]
            .iter()
            .map(|t| Target::parse(t, "x86_64-unknown-linux-gnu").unwrap())
            .collect();
        let text = block(&targets, Some("RWQabc"));
        let parsed: toml::Table = text.parse().unwrap();
        let overrides = &parsed["package"]["metadata"]["binstall"]["overrides"];
        let windows = &overrides["x86_64-pc-windows-gnu"];
        assert_eq!(
            windows["pkg-url"].as_str().unwrap(),
            "{ repo }/releases/download/v{ version }/{ name }-{ version }-windows-x64.zip"
        );
        assert_eq!(windows["pkg-fmt"].as_str().unwrap(), "zip");
        assert_eq!(
            parsed["package"]["metadata"]["binstall"]["signing"]["algorithm"].as_str(),
            Some("minisign")
        );
    }
}
