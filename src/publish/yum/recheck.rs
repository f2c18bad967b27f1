//! What a YUM repository holds of the release's rpms, read as dnf reads it: `repomd.xml`
//! checked against its detached signature, every metadata file it names against its SHA-256,
//! then each package as `primary` lists it and as `packages/` holds it. The folder is
//! untrusted: it is read only through a [`Tree`], and the gzipped primary is inflated to a
//! bounded size.

use std::io::Read;
use std::path::PathBuf;

use crate::file_error::FileError;
use crate::openpgp::PgpPublicKey;
use crate::publish::folder::Tree;
use crate::publish::recheck::Finding;

/// The most an inflated `primary.xml` may hold.
const MAX_PRIMARY: u64 = 1 << 30;

/// Compares the repository under `tree` with the rpms built.
pub fn recheck(
    tree: &Tree<'_>,
    rpms: &[PathBuf],
    key: &PgpPublicKey,
) -> Result<Vec<Finding>, FileError> {
    let mut findings = Vec::new();
    let repomd_path = "repodata/repomd.xml";
    let signer = format!("signed by {}", key.fingerprint());
    let repomd = tree.read_text(repomd_path)?.unwrap_or_default();
    let signature = tree.read("repodata/repomd.xml.asc")?;
    let signed = match &signature {
        Some(signature) if !repomd.is_empty() => {
            Some(match key.verify_detached(repomd.as_bytes(), signature) {
                Ok(()) => signer.clone(),
                Err(_) => "no valid signature by that key".into(),
            })
        }
        _ => None,
    };
    let trusted = signed.as_deref() == Some(signer.as_str());
    findings.push(Finding::new(repomd_path, &signer, signed));
    let mut primary = Vec::new();
    if trusted {
        for data in blocks(&repomd, "<data ", "</data>") {
            let (Some(href), Some(sum)) = (location(data), checksum(data)) else {
                continue;
            };
            let found = tree.sha256(&href)?;
            let holds = found.as_deref() == Some(sum.as_str());
            findings.push(Finding::sha256(&href, &sum, found.as_deref()));
            if holds && data.starts_with("<data type=\"primary\"") {
                primary = packages(tree, &href)?;
            }
        }
    }
    for rpm in rpms {
        let name = rpm
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (_, sha256) = crate::manifest::hash_file(rpm).map_err(FileError::on("read", rpm))?;
        let href = format!("packages/{name}");
        let listed = primary.iter().find(|(h, _)| *h == href).map(|(_, s)| s);
        findings.push(Finding::sha256(
            format!("{name} as primary lists it"),
            &sha256,
            listed.map(String::as_str),
        ));
        let held = tree.sha256(&href)?;
        findings.push(Finding::sha256(href, &sha256, held.as_deref()));
    }
    Ok(findings)
}

/// `(location, sha256)` of every package the gzipped primary at `href` lists.
fn packages(tree: &Tree<'_>, href: &str) -> Result<Vec<(String, String)>, FileError> {
    let gz = tree.read(href)?.unwrap_or_default();
    let mut xml = String::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .take(MAX_PRIMARY)
        .read_to_string(&mut xml)
        .map_err(FileError::on("read", std::path::Path::new(href)))?;
    Ok(blocks(&xml, "<package ", "</package>")
        .filter_map(|p| Some((location(p)?, checksum(p)?)))
        .collect())
}

/// Each span of `text` from an `open` to the next `close`, the opening tag's attributes kept
/// (`<data type="primary"`).
fn blocks<'a>(text: &'a str, open: &'a str, close: &'a str) -> impl Iterator<Item = &'a str> {
    text.match_indices(open).filter_map(move |(start, _)| {
        let end = text[start..].find(close)?;
        Some(&text[start..start + end])
    })
}

/// `<location href="..."/>`, unescaped.
fn location(block: &str) -> Option<String> {
    let rest = block.split_once("<location href=\"")?.1;
    Some(unescape(rest.split_once('"')?.0))
}

/// The text of the block's `<checksum type="sha256" ...>`.
fn checksum(block: &str) -> Option<String> {
    let rest = block.split_once("<checksum type=\"sha256\"")?.1;
    let value = rest.split_once('>')?.1.split_once("</checksum>")?.0;
    Some(value.trim().to_ascii_lowercase())
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_blocks_keep_their_type_and_give_location_and_checksum() {
        let repomd = "<repomd>\n<data type=\"primary\">\n<checksum type=\"sha256\">AB</checksum>\n<open-checksum type=\"sha256\">cd</open-checksum>\n<location href=\"repodata/ab-primary.xml.gz\"/>\n</data>\n<data type=\"other\"><checksum type=\"sha256\">ef</checksum><location href=\"repodata/x&amp;y\"/></data></repomd>";
        let found: Vec<(&str, Option<String>, Option<String>)> =
            blocks(repomd, "<data ", "</data>")
                .map(|b| (&b[..20], location(b), checksum(b)))
                .collect();
        assert_eq!(found.len(), 2);
        assert!(found[0].0.starts_with("<data type=\"primary\""));
        assert_eq!(found[0].1.as_deref(), Some("repodata/ab-primary.xml.gz"));
        assert_eq!(found[0].2.as_deref(), Some("ab"));
        assert_eq!(found[1].1.as_deref(), Some("repodata/x&y"));
    }
}
