//! Read endpoints the operator resolves references with: products,
//! discounts and organisations.

use std::cmp::Ordering;

use hyper::StatusCode;

use crate::auth::{Principal, require, scopes};
use crate::filters::{contains_like, metadata_matches, metadata_query, pg_text};
use crate::http::{self, Resp};
use crate::model::{Discount, PriceKind, Product};
use crate::render;
use crate::routes::{Ctx, list_response, path_id};
use crate::sync::Locked;
use crate::validate::query::{self, Page, enum_list, opt_bool, uuid_list};

type ListParams<'a> = (&'a Principal, Page, Vec<(String, bool)>);

/// Runs the common steps of a list: scopes, pagination and sorting.
fn list_params<'a>(
    ctx: &'a Ctx,
    required: &[&str],
    properties: &[&str],
    default_sort: &[&str],
    extra: impl FnOnce(&mut Vec<crate::errors::ErrorItem>),
) -> Result<ListParams<'a>, Resp> {
    let who = require(ctx.principal, required)?;
    let mut errors = Vec::new();
    let page = query::pagination(&ctx.query, &mut errors);
    let sorting = query::sorting(&ctx.query, properties, default_sort, &mut errors);
    extra(&mut errors);
    if !errors.is_empty() {
        return Err(http::request_validation(&errors));
    }
    Ok((who, page, sorting))
}

fn page_of<T>(items: Vec<T>, page: Page) -> (Vec<T>, usize) {
    let total = items.len();
    (
        items
            .into_iter()
            .skip(page.offset())
            .take(page.limit)
            .collect(),
        total,
    )
}

fn sort_by<T>(
    items: &mut [&T],
    sorting: &[(String, bool)],
    key: impl Fn(&T, &T, &str) -> Ordering,
) {
    items.sort_by(|a, b| {
        sorting
            .iter()
            .map(|(p, desc)| {
                let o = key(a, b, p);
                if *desc { o.reverse() } else { o }
            })
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    });
}

const PRODUCT_SORT: &[&str] = &["created_at", "name", "price_amount_type", "price_amount"];
const VISIBILITY: &[&str] = &["draft", "private", "public"];

/// Postgres' order: NULLs after everything ascending (and so first
/// descending, once reversed).
pub(crate) fn nulls_last<T: Ord>(a: Option<T>, b: Option<T>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.cmp(&y),
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
    }
}

/// Polar's `price_amount_type` sort key of the first price: free 1, custom
/// 2, fixed 3, any other type NULL. A seeded `free` price is served as a
/// fixed price of 0, and sorts as one.
fn price_type_rank(p: &Product) -> Option<i64> {
    match p.prices.first().map(|pr| &pr.kind) {
        Some(PriceKind::Custom { .. }) => Some(2),
        Some(PriceKind::Fixed { .. }) | Some(PriceKind::Free) => Some(3),
        _ => None,
    }
}

/// Polar's `price_amount` sort key of the first price: custom its minimum,
/// fixed its amount, any other type NULL.
fn price_amount(p: &Product) -> Option<i64> {
    match p.prices.first().map(|pr| &pr.kind) {
        Some(PriceKind::Custom { minimum, .. }) => Some(*minimum),
        Some(PriceKind::Fixed { amount }) => Some(*amount),
        Some(PriceKind::Free) => Some(0),
        _ => None,
    }
}

pub fn list_products(ctx: &Ctx) -> Result<Resp, Resp> {
    let mut filters = (None, None, None, None, None);
    let (who, page, sorting) = list_params(
        ctx,
        scopes::PRODUCTS_READ,
        PRODUCT_SORT,
        &["-created_at"],
        |errors| {
            filters.0 = uuid_list(&ctx.query, "id", errors);
            filters.1 = uuid_list(&ctx.query, "organization_id", errors);
            filters.2 = opt_bool(&ctx.query, "is_archived", errors);
            filters.3 = opt_bool(&ctx.query, "is_recurring", errors);
            filters.4 = enum_list(&ctx.query, "visibility", VISIBILITY, errors);
        },
    )?;
    let (ids, orgs, archived, recurring, visibility) = filters;
    // `Product.name.ilike(f"%{query}%")`.
    let text = ctx.query.last("query");
    let metadata = metadata_query(&ctx.query);
    let store = ctx.shared.store.locked();
    let mut items: Vec<&Product> = store
        .product_order
        .iter()
        .filter_map(|id| store.visible_product(who, *id))
        .filter(|p| ids.as_ref().is_none_or(|ids| ids.contains(&p.id)))
        .filter(|p| orgs.as_ref().is_none_or(|o| o.contains(&p.organization_id)))
        .filter(|p| archived.is_none_or(|a| p.is_archived == a))
        .filter(|p| recurring.is_none_or(|r| p.is_recurring() == r))
        .filter(|p| {
            visibility
                .as_ref()
                .is_none_or(|v| v.contains(&p.visibility))
        })
        .filter(|p| text.is_none_or(|t| contains_like(&p.name, t, true)))
        .filter(|p| metadata_matches(&metadata, |k| p.metadata.get(k).and_then(pg_text)))
        .collect();
    sort_by(&mut items, &sorting, |a, b, prop| match prop {
        "name" => a.name.cmp(&b.name),
        "price_amount_type" => nulls_last(price_type_rank(a), price_type_rank(b)),
        "price_amount" => nulls_last(price_amount(a), price_amount(b)),
        _ => a.created_at.cmp(&b.created_at),
    });
    let (items, total) = page_of(items, page);
    let raws: Vec<_> = items
        .iter()
        .map(|p| &store.catalog(ctx.shape).product_full[&p.id])
        .collect();
    Ok(list_response(&raws, total, page))
}

fn get_one(
    ctx: &Ctx,
    required: &[&str],
    find: impl FnOnce(&Principal, uuid::Uuid) -> Option<Resp>,
) -> Result<Resp, Resp> {
    let who = require(ctx.principal, required)?;
    let id = path_id(ctx).map_err(|e| http::request_validation(&[e]))?;
    find(who, id).ok_or_else(http::resource_not_found)
}

pub fn get_product(ctx: &Ctx) -> Result<Resp, Resp> {
    get_one(ctx, scopes::PRODUCTS_READ, |who, id| {
        let store = ctx.shared.store.locked();
        let p = store.visible_product(who, id)?;
        Some(http::json_bytes(
            StatusCode::OK,
            store.catalog(ctx.shape).product_full[&p.id]
                .get()
                .as_bytes()
                .to_vec(),
        ))
    })
}

/// `DELETE /v1/products/{id}`: 204, 404, or 409 `ProductNotDeletable`.
pub fn delete_product(ctx: &Ctx) -> Result<Resp, Resp> {
    let who = require(ctx.principal, scopes::PRODUCTS_WRITE)?;
    let id = path_id(ctx).map_err(|e| http::request_validation(&[e]))?;
    let mut store = ctx.shared.store.locked();
    store.delete_product(who, id, chrono::Utc::now())?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

const DISCOUNT_SORT: &[&str] = &["created_at", "name", "code", "redemptions_count", "ends_at"];

pub fn list_discounts(ctx: &Ctx) -> Result<Resp, Resp> {
    let mut orgs = None;
    let (who, page, sorting) = list_params(
        ctx,
        scopes::DISCOUNTS_READ,
        DISCOUNT_SORT,
        &["-created_at"],
        |errors| {
            orgs = uuid_list(&ctx.query, "organization_id", errors);
        },
    )?;
    let text = ctx.query.last("query");
    let store = ctx.shared.store.locked();
    // name LIKE '%q%' (case-sensitive) OR code ILIKE '%q%' (REFERENCE.md §8).
    let matches = |d: &Discount, q: &str| {
        contains_like(&d.name, q, false)
            || d.code.as_ref().is_some_and(|c| contains_like(c, q, true))
    };
    let mut items: Vec<&Discount> = store
        .discount_order
        .iter()
        .filter_map(|id| store.discounts.get(id))
        .filter(|d| who.can_access(d.organization_id))
        .filter(|d| orgs.as_ref().is_none_or(|o| o.contains(&d.organization_id)))
        .filter(|d| text.is_none_or(|q| matches(d, q)))
        .collect();
    sort_by(&mut items, &sorting, |a, b, prop| match prop {
        "name" => a.name.cmp(&b.name),
        "code" => nulls_last(a.code.as_ref(), b.code.as_ref()),
        "redemptions_count" => a.redemptions_count.cmp(&b.redemptions_count),
        "ends_at" => nulls_last(a.ends_at, b.ends_at),
        _ => a.created_at.cmp(&b.created_at),
    });
    let (items, total) = page_of(items, page);
    let raws: Vec<_> = items
        .iter()
        .map(|d| &store.catalog(ctx.shape).discount_full[&d.id])
        .collect();
    Ok(list_response(&raws, total, page))
}

pub fn get_discount(ctx: &Ctx) -> Result<Resp, Resp> {
    get_one(ctx, scopes::DISCOUNTS_READ, |who, id| {
        let store = ctx.shared.store.locked();
        let d = store
            .discounts
            .get(&id)
            .filter(|d| who.can_access(d.organization_id))?;
        Some(http::json_bytes(
            StatusCode::OK,
            store.catalog(ctx.shape).discount_full[&d.id]
                .get()
                .as_bytes()
                .to_vec(),
        ))
    })
}

const ORGANIZATION_SORT: &[&str] = &[
    "created_at",
    "slug",
    "name",
    "next_review_threshold",
    "days_in_status",
];

pub fn list_organizations(ctx: &Ctx) -> Result<Resp, Resp> {
    let (who, page, sorting) = list_params(
        ctx,
        scopes::ORGANIZATIONS_READ,
        ORGANIZATION_SORT,
        &["created_at"],
        |_| {},
    )?;
    let slug = ctx.query.last("slug");
    let store = ctx.shared.store.locked();
    let mut items: Vec<_> = store
        .organizations
        .iter()
        .filter(|o| who.can_access(o.id) && slug.is_none_or(|s| o.slug == s))
        .collect();
    sort_by(&mut items, &sorting, |a, b, prop| match prop {
        "slug" => a.slug.cmp(&b.slug),
        "name" => a.name.cmp(&b.name),
        "created_at" => a.created_at.cmp(&b.created_at),
        _ => Ordering::Equal,
    });
    let (items, total) = page_of(items, page);
    let raws: Vec<_> = items
        .iter()
        .map(|o| {
            serde_json::value::to_raw_value(&render::organization(o))
                .expect("organization serialises")
        })
        .collect();
    Ok(list_response(&raws, total, page))
}

pub fn get_organization(ctx: &Ctx) -> Result<Resp, Resp> {
    get_one(ctx, scopes::ORGANIZATIONS_READ, |who, id| {
        let store = ctx.shared.store.locked();
        let o = store
            .organizations
            .iter()
            .find(|o| o.id == id && who.can_access(o.id))?;
        Some(http::json(StatusCode::OK, &render::organization(o)))
    })
}
