//! `CheckoutLinkCreate`: a pydantic union of three models. When every member
//! fails, the errors of all three come back, each location tagged with the
//! member (`function-after[is_complete_configuration(), <Model>]`).

use serde_json::Value;
use uuid::Uuid;

use crate::errors::{ErrorItem, Loc};
use crate::json::J;
use crate::validate::fields::{self, model_type};
use crate::validate::metadata::{self, Metadata};
use crate::validate::url::{UrlField, http_url};

pub const TRIAL_INTERVALS: &[&str] = &["day", "week", "month", "year"];
pub const TRIAL_PAIR_MESSAGE: &str =
    "Both trial_interval and trial_interval_count must be set together.";
pub const MAX_SEATS: i128 = 10_000;
pub const MAX_INT32: i128 = 2_147_483_647;

/// How the products of a new link are named.
#[derive(Debug, Clone, PartialEq)]
pub enum ProductSource {
    Products(Vec<Uuid>),
    Product(Uuid),
    Price(Uuid),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateInput {
    pub source: ProductSource,
    pub metadata: Metadata,
    pub trial_interval: Option<String>,
    pub trial_interval_count: Option<i64>,
    pub label: Option<String>,
    pub allow_discount_codes: bool,
    pub require_billing_address: bool,
    pub discount_id: Option<Uuid>,
    pub seats: Option<i64>,
    pub units: Option<i64>,
    pub success_url: Option<String>,
    pub return_url: Option<String>,
}

/// The union members in Polar's declaration order.
const MEMBERS: [(&str, &str); 3] = [
    ("CheckoutLinkCreateProductPrice", "product_price_id"),
    ("CheckoutLinkCreateProduct", "product_id"),
    ("CheckoutLinkCreateProducts", "products"),
];

const COMMON_FIELDS: &[&str] = &[
    "metadata",
    "trial_interval",
    "trial_interval_count",
    "payment_processor",
    "label",
    "allow_discount_codes",
    "require_billing_address",
    "discount_id",
    "seats",
    "units",
    "success_url",
    "return_url",
];

pub fn member_tag(model: &str) -> String {
    format!("function-after[is_complete_configuration(), {model}]")
}

/// Validates a POST body (already known to be present).
pub fn validate_create(body: &J) -> Result<CreateInput, Vec<ErrorItem>> {
    let input = body.to_value();
    let J::Obj(_) = body else {
        return Err(MEMBERS
            .iter()
            .map(|(model, _)| {
                model_type(model, input.clone())
                    .under(&[Loc::from("body"), Loc::from(member_tag(model))])
            })
            .collect());
    };
    let (common, common_errors) = common_fields(body, &input);
    let mut successes: Vec<(usize, CreateInput)> = Vec::new();
    let mut all_errors = Vec::new();
    for (model, field) in MEMBERS {
        let mut errors = common_errors.clone();
        let source = match body.get(field) {
            None => {
                errors.push(ErrorItem::missing(input.clone()).at(field));
                None
            }
            Some(v) => match member_source(field, v) {
                Ok(source) => Some(source),
                Err(errs) => {
                    errors.extend(errs.into_iter().map(|e| e.at(field)));
                    None
                }
            },
        };
        if errors.is_empty()
            && common.trial_interval.is_some() != common.trial_interval_count.is_some()
        {
            errors.push(ErrorItem::new("missing", TRIAL_PAIR_MESSAGE, input.clone()));
        }
        match source {
            Some(source) if errors.is_empty() => {
                let fields_set = COMMON_FIELDS
                    .iter()
                    .chain([&field])
                    .filter(|f| body.get(f).is_some())
                    .count();
                successes.push((
                    fields_set,
                    CreateInput {
                        source,
                        ..common.clone()
                    },
                ));
            }
            _ => {
                let prefix = [Loc::from("body"), Loc::from(member_tag(model))];
                all_errors.extend(errors.into_iter().map(|e| e.under(&prefix)));
            }
        }
    }
    // pydantic's smart union: the member with the most fields set, then the first.
    let mut best: Option<(usize, CreateInput)> = None;
    for (n, candidate) in successes {
        if best.as_ref().is_none_or(|(m, _)| n > *m) {
            best = Some((n, candidate));
        }
    }
    best.map(|(_, c)| c).ok_or(all_errors)
}

fn push(errors: &mut Vec<ErrorItem>, field: &str, result: Result<(), ErrorItem>) {
    if let Err(e) = result {
        errors.push(e.at(field));
    }
}

fn member_source(field: &str, v: &J) -> Result<ProductSource, Vec<ErrorItem>> {
    match field {
        "products" => fields::uuid4_list(v).map(ProductSource::Products),
        "product_id" => fields::uuid4(v)
            .map(ProductSource::Product)
            .map_err(|e| vec![e]),
        _ => fields::uuid4(v)
            .map(ProductSource::Price)
            .map_err(|e| vec![e]),
    }
}

/// The fields every member shares, validated once, in declaration order.
fn common_fields(body: &J, input: &Value) -> (CreateInput, Vec<ErrorItem>) {
    let mut errors = Vec::new();
    let mut out = CreateInput {
        source: ProductSource::Products(Vec::new()),
        metadata: Metadata::default(),
        trial_interval: None,
        trial_interval_count: None,
        label: None,
        allow_discount_codes: true,
        require_billing_address: false,
        discount_id: None,
        seats: None,
        units: None,
        success_url: None,
        return_url: None,
    };
    let present = |f: &str| body.get(f).filter(|v| **v != J::Null);

    if let Some(v) = body.get("metadata") {
        match metadata::metadata(v, true) {
            Ok(m) => out.metadata = m,
            Err(errs) => errors.extend(errs.into_iter().map(|e| e.at("metadata"))),
        }
    }
    if let Some(v) = present("trial_interval") {
        push(
            &mut errors,
            "trial_interval",
            fields::enumeration(v, TRIAL_INTERVALS).map(|s| out.trial_interval = Some(s)),
        );
    }
    if let Some(v) = present("trial_interval_count") {
        push(
            &mut errors,
            "trial_interval_count",
            fields::int_between(v, 1, 1000).map(|n| out.trial_interval_count = Some(n)),
        );
    }
    match body.get("payment_processor") {
        None => push(
            &mut errors,
            "payment_processor",
            Err(ErrorItem::missing(input.clone())),
        ),
        Some(v) => push(
            &mut errors,
            "payment_processor",
            fields::payment_processor(v),
        ),
    }
    if let Some(v) = present("label") {
        push(
            &mut errors,
            "label",
            fields::string(v, true).map(|s| out.label = Some(s)),
        );
    }
    if let Some(v) = body.get("allow_discount_codes") {
        push(
            &mut errors,
            "allow_discount_codes",
            fields::boolean(v).map(|b| out.allow_discount_codes = b),
        );
    }
    if let Some(v) = body.get("require_billing_address") {
        push(
            &mut errors,
            "require_billing_address",
            fields::boolean(v).map(|b| out.require_billing_address = b),
        );
    }
    if let Some(v) = present("discount_id") {
        push(
            &mut errors,
            "discount_id",
            fields::uuid4(v).map(|id| out.discount_id = Some(id)),
        );
    }
    if let Some(v) = present("seats") {
        push(
            &mut errors,
            "seats",
            fields::int_between(v, 1, MAX_SEATS).map(|n| out.seats = Some(n)),
        );
    }
    if let Some(v) = present("units") {
        push(
            &mut errors,
            "units",
            fields::int_between(v, 1, MAX_INT32).map(|n| out.units = Some(n)),
        );
    }
    if let Some(v) = present("success_url") {
        push(
            &mut errors,
            "success_url",
            http_url(v, UrlField::Success, true).map(|u| out.success_url = Some(u)),
        );
    }
    if let Some(v) = present("return_url") {
        push(
            &mut errors,
            "return_url",
            http_url(v, UrlField::Return, true).map(|u| out.return_url = Some(u)),
        );
    }
    (out, errors)
}
