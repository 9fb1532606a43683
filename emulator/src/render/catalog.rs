//! Prices, products and discounts, pre-rendered once per catalogue change.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{Raw, raw};
use crate::model::{Discount, DiscountAmount, Price, PriceKind, Product, timestamp};
use crate::versions::Shape;

#[derive(Serialize)]
struct SeatTiersOut<'a> {
    seat_tier_type: &'a str,
    tiers: Vec<Value>,
    minimum_seats: i64,
    maximum_seats: Option<i64>,
}

/// `Tiers`: `{"type": "volume" | "graduated", "tiers": [{"bound", "unit_amount"}]}`.
#[derive(Serialize)]
struct TiersOut<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    tiers: Vec<TierOut>,
}

/// `Tier`: a rate in cents (a decimal string) up to and including `bound`
/// (`null`: unbounded).
#[derive(Serialize)]
struct TierOut {
    bound: Option<i64>,
    unit_amount: String,
}

#[derive(Serialize)]
#[serde(untagged)]
enum PriceExtra<'a> {
    Fixed {
        price_amount: i64,
    },
    Custom {
        minimum_amount: i64,
        maximum_amount: Option<i64>,
        preset_amount: Option<i64>,
    },
    Seat {
        seat_tiers: SeatTiersOut<'a>,
    },
    /// 2027-01's seat-based price.
    SeatTiered {
        tiers: TiersOut<'a>,
        minimum_units: Option<i64>,
        maximum_units: Option<i64>,
    },
    Metered {
        unit_amount: &'a str,
        cap_amount: Option<i64>,
        meter_id: Uuid,
        meter: Value,
    },
    Unit {
        tiers: TiersOut<'a>,
        minimum_units: Option<i64>,
        unit_label: Option<Value>,
        maximum_units: Option<i64>,
    },
}

#[derive(Serialize)]
struct PriceOut<'a> {
    created_at: String,
    modified_at: Option<String>,
    id: Uuid,
    source: &'static str,
    amount_type: &'static str,
    price_currency: &'a str,
    tax_behavior: Option<&'static str>,
    is_archived: bool,
    product_id: Uuid,
    #[serde(flatten)]
    extra: PriceExtra<'a>,
}

/// A price as `shape`'s version writes it.
pub fn price(p: &Price, shape: Shape) -> Raw {
    let (amount_type, extra) = match &p.kind {
        PriceKind::Fixed { amount } => (
            "fixed",
            PriceExtra::Fixed {
                price_amount: *amount,
            },
        ),
        PriceKind::Free => ("fixed", PriceExtra::Fixed { price_amount: 0 }),
        PriceKind::Custom {
            minimum,
            maximum,
            preset,
        } => (
            "custom",
            PriceExtra::Custom {
                minimum_amount: *minimum,
                maximum_amount: *maximum,
                preset_amount: *preset,
            },
        ),
        PriceKind::SeatBased { tier_type, tiers } if shape == Shape::Tiers => {
            let (min, max) = p.seat_range().unwrap_or((1, None));
            // Each tier runs from the previous bound to its own; the seat
            // range moves to minimum_units / maximum_units.
            let tiers = tiers
                .iter()
                .map(|t| TierOut {
                    bound: t.max_seats,
                    unit_amount: t.price_per_seat.to_string(),
                })
                .collect();
            (
                "seat_based",
                PriceExtra::SeatTiered {
                    tiers: TiersOut {
                        kind: tier_type,
                        tiers,
                    },
                    minimum_units: Some(min),
                    maximum_units: max,
                },
            )
        }
        PriceKind::SeatBased { tier_type, tiers } => {
            let (min, max) = p.seat_range().unwrap_or((1, None));
            let tiers = tiers
                .iter()
                .map(|t| json!({"min_seats": t.min_seats, "max_seats": t.max_seats, "price_per_seat": t.price_per_seat}))
                .collect();
            (
                "seat_based",
                PriceExtra::Seat {
                    seat_tiers: SeatTiersOut {
                        seat_tier_type: tier_type,
                        tiers,
                        minimum_seats: min,
                        maximum_seats: max,
                    },
                },
            )
        }
        PriceKind::MeteredUnit {
            unit_amount,
            cap_amount,
            meter_id,
            meter_name,
        } => (
            "metered_unit",
            PriceExtra::Metered {
                unit_amount,
                cap_amount: *cap_amount,
                meter_id: *meter_id,
                meter: json!({"id": meter_id, "name": meter_name, "unit": "scalar", "custom_label": null, "custom_multiplier": null}),
            },
        ),
        PriceKind::Unit {
            unit_amount,
            minimum_units,
            maximum_units,
        } => (
            "unit_based",
            PriceExtra::Unit {
                tiers: TiersOut {
                    kind: "volume",
                    tiers: vec![TierOut {
                        bound: *maximum_units,
                        unit_amount: unit_amount.clone(),
                    }],
                },
                minimum_units: Some(*minimum_units),
                unit_label: None,
                maximum_units: *maximum_units,
            },
        ),
    };
    raw(&PriceOut {
        created_at: timestamp(&p.created_at),
        modified_at: None,
        id: p.id,
        source: "catalog",
        amount_type,
        price_currency: &p.currency,
        tax_behavior: None,
        is_archived: false,
        product_id: p.product_id,
        extra,
    })
}

#[derive(Serialize)]
struct ProductOut<'a> {
    metadata: &'a Map<String, Value>,
    id: Uuid,
    created_at: String,
    modified_at: Option<String>,
    trial_interval: Option<&'static str>,
    trial_interval_count: Option<i64>,
    name: &'a str,
    description: Option<&'a str>,
    visibility: &'a str,
    recurring_interval: Option<&'a str>,
    recurring_interval_count: Option<i64>,
    meter_interval: Option<&'static str>,
    meter_interval_count: Option<i64>,
    is_recurring: bool,
    is_archived: bool,
    organization_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_deletable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prices: Option<Vec<&'a RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    benefits: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    medias: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attached_custom_fields: Option<Vec<Value>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ProductForm {
    /// `CheckoutLinkProduct`, as embedded in a link.
    Link,
    /// `Product`, from `/v1/products`.
    Full,
    /// `DiscountProduct`: no prices, benefits or medias.
    Discount,
}

/// `is_deletable` is written on the full form only (`Product`).
pub fn product(p: &Product, prices: &[Raw], form: ProductForm, is_deletable: bool) -> Raw {
    let with_lists = form != ProductForm::Discount;
    raw(&ProductOut {
        metadata: &p.metadata,
        id: p.id,
        created_at: timestamp(&p.created_at),
        modified_at: p.modified_at.as_ref().map(timestamp),
        trial_interval: None,
        trial_interval_count: None,
        name: &p.name,
        description: p.description.as_deref(),
        visibility: &p.visibility,
        recurring_interval: p.recurring_interval.as_deref(),
        recurring_interval_count: p.is_recurring().then_some(1),
        meter_interval: None,
        meter_interval_count: None,
        is_recurring: p.is_recurring(),
        is_archived: p.is_archived,
        organization_id: p.organization_id,
        is_deletable: (form == ProductForm::Full).then_some(is_deletable),
        prices: with_lists.then(|| prices.iter().map(|r| r.as_ref()).collect()),
        benefits: with_lists.then(Vec::new),
        medias: with_lists.then(Vec::new),
        attached_custom_fields: (form == ProductForm::Full).then(Vec::new),
    })
}

#[derive(Serialize)]
struct DiscountOut<'a> {
    duration: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_in_months: Option<i64>,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    basis_points: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amounts: Option<&'a BTreeMap<String, i64>>,
    created_at: String,
    modified_at: Option<String>,
    id: Uuid,
    metadata: Map<String, Value>,
    name: &'a str,
    code: Option<&'a str>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    max_redemptions: Option<i64>,
    max_redemptions_per_customer: Option<i64>,
    redemptions_count: i64,
    organization_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    products: Option<Vec<&'a RawValue>>,
}

/// `DiscountMinimal` (in links) when `products` is `None`, the full
/// `Discount` otherwise.
pub fn discount(d: &Discount, products: Option<Vec<&RawValue>>) -> Raw {
    let (kind, basis_points, amount, currency, amounts) = match &d.amount {
        DiscountAmount::Percentage { basis_points } => {
            ("percentage", Some(*basis_points), None, None, None)
        }
        DiscountAmount::Fixed { amounts } => {
            let first = amounts
                .get_key_value("usd")
                .or_else(|| amounts.iter().next());
            (
                "fixed",
                None,
                first.map(|(_, a)| *a),
                first.map(|(c, _)| c.as_str()),
                Some(amounts),
            )
        }
    };
    raw(&DiscountOut {
        duration: &d.duration,
        duration_in_months: if d.duration == "repeating" {
            d.duration_in_months
        } else {
            None
        },
        kind,
        basis_points,
        amount,
        currency,
        amounts,
        created_at: timestamp(&d.created_at),
        modified_at: d.modified_at.as_ref().map(timestamp),
        id: d.id,
        metadata: Map::new(),
        name: &d.name,
        code: d.code.as_deref(),
        starts_at: d.starts_at.as_ref().map(timestamp),
        ends_at: d.ends_at.as_ref().map(timestamp),
        max_redemptions: d.max_redemptions,
        max_redemptions_per_customer: None,
        redemptions_count: d.redemptions_count,
        organization_id: d.organization_id,
        products,
    })
}

/// Pre-rendered JSON of the catalogue in one version's shape, rebuilt
/// whenever a product changes. Deleted products are left out.
#[derive(Default)]
pub struct Catalog {
    pub product_link: HashMap<Uuid, Raw>,
    pub product_full: HashMap<Uuid, Raw>,
    pub first_price: HashMap<Uuid, (Uuid, Raw)>,
    pub discount_minimal: HashMap<Uuid, Raw>,
    pub discount_full: HashMap<Uuid, Raw>,
}

impl Catalog {
    pub fn build(
        products: &[&Product],
        discounts: &[&Discount],
        ordered: &HashSet<Uuid>,
        shape: Shape,
    ) -> Catalog {
        let mut c = Catalog::default();
        let mut discount_products: HashMap<Uuid, Raw> = HashMap::new();
        for p in products.iter().filter(|p| !p.is_deleted()) {
            let prices: Vec<Raw> = p.prices.iter().map(|pr| price(pr, shape)).collect();
            if let (Some(first), Some(raw)) = (p.prices.first(), prices.first()) {
                c.first_price.insert(p.id, (first.id, raw.clone()));
            }
            let deletable = p.is_deletable(discounts.iter().copied(), ordered);
            c.product_link
                .insert(p.id, product(p, &prices, ProductForm::Link, deletable));
            c.product_full
                .insert(p.id, product(p, &prices, ProductForm::Full, deletable));
            discount_products.insert(p.id, product(p, &[], ProductForm::Discount, deletable));
        }
        for d in discounts {
            c.discount_minimal.insert(d.id, discount(d, None));
            let listed: Vec<&RawValue> = d
                .products
                .iter()
                .filter_map(|id| discount_products.get(id).map(|r| r.as_ref()))
                .collect();
            c.discount_full.insert(d.id, discount(d, Some(listed)));
        }
        c
    }
}
