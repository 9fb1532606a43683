//! kubeconform schemas from a live apiserver's OpenAPI v3 document: for each (apiVersion, kind),
//! one standalone JSON schema file in kubeconform's layout, `{kind}-{group}-{version}.json`
//! (`{kind}-{version}.json` for the core group; `group` is the first label of the API group),
//! used with `-schema-location '<dir>/{{ .ResourceKind }}{{ .KindSuffix }}.json'`.
//!
//! Conversion (what kubeconform's own openapi2jsonschema does, plus OpenAPI 3 specifics):
//! - every `$ref` into `#/components/schemas/` is resolved by copying the referenced schemas
//!   (transitively) into the file's `definitions`, so each file stands alone (recursive types
//!   such as a CRD's JSONSchemaProps stay references);
//! - strict: every object schema with `properties` gets `additionalProperties: false`, unless
//!   it already says otherwise or keeps unknown fields (`x-kubernetes-preserve-unknown-fields`);
//! - `nullable: true` becomes a `null` member of `type` (draft 4 has no `nullable`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

const COMPONENTS: &str = "#/components/schemas/";
const DEFINITIONS: &str = "#/definitions/";

/// kubeconform's file name for a kind: `deployment-apps-v1.json`, `service-v1.json`.
pub fn file_name(api_version: &str, kind: &str) -> String {
    let suffix = match api_version.split_once('/') {
        Some((group, version)) => {
            format!("{}-{version}", group.split('.').next().unwrap_or(group))
        }
        None => api_version.to_owned(),
    };
    format!("{kind}-{suffix}.json").to_lowercase()
}

/// The `-schema-location` template matching [`file_name`] in `dir`.
pub fn location(dir: &Path) -> String {
    format!(
        "{}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
        dir.display()
    )
}

/// Writes the schema of each `(apiVersion, kind)` into `dir`, from the OpenAPI v3 documents
/// `fetch(path)` returns (`path` such as `/openapi/v3/apis/apps/v1`). A kind that the document
/// does not describe yet (a CRD just installed) is waited for, up to 60 s (scaled by
/// `TEST_TIMEOUT_SCALE`). A plain loop: this code is synchronous, unlike `common::eventually`.
pub fn write(
    kinds: &BTreeSet<(String, String)>,
    dir: &Path,
    fetch: impl Fn(&str) -> Result<String, String>,
) -> Result<Vec<PathBuf>, String> {
    let mut by_version: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (api_version, kind) in kinds {
        by_version.entry(api_version).or_default().push(kind);
    }
    let mut written = Vec::new();
    for (api_version, kinds) in by_version {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let path = if group.is_empty() {
            format!("/openapi/v3/api/{version}")
        } else {
            format!("/openapi/v3/apis/{group}/{version}")
        };
        let deadline = Instant::now() + testenv::scaled(Duration::from_secs(60));
        let schemas = loop {
            let document: Result<Value, String> = fetch(&path)
                .and_then(|text| serde_json::from_str(&text).map_err(|e| format!("{path}: {e}")));
            let missing = match &document {
                Ok(doc) => kinds
                    .iter()
                    .filter(|k| find(doc, group, version, k).is_none())
                    .map(|k| k.to_string())
                    .collect(),
                Err(e) => vec![e.clone()],
            };
            if missing.is_empty() {
                break document?["components"]["schemas"].clone();
            }
            if Instant::now() > deadline {
                return Err(format!("{path} never described {missing:?}"));
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        let doc = json!({ "components": { "schemas": schemas } });
        for kind in kinds {
            let name = find(&doc, group, version, kind).unwrap();
            let schema = standalone(doc["components"]["schemas"].as_object().unwrap(), &name)?;
            let file = dir.join(file_name(api_version, kind));
            if written.contains(&file) {
                return Err(format!("two kinds map to {}", file.display()));
            }
            std::fs::write(&file, serde_json::to_vec_pretty(&schema).unwrap())
                .map_err(|e| format!("{}: {e}", file.display()))?;
            written.push(file);
        }
    }
    Ok(written)
}

/// The component name of the schema whose `x-kubernetes-group-version-kind` is this one.
fn find(doc: &Value, group: &str, version: &str, kind: &str) -> Option<String> {
    doc["components"]["schemas"]
        .as_object()?
        .iter()
        .find_map(|(name, schema)| {
            let gvks = schema["x-kubernetes-group-version-kind"].as_array()?;
            gvks.iter()
                .any(|g| g["group"] == group && g["version"] == version && g["kind"] == kind)
                .then(|| name.clone())
        })
}

/// The schema of component `name` with every component it references copied into
/// `definitions`, made strict.
pub fn standalone(components: &Map<String, Value>, name: &str) -> Result<Value, String> {
    let mut root = components
        .get(name)
        .ok_or(format!("no component {name}"))?
        .clone();
    let mut refs = BTreeSet::new();
    convert(&mut root, &mut refs);
    let mut definitions = Map::new();
    let mut queue: VecDeque<String> = refs.iter().cloned().collect();
    while let Some(next) = queue.pop_front() {
        if definitions.contains_key(&next) {
            continue;
        }
        let mut schema = components
            .get(&next)
            .ok_or(format!("{name} references the unknown component {next}"))?
            .clone();
        let mut more = BTreeSet::new();
        convert(&mut schema, &mut more);
        queue.extend(more);
        definitions.insert(next, schema);
    }
    let object = root
        .as_object_mut()
        .ok_or(format!("{name} is not an object schema"))?;
    if !definitions.is_empty() {
        object.insert("definitions".into(), Value::Object(definitions));
    }
    Ok(root)
}

/// Converts one schema in place (see the module docs) and collects the components it
/// references. Walks schema keywords only, never data: a property may be called
/// `properties`, `nullable` or `$ref` (a CRD's own schema type has all three).
fn convert(schema: &mut Value, refs: &mut BTreeSet<String>) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::String(target)) = map.get_mut("$ref")
        && let Some(name) = target.strip_prefix(COMPONENTS)
    {
        refs.insert(name.to_owned());
        *target = format!("{DEFINITIONS}{name}");
    }
    let keeps_unknown = map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if map.contains_key("properties") && !map.contains_key("additionalProperties") && !keeps_unknown
    {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    if map.remove("nullable") == Some(Value::Bool(true))
        && let Some(Value::String(t)) = map.get("type")
    {
        let t = t.clone();
        map.insert("type".into(), json!([t, "null"]));
    }
    for keyword in ["properties", "patternProperties", "definitions"] {
        if let Some(Value::Object(children)) = map.get_mut(keyword) {
            children.values_mut().for_each(|s| convert(s, refs));
        }
    }
    for keyword in ["allOf", "anyOf", "oneOf", "items"] {
        match map.get_mut(keyword) {
            Some(Value::Array(list)) => list.iter_mut().for_each(|s| convert(s, refs)),
            Some(s @ Value::Object(_)) => convert(s, refs),
            _ => {}
        }
    }
    for keyword in ["additionalProperties", "not"] {
        if let Some(s @ Value::Object(_)) = map.get_mut(keyword) {
            convert(s, refs);
        }
    }
}

#[test]
fn file_names_follow_kubeconforms_layout() {
    assert_eq!(
        file_name("apps/v1", "Deployment"),
        "deployment-apps-v1.json"
    );
    assert_eq!(file_name("v1", "Service"), "service-v1.json");
    assert_eq!(
        file_name("rbac.authorization.k8s.io/v1", "ClusterRole"),
        "clusterrole-rbac-v1.json"
    );
    assert_eq!(
        file_name("polar.sh/v1alpha1", "CheckoutLink"),
        "checkoutlink-polar-v1alpha1.json"
    );
}

#[test]
fn conversion_resolves_references_and_forbids_unknown_fields() {
    let components = json!({
        "A": {"type": "object", "x-kubernetes-group-version-kind": [{"group": "g", "version": "v1", "kind": "A"}],
              "properties": {
                  "b": {"allOf": [{"$ref": "#/components/schemas/B"}]},
                  "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"x": {}}},
                  "map": {"type": "object", "additionalProperties": {"type": "string"}},
                  "maybe": {"type": "string", "nullable": true}}},
        "B": {"type": "object", "properties": {
                  // a field literally named like keywords, and a recursive reference
                  "properties": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/B"}},
                  "nullable": {"type": "boolean"}}},
    });
    let schema = standalone(components.as_object().unwrap(), "A").unwrap();
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["properties"]["b"]["allOf"][0]["$ref"],
        "#/definitions/B"
    );
    assert!(
        schema["properties"]["free"]
            .get("additionalProperties")
            .is_none()
    );
    assert_eq!(
        schema["properties"]["map"]["additionalProperties"]["type"],
        "string"
    );
    assert_eq!(
        schema["properties"]["maybe"]["type"],
        json!(["string", "null"])
    );
    let b = &schema["definitions"]["B"];
    assert_eq!(b["additionalProperties"], false);
    assert_eq!(b["properties"]["nullable"], json!({"type": "boolean"}));
    assert_eq!(
        b["properties"]["properties"]["additionalProperties"]["$ref"],
        "#/definitions/B"
    );
    assert_eq!(schema["definitions"].as_object().unwrap().len(), 1);
}
