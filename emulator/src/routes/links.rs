//! `/v1/checkout-links/` and `/v1/checkout-links/{id}`.

use chrono::Utc;
use hyper::StatusCode;
use uuid::Uuid;

use crate::auth::{require, scopes};
use crate::errors::{ErrorItem, Loc};
use crate::http::{self, Resp};
use crate::listing::LinkFilter;
use crate::routes::{Ctx, body_missing, list_response, parse_body, path_id};
use crate::state::Store;
use crate::sync::Locked;
use crate::validate::create::validate_create;
use crate::validate::query::{self, uuid_list};
use crate::validate::update::validate_update;

const SORT_PROPERTIES: &[&str] = &["created_at", "label", "success_url", "allow_discount_codes"];

pub fn list(ctx: &Ctx) -> Result<Resp, Resp> {
    let who = require(ctx.principal, scopes::LINKS_READ)?;
    let mut errors = Vec::new();
    let page = query::pagination(&ctx.query, &mut errors);
    let sorting = query::sorting(&ctx.query, SORT_PROPERTIES, &["created_at"], &mut errors);
    let organizations = uuid_list(&ctx.query, "organization_id", &mut errors);
    let products = uuid_list(&ctx.query, "product_id", &mut errors);
    if !errors.is_empty() {
        return Err(http::request_validation(&errors));
    }
    let filter = LinkFilter {
        organizations,
        products,
        sorting,
        shift: ctx.list_shift,
    };
    let store = ctx.shared.store.locked();
    let (rows, total) = store.list_links(who, &filter, page);
    let items: Vec<_> = rows
        .iter()
        .map(|(id, products)| store.render_link(&store.links[id], products, ctx.shape, false))
        .collect();
    Ok(list_response(&items, total, page))
}

/// The link as the write left it.
fn written(ctx: &Ctx, store: &Store, id: Uuid, status: StatusCode) -> Resp {
    let link = &store.links[&id];
    let raw = store.render_link(link, &link.products, ctx.shape, false);
    http::json_bytes(status, raw.get().as_bytes().to_vec())
}

pub fn create(ctx: &Ctx) -> Result<Resp, Resp> {
    let body = parse_body(ctx)?;
    let who = require(ctx.principal, scopes::LINKS_WRITE)?;
    let body = body.ok_or_else(|| http::request_validation(&[body_missing()]))?;
    let input = validate_create(&body).map_err(|errors| http::request_validation(&errors))?;
    let mut store = ctx.shared.store.locked();
    let id = store
        .create_link(who, input, Utc::now())
        .map_err(|e| e.response())?;
    Ok(written(ctx, &store, id, StatusCode::CREATED))
}

pub fn get(ctx: &Ctx) -> Result<Resp, Resp> {
    let who = require(ctx.principal, scopes::LINKS_READ)?;
    let id = path_id(ctx).map_err(|e| http::request_validation(&[e]))?;
    let store = ctx.shared.store.locked();
    let link = store
        .visible_link(who, id)
        .ok_or_else(http::resource_not_found)?;
    let raw = store.render_link(link, &link.products, ctx.shape, false);
    Ok(http::json_bytes(
        StatusCode::OK,
        raw.get().as_bytes().to_vec(),
    ))
}

pub fn update(ctx: &Ctx) -> Result<Resp, Resp> {
    let body = parse_body(ctx)?;
    let who = require(ctx.principal, scopes::LINKS_WRITE)?;
    // Path and body errors are reported together, path first.
    let mut errors: Vec<ErrorItem> = Vec::new();
    let id = path_id(ctx).map_err(|e| errors.push(e)).ok();
    let input = match &body {
        None => {
            errors.push(body_missing());
            None
        }
        Some(body) => validate_update(body)
            .map_err(|errs| errors.extend(errs.into_iter().map(|e| e.under(&[Loc::from("body")]))))
            .ok(),
    };
    let (Some(id), Some(input)) = (id, input) else {
        return Err(http::request_validation(&errors));
    };
    let mut store = ctx.shared.store.locked();
    store
        .update_link(who, id, input, Utc::now())
        .map_err(|e| e.response())?;
    Ok(written(ctx, &store, id, StatusCode::OK))
}

pub fn delete(ctx: &Ctx) -> Result<Resp, Resp> {
    let who = require(ctx.principal, scopes::LINKS_WRITE)?;
    let id = path_id(ctx).map_err(|e| http::request_validation(&[e]))?;
    let mut store = ctx.shared.store.locked();
    store
        .delete_link(who, id, Utc::now())
        .map_err(|e| e.response())?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}
