//! CycloneDX 1.6 JSON: the project as the BOM's subject, each crate a `library` component and
//! each binary a `file` component with its digests, and the dependency graph.

use serde_json::{Value, json};

use super::{Bom, Component, uuid_from};

/// A crate as a component.
fn library(c: &Component) -> Value {
    let mut value = json!({
        "type": "library",
        "bom-ref": c.purl,
        "name": c.name,
        "version": c.version,
        "purl": c.purl,
    });
    if let Some(description) = &c.description {
        value["description"] = json!(description.trim());
    }
    if let Some(license) = &c.license {
        value["licenses"] = json!([{ "expression": license }]);
    }
    if let Some(sha256) = &c.sha256 {
        value["hashes"] = json!([{ "alg": "SHA-256", "content": sha256 }]);
    }
    if c.source
        .as_deref()
        .is_some_and(|s| s.starts_with("registry+"))
    {
        value["externalReferences"] = json!([{
            "type": "distribution",
            "url": format!("https://crates.io/api/v1/crates/{}/{}/download", c.name, c.version),
        }]);
    }
    value
}

/// The document.
pub fn render(bom: &Bom) -> String {
    let mut subject = library(&bom.subject);
    subject["type"] = json!("application");
    subject["properties"] = json!([
        { "name": "shipit:target", "value": bom.target.0 },
        { "name": "shipit:triple", "value": bom.target.1 },
    ]);
    let mut components: Vec<Value> = bom.components.iter().map(library).collect();
    for binary in &bom.binaries {
        components.push(json!({
            "type": "file",
            "bom-ref": format!("file:{}", binary.name),
            "name": binary.name,
            "hashes": [
                { "alg": "SHA-256", "content": binary.sha256 },
                { "alg": "SHA-1", "content": binary.sha1 },
            ],
        }));
    }
    let mut dependencies = vec![json!({
        "ref": bom.subject.purl,
        "dependsOn": bom.subject.depends_on,
    })];
    dependencies.extend(
        bom.components
            .iter()
            .map(|c| json!({ "ref": c.purl, "dependsOn": c.depends_on })),
    );
    let document = json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", uuid_from(&bom.content_id())),
        "version": 1,
        "metadata": {
            "timestamp": bom.created,
            "tools": { "components": [{
                "type": "application",
                "name": "shipit",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": subject,
        },
        "components": components,
        "dependencies": dependencies,
    });
    format!("{document:#}\n")
}
