//! Polar's JSON around the link fields (REFERENCE.md §3, §4, §6): the list envelope, the
//! request bodies (their fields come from [`super::fields`]) and the error bodies.
//!
//! Responses tolerate unknown keys (Polar sends undocumented deprecated ones such as
//! `product_id` and `product`) and a missing `units` (absent from Polar's OpenAPI document).

use serde::Deserialize;

use super::{Link, LinkFields, LinkPatch, Page};

/// `payment_processor` is required on create and only `stripe` is accepted.
pub const PAYMENT_PROCESSOR: &str = "stripe";

/// `ListResource[CheckoutLink]`: items are read with [`Link::from_json`].
#[derive(Clone, Debug, Deserialize)]
pub struct ListDto {
    pub items: Vec<serde_json::Value>,
    pub pagination: PaginationDto,
}

/// The `pagination` object of a list response.
#[derive(Clone, Debug, Deserialize)]
pub struct PaginationDto {
    pub total_count: u64,
    pub max_page: u64,
}

impl TryFrom<ListDto> for Page {
    type Error = String;

    fn try_from(dto: ListDto) -> Result<Page, String> {
        Ok(Page {
            items: dto
                .items
                .iter()
                .map(Link::from_json)
                .collect::<Result<_, _>>()?,
            total_count: dto.pagination.total_count,
            max_page: dto.pagination.max_page,
        })
    }
}

/// The `ListResource[Organization]` of `GET /v1/organizations/`, reduced to the ids.
#[derive(Clone, Debug, Deserialize)]
pub struct OrganizationsDto {
    pub items: Vec<IdDto>,
}

/// Any object, reduced to its id.
#[derive(Clone, Debug, Deserialize)]
pub struct IdDto {
    pub id: String,
}

/// The create body: every managed field (nulls included) and the payment processor.
pub fn create_body(fields: &LinkFields) -> serde_json::Value {
    let mut body = fields.to_json();
    body.insert(
        "payment_processor".to_owned(),
        serde_json::Value::String(PAYMENT_PROCESSOR.to_owned()),
    );
    serde_json::Value::Object(body)
}

/// The update body: only the fields the patch carries, `Some(None)` as `null`.
pub fn patch_body(patch: &LinkPatch) -> serde_json::Value {
    serde_json::Value::Object(patch.to_json())
}

/// The body of every JSON error Polar sends: `{"error": .., "detail": ..}` (404, 403
/// NotPermitted, 401 Unauthorized, 411, 413) or authlib's `{"error": .., "error_description": ..}`
/// (401 invalid_token, 403 insufficient_scope). For 422, `detail` is a list of [`ValidationItem`].
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
    #[serde(default)]
    pub error_description: Option<String>,
}

impl ErrorBody {
    /// The 422 items, when `detail` is a list of them.
    pub fn validation_items(&self) -> Option<Vec<ValidationItem>> {
        let detail = self.detail.as_ref()?;
        serde_json::from_value(detail.clone()).ok()
    }

    /// `detail` when it is a plain string.
    pub fn detail_text(&self) -> Option<&str> {
        self.detail.as_ref()?.as_str()
    }
}

/// One 422 item, as pydantic writes it (FastAPI drops the `url` key).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ValidationItem {
    #[serde(rename = "type")]
    pub kind: String,
    pub loc: Vec<LocSegment>,
    pub msg: String,
    /// The rejected input; never shown, since it may be large.
    #[serde(default)]
    pub input: Option<serde_json::Value>,
}

/// A segment of a 422 location: a field name, a union member tag, or a list index.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum LocSegment {
    Index(i64),
    Name(String),
}

#[cfg(test)]
pub(crate) mod fixtures {
    /// A `CheckoutLink` shaped like the OpenAPI schema, with the undocumented deprecated keys
    /// (`product_id`, `product_price_id`, `product`, `product_price`) and `units`.
    pub(crate) const LINK: &str = r#"{
      "id": "8a3f5c1e-2b4d-4e6f-9a8b-1c2d3e4f5a6b",
      "created_at": "2026-11-21T04:29:33.493524Z",
      "modified_at": null,
      "trial_interval": "month",
      "trial_interval_count": 1,
      "metadata": {"k8s_checkout_link_uid": "0b7e", "n": 2, "f": 2.0, "t": true},
      "payment_processor": "stripe",
      "client_secret": "polar_cl_gon2ISU4r7oYyjVaxXlRVUv5MKh1H3c1gCxKn1zZGHA",
      "success_url": "https://example.com/thanks?checkout_id={CHECKOUT_ID}",
      "return_url": null,
      "label": "Launch - email campaign",
      "allow_discount_codes": true,
      "require_billing_address": false,
      "discount_id": null,
      "seats": null,
      "units": 3,
      "organization_id": "1dbfc517-0bbf-4301-9ba8-555ca42b9737",
      "products": [
        {
          "metadata": {}, "id": "d2a1b0c9-8e7f-4a6b-9c5d-4e3f2a1b0c9d",
          "created_at": "2026-11-01T10:00:00Z", "modified_at": null,
          "trial_interval": null, "trial_interval_count": null,
          "name": "Pro", "description": null, "visibility": "public",
          "recurring_interval": "month", "recurring_interval_count": 1,
          "meter_interval": null, "meter_interval_count": null,
          "is_recurring": true, "is_archived": false,
          "organization_id": "1dbfc517-0bbf-4301-9ba8-555ca42b9737",
          "prices": [{
            "created_at": "2026-11-01T10:00:00Z", "modified_at": null,
            "id": "5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b", "source": "catalog",
            "amount_type": "fixed", "price_currency": "usd", "tax_behavior": null,
            "is_archived": false, "product_id": "d2a1b0c9-8e7f-4a6b-9c5d-4e3f2a1b0c9d",
            "price_amount": 1500, "type": "recurring", "recurring_interval": "month"
          }],
          "benefits": [], "medias": []
        },
        {
          "metadata": {}, "id": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
          "created_at": "2026-11-02T10:00:00Z", "modified_at": null,
          "trial_interval": null, "trial_interval_count": null,
          "name": "Team", "description": "For teams", "visibility": "private",
          "recurring_interval": "month", "recurring_interval_count": 1,
          "meter_interval": null, "meter_interval_count": null,
          "is_recurring": true, "is_archived": false,
          "organization_id": "1dbfc517-0bbf-4301-9ba8-555ca42b9737",
          "prices": [], "benefits": [], "medias": []
        }
      ],
      "discount": null,
      "url": "https://buy.polar.sh/polar_cl_gon2ISU4r7oYyjVaxXlRVUv5MKh1H3c1gCxKn1zZGHA",
      "product_id": "d2a1b0c9-8e7f-4a6b-9c5d-4e3f2a1b0c9d",
      "product_price_id": "5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b",
      "product": {"id": "d2a1b0c9-8e7f-4a6b-9c5d-4e3f2a1b0c9d", "name": "Pro"},
      "product_price": {"id": "5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b", "amount_type": "fixed"}
    }"#;

    /// The same link as the documented schema alone describes it: no `units`, no deprecated
    /// keys, a discount, and a modification time.
    pub(crate) const LINK_WITHOUT_UNITS: &str = r#"{
      "id": "3c2b1a09-f8e7-4d6c-b5a4-938271605f4e",
      "created_at": "2026-11-21T04:29:33.493524Z",
      "modified_at": "2026-11-21T05:00:00.000001Z",
      "trial_interval": null,
      "trial_interval_count": null,
      "metadata": {},
      "payment_processor": "stripe",
      "client_secret": "polar_cl_gon2ISU4r7oYyjVaxXlRVUv5MKh1H3c1gCxKn1zZGHA",
      "success_url": null,
      "return_url": "https://example.com/",
      "label": null,
      "allow_discount_codes": false,
      "require_billing_address": true,
      "discount_id": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
      "seats": 5,
      "organization_id": "1dbfc517-0bbf-4301-9ba8-555ca42b9737",
      "products": [{"id": "d2a1b0c9-8e7f-4a6b-9c5d-4e3f2a1b0c9d", "name": "Pro"}],
      "discount": {
        "duration": "forever", "type": "percentage", "basis_points": 1000,
        "created_at": "2026-11-01T10:00:00Z", "modified_at": null,
        "id": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a", "metadata": {}, "name": "Launch",
        "code": "LAUNCH", "starts_at": null, "ends_at": null, "max_redemptions": null,
        "max_redemptions_per_customer": null, "redemptions_count": 0,
        "organization_id": "1dbfc517-0bbf-4301-9ba8-555ca42b9737"
      },
      "url": "https://sandbox-api.polar.sh/v1/checkout-links/polar_cl_gon2ISU4r7oYyjVaxXlRVUv5MKh1H3c1gCxKn1zZGHA/redirect"
    }"#;
}

#[cfg(test)]
mod tests {
    use super::fixtures::{LINK, LINK_WITHOUT_UNITS};
    use super::*;
    use crate::polar::{MetaValue, Metadata, Trial};
    use serde_json::json;

    fn link(json: &str) -> Link {
        Link::from_json(&serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn response_with_deprecated_keys_and_units_is_read() {
        let l = link(LINK);
        assert_eq!(l.id, "8a3f5c1e-2b4d-4e6f-9a8b-1c2d3e4f5a6b");
        assert_eq!(l.organization_id, "1dbfc517-0bbf-4301-9ba8-555ca42b9737");
        assert_eq!(
            l.client_secret,
            "polar_cl_gon2ISU4r7oYyjVaxXlRVUv5MKh1H3c1gCxKn1zZGHA"
        );
        assert_eq!(l.modified_at, None);
        let f = &l.fields;
        assert_eq!(
            f.products,
            [
                "d2a1b0c9-8e7f-4a6b-9c5d-4e3f2a1b0c9d",
                "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
            ]
        );
        assert_eq!(f.label.as_deref(), Some("Launch - email campaign"));
        assert_eq!(
            f.trial,
            Some(Trial {
                interval: "month".into(),
                count: 1
            })
        );
        assert_eq!(f.units, Some(3));
        assert_eq!(f.seats, None);
        assert_eq!(
            f.success_url.as_deref(),
            Some("https://example.com/thanks?checkout_id={CHECKOUT_ID}")
        );
        assert_eq!(f.metadata["n"], MetaValue::Int(2));
        assert_eq!(f.metadata["f"], MetaValue::Float(2.0));
        assert_eq!(f.metadata["t"], MetaValue::Bool(true));
        assert_eq!(
            f.metadata["k8s_checkout_link_uid"],
            MetaValue::Str("0b7e".into())
        );
    }

    #[test]
    fn response_without_units_is_read() {
        let l = link(LINK_WITHOUT_UNITS);
        assert_eq!(l.fields.units, None);
        assert_eq!(l.fields.seats, Some(5));
        assert_eq!(l.fields.trial, None);
        assert_eq!(
            l.fields.discount_id.as_deref(),
            Some("9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a")
        );
        assert!(!l.fields.allow_discount_codes);
        assert!(l.fields.require_billing_address);
        assert_eq!(
            l.modified_at.as_deref(),
            Some("2026-11-21T05:00:00.000001Z")
        );
    }

    #[test]
    fn response_missing_a_required_field_is_rejected() {
        let mut v: serde_json::Value = serde_json::from_str(LINK).unwrap();
        v.as_object_mut().unwrap().remove("client_secret");
        assert!(Link::from_json(&v).is_err());
    }

    #[test]
    fn list_envelope_is_read() {
        let body = format!(
            r#"{{"items": [{LINK}, {LINK_WITHOUT_UNITS}], "pagination": {{"total_count": 42, "max_page": 5}}}}"#
        );
        let page = Page::try_from(serde_json::from_str::<ListDto>(&body).unwrap()).unwrap();
        assert_eq!(page.items.len(), 2);
        assert_eq!((page.total_count, page.max_page), (42, 5));
        let empty = Page::try_from(
            serde_json::from_str::<ListDto>(
                r#"{"items":[],"pagination":{"total_count":0,"max_page":0}}"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert!(empty.items.is_empty());
    }

    #[test]
    fn create_body_sends_every_field_and_stripe() {
        let fields = LinkFields {
            products: vec!["p1".into(), "p2".into()],
            allow_discount_codes: true,
            metadata: Metadata::from([("n".into(), MetaValue::Float(2.0))]),
            trial: Some(Trial {
                interval: "week".into(),
                count: 2,
            }),
            ..Default::default()
        };
        let body = create_body(&fields);
        assert_eq!(
            body,
            json!({
                "payment_processor": "stripe", "products": ["p1", "p2"], "label": null,
                "allow_discount_codes": true, "require_billing_address": false, "discount_id": null,
                "metadata": {"n": 2.0}, "success_url": null, "return_url": null,
                "trial_interval": "week", "trial_interval_count": 2, "seats": null, "units": null
            })
        );
        assert_eq!(
            serde_json::to_string(&body["metadata"]).unwrap(),
            r#"{"n":2.0}"#
        );
    }

    #[test]
    fn patch_body_sends_only_present_fields_with_explicit_nulls() {
        let patch = LinkPatch {
            label: Some(None),
            discount_id: Some(Some("d1".into())),
            trial: Some(None),
            seats: Some(None),
            metadata: Some(Metadata::new()),
            ..Default::default()
        };
        let body = patch_body(&patch);
        assert_eq!(
            body,
            json!({
                "label": null, "discount_id": "d1", "metadata": {},
                "trial_interval": null, "trial_interval_count": null, "seats": null
            })
        );
        assert_eq!(
            serde_json::to_string(&patch_body(&LinkPatch::default())).unwrap(),
            "{}"
        );
    }

    #[test]
    fn patch_body_sends_a_trial_as_its_pair() {
        let patch = LinkPatch {
            trial: Some(Some(Trial {
                interval: "year".into(),
                count: 1,
            })),
            ..Default::default()
        };
        let body = patch_body(&patch);
        assert_eq!(
            body,
            json!({"trial_interval": "year", "trial_interval_count": 1})
        );
    }

    #[test]
    fn error_bodies_of_every_shape_are_read() {
        let unauthorized: ErrorBody =
            serde_json::from_str(r#"{"error":"Unauthorized","detail":"Unauthorized"}"#).unwrap();
        assert_eq!(unauthorized.error.as_deref(), Some("Unauthorized"));
        assert_eq!(unauthorized.detail_text(), Some("Unauthorized"));

        let invalid: ErrorBody = serde_json::from_str(
            r#"{"error":"invalid_token","error_description":"The access token provided is expired, revoked, malformed, or invalid for other reasons."}"#,
        )
        .unwrap();
        assert_eq!(invalid.error.as_deref(), Some("invalid_token"));
        assert!(
            invalid
                .error_description
                .unwrap()
                .starts_with("The access token provided")
        );

        let scope: ErrorBody = serde_json::from_str(
            r#"{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token."}"#,
        )
        .unwrap();
        assert_eq!(scope.error.as_deref(), Some("insufficient_scope"));

        let not_found: ErrorBody =
            serde_json::from_str(r#"{"error":"ResourceNotFound","detail":"Not found"}"#).unwrap();
        assert_eq!(not_found.detail_text(), Some("Not found"));
        assert!(not_found.validation_items().is_none());
    }

    #[test]
    fn validation_body_is_read_with_mixed_locations() {
        let body: ErrorBody = serde_json::from_str(
            r#"{"error":"PolarRequestValidationError","detail":[{"type":"value_error","loc":["body","products",0],"msg":"Product does not exist.","input":"d2a1b0c9-8e7f-4a6b-9c5d-4e3f2a1b0c9d"}]}"#,
        )
        .unwrap();
        let items = body.validation_items().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].kind, "value_error");
        assert_eq!(
            items[0].loc,
            [
                LocSegment::Name("body".into()),
                LocSegment::Name("products".into()),
                LocSegment::Index(0)
            ]
        );
        assert_eq!(items[0].msg, "Product does not exist.");
    }
}
