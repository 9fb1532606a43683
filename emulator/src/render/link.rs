//! `CheckoutLink`, assembled from the link and the pre-rendered catalogue.

use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{Catalog, Raw, raw};
use crate::model::{Link, timestamp};
use crate::validate::metadata::Metadata;

#[derive(Serialize)]
struct LinkOut<'a> {
    id: Uuid,
    created_at: String,
    modified_at: Option<String>,
    trial_interval: Option<&'a str>,
    trial_interval_count: Option<i64>,
    metadata: &'a Metadata,
    payment_processor: &'static str,
    client_secret: &'a str,
    success_url: Option<&'a str>,
    return_url: Option<&'a str>,
    label: Option<&'a str>,
    allow_discount_codes: bool,
    require_billing_address: bool,
    discount_id: Option<Uuid>,
    seats: Option<i64>,
    units: Option<i64>,
    organization_id: Uuid,
    products: Vec<&'a RawValue>,
    discount: Option<&'a RawValue>,
    product_id: Option<Uuid>,
    product_price_id: Option<Uuid>,
    product: Option<&'a RawValue>,
    product_price: Option<&'a RawValue>,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_at: Option<Option<String>>,
}

/// A link as `CheckoutLink`. `products` are the product ids to show (all of the
/// link's, or the matching ones in a filtered list); `admin` adds `deleted_at`.
pub fn link(
    link: &Link,
    products: &[Uuid],
    catalog: &Catalog,
    url_template: &str,
    admin: bool,
) -> Raw {
    let first = products.first();
    let first_price = first.and_then(|p| catalog.first_price.get(p));
    raw(&LinkOut {
        id: link.id,
        created_at: timestamp(&link.created_at),
        modified_at: link.modified_at.as_ref().map(timestamp),
        trial_interval: link.trial_interval.as_deref(),
        trial_interval_count: link.trial_interval_count,
        metadata: &link.metadata,
        payment_processor: "stripe",
        client_secret: &link.client_secret,
        success_url: link.success_url.as_deref(),
        return_url: link.return_url.as_deref(),
        label: link.label.as_deref(),
        allow_discount_codes: link.allow_discount_codes,
        require_billing_address: link.require_billing_address,
        discount_id: link.discount_id,
        seats: link.seats,
        units: link.units,
        organization_id: link.organization_id,
        products: products
            .iter()
            .filter_map(|p| catalog.product_link.get(p).map(|r| r.as_ref()))
            .collect(),
        discount: link
            .discount_id
            .and_then(|d| catalog.discount_minimal.get(&d))
            .map(|r| r.as_ref()),
        product_id: first.copied(),
        product_price_id: first_price.map(|(id, _)| *id),
        product: first
            .and_then(|p| catalog.product_link.get(p))
            .map(|r| r.as_ref()),
        product_price: first_price.map(|(_, r)| r.as_ref()),
        url: url_template.replace("{client_secret}", &link.client_secret),
        deleted_at: admin.then(|| link.deleted_at.as_ref().map(timestamp)),
    })
}
