//! `GET /v1/orders/` and `GET /v1/orders/{id}` (scope `orders:read`).

use hyper::StatusCode;

use crate::auth::{require, scopes};
use crate::filters::metadata_query;
use crate::http::{self, Resp};
use crate::orders::OrderFilter;
use crate::render;
use crate::routes::{Ctx, list_response, path_id};
use crate::sync::Locked;
use crate::validate::query::{self, enum_list, opt_datetime, str_list, uuid_list};

const ORDER_SORT: &[&str] = &[
    "created_at",
    "status",
    "invoice_number",
    "amount",
    "net_amount",
    "customer",
    "product",
    "discount",
    "subscription",
];
const ORDER_STATUS: &[&str] = &[
    "draft",
    "pending",
    "paid",
    "refunded",
    "partially_refunded",
    "void",
];
const BILLING_TYPE: &[&str] = &["one_time", "recurring"];

pub fn list_orders(ctx: &Ctx) -> Result<Resp, Resp> {
    let who = require(ctx.principal, scopes::ORDERS_READ)?;
    let q = &ctx.query;
    let mut errors = Vec::new();
    let page = query::pagination(q, &mut errors);
    let sorting = query::sorting(q, ORDER_SORT, &["-created_at"], &mut errors);
    let filter = OrderFilter {
        organizations: uuid_list(q, "organization_id", &mut errors),
        products: uuid_list(q, "product_id", &mut errors),
        billing_types: enum_list(q, "product_billing_type", BILLING_TYPE, &mut errors),
        discounts: uuid_list(q, "discount_id", &mut errors),
        customers: uuid_list(q, "customer_id", &mut errors),
        external_customers: str_list(q, "external_customer_id"),
        checkouts: uuid_list(q, "checkout_id", &mut errors),
        subscriptions: uuid_list(q, "subscription_id", &mut errors),
        statuses: enum_list(q, "status", ORDER_STATUS, &mut errors),
        created_after: opt_datetime(q, "created_after", &mut errors),
        created_before: opt_datetime(q, "created_before", &mut errors),
        metadata: metadata_query(q),
        sorting,
    };
    if !errors.is_empty() {
        return Err(http::request_validation(&errors));
    }
    let store = ctx.shared.store.locked();
    let orders = store.list_orders(who, &filter);
    let total = orders.len();
    let raws: Vec<_> = orders
        .into_iter()
        .skip(page.offset())
        .take(page.limit)
        .map(|o| render::order(o, &store))
        .collect();
    Ok(list_response(&raws, total, page))
}

pub fn get_order(ctx: &Ctx) -> Result<Resp, Resp> {
    let who = require(ctx.principal, scopes::ORDERS_READ)?;
    let id = path_id(ctx).map_err(|e| http::request_validation(&[e]))?;
    let store = ctx.shared.store.locked();
    let order = store
        .orders
        .get(&id)
        .filter(|o| who.can_access(o.organization_id))
        .ok_or_else(http::resource_not_found)?;
    Ok(http::json_bytes(
        StatusCode::OK,
        render::order(order, &store).get().as_bytes().to_vec(),
    ))
}
