//! The filters Polar runs in SQL, done the same way in memory: `metadata[key]`
//! (`polar/kit/metadata.py`), and `LIKE` / `ILIKE` substring queries.

use serde_json::{Number, Value};

use crate::validate::query::Query;

/// `metadata[key]=value` pairs of a query string, grouped by key in the order
/// the keys first appear. A parameter counts when its name *starts* with
/// `metadata[`, one or more characters other than `]`, and `]` (Python's
/// `re.match(r"metadata\[([^\]]+)\]", name)`: anything after the `]` is
/// ignored). Values are not validated: Polar reads them raw, so a filter never
/// answers 422.
pub fn metadata_query(q: &Query) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in q.pairs() {
        let Some(key) = metadata_key(name) else {
            continue;
        };
        match out.iter_mut().find(|(k, _)| k == key) {
            Some((_, values)) => values.push(value.clone()),
            None => out.push((key.to_string(), vec![value.clone()])),
        }
    }
    out
}

fn metadata_key(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("metadata[")?;
    let end = rest.find(']')?;
    (end > 0).then(|| &rest[..end])
}

/// Polar's clause: for each key, the stored value as text
/// (`user_metadata ->> key`, see [`pg_text`]; `lookup` gives it) equals one
/// of the key's values (OR); all keys must match (AND). An absent key is SQL
/// NULL and matches nothing.
pub fn metadata_matches(
    filter: &[(String, Vec<String>)],
    lookup: impl Fn(&str) -> Option<String>,
) -> bool {
    filter
        .iter()
        .all(|(key, values)| lookup(key).is_some_and(|text| values.contains(&text)))
}

/// A JSONB value as Postgres' `->>` writes it: strings raw, `true`/`false`,
/// numbers as `numeric` prints them; `null` (and containers, which metadata
/// cannot hold) give no text here.
pub fn pg_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(number_text(n)),
        _ => None,
    }
}

/// An integer prints as is. A float reaches Postgres as Python's `repr`
/// writes it: positional (`0.25`, `5.0`) when its exponent is in -4..16,
/// otherwise scientific (`1e+20`, `1.5e-07`); `numeric` keeps the scale of
/// what it parsed and prints positionally (`5.0`, `100000000000000000000`,
/// `0.00000015`).
fn number_text(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let Some(f) = n.as_f64() else {
        return n.to_string();
    };
    let (negative, digits, exp) = shortest_digits(f);
    // value = 0.d1d2d3... * 10^exp; the leading digit's power is exp - 1.
    let lead = exp - 1;
    let positional = (-4..16).contains(&lead);
    // Digits after the decimal point that the written form has.
    let frac = (digits.len() as i32 - exp).max(0);
    let scale = if positional { frac.max(1) } else { frac };
    let mut s = String::new();
    if negative {
        s.push('-');
    }
    s.push_str(&fixed(&digits, exp, scale as usize));
    s
}

/// The shortest round-trip digits of `f` (no leading or trailing zeros) and
/// the exponent `e` with `f = 0.DIGITS * 10^e`.
fn shortest_digits(f: f64) -> (bool, String, i32) {
    let negative = f.is_sign_negative() && f != 0.0;
    if f == 0.0 {
        return (negative, "0".into(), 1);
    }
    // `{:e}` prints the shortest round-trip form, as `1.5e-7`.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    (negative, digits.to_string(), exp + 1)
}

/// `0.DIGITS * 10^exp` written with `scale` digits after the point.
fn fixed(digits: &str, exp: i32, scale: usize) -> String {
    let len = digits.len() as i32;
    let int_part: String = if exp <= 0 {
        "0".into()
    } else if exp >= len {
        format!("{digits}{}", "0".repeat((exp - len) as usize))
    } else {
        digits[..exp as usize].to_string()
    };
    let mut frac: String = if exp >= len {
        String::new()
    } else if exp <= 0 {
        format!("{}{digits}", "0".repeat((-exp) as usize))
    } else {
        digits[exp as usize..].to_string()
    };
    while frac.len() < scale {
        frac.push('0');
    }
    if scale == 0 {
        int_part
    } else {
        format!("{int_part}.{frac}")
    }
}

/// Postgres' `text LIKE '%' || q || '%'` (`ILIKE` when `case_insensitive`):
/// `_` in `q` matches one character, `%` any run, `\` makes the next one
/// literal, exactly as Polar's unescaped `f"%{query}%"` pattern does.
pub fn contains_like(text: &str, q: &str, case_insensitive: bool) -> bool {
    let fold = |c: char| -> Vec<char> {
        if case_insensitive {
            c.to_lowercase().collect()
        } else {
            vec![c]
        }
    };
    let mut pattern = vec![Token::Any];
    let mut chars = q.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => pattern.push(Token::Any),
            '_' => pattern.push(Token::One),
            '\\' => match chars.next() {
                Some(next) => pattern.extend(fold(next).into_iter().map(Token::Lit)),
                // `%q%` ends with `%`, so a trailing `\` escapes it: the
                // pattern then ends with a literal `%`.
                None => {
                    pattern.push(Token::Lit('%'));
                    return like(&text_chars(text, &fold), &pattern);
                }
            },
            c => pattern.extend(fold(c).into_iter().map(Token::Lit)),
        }
    }
    pattern.push(Token::Any);
    like(&text_chars(text, &fold), &pattern)
}

fn text_chars(text: &str, fold: &impl Fn(char) -> Vec<char>) -> Vec<char> {
    text.chars().flat_map(fold).collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Any,
    One,
    Lit(char),
}

/// Wildcard matching with backtracking to the last `%`.
fn like(text: &[char], pattern: &[Token]) -> bool {
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Token::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Token::One) => {
                t += 1;
                p += 1;
            }
            Some(Token::Lit(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|t| *t == Token::Any)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_keys_follow_polars_pattern() {
        let q = Query::parse(Some(
            "metadata[sku]=a&metadata%5Bsku%5D=b&metadata[n]x=5&metadata[]=z&meta[k]=v&metadata[a]b]=c",
        ));
        assert_eq!(
            metadata_query(&q),
            vec![
                ("sku".to_string(), vec!["a".to_string(), "b".to_string()]),
                ("n".to_string(), vec!["5".to_string()]),
                ("a".to_string(), vec!["c".to_string()]),
            ]
        );
    }

    #[test]
    fn values_compare_as_postgres_text() {
        for (v, text) in [
            (json!("x"), "x"),
            (json!(5), "5"),
            (json!(-3), "-3"),
            (json!(true), "true"),
            (json!(0.25), "0.25"),
            (json!(5.0), "5.0"),
            (json!(-1.5), "-1.5"),
            (json!(1e15), "1000000000000000.0"),
            (json!(1e16), "10000000000000000"),
            (json!(1.5e20), "150000000000000000000"),
            (json!(0.0001), "0.0001"),
            (json!(1.5e-7), "0.00000015"),
            (json!(0.0), "0.0"),
        ] {
            assert_eq!(pg_text(&v).as_deref(), Some(text), "{v}");
        }
        assert_eq!(pg_text(&Value::Null), None);
    }

    #[test]
    fn like_has_wildcards_and_escapes() {
        assert!(contains_like("Pro Monthly", "Pro", false));
        assert!(!contains_like("Pro Monthly", "pro", false));
        assert!(contains_like("Pro Monthly", "pro", true));
        assert!(contains_like("Pro Monthly", "P_o", false));
        assert!(contains_like("Pro Monthly", "o%ly", false));
        assert!(!contains_like("Pro Monthly", "o\\%ly", false));
        assert!(contains_like("100% off", "0\\% o", false));
        assert!(contains_like("a_b", "a\\_b", false));
        assert!(!contains_like("axb", "a\\_b", false));
        assert!(contains_like("ends with abc%", "abc\\", false));
        assert!(!contains_like("abc% and more", "abc\\", false));
        assert!(contains_like("anything", "", false));
    }
}
