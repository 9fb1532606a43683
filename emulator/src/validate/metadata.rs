//! Polar's metadata field: `dict[str(1..40), str(1..500) | int | float | bool]`
//! with at most 50 pairs, validated as pydantic's smart union does.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Number, Value, json};

use crate::errors::ErrorItem;
use crate::json::J;
use crate::validate::fields::{NUL_MESSAGE, bool_from_str, float_from_str, int_from_str};

pub const MAX_KEYS: usize = 50;
const MAX_KEY_LENGTH: usize = 40;
const MAX_VALUE_LENGTH: usize = 500;

#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    Str(String),
    Num(Number),
    Bool(bool),
}

impl MetaValue {
    pub fn to_value(&self) -> Value {
        match self {
            MetaValue::Str(s) => Value::String(s.clone()),
            MetaValue::Num(n) => Value::Number(n.clone()),
            MetaValue::Bool(b) => Value::Bool(*b),
        }
    }
}

/// Metadata in the order the client sent it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata(pub Vec<(String, MetaValue)>);

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            match v {
                MetaValue::Str(s) => map.serialize_entry(k, s)?,
                MetaValue::Num(n) => map.serialize_entry(k, n)?,
                MetaValue::Bool(b) => map.serialize_entry(k, b)?,
            }
        }
        map.end()
    }
}

impl Metadata {
    pub fn to_value(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v.to_value()))
                .collect(),
        )
    }
}

/// Validates a metadata object; `reject_nul` applies the create-schema rule.
pub fn metadata(v: &J, reject_nul: bool) -> Result<Metadata, Vec<ErrorItem>> {
    let J::Obj(pairs) = v else {
        return Err(vec![ErrorItem::new(
            "dict_type",
            "Input should be a valid dictionary",
            v.to_value(),
        )]);
    };
    let mut out = Vec::with_capacity(pairs.len());
    let mut errors = Vec::new();
    for (key, value) in pairs {
        errors.extend(key_errors(key, reject_nul));
        match meta_value(value, reject_nul) {
            Ok(v) => out.push((key.clone(), v)),
            Err(errs) => errors.extend(errs.into_iter().map(|e| e.at(key.as_str()))),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if out.len() > MAX_KEYS {
        let n = out.len();
        return Err(vec![
            ErrorItem::new(
                "too_long",
                format!(
                    "Dictionary should have at most {MAX_KEYS} items after validation, not {n}"
                ),
                v.to_value(),
            )
            .with_ctx(
                json!({ "field_type": "Dictionary", "max_length": MAX_KEYS, "actual_length": n }),
            ),
        ]);
    }
    Ok(Metadata(out))
}

fn key_errors(key: &str, reject_nul: bool) -> Option<ErrorItem> {
    let n = key.chars().count();
    let input = Value::String(key.to_string());
    let e = if n < 1 {
        ErrorItem::new(
            "string_too_short",
            "String should have at least 1 character",
            input,
        )
        .with_ctx(json!({ "min_length": 1 }))
    } else if n > MAX_KEY_LENGTH {
        ErrorItem::new(
            "string_too_long",
            format!("String should have at most {MAX_KEY_LENGTH} characters"),
            input,
        )
        .with_ctx(json!({ "max_length": MAX_KEY_LENGTH }))
    } else if reject_nul && key.contains('\0') {
        ErrorItem::new("value_error", NUL_MESSAGE, input)
    } else {
        return None;
    };
    Some(e.at("[key]").at(key))
}

/// One value: the union `constrained-str | int | float | bool`.
fn meta_value(v: &J, reject_nul: bool) -> Result<MetaValue, Vec<ErrorItem>> {
    let input = v.to_value();
    match v {
        J::Bool(b) => Ok(MetaValue::Bool(*b)),
        J::Num(n) => Ok(MetaValue::Num(n.clone())),
        J::Str(s) => {
            let n = s.chars().count();
            if (1..=MAX_VALUE_LENGTH).contains(&n) {
                if reject_nul && s.contains('\0') {
                    return Err(vec![ErrorItem::new("value_error", NUL_MESSAGE, input)]);
                }
                return Ok(MetaValue::Str(s.clone()));
            }
            // The constrained string failed; lax mode tries the other members.
            if let Some(i) = int_from_str(s).and_then(|i| i64::try_from(i).ok()) {
                return Ok(MetaValue::Num(i.into()));
            }
            if let Some(f) = float_from_str(s).and_then(Number::from_f64) {
                return Ok(MetaValue::Num(f));
            }
            if let Some(b) = bool_from_str(s) {
                return Ok(MetaValue::Bool(b));
            }
            let str_error = if n < 1 {
                ErrorItem::new(
                    "string_too_short",
                    "String should have at least 1 character",
                    input.clone(),
                )
                .with_ctx(json!({ "min_length": 1 }))
            } else {
                ErrorItem::new(
                    "string_too_long",
                    format!("String should have at most {MAX_VALUE_LENGTH} characters"),
                    input.clone(),
                )
                .with_ctx(json!({ "max_length": MAX_VALUE_LENGTH }))
            };
            Err(vec![
                str_error.at("constrained-str"),
                ErrorItem::new(
                    "int_parsing",
                    "Input should be a valid integer, unable to parse string as an integer",
                    input.clone(),
                )
                .at("int"),
                ErrorItem::new(
                    "float_parsing",
                    "Input should be a valid number, unable to parse string as a number",
                    input.clone(),
                )
                .at("float"),
                ErrorItem::new(
                    "bool_parsing",
                    "Input should be a valid boolean, unable to interpret input",
                    input,
                )
                .at("bool"),
            ])
        }
        J::Null | J::Arr(_) | J::Obj(_) => Err(vec![
            ErrorItem::new(
                "string_type",
                "Input should be a valid string",
                input.clone(),
            )
            .at("constrained-str"),
            ErrorItem::new("int_type", "Input should be a valid integer", input.clone()).at("int"),
            ErrorItem::new(
                "float_type",
                "Input should be a valid number",
                input.clone(),
            )
            .at("float"),
            ErrorItem::new("bool_type", "Input should be a valid boolean", input).at("bool"),
        ]),
    }
}
