//! Polar's service-layer checks (`PolarRequestValidationError`): products,
//! prices, discounts, seats and units.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::Principal;
use crate::errors::ErrorItem;
use crate::loc;
use crate::model::{PriceKind, Product};
use crate::state::Store;

/// Loads and checks each product; the errors are collected, as Polar does.
pub fn validated_products(
    store: &Store,
    who: &Principal,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, Vec<ErrorItem>> {
    let mut errors = Vec::new();
    let mut found: Vec<&Product> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let input = Value::String(id.to_string());
        let msg = match store.visible_product(who, *id) {
            None => "Product does not exist.",
            Some(p) if p.is_archived => "Product is archived.",
            Some(p) if p.visibility == "draft" => "Product is a draft.",
            Some(p) => {
                found.push(p);
                continue;
            }
        };
        errors.push(ErrorItem::service(loc!["body", "products", i], msg, input));
    }
    let first_org = found.first().map(|p| p.organization_id);
    if found.iter().any(|p| Some(p.organization_id) != first_org) {
        errors.push(ErrorItem::service(
            loc!["body", "products"],
            "Products must all belong to the same organization.",
            json!(ids),
        ));
    }
    if errors.is_empty() {
        Ok(ids.to_vec())
    } else {
        Err(errors)
    }
}

/// The deprecated `product_price_id` form: the price's product.
pub fn validated_price(
    store: &Store,
    who: &Principal,
    price_id: Uuid,
) -> Result<Uuid, Vec<ErrorItem>> {
    let fail = |msg: &str| {
        vec![ErrorItem::service(
            loc!["body", "product_price_id"],
            msg,
            json!(price_id),
        )]
    };
    let product = store
        .products
        .values()
        .find(|p| {
            !p.is_deleted()
                && who.can_access(p.organization_id)
                && p.prices.iter().any(|pr| pr.id == price_id)
        })
        .ok_or_else(|| fail("Price does not exist."))?;
    if product.is_archived {
        return Err(fail("Product is archived."));
    }
    if product.visibility == "draft" {
        return Err(fail("Product is a draft."));
    }
    Ok(product.id)
}

/// The discount must be the organisation's and apply to every product.
pub fn validated_discount(
    store: &Store,
    discount_id: Uuid,
    org: Uuid,
    products: &[Uuid],
) -> Result<(), Vec<ErrorItem>> {
    match store.discounts.get(&discount_id) {
        Some(d) if d.organization_id == org && d.applies_to(products) => Ok(()),
        _ => Err(vec![ErrorItem::service(
            loc!["body", "discount_id"],
            "Discount does not exist or is not applicable to this product.",
            json!(discount_id),
        )]),
    }
}

#[derive(Clone, Copy)]
enum Lock {
    Seats,
    Units,
}

impl Lock {
    fn field(self) -> &'static str {
        match self {
            Lock::Seats => "seats",
            Lock::Units => "units",
        }
    }

    fn not_all(self) -> &'static str {
        match self {
            Lock::Seats => {
                "Seats can only be preconfigured when all products use seat-based pricing."
            }
            Lock::Units => {
                "Units can only be preconfigured when all products use unit-based pricing."
            }
        }
    }

    fn ranges(self, p: &Product) -> Vec<(i64, Option<i64>)> {
        p.prices
            .iter()
            .filter_map(|pr| match (self, &pr.kind) {
                (Lock::Seats, PriceKind::SeatBased { .. }) => pr.seat_range(),
                (Lock::Units, PriceKind::Unit { .. }) => pr.unit_range(),
                _ => None,
            })
            .collect()
    }
}

fn lock_error(store: &Store, products: &[Uuid], value: i64, lock: Lock) -> Option<ErrorItem> {
    let fail = |msg: String| {
        Some(ErrorItem::service(
            loc!["body", lock.field()],
            &msg,
            json!(value),
        ))
    };
    let products: Vec<&Product> = products
        .iter()
        .filter_map(|id| store.products.get(id))
        .collect();
    if products.iter().any(|p| lock.ranges(p).is_empty()) {
        return fail(lock.not_all().to_string());
    }
    for p in products {
        // Seats are checked against the product's seat-based price; units
        // against every unit price (one per currency).
        let ranges = lock.ranges(p);
        let ranges = match lock {
            Lock::Seats => &ranges[..1],
            Lock::Units => &ranges[..],
        };
        for (min, max) in ranges {
            if value < *min || max.is_some_and(|m| value > m) {
                let max = max.map_or("unlimited".to_string(), |m| m.to_string());
                return fail(format!(
                    "Product '{}' allows between {min} and {max} {}.",
                    p.name,
                    lock.field()
                ));
            }
        }
    }
    None
}

pub fn seats_error(store: &Store, products: &[Uuid], seats: i64) -> Option<ErrorItem> {
    lock_error(store, products, seats, Lock::Seats)
}

pub fn units_error(store: &Store, products: &[Uuid], units: i64) -> Option<ErrorItem> {
    lock_error(store, products, units, Lock::Units)
}

pub fn has_duplicates(ids: &[Uuid]) -> bool {
    ids.iter().enumerate().any(|(i, id)| ids[..i].contains(id))
}
