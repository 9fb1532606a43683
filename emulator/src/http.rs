//! Responses exactly as Polar sends them: JSON bodies, error shapes and headers.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::json;

use crate::errors::{ErrorItem, Layer, validation_body};

pub type Resp = Response<Full<Bytes>>;

pub const INVALID_TOKEN_DESCRIPTION: &str =
    "The access token provided is expired, revoked, malformed, or invalid for other reasons.";
pub const INSUFFICIENT_SCOPE_DESCRIPTION: &str =
    "The request requires higher privileges than provided by the access token.";
pub const MAX_BODY_SIZE: u64 = 10 * 1024 * 1024;

/// `{"error": ..., "detail": ...}` with Polar's key order.
#[derive(Serialize)]
struct ErrorDetail<'a> {
    error: &'a str,
    detail: &'a str,
}

#[derive(Serialize)]
struct OAuthError<'a> {
    error: &'a str,
    error_description: &'a str,
}

fn error_detail(status: StatusCode, error: &str, detail: &str) -> Resp {
    json(status, &ErrorDetail { error, detail })
}

pub fn bytes(
    status: StatusCode,
    content_type: Option<&'static str>,
    body: impl Into<Bytes>,
) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Some(ct) = content_type {
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    r
}

pub fn json_bytes(status: StatusCode, body: Vec<u8>) -> Resp {
    bytes(status, Some("application/json"), body)
}

pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Resp {
    json_bytes(
        status,
        serde_json::to_vec(value).expect("JSON body serialises"),
    )
}

pub fn empty(status: StatusCode) -> Resp {
    bytes(status, None, Bytes::new())
}

/// Starlette's unhandled-error answer.
pub fn internal_error() -> Resp {
    bytes(
        StatusCode::INTERNAL_SERVER_ERROR,
        Some("text/plain; charset=utf-8"),
        "Internal Server Error",
    )
}

/// `ResourceNotFound`, for an id that does not exist or is not the caller's.
pub fn resource_not_found() -> Resp {
    error_detail(StatusCode::NOT_FOUND, "ResourceNotFound", "Not found")
}

/// `NotPermitted` (403): the token may not act as asked.
pub fn not_permitted(detail: &str) -> Resp {
    error_detail(StatusCode::FORBIDDEN, "NotPermitted", detail)
}

/// `ProductNotDeletable` (409).
pub fn product_not_deletable() -> Resp {
    error_detail(
        StatusCode::CONFLICT,
        "ProductNotDeletable",
        "Product is in use and cannot be deleted.",
    )
}

/// Starlette's answer for a path no route serves.
pub fn route_not_found() -> Resp {
    json(StatusCode::NOT_FOUND, &json!({"detail": "Not Found"}))
}

pub fn method_not_allowed(allow: &str) -> Resp {
    let mut r = json(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({"detail": "Method Not Allowed"}),
    );
    if let Ok(v) = HeaderValue::from_str(allow) {
        r.headers_mut().insert(header::ALLOW, v);
    }
    r
}

pub fn redirect(status: StatusCode, location: &str) -> Resp {
    let mut r = empty(status);
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

pub fn validation(layer: Layer, items: &[ErrorItem]) -> Resp {
    json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &validation_body(layer, items),
    )
}

pub fn request_validation(items: &[ErrorItem]) -> Resp {
    validation(Layer::Request, items)
}

/// No credentials (or a header that is not `Bearer <token>`).
pub fn unauthorized() -> Resp {
    let mut r = error_detail(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"polar\""),
    );
    r
}

fn oauth_error(
    status: StatusCode,
    error: &str,
    description: &str,
    www_authenticate: String,
) -> Resp {
    let mut r = json(
        status,
        &OAuthError {
            error,
            error_description: description,
        },
    );
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&www_authenticate) {
        h.insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// An unknown, expired or malformed token (authlib's `InvalidTokenError`).
pub fn invalid_token() -> Resp {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        INVALID_TOKEN_DESCRIPTION,
        format!(
            "Bearer realm=\"polar\", error=\"invalid_token\", error_description=\"{INVALID_TOKEN_DESCRIPTION}\""
        ),
    )
}

/// A valid token without any of the required scopes.
pub fn insufficient_scope(required: &[&str]) -> Resp {
    oauth_error(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        INSUFFICIENT_SCOPE_DESCRIPTION,
        format!(
            "Bearer realm=\"polar\", scope=\"{}\", error=\"insufficient_scope\", error_description=\"{INSUFFICIENT_SCOPE_DESCRIPTION}\"",
            required.join(" ")
        ),
    )
}

pub fn length_required() -> Resp {
    error_detail(
        StatusCode::LENGTH_REQUIRED,
        "LengthRequired",
        "A Content-Length header is required.",
    )
}

pub fn body_too_large() -> Resp {
    let detail =
        format!("Request body exceeded the maximum allowed size of {MAX_BODY_SIZE} bytes.");
    error_detail(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestBodyTooLarge",
        &detail,
    )
}

/// asgi-ratelimit's answer: empty body, `retry-after` = the window in seconds.
pub fn rate_limited(retry_after_secs: u64) -> Resp {
    let mut r = empty(StatusCode::TOO_MANY_REQUESTS);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    r
}

/// What an injected fault answers with: the status and its reason phrase.
pub fn fault_status(status: u16) -> Resp {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        return internal_error();
    }
    let reason = status.canonical_reason().unwrap_or("Error");
    bytes(status, Some("text/plain; charset=utf-8"), reason)
}
