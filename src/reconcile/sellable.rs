//! "Can this link sell?": the `Sellable` condition, computed from the link's own JSON (its
//! products' `is_archived` and `visibility`, its preset discount's `starts_at`, `ends_at`,
//! `max_redemptions` and `redemptions_count`) at no extra Polar call. Pure.
//!
//! Polar fails silently here: a link whose products are all archived or draft sends buyers to
//! Polar's home page, and a preset discount that has not started, has ended or is used up is
//! ignored at checkout. The public URL is never probed: every visit would create a checkout in
//! the merchant's account.
//!
//! - `Sellable=False`: `ProductsUnavailable` (no product can be bought), `DiscountNotStarted`,
//!   `DiscountExpired`, `DiscountExhausted` (buyers would pay another price than declared).
//! - `Sellable=True`: `Sellable`, or `SomeProductsUnavailable` (the others still sell; the
//!   message names the unavailable ones).

use k8s_openapi::jiff::Timestamp;

use crate::error::Error;
use crate::polar::error::ValidationLayer;
use crate::polar::{Availability, Link, PolarError};

/// The condition type.
pub const SELLABLE: &str = "Sellable";

/// Every reason the condition can have (bounded: the metric's label values).
pub const REASONS: [&str; 6] = [
    "Sellable",
    "SomeProductsUnavailable",
    "ProductsUnavailable",
    "DiscountNotStarted",
    "DiscountExpired",
    "DiscountExhausted",
];

/// What the condition says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sellability {
    /// Whether buyers can pay as declared.
    pub sellable: bool,
    /// One of [`REASONS`].
    pub reason: &'static str,
    /// Plain words, naming what is wrong.
    pub message: String,
}

impl Sellability {
    fn yes(reason: &'static str, message: String) -> Self {
        Sellability {
            sellable: true,
            reason,
            message,
        }
    }
    fn no(reason: &'static str, message: String) -> Self {
        Sellability {
            sellable: false,
            reason,
            message,
        }
    }
}

/// Whether `link`, as Polar returned it, can sell at `now`.
pub fn assess(link: &Link, now: Timestamp) -> Sellability {
    assess_availability(&link.availability, now)
}

fn assess_availability(a: &Availability, now: Timestamp) -> Sellability {
    let unavailable: Vec<String> = a
        .products
        .iter()
        .filter(|p| p.archived || p.draft)
        .map(|p| {
            let why = if p.archived { "archived" } else { "a draft" };
            format!("{} ({}) is {why}", p.name, p.id)
        })
        .collect();
    if a.products.is_empty() || unavailable.len() == a.products.len() {
        let what = if a.products.is_empty() {
            "the link has no product left".to_owned()
        } else {
            unavailable.join("; ")
        };
        return Sellability::no(
            "ProductsUnavailable",
            format!("no product can be bought: {what}; buyers are sent to Polar's home page"),
        );
    }
    if let Some(d) = &a.discount {
        let name = d.code.as_deref().unwrap_or(&d.id);
        let at = |t: &Option<String>| t.as_deref().and_then(|t| t.parse::<Timestamp>().ok());
        if let Some(starts) = at(&d.starts_at)
            && starts > now
        {
            return Sellability::no(
                "DiscountNotStarted",
                format!(
                    "the preset discount {name} starts at {starts}; until then buyers pay the full price"
                ),
            );
        }
        if let Some(ends) = at(&d.ends_at)
            && ends <= now
        {
            return Sellability::no(
                "DiscountExpired",
                format!("the preset discount {name} ended at {ends}; buyers pay the full price"),
            );
        }
        if let Some(max) = d.max_redemptions
            && d.redemptions_count >= max
        {
            return Sellability::no(
                "DiscountExhausted",
                format!(
                    "the preset discount {name} was redeemed {} times of {max}; buyers pay the full price",
                    d.redemptions_count
                ),
            );
        }
    }
    if !unavailable.is_empty() {
        return Sellability::yes(
            "SomeProductsUnavailable",
            format!(
                "the other products still sell, but {}",
                unavailable.join("; ")
            ),
        );
    }
    Sellability::yes("Sellable", String::new())
}

/// What a refusal of Polar's says about selling: a link Polar will not (re)create because its
/// products are archived, drafts or gone cannot sell.
pub fn of_refusal(error: &Error) -> Option<Sellability> {
    match error.polar()? {
        PolarError::Validation {
            layer: ValidationLayer::Service,
            problems,
            message,
        } if problems.iter().any(|p| p.location.starts_with("products")) => Some(Sellability::no(
            "ProductsUnavailable",
            format!("Polar refuses the link's products: {message}"),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::polar::{DiscountState, ProductState};

    fn product(name: &str, archived: bool, draft: bool) -> ProductState {
        ProductState {
            id: format!("id-{name}"),
            name: name.into(),
            archived,
            draft,
        }
    }

    fn now() -> Timestamp {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    fn with(products: Vec<ProductState>, discount: Option<DiscountState>) -> Sellability {
        assess_availability(&Availability { products, discount }, now())
    }

    fn discount(
        starts: Option<&str>,
        ends: Option<&str>,
        max: Option<i64>,
        used: i64,
    ) -> DiscountState {
        DiscountState {
            id: "d".into(),
            code: Some("LAUNCH20".into()),
            starts_at: starts.map(str::to_owned),
            ends_at: ends.map(str::to_owned),
            max_redemptions: max,
            redemptions_count: used,
        }
    }

    #[test]
    fn a_link_sells_when_a_product_can_be_bought_and_the_discount_is_live() {
        let ok = with(
            vec![product("Pro", false, false)],
            Some(discount(None, None, Some(10), 3)),
        );
        assert_eq!((ok.sellable, ok.reason), (true, "Sellable"));
    }

    #[test]
    fn every_product_archived_or_draft_means_the_link_cannot_sell() {
        let none = with(
            vec![product("Pro", true, false), product("Team", false, true)],
            None,
        );
        assert_eq!((none.sellable, none.reason), (false, "ProductsUnavailable"));
        assert!(
            none.message.contains("Pro (id-Pro) is archived"),
            "{}",
            none.message
        );
        assert!(
            none.message.contains("Team (id-Team) is a draft"),
            "{}",
            none.message
        );
        let empty = with(vec![], None);
        assert_eq!(empty.reason, "ProductsUnavailable");
    }

    #[test]
    fn some_products_unavailable_still_sells_and_names_them() {
        let some = with(
            vec![product("Pro", false, false), product("Old", true, false)],
            None,
        );
        assert_eq!(
            (some.sellable, some.reason),
            (true, "SomeProductsUnavailable")
        );
        assert!(some.message.contains("Old (id-Old) is archived"));
        assert!(!some.message.contains("Pro"));
    }

    #[test]
    fn a_preset_discount_not_started_expired_or_used_up_is_reported_with_its_numbers() {
        let p = || vec![product("Pro", false, false)];
        let later = with(
            p(),
            Some(discount(Some("2027-01-01T00:00:00Z"), None, None, 0)),
        );
        assert_eq!(
            (later.sellable, later.reason),
            (false, "DiscountNotStarted")
        );
        assert!(later.message.contains("LAUNCH20") && later.message.contains("2027-01-01"));
        let over = with(
            p(),
            Some(discount(None, Some("2026-11-30T00:00:00Z"), None, 0)),
        );
        assert_eq!(over.reason, "DiscountExpired");
        let used = with(p(), Some(discount(None, None, Some(100), 100)));
        assert_eq!(used.reason, "DiscountExhausted");
        assert!(
            used.message.contains("100 times of 100"),
            "{}",
            used.message
        );
        let started = with(
            p(),
            Some(discount(
                Some("2026-11-01T00:00:00.000001Z"),
                Some("2027-01-01T00:00:00Z"),
                Some(100),
                99,
            )),
        );
        assert_eq!(started.reason, "Sellable");
    }

    #[test]
    fn a_refused_product_means_the_link_cannot_sell() {
        let e = Error::Polar {
            step: "create",
            source: PolarError::from_422_body(
                r#"{"error":"PolarRequestValidationError","detail":[{"type":"value_error","loc":["body","products",0],"msg":"Product is archived.","input":"x"}]}"#,
            ),
        };
        assert_eq!(of_refusal(&e).unwrap().reason, "ProductsUnavailable");
        let other = Error::Polar {
            step: "create",
            source: PolarError::Server { status: 503 },
        };
        assert_eq!(of_refusal(&other), None);
    }
}
