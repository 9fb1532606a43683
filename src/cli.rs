//! What `kubectl-polar` decides, without IO: the CheckoutLink manifest that describes an
//! existing Polar link (`import`), and what applying a manifest would send to Polar (`diff`),
//! with the same field table, plan and wire format as the controller.

use serde_json::{Map, Value, json};

use crate::crd::{ADOPT_ANNOTATION, CheckoutLink, CheckoutLinkSpec};
use crate::polar::fields::diff;
use crate::polar::wire::{create_body, patch_body};
use crate::polar::{Link, LinkFields, OWNER_METADATA_KEY};
use crate::reconcile::resolve::resolve;

/// The resource name for a link: its label as a DNS-1123 name, else `link-` and its id's
/// first block; `taken` names already used get a suffix from the id.
pub fn name_for(link: &Link, taken: &[String]) -> String {
    let from_label: String = link
        .fields
        .label
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut name = from_label
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    name.truncate(50);
    let name = name.trim_end_matches('-').to_owned();
    let short = link
        .id
        .split('-')
        .next()
        .unwrap_or(&link.id)
        .to_ascii_lowercase();
    if name.is_empty() {
        return format!("link-{short}");
    }
    if taken.contains(&name) {
        format!("{name}-{short}")
    } else {
        name
    }
}

/// The spec that describes `fields` (the owner tag left out).
pub fn spec_of(fields: &LinkFields) -> Value {
    let mut spec = Map::new();
    spec.insert("products".into(), json!(fields.products));
    if let Some(label) = &fields.label {
        spec.insert("label".into(), json!(label));
    }
    let mut discount = Map::new();
    if !fields.allow_discount_codes {
        discount.insert("allowCodes".into(), json!(false));
    }
    if let Some(id) = &fields.discount_id {
        discount.insert("presetId".into(), json!(id));
    }
    if !discount.is_empty() {
        spec.insert("discount".into(), Value::Object(discount));
    }
    if fields.require_billing_address {
        spec.insert("requireBillingAddress".into(), json!(true));
    }
    let metadata: Map<String, Value> = fields
        .metadata
        .iter()
        .filter(|(k, _)| k.as_str() != OWNER_METADATA_KEY)
        .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(Value::Null)))
        .collect();
    if !metadata.is_empty() {
        spec.insert("metadata".into(), Value::Object(metadata));
    }
    for (key, value) in [
        ("successUrl", &fields.success_url),
        ("returnUrl", &fields.return_url),
    ] {
        if let Some(v) = value {
            spec.insert(key.into(), json!(v));
        }
    }
    if let Some(t) = &fields.trial {
        spec.insert(
            "trial".into(),
            json!({"interval": t.interval, "count": t.count}),
        );
    }
    if let Some(seats) = fields.seats {
        spec.insert("seats".into(), json!(seats));
    }
    if let Some(units) = fields.units {
        spec.insert("units".into(), json!(units));
    }
    Value::Object(spec)
}

/// The manifest `import` writes for `link`: adopted by annotation, observe-only and orphaned
/// on deletion, so that applying it changes nothing in Polar.
pub fn manifest_for(link: &Link, name: &str, namespace: Option<&str>) -> Value {
    let mut spec = spec_of(&link.fields);
    spec["managementPolicy"] = json!("Observe");
    spec["deletionPolicy"] = json!("Orphan");
    let mut metadata = json!({"name": name, "annotations": {ADOPT_ANNOTATION: link.id}});
    if let Some(ns) = namespace {
        metadata["namespace"] = json!(ns);
    }
    json!({"apiVersion": "polar.sh/v1alpha1", "kind": "CheckoutLink", "metadata": metadata, "spec": spec})
}

/// What applying a manifest would send to Polar.
#[derive(Debug, PartialEq)]
pub enum Change {
    /// `POST /v1/checkout-links/` with this body.
    Create(Value),
    /// `PATCH /v1/checkout-links/{id}` with this body (explicit nulls clear fields).
    Patch(String, Value),
    /// Nothing: the link matches, or the resource only observes it.
    Nothing(String),
}

/// The link a manifest names by its adoption annotation.
pub fn adopted_id(link: &CheckoutLink) -> Option<String> {
    link.metadata
        .annotations
        .as_ref()?
        .get(ADOPT_ANNOTATION)
        .map(|s| s.trim().to_owned())
}

/// What applying `spec` would send, given the link it adopts (`None`: none, a create). The
/// owner tag is left out of the comparison (its value is the resource's UID, unknown before
/// it is applied); products and discounts named by reference are not resolved here.
pub fn change(spec: &CheckoutLinkSpec, observed: Option<&Link>) -> Result<Change, String> {
    let resolution = resolve(spec, None).map_err(|e| format!("{e:?}"))?;
    let mut desired = crate::reconcile::plan::desired_fields(spec, "uid", &resolution)?;
    desired.metadata.remove(OWNER_METADATA_KEY);
    let observe_only = spec.management_policy == Some(crate::crd::ManagementPolicy::Observe);
    match observed {
        None if observe_only => Err("observe-only, but no link is named by the annotation".into()),
        None => Ok(Change::Create(create_body(&desired))),
        Some(link) => {
            let mut actual = link.fields.clone();
            actual.metadata.remove(OWNER_METADATA_KEY);
            let patch = diff(&desired, &actual);
            if patch.is_empty() || observe_only {
                Ok(Change::Nothing(link.id.clone()))
            } else {
                Ok(Change::Patch(link.id.clone(), patch_body(&patch)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::polar::{MetaValue, Trial};

    fn link(fields: LinkFields) -> Link {
        Link {
            id: "8d1c0f2a-0000-4000-8000-000000000001".into(),
            url: "https://buy.polar.sh/polar_cl_x".into(),
            client_secret: "polar_cl_x".into(),
            organization_id: "11111111-1111-4111-8111-111111111111".into(),
            created_at: "2026-12-01T00:00:00Z".into(),
            modified_at: None,
            fields,
            availability: Default::default(),
        }
    }

    fn every_field() -> LinkFields {
        LinkFields {
            products: vec!["a1000000-0000-4000-8000-000000000001".into()],
            label: Some("Spring sale!".into()),
            allow_discount_codes: false,
            require_billing_address: true,
            discount_id: Some("d1000000-0000-4000-8000-000000000001".into()),
            metadata: [
                ("source".to_owned(), MetaValue::Str("email".into())),
                ("n".to_owned(), MetaValue::Int(3)),
                (
                    OWNER_METADATA_KEY.to_owned(),
                    MetaValue::Str("someone".into()),
                ),
            ]
            .into(),
            success_url: Some("https://example.com/thanks?c={CHECKOUT_ID}".into()),
            return_url: Some("https://example.com/".into()),
            trial: Some(Trial {
                interval: "week".into(),
                count: 2,
            }),
            seats: None,
            units: Some(3),
        }
    }

    #[test]
    fn an_imported_manifest_applies_as_no_change() {
        let l = link(every_field());
        let manifest = manifest_for(&l, "spring-sale", Some("shop"));
        let resource: CheckoutLink = serde_json::from_value(manifest).unwrap();
        assert_eq!(adopted_id(&resource).as_deref(), Some(l.id.as_str()));
        assert_eq!(
            change(&resource.spec, Some(&l)).unwrap(),
            Change::Nothing(l.id.clone())
        );
        let mut full = resource.spec.clone();
        full.management_policy = None;
        assert_eq!(
            change(&full, Some(&l)).unwrap(),
            Change::Nothing(l.id.clone()),
            "every field survives the round trip"
        );
    }

    #[test]
    fn a_changed_label_is_one_patch_and_a_removed_field_an_explicit_null() {
        let l = link(every_field());
        let mut spec: CheckoutLinkSpec = serde_json::from_value(spec_of(&l.fields)).unwrap();
        spec.label = Some("Summer sale".into());
        spec.return_url = None;
        let Change::Patch(id, body) = change(&spec, Some(&l)).unwrap() else {
            panic!("a patch");
        };
        assert_eq!(id, l.id);
        assert_eq!(body, json!({"label": "Summer sale", "return_url": null}));
        assert!(matches!(change(&spec, None).unwrap(), Change::Create(_)));
    }

    #[test]
    fn names_come_from_labels_and_stay_unique() {
        let l = link(every_field());
        assert_eq!(name_for(&l, &[]), "spring-sale");
        assert_eq!(
            name_for(&l, &["spring-sale".into()]),
            "spring-sale-8d1c0f2a"
        );
        let unlabelled = link(LinkFields::default());
        assert_eq!(name_for(&unlabelled, &[]), "link-8d1c0f2a");
    }
}
