//! `polar-emulator`: a faithful, stateful local emulator of Polar's
//! checkout-links API (plus the product, discount, organisation and order
//! reads), with test controls for faults, out-of-band edits, purchases through
//! links, refunds and request counters.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let emulator = polar_emulator::spawn(Default::default(), "127.0.0.1:0".parse()?).await?;
//! println!("{}", emulator.base_url());
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Modules: `app` (one request through Polar's layers), `router`, `routes`
//! (handlers), `validate` (pydantic semantics), `service` (Polar's checks),
//! `state` (the store), `listing` (the list query), `render` (JSON), `auth`,
//! `rate_limit`, `faults`, `filters` (metadata and LIKE), `orders` (buy,
//! refund, the order list),
//! `log`, `controls`, `seed`, `server`.
#![forbid(unsafe_code)]
// Validation errors and early HTTP answers are ordinary results here, not
// rare failures; boxing every one of them would only add noise.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod app;
mod auth;
mod controls;
pub mod errors;
mod faults;
mod filters;
mod http;
pub mod json;
mod listing;
mod log;
mod model;
mod orders;
mod rate_limit;
mod render;
mod router;
mod routes;
pub mod secret;
mod seed;
mod server;
mod service;
mod state;
mod sync;
pub mod validate;
mod versions;

pub use faults::FaultRule;
pub use log::RequestLogEntry;
pub use orders::BuyOptions;
pub use seed::{
    Seed, SeedDiscount, SeedOrganization, SeedPrice, SeedProduct, SeedSeatTier, SeedToken,
};
pub use versions::{ApiVersions, DEFAULT_API_VERSION, SUPPORTED_API_VERSIONS};

/// Polar production's checkout URL template.
pub const PRODUCTION_URL_TEMPLATE: &str = "https://buy.polar.sh/{client_secret}";

/// How the emulator runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: Seed,
    /// Requests per window and identity; 0 turns rate limiting off.
    pub rate_limit: u32,
    pub rate_limit_window: Duration,
    /// Polar's bucket for tokens not seen in the last 300 s (60 per window).
    pub cold_token_limit: bool,
    /// `url` of a link: `{client_secret}` and `{base_url}` are replaced.
    pub url_template: String,
    /// The `Polar-Version` values served; any other value gets Polar's 404.
    pub api_versions: Vec<String>,
    /// The version of a request without a `Polar-Version` header; must be in
    /// `api_versions`.
    pub default_api_version: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: Seed::demo(),
            rate_limit: 500,
            rate_limit_window: Duration::from_secs(60),
            cold_token_limit: false,
            url_template: PRODUCTION_URL_TEMPLATE.to_string(),
            api_versions: SUPPORTED_API_VERSIONS
                .iter()
                .map(|v| v.to_string())
                .collect(),
            default_api_version: DEFAULT_API_VERSION.to_string(),
        }
    }
}

/// Binds `listen` (port 0 picks a free port) and serves in a tokio task.
pub async fn spawn(config: Config, listen: SocketAddr) -> anyhow::Result<Emulator> {
    config.seed.validate().context("invalid seed")?;
    let versions = ApiVersions::new(config.api_versions, config.default_api_version)
        .context("invalid API versions")?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("bind {listen}"))?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let url_template = config.url_template.replace("{base_url}", &base_url);
    let shared = Arc::new(app::Shared {
        store: Mutex::new(state::Store::from_seed(&config.seed, url_template.clone())),
        tokens: auth::Tokens::from_seed(&config.seed),
        limiter: rate_limit::RateLimiter::new(
            config.rate_limit,
            config.rate_limit_window,
            config.cold_token_limit,
        ),
        faults: Default::default(),
        counters: Default::default(),
        log: Default::default(),
        seed: config.seed,
        url_template,
        versions: Mutex::new(versions.clone()),
        configured_versions: versions,
    });
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(server::serve(listener, shared.clone(), stopped));
    Ok(Emulator {
        shared,
        addr,
        stop,
        task: Some(task),
    })
}

/// A running emulator. Dropping it, or [`Emulator::shutdown`], stops the server.
pub struct Emulator {
    shared: Arc<app::Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Emulator {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests per `"<METHOD> <route template>"`, as `/__emulator/counters`.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.shared.counters.snapshot()
    }

    pub fn reset_counters(&self) {
        self.shared.counters.reset();
    }

    pub fn set_faults(&self, faults: Vec<FaultRule>) {
        self.shared.faults.set(faults);
    }

    pub fn clear_faults(&self) {
        self.shared.faults.set(Vec::new());
    }

    /// Archives a product as Polar does: it leaves every link, and links left
    /// without products are soft-deleted.
    pub fn archive_product(&self, id: &str) -> anyhow::Result<()> {
        self.shared.archive_product(id)
    }

    /// Edits a product out of band: any of `name`, `metadata`, `visibility`
    /// (`public`, `private`, `draft`) and `is_archived`. Archiving has
    /// Polar's side effect (the product leaves every link; links left empty
    /// are soft-deleted); un-archiving only clears the flag. Sets
    /// `modified_at`; returns the product as `GET /v1/products/{id}` does.
    pub fn edit_product(
        &self,
        id: &str,
        patch: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        self.shared.edit_product(id, &patch)
    }

    /// Adds a product out of band ("created later"): checked as a seed
    /// product; `created_at` is now unless the product says otherwise.
    /// Returns it as `GET /v1/products/{id}` does.
    pub fn add_product(&self, product: SeedProduct) -> anyhow::Result<serde_json::Value> {
        self.shared.add_product(product)
    }

    /// Edits a discount out of band: any of `name`, `code`, `starts_at`,
    /// `ends_at` (RFC 3339 or null), `max_redemptions` (null or at least 1)
    /// and `redemptions_count`. Links embed the new values. Returns the
    /// discount as `GET /v1/discounts/{id}` does.
    pub fn edit_discount(
        &self,
        id: &str,
        patch: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        self.shared.edit_discount(id, &patch)
    }

    /// A purchase through a link: a checkout, then its paid order, whose
    /// metadata is the link's plus the share URL's `utm_*` and
    /// `reference_id` values (the link's own keys win). Returns the order as
    /// `GET /v1/orders/{id}` writes it.
    pub fn buy(&self, link_id: &str, options: BuyOptions) -> anyhow::Result<serde_json::Value> {
        self.shared.buy(link_id, &options)
    }

    /// Refunds `amount` cents of an order (`None`: all still refundable):
    /// `refunded_amount` grows, the status becomes `partially_refunded` or
    /// `refunded`, `modified_at` moves. Returns the order.
    pub fn refund(&self, order_id: &str, amount: Option<i64>) -> anyhow::Result<serde_json::Value> {
        self.shared.refund(order_id, amount)
    }

    /// The order as `GET /v1/orders/{id}` returns it; `None` if absent.
    pub fn order(&self, id: &str) -> Option<serde_json::Value> {
        self.shared.order(id)
    }

    /// Every order of every organisation, oldest first.
    pub fn orders(&self) -> Vec<serde_json::Value> {
        self.shared.orders()
    }

    /// Sets Polar fields of a link directly (no validation); sets `modified_at`.
    pub fn edit_link(&self, id: &str, patch: serde_json::Value) -> anyhow::Result<()> {
        self.shared.edit_link(id, &patch)
    }

    /// Soft-deletes a link out of band.
    pub fn delete_link(&self, id: &str) -> anyhow::Result<()> {
        self.shared.delete_link(id)
    }

    /// The link as `GET /v1/checkout-links/{id}` returns it; `None` if absent or deleted.
    pub fn link(&self, id: &str) -> Option<serde_json::Value> {
        self.shared.link(id)
    }

    /// The stored link, soft-deleted or not, with a `deleted_at` field.
    pub fn stored_link(&self, id: &str) -> Option<serde_json::Value> {
        self.shared.stored_link(id)
    }

    /// All live links, oldest first.
    pub fn links(&self) -> Vec<serde_json::Value> {
        self.shared.links(false)
    }

    pub fn requests(&self) -> Vec<RequestLogEntry> {
        self.shared.log.entries()
    }

    pub fn clear_requests(&self) {
        self.shared.log.clear();
    }

    /// The API versions served now, and the default.
    pub fn api_versions(&self) -> ApiVersions {
        self.shared.api_versions()
    }

    /// Changes the served API versions on the running emulator (a rotation):
    /// requests with any other `Polar-Version` get Polar's 404 from the next
    /// request on. `default` (the version of requests without the header)
    /// stays as it is when `None`; either way it must be in `versions`.
    pub fn set_api_versions(&self, versions: &[&str], default: Option<&str>) -> anyhow::Result<()> {
        self.shared.set_api_versions(
            versions.iter().map(|v| v.to_string()).collect(),
            default.map(str::to_string),
        )
    }

    /// Back to the configured API versions.
    pub fn reset_api_versions(&self) {
        self.shared.reset_api_versions();
    }

    /// Back to the seed: links, orders, products and discounts, faults,
    /// counters, the request log and the API versions are as configured again.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops accepting, lets open requests finish (up to 2 s), and returns.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
