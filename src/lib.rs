//! checkout-link-operator: Polar checkout links managed as Kubernetes `CheckoutLink` resources.
//!
//! Module map:
//! - [`crd`]: the `CheckoutLink` resource (spec, status, conditions) and its admission rules. No IO.
#![forbid(unsafe_code)]

pub mod crd;

pub use crd::{CheckoutLink, CheckoutLinkSpec, CheckoutLinkStatus};
