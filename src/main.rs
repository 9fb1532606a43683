//! The operator binary: parse the configuration, set up logging, then run the controller and
//! the `/healthz`, `/readyz`, `/metrics` server until SIGTERM or SIGINT. With
//! `--leader-election`, the server starts at once and the controller only once this process
//! holds the Lease; losing the Lease ends the process with a failure.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use checkout_link_operator::config::Config;
use checkout_link_operator::leader::Elector;
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
    let election = match config.election() {
        Ok(election) => election,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    polar::install_crypto_provider();
    let client = match config.kube_client().await {
        Ok(client) => client,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let signal = shutdown_signal();
    tokio::spawn(async move {
        signal.await;
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
    let controller = {
        let (client, settings) = (client.clone(), config.settings());
        let (metrics, readiness) = (metrics.clone(), readiness.clone());
        let stop = stopped(stop_rx.clone());
        move || reconcile::run(client, settings, metrics, readiness, stop)
    };
    match election {
        None => {
            metrics.set_leader(true);
            controller().await;
        }
        Some(election) => {
            let elector = Elector::new(client, election, metrics, readiness);
            if let Err(lost) = elector.lead(stopped(stop_rx), controller).await {
                tracing::error!(%lost, "exiting: another replica may act now, this one must not");
                return ExitCode::FAILURE;
            }
        }
    }
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

/// SIGTERM (Kubernetes stopping the pod) or SIGINT (Ctrl-C). The SIGTERM handler is installed
/// when this is called, so a SIGTERM that arrives before the future is first polled is kept.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let terminate = async {
            match terminate {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {},
            () = terminate => {},
        }
    }
}
