//! The `CheckoutLink` custom resource: what a merchant declares, what the operator reports back.
//!
//! Every limit Polar enforces on a checkout link is also enforced here, at admission, through
//! the OpenAPI schema and CEL rules, so that invalid input never reaches Polar. The messages
//! name the field they are about. `///` comments are user documentation: they become the
//! descriptions that `kubectl explain checkoutlink.spec` prints, each paragraph joined into one
//! line for `kubectl` to wrap (see `paragraphs`).

use std::collections::BTreeMap;

use kube::core::{Message, Rule};
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::transform::{RecursiveTransform, Transform};
use schemars::{Schema, json_schema};
use serde::{Deserialize, Serialize};

mod parts;
mod policy;
mod status;
pub use parts::{
    DeletionPolicy, DiscountSpec, ExportKeys, ExportSpec, ManagementPolicy, ProductRef,
    ProductSelector, SecretKeyRef, TrialInterval, TrialSpec, UrlParameters,
};
pub use policy::{METADATA_POLICY, metadata_policy_yaml};
pub use status::{
    CampaignResults, CheckoutLinkStatus, RefundSeen, ResolvedRefs, Revenue, SourceCount,
    UNOBSERVED_GENERATION,
};

/// The finalizer that makes deletion of a `CheckoutLink` delete (or orphan) its Polar link.
pub const FINALIZER: &str = "polar.sh/checkout-link-cleanup";
/// Annotation that adopts an existing Polar checkout link instead of creating a new one.
pub const ADOPT_ANNOTATION: &str = "polar.sh/checkout-link-id";
/// Annotation that pauses every Polar call for the resource while its value is `true`
/// (a `Paused` condition says so; deletion waits until the pause is lifted).
pub const PAUSE_ANNOTATION: &str = "polar.sh/paused";
/// Annotation whose every new value asks for an immediate reconcile that reads the link from
/// Polar; the value handled is echoed in `status.lastSyncRequest`.
pub const SYNC_ANNOTATION: &str = "polar.sh/sync-requested";
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
    printcolumn = r#"{"name":"Policy","type":"string","priority":1,"jsonPath":".spec.managementPolicy","description":"Observe: the operator only reads the link"}"#,
    printcolumn = r#"{"name":"Polar ID","type":"string","priority":1,"jsonPath":".status.id","description":"The checkout link id in Polar"}"#,
    printcolumn = r#"{"name":"Results","type":"string","priority":1,"jsonPath":".status.results.summary","description":"Orders and net revenue through this link (campaign results)"}"#,
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

    /// The Polar products offered by this link, at least one, without repetition; their order
    /// is the order shown on the checkout page. Each entry is a product id (a UUID v4), or an
    /// object that names the product one way: `{id: <uuid>}`, `{metadata: {sku: pro-monthly}}`
    /// (the product whose metadata has every one of these keys and values) or
    /// `{name: Pro Monthly}` (the exact name). Products named by metadata or name are looked up
    /// in the link's own organisation, among products neither archived nor drafts, so one
    /// manifest serves Polar's sandbox and production; the ids found are written to
    /// `status.resolved`, never here. Looking them up needs the token scope `products:read`.
    #[schemars(length(min = 1, max = 100))]
    // No x-kubernetes-list-type: set, whose server-side-apply merge would lose the order. The
    // entries' rules (one way of naming, UUIDs, no repetition) are in crd/policy.rs: an entry
    // may be a string or an object, which CRD rules cannot type-check.
    pub products: Vec<ProductRef>,

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

    // Documented on `ManagementPolicy` (as for `deletionPolicy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_policy: Option<ManagementPolicy>,

    /// Writes the link's URL, share URL and id into a ConfigMap of this resource's namespace,
    /// for a website to read (a container's `env` with `configMapKeyRef`, or a mounted volume).
    /// The operator owns only its keys (server-side apply): the ConfigMap may be one that Helm
    /// or a person created, and several CheckoutLinks may share it. The keys are removed when
    /// this resource is deleted, and the ConfigMap too if the operator created it and nothing
    /// else is left in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportSpec>,

    /// Whether this link's orders are counted into `status.results` when the operator runs
    /// with campaign results on (`--campaign-results`); `false` leaves this link out. Default
    /// `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_results: Option<bool>,
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

pub(crate) const UUID4_PATTERN: &str =
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
                "type": {"type": "string", "description": "Ready, Reconciling, Stalled, Synced or Sellable."},
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
