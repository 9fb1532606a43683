//! What the operator reports in a CheckoutLink's status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::{conditions_schema, paragraphs};

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
    /// The ids the spec's references (products named by metadata or name, a discount named by
    /// code) stand for in the link's organisation, as last resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<ResolvedRefs>,
    /// The ConfigMap holding the keys `spec.export` writes (so that they are removed from it
    /// when the export moves or the resource goes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_to: Option<String>,
    /// The value of the `polar.sh/sync-requested` annotation last handled (a script that sets
    /// a new value waits for it here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_request: Option<String>,
    /// Orders and revenue through this link (when the operator counts campaign results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<CampaignResults>,
    /// The `metadata.generation` this status describes; -1 until the operator has seen the
    /// resource (the apiserver sets it on create, so GitOps tools wait for the operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling and Stalled (kstatus conventions); Synced: whether the last attempt
    /// to bring the link to the spec succeeded; Sellable: whether buyers can pay as declared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// What the spec's references stand for.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedRefs {
    /// The product ids, in the spec's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<String>,
    /// The preset discount's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_id: Option<String>,
}

/// Orders through a link, read from Polar's orders by the owner tag the link's metadata passes
/// to its checkouts and orders. Amounts are in each currency's smallest unit (cents).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CampaignResults {
    /// One line for `kubectl get -o wide`: orders and net revenue.
    #[serde(default)]
    pub summary: String,
    /// Orders counted (renewals of subscriptions started through the link included).
    #[serde(default)]
    pub orders: i64,
    /// Per currency: net revenue (after discounts, before taxes and refunds) and refunds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revenue: Vec<Revenue>,
    /// When the newest order counted was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_order_at: Option<Time>,
    /// Orders per `utm_source` (from the share URL), most first; at most ten sources, the rest
    /// counted as `(other)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub utm_sources: Vec<SourceCount>,
    /// Bookkeeping: orders created up to this time are counted (except those in
    /// `recentOrderIds`' window, which are counted by id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_through: Option<Time>,
    /// Bookkeeping: ids of the orders counted that were created in the minute before
    /// `countedThrough` (read again by the next sweep; counted once).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_order_ids: Vec<String>,
    /// Bookkeeping: the refunded amount counted per refunded order of the last 30 days (a later
    /// refund of the same order adds only the difference).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refunds: Vec<RefundSeen>,
}

/// Revenue in one currency.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Revenue {
    /// ISO 4217 code, lower case (`usd`).
    pub currency: String,
    /// Sum of the orders' `net_amount`.
    pub net: i64,
    /// Sum of the orders' `refunded_amount`.
    #[serde(default)]
    pub refunded: i64,
}

/// Orders with one `utm_source`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SourceCount {
    /// The `utm_source` (or `(other)`).
    pub source: String,
    /// Orders counted with it.
    pub orders: i64,
}

/// A refunded order as counted.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RefundSeen {
    /// The order's id.
    pub id: String,
    /// When the order was created.
    pub created_at: Time,
    /// Its refunded amount as counted.
    pub amount: i64,
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
