//! Test controls under `/__emulator/` (no auth, not counted, not logged), and
//! the same operations for the in-process handle.

use std::collections::HashSet;

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::Shared;
use crate::faults::FaultRule;
use crate::http::{self, Resp};
use crate::json::J;
use crate::model::{self, Link, Product};
use crate::orders::BuyOptions;
use crate::seed::SeedProduct;
use crate::state::Store;
use crate::sync::Locked;
use crate::validate::metadata;
use crate::versions::{ApiVersions, Shape};

impl Shared {
    pub fn archive_product(&self, id: &str) -> anyhow::Result<()> {
        let id: Uuid = id.parse().context("product id is not a UUID")?;
        let mut store = self.store.locked();
        if !store.archive_product(id, Utc::now()) {
            bail!("no product {id}");
        }
        Ok(())
    }

    /// Out-of-band product edit: `name`, `metadata`, `visibility`,
    /// `is_archived`. Archiving has Polar's side effect on links; un-archiving
    /// only clears the flag. Returns the product as `GET` writes it.
    pub fn edit_product(&self, id: &str, patch: &Value) -> anyhow::Result<Value> {
        let id: Uuid = id.parse().context("product id is not a UUID")?;
        let Value::Object(fields) = patch else {
            bail!("the edit must be a JSON object of product fields");
        };
        let shape = self.default_shape();
        let mut store = self.store.locked();
        let mut product = store
            .products
            .get(&id)
            .filter(|p| !p.is_deleted())
            .cloned()
            .ok_or_else(|| anyhow!("no product {id}"))?;
        let mut archive = false;
        for (name, value) in fields {
            let mut set = || -> anyhow::Result<()> {
                match name.as_str() {
                    "name" => {
                        product.name = value.as_str().context("expected a string")?.to_string()
                    }
                    "metadata" => product.metadata = product_metadata(value)?,
                    "visibility" => {
                        let v = value.as_str().context("expected a string")?;
                        if !matches!(v, "public" | "private" | "draft") {
                            bail!("expected public, private or draft");
                        }
                        product.visibility = v.to_string();
                    }
                    "is_archived" => {
                        let archived = value.as_bool().context("expected a boolean")?;
                        archive = archived;
                        product.is_archived = archived;
                    }
                    _ => bail!("not a product field this control can set"),
                }
                Ok(())
            };
            set().with_context(|| format!("field {name}"))?;
        }
        let now = model::now();
        product.modified_at = Some(now);
        store.products.insert(id, product);
        if archive {
            store.archive_product(id, now);
        } else {
            store.rebuild_catalog();
        }
        Ok(raw_value(&store.catalog(shape).product_full[&id]))
    }

    /// A product created out of band (`created_at` now unless given).
    /// Returns it as `GET /v1/products/{id}` writes it.
    pub fn add_product(&self, product: SeedProduct) -> anyhow::Result<Value> {
        let shape = self.default_shape();
        let mut store = self.store.locked();
        let orgs: HashSet<Uuid> = store.organizations.iter().map(|o| o.id).collect();
        crate::seed::validate_product(&product, &orgs)?;
        if store.products.contains_key(&product.id) || store.discounts.contains_key(&product.id) {
            bail!("id {} is taken", product.id);
        }
        for price in product.prices.iter().filter_map(|p| p.id) {
            if store
                .products
                .values()
                .any(|p| p.prices.iter().any(|pr| pr.id == price))
            {
                bail!("price id {price} is taken");
            }
        }
        let mut product = product;
        product.created_at = Some(product.created_at.unwrap_or_else(model::now));
        let product = Product::from_seed(&product, 0);
        let id = product.id;
        store.product_order.push(id);
        store.products.insert(id, product);
        store.rebuild_catalog();
        Ok(raw_value(&store.catalog(shape).product_full[&id]))
    }

    /// Out-of-band discount edit: `name`, `code`, `starts_at`, `ends_at`,
    /// `max_redemptions`, `redemptions_count`. Returns the full discount.
    pub fn edit_discount(&self, id: &str, patch: &Value) -> anyhow::Result<Value> {
        let id: Uuid = id.parse().context("discount id is not a UUID")?;
        let Value::Object(fields) = patch else {
            bail!("the edit must be a JSON object of discount fields");
        };
        let shape = self.default_shape();
        let mut store = self.store.locked();
        let mut discount = store
            .discounts
            .get(&id)
            .cloned()
            .ok_or_else(|| anyhow!("no discount {id}"))?;
        for (name, value) in fields {
            let mut set = || -> anyhow::Result<()> {
                match name.as_str() {
                    "name" => {
                        discount.name = value.as_str().context("expected a string")?.to_string()
                    }
                    "code" => discount.code = opt_string(value)?,
                    "starts_at" => discount.starts_at = opt_time(value)?,
                    "ends_at" => discount.ends_at = opt_time(value)?,
                    "max_redemptions" => {
                        discount.max_redemptions = opt_int(value)?;
                        if discount.max_redemptions.is_some_and(|m| m < 1) {
                            bail!("expected at least 1 or null");
                        }
                    }
                    "redemptions_count" => {
                        discount.redemptions_count = value
                            .as_i64()
                            .filter(|n| *n >= 0)
                            .context("expected a non-negative integer")?
                    }
                    _ => bail!("not a discount field this control can set"),
                }
                Ok(())
            };
            set().with_context(|| format!("field {name}"))?;
        }
        discount.modified_at = Some(model::now());
        store.discounts.insert(id, discount);
        store.rebuild_catalog();
        Ok(raw_value(&store.catalog(shape).discount_full[&id]))
    }

    /// A purchase through the link: a checkout, then its paid order.
    /// Returns the order as `GET /v1/orders/{id}` writes it.
    pub fn buy(&self, link_id: &str, opts: &BuyOptions) -> anyhow::Result<Value> {
        let id: Uuid = link_id.parse().context("link id is not a UUID")?;
        let mut store = self.store.locked();
        let order = store.buy(id, opts, model::now())?;
        Ok(order_value(&store, order))
    }

    /// Refunds `amount` cents of an order (default: all still refundable).
    pub fn refund(&self, order_id: &str, amount: Option<i64>) -> anyhow::Result<Value> {
        let id: Uuid = order_id.parse().context("order id is not a UUID")?;
        let mut store = self.store.locked();
        store.refund(id, amount, model::now())?;
        Ok(order_value(&store, id))
    }

    /// The order as `GET /v1/orders/{id}` writes it.
    pub fn order(&self, id: &str) -> Option<Value> {
        let id: Uuid = id.parse().ok()?;
        let store = self.store.locked();
        store
            .orders
            .contains_key(&id)
            .then(|| order_value(&store, id))
    }

    /// Every order of every organisation, oldest first.
    pub fn orders(&self) -> Vec<Value> {
        let store = self.store.locked();
        store
            .order_order
            .iter()
            .map(|id| order_value(&store, *id))
            .collect()
    }

    pub fn edit_link(&self, id: &str, patch: &Value) -> anyhow::Result<()> {
        let id: Uuid = id.parse().context("link id is not a UUID")?;
        let mut store = self.store.locked();
        let mut link = store
            .links
            .get(&id)
            .cloned()
            .ok_or_else(|| anyhow!("no checkout link {id}"))?;
        let Value::Object(fields) = patch else {
            bail!("the edit must be a JSON object of checkout-link fields");
        };
        for (name, value) in fields {
            apply_field(&store, &mut link, name, value).with_context(|| format!("field {name}"))?;
        }
        link.modified_at = Some(Utc::now());
        let reorder = store.links[&id].created_at != link.created_at;
        let old_secret = store.links[&id].client_secret.clone();
        if old_secret != link.client_secret {
            store.secrets.remove(&old_secret);
            store.secrets.insert(link.client_secret.clone(), id);
        }
        store.links.insert(id, link);
        if reorder {
            let Store {
                link_order, links, ..
            } = &mut *store;
            link_order.sort_by_key(|l| links[l].created_at);
        }
        Ok(())
    }

    pub fn delete_link(&self, id: &str) -> anyhow::Result<()> {
        let id: Uuid = id.parse().context("link id is not a UUID")?;
        let mut store = self.store.locked();
        if !store.soft_delete(id, Utc::now()) {
            bail!("no live checkout link {id}");
        }
        Ok(())
    }

    /// The link as `GET` returns it; `None` if absent or deleted.
    pub fn link(&self, id: &str) -> Option<Value> {
        let id: Uuid = id.parse().ok()?;
        let shape = self.default_shape();
        let store = self.store.locked();
        let link = store.links.get(&id).filter(|l| l.deleted_at.is_none())?;
        Some(to_value(&store, link, shape, false))
    }

    /// The stored link, soft-deleted ones included, with `deleted_at`.
    pub fn stored_link(&self, id: &str) -> Option<Value> {
        let id: Uuid = id.parse().ok()?;
        let shape = self.default_shape();
        let store = self.store.locked();
        let link = store.links.get(&id)?;
        Some(to_value(&store, link, shape, true))
    }

    pub fn links(&self, include_deleted: bool) -> Vec<Value> {
        let shape = self.default_shape();
        let store = self.store.locked();
        store
            .link_order
            .iter()
            .map(|id| &store.links[id])
            .filter(|l| include_deleted || l.deleted_at.is_none())
            .map(|l| to_value(&store, l, shape, include_deleted))
            .collect()
    }

    /// Back to the seed: links, faults, counters and the log are cleared, the
    /// API versions are the configured ones again.
    pub fn reset(&self) {
        *self.store.locked() = Store::from_seed(&self.seed, self.url_template.clone());
        self.faults.set(Vec::new());
        self.counters.reset();
        self.log.clear();
        self.reset_api_versions();
    }

    pub fn api_versions(&self) -> ApiVersions {
        self.versions.locked().clone()
    }

    fn default_shape(&self) -> Shape {
        Shape::of(&self.versions.locked().default)
    }

    /// A new set of served versions; `default` stays when `None`.
    pub fn set_api_versions(
        &self,
        versions: Vec<String>,
        default: Option<String>,
    ) -> anyhow::Result<()> {
        let mut current = self.versions.locked();
        let default = default.unwrap_or_else(|| current.default.clone());
        *current = ApiVersions::new(versions, default)?;
        Ok(())
    }

    pub fn reset_api_versions(&self) {
        *self.versions.locked() = self.configured_versions.clone();
    }
}

/// The body of `PUT /__emulator/api-versions`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionsBody {
    versions: Vec<String>,
    #[serde(default)]
    default: Option<String>,
}

/// Links as a request without `Polar-Version` gets them (the default version).
fn to_value(store: &Store, link: &Link, shape: Shape, admin: bool) -> Value {
    let raw = store.render_link(link, &link.products, shape, admin);
    serde_json::from_str(raw.get()).expect("rendered link is JSON")
}

fn opt_string(v: &Value) -> anyhow::Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => bail!("expected a string or null"),
    }
}

fn opt_time(v: &Value) -> anyhow::Result<Option<DateTime<Utc>>> {
    match v {
        Value::Null => Ok(None),
        _ => Ok(Some(
            v.as_str()
                .context("expected an RFC 3339 timestamp or null")?
                .parse::<DateTime<Utc>>()
                .context("expected an RFC 3339 timestamp or null")?,
        )),
    }
}

/// Product metadata: an object of string, number or boolean values.
fn product_metadata(v: &Value) -> anyhow::Result<serde_json::Map<String, Value>> {
    let Value::Object(m) = v else {
        bail!("expected an object");
    };
    if m.values()
        .any(|v| !matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)))
    {
        bail!("expected string, number or boolean values");
    }
    Ok(m.clone())
}

fn order_value(store: &Store, id: Uuid) -> Value {
    raw_value(&crate::render::order(&store.orders[&id], store))
}

fn raw_value(raw: &serde_json::value::RawValue) -> Value {
    serde_json::from_str(raw.get()).expect("rendered JSON")
}

fn opt_int(v: &Value) -> anyhow::Result<Option<i64>> {
    match v {
        Value::Null => Ok(None),
        _ => v.as_i64().map(Some).context("expected an integer or null"),
    }
}

fn uuid(v: &Value) -> anyhow::Result<Uuid> {
    v.as_str()
        .context("expected a UUID string")?
        .parse()
        .context("expected a UUID")
}

/// Sets one Polar field without Polar's validation.
fn apply_field(store: &Store, link: &mut Link, name: &str, v: &Value) -> anyhow::Result<()> {
    match name {
        "label" => link.label = opt_string(v)?,
        "success_url" => link.success_url = opt_string(v)?,
        "return_url" => link.return_url = opt_string(v)?,
        "trial_interval" => link.trial_interval = opt_string(v)?,
        "trial_interval_count" => link.trial_interval_count = opt_int(v)?,
        "seats" => link.seats = opt_int(v)?,
        "units" => link.units = opt_int(v)?,
        "allow_discount_codes" => {
            link.allow_discount_codes = v.as_bool().context("expected a boolean")?
        }
        "require_billing_address" => {
            link.require_billing_address = v.as_bool().context("expected a boolean")?
        }
        "discount_id" => link.discount_id = if v.is_null() { None } else { Some(uuid(v)?) },
        "organization_id" => link.organization_id = uuid(v)?,
        "client_secret" => link.client_secret = opt_string(v)?.context("expected a string")?,
        "created_at" => {
            link.created_at = v
                .as_str()
                .context("expected an RFC 3339 timestamp")?
                .parse::<DateTime<Utc>>()
                .context("expected an RFC 3339 timestamp")?
        }
        "metadata" => {
            link.metadata = metadata::metadata(&J::from_value(v), false)
                .map_err(|_| anyhow!("expected an object of string, number or boolean values"))?;
        }
        "products" => {
            let ids: Vec<Uuid> = v
                .as_array()
                .context("expected a list of product ids")?
                .iter()
                .map(uuid)
                .collect::<Result<_, _>>()?;
            let exists = |id: &Uuid| store.products.get(id).is_some_and(|p| !p.is_deleted());
            if let Some(unknown) = ids.iter().find(|id| !exists(id)) {
                bail!("unknown product {unknown}");
            }
            link.products = ids;
        }
        _ => bail!("not a checkout-link field this control can set"),
    }
    Ok(())
}

fn detail(status: StatusCode, msg: impl std::fmt::Display) -> Resp {
    http::json(status, &json!({ "detail": msg.to_string() }))
}

fn result(r: anyhow::Result<()>, ok: StatusCode) -> Resp {
    match r {
        Ok(()) => http::empty(ok),
        Err(e) if e.to_string().starts_with("no ") => {
            detail(StatusCode::NOT_FOUND, format!("{e:#}"))
        }
        Err(e) => detail(StatusCode::BAD_REQUEST, format!("{e:#}")),
    }
}

/// A control's JSON answer, or its error as `result` writes it.
fn answer(r: anyhow::Result<Value>, ok: StatusCode) -> Resp {
    match r {
        Ok(v) => http::json(ok, &v),
        Err(e) => result(Err(e), ok),
    }
}

async fn json_body(body: Incoming) -> Result<Value, Resp> {
    let bytes = body
        .collect()
        .await
        .map_err(|e| detail(StatusCode::BAD_REQUEST, e))?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| detail(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")))
}

pub async fn handle(shared: &Shared, method: &Method, path: &str, body: Incoming) -> Resp {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(2).collect();
    match (method, segments.as_slice()) {
        (&Method::POST, ["products", id, "archive"]) => {
            result(shared.archive_product(id), StatusCode::NO_CONTENT)
        }
        (&Method::PATCH, ["products", id]) => {
            let patch = match json_body(body).await {
                Ok(v) => v,
                Err(r) => return r,
            };
            answer(shared.edit_product(id, &patch), StatusCode::OK)
        }
        (&Method::POST, ["products"]) => {
            let product = match json_body(body).await {
                Ok(v) => v,
                Err(r) => return r,
            };
            let added = serde_json::from_value::<SeedProduct>(product)
                .map_err(|e| anyhow!("expected a seed product: {e}"))
                .and_then(|p| shared.add_product(p));
            answer(added, StatusCode::CREATED)
        }
        (&Method::PATCH, ["discounts", id]) => {
            let patch = match json_body(body).await {
                Ok(v) => v,
                Err(r) => return r,
            };
            answer(shared.edit_discount(id, &patch), StatusCode::OK)
        }
        (&Method::POST, ["checkout-links", id, "buy"]) => {
            let body = match json_body(body).await {
                Ok(v) => v,
                Err(r) => return r,
            };
            let opts = if body.is_null() {
                Ok(BuyOptions::default())
            } else {
                serde_json::from_value::<BuyOptions>(body).map_err(|e| {
                    anyhow!("expected {{\"query\", \"product_id\", \"amount\", \"currency\", \"created_at\"}}: {e}")
                })
            };
            answer(opts.and_then(|o| shared.buy(id, &o)), StatusCode::CREATED)
        }
        (&Method::POST, ["orders", id, "refund"]) => {
            let body = match json_body(body).await {
                Ok(v) => v,
                Err(r) => return r,
            };
            let amount = match &body {
                Value::Null => Ok(None),
                Value::Object(m) if m.keys().all(|k| k == "amount") => match m.get("amount") {
                    None | Some(Value::Null) => Ok(None),
                    Some(a) => a
                        .as_i64()
                        .map(Some)
                        .ok_or_else(|| anyhow!("amount: expected an integer (cents)")),
                },
                _ => Err(anyhow!("expected {{\"amount\": <cents>}}")),
            };
            answer(amount.and_then(|a| shared.refund(id, a)), StatusCode::OK)
        }
        (&Method::GET, ["orders"]) => http::json(StatusCode::OK, &shared.orders()),
        (&Method::GET, ["orders", id]) => match shared.order(id) {
            Some(v) => http::json(StatusCode::OK, &v),
            None => detail(StatusCode::NOT_FOUND, format!("no order {id}")),
        },
        (&Method::GET, ["checkout-links"]) => http::json(StatusCode::OK, &shared.links(true)),
        (&Method::GET, ["checkout-links", id]) => match shared.stored_link(id) {
            Some(v) => http::json(StatusCode::OK, &v),
            None => detail(StatusCode::NOT_FOUND, format!("no checkout link {id}")),
        },
        (&Method::PATCH, ["checkout-links", id]) => {
            let patch = match json_body(body).await {
                Ok(v) => v,
                Err(r) => return r,
            };
            match shared.edit_link(id, &patch) {
                Ok(()) => http::json(StatusCode::OK, &shared.stored_link(id)),
                Err(e) => result(Err(e), StatusCode::OK),
            }
        }
        (&Method::DELETE, ["checkout-links", id]) => {
            result(shared.delete_link(id), StatusCode::NO_CONTENT)
        }
        (&Method::GET, ["faults"]) => http::json(StatusCode::OK, &shared.faults.get()),
        (&Method::PUT, ["faults"]) => {
            let rules = match json_body(body).await {
                Ok(v) => v,
                Err(r) => return r,
            };
            match serde_json::from_value::<Vec<FaultRule>>(rules) {
                Ok(rules) => {
                    shared.faults.set(rules);
                    http::empty(StatusCode::NO_CONTENT)
                }
                Err(e) => detail(
                    StatusCode::BAD_REQUEST,
                    format!("expected a list of fault rules: {e}"),
                ),
            }
        }
        (&Method::DELETE, ["faults"]) => {
            shared.faults.set(Vec::new());
            http::empty(StatusCode::NO_CONTENT)
        }
        (&Method::GET, ["counters"]) => http::json(StatusCode::OK, &shared.counters.snapshot()),
        (&Method::DELETE, ["counters"]) => {
            shared.counters.reset();
            http::empty(StatusCode::NO_CONTENT)
        }
        (&Method::GET, ["requests"]) => http::json(StatusCode::OK, &shared.log.entries()),
        (&Method::DELETE, ["requests"]) => {
            shared.log.clear();
            http::empty(StatusCode::NO_CONTENT)
        }
        (&Method::GET, ["api-versions"]) => http::json(StatusCode::OK, &shared.api_versions()),
        (&Method::PUT, ["api-versions"]) => {
            let body = match json_body(body).await {
                Ok(v) => v,
                Err(r) => return r,
            };
            let set = serde_json::from_value::<VersionsBody>(body)
                .map_err(|e| anyhow!("expected {{\"versions\": [...], \"default\": ...}}: {e}"))
                .and_then(|b| shared.set_api_versions(b.versions, b.default));
            match set {
                Ok(()) => http::json(StatusCode::OK, &shared.api_versions()),
                Err(e) => detail(StatusCode::BAD_REQUEST, format!("{e:#}")),
            }
        }
        (&Method::DELETE, ["api-versions"]) => {
            shared.reset_api_versions();
            http::json(StatusCode::OK, &shared.api_versions())
        }
        (&Method::POST, ["reset"]) => {
            shared.reset();
            http::empty(StatusCode::NO_CONTENT)
        }
        _ => detail(StatusCode::NOT_FOUND, "no such emulator control"),
    }
}
