//! Polar-aware comparison: what Polar stores for a value the operator sends, so that a
//! settled link never gets a PATCH (DESIGN.md §4).
//!
//! Polar validates with pydantic 2.13.4, whose `HttpUrl` is built on the same `url` crate
//! used here (WHATWG parsing), so [`normalize_url`] reproduces it by calling that parser with
//! pydantic's checks around it. `vectors/url-normalization.json` and `vectors/metadata.json`
//! pin the behaviour (see the tests).

use std::collections::BTreeMap;

use super::{MetaValue, Metadata};

/// pydantic's `max_length` for Polar's URL fields, counted on the input before parsing.
pub const MAX_URL_LENGTH: usize = 2083;
/// Polar's metadata limits (`server/polar/kit/metadata.py`).
pub const MAX_METADATA_KEYS: usize = 50;
/// Longest metadata key, in characters.
pub const MAX_METADATA_KEY_CHARS: usize = 40;
/// Longest metadata string value, in characters.
pub const MAX_METADATA_VALUE_CHARS: usize = 500;

/// Which URL field a value is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlKind {
    /// `success_url`: `{CHECKOUT_ID}` is kept as written, even in the path.
    Success,
    /// `return_url`: a plain `HttpUrl`.
    Return,
}

/// The string Polar stores for `input`, or pydantic's error message (the 422 `msg`).
///
/// Steps, as pydantic-core runs them: the length of the raw input (in bytes) is checked
/// against 2083; the input is parsed by the WHATWG parser, which trims surrounding spaces,
/// lower-cases scheme and host, turns IDN hosts into punycode, drops default ports, gives a
/// bare origin the path `/`, resolves `.`/`..`, treats `\` as `/`, and percent-encodes
/// spaces, non-ASCII and (in paths) braces; the scheme must be http or https. For success
/// URLs Polar then turns `%7BCHECKOUT_ID%7D` back into `{CHECKOUT_ID}`.
pub fn normalize_url(input: &str, kind: UrlKind) -> Result<String, String> {
    if input.len() > MAX_URL_LENGTH {
        return Err(format!(
            "URL should have at most {MAX_URL_LENGTH} characters"
        ));
    }
    let url = url::Url::parse(input).map_err(|e| format!("Input should be a valid URL, {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("URL scheme should be 'http' or 'https'".to_owned());
    }
    // HttpUrl requires a host; the WHATWG parser already refuses http(s) URLs without one.
    if !url.has_host() {
        return Err("Input should be a valid URL, empty host".to_owned());
    }
    Ok(match kind {
        UrlKind::Success => url.as_str().replace("%7BCHECKOUT_ID%7D", "{CHECKOUT_ID}"),
        UrlKind::Return => url.as_str().to_owned(),
    })
}

/// Whether `desired` (as written in a spec) is stored by Polar as `observed`.
pub fn same_url(desired: &str, observed: &str, kind: UrlKind) -> bool {
    desired == observed || normalize_url(desired, kind).is_ok_and(|n| n == observed)
}

/// Whether two metadata maps hold the same values, as Polar means them: an integer and a float
/// are equal when numerically equal (`2` and `2.0`, since Kubernetes may turn one into the
/// other), but a string never equals a number or a boolean (`"1"` ≠ `1`, `true` ≠ `1`).
pub fn same_metadata(a: &Metadata, b: &Metadata) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| same_value(v, w)))
}

fn same_value(a: &MetaValue, b: &MetaValue) -> bool {
    match (a, b) {
        (MetaValue::Int(i), MetaValue::Float(f)) | (MetaValue::Float(f), MetaValue::Int(i)) => {
            int_equals_float(*i, *f)
        }
        _ => a == b,
    }
}

/// Exact comparison, without rounding the integer to a float (2^53 + 1 ≠ 2^53).
fn int_equals_float(i: i64, f: f64) -> bool {
    // -2^63 ≤ f < 2^63 is the range where `f as i64` is exact for an integral f.
    f.fract() == 0.0
        && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f)
        && f as i64 == i
}

/// Converts JSON metadata (as a Kubernetes spec holds it) into typed [`Metadata`]: strings,
/// integers, floats and booleans; `null`, objects, arrays and integers beyond 64 bits are
/// refused in plain words. Limits are checked by [`validate_metadata`].
pub fn metadata_from_json(map: &BTreeMap<String, serde_json::Value>) -> Result<Metadata, String> {
    map.iter()
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::Bool(b) => MetaValue::Bool(*b),
                serde_json::Value::String(s) => MetaValue::Str(s.clone()),
                serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                    (Some(i), _) => MetaValue::Int(i),
                    (None, Some(f)) if n.is_f64() => MetaValue::Float(f),
                    // An integer beyond i64 (as_f64 would round it).
                    _ => return Err(format!("metadata value of {k:?} is an integer too large for Polar")),
                },
                serde_json::Value::Null | serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
                    return Err(format!(
                        "metadata value of {k:?} must be a string, an integer, a number or a boolean"
                    ));
                }
            };
            Ok((k.clone(), value))
        })
        .collect()
}

/// Polar's metadata rules: at most 50 keys, each 1 to 40 characters; string values 1 to 500
/// characters; numbers finite (JSON cannot carry the others).
pub fn validate_metadata(metadata: &Metadata) -> Result<(), String> {
    if metadata.len() > MAX_METADATA_KEYS {
        return Err(format!(
            "metadata has {} keys; Polar allows at most {MAX_METADATA_KEYS}",
            metadata.len()
        ));
    }
    for (key, value) in metadata {
        let key_chars = key.chars().count();
        if key_chars == 0 {
            return Err("metadata keys must not be empty".to_owned());
        }
        if key_chars > MAX_METADATA_KEY_CHARS {
            return Err(format!(
                "metadata key {key:?} is longer than {MAX_METADATA_KEY_CHARS} characters"
            ));
        }
        match value {
            MetaValue::Str(s) if s.is_empty() => {
                return Err(format!("metadata value of {key:?} must not be empty"));
            }
            MetaValue::Str(s) if s.chars().count() > MAX_METADATA_VALUE_CHARS => {
                return Err(format!(
                    "metadata value of {key:?} is longer than {MAX_METADATA_VALUE_CHARS} characters"
                ));
            }
            MetaValue::Float(f) if !f.is_finite() => {
                return Err(format!("metadata value of {key:?} must be a finite number"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// [`validate_metadata`], plus the rule Polar adds on create only: no string (key or value)
/// may contain a NUL character.
pub fn validate_metadata_for_create(metadata: &Metadata) -> Result<(), String> {
    validate_metadata(metadata)?;
    for (key, value) in metadata {
        let nul_in_value = matches!(value, MetaValue::Str(s) if s.contains('\0'));
        if key.contains('\0') || nul_in_value {
            return Err(format!(
                "metadata {key:?} contains a NUL character, which Polar refuses"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors(name: &str) -> Vec<Value> {
        let path = format!(
            "{}/polar-api/vectors/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let doc: Value = serde_json::from_str(&text).unwrap();
        doc["cases"].as_array().unwrap().clone()
    }

    #[test]
    fn every_url_vector_is_reproduced() {
        let cases = vectors("url-normalization.json");
        assert!(cases.len() >= 80, "vectors file shrank: {}", cases.len());
        let mut failures = Vec::new();
        for case in &cases {
            let input = case["input"].as_str().unwrap();
            let kind = match case["field"].as_str().unwrap() {
                "success_url" => UrlKind::Success,
                "return_url" => UrlKind::Return,
                other => panic!("unknown field {other}"),
            };
            let got = normalize_url(input, kind);
            let want = match (case.get("output"), case.get("error")) {
                (Some(out), None) => Ok(out.as_str().unwrap().to_owned()),
                (None, Some(err)) => Err(err["msg"].as_str().unwrap().to_owned()),
                _ => panic!("case has neither output nor error: {case}"),
            };
            if got != want {
                failures.push(format!("{kind:?} {input:?}: got {got:?}, want {want:?}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} cases differ:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn normalisation_is_idempotent_on_what_polar_returns() {
        for case in vectors("url-normalization.json") {
            let Some(output) = case["output"].as_str() else {
                continue;
            };
            let kind = if case["field"] == "success_url" {
                UrlKind::Success
            } else {
                UrlKind::Return
            };
            assert_eq!(normalize_url(output, kind).as_deref(), Ok(output));
            assert!(same_url(case["input"].as_str().unwrap(), output, kind));
        }
    }

    #[test]
    fn same_url_spots_real_drift() {
        assert!(same_url(
            "https://EXAMPLE.com",
            "https://example.com/",
            UrlKind::Return
        ));
        assert!(!same_url(
            "https://example.com/a",
            "https://example.com/b",
            UrlKind::Return
        ));
        // The placeholder survives only in success URLs.
        let placeholder = "https://example.com/{CHECKOUT_ID}";
        assert!(same_url(placeholder, placeholder, UrlKind::Success));
        assert!(!same_url(
            placeholder,
            "https://example.com/%7BCHECKOUT_ID%7D",
            UrlKind::Success
        ));
        assert!(same_url(
            placeholder,
            "https://example.com/%7BCHECKOUT_ID%7D",
            UrlKind::Return
        ));
        assert!(!same_url(
            "not a url",
            "https://example.com/",
            UrlKind::Return
        ));
    }

    #[test]
    fn every_metadata_vector_is_accepted_or_rejected_as_polar_does() {
        let cases = vectors("metadata.json");
        assert!(cases.len() >= 20, "vectors file shrank: {}", cases.len());
        for case in cases {
            let input: BTreeMap<String, Value> =
                serde_json::from_value(case["input"].clone()).unwrap();
            let checked =
                metadata_from_json(&input).and_then(|m| validate_metadata(&m).map(|()| m));
            if let Some(output) = case.get("output") {
                let m = checked.unwrap_or_else(|e| panic!("{input:?} was rejected: {e}"));
                let want: BTreeMap<String, Value> = serde_json::from_value(output.clone()).unwrap();
                assert!(
                    same_metadata(&m, &metadata_from_json(&want).unwrap()),
                    "{input:?}"
                );
                // What the operator would send serialises to exactly what Polar stores.
                assert_eq!(&serde_json::to_value(&m).unwrap(), output, "{input:?}");
            } else {
                assert!(case["errors"].is_array(), "{case}");
                assert!(checked.is_err(), "{input:?} was accepted");
            }
        }
    }

    #[test]
    fn integers_and_floats_compare_by_value_strings_never_equal_numbers() {
        let m = |v: MetaValue| Metadata::from([("k".to_owned(), v)]);
        assert!(same_metadata(
            &m(MetaValue::Int(2)),
            &m(MetaValue::Float(2.0))
        ));
        assert!(same_metadata(
            &m(MetaValue::Float(2.0)),
            &m(MetaValue::Int(2))
        ));
        assert!(!same_metadata(
            &m(MetaValue::Int(2)),
            &m(MetaValue::Float(2.5))
        ));
        assert!(!same_metadata(
            &m(MetaValue::Str("1".into())),
            &m(MetaValue::Int(1))
        ));
        assert!(!same_metadata(
            &m(MetaValue::Bool(true)),
            &m(MetaValue::Int(1))
        ));
        assert!(!same_metadata(
            &m(MetaValue::Int(9_007_199_254_740_993)),
            &m(MetaValue::Float(9_007_199_254_740_992.0))
        ));
        assert!(!same_metadata(
            &m(MetaValue::Int(i64::MAX)),
            &m(MetaValue::Float(9.3e18))
        ));
        assert!(!same_metadata(&m(MetaValue::Int(1)), &Metadata::new()));
        assert!(!same_metadata(
            &m(MetaValue::Int(1)),
            &Metadata::from([("j".to_owned(), MetaValue::Int(1))])
        ));
    }

    #[test]
    fn json_conversion_keeps_types() {
        let input: BTreeMap<String, Value> = serde_json::from_str(
            r#"{"i": 2, "f": 2.0, "s": "2", "b": false, "big": 9007199254740993}"#,
        )
        .unwrap();
        let m = metadata_from_json(&input).unwrap();
        assert_eq!(m["i"], MetaValue::Int(2));
        assert_eq!(m["f"], MetaValue::Float(2.0));
        assert_eq!(m["s"], MetaValue::Str("2".into()));
        assert_eq!(m["b"], MetaValue::Bool(false));
        assert_eq!(m["big"], MetaValue::Int(9_007_199_254_740_993));
        let too_big: BTreeMap<String, Value> =
            serde_json::from_str(r#"{"u": 18446744073709551615}"#).unwrap();
        assert!(
            metadata_from_json(&too_big)
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn create_also_refuses_nul() {
        let m = Metadata::from([("v".to_owned(), MetaValue::Str("a\0b".into()))]);
        assert!(validate_metadata(&m).is_ok());
        assert!(
            validate_metadata_for_create(&m)
                .unwrap_err()
                .contains("NUL")
        );
        let key = Metadata::from([("a\0".to_owned(), MetaValue::Int(1))]);
        assert!(validate_metadata_for_create(&key).is_err());
    }

    #[test]
    fn non_finite_floats_are_refused() {
        let m = Metadata::from([("v".to_owned(), MetaValue::Float(f64::INFINITY))]);
        assert!(validate_metadata(&m).is_err());
    }
}
