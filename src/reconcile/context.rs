//! [`Context`]: everything a reconcile needs, and the only writer of CheckoutLink statuses and
//! events. Its methods are the controller's memory (per resource, by UID) and its two
//! Kubernetes writes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::Settings;
use crate::crd::{ADOPT_ANNOTATION, CheckoutLink, CheckoutLinkStatus, MANAGER, SYNC_ANNOTATION};
use crate::error::{CredentialsError, Error};
use crate::metrics::Metrics;
use crate::polar::pool::Pool;
use crate::polar::{Credentials, Server};

use super::credentials::{SecretCache, identity};
use super::memory::{Hold, Inputs, Memory};
use super::sellable::SELLABLE;
use super::status;

/// Resources created this long after the controller started cannot have been seen by an
/// earlier operator process (allowing for clock skew between the apiserver and the operator).
const CLOCK_SKEW: Duration = Duration::from_secs(5);

/// Everything a reconcile needs.
pub struct Context {
    pub(super) client: kube::Client,
    pub(super) settings: Settings,
    pub(super) events: super::events::Publisher,
    pub(super) secrets: SecretCache,
    /// The controller's CheckoutLinks (the watch's store).
    pub(super) links: kube::runtime::reflector::Store<super::triggers::Guarded>,
    pub(super) synced: watch::Receiver<bool>,
    pub(super) polar: Pool,
    pub(super) metrics: Arc<Metrics>,
    pub(super) memory: Mutex<HashMap<String, Memory>>,
    /// When this controller started, on the apiserver's clock and on the monotonic one.
    pub(super) started: (Timestamp, Instant),
}

impl Context {
    /// Waits until every watch has listed once (so a missing Secret is really missing).
    pub(super) async fn caches_synced(&self) {
        let mut synced = self.synced.clone();
        let _ = synced.wait_for(|s| *s).await;
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<String, Memory>> {
        crate::polar::pool::lock(&self.memory)
    }

    /// Changes what is remembered about `uid`.
    pub(super) fn remember<T>(&self, uid: &str, f: impl FnOnce(&mut Memory) -> T) -> T {
        f(self.memory().entry(uid.to_owned()).or_default())
    }

    /// What is remembered about `uid`.
    pub(super) fn recall(&self, uid: &str) -> Memory {
        self.memory().get(uid).cloned().unwrap_or_default()
    }

    /// Forgets `uid` (its resource is gone).
    pub(super) fn forget(&self, uid: &str) {
        self.memory().remove(uid);
    }

    /// Counts a failure; returns the count before it (0 for the first).
    pub(super) fn bump_failures(&self, uid: &str) -> u32 {
        self.remember(uid, |m| {
            let n = m.failures;
            m.failures = m.failures.saturating_add(1);
            n
        })
    }

    /// `Some(wait)` when nothing is to be done for these inputs yet (see [`Hold::wait`]).
    pub(super) fn held(&self, uid: &str, inputs: &Inputs) -> Option<Option<Duration>> {
        self.recall(uid).hold?.wait(inputs)
    }

    /// Holds `inputs` for `delay` (`None`: until they change).
    pub(super) fn hold(&self, uid: &str, inputs: Inputs, delay: Option<Duration>) {
        self.remember(uid, |m| m.hold = Some(Hold::new(inputs, delay)));
    }

    /// The inputs of a reconcile of `link` now.
    pub(super) fn inputs(
        &self,
        link: &CheckoutLink,
        uid: &str,
        credentials: &Result<Credentials, CredentialsError>,
        memory: &Memory,
    ) -> Inputs {
        let server = credentials.as_ref().ok().map(|c| &c.server);
        let id = Self::known_link(link, memory).map(|(id, _)| id);
        Inputs {
            generation: link.metadata.generation,
            credentials: identity(credentials),
            adopt: link.annotations().get(ADOPT_ANNOTATION).cloned(),
            deleting: link.metadata.deletion_timestamp.is_some(),
            observed: server.map_or((None, None), |s: &Server| {
                self.polar.revisions(s, id.as_deref(), uid)
            }),
            catalog: server.map_or(0, |s| self.polar.catalog_revision(s)),
            sync: link.annotations().get(SYNC_ANNOTATION).cloned(),
            results: match server {
                Some(s) if self.settings.campaign_results => self.polar.results_revision(s, uid),
                _ => (0, false),
            },
        }
    }

    /// Whether an earlier operator process may have created a link for the resource that this
    /// process does not know of: no link is known, the resource existed before this process
    /// started, and it already carried the finalizer when this process first saw it.
    pub(super) fn may_have_been_handled_before(
        &self,
        link: &CheckoutLink,
        memory: &Memory,
    ) -> bool {
        let created = link.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let skew = SignedDuration::try_from(CLOCK_SKEW).unwrap_or_default();
        let predates = created.is_none_or(|c| c <= self.started.0 + skew);
        memory.known.is_none() && !memory.unhandled_when_first_seen && predates
    }

    /// How long after a create without a definite answer Polar may still commit it: Polar
    /// keeps working on a request after the client gave up, so twice the request timeout.
    pub(super) fn commit_window(&self) -> Duration {
        self.settings.polar_timeout.saturating_mul(2)
    }

    /// Notes, on the first sight of a resource, whether any operator had handled it yet.
    pub(super) fn first_sight(&self, uid: &str, has_finalizer: bool) {
        let mut memory = self.memory();
        if !memory.contains_key(uid) {
            memory.insert(
                uid.to_owned(),
                Memory {
                    unhandled_when_first_seen: !has_finalizer,
                    ..Memory::default()
                },
            );
        }
    }

    /// The link this resource owns, as far as this process or the status knows: (id, URL).
    pub(super) fn known_link(
        link: &CheckoutLink,
        memory: &Memory,
    ) -> Option<(String, Option<String>)> {
        match &memory.known {
            Some((id, url)) => Some((id.clone(), Some(url.clone()))),
            None => {
                let status = link.status.as_ref()?;
                Some((status.id.clone()?, status.url.clone()))
            }
        }
    }

    /// One server-side-apply status patch, sent only when the status changed.
    pub(super) async fn patch_status(
        &self,
        link: &CheckoutLink,
        status: &CheckoutLinkStatus,
    ) -> Result<bool, Error> {
        if link.status.as_ref() == Some(status) {
            return Ok(false);
        }
        let namespace = link
            .namespace()
            .ok_or(Error::MissingObjectField("namespace"))?;
        let api: Api<CheckoutLink> = Api::namespaced(self.client.clone(), &namespace);
        let patch = serde_json::json!({
            "apiVersion": CheckoutLink::api_version(&()),
            "kind": CheckoutLink::kind(&()),
            "status": status,
        });
        api.patch_status(
            &link.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(|source| Error::Kube {
            step: "PatchStatus",
            source,
        })?;
        self.metrics.status_written();
        Ok(true)
    }

    /// A Warning event for a failure, when the Ready or Synced condition changed
    /// (transitions only).
    pub(super) async fn publish_failure(
        &self,
        link: &CheckoutLink,
        status: &CheckoutLinkStatus,
        reason: &str,
        action: &str,
        message: String,
    ) {
        if !changed(link.status.as_ref(), status) {
            return;
        }
        self.publish(link, EventType::Warning, reason, action, message)
            .await;
    }

    /// On a change of the `Sellable` condition: a Warning event naming what is wrong (a Normal
    /// one when the link sells again), and the metric of links that cannot sell, by reason.
    pub(super) async fn publish_sellable(&self, link: &CheckoutLink, status: &CheckoutLinkStatus) {
        let key = |s: Option<&CheckoutLinkStatus>| {
            status::condition(s, SELLABLE).map(|c| (c.status.clone(), c.reason.clone()))
        };
        let (before, after) = (key(link.status.as_ref()), key(Some(status)));
        if before == after {
            return;
        }
        let Some(c) = status::condition(Some(status), SELLABLE) else {
            return;
        };
        if let Some(uid) = link.uid() {
            let reason = c.reason.clone();
            self.remember(&uid, |m| m.sellable = Some(reason));
            self.metrics.set_unsellable(&self.sellable_counts());
        }
        let problem = c.reason != "Sellable";
        let was_problem = before.as_ref().is_some_and(|(_, r)| r != "Sellable");
        if problem {
            let type_ = if c.status == "False" {
                "cannot sell"
            } else {
                "sells, but"
            };
            let note = format!("the checkout link {type_}: {}", c.message);
            self.publish(link, EventType::Warning, &c.reason, "Observe", note)
                .await;
        } else if was_problem {
            let note = "the checkout link can sell again".to_owned();
            self.publish(link, EventType::Normal, "Sellable", "Observe", note)
                .await;
        }
    }

    /// Resources by the reason of their `Sellable` condition.
    /// How many resources are paused.
    pub(super) fn paused_count(&self) -> i64 {
        self.memory().values().filter(|m| m.paused).count() as i64
    }

    fn sellable_counts(&self) -> Vec<(&'static str, i64)> {
        let memory = self.memory();
        super::sellable::REASONS
            .iter()
            .map(|reason| {
                let n = memory
                    .values()
                    .filter(|m| m.sellable.as_deref() == Some(*reason))
                    .count();
                (*reason, n as i64)
            })
            .collect()
    }

    /// Publishes an event (and logs it); a failure to publish is only logged.
    pub(super) async fn publish(
        &self,
        link: &CheckoutLink,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        // events.k8s.io/v1 limits the note to 1 kB.
        let note: String = note.chars().take(1000).collect();
        match type_ {
            EventType::Normal => tracing::info!(reason, %note, "event"),
            EventType::Warning => tracing::warn!(reason, %note, "event"),
        }
        let regarding = link.object_ref(&());
        let occurrence = super::events::Occurrence {
            regarding: &regarding,
            type_,
            reason,
            action,
            note,
        };
        if let Err(error) = self.events.publish(occurrence).await {
            tracing::warn!(%error, reason, "could not publish an event");
        }
    }
}

impl Context {
    /// Takes the credentials finalizer off every Secret no CheckoutLink names any more.
    pub(super) async fn release_unused_secrets(&self) {
        let objects = self.links.state();
        let links = objects.iter().filter_map(|g| g.0.as_ref().ok());
        for secret in super::credentials::unused(self.secrets.guarded(), links) {
            self.secrets.release(&self.client, &secret).await;
        }
    }
}

/// Whether the Ready or Synced condition changed (status, reason or message).
fn changed(before: Option<&CheckoutLinkStatus>, after: &CheckoutLinkStatus) -> bool {
    [status::READY, status::SYNCED].iter().any(|type_| {
        let key = |status| {
            status::condition(status, type_)
                .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
        };
        key(before) != key(Some(after))
    })
}

/// Now, in whole seconds, as the apiserver stores times.
pub(super) fn now() -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now()))
}

/// `d` times a random factor in `[1, 1.2)`: spreads retries, never earlier than asked.
pub(super) fn jitter(d: Duration) -> Duration {
    use rand::Rng;
    d.mul_f64(rand::rng().random_range(1.0..1.2))
}
