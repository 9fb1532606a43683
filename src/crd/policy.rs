//! The ValidatingAdmissionPolicy that checks `spec.metadata` (`crdgen policy` prints it; `make
//! crds` writes it next to the CRD). CRD rules cannot check these values: they have four JSON
//! types, which a structural schema cannot express and CRD CEL cannot type-check.

use super::OWNER_METADATA_KEY;

/// Name of the ValidatingAdmissionPolicy (and its binding) that checks `spec.metadata`.
pub const METADATA_POLICY: &str = "checkoutlinks.polar.sh-metadata";

/// The rules on `spec.metadata` that CRD CEL cannot express (its values have four JSON types,
/// which CRD rules cannot type-check): a ValidatingAdmissionPolicy, evaluated by the apiserver
/// with dynamic types, and its binding. Each message names the field.
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
    let validations: Vec<serde_json::Value> = rules
        .iter()
        .map(|(expression, message)| serde_json::json!({"expression": expression, "message": message, "reason": "Invalid"}))
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
        assert_eq!(validations.len(), 5);
        for v in validations {
            let message = v["message"].as_str().unwrap();
            assert!(message.starts_with("spec.metadata: "), "{message}");
        }
        let reserved = format!("!('{OWNER_METADATA_KEY}' in object.spec.metadata)");
        assert!(
            validations
                .iter()
                .any(|v| v["expression"].as_str().unwrap().contains(&reserved)),
            "no rule reserves {OWNER_METADATA_KEY}: {yaml}"
        );
    }
}
