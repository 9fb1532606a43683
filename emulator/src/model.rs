//! The emulator's records: organisations, products, prices, discounts and
//! checkout links, as Polar's database holds them.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::seed::{SeedDiscount, SeedOrganization, SeedPrice, SeedProduct};
use crate::validate::metadata::Metadata;

/// A timestamp written as pydantic writes `datetime` (microseconds, `Z`;
/// no fraction when it is zero).
pub fn timestamp(t: &DateTime<Utc>) -> String {
    if t.timestamp_subsec_micros() == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

/// Now, to the microsecond (what Postgres keeps of a timestamp), so that a
/// written timestamp compares as the stored one does.
pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

/// Seeded records without a `created_at` get one from this base, one minute apart.
fn seed_time(explicit: Option<DateTime<Utc>>, index: usize) -> DateTime<Utc> {
    explicit.unwrap_or_else(|| {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(index as i64)
    })
}

#[derive(Debug, Clone)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
}

impl Organization {
    pub fn from_seed(s: &SeedOrganization, index: usize) -> Self {
        Organization {
            id: s.id,
            name: s.name.clone(),
            slug: s.slug.clone(),
            created_at: seed_time(s.created_at, index),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeatTier {
    pub min_seats: i64,
    pub max_seats: Option<i64>,
    pub price_per_seat: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PriceKind {
    Fixed {
        amount: i64,
    },
    Custom {
        minimum: i64,
        maximum: Option<i64>,
        preset: Option<i64>,
    },
    /// Served as a fixed price of 0: the 2026-04 schema has no free type.
    Free,
    SeatBased {
        tier_type: String,
        tiers: Vec<SeatTier>,
    },
    MeteredUnit {
        unit_amount: String,
        cap_amount: Option<i64>,
        meter_id: Uuid,
        meter_name: String,
    },
    /// Polar's `unit_based` price: one volume tier of `unit_amount` (cents,
    /// a decimal string) per unit, up to `maximum_units`.
    Unit {
        unit_amount: String,
        minimum_units: i64,
        maximum_units: Option<i64>,
    },
}

#[derive(Debug, Clone)]
pub struct Price {
    pub id: Uuid,
    pub product_id: Uuid,
    pub currency: String,
    pub kind: PriceKind,
    pub created_at: DateTime<Utc>,
}

impl Price {
    /// Seat range of a seat-based price: first tier's minimum, last tier's maximum.
    pub fn seat_range(&self) -> Option<(i64, Option<i64>)> {
        match &self.kind {
            PriceKind::SeatBased { tiers, .. } => Some((
                tiers.first().map_or(1, |t| t.min_seats),
                tiers.last().and_then(|t| t.max_seats),
            )),
            _ => None,
        }
    }

    pub fn unit_range(&self) -> Option<(i64, Option<i64>)> {
        match &self.kind {
            PriceKind::Unit {
                minimum_units,
                maximum_units,
                ..
            } => Some((*minimum_units, *maximum_units)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Product {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub visibility: String,
    pub is_archived: bool,
    pub recurring_interval: Option<String>,
    pub prices: Vec<Price>,
    pub metadata: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub modified_at: Option<DateTime<Utc>>,
    /// The seed's word on `is_deletable`, over the emulator's own rule.
    pub deletable_override: Option<bool>,
    /// Set by `DELETE /v1/products/{id}`; a deleted product is gone from the API.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Product {
    pub fn is_recurring(&self) -> bool {
        self.recurring_interval.is_some()
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// Polar's `is_deletable`: false while an order, subscription, trial or
    /// discount references the product. Here: an order (`ordered` holds the
    /// products that have one; its subscription comes with it) or a discount
    /// restricted to the product, unless the seed says otherwise.
    pub fn is_deletable<'a>(
        &self,
        mut discounts: impl Iterator<Item = &'a Discount>,
        ordered: &std::collections::HashSet<Uuid>,
    ) -> bool {
        self.deletable_override.unwrap_or_else(|| {
            !ordered.contains(&self.id) && !discounts.any(|d| d.products.contains(&self.id))
        })
    }

    pub fn from_seed(s: &SeedProduct, index: usize) -> Self {
        let created_at = seed_time(s.created_at, index);
        let prices = s
            .prices
            .iter()
            .enumerate()
            .map(|(i, p)| price_from_seed(s.id, p, i, created_at))
            .collect();
        Product {
            id: s.id,
            organization_id: s.organization,
            name: s.name.clone(),
            description: s.description.clone(),
            visibility: s.visibility.clone(),
            is_archived: s.is_archived,
            recurring_interval: s.recurring_interval.clone(),
            prices,
            metadata: s.metadata.clone(),
            created_at,
            modified_at: None,
            deletable_override: s.is_deletable,
            deleted_at: None,
        }
    }
}

/// A UUID v4 derived from `base` and `n`, for seed entries without an id.
pub fn derived_id(base: Uuid, n: u8) -> Uuid {
    let mut bytes = *base.as_bytes();
    bytes[15] ^= n.wrapping_add(1);
    bytes[14] ^= 0x5a;
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

fn price_from_seed(product: Uuid, p: &SeedPrice, index: usize, created_at: DateTime<Utc>) -> Price {
    let kind = match p.kind.as_str() {
        "fixed" => PriceKind::Fixed {
            amount: p.amount.unwrap_or(0),
        },
        "custom" => PriceKind::Custom {
            minimum: p.minimum_amount.unwrap_or(0),
            maximum: p.maximum_amount,
            preset: p.preset_amount,
        },
        "seat_based" => PriceKind::SeatBased {
            tier_type: p.seat_tier_type.clone().unwrap_or_else(|| "volume".into()),
            tiers: p
                .tiers
                .iter()
                .map(|t| SeatTier {
                    min_seats: t.min_seats,
                    max_seats: t.max_seats,
                    price_per_seat: t.price_per_seat,
                })
                .collect(),
        },
        "metered_unit" => PriceKind::MeteredUnit {
            unit_amount: p.unit_amount.clone().unwrap_or_default(),
            cap_amount: p.cap_amount,
            meter_id: p
                .meter_id
                .unwrap_or_else(|| derived_id(product, 100 + index as u8)),
            meter_name: p.meter_name.clone().unwrap_or_else(|| "Usage".into()),
        },
        "unit_based" | "unit" => PriceKind::Unit {
            unit_amount: p
                .unit_amount
                .clone()
                .unwrap_or_else(|| p.amount.unwrap_or(0).to_string()),
            minimum_units: p.minimum_units.unwrap_or(1),
            maximum_units: p.maximum_units,
        },
        _ => PriceKind::Free,
    };
    Price {
        id: p.id.unwrap_or_else(|| derived_id(product, index as u8)),
        product_id: product,
        currency: p.currency.clone(),
        kind,
        created_at,
    }
}

#[derive(Debug, Clone)]
pub enum DiscountAmount {
    Percentage { basis_points: i64 },
    Fixed { amounts: BTreeMap<String, i64> },
}

#[derive(Debug, Clone)]
pub struct Discount {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub code: Option<String>,
    pub amount: DiscountAmount,
    pub duration: String,
    pub duration_in_months: Option<i64>,
    /// Empty: applies to every product of the organisation.
    pub products: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub modified_at: Option<DateTime<Utc>>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub max_redemptions: Option<i64>,
    /// Seeded, set by the discount control, and counted up by every order a
    /// link's preset discount went into.
    pub redemptions_count: i64,
}

impl Discount {
    pub fn from_seed(s: &SeedDiscount, index: usize) -> Self {
        let amount = if s.kind == "fixed" {
            DiscountAmount::Fixed {
                amounts: s.amounts.clone(),
            }
        } else {
            DiscountAmount::Percentage {
                basis_points: s.basis_points.unwrap_or(0),
            }
        };
        Discount {
            id: s.id,
            organization_id: s.organization,
            name: s.name.clone(),
            code: s.code.clone(),
            amount,
            duration: s.duration.clone(),
            duration_in_months: s.duration_in_months,
            products: s.products.clone(),
            created_at: seed_time(s.created_at, index),
            modified_at: None,
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            max_redemptions: s.max_redemptions,
            redemptions_count: s.redemptions_count,
        }
    }

    /// Polar's redeemability (`discount/service.py`): started, not ended,
    /// and not used up.
    pub fn is_redeemable(&self, now: DateTime<Utc>) -> bool {
        self.starts_at.is_none_or(|t| t <= now)
            && self.ends_at.is_none_or(|t| t >= now)
            && self
                .max_redemptions
                .is_none_or(|max| self.redemptions_count < max)
    }

    /// What the discount takes off `amount` cents in `currency`; `None` when
    /// it has no amount in that currency. A percentage rounds half away from
    /// zero (`polar_round`), a fixed amount never exceeds `amount`.
    pub fn amount_off(&self, amount: i64, currency: &str) -> Option<i64> {
        match &self.amount {
            DiscountAmount::Percentage { basis_points } => {
                let exact = amount as f64 * (*basis_points as f64 / 10_000.0);
                let rounded = if exact - exact.trunc() >= 0.5 {
                    exact.ceil()
                } else {
                    exact.floor()
                };
                Some(rounded as i64)
            }
            DiscountAmount::Fixed { amounts } => amounts.get(currency).map(|a| (*a).min(amount)),
        }
    }

    /// Whether the discount may be preset on a link with these products.
    pub fn applies_to(&self, products: &[Uuid]) -> bool {
        self.products.is_empty() || products.iter().all(|p| self.products.contains(p))
    }
}

/// A checkout link as stored, soft-deleted ones included.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub modified_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub organization_id: Uuid,
    pub client_secret: String,
    pub trial_interval: Option<String>,
    pub trial_interval_count: Option<i64>,
    pub metadata: Metadata,
    pub success_url: Option<String>,
    pub return_url: Option<String>,
    pub label: Option<String>,
    pub allow_discount_codes: bool,
    pub require_billing_address: bool,
    pub discount_id: Option<Uuid>,
    pub seats: Option<i64>,
    pub units: Option<i64>,
    /// In link order.
    pub products: Vec<Uuid>,
}

/// A customer, created by the first order of an email in an organisation.
#[derive(Debug, Clone)]
pub struct Customer {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Invoices numbered so far (`<ORG>-<CUSTOMER>-0001`, ...).
    pub invoices: u32,
}

/// The subscription a recurring product's order started.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: Uuid,
    pub amount: i64,
    pub recurring_interval: String,
    pub current_period_start: DateTime<Utc>,
    pub current_period_end: DateTime<Utc>,
}

/// A paid order, as a checkout through a link leaves it.
#[derive(Debug, Clone)]
pub struct Order {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub modified_at: Option<DateTime<Utc>>,
    pub organization_id: Uuid,
    /// `paid`, `partially_refunded` or `refunded`.
    pub status: &'static str,
    pub subtotal_amount: i64,
    pub discount_amount: i64,
    pub refunded_amount: i64,
    pub currency: String,
    /// `purchase` or `subscription_create`.
    pub billing_reason: &'static str,
    pub invoice_number: String,
    pub seats: Option<i64>,
    pub units: Option<i64>,
    pub customer_id: Uuid,
    pub product_id: Uuid,
    pub product_price_id: Uuid,
    pub discount_id: Option<Uuid>,
    pub checkout_id: Uuid,
    pub metadata: Metadata,
    pub item_id: Uuid,
    pub subscription: Option<Subscription>,
}

impl Order {
    /// `subtotal - discount` (Polar's hybrid property); no tax is modelled.
    pub fn net_amount(&self) -> i64 {
        self.subtotal_amount - self.discount_amount
    }

    /// What can still be refunded: `net + applied balance (0) - refunded`.
    pub fn refundable_amount(&self) -> i64 {
        self.net_amount() - self.refunded_amount
    }

    /// `paid`, `refunded` and `partially_refunded` count as paid.
    pub fn paid(&self) -> bool {
        matches!(self.status, "paid" | "refunded" | "partially_refunded")
    }
}
