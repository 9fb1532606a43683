//! checkout-link-operator: Polar checkout links managed as Kubernetes `CheckoutLink` resources.
//!
//! Module map:
//! - [`crd`]: the `CheckoutLink` resource (spec, status, conditions) and its admission rules. No IO.
//! - [`polar`]: everything that speaks HTTP to Polar (no Kubernetes).
#![forbid(unsafe_code)]

pub mod crd;
pub mod polar;

pub use crd::{CheckoutLink, CheckoutLinkSpec, CheckoutLinkStatus};
