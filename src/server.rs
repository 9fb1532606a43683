//! The HTTP endpoints for Kubernetes and Prometheus: `/healthz` (the process runs),
//! `/readyz` (the leader's caches are synced, or a healthy standby waits for the Lease) and
//! `/metrics` (OpenMetrics text).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

/// Whether the process is ready: the controller's watches have listed everything, or (with
/// `--leader-election`) the process is a healthy standby: it reads the Lease and waits for it.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<Flags>);

#[derive(Debug, Default)]
struct Flags {
    synced: AtomicBool,
    standby: AtomicBool,
}

impl Readiness {
    /// Marks the controller ready (its caches are synced).
    pub fn set_ready(&self) {
        self.0.synced.store(true, Ordering::Release);
    }

    /// Marks the process a healthy standby (`true`: it reads the Lease, and its last attempt
    /// to take a free one, if any, worked) or not (`false`: it cannot read or take the Lease,
    /// or it now leads).
    pub fn set_standby(&self, healthy: bool) {
        self.0.standby.store(healthy, Ordering::Release);
    }

    /// Whether it is: the caches are synced, or it is a healthy standby.
    pub fn is_ready(&self) -> bool {
        self.state() != ReadyState::NotReady
    }

    /// Which kind of ready.
    pub fn state(&self) -> ReadyState {
        if self.0.synced.load(Ordering::Acquire) {
            ReadyState::Synced
        } else if self.0.standby.load(Ordering::Acquire) {
            ReadyState::Standby
        } else {
            ReadyState::NotReady
        }
    }
}

/// What `/readyz` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadyState {
    /// The controller runs and its caches are synced.
    Synced,
    /// A healthy standby, waiting for the leader Lease.
    Standby,
    /// Neither (yet).
    NotReady,
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    readiness: Readiness,
}

/// The router serving the three endpoints.
pub fn router(metrics: Arc<Metrics>, readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AppState { metrics, readiness })
}

/// `/readyz`: 200 when the controller runs with its caches synced (the leader, or the only
/// process without `--leader-election`) **or** when the process is a healthy standby waiting
/// for the leader Lease (it reads the Lease, and could take it when free). A standby must
/// count as ready: otherwise a Deployment's rolling update, which waits for each new pod to be
/// ready before stopping an old one, would never finish while the old pod holds the Lease.
/// 503 otherwise: caches not synced yet, or a standby that cannot read or take the Lease.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.readiness.state() {
        ReadyState::Synced => (StatusCode::OK, "ready\n"),
        ReadyState::Standby => (
            StatusCode::OK,
            "ready: standby, waiting for the leader lease\n",
        ),
        ReadyState::NotReady => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: caches not synced yet\n",
        ),
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// Serves the endpoints on `addr` until `shutdown` completes.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_on(listener, metrics, readiness, shutdown).await
}

/// Serves the endpoints on a bound listener until `shutdown` completes.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "serving /healthz, /readyz and /metrics");
    axum::serve(listener, router(metrics, readiness))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_when_synced_or_a_healthy_standby() {
        let r = Readiness::default();
        assert_eq!(r.state(), ReadyState::NotReady);
        r.set_standby(true);
        assert_eq!(r.state(), ReadyState::Standby);
        assert!(r.is_ready());
        r.set_standby(false);
        assert!(
            !r.is_ready(),
            "a standby that cannot read the Lease is not ready"
        );
        r.set_ready();
        assert_eq!(r.state(), ReadyState::Synced);
        r.set_standby(true);
        assert_eq!(r.state(), ReadyState::Synced, "synced wins");
    }
}
