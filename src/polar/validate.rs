//! Polar's own limits on the values a checkout link carries, checked before anything is sent
//! so that invalid input never reaches Polar: metadata as a Kubernetes spec holds it (JSON)
//! turned into typed [`Metadata`], and the rules of `server/polar/kit/metadata.py`.
//! `polar-api/vectors/metadata.json` pins the behaviour (see the tests).

use std::collections::BTreeMap;

use super::{MetaValue, Metadata};

/// Polar's metadata limits (`server/polar/kit/metadata.py`).
pub const MAX_METADATA_KEYS: usize = 50;
/// Longest metadata key, in characters.
pub const MAX_METADATA_KEY_CHARS: usize = 40;
/// Longest metadata string value, in characters.
pub const MAX_METADATA_VALUE_CHARS: usize = 500;

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
    use crate::polar::compare::same_metadata;
    use serde_json::Value;

    use crate::polar::test_vectors as vectors;

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
