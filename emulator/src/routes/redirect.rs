//! The public side of a link: `GET /v1/checkout-links/{client_secret}/redirect`
//! opens a checkout session and redirects to it (307); `/checkout/{secret}`
//! is the emulator's stand-in for Polar's checkout page.

use hyper::StatusCode;

use crate::http::{self, Resp};
use crate::routes::Ctx;
use crate::sync::Locked;

pub const CHECKOUT_PREFIX: &str = "polar_c_";

pub fn redirect(ctx: &Ctx) -> Result<Resp, Resp> {
    let secret = ctx.param.unwrap_or_default();
    let mut store = ctx.shared.store.locked();
    let link_id = store
        .secrets
        .get(secret)
        .copied()
        .filter(|id| store.links[id].deleted_at.is_none())
        .ok_or_else(http::resource_not_found)?;
    let checkout = crate::secret::generate(CHECKOUT_PREFIX);
    store.open_checkout(checkout.clone(), link_id);
    drop(store);
    let kept: Vec<(String, String)> = ctx
        .query
        .pairs()
        .iter()
        .filter(|(k, _)| k != "embed_origin")
        .cloned()
        .collect();
    let host = ctx.host.unwrap_or("127.0.0.1");
    let mut location = format!("http://{host}/checkout/{checkout}");
    if !kept.is_empty() {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(kept)
            .finish();
        location = format!("{location}?{query}");
    }
    Ok(http::redirect(StatusCode::TEMPORARY_REDIRECT, &location))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn checkout_page(ctx: &Ctx) -> Result<Resp, Resp> {
    let secret = ctx.param.unwrap_or_default();
    let store = ctx.shared.store.locked();
    let link = store
        .checkouts
        .get(secret)
        .and_then(|id| store.links.get(id))
        .ok_or_else(http::resource_not_found)?;
    let items: String = link
        .products
        .iter()
        .filter_map(|id| store.products.get(id))
        .map(|p| format!("<li>{}</li>", escape(&p.name)))
        .collect();
    let title = escape(link.label.as_deref().unwrap_or("Checkout"));
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>Polar emulator checkout for link <code>{}</code>.</p><ul>{items}</ul>\
         <p>Query: <code>{}</code></p></body></html>",
        link.id,
        escape(ctx.raw_query.unwrap_or(""))
    );
    Ok(http::bytes(
        StatusCode::OK,
        Some("text/html; charset=utf-8"),
        page,
    ))
}
