//! The controller: watches CheckoutLinks (and, by metadata only, the credentials Secrets they
//! use), and reconciles each one through the finalizer helper:
//!
//! ```text
//! apply:   credentials ─► observe (GET / list) ─► plan (pure) ─► execute (≤ 1 Polar write)
//!                           ─► build_status (pure) ─► one SSA status patch, if it changed
//! cleanup: DELETE (404 = done) | Orphan policy | give up after the deletion grace
//! ```
//!
//! - [`apply`] and [`cleanup`]: the two paths; [`memory`]: what is remembered per resource;
//! - [`plan`] and [`status`]: pure; [`execute`]: the Polar calls; [`credentials`]: Secrets
//!   and Polar clients.
//!
//! This module and `main` are the only places holding a `kube::Client`.
//!
//! Per resource, the controller remembers the inputs of its last attempt — the generation,
//! the credentials Secret's `resourceVersion`, the adoption annotation — and until when
//! nothing needs doing for them: the resync interval after a success, the backoff after a
//! transient failure, `Retry-After` after a 429, five minutes after refused credentials,
//! until they change after a 422. A reconcile triggered early (by the operator's own status
//! write, say) with the same inputs costs no Polar call. That keeps settled links at zero
//! writes, makes a refused spec cost exactly one call, and rules out hot loops.

mod apply;
mod cleanup;
pub mod credentials;
pub mod execute;
mod memory;
pub mod plan;
pub mod status;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PartialObjectMeta, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::Settings;
use crate::crd::{CheckoutLink, CheckoutLinkStatus, FINALIZER, MANAGER};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::polar::governor::Governors;
use crate::server::Readiness;

use credentials::{PolarClients, SecretCache, SecretName, uses_secret};
use memory::Memory;
use status::{Phase, Reason};

/// The longest backoff after repeated transient failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long the operator waits before retrying credentials Polar refused (401/403).
pub const CREDENTIALS_RETRY: Duration = Duration::from_secs(300);
/// Annotation `kubectl apply` writes; dropped from the cache.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Everything a reconcile needs.
pub struct Context {
    client: kube::Client,
    settings: Settings,
    recorder: Recorder,
    secrets: SecretCache,
    synced: watch::Receiver<bool>,
    polar: PolarClients,
    metrics: Arc<Metrics>,
    memory: Mutex<HashMap<String, Memory>>,
    started: Timestamp,
}

/// Runs the controller with HTTP clients for Polar until `shutdown` completes (then finishes
/// the reconciles in flight). Marks `readiness` once every watch has listed everything.
pub async fn run(
    client: kube::Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let governors = Arc::new(Governors::new(
        settings.polar_rate_share,
        settings.polar_rate_limit,
    ));
    let polar = PolarClients::http(
        governors,
        settings.polar_timeout,
        Some(metrics.polar_observer()),
    );
    run_with(client, settings, polar, metrics, readiness, shutdown).await;
}

/// Counts the watches whose first list is not complete; at zero the caches are synced.
struct SyncTracker {
    pending: AtomicUsize,
    synced: watch::Sender<bool>,
    readiness: Readiness,
}

impl SyncTracker {
    /// Passes a watch's events through, noting its first complete list.
    fn track<S, K>(self: &Arc<Self>, stream: S) -> impl Stream<Item = S::Item> + Send + use<S, K>
    where
        S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
        K: Send,
    {
        self.pending.fetch_add(1, Ordering::SeqCst);
        let tracker = Arc::clone(self);
        let mut listed = false;
        stream.inspect(move |event| {
            if !listed && matches!(event, Ok(watcher::Event::InitDone)) {
                listed = true;
                if tracker.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
                    tracing::info!("caches synced");
                    tracker.synced.send_replace(true);
                    tracker.readiness.set_ready();
                }
            }
        })
    }
}

/// [`run`] with the given Polar clients.
pub async fn run_with(
    client: kube::Client,
    settings: Settings,
    polar: PolarClients,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (synced_tx, synced) = watch::channel(false);
    let tracker = Arc::new(SyncTracker {
        pending: AtomicUsize::new(0),
        synced: synced_tx,
        readiness,
    });

    let links_api: Api<CheckoutLink> = match &settings.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut link_config = watcher::Config::default();
    if let Some(selector) = &settings.label_selector {
        link_config = link_config.labels(selector);
    }
    let (links, link_writer) = reflector::store::<CheckoutLink>();
    let link_events = tracker
        .track(
            watcher(links_api, link_config)
                .default_backoff()
                .modify(|link: &mut CheckoutLink| {
                    link.metadata.managed_fields = None;
                    if let Some(annotations) = link.metadata.annotations.as_mut() {
                        annotations.remove(LAST_APPLIED);
                    }
                })
                .reflect(link_writer),
        )
        .applied_objects();

    let mut secret_stores = Vec::new();
    let mut secret_streams = Vec::new();
    for (api, config) in secret_watches(&client, &settings) {
        let (store, writer) = reflector::store::<PartialObjectMeta<Secret>>();
        secret_stores.push(store);
        let events = watcher(api, config)
            .default_backoff()
            .modify(|s: &mut PartialObjectMeta<Secret>| {
                s.metadata.managed_fields = None;
                s.metadata.annotations = None;
                s.metadata.labels = None;
            })
            .reflect(writer);
        secret_streams.push(tracker.track(events).touched_objects().boxed());
    }

    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), Reporter::from(MANAGER)),
        client,
        secrets: SecretCache::new(secret_stores),
        synced,
        polar,
        metrics,
        memory: Mutex::new(HashMap::new()),
        started: Timestamp::now(),
        settings: settings.clone(),
    });

    let mapper_links = links.clone();
    let default = settings.default_credentials.clone();
    let users_of = move |secret: PartialObjectMeta<Secret>| {
        let name = SecretName {
            namespace: secret.namespace().unwrap_or_default(),
            name: secret.name_any(),
        };
        mapper_links
            .state()
            .into_iter()
            .filter(|link| uses_secret(link, &name, default.as_ref()))
            .map(|link| ObjectRef::from_obj(&*link))
            .collect::<Vec<_>>()
    };
    let controller = Controller::for_stream(link_events, links)
        .watches_stream(futures::stream::select_all(secret_streams), users_of)
        .with_config(kube::runtime::controller::Config::default().concurrency(settings.concurrency))
        .graceful_shutdown_on(shutdown);
    tracing::info!(
        namespace = settings.namespace.as_deref().unwrap_or("(all)"),
        label_selector = settings.label_selector.as_deref().unwrap_or(""),
        default_credentials = settings
            .default_credentials
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        resync_secs = settings.resync_interval.as_secs_f64(),
        concurrency = settings.concurrency,
        "controller starting"
    );
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::trace!(%object, "reconciled"),
                Err(kube::runtime::controller::Error::ReconcilerFailed(error, object)) => {
                    tracing::debug!(%object, %error, "reconcile failed")
                }
                Err(error) => tracing::warn!(%error, "controller"),
            }
        })
        .await;
    tracing::info!("controller stopped");
}

/// The Secret watches (metadata only): the watched namespace (or all), plus the default
/// Secret alone when it lives outside the watched namespace.
fn secret_watches(
    client: &kube::Client,
    settings: &Settings,
) -> Vec<(Api<PartialObjectMeta<Secret>>, watcher::Config)> {
    let Some(ns) = &settings.namespace else {
        return vec![(Api::all(client.clone()), watcher::Config::default())];
    };
    let mut watches = vec![(
        Api::namespaced(client.clone(), ns),
        watcher::Config::default(),
    )];
    if let Some(default) = settings
        .default_credentials
        .as_ref()
        .filter(|d| &d.namespace != ns)
    {
        let only = watcher::Config::default().fields(&format!("metadata.name={}", default.name));
        watches.push((Api::namespaced(client.clone(), &default.namespace), only));
    }
    watches
}

/// One reconcile: the finalizer helper around [`Context::apply`] and [`Context::cleanup`].
async fn reconcile(link: Arc<CheckoutLink>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = link
        .namespace()
        .ok_or(Error::MissingObjectField("namespace"))?;
    let api: Api<CheckoutLink> = Api::namespaced(ctx.client.clone(), &namespace);
    let span = tracing::info_span!("reconcile", link = %format!("{namespace}/{}", link.name_any()));
    let started = Instant::now();
    let result = tracing::Instrument::instrument(
        finalizer(&api, FINALIZER, link, |event| async {
            match event {
                FinalizerEvent::Apply(link) => ctx.apply(&link).await,
                FinalizerEvent::Cleanup(link) => ctx.cleanup(&link).await,
            }
        }),
        span,
    )
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    // Handled (deferred) failures were counted where they were handled.
    if let Err(e) = &result
        && e.deferred_delay().is_none()
    {
        ctx.metrics.reconciled("error", started.elapsed());
        ctx.metrics.error(e.inner().category());
    }
    result
}

/// Requeue after a failed reconcile: the delay a handled failure asked for, or the object's
/// exponential backoff. Never immediately.
fn error_policy(link: Arc<CheckoutLink>, error: &Error, ctx: Arc<Context>) -> Action {
    if let Some(delay) = error.deferred_delay() {
        return Action::requeue(delay);
    }
    let failures = ctx.bump_failures(link.uid().as_deref().unwrap_or_default());
    let delay = backoff(failures);
    tracing::warn!(
        link = %format!("{}/{}", link.namespace().unwrap_or_default(), link.name_any()),
        %error,
        retry_in_ms = delay.as_millis() as u64,
        "reconcile failed"
    );
    Action::requeue(delay)
}

/// `1s × 2^failures` (`failures` counted from 0), at most [`MAX_BACKOFF`], ±20% jitter.
pub fn backoff(failures: u32) -> Duration {
    let base = Duration::from_secs(1)
        .saturating_mul(1u32 << failures.min(16))
        .min(MAX_BACKOFF);
    jitter(base, 0.8, 1.2)
}

/// `d` times a random factor in `[low, high)`.
fn jitter(d: Duration, low: f64, high: f64) -> Duration {
    use rand::Rng;
    d.mul_f64(rand::rng().random_range(low..high))
}

/// Now, in whole seconds, as the apiserver stores times.
fn now() -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now()))
}

/// The Warning event reason for a failure: the credentials reasons by name, the rest by the
/// step that failed (`CreateFailed`, `UpdateFailed`, `DeleteFailed`, `ObserveFailed`).
fn failure_event_reason(phase: &Phase) -> &'static str {
    match phase {
        Phase::Ready => "Synced",
        Phase::Retrying {
            activity, reason, ..
        }
        | Phase::Stalled {
            activity, reason, ..
        } => match reason {
            Reason::CredentialsMissing => "CredentialsMissing",
            Reason::CredentialsInvalid => "CredentialsInvalid",
            Reason::AdoptionFailed => "AdoptionFailed",
            _ => activity.failed_event(),
        },
    }
}

/// Whether the Ready condition changed (status, reason or message).
fn ready_changed(before: Option<&CheckoutLinkStatus>, after: &CheckoutLinkStatus) -> bool {
    let key = |status| {
        status::condition(status, status::READY)
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    key(before) != key(Some(after))
}

impl Context {
    /// Waits until every watch has listed once (so a missing Secret is really missing).
    async fn caches_synced(&self) {
        let mut synced = self.synced.clone();
        let _ = synced.wait_for(|s| *s).await;
    }

    /// One server-side-apply status patch, sent only when the status changed.
    async fn patch_status(
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
        Ok(true)
    }

    /// A Warning event for a failure, when the Ready condition changed (transitions only).
    async fn publish_failure(
        &self,
        link: &CheckoutLink,
        status: &CheckoutLinkStatus,
        phase: &Phase,
        action: &str,
    ) {
        if !ready_changed(link.status.as_ref(), status) {
            return;
        }
        let message = match phase {
            Phase::Ready => return,
            Phase::Retrying { message, .. } | Phase::Stalled { message, .. } => message.clone(),
        };
        self.publish(
            link,
            EventType::Warning,
            failure_event_reason(phase),
            action,
            message,
        )
        .await;
    }

    /// Publishes an event (and logs it); a failure to publish is only logged.
    async fn publish(
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
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &link.object_ref(&())).await {
            tracing::warn!(%error, reason, "could not publish an event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use status::Activity;

    #[test]
    fn backoff_doubles_from_one_second_to_five_minutes_with_jitter() {
        for (failures, base) in [
            (0u32, 1.0f64),
            (1, 2.0),
            (3, 8.0),
            (8, 256.0),
            (9, 300.0),
            (40, 300.0),
        ] {
            for _ in 0..20 {
                let d = backoff(failures).as_secs_f64();
                assert!(
                    d >= base * 0.8 && d <= base * 1.2,
                    "failures {failures}: {d}"
                );
            }
        }
    }

    #[test]
    fn failure_events_are_named_by_class() {
        let phase = |activity, reason| Phase::Stalled {
            activity,
            reason,
            message: String::new(),
        };
        assert_eq!(
            failure_event_reason(&phase(Activity::Creating, Reason::InvalidSpec)),
            "CreateFailed"
        );
        assert_eq!(
            failure_event_reason(&phase(Activity::Updating, Reason::ProductArchived)),
            "UpdateFailed"
        );
        assert_eq!(
            failure_event_reason(&phase(Activity::Deleting, Reason::PolarUnavailable)),
            "DeleteFailed"
        );
        assert_eq!(
            failure_event_reason(&phase(Activity::Observing, Reason::CredentialsInvalid)),
            "CredentialsInvalid"
        );
        assert_eq!(
            failure_event_reason(&phase(Activity::Observing, Reason::CredentialsMissing)),
            "CredentialsMissing"
        );
    }
}
