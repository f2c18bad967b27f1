//! Unknown keys, found by walking the document alongside the JSON Schema.

use serde_json::{Value, json};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::schema::{object_schema, resolve};
use super::{Extensions, KindInfo, Problem, did_you_mean};

/// Adds a problem for every key the schema of `kinds` does not allow, anywhere in the document.
pub(super) fn check_unknown(
    root: &Spanned<DeTable<'_>>,
    kinds: &dyn Extensions,
    problems: &mut Vec<Problem>,
) {
    let schema = kinds.pipeline_schema();
    let walk = Walk {
        root: schema,
        kinds: kinds.kinds(),
    };
    walk.table(root.get_ref(), schema, &mut Vec::new(), problems);
}

/// The schema being walked and the kinds it was built from.
struct Walk<'a> {
    root: &'a Value,
    kinds: &'a [KindInfo],
}

impl Walk<'_> {
    fn value(
        &self,
        value: &Spanned<DeValue<'_>>,
        schema: &Value,
        path: &mut Vec<String>,
        problems: &mut Vec<Problem>,
    ) {
        let root = self.root;
        match value.get_ref() {
            DeValue::Table(table) => {
                if let Some(object) = object_schema(schema, root) {
                    self.table(table, object, path, problems);
                }
            }
            DeValue::Array(items) => {
                let items_schema = resolve(schema, root).get("items");
                if let Some(items_schema) = items_schema {
                    for item in items {
                        self.value(item, items_schema, path, problems);
                    }
                }
            }
            _ => {}
        }
    }

    fn table(
        &self,
        table: &DeTable<'_>,
        object: &Value,
        path: &mut Vec<String>,
        problems: &mut Vec<Problem>,
    ) {
        let root = self.root;
        let props = object.get("properties").and_then(Value::as_object);
        let additional = object.get("additionalProperties");
        // In a stage, suggest only the keys of its own kind: every kind's options are known there
        // (so that one used on the wrong kind is named as such), but listing them all misleads.
        let foreign = stage_table_kind(path, table).map(|kind| {
            self.kinds
                .iter()
                .filter(|k| Some(k.name) != kind.as_deref())
                .flat_map(|k| k.option_names.iter().cloned())
                .collect::<Vec<String>>()
        });
        for (key, value) in table {
            let name = key.get_ref().as_ref();
            path.push(name.to_string());
            let kind_schema = stage_kind(path, value)
                .map(|kind| json!({"$ref": format!("#/$defs/Stage.{kind}")}));
            if let Some(schema) = kind_schema.as_ref().filter(|s| resolve(s, root) != *s) {
                self.value(value, schema, path, problems);
            } else if let Some(prop) = props.and_then(|p| p.get(name)) {
                self.value(value, prop, path, problems);
            } else {
                match additional {
                    Some(Value::Bool(false)) => {
                        path.pop();
                        problems.push(unknown_key(
                            name,
                            key.span(),
                            props,
                            foreign.as_deref(),
                            path,
                        ));
                        continue;
                    }
                    Some(schema @ Value::Object(_)) => self.value(value, schema, path, problems),
                    _ => {}
                }
            }
            path.pop();
        }
    }
}

/// The `uses` of a stage table at `stages.<name>`, if it names one.
fn stage_kind(path: &[String], value: &Spanned<DeValue<'_>>) -> Option<String> {
    if path.len() != 2 || path[0] != "stages" {
        return None;
    }
    let DeValue::Table(table) = value.get_ref() else {
        return None;
    };
    table.iter().find_map(|(key, value)| match value.get_ref() {
        DeValue::String(kind) if key.get_ref().as_ref() == "uses" => Some(kind.to_string()),
        _ => None,
    })
}

/// For a table at `stages.<name>`: `Some(its uses)`, `Some(None)` for a `run` stage.
fn stage_table_kind(path: &[String], table: &DeTable<'_>) -> Option<Option<String>> {
    if path.len() != 2 || path[0] != "stages" {
        return None;
    }
    Some(table.iter().find_map(|(key, value)| match value.get_ref() {
        DeValue::String(kind) if key.get_ref().as_ref() == "uses" => Some(kind.to_string()),
        _ => None,
    }))
}

fn unknown_key(
    name: &str,
    span: std::ops::Range<usize>,
    props: Option<&serde_json::Map<String, Value>>,
    foreign: Option<&[String]>,
    path: &[String],
) -> Problem {
    let known: Vec<&str> = props
        .into_iter()
        .flat_map(|p| p.keys().map(String::as_str))
        .filter(|k| !foreign.is_some_and(|f| f.iter().any(|x| x == k)))
        .collect();
    let help = match did_you_mean(name, known.iter().copied()) {
        Some(suggestion) => format!("did you mean `{suggestion}`?"),
        None if known.is_empty() => "remove this key".to_string(),
        None => format!(
            "expected one of {}",
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Problem::new(
        format!("unknown key `{name}` {}", describe(path)),
        Some(span),
    )
    .label("unknown key")
    .help(help)
}

/// Where a table is, in words: "at the top level", "in stage `test`", "in `project`".
pub(super) fn describe(path: &[String]) -> String {
    match path {
        [] => "at the top level".to_string(),
        [stages, name] if stages == "stages" => format!("in stage `{name}`"),
        [stages, name, rest @ ..] if stages == "stages" => {
            format!("in `{}` of stage `{name}`", rest.join("."))
        }
        _ => format!("in `{}`", path.join(".")),
    }
}
