//! SPDX 2.3 JSON: the document describes the project's package, which depends on each crate
//! and from which each binary (a file with its SHA-1 and SHA-256) is generated.

use serde_json::{Value, json};

use super::{Bom, Component, uuid_from};

/// An SPDX id for `n`-th element named `name`: `SPDXRef-` and letters, digits, `.` and `-`.
fn id(kind: &str, n: usize, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("SPDXRef-{kind}-{n}-{clean}")
}

fn package(c: &Component, spdx_id: &str, purpose: &str) -> Value {
    let mut value = json!({
        "SPDXID": spdx_id,
        "name": c.name,
        "versionInfo": c.version,
        "downloadLocation": if c.source.as_deref().is_some_and(|s| s.starts_with("registry+")) {
            format!("https://crates.io/api/v1/crates/{}/{}/download", c.name, c.version)
        } else {
            "NOASSERTION".to_owned()
        },
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": c.license.as_deref().unwrap_or("NOASSERTION"),
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": purpose,
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": c.purl,
        }],
    });
    if let Some(sha256) = &c.sha256 {
        value["checksums"] = json!([{ "algorithm": "SHA256", "checksumValue": sha256 }]);
    }
    if let Some(description) = &c.description {
        value["description"] = json!(description.trim());
    }
    value
}

/// The document.
pub fn render(bom: &Bom, project: &str) -> String {
    let subject_id = id("Package", 0, &bom.subject.name);
    let ids: Vec<String> = bom
        .components
        .iter()
        .enumerate()
        .map(|(i, c)| id("Package", i + 1, &c.name))
        .collect();
    let id_of = |purl: &str| {
        if purl == bom.subject.purl {
            return Some(subject_id.clone());
        }
        bom.components
            .iter()
            .position(|c| c.purl == purl)
            .map(|i| ids[i].clone())
    };
    let mut packages = vec![package(&bom.subject, &subject_id, "APPLICATION")];
    packages.extend(
        bom.components
            .iter()
            .zip(&ids)
            .map(|(c, spdx_id)| package(c, spdx_id, "LIBRARY")),
    );
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": subject_id,
    })];
    for c in std::iter::once(&bom.subject).chain(&bom.components) {
        let Some(from) = id_of(&c.purl) else { continue };
        for dep in &c.depends_on {
            if let Some(to) = id_of(dep) {
                relationships.push(json!({
                    "spdxElementId": from,
                    "relationshipType": "DEPENDS_ON",
                    "relatedSpdxElement": to,
                }));
            }
        }
    }
    let files: Vec<Value> = bom
        .binaries
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let file_id = id("File", i, &b.name);
            relationships.push(json!({
                "spdxElementId": file_id,
                "relationshipType": "GENERATED_FROM",
                "relatedSpdxElement": subject_id,
            }));
            json!({
                "SPDXID": file_id,
                "fileName": format!("./{}", b.name),
                "checksums": [
                    { "algorithm": "SHA1", "checksumValue": b.sha1 },
                    { "algorithm": "SHA256", "checksumValue": b.sha256 },
                ],
                "licenseConcluded": "NOASSERTION",
                "copyrightText": "NOASSERTION",
            })
        })
        .collect();
    let name = format!("{project}-{}-{}", bom.subject.version, bom.target.0);
    let document = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": format!(
            "https://spdx.org/spdxdocs/{name}-{}",
            uuid_from(&bom.content_id())
        ),
        "creationInfo": {
            "created": bom.created,
            "creators": [format!("Tool: shipit-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "files": files,
        "relationships": relationships,
    });
    format!("{document:#}\n")
}
