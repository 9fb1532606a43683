//! [`PolarError`]: one variant per class of failure (REFERENCE.md §6), a bounded
//! [`PolarError::category`] for metrics and events, and the plain-words message of a 422.
//!
//! No variant ever holds the access token: messages come from Polar's response bodies, which
//! [`super::http`] also scrubs of the token before they get here.

use std::time::Duration;

use super::wire::{ErrorBody, LocSegment, ValidationItem};

/// What went wrong talking to Polar.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum PolarError {
    /// 422: Polar rejected the request; the message names the fields, in plain words.
    #[error("Polar rejected the checkout link: {message}")]
    Validation {
        /// One line, every problem with its field.
        message: String,
        /// Which of Polar's layers refused, as its 422 body's `error` key says.
        layer: ValidationLayer,
        /// Each problem: its location (as in `message`) and Polar's words.
        problems: Vec<Problem>,
    },
    /// 401: the token is missing, unknown, revoked or expired.
    #[error("Polar did not accept the access token: {message}")]
    Unauthorized { message: String },
    /// 403: the token lacks a scope, or the user's role lacks a permission.
    #[error("the access token is not allowed to do this: {message}")]
    Forbidden { message: String },
    /// 404: the link does not exist, was deleted, or belongs to another organisation.
    #[error("the checkout link does not exist in Polar")]
    NotFound,
    /// 404 `{"detail":"Not Found"}` without a `Polar-Version` header: Polar refused the API
    /// version the operator sent (REFERENCE.md §1). A configuration error, never "not found".
    #[error(
        "Polar refused the API version {version} (Polar-Version header); set --polar-api-version (Helm value polar.apiVersion) to a version Polar supports"
    )]
    VersionRefused { version: String },
    /// 429: Polar's rate limit was hit; it asks to wait `retry_after`.
    #[error("Polar's rate limit was hit; retry after {}s", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    /// 5xx: Polar failed.
    #[error("Polar answered with server error {status}")]
    Server { status: u16 },
    /// No complete answer within the request timeout.
    #[error("Polar did not answer in time")]
    Timeout,
    /// Connection refused or reset, DNS, TLS, or the body was cut off.
    #[error("could not reach Polar: {message}")]
    Transport { message: String },
    /// A success response whose body is not what Polar's schema promises.
    #[error("Polar's answer could not be read: {message}")]
    Decode { message: String },
    /// Any other status (411, 413, a redirect, ...).
    #[error("Polar answered with unexpected status {status}: {message}")]
    Unexpected { status: u16, message: String },
}

impl PolarError {
    /// A bounded label for metrics and event reasons: `validation`, `credentials`,
    /// `not_found`, `rate_limited`, `server`, `timeout`, `transport`, `decode` or `unexpected`.
    pub fn category(&self) -> &'static str {
        match self {
            PolarError::Validation { .. } => "validation",
            PolarError::Unauthorized { .. } | PolarError::Forbidden { .. } => "credentials",
            PolarError::NotFound => "not_found",
            PolarError::VersionRefused { .. } => "version_refused",
            PolarError::RateLimited { .. } => "rate_limited",
            PolarError::Server { .. } => "server",
            PolarError::Timeout => "timeout",
            PolarError::Transport { .. } => "transport",
            PolarError::Decode { .. } => "decode",
            PolarError::Unexpected { .. } => "unexpected",
        }
    }

    /// Builds the [`PolarError::Validation`] of a 422 body (`{"error": .., "detail": [..]}`),
    /// falling back to a string `detail` or to the raw text when the body has another shape.
    pub fn from_422_body(body: &str) -> PolarError {
        let parsed: Option<ErrorBody> = serde_json::from_str(body).ok();
        let layer = match parsed.as_ref().and_then(|b| b.error.as_deref()) {
            Some("PolarRequestValidationError") => ValidationLayer::Service,
            _ => ValidationLayer::Request,
        };
        let items = parsed
            .as_ref()
            .and_then(ErrorBody::validation_items)
            .unwrap_or_default();
        let problems = relevant(&items)
            .map(|item| Problem {
                location: location(&item.loc),
                message: item.msg.clone(),
            })
            .collect::<Vec<_>>();
        let message = match &parsed {
            Some(_) if !items.is_empty() => validation_message(&items),
            Some(b) => b
                .detail_text()
                .map(str::to_owned)
                .unwrap_or_else(|| excerpt(body)),
            None => excerpt(body),
        };
        PolarError::Validation {
            message,
            layer,
            problems,
        }
    }

    /// A validation error with one problem, for refusals made before calling Polar.
    pub fn invalid(message: impl Into<String>) -> PolarError {
        PolarError::Validation {
            message: message.into(),
            layer: ValidationLayer::Request,
            problems: Vec::new(),
        }
    }
}

/// Which of Polar's layers refused a request with 422.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidationLayer {
    /// `RequestValidationError`: the body, path or query do not fit Polar's schema — the
    /// request itself is wrong, and sending it again will not help.
    Request,
    /// `PolarRequestValidationError`: Polar's service checks against its current state (a
    /// product that does not exist, is archived or a draft; a discount that does not apply; a
    /// seat count the products do not allow). The same request may pass once that state
    /// changes.
    Service,
}

/// One problem of a 422, as Polar words it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where, as in the message: `products[0]`, `discount_id`, `metadata.k (key)`, `path.id`.
    pub location: String,
    /// Polar's message, e.g. `Product is archived.`
    pub message: String,
}

/// The union member Polar's create body is matched against: errors from the deprecated members
/// (`CheckoutLinkCreateProduct`, `CheckoutLinkCreateProductPrice`) are noise for the operator.
const PREFERRED_MEMBER: &str = "CheckoutLinkCreateProducts]";

/// Joins 422 items into one line such as `products[0]: Product is archived.`
///
/// - When POST errors come once per union member, only the `CheckoutLinkCreateProducts`
///   member's errors are kept (so a missing `products` reads `products: Field required`,
///   not three lines about deprecated fields).
/// - Locations lose the leading `body` and the pydantic tags (union member tags such as
///   `function-after[is_complete_configuration(), CheckoutLinkCreateProducts]`, and value-type
///   tags such as `constrained-str`); `path`/`query` stay, since they tell where the problem is.
/// - Identical lines are given once, in Polar's order.
pub fn validation_message(items: &[ValidationItem]) -> String {
    let mut lines: Vec<String> = Vec::new();
    for item in relevant(items) {
        let location = location(&item.loc);
        let line = if location.is_empty() {
            item.msg.clone()
        } else {
            format!("{location}: {}", item.msg)
        };
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    lines.join("; ")
}

/// The items that concern the operator: when POST errors come once per union member, only the
/// `CheckoutLinkCreateProducts` member's.
fn relevant(items: &[ValidationItem]) -> impl Iterator<Item = &ValidationItem> {
    let has_preferred = items
        .iter()
        .any(|i| member_tag(i).is_some_and(|t| t.ends_with(PREFERRED_MEMBER)));
    items.iter().filter(move |item| {
        !(has_preferred && member_tag(item).is_some_and(|t| !t.ends_with(PREFERRED_MEMBER)))
    })
}

/// The union member tag of a body location (the segment right after `body`), if any.
fn member_tag(item: &ValidationItem) -> Option<&str> {
    match item.loc.as_slice() {
        [LocSegment::Name(first), LocSegment::Name(tag), ..]
            if first == "body" && is_member_tag(tag) =>
        {
            Some(tag)
        }
        _ => None,
    }
}

/// Body fields are snake_case; pydantic's member tags are class names or `function-…[…]`.
fn is_member_tag(segment: &str) -> bool {
    segment.starts_with("function-") || segment.starts_with(|c: char| c.is_ascii_uppercase())
}

/// pydantic's tags for the members of `str | int | float | bool` and similar inner unions.
fn is_type_tag(segment: &str) -> bool {
    matches!(
        segment,
        "constrained-str" | "str" | "int" | "float" | "bool" | "list" | "dict"
    ) || segment.starts_with("function-")
        || segment.starts_with("lax-")
        || segment.starts_with("json-or-python[")
}

/// `["body", "<tag>", "products", 0]` → `products[0]`; `["body", "metadata", "k", "[key]"]` →
/// `metadata.k (key)`.
fn location(loc: &[LocSegment]) -> String {
    let mut out = String::new();
    for (i, segment) in loc.iter().enumerate() {
        match segment {
            LocSegment::Index(n) => out.push_str(&format!("[{n}]")),
            LocSegment::Name(name) if i == 0 && name == "body" => {}
            LocSegment::Name(name) if i == 1 && is_member_tag(name) => {}
            LocSegment::Name(name) if is_type_tag(name) => {}
            LocSegment::Name(name) if name == "[key]" => out.push_str(" (key)"),
            LocSegment::Name(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
        }
    }
    out
}

/// At most 200 characters of a body that has no known shape, on one line.
pub(crate) fn excerpt(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one_line.chars().take(200).collect();
    if one_line.chars().count() > 200 {
        out.push('…');
    }
    if out.is_empty() {
        "(empty body)".to_owned()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> String {
        match PolarError::from_422_body(body) {
            PolarError::Validation { message, .. } => message,
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn service_error_names_the_product_index() {
        let body = r#"{"error":"PolarRequestValidationError","detail":[{"type":"value_error","loc":["body","products",0],"msg":"Product is archived.","input":"d2a1b0c9-8e7f-4a6b-9c5d-4e3f2a1b0c9d"}]}"#;
        assert_eq!(message(body), "products[0]: Product is archived.");
    }

    #[test]
    fn the_layer_and_each_problem_are_kept() {
        let service = r#"{"error":"PolarRequestValidationError","detail":[{"type":"value_error","loc":["body","products",1],"msg":"Product is archived.","input":"x"}]}"#;
        match PolarError::from_422_body(service) {
            PolarError::Validation {
                layer, problems, ..
            } => {
                assert_eq!(layer, ValidationLayer::Service);
                assert_eq!(
                    problems,
                    [Problem {
                        location: "products[1]".into(),
                        message: "Product is archived.".into()
                    }]
                );
            }
            other => panic!("{other:?}"),
        }
        let request = r#"{"error":"RequestValidationError","detail":[{"type":"missing","loc":["body","function-after[is_complete_configuration(), CheckoutLinkCreateProductPrice]","product_price_id"],"msg":"Field required","input":{}},{"type":"missing","loc":["body","function-after[is_complete_configuration(), CheckoutLinkCreateProducts]","products"],"msg":"Field required","input":{}}]}"#;
        match PolarError::from_422_body(request) {
            PolarError::Validation {
                layer, problems, ..
            } => {
                assert_eq!(layer, ValidationLayer::Request);
                assert_eq!(problems.len(), 1, "only the Products member: {problems:?}");
                assert_eq!(problems[0].location, "products");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn collected_product_errors_are_all_given() {
        let body = r#"{"error":"PolarRequestValidationError","detail":[
            {"type":"value_error","loc":["body","products",0],"msg":"Product does not exist.","input":"a"},
            {"type":"value_error","loc":["body","products",2],"msg":"Product is a draft.","input":"c"}]}"#;
        assert_eq!(
            message(body),
            "products[0]: Product does not exist.; products[2]: Product is a draft."
        );
    }

    #[test]
    fn union_member_tag_is_stripped() {
        let body = r#"{"error":"RequestValidationError","detail":[{"type":"url_scheme","loc":["body","function-after[is_complete_configuration(), CheckoutLinkCreateProducts]","success_url"],"msg":"URL scheme should be 'http' or 'https'","input":"ftp://example.com/","ctx":{"expected_schemes":"'http' or 'https'"}}]}"#;
        assert_eq!(
            message(body),
            "success_url: URL scheme should be 'http' or 'https'"
        );
    }

    #[test]
    fn missing_products_gives_one_line_not_three() {
        let body = r#"{"error":"RequestValidationError","detail":[
            {"type":"missing","loc":["body","function-after[is_complete_configuration(), CheckoutLinkCreateProductPrice]","product_price_id"],"msg":"Field required","input":{"payment_processor":"stripe"}},
            {"type":"missing","loc":["body","function-after[is_complete_configuration(), CheckoutLinkCreateProduct]","product_id"],"msg":"Field required","input":{"payment_processor":"stripe"}},
            {"type":"missing","loc":["body","function-after[is_complete_configuration(), CheckoutLinkCreateProducts]","products"],"msg":"Field required","input":{"payment_processor":"stripe"}}]}"#;
        assert_eq!(message(body), "products: Field required");
    }

    #[test]
    fn identical_lines_from_several_members_are_deduped() {
        // Members without validators are tagged with the bare class name.
        let body = r#"{"error":"RequestValidationError","detail":[
            {"type":"string_type","loc":["body","CheckoutLinkCreateProductPrice","label"],"msg":"Input should be a valid string","input":1},
            {"type":"string_type","loc":["body","CheckoutLinkCreateProduct","label"],"msg":"Input should be a valid string","input":1},
            {"type":"string_type","loc":["body","CheckoutLinkCreateProductPrice","label"],"msg":"Input should be a valid string","input":1}]}"#;
        assert_eq!(message(body), "label: Input should be a valid string");
    }

    #[test]
    fn model_level_error_has_no_location() {
        let body = r#"{"error":"RequestValidationError","detail":[{"type":"missing","loc":["body"],"msg":"Both trial_interval and trial_interval_count must be set together.","input":{"trial_interval":"month"}}]}"#;
        assert_eq!(
            message(body),
            "Both trial_interval and trial_interval_count must be set together."
        );
    }

    #[test]
    fn metadata_locations_read_naturally() {
        let body = r#"{"error":"RequestValidationError","detail":[
            {"type":"string_too_long","loc":["body","metadata","kkkk","[key]"],"msg":"String should have at most 40 characters","input":"kkkk"},
            {"type":"string_too_short","loc":["body","metadata","v","constrained-str"],"msg":"String should have at least 1 character","input":""}]}"#;
        assert_eq!(
            message(body),
            "metadata.kkkk (key): String should have at most 40 characters; metadata.v: String should have at least 1 character"
        );
    }

    #[test]
    fn path_and_query_locations_are_kept() {
        let body = r#"{"error":"RequestValidationError","detail":[{"type":"uuid_parsing","loc":["path","id"],"msg":"Input should be a valid UUID","input":"x"},{"type":"greater_than","loc":["query","limit"],"msg":"Input should be greater than 0","input":"0"}]}"#;
        assert_eq!(
            message(body),
            "path.id: Input should be a valid UUID; query.limit: Input should be greater than 0"
        );
    }

    #[test]
    fn rejected_input_is_never_shown() {
        let body = r#"{"error":"RequestValidationError","detail":[{"type":"string_type","loc":["body","label"],"msg":"Input should be a valid string","input":"polar_oat_SECRET"}]}"#;
        let err = PolarError::from_422_body(body);
        assert!(!format!("{err} {err:?}").contains("SECRET"));
    }

    #[test]
    fn odd_bodies_still_give_a_message() {
        assert_eq!(message(r#"{"detail":"Something odd"}"#), "Something odd");
        assert_eq!(message("not json\n at all"), "not json at all");
        assert_eq!(message(""), "(empty body)");
        assert!(message(&"x".repeat(1000)).chars().count() <= 201);
    }

    #[test]
    fn categories_are_bounded_labels() {
        let cases = [
            (PolarError::invalid(""), "validation"),
            (
                PolarError::VersionRefused {
                    version: "2026-10".into(),
                },
                "version_refused",
            ),
            (
                PolarError::Unauthorized {
                    message: String::new(),
                },
                "credentials",
            ),
            (
                PolarError::Forbidden {
                    message: String::new(),
                },
                "credentials",
            ),
            (PolarError::NotFound, "not_found"),
            (
                PolarError::RateLimited {
                    retry_after: Duration::from_secs(60),
                },
                "rate_limited",
            ),
            (PolarError::Server { status: 502 }, "server"),
            (PolarError::Timeout, "timeout"),
            (
                PolarError::Transport {
                    message: String::new(),
                },
                "transport",
            ),
            (
                PolarError::Decode {
                    message: String::new(),
                },
                "decode",
            ),
            (
                PolarError::Unexpected {
                    status: 411,
                    message: String::new(),
                },
                "unexpected",
            ),
        ];
        for (err, category) in cases {
            assert_eq!(err.category(), category, "{err:?}");
        }
    }

    #[test]
    fn display_is_plain_words() {
        assert_eq!(
            PolarError::RateLimited {
                retry_after: Duration::from_secs(60)
            }
            .to_string(),
            "Polar's rate limit was hit; retry after 60s"
        );
        assert_eq!(
            PolarError::from_422_body(r#"{"error":"PolarRequestValidationError","detail":[{"type":"value_error","loc":["body","discount_id"],"msg":"Discount does not exist or is not applicable to this product.","input":"x"}]}"#).to_string(),
            "Polar rejected the checkout link: discount_id: Discount does not exist or is not applicable to this product."
        );
    }
}
