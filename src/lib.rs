//! checkout-link-operator: Polar checkout links managed as Kubernetes `CheckoutLink` resources.
//!
//! Module map, from the bottom up (pure modules do no IO; the others say what they talk to):
//!
//! | module | what | IO |
//! |---|---|---|
//! | [`crd`] | the `CheckoutLink` resource (spec, status, conditions) and its admission rules | pure |
//! | [`polar`] | everything about Polar: domain types, the field table, comparison, the HTTP client, governors, mirrors and sweeps | Polar (HTTP); no Kubernetes |
//! | [`share_url`] | `status.shareUrl`: the link URL with `spec.urlParameters` | pure |
//! | [`error`] | the reconcile [`error::Error`] and its bounded categories | pure |
//! | [`config`] | the command line (clap, with environment fallbacks) and the controller's settings | reads files and the environment |
//! | [`telemetry`] | logging | stderr |
//! | [`metrics`] | Prometheus metrics with bounded labels | pure |
//! | [`server`] | `/healthz`, `/readyz`, `/metrics` | HTTP server |
//! | [`leader`] | leader election through a Lease | Kubernetes |
//! | [`reconcile`] | the controller: watches, observe → plan → execute → status, the failure policy | Kubernetes, and Polar through [`polar`] |
//! | [`cli`] | `kubectl-polar import` and `diff`: manifests for existing links, what a manifest would send | pure |
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod crd;
pub mod error;
pub mod leader;
pub mod metrics;
pub mod polar;
pub mod reconcile;
pub mod server;
pub mod share_url;
pub mod telemetry;

pub use crd::{CheckoutLink, CheckoutLinkSpec, CheckoutLinkStatus};
