//! The parts of a CheckoutLink's spec: discount, trial, deletion policy, URL parameters,
//! credentials reference, product references and the ConfigMap export.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::UUID4_PATTERN;

/// Discount settings of a checkout link.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.presetId) && has(self.presetCode))").message("discount: name the preset discount by presetId or by presetCode, not both"))]
pub struct DiscountSpec {
    /// Whether customers may enter a discount code at checkout. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_codes: Option<bool>,

    /// Id (UUID v4) of a Polar discount applied automatically. It must belong to the same
    /// organisation and apply to every product of the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = UUID4_PATTERN), length(max = 36))]
    pub preset_id: Option<String>,

    /// The code of the Polar discount applied automatically, instead of its id (codes compare
    /// case-insensitively): looked up in the link's own organisation, so one manifest serves
    /// Polar's sandbox and production. Needs the token scope `discounts:read`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub preset_code: Option<String>,
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

/// What the operator may do with the Polar link: `Full` (default) creates, updates and deletes
/// it to match the spec; `Observe` only reads the link named by the annotation
/// `polar.sh/checkout-link-id` — status, sellability and results are kept current and drift
/// from the spec is reported in the `Synced` condition, but the operator never creates,
/// changes, tags or deletes it, and deleting this resource leaves it alone. Switching to
/// `Full` adopts the link.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ManagementPolicy {
    /// Create, update and delete the link.
    #[default]
    Full,
    /// Only read the link named by the adoption annotation.
    Observe,
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

/// One product of a link: its id, or an object naming it one way (see `spec.products`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub enum ProductRef {
    /// A product id (UUID v4), as written since the first version of the resource.
    Id(String),
    /// An object naming the product by `id`, by `metadata` or by `name`.
    Named(ProductSelector),
}

/// A product named by its id, its metadata or its exact name (exactly one of them).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProductSelector {
    /// The product's id (UUID v4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Metadata the product has: every key with this value (values compare as strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// The product's exact name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ProductRef {
    /// The id, when the entry names the product by id.
    pub fn id(&self) -> Option<&str> {
        match self {
            ProductRef::Id(id) => Some(id),
            ProductRef::Named(ProductSelector { id, .. }) => id.as_deref(),
        }
    }
}

impl From<&str> for ProductRef {
    fn from(id: &str) -> Self {
        ProductRef::Id(id.to_owned())
    }
}

impl JsonSchema for ProductRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ProductRef".into()
    }

    // A string or an object: no structural type says both, so the schema keeps the value as
    // it is and the rules of crd/policy.rs check it.
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"x-kubernetes-preserve-unknown-fields": true})
    }

    fn inline_schema() -> bool {
        true
    }
}

/// Where the link's URL is written for a website.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExportSpec {
    /// Name of the ConfigMap, in this resource's namespace (created if it does not exist).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub config_map: String,
    /// The key names; each defaults to this resource's name followed by `.url`, `.shareUrl`
    /// or `.id`, so that several CheckoutLinks can share one ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<ExportKeys>,
}

/// Key names of the exported values; leave one out for its default.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExportKeys {
    /// The key of `status.url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub url: Option<String>,
    /// The key of `status.shareUrl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub share_url: Option<String>,
    /// The key of `status.id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub id: Option<String>,
}
