//! The controller: watches CheckoutLinks (guarded, so one object that does not deserialise
//! cannot stall the watch) and, by metadata only, the credentials Secrets they use, and
//! reconciles each CheckoutLink through the finalizer helper:
//!
//! ```text
//! apply:   credentials ─► observe (mirror; GET to confirm a miss) ─► plan (pure)
//!            ─► execute (≤ 1 Polar write) ─► build_status (pure) ─► one SSA status patch
//! cleanup: DELETE every link tagged with the UID (404 = done once verified) | Orphan (untag)
//!            | give up after the deletion grace
//! failure: policy::decide (pure) ─► status, event, next attempt
//! ```
//!
//! Pure: [`plan`], [`resolve`], [`status`], [`policy`], [`sellable`], [`memory`], the mapping in
//! [`triggers`].
//! Polar IO: [`observe`], [`execute`] (through `polar::account`). Kubernetes IO: this module
//! (the watches), [`context`] (status patches, events), [`credentials`] (Secret reads and
//! finalizers), [`export`] (the ConfigMap of `spec.export`).
//!
//! Per resource, the controller remembers the inputs of its last attempt — the generation,
//! the credentials' identity, the adoption annotation, the mirror's revision of its link — and
//! until when nothing needs doing for them: the resync interval after a success, the backoff
//! after a transient failure, `Retry-After` after a 429, five minutes after refused
//! credentials, until they change after a 422. A reconcile triggered early with the same inputs
//! costs nothing. Drift is found by the organisations' sweeps, which wake only the resources
//! whose links changed.

mod apply;
mod cleanup;
pub mod context;
pub mod credentials;
pub mod events;
pub mod execute;
pub mod export;
mod lookup;
pub mod memory;
pub mod observe;
pub mod observe_only;
pub mod pause;
pub mod plan;
pub mod policy;
pub mod resolve;
pub mod results;
pub mod sellable;
pub mod status;
pub mod triggers;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector;
use kube::runtime::watcher::{self, ExponentialBackoff};
use kube::runtime::{WatchStreamExt, watcher as watch_stream};
use kube::{Resource, ResourceExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::config::Settings;
use crate::crd::{CheckoutLink, FINALIZER, MANAGER};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::polar::http::HttpClient;
use crate::polar::org::SweepReport;
use crate::polar::pool::{ClientFactory, Pool, PoolSettings};
use crate::polar::{CheckoutLinks, Credentials};
use crate::server::Readiness;

use context::Context;
use credentials::SecretCache;
use triggers::Guarded;

/// How long the controller waits before retrying after a Kubernetes API failure: short, so
/// that links are served again within seconds of an apiserver coming back.
pub const MAX_KUBE_BACKOFF: Duration = Duration::from_secs(5);
/// Annotation `kubectl apply` writes; dropped from the cache.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Runs the controller with HTTP clients for Polar until `shutdown` completes (then finishes
/// the reconciles in flight). Marks `readiness` once every watch has listed everything.
pub async fn run(
    client: kube::Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (version, timeout) = (settings.polar_api_version.clone(), settings.polar_timeout);
    let observer = metrics.polar_observer();
    let factory: ClientFactory = Arc::new(move |credentials: &Credentials| {
        let client = HttpClient::new(credentials.clone(), &version, timeout)?
            .with_observer(observer.clone());
        Ok(Arc::new(client) as Arc<dyn CheckoutLinks>)
    });
    run_with(client, settings, factory, metrics, readiness, shutdown).await;
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

/// A watch's backoff: short, so that an apiserver restart costs seconds, not a minute.
fn watch_backoff() -> ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(2))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .into()
}

/// [`run`] with Polar clients made by `factory`.
pub async fn run_with(
    client: kube::Client,
    settings: Settings,
    factory: ClientFactory,
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

    let links_api: Api<Guarded> = match &settings.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut link_config = watcher::Config::default();
    if let Some(selector) = &settings.label_selector {
        link_config = link_config.labels(selector);
    }
    let (links, link_writer) = reflector::store::<Guarded>();
    let (gone_tx, mut gone) = mpsc::unbounded_channel::<()>();
    let link_events = tracker
        .track(
            watch_stream(links_api, link_config)
                .backoff(watch_backoff())
                .modify(|link: &mut Guarded| {
                    let meta = link.meta_mut();
                    meta.managed_fields = None;
                    if let Some(annotations) = meta.annotations.as_mut() {
                        annotations.remove(LAST_APPLIED);
                    }
                })
                .reflect(link_writer),
        )
        .inspect(move |event| {
            // A CheckoutLink is gone (from the store already): its Secret may be unused now.
            if matches!(event, Ok(watcher::Event::Delete(_))) {
                let _ = gone_tx.send(());
            }
        })
        .applied_objects();

    let mut secret_stores = Vec::new();
    let mut secret_streams = Vec::new();
    for (api, config) in secret_watches(&client, &settings) {
        let (store, writer) = reflector::store::<PartialObjectMeta<Secret>>();
        secret_stores.push(store);
        // `Api<PartialObjectMeta<_>>` asks the apiserver for metadata only: no Secret's data
        // is listed or watched.
        let events = watch_stream(api, config)
            .backoff(watch_backoff())
            .modify(|s: &mut PartialObjectMeta<Secret>| {
                s.metadata.managed_fields = None;
                s.metadata.annotations = None;
                s.metadata.labels = None;
            })
            .reflect(writer);
        secret_streams.push(tracker.track(events).boxed());
    }

    let (reports_tx, reports) = mpsc::unbounded_channel::<SweepReport>();
    let pool = Pool::new(
        factory,
        PoolSettings {
            rate_share: settings.polar_rate_share,
            rate_limit: settings.polar_rate_limit,
            sweep_interval: settings.resync_interval,
            results_rescan: settings.results_rescan_interval,
        },
        reports_tx,
    );
    let ctx = Arc::new(Context {
        events: events::Publisher::new(client.clone(), MANAGER),
        client,
        secrets: SecretCache::new(secret_stores, settings.allow_insecure_servers),
        synced,
        polar: pool,
        metrics,
        memory: Mutex::new(HashMap::new()),
        started: (Timestamp::now(), Instant::now()),
        settings: settings.clone(),
        links: links.clone(),
    });
    // Credentials finalizers come off when the last link using a Secret is gone, and at every
    // resync interval for what changed otherwise (a link moved to another Secret).
    {
        let ctx = ctx.clone();
        let every = settings.resync_interval;
        tokio::spawn(async move {
            ctx.caches_synced().await;
            loop {
                let tick = tokio::time::sleep(every);
                tokio::select! {
                    _ = tick => {}
                    deleted = gone.recv() => if deleted.is_none() { return },
                }
                ctx.release_unused_secrets().await;
            }
        });
    }

    let swept = triggers::from_sweeps(reports, links.clone(), ctx.clone());
    let rotated = triggers::from_secrets(
        futures::stream::select_all(secret_streams),
        links.clone(),
        ctx.clone(),
    );
    let controller = Controller::for_stream(link_events, links)
        .reconcile_on(swept)
        .reconcile_on(rotated)
        .with_config(kube::runtime::controller::Config::default().concurrency(settings.concurrency))
        // The controller backs off its trigger streams on errors too, by default client-go's
        // 800 ms to 30 s: after an apiserver restart that added up to 17 s on top of the
        // watches' own backoff (make faults). The same short backoff as the watches.
        .trigger_backoff(watch_backoff())
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
        polar_api_version = %settings.polar_api_version,
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

/// One reconcile: the finalizer helper around [`apply::apply`] and [`cleanup::cleanup`]; an
/// object that does not deserialise is reported and left alone.
async fn reconcile(guarded: Arc<Guarded>, ctx: Arc<Context>) -> Result<Action, Error> {
    let link = match &guarded.0 {
        Ok(link) => Arc::new(link.clone()),
        Err(invalid) => {
            tracing::warn!(
                link = %format!("{}/{}", guarded.namespace().unwrap_or_default(), guarded.name_any()),
                error = %invalid.error,
                "a CheckoutLink that does not deserialise is left alone until it changes"
            );
            ctx.metrics.reconciled("invalid", Duration::ZERO);
            return Ok(Action::await_change());
        }
    };
    let namespace = link
        .namespace()
        .ok_or(Error::MissingObjectField("namespace"))?;
    if let Some(uid) = link.uid() {
        ctx.first_sight(&uid, link.finalizers().iter().any(|f| f == FINALIZER));
    }
    let api: Api<CheckoutLink> = Api::namespaced(ctx.client.clone(), &namespace);
    let span = tracing::info_span!("reconcile", link = %format!("{namespace}/{}", link.name_any()));
    if pause::is_paused(&link) {
        return tracing::Instrument::instrument(pause::hold(&ctx, &link), span).await;
    }
    pause::resumed(&ctx, &link).await;
    let started = Instant::now();
    let result = tracing::Instrument::instrument(
        finalizer(&api, FINALIZER, link, |event| async {
            match event {
                FinalizerEvent::Apply(link) => apply::apply(&ctx, &link).await,
                FinalizerEvent::Cleanup(link) => cleanup::cleanup(&ctx, &link).await,
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

/// Requeue after a failed reconcile: the delay a handled failure asked for, or a short
/// backoff for Kubernetes API failures (at most [`MAX_KUBE_BACKOFF`]). Never immediately.
fn error_policy(guarded: Arc<Guarded>, error: &Error, ctx: Arc<Context>) -> Action {
    if let Some(delay) = error.deferred_delay() {
        return Action::requeue(delay);
    }
    let failures = ctx.bump_failures(guarded.uid().as_deref().unwrap_or_default());
    let delay = context::jitter(
        Duration::from_millis(250)
            .saturating_mul(1 << failures.min(8))
            .min(MAX_KUBE_BACKOFF),
    );
    tracing::warn!(
        link = %format!("{}/{}", guarded.namespace().unwrap_or_default(), guarded.name_any()),
        %error,
        retry_in_ms = delay.as_millis() as u64,
        "reconcile failed"
    );
    Action::requeue(delay)
}
