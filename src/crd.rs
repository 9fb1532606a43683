//! The `CheckoutLink` custom resource: what a merchant declares, what the operator reports back.
//!
//! Every limit Polar enforces on a checkout link is also enforced here, at admission, through
//! the OpenAPI schema and CEL rules, so that invalid input never reaches Polar. The messages
//! name the field they are about. `///` comments are user documentation: they become the
//! descriptions that `kubectl explain checkoutlink.spec` prints, each paragraph joined into one
//! line for `kubectl` to wrap (see `paragraphs`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::core::{Message, Rule};
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::transform::{RecursiveTransform, Transform};
use schemars::{JsonSchema, Schema, json_schema};
use serde::{Deserialize, Serialize};

mod policy;
pub use policy::{METADATA_POLICY, metadata_policy_yaml};

/// The finalizer that makes deletion of a `CheckoutLink` delete (or orphan) its Polar link.
pub const FINALIZER: &str = "polar.sh/checkout-link-cleanup";
/// Annotation that adopts an existing Polar checkout link instead of creating a new one.
pub const ADOPT_ANNOTATION: &str = "polar.sh/checkout-link-id";
/// Field manager for server-side apply, and the reporter of events.
pub const MANAGER: &str = "checkout-link-operator";
/// Polar metadata key the operator writes on every link it creates: the resource's UID, so that
/// a link created just before a crash is found again instead of being created twice.
pub use crate::polar::OWNER_METADATA_KEY;
/// Polar allows 50 metadata keys; one is reserved for [`OWNER_METADATA_KEY`].
pub const MAX_USER_METADATA_KEYS: usize = 49;

/// A Polar checkout link, declared as code.
///
/// The operator creates the link in Polar, keeps it equal to this spec, and writes its URL and
/// client secret to `.status`. Deleting the resource deletes the link (see `deletionPolicy`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "polar.sh",
    version = "v1alpha1",
    kind = "CheckoutLink",
    plural = "checkoutlinks",
    singular = "checkoutlink",
    shortname = "cl",
    category = "polar",
    namespaced,
    status = "CheckoutLinkStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A Polar checkout link managed as code: the operator creates it in Polar, keeps it equal to the spec and reports its URL and client secret in the status.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status","description":"Whether the Polar link matches the spec"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason","description":"Why the link is (not) ready"}"#,
    printcolumn = r#"{"name":"Sellable","type":"string","jsonPath":".status.conditions[?(@.type==\"Sellable\")].status","description":"Whether buyers can pay as declared (products available, preset discount live)"}"#,
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.url","description":"The checkout link URL"}"#,
    printcolumn = r#"{"name":"Polar ID","type":"string","priority":1,"jsonPath":".status.id","description":"The checkout link id in Polar"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = paragraphs)]
pub struct CheckoutLinkSpec {
    /// Internal name of the link, shown only to the merchant in the Polar dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    #[x_kube(validation = Rule::new(r"!self.contains('\u0000')")
        .message("label must not contain NUL characters"))]
    pub label: Option<String>,

    /// Ids (UUID v4) of the Polar products offered by this link, at least one, without
    /// repetition. Their order is the order shown on the checkout page.
    #[schemars(
        length(min = 1, max = 100),
        inner(regex(pattern = UUID4_PATTERN), length(max = 36))
    )]
    // No x-kubernetes-list-type: set, whose server-side-apply merge would lose the order.
    #[x_kube(validation = Rule::new(
        "self.all(p, self.exists_one(q, q.lowerAscii() == p.lowerAscii()))"
    ).message("products must not list the same product twice"))]
    pub products: Vec<String>,

    /// Discount settings of the checkout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount: Option<DiscountSpec>,

    /// Key-value metadata stored on the link in Polar and copied to the checkouts it creates.
    /// At most 49 keys (Polar allows 50; the operator keeps one, `k8s_checkout_link_uid`, to
    /// recognise its own links). Keys have 1 to 40 characters. Values are strings of 1 to 500
    /// characters, integers, numbers or booleans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "metadata_schema")]
    pub metadata: Option<BTreeMap<String, serde_json::Value>>,

    /// Where the customer is sent after a successful payment: an absolute http(s) URL of at
    /// most 2083 characters. Add `checkout_id={CHECKOUT_ID}` to its query to receive the
    /// checkout id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2083))]
    #[x_kube(validation = url_rule("successUrl"))]
    pub success_url: Option<String>,

    /// Where the "back" button of the checkout page leads: an absolute http(s) URL of at most
    /// 2083 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2083))]
    #[x_kube(validation = url_rule("returnUrl"))]
    pub return_url: Option<String>,

    /// Whether the customer must give a full billing address. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_billing_address: Option<bool>,

    /// A free trial applied to recurring products bought through this link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<TrialSpec>,

    /// Number of seats preset on the checkout (1 to 10000). Every product must use seat-based
    /// pricing and allow this number of seats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub seats: Option<i32>,

    /// Number of units preset on the checkout (at least 1). Every product must use unit-based
    /// pricing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub units: Option<i32>,

    /// Query parameters appended to the link URL to build `status.shareUrl`: prefilled
    /// customer details, a discount code, an amount and UTM tracking tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_parameters: Option<UrlParameters>,

    /// The Secret, in this resource's namespace, that holds the Polar access token (`token`
    /// key) and optionally the server (`server` key: `production`, `sandbox` or a base URL).
    /// Without it the operator's default credentials are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretKeyRef>,

    // Documented on `DeletionPolicy`: for an optional enum, kube hoists the enum's schema, and
    // with it the enum's description, over the field's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// Discount settings of a checkout link.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DiscountSpec {
    /// Whether customers may enter a discount code at checkout. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_codes: Option<bool>,

    /// Id (UUID v4) of a Polar discount applied automatically. It must belong to the same
    /// organisation and apply to every product of the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = UUID4_PATTERN), length(max = 36))]
    pub preset_id: Option<String>,
}

/// A free trial: both the interval and the count are required.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TrialSpec {
    /// Unit of the trial length: `day`, `week`, `month` or `year`.
    pub interval: TrialInterval,
    /// Number of intervals the trial lasts, 1 to 1000.
    #[schemars(range(min = 1, max = 1000))]
    pub count: i32,
}

/// Unit of a trial's length.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TrialInterval {
    Day,
    Week,
    Month,
    Year,
}

/// What happens to the Polar link when this resource is deleted: `Delete` (default) deletes it
/// in Polar, `Orphan` leaves it in place.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Delete the link in Polar.
    #[default]
    Delete,
    /// Leave the link in Polar untouched.
    Orphan,
}

/// Query parameters Polar's checkout page understands; each one set here is appended to the
/// link URL in `status.shareUrl`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UrlParameters {
    /// Prefills the customer's email address (`customer_email`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 320), regex(pattern = r"^[^@\s]+@[^@\s]+$"))]
    pub customer_email: Option<String>,
    /// Prefills the customer's name (`customer_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub customer_name: Option<String>,
    /// Prefills a discount code (`discount_code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub discount_code: Option<String>,
    /// Prefills the amount, in cents, for pay-what-you-want prices (`amount`), e.g. "1500".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{1,12}$"))]
    pub amount: Option<String>,
    /// Prefills custom checkout fields, by field slug (`custom_field_data.<slug>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend(
        "maxProperties" = 50,
        "additionalProperties" = {"type": "string", "maxLength": 1000}
    ))]
    #[x_kube(validation = Rule::new("self.all(k, k.matches('^[a-zA-Z0-9_-]{1,100}$'))")
        .message("customFieldData keys must be custom field slugs (letters, digits, '-' and '_')"))]
    pub custom_field_data: Option<BTreeMap<String, String>>,
    /// Your own reference, kept on the checkout (`reference_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub reference_id: Option<String>,
    /// UTM source tag (`utm_source`), e.g. "newsletter".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub utm_source: Option<String>,
    /// UTM medium tag (`utm_medium`), e.g. "email".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub utm_medium: Option<String>,
    /// UTM campaign tag (`utm_campaign`), e.g. "launch".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub utm_campaign: Option<String>,
    /// UTM content tag (`utm_content`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub utm_content: Option<String>,
    /// UTM term tag (`utm_term`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub utm_term: Option<String>,
}

/// A key of a Secret in the resource's own namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.__namespace__)").message("credentialsSecretRef.namespace is not allowed: the Secret must be in the CheckoutLink's own namespace").reason(Reason::FieldValueForbidden))]
pub struct SecretKeyRef {
    /// Name of the Secret, in the same namespace as the CheckoutLink.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key in the Secret that holds the Polar access token. Default `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub key: Option<String>,
    /// Not supported: references into other namespaces are refused. Leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// What the operator observed and did; written only by the operator.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = paragraphs)]
pub struct CheckoutLinkStatus {
    /// Id of the checkout link in Polar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Public URL of the checkout link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The link's client secret. It is part of the public URL, so it is not a credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// The URL plus `spec.urlParameters`: the link to share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_url: Option<String>,
    /// Id of the Polar organisation that owns the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// The `metadata.generation` this status describes; -1 until the operator has seen the
    /// resource (the apiserver sets it on create, so GitOps tools wait for the operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling and Stalled (kstatus conventions), and Synced: whether the last attempt
    /// to bring the link to the spec succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// `status.observedGeneration` of a resource the operator has not seen yet.
pub const UNOBSERVED_GENERATION: i64 = -1;

impl CheckoutLinkStatus {
    /// The status the apiserver gives a new resource (the CRD's default): kstatus (Flux) reads
    /// it as InProgress, where a missing status would read as Current before the operator has
    /// even seen the resource.
    pub fn unobserved() -> Self {
        CheckoutLinkStatus {
            observed_generation: Some(UNOBSERVED_GENERATION),
            ..Default::default()
        }
    }
}

/// The CRD as the apiserver receives it: kube's derive, plus the default status.
pub fn crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSON;
    let mut crd = CheckoutLink::crd();
    // What `CheckoutLinkStatus::unobserved()` serialises to (tests/crd_admission.rs checks
    // that the apiserver returns exactly that status for a new resource).
    let default = serde_json::json!({ "observedGeneration": UNOBSERVED_GENERATION });
    let statuses = crd.spec.versions.iter_mut().filter_map(|v| {
        v.schema
            .as_mut()?
            .open_api_v3_schema
            .as_mut()?
            .properties
            .as_mut()?
            .get_mut("status")
    });
    for status in statuses {
        status.default = Some(JSON(default.clone()));
    }
    crd
}

/// The CRD as YAML, exactly as `crds/checkoutlinks.polar.sh.yaml` holds it.
pub fn crd_yaml() -> String {
    serde_yaml::to_string(&crd()).expect("a CRD always serialises to YAML")
}

// ---- schema pieces -------------------------------------------------------------------------
// What the derive attributes above cannot say. None of them carries a description: schemars
// puts each field's `///` text over whatever the schema says.

/// schemars keeps the line breaks of `///` comments, and `kubectl explain` would print them as
/// they are, after wrapping each line to its own width. This joins the lines of each paragraph
/// of every description under the schema with spaces; blank lines still separate paragraphs
/// (`"\n\n"`). Set on the spec and the status: every other type's schema is inlined in theirs.
fn paragraphs(schema: &mut Schema) {
    RecursiveTransform(|s: &mut Schema| {
        if let Some(serde_json::Value::String(text)) = s.get_mut("description") {
            *text = join_lines(text);
        }
    })
    .transform(schema);
}

fn join_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let paragraphs: Vec<String> = lines
        .split(|line| line.is_empty())
        .filter(|paragraph| !paragraph.is_empty())
        .map(|paragraph| paragraph.join(" "))
        .collect();
    paragraphs.join("\n\n")
}

const UUID4_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$";

/// The rule of `successUrl` and `returnUrl`, with a message naming `field`. The expression:
/// surrounding spaces (Polar trims them), scheme, optional user info, a non-empty host (a name
/// or a bracketed IPv6 address), optional port, then anything; Polar's remaining normalisation
/// (punycode, percent-encoding) is not an error.
fn url_rule(field: &str) -> Rule {
    Rule::new(
        r"self.matches('^\\s*[hH][tT][tT][pP][sS]?://([^/?#\\s@]*@)?(\\[[0-9a-fA-F:.]+\\]|[^/?#\\s@:\\[\\]]+)(:[0-9]{0,5})?([/?#].*)?$')",
    )
    .message(Message::Message(format!(
        "{field} must be an absolute http:// or https:// URL with a host"
    )))
}

fn metadata_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    json_schema!({
        "type": "object",
        "maxProperties": MAX_USER_METADATA_KEYS,
        // Values may be of four JSON types, which a structural schema cannot express and CRD
        // CEL rules cannot type-check; their rules live in the ValidatingAdmissionPolicy of
        // crd/policy.rs.
        "additionalProperties": {"x-kubernetes-preserve-unknown-fields": true},
    })
}

/// The conditions with this operator's own descriptions (k8s-openapi's `Condition` schema
/// documents them in general terms) and map list semantics keyed by `type`.
fn conditions_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    json_schema!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["type", "status", "lastTransitionTime", "reason", "message"],
            "properties": {
                "type": {"type": "string", "description": "Ready, Reconciling, Stalled or Synced."},
                "status": {"type": "string", "enum": ["True", "False", "Unknown"], "description": "True, False or Unknown."},
                "reason": {"type": "string", "description": "A CamelCase reason for the condition's last transition."},
                "message": {"type": "string", "description": "Human-readable details, including Polar's own error message."},
                "observedGeneration": {"type": "integer", "format": "int64", "description": "The generation this condition was set for."},
                "lastTransitionTime": {"type": "string", "format": "date-time", "description": "When the condition last changed status."}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_joined_within_paragraphs_and_blank_lines_stay_paragraph_breaks() {
        assert_eq!(join_lines("one line"), "one line");
        assert_eq!(join_lines("wrapped\nline"), "wrapped line");
        assert_eq!(
            join_lines("first\nparagraph\n\nsecond\n \n\nthird"),
            "first paragraph\n\nsecond\n\nthird"
        );
        assert_eq!(join_lines("\n  indented \nend\n"), "indented end");
    }

    #[test]
    fn the_spec_description_keeps_its_two_paragraphs_each_on_one_line() {
        let crd = serde_json::to_value(crd()).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let text = spec["description"].as_str().unwrap();
        let paragraphs: Vec<&str> = text.split("\n\n").collect();
        assert_eq!(paragraphs.len(), 2, "{text:?}");
        assert!(paragraphs.iter().all(|p| !p.contains('\n')), "{text:?}");
    }
}
