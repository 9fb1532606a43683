//! Polar's API routes. Each handler follows FastAPI's order: body JSON decoding,
//! then authentication and scopes, then path/query/body validation, then the
//! service.

use hyper::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::Shared;
use crate::auth::Principal;
use crate::errors::{ErrorItem, Loc};
use crate::http::{self, Resp};
use crate::json::{self, J};
use crate::router::RouteKind;
use crate::validate::fields;
use crate::validate::query::{Page, Query};
use crate::versions::Shape;

pub mod catalog;
pub mod links;
pub mod orders;
pub mod redirect;

/// Everything a handler may read about the request.
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    pub principal: Option<&'a Principal>,
    pub query: Query,
    pub raw_query: Option<&'a str>,
    pub param: Option<&'a str>,
    pub body: &'a [u8],
    pub content_type: Option<&'a str>,
    pub host: Option<&'a str>,
    /// How the request's API version writes the JSON that differs.
    pub shape: Shape,
    /// The `list_shift` fault of this request (0 without one).
    pub list_shift: i64,
}

/// Runs a handler; an early answer (401, 403, 404, 422, ...) is an `Err`.
pub fn dispatch(kind: RouteKind, ctx: &Ctx) -> Resp {
    let answer = match kind {
        RouteKind::LinksList => links::list(ctx),
        RouteKind::LinksCreate => links::create(ctx),
        RouteKind::LinkGet => links::get(ctx),
        RouteKind::LinkUpdate => links::update(ctx),
        RouteKind::LinkDelete => links::delete(ctx),
        RouteKind::LinkRedirect => redirect::redirect(ctx),
        RouteKind::CheckoutPage => redirect::checkout_page(ctx),
        RouteKind::ProductsList => catalog::list_products(ctx),
        RouteKind::ProductGet => catalog::get_product(ctx),
        RouteKind::ProductDelete => catalog::delete_product(ctx),
        RouteKind::DiscountsList => catalog::list_discounts(ctx),
        RouteKind::DiscountGet => catalog::get_discount(ctx),
        RouteKind::OrganizationsList => catalog::list_organizations(ctx),
        RouteKind::OrganizationGet => catalog::get_organization(ctx),
        RouteKind::OrdersList => orders::list_orders(ctx),
        RouteKind::OrderGet => orders::get_order(ctx),
    };
    answer.unwrap_or_else(|early| early)
}

/// The body as FastAPI reads it: `None` when empty (or JSON `null`), a 422
/// `json_invalid` when it does not decode. A body that is not declared JSON
/// is validated as raw text, which no model accepts.
pub fn parse_body(ctx: &Ctx) -> Result<Option<J>, Resp> {
    if ctx.body.is_empty() {
        return Ok(None);
    }
    let is_json = ctx.content_type.is_none_or(|ct| {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
    });
    let bytes = ctx.body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(ctx.body);
    // FastAPI answers any decoding failure other than a JSON syntax error with 400.
    let parse_error = || {
        http::json(
            StatusCode::BAD_REQUEST,
            &json!({"detail": "There was an error parsing the body"}),
        )
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(parse_error());
    };
    if !is_json {
        return Ok(Some(J::Str(text.to_string())));
    }
    match json::parse(text) {
        Ok(J::Null) => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(e) if e.too_deep() => Err(parse_error()),
        Err(e) => Err(http::request_validation(&[ErrorItem {
            kind: "json_invalid".into(),
            loc: vec![Loc::from("body"), Loc::from(e.pos)],
            msg: "JSON decode error".into(),
            input: json!({}),
            ctx: Some(json!({ "error": e.msg })),
        }])),
    }
}

/// FastAPI's error for a required body that is absent.
pub fn body_missing() -> ErrorItem {
    ErrorItem::missing(Value::Null).at("body")
}

/// The `{id}` path parameter as a UUID4 (422 at `["path", "id"]`).
pub fn path_id(ctx: &Ctx) -> Result<Uuid, ErrorItem> {
    let raw = ctx.param.unwrap_or_default();
    fields::uuid4_str(raw, Value::String(raw.to_string()))
        .map_err(|e| e.under(&[Loc::from("path"), Loc::from("id")]))
}

/// `{"items": [...], "pagination": {...}}` from pre-rendered items.
pub fn list_response(
    items: &[impl AsRef<serde_json::value::RawValue>],
    total: usize,
    page: Page,
) -> Resp {
    #[derive(serde::Serialize)]
    struct Pagination {
        total_count: usize,
        max_page: usize,
    }
    #[derive(serde::Serialize)]
    struct ListOut<'a> {
        items: Vec<&'a serde_json::value::RawValue>,
        pagination: Pagination,
    }
    http::json(
        StatusCode::OK,
        &ListOut {
            items: items.iter().map(|i| i.as_ref()).collect(),
            pagination: Pagination {
                total_count: total,
                max_page: page.max_page(total),
            },
        },
    )
}
