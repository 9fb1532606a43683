//! What the chart holds agrees with its sources: the CRD with crds/, values.yaml with
//! values.schema.json and the README.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::support::*;

/// files/crds/ (what the chart installs) is a copy of crds/ (what crdgen generates).
#[test]
fn the_charts_copy_of_the_crds_is_the_generated_one() {
    let list = |dir: &Path| -> BTreeMap<String, String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&p).unwrap(),
                )
            })
            .collect()
    };
    let generated = list(&repo().join("crds"));
    let copied = list(&chart().join("files/crds"));
    assert!(!generated.is_empty());
    assert_eq!(
        copied.keys().collect::<Vec<_>>(),
        generated.keys().collect::<Vec<_>>(),
        "charts/checkout-link-operator/files/crds/ must hold the files of crds/: run \
         `cp crds/*.yaml charts/checkout-link-operator/files/crds/`"
    );
    for (name, text) in &generated {
        assert!(
            copied[name] == *text,
            "charts/checkout-link-operator/files/crds/{name} differs from crds/{name}: run \
             `cp crds/*.yaml charts/checkout-link-operator/files/crds/`"
        );
    }
}

/// The rendered CRD and policy are crds/ plus the chart's labels and the keep annotation.
#[test]
fn the_rendered_crd_and_policy_are_the_generated_ones_plus_labels() {
    let mut generated = Vec::new();
    for name in [
        "checkoutlinks.polar.sh.yaml",
        "checkoutlinks.polar.sh-metadata-policy.yaml",
    ] {
        generated.extend(documents(
            &std::fs::read_to_string(repo().join("crds").join(name)).unwrap(),
        ));
    }
    let cluster_wide = |objects: &[Value]| -> Vec<Value> {
        objects
            .iter()
            .filter(|o| {
                o["kind"] == "CustomResourceDefinition"
                    || o["kind"]
                        .as_str()
                        .unwrap()
                        .starts_with("ValidatingAdmissionPolicy")
            })
            .cloned()
            .collect()
    };
    let rendered = cluster_wide(&objects("clo", "ops", &[]));
    assert_eq!(rendered.len(), generated.len());
    for mut object in rendered {
        let metadata = object["metadata"].as_object_mut().unwrap();
        let labels = metadata.remove("labels").unwrap();
        let annotations = metadata.remove("annotations").unwrap();
        assert_eq!(labels["app.kubernetes.io/managed-by"], "Helm");
        assert_eq!(
            labels["app.kubernetes.io/part-of"],
            "checkout-link-operator"
        );
        assert_eq!(annotations, json!({"helm.sh/resource-policy": "keep"}));
        assert!(
            generated.contains(&object),
            "not in crds/: {}",
            object["metadata"]["name"]
        );
    }

    let not_kept = cluster_wide(&objects("clo", "ops", &["--set", "crds.keep=false"]));
    assert_eq!(not_kept.len(), generated.len());
    assert!(
        not_kept
            .iter()
            .all(|o| o["metadata"].get("annotations").is_none())
    );
    assert!(cluster_wide(&objects("clo", "ops", &["--set", "crds.install=false"])).is_empty());
}

/// Every key of values.yaml is typed in values.schema.json and has a row in the chart README's
/// tables (with its default, for scalars), and the schema and the README name nothing else.
#[test]
fn every_value_is_typed_in_the_schema_and_documented_in_the_readme() {
    let values: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart().join("values.yaml")).unwrap())
            .unwrap();
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(chart().join("values.schema.json")).unwrap())
            .unwrap();
    let readme = std::fs::read_to_string(chart().join("README.md")).unwrap();

    // The documented rows: a value and its default per line, `| `key` | `default` | ... |`.
    let rows: BTreeMap<String, String> = readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let key = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let default = cells.get(2)?.trim_matches('`');
            Some((key.to_owned(), default.to_owned()))
        })
        .collect();

    // values.yaml against the schema: descend while the schema lists properties.
    fn walk(
        path: &str,
        value: &Value,
        schema: &Value,
        leaves: &mut BTreeMap<String, Value>,
        errors: &mut Vec<String>,
    ) {
        if schema.get("description").is_none() && !path.is_empty() {
            errors.push(format!("{path}: no description in the schema"));
        }
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            leaves.insert(path.to_owned(), value.clone());
            return;
        };
        if schema["additionalProperties"] != false {
            errors.push(format!(
                "{path:?}: the schema allows unknown keys (additionalProperties is not false)"
            ));
        }
        let Some(map) = value.as_object() else {
            errors.push(format!(
                "{path:?}: an object in the schema, not in values.yaml"
            ));
            return;
        };
        for (key, child) in map {
            let here = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match properties.get(key) {
                Some(s) => walk(&here, child, s, leaves, errors),
                None => errors.push(format!("{here}: in values.yaml, not in values.schema.json")),
            }
        }
        // `global` is Helm's, for parent charts; values.yaml need not name it.
        let helms = |key: &str| path.is_empty() && key == "global";
        for key in properties.keys() {
            if !map.contains_key(key) && !helms(key) {
                errors.push(format!(
                    "{path}.{key}: in values.schema.json, not in values.yaml"
                ));
            }
        }
    }
    let mut leaves = BTreeMap::new();
    let mut errors = Vec::new();
    walk("", &values, &schema, &mut leaves, &mut errors);
    for (key, default) in &leaves {
        match rows.get(key) {
            None => errors.push(format!("{key}: not in the README's value tables")),
            Some(documented) => {
                let expected = match default {
                    Value::String(s) if s.is_empty() => Some("\"\"".to_owned()),
                    Value::String(s) => Some(s.clone()),
                    Value::Number(_) | Value::Bool(_) => Some(default.to_string()),
                    Value::Array(a) if a.is_empty() => Some("[]".to_owned()),
                    Value::Object(o) if o.is_empty() => Some("{}".to_owned()),
                    _ => None, // a structured default: described in words
                };
                if let Some(expected) = expected
                    && *documented != expected
                {
                    errors.push(format!("{key}: the README says the default is {documented:?}, values.yaml {expected:?}"));
                }
            }
        }
    }
    for key in rows.keys() {
        if !leaves.contains_key(key) {
            errors.push(format!("{key}: in the README, not a value of values.yaml"));
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}
