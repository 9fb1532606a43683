//! Leader election through a Kubernetes `Lease` (`--leader-election`): of several replicas,
//! exactly one runs the controller; a standby takes over when the leader stops.
//!
//! The Lease is written only by [`kube_lease_manager`] (create, acquire, renew, release). Two
//! gaps of that crate are closed here by *reading* the Lease every [`Timing::poll`]:
//!
//! - a standby's manager sleeps until the lease it saw expires, so it would not notice a
//!   release; when a read shows the Lease free, a fresh manager acquires it at once;
//! - a leader's manager retries failed renewals without saying so; the read tells when the
//!   Lease was last renewed, and the leader gives up [`Timing::margin`] before that renewal
//!   expires, before any standby may take the Lease.
//!
//! ```text
//! standby ── read: free ──► acquire ──► leading: run the controller, renew, read
//!    ▲                                     │ controller stopped (SIGTERM) ─► release
//!    └── read: held by another             │ renewal not confirmed in time, or another
//!                                          ▼ holder ─► Lost: the process exits non-zero
//! ```
//!
//! Decisions ([`view`], [`Timing::new`], [`resolve_namespace`], [`resolve_identity`]) are pure;
//! [`Elector`] is the IO edge. RBAC: `get`, `create` and `patch` on `coordination.k8s.io`
//! `leases` in the Lease's namespace (the crate writes with patches, never `update`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::server::Readiness;

mod decide;

/// Default name of the Lease.
pub const DEFAULT_LEASE_NAME: &str = "checkout-link-operator";
/// The namespace of the pod's service account, mounted in every pod.
pub const SERVICE_ACCOUNT_NAMESPACE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
/// How long a release on shutdown may take before the process exits anyway.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one attempt to acquire a free Lease may take. A manager that lost the race sleeps
/// until the winner's lease expires; the standby goes back to reading the Lease instead.
/// Cutting an attempt short is safe: the next read shows the Lease free, or already ours.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

pub use decide::{
    Election, LeaseView, Timing, random_suffix, resolve_identity, resolve_namespace, view,
};

/// Why a leader stopped leading.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("lost the leader lease: {0}")]
pub struct Lost(pub String);

/// One read of the Lease, and when it started.
#[derive(Clone, Debug)]
struct Observation {
    at: Instant,
    view: Result<LeaseView, String>,
}

/// Runs the election for this process.
pub struct Elector {
    client: kube::Client,
    election: Election,
    metrics: Arc<Metrics>,
    readiness: Readiness,
}

impl Elector {
    /// An elector for `election`; it reports the `leader` gauge and the standby's readiness.
    pub fn new(
        client: kube::Client,
        election: Election,
        metrics: Arc<Metrics>,
        readiness: Readiness,
    ) -> Elector {
        Elector {
            client,
            election,
            metrics,
            readiness,
        }
    }

    /// Stands by until this process holds the Lease (or `stop` completes: then returns at
    /// once), runs `work` while it leads, and releases the Lease when `work` returns.
    /// `Err(Lost)` when the leadership is lost first: `work` is dropped, and the caller
    /// should exit so that it no longer acts.
    pub async fn lead<W: Future<Output = ()>>(
        self,
        stop: impl Future<Output = ()>,
        work: impl FnOnce() -> W,
    ) -> Result<(), Lost> {
        let e = &self.election;
        tracing::info!(
            lease = %format!("{}/{}", e.namespace, e.lease_name),
            identity = %e.identity,
            lease_secs = e.timing.lease_secs,
            "leader election: waiting to hold the lease"
        );
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &e.namespace);
        let (tx, mut observations) = watch::channel(Observation {
            at: Instant::now(),
            view: Err("not read yet".to_owned()),
        });
        let observer = tokio::spawn(observe(api, e.clone(), tx));
        let _observer = AbortOnDrop(observer);

        let mut leadership = tokio::select! {
            leadership = self.acquire(&mut observations) => leadership,
            () = stop => {
                tracing::info!("shutdown requested while standing by");
                self.readiness.set_standby(false);
                return Ok(());
            }
        };
        let result = tokio::select! {
            () = work() => {
                leadership.release().await;
                Ok(())
            }
            lost = leadership.lost() => Err(lost),
        };
        self.metrics.set_leader(false);
        result
    }

    /// Reads the observations until the Lease is free, then acquires it. The standby is
    /// ready while it reads the Lease and its last attempt to acquire it, if any, worked
    /// (one that cannot acquire, for want of RBAC say, could never take over).
    async fn acquire(&self, observations: &mut watch::Receiver<Observation>) -> Leadership {
        let mut last_holder = None;
        let mut complaints = Complaints::default();
        loop {
            if observations.changed().await.is_err() {
                // The observer never stops first; wait for the caller's stop.
                std::future::pending::<()>().await;
            }
            let seen = observations.borrow_and_update().clone();
            let healthy = match seen.view {
                Err(error) => {
                    complaints.report("cannot read the leader lease", &error);
                    false
                }
                Ok(LeaseView::Held { holder, .. }) => {
                    if last_holder.as_ref() != Some(&holder) {
                        tracing::info!(%holder, "standing by: another replica leads");
                        last_holder = Some(holder);
                    }
                    true
                }
                Ok(LeaseView::Free | LeaseView::Mine { .. }) => {
                    match self.try_acquire(observations).await {
                        Ok(Some(leadership)) => return leadership,
                        Ok(None) => true,
                        Err(error) => {
                            let error = error.to_string();
                            complaints.report("could not acquire the leader lease", &error);
                            false
                        }
                    }
                }
            };
            if healthy {
                complaints = Complaints::default();
            }
            self.readiness.set_standby(healthy);
        }
    }

    /// One attempt with a fresh manager (its first step reads the Lease anew). `Ok(None)`:
    /// another replica was faster.
    async fn try_acquire(
        &self,
        observations: &watch::Receiver<Observation>,
    ) -> Result<Option<Leadership>, kube_lease_manager::LeaseManagerError> {
        let e = &self.election;
        let started = Instant::now();
        let manager = LeaseManagerBuilder::new(self.client.clone(), &e.lease_name)
            .with_namespace(&e.namespace)
            .with_identity(&e.identity)
            .with_duration(e.timing.lease_secs)
            .with_grace(e.timing.grace_secs)
            .build()
            .await?;
        match tokio::time::timeout(ACQUIRE_TIMEOUT, manager.changed()).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) | Err(_) => return Ok(None),
            Ok(Err(error)) => return Err(error),
        }
        let acquired = Instant::now();
        tracing::info!(
            identity = %e.identity,
            lease = %format!("{}/{}", e.namespace, e.lease_name),
            took_ms = acquired.duration_since(started).as_millis() as u64,
            "acquired the leader lease: this replica leads"
        );
        self.readiness.set_standby(false);
        self.metrics.set_leader(true);
        // The renewal that acquired it happened after `started`.
        let deadline = started + Duration::from_secs(e.timing.lease_secs) - e.timing.margin;
        let (release, released) = oneshot::channel();
        let task = tokio::spawn(hold(
            manager,
            e.timing,
            Confirmed { deadline, acquired },
            observations.clone(),
            released,
        ));
        Ok(Some(Leadership {
            release: Some(release),
            task,
        }))
    }
}

/// The Lease while this process leads.
struct Leadership {
    release: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), Lost>>,
}

impl Leadership {
    /// Completes only when the leadership is lost.
    async fn lost(&mut self) -> Lost {
        match (&mut self.task).await {
            Ok(Err(lost)) => lost,
            Ok(Ok(())) => Lost("it was released".to_owned()),
            Err(e) => Lost(format!("the task keeping it failed: {e}")),
        }
    }

    /// Releases the Lease (so that a standby takes over at once) and waits until it is done.
    async fn release(mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
        match (&mut self.task).await {
            Ok(Ok(())) => {}
            Ok(Err(lost)) => tracing::warn!(%lost, "while shutting down"),
            Err(e) => tracing::warn!("the task keeping the leader lease failed: {e}"),
        }
    }
}

/// Until when the leader may lead, and since when observations count.
struct Confirmed {
    /// The last confirmed renewal's expiry, less the margin.
    deadline: Instant,
    /// Observations started before this instant predate the leadership.
    acquired: Instant,
}

/// Keeps the Lease: the manager renews it, the observations confirm each renewal. Ends with a
/// release when asked (or when the [`Leadership`] is dropped), or as [`Lost`] when no renewal
/// is confirmed before the deadline or another holder shows.
async fn hold(
    manager: LeaseManager,
    timing: Timing,
    mut confirmed: Confirmed,
    mut observations: watch::Receiver<Observation>,
    mut release: oneshot::Receiver<()>,
) -> Result<(), Lost> {
    type Renewal<'a> = Pin<Box<dyn Future<Output = kube_lease_manager::Result<bool>> + Send + 'a>>;
    let manager = &manager;
    let mut renewing: Renewal<'_> = Box::pin(manager.changed());
    loop {
        tokio::select! {
            biased;
            _ = &mut release => {
                // The pending renewal may hold the manager's lock: drop it first.
                drop(renewing);
                release_lease(manager).await;
                return Ok(());
            }
            () = tokio::time::sleep_until(confirmed.deadline) => {
                return Err(Lost(format!(
                    "no renewal confirmed in time (the lease lasts {}s)",
                    timing.lease_secs
                )));
            }
            renewed = &mut renewing => {
                let retry = match renewed {
                    Ok(true) => Duration::ZERO,
                    Ok(false) => return Err(Lost("another replica holds it".to_owned())),
                    Err(error) => {
                        tracing::warn!(%error, "could not renew the leader lease; retrying");
                        timing.poll
                    }
                };
                renewing = Box::pin(async move {
                    tokio::time::sleep(retry).await;
                    manager.changed().await
                });
            }
            changed = observations.changed() => {
                if changed.is_err() {
                    return Err(Lost("it is no longer read".to_owned()));
                }
                let seen = observations.borrow_and_update().clone();
                if seen.at < confirmed.acquired {
                    continue;
                }
                match seen.view {
                    Ok(LeaseView::Mine { remaining }) => confirmed.deadline = seen.at + remaining,
                    Ok(LeaseView::Held { holder, .. }) => {
                        return Err(Lost(format!("{holder} holds it now")));
                    }
                    Ok(LeaseView::Free) => {
                        return Err(Lost("it was released or deleted by someone else".to_owned()));
                    }
                    Err(error) => tracing::debug!(%error, "cannot read the leader lease"),
                }
            }
        }
    }
}

/// Releases the Lease, bounded by [`RELEASE_TIMEOUT`].
async fn release_lease(manager: &LeaseManager) {
    match tokio::time::timeout(RELEASE_TIMEOUT, manager.release()).await {
        Ok(Ok(())) => tracing::info!("released the leader lease: a standby takes over now"),
        Ok(Err(error)) => tracing::warn!(
            %error,
            "could not release the leader lease; a standby takes over when it expires"
        ),
        Err(_) => tracing::warn!(
            "releasing the leader lease took too long; a standby takes over when it expires"
        ),
    }
}

/// Reads the Lease every [`Timing::poll`] and publishes what it says, until nobody listens.
async fn observe(api: Api<Lease>, election: Election, tx: watch::Sender<Observation>) {
    let timeout = Duration::from_secs(election.timing.lease_secs);
    loop {
        let at = Instant::now();
        let now = Timestamp::now();
        let view = match tokio::time::timeout(timeout, api.get_opt(&election.lease_name)).await {
            Ok(Ok(lease)) => Ok(view(
                lease.as_ref().and_then(|l| l.spec.as_ref()),
                &election.identity,
                now,
                &election.timing,
            )),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer in {timeout:?}")),
        };
        if tx.send(Observation { at, view }).is_err() {
            return;
        }
        tokio::time::sleep(election.timing.poll).await;
    }
}

/// Warns once per distinct problem in a row; its repeats go to debug.
#[derive(Default)]
struct Complaints(Option<String>);

impl Complaints {
    fn report(&mut self, what: &str, error: &str) {
        if self.0.as_deref() == Some(error) {
            tracing::debug!(%error, "{what}");
        } else {
            tracing::warn!(%error, "{what}; not ready");
            self.0 = Some(error.to_owned());
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_800_000_000_000 + ms).unwrap()
    }

    fn spec(holder: Option<&str>, renewed_ms: Option<i64>, secs: Option<i32>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            renew_time: renewed_ms.map(|ms| MicroTime(at(ms))),
            lease_duration_seconds: secs,
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn timing_follows_the_lease_duration() {
        let ms = Duration::from_millis;
        let cases = [
            // duration, lease_secs, grace_secs, margin, poll
            (ms(15_000), 15, 8, ms(3_750), ms(1_875)),
            (ms(4_000), 4, 2, ms(1_000), ms(500)),
            (ms(2_000), 2, 1, ms(500), ms(250)),
            (ms(2_500), 3, 2, ms(750), ms(375)),
            (ms(60_000), 60, 30, ms(15_000), ms(2_000)),
            (ms(1), 2, 1, ms(500), ms(250)),
        ];
        for (duration, lease_secs, grace_secs, margin, poll) in cases {
            let t = Timing::new(duration);
            assert_eq!(
                t,
                Timing {
                    lease_secs,
                    grace_secs,
                    margin,
                    poll,
                },
                "{duration:?}"
            );
            assert!(
                t.grace_secs >= 1 && t.grace_secs < t.lease_secs,
                "{duration:?}"
            );
            // A renewal (every lease - grace) is read (every poll) before the leader gives up
            // (at lease - margin), with room for a retry.
            let renew_at = Duration::from_secs(t.lease_secs - t.grace_secs);
            let give_up_at = Duration::from_secs(t.lease_secs) - t.margin;
            assert!(renew_at + 2 * t.poll <= give_up_at, "{duration:?}");
        }
    }

    #[test]
    fn the_lease_is_read_as_free_mine_or_held() {
        let t = Timing::new(Duration::from_secs(4)); // margin 1 s
        let secs = Duration::from_secs;
        let cases = [
            ("no lease", None, LeaseView::Free),
            ("empty spec", Some(spec(None, None, None)), LeaseView::Free),
            (
                "released",
                Some(spec(None, Some(0), Some(4))),
                LeaseView::Free,
            ),
            (
                "blank holder",
                Some(spec(Some(""), Some(0), Some(4))),
                LeaseView::Free,
            ),
            (
                "never renewed",
                Some(spec(Some("b"), None, Some(4))),
                LeaseView::Free,
            ),
            (
                "no duration",
                Some(spec(Some("b"), Some(0), None)),
                LeaseView::Free,
            ),
            (
                "other, fresh",
                Some(spec(Some("b"), Some(0), Some(4))),
                LeaseView::Held {
                    holder: "b".to_owned(),
                    remaining: secs(4),
                },
            ),
            (
                "other, 3.5 s old",
                Some(spec(Some("b"), Some(-3_500), Some(4))),
                LeaseView::Held {
                    holder: "b".to_owned(),
                    remaining: Duration::from_millis(500),
                },
            ),
            (
                "other, expired",
                Some(spec(Some("b"), Some(-4_000), Some(4))),
                LeaseView::Free,
            ),
            (
                "mine, fresh: until expiry less the margin",
                Some(spec(Some("a"), Some(0), Some(4))),
                LeaseView::Mine { remaining: secs(3) },
            ),
            (
                "mine, within the margin",
                Some(spec(Some("a"), Some(-3_500), Some(4))),
                LeaseView::Mine {
                    remaining: Duration::ZERO,
                },
            ),
            (
                "mine, expired",
                Some(spec(Some("a"), Some(-60_000), Some(4))),
                LeaseView::Mine {
                    remaining: Duration::ZERO,
                },
            ),
        ];
        for (case, lease, expected) in cases {
            assert_eq!(view(lease.as_ref(), "a", at(0), &t), expected, "{case}");
        }
    }

    #[test]
    fn the_namespace_comes_from_the_flag_then_the_pod() {
        let sa = Some("from-sa\n");
        assert_eq!(
            resolve_namespace(Some("ops"), Some("pod"), sa),
            Ok("ops".to_owned())
        );
        assert_eq!(
            resolve_namespace(None, Some("pod"), sa),
            Ok("pod".to_owned())
        );
        assert_eq!(
            resolve_namespace(Some(" "), Some(""), sa),
            Ok("from-sa".to_owned())
        );
        let error = resolve_namespace(None, None, None).unwrap_err();
        assert!(
            error.contains("--leader-election-namespace") && error.contains("POD_NAMESPACE"),
            "{error}"
        );
    }

    #[test]
    fn the_identity_comes_from_the_flag_then_the_pod_then_the_host() {
        let id = |flag, pod, host| resolve_identity(flag, pod, host, "x1y2z3");
        assert_eq!(id(Some("me"), Some("pod-1"), Some("host")), "me");
        assert_eq!(id(None, Some("pod-1"), Some("host")), "pod-1");
        assert_eq!(id(None, Some(""), Some("host\n")), "host-x1y2z3");
        assert_eq!(id(None, None, None), "checkout-link-operator-x1y2z3");
        let (a, b) = (random_suffix(), random_suffix());
        assert_eq!(a.len(), 6);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_ne!(a, b, "two processes on one host get different identities");
    }
}
