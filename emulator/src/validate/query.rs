//! Query parameters of the list endpoints: pagination, sorting and filters,
//! with FastAPI's error locations (`["query", name, (index)]`).

use serde_json::{Value, json};
use uuid::Uuid;

use crate::errors::{ErrorItem, Loc};
use crate::validate::fields::{self, bool_from_str, int_from_str};

/// Decoded `name=value` pairs in request order (`+` is a space, as Starlette does).
#[derive(Debug, Clone, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        Query(
            url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// A scalar parameter: the last value wins, as with Starlette's `get`.
    pub fn last(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: usize,
    pub limit: usize,
}

impl Page {
    pub fn offset(&self) -> usize {
        self.page.saturating_sub(1).saturating_mul(self.limit)
    }

    /// `ceil(total / limit)`, 0 when empty.
    pub fn max_page(&self, total: usize) -> usize {
        total.div_ceil(self.limit)
    }
}

pub const MAX_LIMIT: usize = 100;

fn at_query(e: ErrorItem, name: &str) -> ErrorItem {
    e.under(&[Loc::from("query"), Loc::from(name)])
}

fn positive(q: &Query, name: &str, default: usize, errors: &mut Vec<ErrorItem>) -> usize {
    let Some(raw) = q.last(name) else {
        return default;
    };
    let input = Value::String(raw.to_string());
    match int_from_str(raw) {
        None => {
            errors.push(at_query(
                ErrorItem::new(
                    "int_parsing",
                    "Input should be a valid integer, unable to parse string as an integer",
                    input,
                ),
                name,
            ));
            default
        }
        Some(n) if n <= 0 => {
            errors.push(at_query(
                ErrorItem::new("greater_than", "Input should be greater than 0", input)
                    .with_ctx(json!({ "gt": 0 })),
                name,
            ));
            default
        }
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    }
}

/// `page` (default 1) and `limit` (default 10, clamped to 100).
pub fn pagination(q: &Query, errors: &mut Vec<ErrorItem>) -> Page {
    let page = positive(q, "page", 1, errors);
    let limit = positive(q, "limit", 10, errors).min(MAX_LIMIT);
    Page { page, limit }
}

/// `sorting`: repeated enum values; a `-` prefix sorts descending.
pub fn sorting(
    q: &Query,
    properties: &[&str],
    default: &[&str],
    errors: &mut Vec<ErrorItem>,
) -> Vec<(String, bool)> {
    let values = q.all("sorting");
    let values: Vec<&str> = if values.is_empty() {
        default.to_vec()
    } else {
        values
    };
    let allowed: Vec<String> = properties
        .iter()
        .flat_map(|p| [p.to_string(), format!("-{p}")])
        .collect();
    let allowed_refs: Vec<&str> = allowed.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if allowed_refs.contains(v) {
            match v.strip_prefix('-') {
                Some(p) => out.push((p.to_string(), true)),
                None => out.push((v.to_string(), false)),
            }
        } else {
            let expected = fields::expected_list(&allowed_refs);
            errors.push(
                ErrorItem::new(
                    "enum",
                    format!("Input should be {expected}"),
                    Value::String(v.to_string()),
                )
                .with_ctx(json!({ "expected": expected }))
                .under(&[Loc::from("query"), Loc::from("sorting"), Loc::from(i)]),
            );
        }
    }
    out
}

/// A repeatable UUID4 filter; `None` when the parameter is absent.
pub fn uuid_list(q: &Query, name: &str, errors: &mut Vec<ErrorItem>) -> Option<Vec<Uuid>> {
    let values = q.all(name);
    if values.is_empty() {
        return None;
    }
    let mut ids = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match fields::uuid4_str(v, Value::String(v.to_string())) {
            Ok(id) => ids.push(id),
            Err(e) => errors.push(e.under(&[Loc::from("query"), Loc::from(name), Loc::from(i)])),
        }
    }
    Some(ids)
}

pub fn opt_bool(q: &Query, name: &str, errors: &mut Vec<ErrorItem>) -> Option<bool> {
    let raw = q.last(name)?;
    match bool_from_str(raw) {
        Some(b) => Some(b),
        None => {
            errors.push(at_query(
                ErrorItem::new(
                    "bool_parsing",
                    "Input should be a valid boolean, unable to interpret input",
                    Value::String(raw.to_string()),
                ),
                name,
            ));
            None
        }
    }
}

/// A `datetime | None` parameter (the last value), as pydantic parses it.
pub fn opt_datetime(
    q: &Query,
    name: &str,
    errors: &mut Vec<ErrorItem>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let raw = q.last(name)?;
    match super::datetime::parse(raw) {
        Ok(t) => Some(t),
        Err(why) => {
            errors.push(at_query(
                ErrorItem::new(
                    "datetime_from_date_parsing",
                    format!("Input should be a valid datetime or date, {why}"),
                    Value::String(raw.to_string()),
                )
                .with_ctx(json!({ "error": why })),
                name,
            ));
            None
        }
    }
}

/// A repeatable string filter (such as orders' `external_customer_id`).
pub fn str_list(q: &Query, name: &str) -> Option<Vec<String>> {
    let values = q.all(name);
    (!values.is_empty()).then(|| values.into_iter().map(str::to_string).collect())
}

/// A repeatable enum filter (such as products' `visibility`).
pub fn enum_list(
    q: &Query,
    name: &str,
    allowed: &[&str],
    errors: &mut Vec<ErrorItem>,
) -> Option<Vec<String>> {
    let values = q.all(name);
    if values.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match fields::enumeration(&crate::json::J::Str(v.to_string()), allowed) {
            Ok(s) => out.push(s),
            Err(e) => errors.push(e.under(&[Loc::from("query"), Loc::from(name), Loc::from(i)])),
        }
    }
    Some(out)
}
