//! checkout-link-operator: Polar checkout links managed as Kubernetes `CheckoutLink` resources.
//!
//! Module map:
//! - [`crd`]: the `CheckoutLink` resource (spec, status, conditions) and its admission rules. No IO.
//! - [`polar`]: everything that speaks HTTP to Polar (no Kubernetes).
//! - [`leader`]: leader election through a Lease (`--leader-election`).
#![forbid(unsafe_code)]

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
