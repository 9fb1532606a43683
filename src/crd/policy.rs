//! The ValidatingAdmissionPolicy that checks what CRD rules cannot (`crdgen policy` prints it;
//! `make crds` writes it next to the CRD): `spec.metadata`, whose values have four JSON types,
//! `spec.products`, whose entries are strings or objects, which a structural schema cannot
//! express and CRD CEL cannot type-check, and the URL parameters Polar would silently ignore
//! because the metadata has the same key.

use super::{OWNER_METADATA_KEY, UUID4_PATTERN};

/// Name of the ValidatingAdmissionPolicy (and its binding) that checks `spec.metadata`,
/// `spec.products` and the URL parameters against the metadata (the name predates the last two).
pub const METADATA_POLICY: &str = "checkoutlinks.polar.sh-metadata";

/// The rules CRD CEL cannot express (values of several JSON types, which CRD rules cannot
/// type-check; a rule across two fields of different types): a ValidatingAdmissionPolicy,
/// evaluated by the apiserver with dynamic types, and its binding. Each message names the
/// field.
pub fn metadata_policy_yaml() -> String {
    let md = "object.spec.metadata";
    let each = |cond: &str| format!("!has({md}) || {md}.all(k, {cond})");
    let rules = [
        (
            each("size(k) >= 1 && size(k) <= 40"),
            "spec.metadata: keys must have 1 to 40 characters",
        ),
        (
            format!("!has({md}) || !('{OWNER_METADATA_KEY}' in {md})"),
            "spec.metadata: the key k8s_checkout_link_uid is reserved for the operator",
        ),
        (
            each(&format!(
                "type({md}[k]) == string || type({md}[k]) == int || type({md}[k]) == uint || \
                 type({md}[k]) == double || type({md}[k]) == bool"
            )),
            "spec.metadata: values must be strings, integers, numbers or booleans (no objects, lists or nulls)",
        ),
        (
            each(&format!(
                "type({md}[k]) != string || (size({md}[k]) >= 1 && size({md}[k]) <= 500)"
            )),
            "spec.metadata: string values must have 1 to 500 characters",
        ),
        (
            each(&format!(
                "type({md}[k]) != string || !{md}[k].contains('\\u0000')"
            )),
            "spec.metadata: string values must not contain NUL characters",
        ),
    ];
    let p = "object.spec.products";
    let uuid = UUID4_PATTERN.replace('\\', "\\\\");
    // Each entry's rules, with a message that names the first entry breaking it.
    let entry_rules = [
        (
            "type(e) == string || type(e) == map".to_owned(),
            "each entry is a product id or an object naming the product",
        ),
        (
            format!("type(e) != string || e.matches('{uuid}')"),
            "a product id must be a UUID v4",
        ),
        (
            "type(e) != map || (size(e) == 1 && (has(e.id) || has(e.metadata) || has(e.name)))"
                .to_owned(),
            "an entry names its product exactly one way: id, metadata or name",
        ),
        (
            format!(
                "type(e) != map || !has(e.id) || (type(e.id) == string && e.id.matches('{uuid}'))"
            ),
            "id must be a UUID v4",
        ),
        (
            "type(e) != map || !has(e.metadata) || (type(e.metadata) == map && size(e.metadata) >= 1 && e.metadata.all(k, type(e.metadata[k]) == string && size(e.metadata[k]) >= 1))"
                .to_owned(),
            "metadata must be a non-empty map of keys to non-empty strings",
        ),
        (
            "type(e) != map || !has(e.name) || (type(e.name) == string && size(e.name) >= 1)"
                .to_owned(),
            "name must be a non-empty string",
        ),
    ];
    let product_rules = entry_rules.iter().map(|(cond, message)| {
        (
            format!("{p}.all(e, {cond})"),
            format!("spec.products: {message}"),
            Some(format!(
                "'spec.products[' + string({p}.map(e, !({cond})).indexOf(true)) + ']: {message}'"
            )),
        )
    });
    let duplicates = (
        format!(
            "{p}.all(e, type(e) != string || {p}.exists_one(f, type(f) == string && f.lowerAscii() == e.lowerAscii()))"
        ),
        "spec.products: products must not list the same product twice".to_owned(),
        None,
    );
    // Polar keeps the link's own metadata over a share URL's utm_* or reference_id with the same
    // key: the parameter would be silently ignored.
    let params = [
        ("utmSource", "utm_source"),
        ("utmMedium", "utm_medium"),
        ("utmCampaign", "utm_campaign"),
        ("utmContent", "utm_content"),
        ("utmTerm", "utm_term"),
        ("referenceId", "reference_id"),
    ];
    let overrides = params.iter().map(|(param, key)| {
        (
            format!(
                "!has(object.spec.urlParameters) || !has(object.spec.urlParameters.{param}) || !has({md}) || !('{key}' in {md})"
            ),
            format!(
                "spec.urlParameters.{param} would be ignored by Polar: spec.metadata has the key {key}, which wins over the share URL's {key}; remove one of them"
            ),
            None,
        )
    });
    let rules: Vec<(String, String, Option<String>)> = rules
        .iter()
        .map(|(e, m)| (e.clone(), (*m).to_owned(), None))
        .chain(product_rules)
        .chain([duplicates])
        .chain(overrides)
        .collect();
    let validations: Vec<serde_json::Value> = rules
        .iter()
        .map(|(expression, message, dynamic)| {
            let mut v = serde_json::json!({"expression": expression, "message": message, "reason": "Invalid"});
            if let Some(m) = dynamic {
                v["messageExpression"] = serde_json::Value::String(m.clone());
            }
            v
        })
        .collect();
    let policy = serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": METADATA_POLICY},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["polar.sh"], "apiVersions": ["v1alpha1"],
                "operations": ["CREATE", "UPDATE"], "resources": ["checkoutlinks"]
            }]},
            "validations": validations
        }
    });
    let binding = serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": METADATA_POLICY},
        "spec": {"policyName": METADATA_POLICY, "validationActions": ["Deny"]}
    });
    let to_yaml =
        |v: &serde_json::Value| serde_yaml::to_string(v).expect("JSON values serialise to YAML");
    format!("{}---\n{}", to_yaml(&policy), to_yaml(&binding))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_and_its_binding_share_a_name_and_every_message_names_the_field() {
        let yaml = metadata_policy_yaml();
        let docs: Vec<serde_json::Value> = yaml
            .split("---\n")
            .map(|doc| serde_yaml::from_str(doc).expect("each document is YAML"))
            .collect();
        let [policy, binding] = docs.as_slice() else {
            panic!("expected a policy and a binding: {yaml}");
        };
        assert_eq!(policy["kind"], "ValidatingAdmissionPolicy");
        assert_eq!(binding["kind"], "ValidatingAdmissionPolicyBinding");
        assert_eq!(policy["metadata"]["name"], METADATA_POLICY);
        assert_eq!(binding["spec"]["policyName"], METADATA_POLICY);
        let validations = policy["spec"]["validations"].as_array().unwrap();
        let fields = ["spec.metadata", "spec.products", "spec.urlParameters."];
        let count = |field: &str| {
            validations
                .iter()
                .filter(|v| v["message"].as_str().unwrap().starts_with(field))
                .count()
        };
        // Five metadata rules, six per-entry product rules and the duplicate check, one rule
        // per URL parameter Polar would ignore.
        assert_eq!(
            fields.map(count),
            [5, 7, 6],
            "every message starts with the field it checks: {yaml}"
        );
        assert_eq!(validations.len(), 18, "no rule without a field: {yaml}");
        let reserved = format!("!('{OWNER_METADATA_KEY}' in object.spec.metadata)");
        assert!(
            validations
                .iter()
                .any(|v| v["expression"].as_str().unwrap().contains(&reserved)),
            "no rule reserves {OWNER_METADATA_KEY}: {yaml}"
        );
    }
}
