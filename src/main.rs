//! The operator binary: parse the configuration, set up logging, then run the controller and
//! the `/healthz`, `/readyz`, `/metrics` server until SIGTERM or SIGINT.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use checkout_link_operator::config::Config;
use checkout_link_operator::metrics::Metrics;
use checkout_link_operator::server::{self, Readiness};
use checkout_link_operator::{polar, reconcile, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if let Err(e) = telemetry::init(config.log_format, &config.log_level) {
        eprintln!("checkout-link-operator: {e}");
        return ExitCode::from(2);
    }
    polar::install_crypto_provider();
    let client = match config.kube_client().await {
        Ok(client) => client,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested; finishing the reconciles in flight");
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let metrics = Arc::new(Metrics::new());
    let readiness = Readiness::default();
    let server = tokio::spawn(server::serve(
        config.metrics_addr,
        metrics.clone(),
        readiness.clone(),
        stopped(stop_rx.clone()),
    ));
    reconcile::run(
        client,
        config.settings(),
        metrics,
        readiness,
        stopped(stop_rx),
    )
    .await;
    match server.await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            tracing::error!(addr = %config.metrics_addr, "metrics server: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            tracing::error!("metrics server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM (Kubernetes stopping the pod) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
