//! What Polar's answers mean: a non-2xx reply as a [`PolarError`] (REFERENCE.md §6), the
//! bounded status class for metrics, and the scrubbing of the token out of any message.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};

use super::{DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER, VERSION_HEADER};
use crate::polar::PolarError;
use crate::polar::error::excerpt;
use crate::polar::wire::ErrorBody;

/// The error a non-2xx reply stands for.
pub(super) fn error_of(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    api_version: &str,
) -> PolarError {
    let text = String::from_utf8_lossy(body);
    let body: ErrorBody = serde_json::from_str(&text).unwrap_or_default();
    match status.as_u16() {
        401 => PolarError::Unauthorized {
            message: described(&body, &text),
        },
        403 => PolarError::Forbidden {
            message: forbidden_message(headers, &body, &text),
        },
        // Only Polar's own answer for a missing object means "not found" (REFERENCE.md §6).
        404 if body.error.as_deref() == Some("ResourceNotFound") => PolarError::NotFound,
        // A version Polar does not serve is refused before anything else, with Starlette's
        // plain 404 and no `Polar-Version` echo (REFERENCE.md §1).
        404 if !headers.contains_key(VERSION_HEADER)
            && body.error.is_none()
            && body.detail_text() == Some("Not Found") =>
        {
            PolarError::VersionRefused {
                version: api_version.to_owned(),
            }
        }
        // Any other 404 (a route Polar does not have, a proxy's page) is no proof that a
        // link is gone: it must never lead to a recreate or count as a delete.
        422 => PolarError::from_422_body(&text),
        429 => PolarError::RateLimited {
            retry_after: retry_after(headers),
        },
        status @ 500..=599 => PolarError::Server { status },
        status => PolarError::Unexpected {
            status,
            message: described(&body, &text),
        },
    }
}

/// Replaces the token in any message with `***`.
pub(super) fn scrub(token: &str, error: PolarError) -> PolarError {
    if token.is_empty() {
        return error;
    }
    let clean = |m: String| m.replace(token, "***");
    match error {
        PolarError::Validation {
            message,
            layer,
            problems,
        } => PolarError::Validation {
            message: clean(message),
            layer,
            problems: problems
                .into_iter()
                .map(|p| crate::polar::error::Problem {
                    location: clean(p.location),
                    message: clean(p.message),
                })
                .collect(),
        },
        PolarError::Unauthorized { message } => PolarError::Unauthorized {
            message: clean(message),
        },
        PolarError::Forbidden { message } => PolarError::Forbidden {
            message: clean(message),
        },
        PolarError::Transport { message } => PolarError::Transport {
            message: clean(message),
        },
        PolarError::Decode { message } => PolarError::Decode {
            message: clean(message),
        },
        PolarError::Unexpected { status, message } => PolarError::Unexpected {
            status,
            message: clean(message),
        },
        other => other,
    }
}

/// `2xx`, `3xx`, `4xx`, `5xx` or `429`: a bounded label.
pub(super) fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        429 => "429",
        200..=299 => "2xx",
        300..=399 => "3xx",
        500..=599 => "5xx",
        _ => "4xx",
    }
}

/// `Retry-After` in seconds; [`DEFAULT_RETRY_AFTER`] when missing or not a number of seconds.
pub(super) fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, |s| {
            Duration::from_secs(s).min(MAX_RETRY_AFTER)
        })
}

/// `error: description` from either JSON error shape, or an excerpt of a body of any other kind.
fn described(body: &ErrorBody, text: &str) -> String {
    let description = body.error_description.as_deref().or(body.detail_text());
    match (body.error.as_deref(), description) {
        (Some(error), Some(description)) if error == description => error.to_owned(),
        (Some(error), Some(description)) => format!("{error}: {description}"),
        (Some(only), None) | (None, Some(only)) => only.to_owned(),
        (None, None) => excerpt(text),
    }
}

/// For `insufficient_scope`, names the scope(s) Polar asks for in `WWW-Authenticate`.
fn forbidden_message(headers: &HeaderMap, body: &ErrorBody, text: &str) -> String {
    let described = described(body, text);
    if body.error.as_deref() != Some("insufficient_scope") {
        return described;
    }
    let mut scopes: Vec<&str> = headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split("scope=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .flat_map(str::split_whitespace)
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    match scopes.as_slice() {
        [] => described,
        [one] => format!("the token lacks the scope {one} ({described})"),
        many => format!(
            "the token lacks one of the scopes {} ({described})",
            many.join(", ")
        ),
    }
}

/// An error and its sources on one line (reqwest's own text alone says little).
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
