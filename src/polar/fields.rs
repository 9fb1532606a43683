//! The Polar fields of a checkout link that the operator manages, declared once.
//!
//! The table at the bottom of this file names each field, its type, its name(s) on the wire
//! and how two values are compared; [`LinkFields`] (what a link holds), [`LinkPatch`] (what a
//! PATCH carries), the field names in events, [`diff`] and the JSON of the create and update
//! bodies all follow from it. Adding a field to the operator is one line here, one spec field
//! in `crd.rs` and one line in `reconcile::plan::desired_fields`.

use serde_json::{Map, Value};

use super::compare;
use super::{Metadata, Trial};

/// How a field's value is written to, and read from, Polar's JSON.
pub(crate) trait Wire: Sized {
    /// Writes the value under its wire name(s); `None` writes explicit nulls.
    fn put(&self, names: &[&'static str], out: &mut Map<String, Value>);
    /// Reads the value from a response object. A missing key reads as empty (`units` is absent
    /// from Polar's OpenAPI document); a value of the wrong type is an error.
    fn take(names: &[&'static str], from: &Map<String, Value>) -> Result<Self, String>;
}

/// A value that is written as one JSON scalar, or `null` when absent.
pub(crate) trait Scalar: Sized {
    fn to_json(&self) -> Value;
    fn from_json(v: &Value) -> Option<Self>;
}

impl Scalar for String {
    fn to_json(&self) -> Value {
        Value::String(self.clone())
    }
    fn from_json(v: &Value) -> Option<Self> {
        v.as_str().map(str::to_owned)
    }
}

impl Scalar for i32 {
    fn to_json(&self) -> Value {
        Value::from(*self)
    }
    fn from_json(v: &Value) -> Option<Self> {
        v.as_i64().and_then(|n| i32::try_from(n).ok())
    }
}

fn wrong_type(name: &str, want: &str) -> String {
    format!("{name} is not {want}")
}

impl<T: Scalar> Wire for Option<T> {
    fn put(&self, names: &[&'static str], out: &mut Map<String, Value>) {
        out.insert(
            names[0].to_owned(),
            self.as_ref().map_or(Value::Null, Scalar::to_json),
        );
    }
    fn take(names: &[&'static str], from: &Map<String, Value>) -> Result<Self, String> {
        match from.get(names[0]) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => T::from_json(v)
                .map(Some)
                .ok_or_else(|| wrong_type(names[0], "of the expected type")),
        }
    }
}

impl Wire for bool {
    fn put(&self, names: &[&'static str], out: &mut Map<String, Value>) {
        out.insert(names[0].to_owned(), Value::Bool(*self));
    }
    fn take(names: &[&'static str], from: &Map<String, Value>) -> Result<Self, String> {
        from.get(names[0])
            .and_then(Value::as_bool)
            .ok_or_else(|| wrong_type(names[0], "a boolean"))
    }
}

/// Product ids: sent as a list of ids, read from the list of product objects Polar returns.
impl Wire for Vec<String> {
    fn put(&self, names: &[&'static str], out: &mut Map<String, Value>) {
        out.insert(
            names[0].to_owned(),
            Value::Array(self.iter().cloned().map(Value::String).collect()),
        );
    }
    fn take(names: &[&'static str], from: &Map<String, Value>) -> Result<Self, String> {
        let Some(items) = from.get(names[0]).and_then(Value::as_array) else {
            return Err(wrong_type(names[0], "a list"));
        };
        items
            .iter()
            .map(|item| {
                item.as_str()
                    .or_else(|| item.get("id").and_then(Value::as_str))
                    .map(str::to_owned)
                    .ok_or_else(|| wrong_type(names[0], "a list of products"))
            })
            .collect()
    }
}

impl Wire for Metadata {
    fn put(&self, names: &[&'static str], out: &mut Map<String, Value>) {
        // MetaValue serialises to a JSON scalar; a map of them never fails.
        out.insert(
            names[0].to_owned(),
            serde_json::to_value(self).unwrap_or_default(),
        );
    }
    fn take(names: &[&'static str], from: &Map<String, Value>) -> Result<Self, String> {
        match from.get(names[0]) {
            None | Some(Value::Null) => Ok(Metadata::new()),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|_| wrong_type(names[0], "an object of scalars")),
        }
    }
}

/// A trial is the pair `trial_interval` + `trial_interval_count`, sent and cleared together.
impl Wire for Option<Trial> {
    fn put(&self, names: &[&'static str], out: &mut Map<String, Value>) {
        let (interval, count) = match self {
            Some(t) => (Value::String(t.interval.clone()), Value::from(t.count)),
            None => (Value::Null, Value::Null),
        };
        out.insert(names[0].to_owned(), interval);
        out.insert(names[1].to_owned(), count);
    }
    fn take(names: &[&'static str], from: &Map<String, Value>) -> Result<Self, String> {
        let interval = <Option<String> as Wire>::take(&names[..1], from)?;
        let count = <Option<i32> as Wire>::take(&names[1..], from)?;
        // Polar enforces the pair rule, so a half-set trial cannot come back; read it as none.
        Ok(interval
            .zip(count)
            .map(|(interval, count)| Trial { interval, count }))
    }
}

macro_rules! link_fields {
    ($(
        $(#[doc = $doc:literal])*
        $field:ident: $ty:ty, wire [$($wire:literal),+], same $same:path;
    )*) => {
        /// Every field of a checkout link that the operator manages, as Polar means them.
        #[derive(Clone, Debug, PartialEq, Default)]
        pub struct LinkFields {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        /// A PATCH body: `None` leaves a field out (Polar keeps it); `Some(value)` sends it,
        /// and for a nullable field `Some(None)` sends an explicit null (Polar clears it).
        #[derive(Clone, Debug, PartialEq, Default)]
        pub struct LinkPatch {
            $( $(#[doc = $doc])* pub $field: Option<$ty>, )*
        }

        /// Polar's names of the managed fields, in table order.
        pub const FIELD_NAMES: &[&str] = &[$($($wire),+),*];

        impl LinkFields {
            /// The fields as JSON, every one present (nulls included): the create body.
            pub fn to_json(&self) -> Map<String, Value> {
                let mut out = Map::new();
                $( self.$field.put(&[$($wire),+], &mut out); )*
                out
            }

            /// The fields of a `CheckoutLink` response object.
            pub fn from_json(from: &Map<String, Value>) -> Result<Self, String> {
                Ok(LinkFields { $( $field: Wire::take(&[$($wire),+], from)?, )* })
            }
        }

        impl LinkPatch {
            /// Polar names of the fields the patch carries, in a fixed order, for events and
            /// logs. A trial counts as its two fields.
            pub fn field_names(&self) -> Vec<&'static str> {
                let mut names = Vec::new();
                $( if self.$field.is_some() { names.extend([$($wire),+]); } )*
                names
            }

            /// The patch as JSON: only the fields it carries.
            pub fn to_json(&self) -> Map<String, Value> {
                let mut out = Map::new();
                $( if let Some(value) = &self.$field { value.put(&[$($wire),+], &mut out); } )*
                out
            }
        }

        /// The fields of `desired` that differ from `actual`, each compared as Polar means it.
        fn differing(desired: &LinkFields, actual: &LinkFields) -> LinkPatch {
            LinkPatch {
                $( $field: (!$same(&desired.$field, &actual.$field))
                    .then(|| desired.$field.clone()), )*
            }
        }
    };
}

link_fields! {
    /// Product ids, in checkout-page order (a PATCH replaces the whole list).
    products: Vec<String>, wire ["products"], same compare::same_ids;
    /// Internal name, shown only to the merchant.
    label: Option<String>, wire ["label"], same compare::equal;
    /// Whether customers may enter discount codes (Polar's default is `true`; never null).
    allow_discount_codes: bool, wire ["allow_discount_codes"], same compare::equal;
    /// Whether the checkout asks for a full billing address (never null).
    require_billing_address: bool, wire ["require_billing_address"], same compare::equal;
    /// A discount applied automatically.
    discount_id: Option<String>, wire ["discount_id"], same compare::same_id;
    /// Key/value metadata (a PATCH replaces the whole object; `{}` clears it).
    metadata: Metadata, wire ["metadata"], same compare::same_metadata;
    /// Where the customer lands after paying; may contain `{CHECKOUT_ID}`.
    success_url: Option<String>, wire ["success_url"], same compare::same_success_url;
    /// Where the "back" button leads.
    return_url: Option<String>, wire ["return_url"], same compare::same_return_url;
    /// A free trial, for recurring products.
    trial: Option<Trial>, wire ["trial_interval", "trial_interval_count"], same compare::same_trial;
    /// Preset seat count, for seat-based products.
    seats: Option<i32>, wire ["seats"], same compare::equal;
    /// Preset unit count, for unit-based products.
    units: Option<i32>, wire ["units"], same compare::equal;
}

impl LinkPatch {
    /// True when the patch carries no field at all (and need not be sent).
    pub fn is_empty(&self) -> bool {
        self.field_names().is_empty()
    }
}

/// The PATCH that brings `actual` (as Polar returns it) to `desired`, carrying only the fields
/// that differ as Polar means them (see [`compare`]). A field removed from the spec is cleared
/// with an explicit null. When the products change, a preset trial, seat or unit count is sent
/// along, since Polar clears those that no longer fit the new products unless they are in the
/// same PATCH.
pub fn diff(desired: &LinkFields, actual: &LinkFields) -> LinkPatch {
    let mut patch = differing(desired, actual);
    if patch.products.is_some() {
        if desired.trial.is_some() {
            patch.trial = Some(desired.trial.clone());
        }
        if desired.seats.is_some() {
            patch.seats = Some(desired.seats);
        }
        if desired.units.is_some() {
            patch.units = Some(desired.units);
        }
    }
    patch
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::polar::MetaValue;

    #[test]
    fn the_create_body_holds_every_field_with_nulls() {
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
        assert_eq!(
            Value::Object(fields.to_json()),
            json!({
                "products": ["p1", "p2"], "label": null,
                "allow_discount_codes": true, "require_billing_address": false, "discount_id": null,
                "metadata": {"n": 2.0}, "success_url": null, "return_url": null,
                "trial_interval": "week", "trial_interval_count": 2, "seats": null, "units": null
            })
        );
        let json = fields.to_json();
        let keys: Vec<&str> = json.keys().map(String::as_str).collect();
        let mut names = FIELD_NAMES.to_vec();
        names.sort_unstable();
        assert_eq!(keys, names, "every field of the table is sent");
        assert_eq!(
            serde_json::to_string(&fields.to_json()["metadata"]).unwrap(),
            r#"{"n":2.0}"#,
            "a float stays a float"
        );
    }

    #[test]
    fn a_patch_carries_only_its_fields_with_explicit_nulls() {
        let patch = LinkPatch {
            label: Some(None),
            discount_id: Some(Some("d1".into())),
            trial: Some(None),
            seats: Some(None),
            metadata: Some(Metadata::new()),
            ..Default::default()
        };
        assert_eq!(
            Value::Object(patch.to_json()),
            json!({
                "label": null, "discount_id": "d1", "metadata": {},
                "trial_interval": null, "trial_interval_count": null, "seats": null
            })
        );
        assert_eq!(
            patch.field_names(),
            [
                "label",
                "discount_id",
                "metadata",
                "trial_interval",
                "trial_interval_count",
                "seats"
            ]
        );
        assert!(LinkPatch::default().to_json().is_empty());
        assert!(LinkPatch::default().is_empty());
        assert!(!patch.is_empty());
    }

    #[test]
    fn a_trial_is_sent_as_its_pair() {
        let patch = LinkPatch {
            trial: Some(Some(Trial {
                interval: "year".into(),
                count: 1,
            })),
            ..Default::default()
        };
        assert_eq!(
            Value::Object(patch.to_json()),
            json!({"trial_interval": "year", "trial_interval_count": 1})
        );
    }

    #[test]
    fn what_is_sent_reads_back_as_the_same_fields() {
        let fields = LinkFields {
            products: vec!["p1".into()],
            label: Some("L".into()),
            allow_discount_codes: false,
            require_billing_address: true,
            discount_id: Some("d".into()),
            metadata: Metadata::from([("b".into(), MetaValue::Bool(true))]),
            success_url: Some("https://example.com/ok".into()),
            return_url: None,
            trial: Some(Trial {
                interval: "day".into(),
                count: 7,
            }),
            seats: Some(3),
            units: None,
        };
        assert_eq!(LinkFields::from_json(&fields.to_json()), Ok(fields));
    }

    #[test]
    fn responses_are_read_leniently_but_not_blindly() {
        let response = json!({
            "products": [{"id": "p1", "name": "Pro"}],
            "allow_discount_codes": true, "require_billing_address": false,
            "metadata": {}, "label": null, "trial_interval": "month", "trial_interval_count": null
        });
        let fields = LinkFields::from_json(response.as_object().unwrap()).unwrap();
        assert_eq!(fields.products, ["p1"]);
        assert_eq!(fields.units, None, "absent from Polar's document: none");
        assert_eq!(fields.trial, None, "half a trial reads as none");
        let broken = json!({"products": "p1", "allow_discount_codes": true, "require_billing_address": false});
        assert!(LinkFields::from_json(broken.as_object().unwrap()).is_err());
        let missing = json!({"products": []});
        assert!(LinkFields::from_json(missing.as_object().unwrap()).is_err());
    }
}
