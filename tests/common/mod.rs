//! The integration harness: the shared real control plane (one per test binary), a fresh
//! namespace and an in-process emulator per test, and the controller running in-process,
//! scoped to that namespace.
//!
//! What the other harnesses share lives in the submodules, for [`Harness`] and for the tests
//! that run the operator binary (`operator_ha.rs`, `chart_rbac.rs`) alike: [`eventually`] (the
//! one way to wait, every deadline scaled by `TEST_TIMEOUT_SCALE`), [`objects`] (Secrets,
//! CheckoutLinks, Events and waits on them, through any client), [`process`] (the operator
//! process) and [`helm`] (the tools and `helm template`).
#![allow(dead_code)]

pub mod eventually;
pub mod helm;
pub mod objects;
pub mod process;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use checkout_link_operator::config::Settings;
use checkout_link_operator::metrics::Metrics;
use checkout_link_operator::reconcile;
use checkout_link_operator::reconcile::credentials::SecretName;
use checkout_link_operator::server::Readiness;
use checkout_link_operator::{CheckoutLink, CheckoutLinkStatus};
use polar_emulator::Emulator;
use serde_json::{Value, json};
use testenv::ControlPlane;

// Each test binary uses some of these.
#[allow(unused_imports)]
pub use eventually::{eventually, found, scaled, within};
#[allow(unused_imports)]
pub use objects::{Objects, assert_one_polar_link_per_checkout_link, is_ready, unwritten};
#[allow(unused_imports)]
pub use process::{RECONCILES, samples};

/// The emulator's demo seed (examples/emulator-seed.yaml): an Acme token with every scope.
pub const TOKEN: &str = "polar_oat_AcmeDemoWriteToken00000000000000000013Difp9";
/// An Acme token without `checkout_links:write`.
pub const READ_ONLY_TOKEN: &str = "polar_oat_AcmeDemoReadOnlyToken000000000000000238RYdr";
/// A well-formed token the emulator does not know.
pub const UNKNOWN_TOKEN: &str = "polar_oat_NoSuchTokenAnywhere000000000000000000000000";
/// Acme's organisation.
pub const ACME: &str = "11111111-1111-4111-8111-111111111111";
/// One-time product.
pub const EBOOK: &str = "a1000000-0000-4000-8000-000000000001";
/// Monthly subscription.
pub const PRO_MONTHLY: &str = "a1000000-0000-4000-8000-000000000002";
/// Yearly subscription.
pub const PRO_YEARLY: &str = "a1000000-0000-4000-8000-000000000003";
/// Seat-based, 1 to 50 seats.
pub const TEAM: &str = "a1000000-0000-4000-8000-000000000004";
/// Archived in the seed: Polar refuses it.
pub const LEGACY_ARCHIVED: &str = "a1000000-0000-4000-8000-000000000005";
/// 20% off, all products.
pub const LAUNCH20: &str = "d1000000-0000-4000-8000-000000000001";

/// Emulator counter keys.
pub const POST: &str = "POST /v1/checkout-links/";
pub const LIST: &str = "GET /v1/checkout-links/";
pub const ORDERS: &str = "GET /v1/orders/";
pub const GET: &str = "GET /v1/checkout-links/{id}";
pub const PATCH: &str = "PATCH /v1/checkout-links/{id}";
pub const DELETE: &str = "DELETE /v1/checkout-links/{id}";

/// Name of the credentials Secret each test namespace gets (the controller's default).
pub const SECRET: &str = "polar";

/// Test knobs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The controller's resync interval.
    pub resync: Duration,
    /// The controller's deletion grace.
    pub deletion_grace: Duration,
    /// The token written to the default Secret; `None`: no Secret is created.
    pub token: Option<String>,
    /// Emulator rate limit per window (0: off) and window.
    pub rate_limit: u32,
    /// The emulator's rate-limit window.
    pub rate_limit_window: Duration,
    /// Reconciles at the same time.
    pub concurrency: u16,
    /// Run in the control plane that has kube-controller-manager (namespace deletion, garbage
    /// collection).
    pub controllers: bool,
    /// Campaign results on, with this refund re-scan interval.
    pub campaign_results: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            resync: Duration::from_secs(600),
            deletion_grace: Duration::from_secs(600),
            token: Some(TOKEN.to_owned()),
            rate_limit: 0,
            rate_limit_window: Duration::from_secs(60),
            concurrency: 4,
            controllers: false,
            campaign_results: None,
        }
    }
}

/// One test's world. Its namespace's objects ([`Objects`]: `client`, `ns`, `links`,
/// `secrets`, and the helpers on them, such as `wait_ready`) are reached through `Deref`.
pub struct Harness {
    pub objects: Objects,
    pub emulator: Emulator,
    pub metrics: Arc<Metrics>,
    pub readiness: Readiness,
    pub options: Options,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    controller: Option<tokio::task::JoinHandle<()>>,
}

/// Logs to the test's output; `RUST_LOG` filters (default: warnings, and the operator's info).
pub fn init_logging() {
    let filter =
        std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,checkout_link_operator=info".to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// A fresh namespace of the shared control plane, with the admin's client (logging and the
/// TLS provider set up on the way).
pub async fn namespace(test: &str) -> (kube::Client, String) {
    namespace_in(ControlPlane::shared(), test).await
}

/// A fresh namespace of `plane`, with the admin's client.
pub async fn namespace_in(plane: &ControlPlane, test: &str) -> (kube::Client, String) {
    init_logging();
    checkout_link_operator::polar::install_crypto_provider();
    plane.namespace(test).await.expect("namespace")
}

/// An emulator on a free loopback port.
pub async fn emulator(config: polar_emulator::Config) -> Emulator {
    polar_emulator::spawn(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator")
}

impl Harness {
    /// A namespace, an emulator with the demo seed, the default credentials Secret (unless
    /// `options.token` is `None`) and the controller.
    pub async fn start(test: &str, options: Options) -> Harness {
        let (client, ns) = if options.controllers {
            namespace_in(ControlPlane::shared_with_controllers(), test).await
        } else {
            namespace(test).await
        };
        let config = polar_emulator::Config {
            rate_limit: options.rate_limit,
            rate_limit_window: options.rate_limit_window,
            ..polar_emulator::Config::default()
        };
        let emulator = emulator(config).await;
        let mut harness = Harness {
            objects: Objects::new(client, &ns),
            emulator,
            metrics: Arc::new(Metrics::new()),
            readiness: Readiness::default(),
            options: options.clone(),
            stop: None,
            controller: None,
        };
        if let Some(token) = &options.token {
            harness.put_secret(SECRET, token, None).await;
        }
        harness.start_controller();
        harness
    }

    /// The controller's settings for this test.
    pub fn settings(&self) -> Settings {
        Settings {
            namespace: Some(self.ns.clone()),
            default_credentials: Some(SecretName {
                namespace: self.ns.clone(),
                name: SECRET.to_owned(),
            }),
            resync_interval: self.options.resync,
            deletion_grace: self.options.deletion_grace,
            concurrency: self.options.concurrency,
            polar_timeout: Duration::from_secs(5),
            campaign_results: self.options.campaign_results.is_some(),
            results_rescan_interval: self
                .options
                .campaign_results
                .unwrap_or(Settings::default().results_rescan_interval),
            ..Settings::default()
        }
    }

    /// Starts the controller (again, after [`Harness::stop_controller`]).
    pub fn start_controller(&mut self) {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = rx.await;
        };
        let task = tokio::spawn(reconcile::run(
            self.client.clone(),
            self.settings(),
            self.metrics.clone(),
            self.readiness.clone(),
            shutdown,
        ));
        self.stop = Some(tx);
        self.controller = Some(task);
    }

    /// Stops the controller gracefully and waits for it.
    pub async fn stop_controller(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.controller.take() {
            let _ = tokio::time::timeout(scaled(Duration::from_secs(30)), task).await;
        }
    }

    /// Creates or replaces a credentials Secret in the test namespace (`server`: the
    /// emulator's by default).
    pub async fn put_secret(&self, name: &str, token: &str, server: Option<&str>) {
        let server = server
            .map(str::to_owned)
            .unwrap_or_else(|| self.emulator.base_url());
        self.objects.put_secret(name, token, &server).await
    }

    /// Creates a CheckoutLink with `spec` (JSON, as in a manifest).
    pub async fn create(&self, name: &str, spec: Value) -> CheckoutLink {
        self.create_with(name, json!({}), spec).await
    }

    /// One emulator counter (0 when absent).
    pub fn count(&self, key: &str) -> u64 {
        objects::count(&self.emulator, key)
    }

    /// The counters for the checkout-link routes.
    pub fn link_counters(&self) -> BTreeMap<String, u64> {
        self.emulator
            .counters()
            .into_iter()
            .filter(|(k, _)| k.contains("/v1/checkout-links/"))
            .collect()
    }

    /// The link as the emulator serves it.
    pub fn polar_link(&self, id: &str) -> Value {
        self.emulator
            .link(id)
            .unwrap_or_else(|| panic!("the emulator has no live link {id}"))
    }

    /// A client of the emulator with the demo token, for setting up links out of band.
    pub fn polar_client(&self) -> checkout_link_operator::polar::http::HttpClient {
        use checkout_link_operator::polar::{Credentials, Server, Token};
        let credentials = Credentials {
            token: Token::new(TOKEN),
            server: Server::parse(&self.emulator.base_url()).unwrap(),
        };
        checkout_link_operator::polar::http::HttpClient::new(
            credentials,
            checkout_link_operator::polar::http::API_VERSION,
            Duration::from_secs(5),
        )
        .unwrap()
    }

    /// Stops the controller and the emulator.
    pub async fn finish(mut self) {
        self.stop_controller().await;
    }
}

impl std::ops::Deref for Harness {
    type Target = Objects;

    fn deref(&self) -> &Objects {
        &self.objects
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// (status, reason, message) of a condition.
pub fn condition(link: &CheckoutLink, type_: &str) -> Option<(String, String, String)> {
    link.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// The status, which the caller expects to exist.
pub fn status(link: &CheckoutLink) -> &CheckoutLinkStatus {
    link.status.as_ref().expect("a status")
}

/// The status' Polar id.
pub fn id(link: &CheckoutLink) -> String {
    status(link).id.clone().expect("status.id")
}

/// Sleeps while the controller keeps running: a window in which something must *not* happen
/// (no call, no write), checked after it. Not a deadline, so not scaled, and never a wait for
/// something to happen: those are [`eventually`].
pub async fn settle(d: Duration) {
    tokio::time::sleep(d).await;
}
