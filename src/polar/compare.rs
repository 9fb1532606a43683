//! Polar-aware comparison, the one home of "do these two values mean the same to Polar":
//! what Polar stores for a value the operator sends, so that a settled link never gets a PATCH
//! (DESIGN.md §4). The field table in [`super::fields`] names one of these per field.
//!
//! Polar validates with pydantic 2.13.4, whose `HttpUrl` is built on the same `url` crate
//! used here (WHATWG parsing), so [`normalize_url`] reproduces it by calling that parser with
//! pydantic's checks around it. `polar-api/vectors/url-normalization.json` pins the behaviour:
//! the tests run every vector through the very functions the field table uses.

use super::{MetaValue, Metadata, Trial};

/// pydantic's `max_length` for Polar's URL fields, counted on the input before parsing.
pub const MAX_URL_LENGTH: usize = 2083;

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

/// Plain equality, for fields Polar stores exactly as sent (labels, booleans, counts).
pub fn equal<T: PartialEq>(a: &T, b: &T) -> bool {
    a == b
}

/// Ids compare case-insensitively (Polar returns UUIDs lower-cased).
pub fn same_id(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

/// Product lists compare in order (the order is the checkout page's), ids case-insensitively.
#[allow(clippy::ptr_arg)] // the field table passes `&LinkFields::products`
pub fn same_ids(a: &Vec<String>, b: &Vec<String>) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.eq_ignore_ascii_case(b))
}

/// A success URL as written in a spec against what Polar stores.
pub fn same_success_url(desired: &Option<String>, observed: &Option<String>) -> bool {
    same_optional_url(desired, observed, UrlKind::Success)
}

/// A return URL as written in a spec against what Polar stores.
pub fn same_return_url(desired: &Option<String>, observed: &Option<String>) -> bool {
    same_optional_url(desired, observed, UrlKind::Return)
}

fn same_optional_url(desired: &Option<String>, observed: &Option<String>, kind: UrlKind) -> bool {
    match (desired, observed) {
        (None, None) => true,
        (Some(d), Some(o)) => same_url(d, o, kind),
        _ => false,
    }
}

/// Trials compare by count and interval (case-insensitively).
pub fn same_trial(a: &Option<Trial>, b: &Option<Trial>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.count == b.count && a.interval.eq_ignore_ascii_case(&b.interval),
        _ => false,
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::polar::test_vectors as vectors;

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
            let (input, output) = (
                Some(case["input"].as_str().unwrap().to_owned()),
                Some(output.to_owned()),
            );
            // The comparison the field table uses for this field.
            let same = match kind {
                UrlKind::Success => same_success_url(&input, &output),
                UrlKind::Return => same_return_url(&input, &output),
            };
            assert!(same, "{input:?} should compare equal to {output:?}");
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
    fn ids_products_and_trials_compare_as_polar_returns_them() {
        let id = |s: &str| Some(s.to_owned());
        assert!(same_id(&id("ABC"), &id("abc")));
        assert!(!same_id(&id("abc"), &None));
        assert!(same_id(&None, &None));
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(same_ids(&list(&["A", "b"]), &list(&["a", "B"])));
        assert!(
            !same_ids(&list(&["a", "b"]), &list(&["b", "a"])),
            "order matters"
        );
        assert!(!same_ids(&list(&["a"]), &list(&["a", "b"])));
        let trial = |i: &str, c| {
            Some(Trial {
                interval: i.into(),
                count: c,
            })
        };
        assert!(same_trial(&trial("Month", 1), &trial("month", 1)));
        assert!(!same_trial(&trial("month", 1), &trial("month", 2)));
        assert!(!same_trial(&trial("month", 1), &None));
        assert!(same_success_url(&None, &None));
        assert!(!same_return_url(
            &Some("https://example.com/".into()),
            &None
        ));
    }
}
