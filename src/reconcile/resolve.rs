//! References: what `spec.products` entries named by metadata or name, and a discount named by
//! code, stand for in the link's organisation. Pure: the catalog comes from the
//! organisation's sweep ([`crate::polar::catalog`]).
//!
//! Each entry must match exactly one product that is neither archived nor a draft (metadata:
//! every key with its value, compared as strings; name: exactly); a code exactly one discount
//! (case-insensitively). Anything else is an error naming the entry and the candidates, and
//! nothing is written to Polar.

use crate::crd::{CheckoutLinkSpec, ProductRef, ProductSelector};
use crate::polar::catalog::{Catalog, Product};

/// What the spec's products and preset discount stand for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Product ids, in the spec's order (as written for entries named by id).
    pub products: Vec<String>,
    /// The preset discount's id.
    pub discount_id: Option<String>,
}

/// Why references could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// An entry matches nothing.
    NoMatch(String),
    /// An entry matches several.
    Ambiguous(String),
}

/// Which parts of the catalog the spec needs: (products, discounts).
pub fn needs(spec: &CheckoutLinkSpec) -> (bool, bool) {
    let products = spec.products.iter().any(|p| p.id().is_none());
    let discounts = spec
        .discount
        .as_ref()
        .is_some_and(|d| d.preset_code.is_some() && d.preset_id.is_none());
    (products, discounts)
}

/// The resolution of `spec` against `catalog` (which may be left out when [`needs`] says
/// nothing is needed).
pub fn resolve(
    spec: &CheckoutLinkSpec,
    catalog: Option<&Catalog>,
) -> Result<Resolution, Unresolved> {
    let empty = Catalog::default();
    let catalog = catalog.unwrap_or(&empty);
    let mut products = Vec::with_capacity(spec.products.len());
    for (i, entry) in spec.products.iter().enumerate() {
        products.push(match entry {
            ProductRef::Id(id) | ProductRef::Named(ProductSelector { id: Some(id), .. }) => {
                id.trim().to_ascii_lowercase()
            }
            ProductRef::Named(selector) => one_product(i, selector, &catalog.products)?,
        });
    }
    let discount = spec.discount.as_ref();
    let discount_id = match (
        discount.and_then(|d| d.preset_id.as_ref()),
        discount.and_then(|d| d.preset_code.as_ref()),
    ) {
        (Some(id), _) => Some(id.trim().to_ascii_lowercase()),
        (None, Some(code)) => Some(one_discount(code, catalog)?),
        (None, None) => None,
    };
    Ok(Resolution {
        products,
        discount_id,
    })
}

fn one_product(
    i: usize,
    selector: &ProductSelector,
    products: &[Product],
) -> Result<String, Unresolved> {
    let usable = products.iter().filter(|p| !p.archived && !p.draft);
    let (what, matches): (String, Vec<&Product>) = match (&selector.metadata, &selector.name) {
        (Some(wanted), _) => (
            format!(
                "metadata {}",
                wanted
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            usable
                .filter(|p| {
                    wanted
                        .iter()
                        .all(|(k, v)| p.metadata.iter().any(|(pk, pv)| pk == k && pv == v))
                })
                .collect(),
        ),
        (None, Some(name)) => (
            format!("name {name:?}"),
            usable.filter(|p| &p.name == name).collect(),
        ),
        (None, None) => {
            return Err(Unresolved::NoMatch(format!(
                "spec.products[{i}] names no product (give id, metadata or name)"
            )));
        }
    };
    match matches.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(Unresolved::NoMatch(format!(
            "spec.products[{i}] ({what}): no product of the link's organisation that is neither archived nor a draft matches"
        ))),
        many => Err(Unresolved::Ambiguous(format!(
            "spec.products[{i}] ({what}) matches {} products: {}",
            many.len(),
            many.iter()
                .map(|p| format!("{} ({})", p.name, p.id))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn one_discount(code: &str, catalog: &Catalog) -> Result<String, Unresolved> {
    let matches: Vec<_> = catalog
        .discounts
        .iter()
        .filter(|d| {
            d.code
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case(code.trim()))
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(Unresolved::NoMatch(format!(
            "spec.discount.presetCode {code:?}: no discount of the link's organisation has this code"
        ))),
        many => Err(Unresolved::Ambiguous(format!(
            "spec.discount.presetCode {code:?} matches {} discounts: {}",
            many.len(),
            many.iter()
                .map(|d| format!("{} ({})", d.name, d.id))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::crd::DiscountSpec;
    use crate::polar::catalog::Discount;

    fn product(id: &str, name: &str, sku: &str, archived: bool, draft: bool) -> Product {
        Product {
            id: id.into(),
            name: name.into(),
            metadata: vec![("sku".into(), sku.into()), ("tier".into(), "1".into())],
            archived,
            draft,
        }
    }

    fn catalog() -> Catalog {
        Catalog {
            products: vec![
                product("p-pro", "Pro Monthly", "pro-monthly", false, false),
                product("p-old", "Pro Monthly", "pro-monthly", true, false),
                product("p-draft", "Upcoming", "upcoming", false, true),
                product("p-a", "Twin", "twin", false, false),
                product("p-b", "Twin", "twin", false, false),
            ],
            discounts: vec![Discount {
                id: "d-1".into(),
                name: "Launch".into(),
                code: Some("LAUNCH20".into()),
            }],
        }
    }

    fn by_metadata(pairs: &[(&str, &str)]) -> ProductRef {
        ProductRef::Named(ProductSelector {
            metadata: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        })
    }

    fn spec(products: Vec<ProductRef>) -> CheckoutLinkSpec {
        CheckoutLinkSpec {
            products,
            ..Default::default()
        }
    }

    #[test]
    fn ids_need_no_catalog_and_keep_the_order() {
        let s = spec(vec!["A1".into(), by_metadata(&[("sku", "pro-monthly")])]);
        assert_eq!(needs(&s), (true, false));
        let r = resolve(&s, Some(&catalog())).unwrap();
        assert_eq!(
            r.products,
            ["a1", "p-pro"],
            "spec order; archived twins ignored"
        );
        assert_eq!(needs(&spec(vec!["x".into()])), (false, false));
    }

    #[test]
    fn every_metadata_key_must_match_and_names_match_exactly() {
        let both = by_metadata(&[("sku", "pro-monthly"), ("tier", "1")]);
        assert_eq!(
            resolve(&spec(vec![both]), Some(&catalog()))
                .unwrap()
                .products,
            ["p-pro"]
        );
        let wrong = by_metadata(&[("sku", "pro-monthly"), ("tier", "2")]);
        assert!(matches!(
            resolve(&spec(vec![wrong]), Some(&catalog())),
            Err(Unresolved::NoMatch(_))
        ));
        let named = ProductRef::Named(ProductSelector {
            name: Some("Pro Monthly".into()),
            ..Default::default()
        });
        assert_eq!(
            resolve(&spec(vec![named]), Some(&catalog()))
                .unwrap()
                .products,
            ["p-pro"]
        );
        let substring = ProductRef::Named(ProductSelector {
            name: Some("Pro".into()),
            ..Default::default()
        });
        assert!(resolve(&spec(vec![substring]), Some(&catalog())).is_err());
    }

    #[test]
    fn drafts_never_match_and_two_candidates_are_named() {
        let draft = by_metadata(&[("sku", "upcoming")]);
        match resolve(&spec(vec![draft]), Some(&catalog())) {
            Err(Unresolved::NoMatch(m)) => assert!(m.contains("spec.products[0]"), "{m}"),
            other => panic!("{other:?}"),
        }
        let twins = by_metadata(&[("sku", "twin")]);
        match resolve(&spec(vec!["x".into(), twins]), Some(&catalog())) {
            Err(Unresolved::Ambiguous(m)) => {
                assert!(
                    m.contains("spec.products[1]") && m.contains("p-a") && m.contains("p-b"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_discount_code_compares_case_insensitively() {
        let s = CheckoutLinkSpec {
            discount: Some(DiscountSpec {
                preset_code: Some("launch20".into()),
                ..Default::default()
            }),
            ..spec(vec!["x".into()])
        };
        assert_eq!(needs(&s), (false, true));
        assert_eq!(
            resolve(&s, Some(&catalog()))
                .unwrap()
                .discount_id
                .as_deref(),
            Some("d-1")
        );
        let unknown = CheckoutLinkSpec {
            discount: Some(DiscountSpec {
                preset_code: Some("NOPE".into()),
                ..Default::default()
            }),
            ..spec(vec!["x".into()])
        };
        assert!(matches!(
            resolve(&unknown, Some(&catalog())),
            Err(Unresolved::NoMatch(_))
        ));
    }
}
