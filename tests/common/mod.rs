//! The integration harness: the shared real control plane (one per test binary), a fresh
//! namespace and an in-process emulator per test, and the controller running in-process,
//! scoped to that namespace.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use checkout_link_operator::config::Settings;
use checkout_link_operator::metrics::Metrics;
use checkout_link_operator::reconcile;
use checkout_link_operator::reconcile::credentials::SecretName;
use checkout_link_operator::server::Readiness;
use checkout_link_operator::{CheckoutLink, CheckoutLinkStatus};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use polar_emulator::Emulator;
use serde_json::{Value, json};
use testenv::ControlPlane;

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
        }
    }
}

/// One test's world.
pub struct Harness {
    pub client: kube::Client,
    pub ns: String,
    pub emulator: Emulator,
    pub links: Api<CheckoutLink>,
    pub secrets: Api<Secret>,
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

impl Harness {
    /// A namespace, an emulator with the demo seed, the default credentials Secret (unless
    /// `options.token` is `None`) and the controller.
    pub async fn start(test: &str, options: Options) -> Harness {
        init_logging();
        checkout_link_operator::polar::install_crypto_provider();
        let plane = ControlPlane::shared();
        let (client, ns) = plane.namespace(test).await.expect("namespace");
        let config = polar_emulator::Config {
            rate_limit: options.rate_limit,
            rate_limit_window: options.rate_limit_window,
            ..polar_emulator::Config::default()
        };
        let emulator = polar_emulator::spawn(config, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("emulator");
        let links: Api<CheckoutLink> = Api::namespaced(client.clone(), &ns);
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
        let mut harness = Harness {
            client,
            ns,
            emulator,
            links,
            secrets,
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
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
    }

    /// Creates or replaces a credentials Secret in the test namespace.
    pub async fn put_secret(&self, name: &str, token: &str, server: Option<&str>) {
        let server = server
            .map(str::to_owned)
            .unwrap_or_else(|| self.emulator.base_url());
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "stringData": {"token": token, "server": server},
        }))
        .unwrap();
        self.secrets
            .patch(
                name,
                &PatchParams::apply("tests").force(),
                &Patch::Apply(&secret),
            )
            .await
            .expect("apply secret");
    }

    /// Creates a CheckoutLink with `spec` (JSON, as in a manifest).
    pub async fn create(&self, name: &str, spec: Value) -> CheckoutLink {
        self.create_with(name, json!({}), spec).await
    }

    /// Creates a CheckoutLink with extra metadata (annotations, labels).
    pub async fn create_with(&self, name: &str, metadata: Value, spec: Value) -> CheckoutLink {
        let mut meta = metadata;
        meta["name"] = json!(name);
        let link: CheckoutLink = serde_json::from_value(json!({
            "apiVersion": "polar.sh/v1alpha1",
            "kind": "CheckoutLink",
            "metadata": meta,
            "spec": spec,
        }))
        .expect("a valid CheckoutLink");
        self.links
            .create(&PostParams::default(), &link)
            .await
            .expect("create CheckoutLink")
    }

    /// Merge-patches the spec.
    pub async fn patch_spec(&self, name: &str, spec: Value) -> CheckoutLink {
        self.links
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .expect("patch spec")
    }

    /// Deletes a CheckoutLink (the finalizer runs).
    pub async fn delete(&self, name: &str) {
        self.links
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }

    /// Polls until `check` accepts the object (or panics after `timeout`, printing it).
    pub async fn wait_for(
        &self,
        name: &str,
        timeout: Duration,
        what: &str,
        check: impl Fn(&CheckoutLink) -> bool,
    ) -> CheckoutLink {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = None;
        loop {
            if let Ok(Some(link)) = self.links.get_opt(name).await {
                if check(&link) {
                    return link;
                }
                last = Some(link);
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {name} to be {what}; last seen: {}",
                    serde_json::to_string_pretty(
                        &last.map(|l| json!({"metadata": l.metadata, "status": l.status}))
                    )
                    .unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for Ready=True at the current generation.
    pub async fn wait_ready(&self, name: &str) -> CheckoutLink {
        self.wait_for(name, Duration::from_secs(60), "Ready", |l| {
            condition(l, "Ready").is_some_and(|c| c.0 == "True")
                && l.status.as_ref().and_then(|s| s.observed_generation) == l.metadata.generation
        })
        .await
    }

    /// Waits for a condition with this status and reason.
    pub async fn wait_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: &str,
    ) -> CheckoutLink {
        self.wait_for(
            name,
            Duration::from_secs(60),
            &format!("{type_}={status} ({reason})"),
            |l| {
                condition(l, type_).is_some_and(|c| c.0 == status && c.1 == reason)
                    && l.status.as_ref().and_then(|s| s.observed_generation)
                        == l.metadata.generation
            },
        )
        .await
    }

    /// Waits until the CheckoutLink no longer exists.
    pub async fn wait_gone(&self, name: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.links.get_opt(name).await.expect("get").is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} was never deleted"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Events about the object, oldest first.
    pub async fn events(&self, name: &str) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.ns);
        let mut events: Vec<Event> = api
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect();
        events.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
        events
    }

    /// Waits until an event with `reason` exists, and returns it.
    pub async fn wait_event(&self, name: &str, reason: &str) -> Event {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(e) = self
                .events(name)
                .await
                .into_iter()
                .find(|e| e.reason.as_deref() == Some(reason))
            {
                return e;
            }
            if tokio::time::Instant::now() > deadline {
                let seen: Vec<_> = self
                    .events(name)
                    .await
                    .into_iter()
                    .map(|e| (e.reason, e.note))
                    .collect();
                panic!("no {reason} event for {name}; events: {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One emulator counter (0 when absent).
    pub fn count(&self, key: &str) -> u64 {
        self.emulator.counters().get(key).copied().unwrap_or(0)
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

    /// Stops the controller and the emulator.
    pub async fn finish(mut self) {
        self.stop_controller().await;
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

/// Sleeps while the controller keeps running.
pub async fn settle(d: Duration) {
    tokio::time::sleep(d).await;
}

/// Runs `f` with a deadline.
pub async fn within<T>(d: Duration, what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(d, f)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {d:?}"))
}
