//! The pipeline file's JSON Schema: what `shipit schema` prints for editors, and what
//! `shipit check` uses to find unknown keys. One source for both, so they never disagree.

use serde_json::{Map, Value, json};

use super::{ChannelInfo, KindInfo, PipelineFile, TableInfo};

/// The JSON Schema (draft 2020-12) of a pipeline file with the options of `kinds`, the
/// sections of `channels`, the tables of `runtimes` and the keys of `routers` (what
/// [`super::Extensions::pipeline_schema`] keeps).
pub fn build(
    kinds: &[KindInfo],
    channels: &[ChannelInfo],
    runtimes: &[TableInfo],
    routers: &[TableInfo],
) -> Value {
    let mut root = schemars::schema_for!(PipelineFile).to_value();
    // Each runtime's table and each router's key is a property of its own, and no other key
    // (router keys stay open to whoever knows the routers when these extensions know none).
    for (def, infos) in [("DeployConfig", runtimes), ("RouterConfig", routers)] {
        if def == "RouterConfig" && infos.is_empty() {
            continue;
        }
        let tables = named_schemas(&mut root, infos);
        let config = &mut root["$defs"][def];
        if let Some(Value::Object(props)) = config.get_mut("properties") {
            props.extend(tables);
        }
        config["additionalProperties"] = json!(false);
    }
    root["$id"] = json!("https://shipit.dev/schema/pipeline-v1.json");
    root["properties"]["version"]["const"] = json!(1);
    let mut extra_defs = Map::new();
    let mut sections = Map::new();
    for channel in channels {
        let mut schema = channel.schema.clone();
        if let Some(Value::Object(defs)) = schema.get_mut("$defs").map(Value::take) {
            extra_defs.extend(defs);
        }
        if let Value::Object(object) = &mut schema {
            object.remove("$schema");
            object.remove("title");
        }
        schema["description"] = json!(channel.about);
        sections.insert(channel.name.to_string(), schema);
    }
    sections.insert(
        super::RELEASE_CHECK_KEY.to_string(),
        json!({
            "description": "Re-read every channel after publishing and compare it with the manifest (`release --check`). Default: true.",
            "type": "boolean",
        }),
    );
    root["properties"]["release"] = json!({
        "description": "Where `shipit release` publishes: one section per channel.",
        "type": "object",
        "properties": sections,
        "additionalProperties": false,
    });

    let names: Vec<&str> = kinds.iter().map(|k| k.name).collect();
    let mut extra_props: Map<String, Value> = Map::new();
    let mut kind_props: Vec<(&str, Map<String, Value>)> = Vec::new();
    for kind in kinds {
        let mut options = kind.options.clone();
        if let Some(Value::Object(defs)) = options.get_mut("$defs").map(Value::take) {
            extra_defs.extend(defs);
        }
        let mut this_kind = Map::new();
        if let Some(Value::Object(props)) = options.get_mut("properties").map(Value::take) {
            for (key, mut prop) in props {
                let note = format!("(`uses = \"{}\"`)", kind.name);
                let text = match prop.get("description").and_then(Value::as_str) {
                    Some(d) => format!("{d} {note}"),
                    None => note,
                };
                prop["description"] = json!(text);
                this_kind.insert(key.clone(), prop.clone());
                // Two kinds may share an option name with different shapes: either is allowed.
                match extra_props.remove(&key) {
                    Some(existing) if existing != prop => {
                        let mut branches = match existing.get("anyOf") {
                            Some(Value::Array(b)) if existing.get("x-shipit-merged").is_some() => {
                                b.clone()
                            }
                            _ => vec![existing],
                        };
                        branches.push(prop);
                        extra_props
                            .insert(key, json!({"anyOf": branches, "x-shipit-merged": true}));
                    }
                    _ => {
                        extra_props.insert(key, prop);
                    }
                }
            }
        }
        kind_props.push((kind.name, this_kind));
    }

    let stage = &mut root["$defs"]["StageConfig"];
    if let Some(Value::Object(props)) = stage.get_mut("properties") {
        props.extend(extra_props);
        props.insert(
            "uses".into(),
            json!({
                "description": "A built-in stage kind.",
                "type": "string",
                "enum": names,
            }),
        );
    }
    // Per kind, the stage schema with that kind's own option shapes (where two kinds share a
    // name), for checking nested keys of a stage that says which kind it is. Options of other
    // kinds stay known here: `shipit check` reports those as used on the wrong kind.
    let merged = root["$defs"]["StageConfig"].clone();
    for (kind, props) in kind_props {
        let mut stage = merged.clone();
        if let Some(Value::Object(all)) = stage.get_mut("properties") {
            all.extend(props);
        }
        extra_defs.insert(format!("Stage.{kind}"), stage);
    }
    if let Some(Value::Object(defs)) = root.get_mut("$defs") {
        for (name, def) in extra_defs {
            defs.entry(name).or_insert(def);
        }
    }
    root
}

/// Names of the properties a schema object allows, after following `$ref` and `anyOf`.
pub fn property_names<'s>(schema: &'s Value, root: &'s Value) -> Vec<&'s str> {
    object_schema(schema, root)
        .and_then(|o| o.get("properties"))
        .and_then(Value::as_object)
        .map(|props| props.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// Follows a local `$ref` (`#/$defs/Name`).
pub fn resolve<'s>(schema: &'s Value, root: &'s Value) -> &'s Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix("#/$defs/")
            .and_then(|name| root.get("$defs")?.get(name))
            .unwrap_or(schema),
        None => schema,
    }
}

/// The schema describing a table, if `schema` (or one of its `anyOf` branches) is one.
pub fn object_schema<'s>(schema: &'s Value, root: &'s Value) -> Option<&'s Value> {
    let schema = resolve(schema, root);
    if schema.get("properties").is_some() || schema.get("additionalProperties").is_some() {
        return Some(schema);
    }
    ["anyOf", "oneOf"]
        .iter()
        .filter_map(|k| schema.get(*k)?.as_array())
        .flatten()
        .find_map(|branch| object_schema(branch, root))
}

/// `infos`' schemas by name, their definitions moved into `root`'s.
fn named_schemas(root: &mut Value, infos: &[TableInfo]) -> Map<String, Value> {
    let mut tables = Map::new();
    for info in infos {
        let mut schema = info.schema.clone();
        if let Value::Object(object) = &mut schema {
            object.remove("$schema");
            object.remove("title");
            if let Some(Value::Object(defs)) = object.remove("$defs")
                && let Some(Value::Object(all)) = root.get_mut("$defs")
            {
                all.extend(defs);
            }
        }
        schema["description"] = json!(info.about);
        tables.insert(info.name.to_string(), schema);
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_schema_lists_common_options_and_the_kinds_given() {
        let kind = KindInfo {
            name: "demo",
            about: "a kind for this test",
            options: json!({"type": "object", "properties": {"flavour": {"type": "string"}}}),
            option_names: vec!["flavour".into()],
        };
        let root = build(&[kind], &[], &[], &[]);
        let stage = &root["$defs"]["StageConfig"];
        let names = property_names(stage, &root);
        for key in [
            "run", "uses", "needs", "timeout", "retries", "when", "flavour",
        ] {
            assert!(names.contains(&key), "{key} missing from {names:?}");
        }
        assert_eq!(stage["additionalProperties"], json!(false));
        assert_eq!(stage["properties"]["uses"]["enum"], json!(["demo"]));
        assert_eq!(root["properties"]["version"]["const"], json!(1));
        assert!(root["$defs"]["Stage.demo"].is_object());
    }
}
