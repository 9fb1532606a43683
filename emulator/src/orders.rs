//! Orders: what a purchase through a checkout link leaves (`buy`), refunds,
//! and `GET /v1/orders/`'s filters and sorting.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use anyhow::{anyhow, bail};
use chrono::{DateTime, Months, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Principal;
use crate::filters::{metadata_matches, pg_text};
use crate::model::{Customer, Link, Order, Price, PriceKind, Product, Subscription};
use crate::state::Store;
use crate::validate::metadata::MetaValue;

/// A purchase through a link (`POST /__emulator/checkout-links/{id}/buy`,
/// [`crate::Emulator::buy`]). Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuyOptions {
    /// The share URL's query string: `utm_source`, `utm_medium`,
    /// `utm_campaign`, `utm_content`, `utm_term` and `reference_id` go into
    /// the order's metadata unless the link's metadata has the key;
    /// `customer_email` and `customer_name` prefill the customer.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// One of the link's sellable products; default the first.
    #[serde(default)]
    pub product_id: Option<Uuid>,
    /// The subtotal in cents; default what the product's price asks.
    #[serde(default)]
    pub amount: Option<i64>,
    /// One of the product's price currencies; default its first price's.
    #[serde(default)]
    pub currency: Option<String>,
    /// Backdates the order (and its checkout); default now.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

/// The query parameters a link's redirect turns into checkout metadata, in
/// the order Polar passes them (`checkout_link/endpoints.py`).
pub const QUERY_METADATA: &[&str] = &[
    "reference_id",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
];

fn round_half_away(x: f64) -> i64 {
    if x >= 0.0 {
        if x - x.trunc() >= 0.5 {
            x.ceil() as i64
        } else {
            x.floor() as i64
        }
    } else if x - x.trunc() <= -0.5 {
        x.floor() as i64
    } else {
        x.ceil() as i64
    }
}

/// What a price asks for by default, and the seats or units it was for.
fn default_amount(price: &Price, link: &Link) -> (i64, Option<i64>, Option<i64>) {
    match &price.kind {
        PriceKind::Fixed { amount } => (*amount, None, None),
        PriceKind::Free | PriceKind::MeteredUnit { .. } => (0, None, None),
        // `price.preset_amount or price.minimum_amount or 0`
        PriceKind::Custom {
            minimum, preset, ..
        } => (preset.filter(|p| *p != 0).unwrap_or(*minimum), None, None),
        PriceKind::SeatBased { tier_type, tiers } => {
            let (min, _) = price.seat_range().unwrap_or((1, None));
            let seats = link.seats.unwrap_or(min);
            let amount = if tier_type == "graduated" {
                tiers
                    .iter()
                    .map(|t| {
                        let top = t.max_seats.unwrap_or(i64::MAX).min(seats);
                        (top - t.min_seats + 1).max(0) * t.price_per_seat
                    })
                    .sum()
            } else {
                tiers
                    .iter()
                    .find(|t| seats >= t.min_seats && t.max_seats.is_none_or(|m| seats <= m))
                    .or(tiers.last())
                    .map_or(0, |t| seats * t.price_per_seat)
            };
            (amount, Some(seats), None)
        }
        PriceKind::Unit {
            unit_amount,
            minimum_units,
            ..
        } => {
            let units = link.units.unwrap_or(*minimum_units);
            let per: f64 = unit_amount.parse().unwrap_or(0.0);
            (round_half_away(per * units as f64), None, Some(units))
        }
    }
}

fn add_interval(t: DateTime<Utc>, interval: &str) -> DateTime<Utc> {
    match interval {
        "day" => t + chrono::Duration::days(1),
        "week" => t + chrono::Duration::weeks(1),
        "year" => t.checked_add_months(Months::new(12)).unwrap_or(t),
        _ => t.checked_add_months(Months::new(1)).unwrap_or(t),
    }
}

/// Polar's `status` sort key: pending 1, paid 2, refunded 3,
/// partially_refunded 4, any other status NULL.
fn status_rank(status: &str) -> Option<u8> {
    match status {
        "pending" => Some(1),
        "paid" => Some(2),
        "refunded" => Some(3),
        "partially_refunded" => Some(4),
        _ => None,
    }
}

/// `GET /v1/orders/`'s filters (each `None` when absent).
#[derive(Debug, Default)]
pub struct OrderFilter {
    pub organizations: Option<Vec<Uuid>>,
    pub products: Option<Vec<Uuid>>,
    pub billing_types: Option<Vec<String>>,
    pub discounts: Option<Vec<Uuid>>,
    pub customers: Option<Vec<Uuid>>,
    pub external_customers: Option<Vec<String>>,
    pub checkouts: Option<Vec<Uuid>>,
    pub subscriptions: Option<Vec<Uuid>>,
    pub statuses: Option<Vec<String>>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub metadata: Vec<(String, Vec<String>)>,
    pub sorting: Vec<(String, bool)>,
}

fn in_list<T: PartialEq>(list: &Option<Vec<T>>, value: &T) -> bool {
    list.as_ref().is_none_or(|l| l.contains(value))
}

impl Store {
    /// The caller's orders that pass `f`, in `f.sorting`'s order.
    pub fn list_orders(&self, who: &Principal, f: &OrderFilter) -> Vec<&Order> {
        let mut orders: Vec<&Order> = self
            .order_order
            .iter()
            .filter_map(|id| self.orders.get(id))
            .filter(|o| who.can_access(o.organization_id))
            .filter(|o| in_list(&f.organizations, &o.organization_id))
            .filter(|o| in_list(&f.products, &o.product_id))
            .filter(|o| {
                f.billing_types.as_ref().is_none_or(|types| {
                    let recurring = self
                        .products
                        .get(&o.product_id)
                        .is_some_and(Product::is_recurring);
                    types.iter().any(|t| (t == "recurring") == recurring)
                })
            })
            .filter(|o| {
                f.discounts
                    .as_ref()
                    .is_none_or(|l| o.discount_id.is_some_and(|d| l.contains(&d)))
            })
            .filter(|o| in_list(&f.customers, &o.customer_id))
            // No customer has an external id here.
            .filter(|_| f.external_customers.is_none())
            .filter(|o| in_list(&f.checkouts, &o.checkout_id))
            .filter(|o| {
                f.subscriptions
                    .as_ref()
                    .is_none_or(|l| o.subscription.as_ref().is_some_and(|s| l.contains(&s.id)))
            })
            .filter(|o| {
                f.statuses
                    .as_ref()
                    .is_none_or(|l| l.iter().any(|s| s == o.status))
            })
            .filter(|o| f.created_after.is_none_or(|t| o.created_at > t))
            .filter(|o| f.created_before.is_none_or(|t| o.created_at < t))
            .filter(|o| {
                metadata_matches(&f.metadata, |k| {
                    o.metadata
                        .0
                        .iter()
                        .find(|(key, _)| key == k)
                        .and_then(|(_, v)| pg_text(&v.to_value()))
                })
            })
            .collect();
        orders.sort_by(|a, b| {
            for (property, desc) in &f.sorting {
                let ord = self.compare_orders(a, b, property);
                let ord = if *desc { ord.reverse() } else { ord };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            Ordering::Equal
        });
        orders
    }

    fn compare_orders(&self, a: &Order, b: &Order, property: &str) -> Ordering {
        use crate::routes::catalog::nulls_last;
        match property {
            "status" => nulls_last(status_rank(a.status), status_rank(b.status)),
            "invoice_number" => a.invoice_number.cmp(&b.invoice_number),
            "amount" | "net_amount" => a.net_amount().cmp(&b.net_amount()),
            "customer" => {
                let email = |o: &Order| self.customers.get(&o.customer_id).map(|c| c.email.clone());
                nulls_last(email(a), email(b))
            }
            "product" => {
                let name = |o: &Order| self.products.get(&o.product_id).map(|p| p.name.clone());
                nulls_last(name(a), name(b))
            }
            "discount" => {
                let name = |o: &Order| {
                    o.discount_id
                        .and_then(|d| self.discounts.get(&d))
                        .map(|d| d.name.clone())
                };
                nulls_last(name(a), name(b))
            }
            "subscription" => nulls_last(
                a.subscription.as_ref().map(|s| s.id),
                b.subscription.as_ref().map(|s| s.id),
            ),
            _ => a.created_at.cmp(&b.created_at),
        }
    }

    /// A checkout through the link, then its paid order (Polar's
    /// `checkout_link_create`, confirm and success, in one step).
    pub fn buy(
        &mut self,
        link_id: Uuid,
        opts: &BuyOptions,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Uuid> {
        let link = self
            .links
            .get(&link_id)
            .filter(|l| l.deleted_at.is_none())
            .ok_or_else(|| anyhow!("no live checkout link {link_id}"))?
            .clone();
        // Archived and draft products are left out of the checkout.
        let sellable: Vec<&Product> = link
            .products
            .iter()
            .filter_map(|id| self.products.get(id))
            .filter(|p| !p.is_deleted() && !p.is_archived && p.visibility != "draft")
            .collect();
        if sellable.is_empty() {
            bail!("No valid products.");
        }
        let product = match opts.product_id {
            None => sellable[0],
            Some(id) => *sellable
                .iter()
                .find(|p| p.id == id)
                .ok_or_else(|| anyhow!("product {id} is not one of the link's valid products"))?,
        };
        let currency = match &opts.currency {
            Some(c) => c.to_lowercase(),
            None => product.prices[0].currency.clone(),
        };
        let price = product
            .prices
            .iter()
            .find(|p| p.currency == currency)
            .ok_or_else(|| anyhow!("product {} has no price in {currency}", product.id))?;
        let (default, seats, units) = default_amount(price, &link);
        let subtotal = opts.amount.unwrap_or(default);
        if subtotal < 0 {
            bail!("amount must not be negative");
        }
        let created_at = opts.created_at.map_or(now, |t| {
            use chrono::SubsecRound;
            t.trunc_subsecs(6)
        });
        // The link's preset discount, if it still applies (Polar ignores one
        // that does not).
        let discount = link
            .discount_id
            .and_then(|d| self.discounts.get(&d))
            .filter(|d| d.organization_id == link.organization_id)
            .filter(|d| d.is_redeemable(created_at))
            .filter(|d| d.products.is_empty() || d.products.contains(&product.id))
            .and_then(|d| d.amount_off(subtotal, &currency).map(|off| (d.id, off)));

        let mut metadata = link.metadata.clone();
        for key in QUERY_METADATA {
            if let Some(v) = opts.query.get(*key)
                && !metadata.0.iter().any(|(k, _)| k == key)
            {
                metadata
                    .0
                    .push((key.to_string(), MetaValue::Str(v.clone())));
            }
        }
        let product_id = product.id;
        let price_id = price.id;
        let subscription = product
            .recurring_interval
            .as_ref()
            .map(|interval| Subscription {
                id: Uuid::new_v4(),
                amount: subtotal,
                recurring_interval: interval.clone(),
                current_period_start: created_at,
                current_period_end: add_interval(created_at, interval),
            });
        let order_id = Uuid::new_v4();
        let customer_id = self.customer_for(
            link.organization_id,
            opts.query.get("customer_email").cloned(),
            opts.query.get("customer_name").cloned(),
            order_id,
            created_at,
        );
        let slug = self
            .organizations
            .iter()
            .find(|o| o.id == link.organization_id)
            .map_or_else(|| "ORG".to_string(), |o| o.slug.to_uppercase());
        let customer = self
            .customers
            .get_mut(&customer_id)
            .expect("customer_for returns a stored customer");
        customer.invoices += 1;
        let invoice_number = format!(
            "{slug}-{}-{:04}",
            customer.id.simple().to_string()[..5].to_uppercase(),
            customer.invoices
        );
        let order = Order {
            id: order_id,
            created_at,
            modified_at: None,
            organization_id: link.organization_id,
            status: "paid",
            subtotal_amount: subtotal,
            discount_amount: discount.map_or(0, |(_, off)| off),
            refunded_amount: 0,
            currency,
            billing_reason: if subscription.is_some() {
                "subscription_create"
            } else {
                "purchase"
            },
            invoice_number,
            seats,
            units,
            customer_id,
            product_id,
            product_price_id: price_id,
            discount_id: discount.map(|(id, _)| id),
            checkout_id: Uuid::new_v4(),
            metadata,
            item_id: Uuid::new_v4(),
            subscription,
        };
        if let Some((d, _)) = discount
            && let Some(d) = self.discounts.get_mut(&d)
        {
            d.redemptions_count += 1;
        }
        let at = self
            .order_order
            .partition_point(|id| self.orders[id].created_at <= created_at);
        self.order_order.insert(at, order_id);
        self.orders.insert(order_id, order);
        self.rebuild_catalog();
        Ok(order_id)
    }

    /// The organisation's customer with this email (case-insensitively), or
    /// a new one; without an email, a new customer `buyer-<id>@example.com`.
    fn customer_for(
        &mut self,
        org: Uuid,
        email: Option<String>,
        name: Option<String>,
        order_id: Uuid,
        now: DateTime<Utc>,
    ) -> Uuid {
        if let Some(email) = &email
            && let Some(c) = self
                .customers
                .values()
                .find(|c| c.organization_id == org && c.email.eq_ignore_ascii_case(email))
        {
            return c.id;
        }
        let id = Uuid::new_v4();
        let email = email.unwrap_or_else(|| {
            format!("buyer-{}@example.com", &order_id.simple().to_string()[..8])
        });
        self.customers.insert(
            id,
            Customer {
                id,
                organization_id: org,
                email,
                name,
                created_at: now,
                invoices: 0,
            },
        );
        id
    }

    /// A refund of `amount` cents (default: all that is refundable), as
    /// Polar's `Order.update_refunds` does.
    pub fn refund(
        &mut self,
        order_id: Uuid,
        amount: Option<i64>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let order = self
            .orders
            .get_mut(&order_id)
            .ok_or_else(|| anyhow!("no order {order_id}"))?;
        let refundable = order.refundable_amount();
        let amount = amount.unwrap_or(refundable);
        if amount <= 0 {
            bail!("a refund must be more than 0 cents (refundable: {refundable})");
        }
        if amount > refundable {
            bail!("a refund of {amount} exceeds the refundable {refundable}");
        }
        order.refunded_amount += amount;
        order.status = if order.refunded_amount == order.net_amount() {
            "refunded"
        } else {
            "partially_refunded"
        };
        order.modified_at = Some(now);
        Ok(())
    }
}
