//! `CheckoutLinkUpdate`: a plain model; only the fields present in the body are
//! applied, and an explicit `null` is kept apart from an absent field.

use uuid::Uuid;

use crate::errors::ErrorItem;
use crate::json::J;
use crate::validate::create::{MAX_INT32, MAX_SEATS, TRIAL_INTERVALS, TRIAL_PAIR_MESSAGE};
use crate::validate::fields::{self, model_type};
use crate::validate::metadata::{self, Metadata};
use crate::validate::url::{UrlField, http_url};

/// A PATCH field: absent, explicitly `null`, or a value.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<T> Patch<T> {
    pub fn is_set(&self) -> bool {
        !matches!(self, Patch::Absent)
    }

    /// The value a present field sets (`None` for `null`), or `None` if absent.
    pub fn as_set(&self) -> Option<Option<&T>> {
        match self {
            Patch::Absent => None,
            Patch::Null => Some(None),
            Patch::Value(v) => Some(Some(v)),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateInput {
    pub trial_interval: Patch<String>,
    pub trial_interval_count: Patch<i64>,
    pub metadata: Patch<Metadata>,
    pub products: Patch<Vec<Uuid>>,
    pub label: Patch<String>,
    pub allow_discount_codes: Patch<bool>,
    pub require_billing_address: Patch<bool>,
    pub discount_id: Patch<Uuid>,
    pub seats: Patch<i64>,
    pub units: Patch<i64>,
    pub success_url: Patch<String>,
    pub return_url: Patch<String>,
}

/// Validates a PATCH body (already known to be present); locations are
/// relative to the body.
pub fn validate_update(body: &J) -> Result<UpdateInput, Vec<ErrorItem>> {
    if !matches!(body, J::Obj(_)) {
        return Err(vec![model_type("CheckoutLinkUpdate", body.to_value())]);
    }
    let mut out = UpdateInput::default();
    let mut errors: Vec<ErrorItem> = Vec::new();

    out.trial_interval = field(body, "trial_interval", &mut errors, |v| {
        fields::enumeration(v, TRIAL_INTERVALS).map_err(|e| vec![e])
    });
    out.trial_interval_count = field(body, "trial_interval_count", &mut errors, |v| {
        fields::int_between(v, 1, 1000).map_err(|e| vec![e])
    });
    // `metadata` is not optional: `null` is a type error.
    if let Some(v) = body.get("metadata") {
        match metadata::metadata(v, false) {
            Ok(m) => out.metadata = Patch::Value(m),
            Err(errs) => errors.extend(errs.into_iter().map(|e| e.at("metadata"))),
        }
    }
    out.products = field(body, "products", &mut errors, fields::uuid4_list);
    out.label = field(body, "label", &mut errors, |v| {
        fields::string(v, false).map_err(|e| vec![e])
    });
    out.allow_discount_codes = field(body, "allow_discount_codes", &mut errors, |v| {
        fields::boolean(v).map_err(|e| vec![e])
    });
    out.require_billing_address = field(body, "require_billing_address", &mut errors, |v| {
        fields::boolean(v).map_err(|e| vec![e])
    });
    out.discount_id = field(body, "discount_id", &mut errors, |v| {
        fields::uuid4(v).map_err(|e| vec![e])
    });
    out.seats = field(body, "seats", &mut errors, |v| {
        fields::int_between(v, 1, MAX_SEATS).map_err(|e| vec![e])
    });
    out.units = field(body, "units", &mut errors, |v| {
        fields::int_between(v, 1, MAX_INT32).map_err(|e| vec![e])
    });
    out.success_url = field(body, "success_url", &mut errors, |v| {
        http_url(v, UrlField::Success, false).map_err(|e| vec![e])
    });
    out.return_url = field(body, "return_url", &mut errors, |v| {
        http_url(v, UrlField::Return, false).map_err(|e| vec![e])
    });

    if !errors.is_empty() {
        return Err(errors);
    }
    let interval = matches!(out.trial_interval, Patch::Value(_));
    let count = matches!(out.trial_interval_count, Patch::Value(_));
    if interval != count {
        return Err(vec![ErrorItem::new(
            "missing",
            TRIAL_PAIR_MESSAGE,
            body.to_value(),
        )]);
    }
    Ok(out)
}

fn field<T>(
    body: &J,
    name: &str,
    errors: &mut Vec<ErrorItem>,
    validate: impl FnOnce(&J) -> Result<T, Vec<ErrorItem>>,
) -> Patch<T> {
    match body.get(name) {
        None => Patch::Absent,
        Some(J::Null) => Patch::Null,
        Some(v) => match validate(v) {
            Ok(t) => Patch::Value(t),
            Err(errs) => {
                errors.extend(errs.into_iter().map(|e| e.at(name)));
                Patch::Absent
            }
        },
    }
}
