//! Field validators with pydantic's lax-mode semantics and error messages. Each
//! returns errors with a location relative to the field; callers prefix it.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::errors::ErrorItem;
use crate::json::J;

pub const NUL_MESSAGE: &str = "This value contains invalid characters";

/// `UUID4`: a UUID string of version 4.
pub fn uuid4(v: &J) -> Result<Uuid, ErrorItem> {
    let J::Str(s) = v else {
        return Err(ErrorItem::new(
            "uuid_type",
            "UUID input should be a string, bytes or UUID object",
            v.to_value(),
        ));
    };
    uuid4_str(s, v.to_value())
}

/// The `uuid` crate's parse error as the version pydantic-core 2.46 links
/// words it: 1-based character positions, and the older length message.
fn uuid_error(e: &uuid::Error) -> String {
    let text = e.to_string();
    if let Some(rest) = text.strip_prefix("invalid length: found ") {
        return format!("invalid length: expected length 32 for simple format, found {rest}");
    }
    if let Some((head, index)) = text.rsplit_once(" at ")
        && head.starts_with("invalid character: found ")
        && let Ok(i) = index.parse::<usize>()
    {
        return format!("{head} at {}", i + 1);
    }
    text
}

pub fn uuid4_str(s: &str, input: Value) -> Result<Uuid, ErrorItem> {
    let id = Uuid::parse_str(s).map_err(|e| {
        let error = uuid_error(&e);
        ErrorItem::new(
            "uuid_parsing",
            format!("Input should be a valid UUID, {error}"),
            input.clone(),
        )
        .with_ctx(json!({ "error": error }))
    })?;
    if id.get_version_num() != 4 {
        return Err(
            ErrorItem::new("uuid_version", "UUID version 4 expected", input)
                .with_ctx(json!({ "expected_version": 4 })),
        );
    }
    Ok(id)
}

/// Parses an integer from a string as pydantic does in lax mode: surrounding
/// whitespace, a sign, `_` between digits, and a `.0` tail are allowed.
pub fn int_from_str(s: &str) -> Option<i128> {
    let t = s.trim();
    let t = match t.split_once('.') {
        Some((int, frac)) if !frac.is_empty() && frac.chars().all(|c| c == '0') => int,
        Some(_) => return None,
        None => t,
    };
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    let value: i128 = clean.parse().unwrap_or(i128::MAX);
    Some(if neg { -value } else { value })
}

/// Parses a float from a string as Python's `float()` does (finite values only).
pub fn float_from_str(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty()
        || t.chars()
            .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
    {
        return None;
    }
    t.parse::<f64>().ok().filter(|f| f.is_finite())
}

pub fn bool_from_str(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "0" | "off" | "f" | "false" | "n" | "no" => Some(false),
        "1" | "on" | "t" | "true" | "y" | "yes" => Some(true),
        _ => None,
    }
}

/// `int` in lax mode.
pub fn int(v: &J) -> Result<i128, ErrorItem> {
    let input = v.to_value();
    match v {
        J::Num(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i as i128)
            } else if let Some(u) = n.as_u64() {
                Ok(u as i128)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.abs() >= 9.2e18 {
                    Err(ErrorItem::new(
                        "int_parsing_size",
                        "Unable to parse input string as an integer, exceeded maximum size",
                        input,
                    ))
                } else if f.fract() != 0.0 {
                    Err(ErrorItem::new(
                        "int_from_float",
                        "Input should be a valid integer, got a number with a fractional part",
                        input,
                    ))
                } else {
                    Ok(f as i128)
                }
            }
        }
        J::Bool(b) => Ok(*b as i128),
        J::Str(s) => int_from_str(s).ok_or_else(|| {
            ErrorItem::new(
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
                input,
            )
        }),
        _ => Err(ErrorItem::new(
            "int_type",
            "Input should be a valid integer",
            input,
        )),
    }
}

/// `int` with `ge` / `le` bounds.
pub fn int_between(v: &J, ge: i128, le: i128) -> Result<i64, ErrorItem> {
    let value = int(v)?;
    if value < ge {
        return Err(ErrorItem::new(
            "greater_than_equal",
            format!("Input should be greater than or equal to {ge}"),
            v.to_value(),
        )
        .with_ctx(json!({ "ge": ge as i64 })));
    }
    if value > le {
        return Err(ErrorItem::new(
            "less_than_equal",
            format!("Input should be less than or equal to {le}"),
            v.to_value(),
        )
        .with_ctx(json!({ "le": le as i64 })));
    }
    Ok(value as i64)
}

/// `bool` in lax mode.
pub fn boolean(v: &J) -> Result<bool, ErrorItem> {
    let parsing = || {
        ErrorItem::new(
            "bool_parsing",
            "Input should be a valid boolean, unable to interpret input",
            v.to_value(),
        )
    };
    match v {
        J::Bool(b) => Ok(*b),
        J::Num(n) if n.is_f64() => match n.as_f64() {
            Some(0.0) => Ok(false),
            Some(1.0) => Ok(true),
            _ => Err(ErrorItem::new(
                "bool_type",
                "Input should be a valid boolean",
                v.to_value(),
            )),
        },
        J::Num(n) => match n.as_i64() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(parsing()),
        },
        J::Str(s) => bool_from_str(s).ok_or_else(parsing),
        _ => Err(ErrorItem::new(
            "bool_type",
            "Input should be a valid boolean",
            v.to_value(),
        )),
    }
}

/// `str`; with `reject_nul`, Polar's create-schema rule against `\x00`.
pub fn string(v: &J, reject_nul: bool) -> Result<String, ErrorItem> {
    match v {
        J::Str(s) if reject_nul && s.contains('\0') => {
            Err(ErrorItem::new("value_error", NUL_MESSAGE, v.to_value()))
        }
        J::Str(s) => Ok(s.clone()),
        _ => Err(ErrorItem::new(
            "string_type",
            "Input should be a valid string",
            v.to_value(),
        )),
    }
}

/// A str enum such as `TrialInterval`.
pub fn enumeration(v: &J, allowed: &[&str]) -> Result<String, ErrorItem> {
    match v {
        J::Str(s) if allowed.contains(&s.as_str()) => Ok(s.clone()),
        _ => {
            let expected = expected_list(allowed);
            Err(
                ErrorItem::new("enum", format!("Input should be {expected}"), v.to_value())
                    .with_ctx(json!({ "expected": expected })),
            )
        }
    }
}

/// `'a', 'b' or 'c'`, as pydantic lists choices.
pub fn expected_list(allowed: &[&str]) -> String {
    let quoted: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// `Literal[PaymentProcessor.stripe]`: pydantic shows the enum member's repr.
pub fn payment_processor(v: &J) -> Result<(), ErrorItem> {
    const EXPECTED: &str = "<PaymentProcessor.stripe: 'stripe'>";
    match v {
        J::Str(s) if s == "stripe" => Ok(()),
        _ => Err(ErrorItem::new(
            "literal_error",
            format!("Input should be {EXPECTED}"),
            v.to_value(),
        )
        .with_ctx(json!({ "expected": EXPECTED }))),
    }
}

/// `list[UUID4]` with `min_length=1`.
pub fn uuid4_list(v: &J) -> Result<Vec<Uuid>, Vec<ErrorItem>> {
    let J::Arr(items) = v else {
        return Err(vec![ErrorItem::new(
            "list_type",
            "Input should be a valid list",
            v.to_value(),
        )]);
    };
    let mut ids = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match uuid4(item) {
            Ok(id) => ids.push(id),
            Err(e) => errors.push(e.at(i)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if ids.is_empty() {
        return Err(vec![
            ErrorItem::new(
                "too_short",
                "List should have at least 1 item after validation, not 0",
                v.to_value(),
            )
            .with_ctx(json!({ "field_type": "List", "min_length": 1, "actual_length": 0 })),
        ]);
    }
    Ok(ids)
}

/// The error a model gives for input that is not an object.
pub fn model_type(class_name: &str, input: Value) -> ErrorItem {
    ErrorItem::new(
        "model_type",
        format!("Input should be a valid dictionary or instance of {class_name}"),
        input,
    )
    .with_ctx(json!({ "class_name": class_name }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_errors_name_the_problem_like_pydantic() {
        let e = uuid4(&J::Str("abc".into())).unwrap_err();
        assert_eq!(e.kind, "uuid_parsing");
        assert_eq!(
            e.msg,
            "Input should be a valid UUID, invalid length: expected length 32 for simple format, found 3"
        );
        let e = uuid4(&J::Str("a1000000-0000-4000-8000-00000000000g".into())).unwrap_err();
        assert_eq!(
            e.msg,
            "Input should be a valid UUID, invalid character: found `g` at 36"
        );
        let e = uuid4(&J::Str("a0000000-0000-1000-8000-000000000001".into())).unwrap_err();
        assert_eq!(e.kind, "uuid_version");
        assert_eq!(e.msg, "UUID version 4 expected");
    }

    #[test]
    fn lax_ints_accept_numeric_strings_and_whole_floats() {
        assert_eq!(int_from_str(" 12 "), Some(12));
        assert_eq!(int_from_str("1_000"), Some(1000));
        assert_eq!(int_from_str("3.00"), Some(3));
        assert_eq!(int_from_str("3.5"), None);
        assert_eq!(int_from_str(""), None);
    }

    #[test]
    fn expected_lists_read_like_pydantic() {
        assert_eq!(
            expected_list(&["day", "week", "month", "year"]),
            "'day', 'week', 'month' or 'year'"
        );
    }
}
