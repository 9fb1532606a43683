//! `/v1/checkout-links/` and `/v1/checkout-links/{id}`.

use chrono::Utc;
use hyper::StatusCode;

use crate::auth::{require, scopes};
use crate::errors::{ErrorItem, Loc};
use crate::http::{self, Resp};
use crate::listing::LinkFilter;
use crate::routes::{Ctx, body_missing, list_response, parse_body, path_id};
use crate::validate::create::validate_create;
use crate::validate::query::{self, uuid_list};
use crate::validate::update::validate_update;

const SORT_PROPERTIES: &[&str] = &["created_at", "label", "success_url", "allow_discount_codes"];

pub fn list(ctx: &Ctx) -> Resp {
    let who = match require(ctx.principal, scopes::LINKS_READ) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut errors = Vec::new();
    let page = query::pagination(&ctx.query, &mut errors);
    let sorting = query::sorting(&ctx.query, SORT_PROPERTIES, &["created_at"], &mut errors);
    let organizations = uuid_list(&ctx.query, "organization_id", &mut errors);
    let products = uuid_list(&ctx.query, "product_id", &mut errors);
    if !errors.is_empty() {
        return http::request_validation(&errors);
    }
    let filter = LinkFilter {
        organizations,
        products,
        sorting,
    };
    let store = ctx.shared.store.lock().expect("store lock");
    let (rows, total) = store.list_links(who, &filter, page);
    let items: Vec<_> = rows
        .iter()
        .map(|(id, products)| store.render_link(&store.links[id], products, false))
        .collect();
    list_response(&items, total, page)
}

pub fn create(ctx: &Ctx) -> Resp {
    let body = match parse_body(ctx) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let who = match require(ctx.principal, scopes::LINKS_WRITE) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(body) = body else {
        return http::request_validation(&[body_missing()]);
    };
    let input = match validate_create(&body) {
        Ok(input) => input,
        Err(errors) => return http::request_validation(&errors),
    };
    let mut store = ctx.shared.store.lock().expect("store lock");
    match store.create_link(who, input, Utc::now()) {
        Ok(id) => {
            let link = &store.links[&id];
            let raw = store.render_link(link, &link.products, false);
            http::json_bytes(StatusCode::CREATED, raw.get().as_bytes().to_vec())
        }
        Err(e) => e.response(),
    }
}

pub fn get(ctx: &Ctx) -> Resp {
    let who = match require(ctx.principal, scopes::LINKS_READ) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let id = match path_id(ctx) {
        Ok(id) => id,
        Err(e) => return http::request_validation(&[e]),
    };
    let store = ctx.shared.store.lock().expect("store lock");
    match store.visible_link(who, id) {
        Some(link) => {
            let raw = store.render_link(link, &link.products, false);
            http::json_bytes(StatusCode::OK, raw.get().as_bytes().to_vec())
        }
        None => http::resource_not_found(),
    }
}

pub fn update(ctx: &Ctx) -> Resp {
    let body = match parse_body(ctx) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let who = match require(ctx.principal, scopes::LINKS_WRITE) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut errors: Vec<ErrorItem> = Vec::new();
    let id = path_id(ctx).map_err(|e| errors.push(e)).ok();
    let input = match &body {
        None => {
            errors.push(body_missing());
            None
        }
        Some(body) => match validate_update(body) {
            Ok(input) => Some(input),
            Err(errs) => {
                errors.extend(errs.into_iter().map(|e| e.under(&[Loc::from("body")])));
                None
            }
        },
    };
    let (Some(id), Some(input)) = (id, input) else {
        return http::request_validation(&errors);
    };
    let mut store = ctx.shared.store.lock().expect("store lock");
    match store.update_link(who, id, input, Utc::now()) {
        Ok(()) => {
            let link = &store.links[&id];
            let raw = store.render_link(link, &link.products, false);
            http::json_bytes(StatusCode::OK, raw.get().as_bytes().to_vec())
        }
        Err(e) => e.response(),
    }
}

pub fn delete(ctx: &Ctx) -> Resp {
    let who = match require(ctx.principal, scopes::LINKS_WRITE) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let id = match path_id(ctx) {
        Ok(id) => id,
        Err(e) => return http::request_validation(&[e]),
    };
    let mut store = ctx.shared.store.lock().expect("store lock");
    match store.delete_link(who, id, Utc::now()) {
        Ok(()) => http::empty(StatusCode::NO_CONTENT),
        Err(e) => e.response(),
    }
}
