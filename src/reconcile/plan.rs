//! Pure planning: what the Polar link should hold ([`desired_fields`]), and what to do about
//! what observation found ([`plan`]); how two links differ is [`crate::polar::fields::diff`].
//! No IO.

use crate::crd::{CheckoutLinkSpec, TrialInterval};
use crate::polar::compare::{UrlKind, normalize_url};
use crate::polar::fields::diff;
use crate::polar::validate::{metadata_from_json, validate_metadata_for_create};
use crate::polar::{Link, LinkFields, LinkPatch, MetaValue, OWNER_METADATA_KEY, Trial};

use super::resolve::Resolution;

/// What observation found for a resource.
#[derive(Clone, Debug, PartialEq)]
pub enum Observed {
    /// The status names a link and Polar has it.
    Linked(Link),
    /// The status names a link and Polar answers 404: it was deleted outside Kubernetes (or a
    /// product archived in Polar took its last product away).
    Gone {
        /// The link the status named.
        id: String,
        /// Its URL, as the status recorded it.
        url: Option<String>,
    },
    /// No link is known yet, and the adoption annotation names one that exists.
    AdoptTarget(Link),
    /// No link is known yet, but Polar holds one tagged with this resource's UID: created
    /// just before a crash, before its id reached the status.
    Owned(Link),
    /// No link is known and none exists: create one.
    Absent,
}

/// How a link came to be adopted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdoptedBy {
    /// The `polar.sh/checkout-link-id` annotation named it.
    Annotation,
    /// It carries this resource's UID in its metadata (a create whose id was not persisted).
    OwnerTag,
}

/// What to do in Polar.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// POST every field.
    Create(LinkFields),
    /// POST every field again: the recorded link is gone.
    Recreate {
        /// What to create.
        fields: LinkFields,
        /// The link that disappeared.
        old_id: String,
        /// Its URL, for the Warning event.
        old_url: Option<String>,
    },
    /// PATCH the differing fields of a link the resource already owns.
    Update {
        /// The link as Polar holds it.
        link: Link,
        /// Only the fields that differ; never empty.
        patch: LinkPatch,
    },
    /// Take over an existing link and bring it to spec (the patch may be empty).
    Adopt {
        /// The link as Polar holds it.
        link: Link,
        /// The fields to change; empty when it already matches.
        patch: LinkPatch,
        /// Why it is adopted.
        by: AdoptedBy,
    },
    /// Nothing to do.
    InSync(Link),
}

/// The fields the Polar link must hold for `spec`, its references `resolved`: Polar's defaults filled in (discount codes
/// allowed, no billing address required), product and discount ids lower-cased, and the
/// resource's UID added to the metadata under [`OWNER_METADATA_KEY`]. Errors are what Polar
/// would refuse (in plain words), so that invalid input never reaches it.
pub fn desired_fields(
    spec: &CheckoutLinkSpec,
    uid: &str,
    resolved: &Resolution,
) -> Result<LinkFields, String> {
    let mut metadata = match &spec.metadata {
        Some(map) => metadata_from_json(map).map_err(|e| format!("spec.metadata: {e}"))?,
        None => Default::default(),
    };
    if metadata.contains_key(OWNER_METADATA_KEY) {
        return Err(format!(
            "spec.metadata: the key {OWNER_METADATA_KEY} is reserved for the operator"
        ));
    }
    metadata.insert(
        OWNER_METADATA_KEY.to_owned(),
        MetaValue::Str(uid.to_owned()),
    );
    validate_metadata_for_create(&metadata).map_err(|e| format!("spec.metadata: {e}"))?;

    if resolved.products.is_empty() {
        return Err("spec.products: at least one product is required".to_owned());
    }
    let products = resolved.products.clone();
    for (i, p) in products.iter().enumerate() {
        if uuid::Uuid::parse_str(p).is_err() {
            return Err(format!("spec.products[{i}]: {p:?} is not a UUID"));
        }
        if products[..i].contains(p) {
            return Err(format!("spec.products[{i}]: product {p} is listed twice"));
        }
    }
    for (field, url, kind) in [
        ("spec.successUrl", &spec.success_url, UrlKind::Success),
        ("spec.returnUrl", &spec.return_url, UrlKind::Return),
    ] {
        if let Some(url) = url {
            normalize_url(url, kind).map_err(|e| format!("{field}: {e}"))?;
        }
    }
    if let Some(label) = &spec.label
        && label.contains('\0')
    {
        return Err("spec.label: must not contain NUL characters".to_owned());
    }
    let discount = spec.discount.as_ref();
    Ok(LinkFields {
        products,
        label: spec.label.clone(),
        allow_discount_codes: discount.and_then(|d| d.allow_codes).unwrap_or(true),
        require_billing_address: spec.require_billing_address.unwrap_or(false),
        discount_id: resolved.discount_id.clone(),
        metadata,
        success_url: spec.success_url.clone(),
        return_url: spec.return_url.clone(),
        trial: spec.trial.as_ref().map(|t| Trial {
            interval: interval_name(t.interval).to_owned(),
            count: t.count,
        }),
        seats: spec.seats,
        units: spec.units,
    })
}

fn interval_name(interval: TrialInterval) -> &'static str {
    match interval {
        TrialInterval::Day => "day",
        TrialInterval::Week => "week",
        TrialInterval::Month => "month",
        TrialInterval::Year => "year",
    }
}

/// Decides what to do, given the desired fields and what observation found.
pub fn plan(desired: &LinkFields, observed: Observed) -> Plan {
    match observed {
        Observed::Absent => Plan::Create(desired.clone()),
        Observed::Gone { id, url } => Plan::Recreate {
            fields: desired.clone(),
            old_id: id,
            old_url: url,
        },
        Observed::Linked(link) => {
            let patch = diff(desired, &link.fields);
            if patch.is_empty() {
                Plan::InSync(link)
            } else {
                Plan::Update { link, patch }
            }
        }
        Observed::AdoptTarget(link) => {
            let patch = diff(desired, &link.fields);
            Plan::Adopt {
                link,
                patch,
                by: AdoptedBy::Annotation,
            }
        }
        Observed::Owned(link) => {
            let patch = diff(desired, &link.fields);
            Plan::Adopt {
                link,
                patch,
                by: AdoptedBy::OwnerTag,
            }
        }
    }
}

/// Whether a link found in Polar carries `uid` under [`OWNER_METADATA_KEY`].
pub fn is_owned_by(link: &Link, uid: &str) -> bool {
    link.owner() == Some(uid)
}

/// Why a link found in Polar may not be managed by the resource with `uid`: it carries
/// another resource's owner tag.
pub fn foreign_owner(link: &Link, uid: &str) -> Option<String> {
    link.owner()
        .filter(|owner| *owner != uid)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::crd::{DiscountSpec, TrialSpec};
    use crate::polar::Metadata;

    const UID: &str = "7c0b6c33-2f0e-4f55-9a55-5d1f0b1c2d3e";
    const P1: &str = "3f0c6c4e-1b7a-4d2e-9f3a-2b1c0d9e8f7a";
    const P2: &str = "a6f1e2d3-4c5b-4a69-8e7d-6c5b4a392817";
    const D1: &str = "0e0c2a44-5f55-4c4a-8a1b-9b7c6d5e4f3a";

    fn desired(spec: &CheckoutLinkSpec) -> Result<LinkFields, String> {
        desired_fields(
            spec,
            UID,
            &super::super::resolve::resolve(spec, None).unwrap(),
        )
    }

    fn spec() -> CheckoutLinkSpec {
        CheckoutLinkSpec {
            products: vec![P1.into()],
            ..Default::default()
        }
    }

    fn owner() -> (String, MetaValue) {
        (
            OWNER_METADATA_KEY.to_owned(),
            MetaValue::Str(UID.to_owned()),
        )
    }

    fn link(fields: LinkFields) -> Link {
        Link {
            id: "5a1e0a34-0d6f-4f3b-8f5e-3b2a1c0d9e8f".to_owned(),
            organization_id: "org".to_owned(),
            client_secret: "polar_cl_x".to_owned(),
            url: "https://buy.polar.sh/polar_cl_x".to_owned(),
            created_at: "2026-11-21T04:29:33.493524Z".to_owned(),
            modified_at: None,
            fields,
            availability: Default::default(),
        }
    }

    #[test]
    fn desired_fields_fill_polar_defaults_and_tag_the_owner() {
        let fields = desired(&spec()).unwrap();
        assert_eq!(fields.products, [P1]);
        assert!(fields.allow_discount_codes);
        assert!(!fields.require_billing_address);
        assert_eq!(fields.metadata, Metadata::from([owner()]));
        assert_eq!(fields.label, None);
        assert_eq!(fields.trial, None);
    }

    #[test]
    fn desired_fields_take_every_spec_field() {
        let spec = CheckoutLinkSpec {
            label: Some("Launch".into()),
            products: vec![P2.to_uppercase().as_str().into(), P1.into()],
            discount: Some(DiscountSpec {
                allow_codes: Some(false),
                preset_id: Some(D1.to_uppercase()),
                preset_code: None,
            }),
            metadata: Some(BTreeMap::from([
                ("source".to_owned(), json!("email")),
                ("n".to_owned(), json!(2)),
            ])),
            success_url: Some("https://example.com/thanks?checkout_id={CHECKOUT_ID}".into()),
            return_url: Some("https://example.com".into()),
            require_billing_address: Some(true),
            trial: Some(TrialSpec {
                interval: TrialInterval::Month,
                count: 1,
            }),
            seats: Some(5),
            units: Some(3),
            ..Default::default()
        };
        let f = desired(&spec).unwrap();
        assert_eq!(f.products, [P2, P1]);
        assert_eq!(f.label.as_deref(), Some("Launch"));
        assert!(!f.allow_discount_codes);
        assert!(f.require_billing_address);
        assert_eq!(f.discount_id.as_deref(), Some(D1));
        assert_eq!(f.metadata.len(), 3);
        assert_eq!(f.metadata["n"], MetaValue::Int(2));
        assert_eq!(
            f.trial,
            Some(Trial {
                interval: "month".into(),
                count: 1
            })
        );
        assert_eq!((f.seats, f.units), (Some(5), Some(3)));
    }

    #[test]
    fn desired_fields_refuse_what_polar_would_refuse() {
        let cases: Vec<(CheckoutLinkSpec, &str)> = vec![
            (
                CheckoutLinkSpec {
                    products: vec![],
                    ..spec()
                },
                "spec.products",
            ),
            (
                CheckoutLinkSpec {
                    products: vec!["nope".into()],
                    ..spec()
                },
                "spec.products[0]",
            ),
            (
                CheckoutLinkSpec {
                    products: vec![P1.into(), P1.to_uppercase().as_str().into()],
                    ..spec()
                },
                "twice",
            ),
            (
                CheckoutLinkSpec {
                    success_url: Some("ftp://example.com".into()),
                    ..spec()
                },
                "spec.successUrl",
            ),
            (
                CheckoutLinkSpec {
                    return_url: Some("/relative".into()),
                    ..spec()
                },
                "spec.returnUrl",
            ),
            (
                CheckoutLinkSpec {
                    metadata: Some(BTreeMap::from([("k".into(), json!(null))])),
                    ..spec()
                },
                "spec.metadata",
            ),
            (
                CheckoutLinkSpec {
                    metadata: Some(BTreeMap::from([(OWNER_METADATA_KEY.into(), json!("x"))])),
                    ..spec()
                },
                "reserved",
            ),
            (
                CheckoutLinkSpec {
                    metadata: Some((0..50).map(|i| (format!("k{i}"), json!("v"))).collect()),
                    ..spec()
                },
                "at most 50",
            ),
        ];
        for (spec, needle) in cases {
            let err = desired(&spec).unwrap_err();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        }
    }

    #[test]
    fn a_settled_link_needs_no_patch() {
        let spec = CheckoutLinkSpec {
            label: Some("L".into()),
            products: vec![P1.to_uppercase().as_str().into(), P2.into()],
            discount: Some(DiscountSpec {
                allow_codes: None,
                preset_id: Some(D1.to_uppercase()),
                preset_code: None,
            }),
            metadata: Some(BTreeMap::from([
                ("f".to_owned(), json!(2.0)),
                ("s".to_owned(), json!("x")),
            ])),
            success_url: Some("  https://EXAMPLE.com:443/thanks?checkout_id={CHECKOUT_ID}".into()),
            return_url: Some("https://example.com".into()),
            trial: Some(TrialSpec {
                interval: TrialInterval::Week,
                count: 2,
            }),
            ..Default::default()
        };
        let desired = desired(&spec).unwrap();
        // What Polar returns for it: normalised URLs, an integer-valued float as 2, defaults.
        let polar = LinkFields {
            products: vec![P1.into(), P2.into()],
            label: Some("L".into()),
            allow_discount_codes: true,
            require_billing_address: false,
            discount_id: Some(D1.into()),
            metadata: Metadata::from([
                owner(),
                ("f".to_owned(), MetaValue::Int(2)),
                ("s".to_owned(), MetaValue::Str("x".into())),
            ]),
            success_url: Some("https://example.com/thanks?checkout_id={CHECKOUT_ID}".into()),
            return_url: Some("https://example.com/".into()),
            trial: Some(Trial {
                interval: "week".into(),
                count: 2,
            }),
            seats: None,
            units: None,
        };
        assert_eq!(diff(&desired, &polar), LinkPatch::default());
        assert!(matches!(
            plan(&desired, Observed::Linked(link(polar))),
            Plan::InSync(_)
        ));
    }

    #[test]
    fn each_changed_field_alone_is_patched() {
        let base = desired(&spec()).unwrap();
        type Edit = fn(&mut LinkFields);
        let cases: Vec<(&str, Edit, LinkPatch)> = vec![
            (
                "label",
                |f| f.label = Some("new".into()),
                LinkPatch {
                    label: Some(Some("new".into())),
                    ..Default::default()
                },
            ),
            (
                "products order",
                |f| f.products = vec![P2.into(), P1.into()],
                LinkPatch {
                    products: Some(vec![P2.into(), P1.into()]),
                    ..Default::default()
                },
            ),
            (
                "allow codes",
                |f| f.allow_discount_codes = false,
                LinkPatch {
                    allow_discount_codes: Some(false),
                    ..Default::default()
                },
            ),
            (
                "billing",
                |f| f.require_billing_address = true,
                LinkPatch {
                    require_billing_address: Some(true),
                    ..Default::default()
                },
            ),
            (
                "discount",
                |f| f.discount_id = Some(D1.into()),
                LinkPatch {
                    discount_id: Some(Some(D1.into())),
                    ..Default::default()
                },
            ),
            (
                "success url",
                |f| f.success_url = Some("https://example.com/ok".into()),
                LinkPatch {
                    success_url: Some(Some("https://example.com/ok".into())),
                    ..Default::default()
                },
            ),
            (
                "return url",
                |f| f.return_url = Some("https://example.com/".into()),
                LinkPatch {
                    return_url: Some(Some("https://example.com/".into())),
                    ..Default::default()
                },
            ),
            (
                "seats",
                |f| f.seats = Some(3),
                LinkPatch {
                    seats: Some(Some(3)),
                    ..Default::default()
                },
            ),
            (
                "units",
                |f| f.units = Some(3),
                LinkPatch {
                    units: Some(Some(3)),
                    ..Default::default()
                },
            ),
            (
                "trial",
                |f| {
                    f.trial = Some(Trial {
                        interval: "day".into(),
                        count: 7,
                    })
                },
                LinkPatch {
                    trial: Some(Some(Trial {
                        interval: "day".into(),
                        count: 7,
                    })),
                    ..Default::default()
                },
            ),
        ];
        for (name, edit, want) in cases {
            let mut desired = base.clone();
            edit(&mut desired);
            assert_eq!(diff(&desired, &base), want, "{name}");
        }
    }

    #[test]
    fn fields_removed_from_the_spec_are_cleared_with_null() {
        let desired = desired(&spec()).unwrap();
        let actual = LinkFields {
            label: Some("old".into()),
            discount_id: Some(D1.into()),
            success_url: Some("https://example.com/".into()),
            return_url: Some("https://example.com/".into()),
            trial: Some(Trial {
                interval: "month".into(),
                count: 1,
            }),
            seats: Some(2),
            units: Some(2),
            metadata: Metadata::from([owner(), ("gone".to_owned(), MetaValue::Bool(true))]),
            ..desired.clone()
        };
        let patch = diff(&desired, &actual);
        assert_eq!(
            patch,
            LinkPatch {
                label: Some(None),
                discount_id: Some(None),
                success_url: Some(None),
                return_url: Some(None),
                trial: Some(None),
                seats: Some(None),
                units: Some(None),
                metadata: Some(Metadata::from([owner()])),
                ..Default::default()
            }
        );
    }

    #[test]
    fn a_products_change_carries_the_presets_polar_would_clear() {
        let mut desired = desired(&spec()).unwrap();
        desired.seats = Some(4);
        desired.trial = Some(Trial {
            interval: "month".into(),
            count: 1,
        });
        let actual = LinkFields {
            products: vec![P2.into()],
            ..desired.clone()
        };
        let patch = diff(&desired, &actual);
        assert_eq!(
            patch.field_names(),
            [
                "products",
                "trial_interval",
                "trial_interval_count",
                "seats"
            ]
        );
    }

    #[test]
    fn plans_follow_observation() {
        let desired = desired(&spec()).unwrap();
        assert_eq!(
            plan(&desired, Observed::Absent),
            Plan::Create(desired.clone())
        );
        assert_eq!(
            plan(
                &desired,
                Observed::Gone {
                    id: "old".into(),
                    url: Some("u".into())
                }
            ),
            Plan::Recreate {
                fields: desired.clone(),
                old_id: "old".into(),
                old_url: Some("u".into())
            }
        );
        let drifted = link(LinkFields {
            label: Some("drift".into()),
            ..desired.clone()
        });
        match plan(&desired, Observed::Linked(drifted.clone())) {
            Plan::Update { patch, .. } => assert_eq!(patch.field_names(), ["label"]),
            other => panic!("{other:?}"),
        }
        match plan(&desired, Observed::AdoptTarget(drifted.clone())) {
            Plan::Adopt {
                by: AdoptedBy::Annotation,
                patch,
                ..
            } => assert_eq!(patch.field_names(), ["label"]),
            other => panic!("{other:?}"),
        }
        match plan(&desired, Observed::Owned(link(desired.clone()))) {
            Plan::Adopt {
                by: AdoptedBy::OwnerTag,
                patch,
                ..
            } => assert!(patch.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ownership_is_read_from_the_metadata_tag() {
        let desired = desired(&spec()).unwrap();
        assert!(is_owned_by(&link(desired.clone()), UID));
        assert!(!is_owned_by(&link(desired.clone()), "someone-else"));
        assert!(!is_owned_by(&link(LinkFields::default()), UID));
        assert_eq!(foreign_owner(&link(desired.clone()), UID), None);
        assert_eq!(
            foreign_owner(&link(desired), "someone-else").as_deref(),
            Some(UID)
        );
        assert_eq!(foreign_owner(&link(LinkFields::default()), UID), None);
    }
}
