//! Prometheus metrics, all prefixed `checkout_link_operator_`, with bounded labels only
//! (a result, a verb, a status class, an error category; never an object name or raw text):
//!
//! - `reconciles_total{result}`: `ok`, `held` (nothing to do yet), `retrying`, `stalled`, `error`;
//! - `reconcile_duration_seconds`: histogram of reconcile durations;
//! - `polar_requests_total{verb,status_class}`: every HTTP request to Polar;
//! - `errors_total{category}`: reconcile failures by [`crate::error::Error::category`];
//! - `leader`: 1 while this process runs the controller (it holds the leader Lease, or runs
//!   without `--leader-election`), 0 while it stands by;
//! - `sweeps_total{result}`: sweeps of an organisation's links (`ok`, `failed`);
//! - `sweep_calls_total`: list calls made by sweeps;
//! - `mirrored_links`: links held in the organisations' mirrors, as of each one's last sweep;
//! - `status_writes_total`: CheckoutLink status patches sent;
//! - `orphaned_links_total`: links left in Polar when a deletion gave up after its grace;
//! - `links_by_sellable_reason{reason}`: CheckoutLinks by the reason of their `Sellable`
//!   condition (`Sellable`, `SomeProductsUnavailable`, `ProductsUnavailable`,
//!   `DiscountNotStarted`, `DiscountExpired`, `DiscountExhausted`);
//! - `paused_resources`: CheckoutLinks paused by `polar.sh/paused` (a forgotten pause shows).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::polar::http::Observer;

/// The prefix of every metric name.
pub const PREFIX: &str = "checkout_link_operator";

/// Label set `{result}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// How the reconcile ended.
    pub result: &'static str,
}

/// Label set `{verb,status_class}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolarLabels {
    /// `create`, `get`, `update`, `delete` or `list`.
    pub verb: &'static str,
    /// `2xx`, `3xx`, `4xx`, `5xx`, `429`, `timeout` or `transport`.
    pub status_class: &'static str,
}

/// Label set `{category}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CategoryLabel {
    /// An error category.
    pub category: &'static str,
}

/// The operator's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabel, Counter>,
    reconcile_duration: Histogram,
    polar_requests: Family<PolarLabels, Counter>,
    errors: Family<CategoryLabel, Counter>,
    leader: Gauge,
    sweeps: Family<ResultLabel, Counter>,
    sweep_calls: Counter,
    mirrored: Gauge,
    mirrored_by_org: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    status_writes: Counter,
    orphaned: Counter,
    sellable: Family<ReasonLabel, Gauge>,
    paused: Gauge,
}

/// Label set `{reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// A `Sellable` reason (a bounded set).
    pub reason: &'static str,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let reconciles = Family::<ResultLabel, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles of CheckoutLinks, by result",
            reconciles.clone(),
        );
        // 1 ms to ~65 s.
        let reconcile_duration = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        registry.register_with_unit(
            "reconcile_duration",
            "Time taken by one reconcile",
            prometheus_client::registry::Unit::Seconds,
            reconcile_duration.clone(),
        );
        let polar_requests = Family::<PolarLabels, Counter>::default();
        registry.register(
            "polar_requests",
            "HTTP requests sent to Polar, by verb and status class",
            polar_requests.clone(),
        );
        let errors = Family::<CategoryLabel, Counter>::default();
        registry.register("errors", "Reconcile failures, by category", errors.clone());
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this process runs the controller (holds the leader Lease), 0 while it stands by",
            leader.clone(),
        );
        let sweeps = Family::<ResultLabel, Counter>::default();
        registry.register(
            "sweeps",
            "Sweeps of an organisation's checkout links, by result",
            sweeps.clone(),
        );
        let sweep_calls = Counter::default();
        registry.register(
            "sweep_calls",
            "List calls made by sweeps (one per 100 links of an organisation)",
            sweep_calls.clone(),
        );
        let mirrored = Gauge::default();
        registry.register(
            "mirrored_links",
            "Checkout links held in the organisations' mirrors",
            mirrored.clone(),
        );
        let status_writes = Counter::default();
        registry.register(
            "status_writes",
            "CheckoutLink status patches sent",
            status_writes.clone(),
        );
        let orphaned = Counter::default();
        registry.register(
            "orphaned_links",
            "Polar links left in place when a deletion gave up after its grace",
            orphaned.clone(),
        );
        let sellable = Family::<ReasonLabel, Gauge>::default();
        registry.register(
            "links_by_sellable_reason",
            "CheckoutLinks by the reason of their Sellable condition (Sellable: they sell as declared)",
            sellable.clone(),
        );
        let paused = Gauge::default();
        registry.register(
            "paused_resources",
            "CheckoutLinks paused by the polar.sh/paused annotation (no Polar call for them)",
            paused.clone(),
        );
        Metrics {
            paused,
            sellable,
            registry,
            reconciles,
            reconcile_duration,
            polar_requests,
            errors,
            leader,
            sweeps,
            sweep_calls,
            mirrored,
            mirrored_by_org: Default::default(),
            status_writes,
            orphaned,
        }
    }

    /// Counts a reconcile and its duration.
    pub fn reconciled(&self, result: &'static str, took: Duration) {
        self.reconciles.get_or_create(&ResultLabel { result }).inc();
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    /// Counts a failure.
    pub fn error(&self, category: &'static str) {
        self.errors.get_or_create(&CategoryLabel { category }).inc();
    }

    /// Counts a Polar request.
    pub fn polar_request(&self, verb: &'static str, status_class: &'static str) {
        self.polar_requests
            .get_or_create(&PolarLabels { verb, status_class })
            .inc();
    }

    /// Counts a sweep (see [`crate::polar::org::SweepReport`]).
    pub fn swept(&self, report: &crate::polar::org::SweepReport) {
        let result = if report.error.is_some() {
            "failed"
        } else {
            "ok"
        };
        self.sweeps.get_or_create(&ResultLabel { result }).inc();
        self.sweep_calls.inc_by(u64::from(report.calls));
        let mut by_org = self
            .mirrored_by_org
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        by_org.insert(format!("{:?}", report.org), report.links as i64);
        self.mirrored.set(by_org.values().sum());
    }

    /// Sets the number of links per `Sellable` reason.
    pub fn set_unsellable(&self, counts: &[(&'static str, i64)]) {
        for (reason, n) in counts {
            self.sellable.get_or_create(&ReasonLabel { reason }).set(*n);
        }
    }

    /// Sets the number of paused resources.
    pub fn set_paused(&self, n: i64) {
        self.paused.set(n);
    }

    /// Counts a status patch.
    pub fn status_written(&self) {
        self.status_writes.inc();
    }

    /// Counts a link left in Polar by a deletion that gave up.
    pub fn orphaned(&self) {
        self.orphaned.inc();
    }

    /// Whether this process leads (runs the controller).
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// An observer for [`crate::polar::http::HttpClient`] that counts its requests here.
    pub fn polar_observer(self: &Arc<Self>) -> Observer {
        let metrics = Arc::clone(self);
        Arc::new(move |verb, class, _took| metrics.polar_request(verb, class))
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_prefixed_and_labelled() {
        let m = Arc::new(Metrics::new());
        m.reconciled("ok", Duration::from_millis(5));
        m.error("polar_server");
        (m.polar_observer())("create", "2xx", Duration::from_millis(1));
        assert!(m.encode().contains("checkout_link_operator_leader 0"));
        m.set_leader(true);
        let text = m.encode();
        for needle in [
            "checkout_link_operator_reconciles_total{result=\"ok\"} 1",
            "checkout_link_operator_reconcile_duration_seconds_count 1",
            "checkout_link_operator_polar_requests_total{verb=\"create\",status_class=\"2xx\"} 1",
            "checkout_link_operator_errors_total{category=\"polar_server\"} 1",
            "checkout_link_operator_leader 1",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }
}
