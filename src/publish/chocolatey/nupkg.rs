//! A Chocolatey package, built natively: the `.nuspec`, `tools/chocolateyinstall.ps1` (the
//! release's zip addresses and SHA-256 digests, which Chocolatey checks before unpacking), and
//! the Open Packaging Conventions parts NuGet writes (`[Content_Types].xml`, `_rels/.rels`,
//! the core properties), in a zip with fixed times so the same release gives the same bytes.

use std::io::Write;

use sha2::{Digest, Sha256};

use crate::quote::{powershell, xml};

/// The nuspec namespace Chocolatey packages use.
pub const NUSPEC_NAMESPACE: &str = "http://schemas.microsoft.com/packaging/2015/06/nuspec.xsd";

/// What the `.nuspec` says.
#[derive(Debug, Clone)]
pub struct Nuspec {
    /// Package id.
    pub id: String,
    /// Version (SemVer 2).
    pub version: String,
    /// Title.
    pub title: String,
    /// Authors.
    pub authors: String,
    /// Description.
    pub description: String,
    /// Summary.
    pub summary: Option<String>,
    /// Project page.
    pub project_url: Option<String>,
    /// License's address.
    pub license_url: Option<String>,
    /// Icon's address.
    pub icon_url: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Release notes.
    pub release_notes: Option<String>,
    /// Users must accept the license.
    pub require_license_acceptance: bool,
    /// The source repository and commit.
    pub repository: Option<(String, String)>,
}

impl Nuspec {
    /// The `.nuspec` document.
    pub fn render(&self) -> String {
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<package xmlns=\"{NUSPEC_NAMESPACE}\">\n  <metadata>\n"
        );
        let mut element = |name: &str, value: &str| {
            out.push_str(&format!("    <{name}>{}</{name}>\n", xml(value)));
        };
        element("id", &self.id);
        element("version", &self.version);
        element("title", &self.title);
        element("authors", &self.authors);
        if let Some(url) = &self.project_url {
            element("projectUrl", url);
        }
        if let Some(url) = &self.license_url {
            element("licenseUrl", url);
        }
        if let Some(url) = &self.icon_url {
            element("iconUrl", url);
        }
        element(
            "requireLicenseAcceptance",
            if self.require_license_acceptance {
                "true"
            } else {
                "false"
            },
        );
        element("description", &self.description);
        if let Some(summary) = &self.summary {
            element("summary", summary);
        }
        if let Some(notes) = &self.release_notes {
            element("releaseNotes", notes);
        }
        if !self.tags.is_empty() {
            element("tags", &self.tags.join(" "));
        }
        if let Some((url, commit)) = &self.repository {
            out.push_str(&format!(
                "    <repository type=\"git\" url=\"{}\" commit=\"{}\" />\n",
                xml(url),
                xml(commit)
            ));
        }
        out.push_str("  </metadata>\n</package>\n");
        out
    }
}

/// A zip to download, and its SHA-256.
#[derive(Debug, Clone)]
pub struct Download {
    /// Its address.
    pub url: String,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

/// `tools/chocolateyinstall.ps1`: unpacks the zip for the machine (32- or 64-bit) into the
/// package's folder, where Chocolatey puts a shim on PATH for each `.exe`; every value is a
/// single-quoted PowerShell string.
pub fn install_script(x86: Option<&Download>, x64: Option<&Download>) -> String {
    let mut args = String::new();
    if let Some(d) = x86 {
        args.push_str(&format!(
            "  url            = {}\n  checksum       = {}\n  checksumType   = 'sha256'\n",
            powershell(&d.url),
            powershell(&d.sha256)
        ));
    }
    if let Some(d) = x64 {
        args.push_str(&format!(
            "  url64bit       = {}\n  checksum64     = {}\n  checksumType64 = 'sha256'\n",
            powershell(&d.url),
            powershell(&d.sha256)
        ));
    }
    format!(
        "# Written by shipit. Chocolatey downloads the release's zip, refuses it unless its\n\
         # SHA-256 is the one below, and unpacks it into this package's folder.\n\
         $ErrorActionPreference = 'Stop'\n\
         $toolsDir = Split-Path -Parent $MyInvocation.MyCommand.Definition\n\
         \n\
         $packageArgs = @{{\n\
         \x20 packageName    = $env:ChocolateyPackageName\n\
         \x20 unzipLocation  = $toolsDir\n\
         {args}}}\n\
         \n\
         Install-ChocolateyZipPackage @packageArgs\n"
    )
}

/// The `.nupkg`: the nuspec, the install script and the packaging parts, entries dated
/// `mtime`.
pub fn build(nuspec: &Nuspec, script: &str, mtime: u64) -> zip::result::ZipResult<Vec<u8>> {
    let nuspec_text = nuspec.render();
    // Part names NuGet makes random are derived from the content, for the same bytes each time.
    let seed = hex::encode(Sha256::digest(nuspec_text.as_bytes()));
    let properties = format!(
        "package/services/metadata/core-properties/{}.psmdcp",
        &seed[..32]
    );
    let nuspec_name = format!("{}.nuspec", nuspec.id);
    let content_types = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
        <Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
        <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\" />\
        <Default Extension=\"nuspec\" ContentType=\"application/octet\" />\
        <Default Extension=\"ps1\" ContentType=\"application/octet\" />\
        <Default Extension=\"psmdcp\" ContentType=\"application/vnd.openxmlformats-package.core-properties+xml\" />\
        </Types>\n";
    let rels = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
         <Relationship Type=\"http://schemas.microsoft.com/packaging/2010/07/manifest\" Target=\"/{}\" Id=\"R{}\" />\
         <Relationship Type=\"http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties\" Target=\"/{}\" Id=\"R{}\" />\
         </Relationships>\n",
        xml(&nuspec_name),
        &seed[32..48],
        properties,
        &seed[48..64]
    );
    let core = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <coreProperties xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:dcterms=\"http://purl.org/dc/terms/\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xmlns=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\">\
         <dc:creator>{}</dc:creator><dc:description>{}</dc:description><dc:identifier>{}</dc:identifier>\
         <version>{}</version><keywords>{}</keywords><lastModifiedBy>shipit</lastModifiedBy>\
         </coreProperties>\n",
        xml(&nuspec.authors),
        xml(&nuspec.description),
        xml(&nuspec.id),
        xml(&nuspec.version),
        xml(&nuspec.tags.join(" "))
    );
    let entries: [(&str, &[u8]); 5] = [
        ("[Content_Types].xml", content_types.as_bytes()),
        ("_rels/.rels", rels.as_bytes()),
        (&nuspec_name, nuspec_text.as_bytes()),
        (&properties, core.as_bytes()),
        ("tools/chocolateyinstall.ps1", script.as_bytes()),
    ];
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(crate::archive::zip_time(mtime))
        .unix_permissions(0o644);
    for (name, bytes) in entries {
        zip.start_file(name, options)?;
        zip.write_all(bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nuspec() -> Nuspec {
        Nuspec {
            id: "demo".into(),
            version: "1.2.0".into(),
            title: "Demo <&> \"it's\"".into(),
            authors: "Ada".into(),
            description: "A demo".into(),
            summary: None,
            project_url: Some("https://github.com/acme/demo".into()),
            license_url: None,
            icon_url: None,
            tags: vec!["cli".into(), "http".into()],
            release_notes: None,
            require_license_acceptance: false,
            repository: Some(("https://github.com/acme/demo".into(), "abc".into())),
        }
    }

    #[test]
    fn values_are_escaped_in_the_nuspec_and_quoted_in_the_script() {
        let text = nuspec().render();
        assert!(
            text.contains("<title>Demo &lt;&amp;&gt; &quot;it&apos;s&quot;</title>"),
            "{text}"
        );
        assert!(text.contains("<tags>cli http</tags>"), "{text}");
        let script = install_script(
            None,
            Some(&Download {
                url: "https://x/a'b\u{2019}c.zip".into(),
                sha256: "ab".into(),
            }),
        );
        assert!(
            script.contains("url64bit       = 'https://x/a''b\u{2019}\u{2019}c.zip'"),
            "{script}"
        );
        assert!(!script.contains("  url            ="), "{script}");
        assert!(script.contains("checksumType64 = 'sha256'"), "{script}");
    }

    #[test]
    fn the_same_package_builds_to_the_same_bytes_with_the_nuspec_at_the_root() {
        let script = install_script(None, None);
        let one = build(&nuspec(), &script, 1_700_000_000).unwrap();
        assert_eq!(one, build(&nuspec(), &script, 1_700_000_000).unwrap());
        let zip = zip::ZipArchive::new(std::io::Cursor::new(one)).unwrap();
        let mut names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
        names.sort();
        assert_eq!(
            names[..3],
            ["[Content_Types].xml", "_rels/.rels", "demo.nuspec"]
        );
        assert!(names[3].starts_with("package/services/metadata/core-properties/"));
        assert_eq!(names[4], "tools/chocolateyinstall.ps1");
    }
}
