//! The pure part of leader election: where and as whom this process competes, the timing
//! derived from the lease duration, what a read of the Lease means ([`view`]), and the
//! defaults of the namespace and the identity. No IO.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::jiff::Timestamp;

use super::{DEFAULT_LEASE_NAME, SERVICE_ACCOUNT_NAMESPACE};

/// Where, and as whom, this process competes for the Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Election {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub lease_name: String,
    /// This process' identity (`holderIdentity` while it leads); unique per replica.
    pub identity: String,
    /// The rhythm derived from the lease duration.
    pub timing: Timing,
}

/// The rhythm of the election, derived from the lease duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long the Lease stays valid after a renewal, in whole seconds (at least 2).
    pub lease_secs: u64,
    /// The leader renews this many seconds before the Lease expires: half the duration,
    /// rounded up (so it renews at least every half duration).
    pub grace_secs: u64,
    /// The leader stops leading this long before its last confirmed renewal expires: a
    /// quarter of the duration.
    pub margin: Duration,
    /// How often the Lease is read: an eighth of the duration, between 250 ms and 2 s.
    pub poll: Duration,
}

impl Timing {
    /// The timing for a lease duration (rounded up to whole seconds, at least 2).
    pub fn new(duration: Duration) -> Timing {
        let lease_secs = duration.as_secs_f64().ceil().max(2.0) as u64;
        let lease = Duration::from_secs(lease_secs);
        Timing {
            lease_secs,
            grace_secs: lease_secs.div_ceil(2).min(lease_secs - 1),
            margin: lease / 4,
            poll: (lease / 8).clamp(Duration::from_millis(250), Duration::from_secs(2)),
        }
    }
}

/// What one read of the Lease says, seen from this process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseView {
    /// No Lease, no holder, or a holder that let it expire: it can be taken.
    Free,
    /// This process holds it and may lead for `remaining` more (its expiry less the margin;
    /// zero once that has passed).
    Mine {
        /// Time left to lead without a newer renewal.
        remaining: Duration,
    },
    /// Another process holds it, for `remaining` more unless renewed.
    Held {
        /// Its `holderIdentity`.
        holder: String,
        /// Time until it expires.
        remaining: Duration,
    },
}

/// Reads a Lease's spec at `now` for `identity`: expiry is `renewTime + leaseDurationSeconds`,
/// the rule every contender applies.
pub fn view(
    spec: Option<&LeaseSpec>,
    identity: &str,
    now: Timestamp,
    timing: &Timing,
) -> LeaseView {
    let Some(spec) = spec else {
        return LeaseView::Free;
    };
    let Some(holder) = spec.holder_identity.as_deref().filter(|h| !h.is_empty()) else {
        return LeaseView::Free;
    };
    let (Some(renewed), Some(secs)) = (&spec.renew_time, spec.lease_duration_seconds) else {
        return LeaseView::Free;
    };
    let expiry_ms = renewed.0.as_millisecond() + i64::from(secs.max(0)) * 1000;
    let until = |end_ms: i64| {
        Duration::from_millis(u64::try_from(end_ms - now.as_millisecond()).unwrap_or(0))
    };
    if holder == identity {
        let margin_ms = i64::try_from(timing.margin.as_millis()).unwrap_or(i64::MAX);
        return LeaseView::Mine {
            remaining: until(expiry_ms.saturating_sub(margin_ms)),
        };
    }
    match until(expiry_ms) {
        Duration::ZERO => LeaseView::Free,
        remaining => LeaseView::Held {
            holder: holder.to_owned(),
            remaining,
        },
    }
}

/// The Lease's namespace: the flag, else `POD_NAMESPACE`, else the service account's
/// namespace file (in a pod); blank values count as absent.
pub fn resolve_namespace(
    flag: Option<&str>,
    pod_namespace: Option<&str>,
    service_account: Option<&str>,
) -> Result<String, String> {
    [flag, pod_namespace, service_account]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|ns| !ns.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            format!(
                "--leader-election needs the Lease's namespace: set --leader-election-namespace \
                 (CHECKOUT_LINK_OPERATOR_LEADER_ELECTION_NAMESPACE) or POD_NAMESPACE; \
                 {SERVICE_ACCOUNT_NAMESPACE} cannot be read (not in a pod)"
            )
        })
}

/// This process' identity: the flag, else `POD_NAME`, else the host name with `suffix`
/// (random, so that two processes on one host differ), else `checkout-link-operator-<suffix>`.
pub fn resolve_identity(
    flag: Option<&str>,
    pod_name: Option<&str>,
    hostname: Option<&str>,
    suffix: &str,
) -> String {
    let present = |s: Option<&str>| {
        s.map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    present(flag)
        .or_else(|| present(pod_name))
        .unwrap_or_else(|| {
            let host = present(hostname).unwrap_or_else(|| DEFAULT_LEASE_NAME.to_owned());
            format!("{host}-{suffix}")
        })
}

/// Six random lowercase letters and digits.
pub fn random_suffix() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}
