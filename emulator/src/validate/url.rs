//! `success_url` / `return_url`: pydantic's `HttpUrl` (WHATWG parsing through
//! the same `url` crate pydantic-core uses), plus Polar's `{CHECKOUT_ID}` rule.

use serde_json::json;
use url::Url;

use crate::errors::ErrorItem;
use crate::json::J;
use crate::validate::fields::NUL_MESSAGE;

pub const MAX_URL_LENGTH: usize = 2083;
const CHECKOUT_ID_ESCAPED: &str = "%7BCHECKOUT_ID%7D";
const CHECKOUT_ID: &str = "{CHECKOUT_ID}";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlField {
    /// `success_url`: `%7BCHECKOUT_ID%7D` is turned back into `{CHECKOUT_ID}`.
    Success,
    Return,
}

/// Validates and normalises a URL the way Polar stores it.
pub fn http_url(v: &J, field: UrlField, reject_nul: bool) -> Result<String, ErrorItem> {
    let J::Str(s) = v else {
        return Err(ErrorItem::new(
            "url_type",
            "URL input should be a string or URL",
            v.to_value(),
        ));
    };
    if reject_nul && s.contains('\0') {
        return Err(ErrorItem::new("value_error", NUL_MESSAGE, v.to_value()));
    }
    normalize(s, field)
        .map_err(|(kind, msg, ctx)| ErrorItem::new(kind, msg, v.to_value()).with_ctx(ctx))
}

type UrlError = (&'static str, String, serde_json::Value);

/// The normalised URL, or pydantic's error type, message and context.
pub fn normalize(s: &str, field: UrlField) -> Result<String, UrlError> {
    // pydantic-core checks the length of the input, in bytes, before parsing.
    if s.len() > MAX_URL_LENGTH {
        return Err((
            "url_too_long",
            format!("URL should have at most {MAX_URL_LENGTH} characters"),
            json!({ "max_length": MAX_URL_LENGTH }),
        ));
    }
    let parsing = |error: String| {
        (
            "url_parsing",
            format!("Input should be a valid URL, {error}"),
            json!({ "error": error }),
        )
    };
    if s.is_empty() {
        return Err(parsing("input is empty".into()));
    }
    let url = Url::parse(s).map_err(|e| parsing(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err((
            "url_scheme",
            "URL scheme should be 'http' or 'https'".into(),
            json!({ "expected_schemes": "'http' or 'https'" }),
        ));
    }
    if url.host().is_none() {
        return Err(parsing("empty host".into()));
    }
    let out = url.as_str();
    Ok(match field {
        UrlField::Success => out.replace(CHECKOUT_ID_ESCAPED, CHECKOUT_ID),
        UrlField::Return => out.to_string(),
    })
}
