//! What wakes a resource besides a change to it: a sweep that found its link changed, gone or
//! duplicated (or an organisation's mirror becoming usable), and a change of the credentials it
//! uses. The mapping from a sweep report to resources is pure ([`woken_by`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::PartialObjectMeta;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use tokio::sync::mpsc;

use crate::config::SecretName;
use crate::crd::CheckoutLink;
use crate::polar::org::{OrgKey, SweepReport};

use super::context::Context;
use super::credentials::{credentials_ref, identity, uses_secret};

/// The controller's object type: a CheckoutLink, or one that does not deserialise.
pub type Guarded = DeserializeGuard<CheckoutLink>;

/// Which resources a sweep report concerns: those whose link changed or vanished, those whose
/// UID tags a changed link, those waiting for this sweep, those naming products or a discount
/// by reference when the organisation's catalog changed, those whose orders changed, and — when the organisation's mirror
/// has just become usable — every resource of that organisation (or without one yet).
pub fn woken_by<'a>(
    report: &SweepReport,
    links: impl IntoIterator<Item = &'a CheckoutLink>,
) -> Vec<ObjectRef<Guarded>> {
    let ids: HashSet<&str> = report
        .changes
        .changed
        .iter()
        .chain(&report.changes.vanished)
        .map(String::as_str)
        .collect();
    let uids: HashSet<&str> = report
        .changes
        .owners
        .iter()
        .chain(&report.waiters)
        .chain(&report.results_changed)
        .map(String::as_str)
        .collect();
    let org = match &report.org {
        OrgKey::Id(id) => Some(id.as_str()),
        OrgKey::Token(_) => None,
    };
    links
        .into_iter()
        .filter(|link| {
            let status = link.status.as_ref();
            let id = status.and_then(|s| s.id.as_deref());
            let link_org = status.and_then(|s| s.organization_id.as_deref());
            let in_org = match (org, link_org) {
                (Some(o), Some(l)) => o.eq_ignore_ascii_case(l),
                _ => true,
            };
            let names_by_reference = super::resolve::needs(&link.spec) != (false, false);
            id.is_some_and(|id| ids.contains(id.to_ascii_lowercase().as_str()))
                || link.uid().is_some_and(|uid| uids.contains(uid.as_str()))
                || (report.warmed && in_org)
                || (report.catalog_changed && in_org && names_by_reference)
        })
        .map(object_ref)
        .collect()
}

fn object_ref(link: &CheckoutLink) -> ObjectRef<Guarded> {
    let r = ObjectRef::new(&link.name_any());
    match link.namespace() {
        Some(ns) => r.within(&ns),
        None => r,
    }
}

/// The valid CheckoutLinks in the controller's store (shared, not copied).
fn valid(objects: &[Arc<Guarded>]) -> impl Iterator<Item = &CheckoutLink> {
    objects.iter().filter_map(|g| g.0.as_ref().ok())
}

/// Turns sweep reports into reconcile requests (and metrics).
pub fn from_sweeps(
    mut reports: mpsc::UnboundedReceiver<SweepReport>,
    store: Store<Guarded>,
    ctx: Arc<Context>,
) -> impl Stream<Item = ObjectRef<Guarded>> + Send {
    async_stream(move |tx| async move {
        while let Some(report) = reports.recv().await {
            ctx.metrics.swept(&report);
            if let Some(error) = &report.error {
                tracing::warn!(org = ?report.org, %error, "sweep of Polar's links failed");
            } else {
                tracing::debug!(
                    org = ?report.org,
                    calls = report.calls,
                    links = report.links,
                    changed = report.changes.changed.len(),
                    vanished = report.changes.vanished.len(),
                    "swept"
                );
            }
            let objects = store.state();
            for object in woken_by(&report, valid(&objects)) {
                if tx.send(object).is_err() {
                    return;
                }
            }
        }
    })
}

/// Turns Secret metadata events into reconcile requests for the links that use the Secret,
/// only when the credentials read from it changed (a new token or server, or the Secret
/// appearing or going away): a label edit wakes nothing.
pub fn from_secrets<S>(
    events: S,
    store: Store<Guarded>,
    ctx: Arc<Context>,
) -> impl Stream<Item = ObjectRef<Guarded>> + Send
where
    S: Stream<Item = Result<watcher::Event<PartialObjectMeta<Secret>>, watcher::Error>>
        + Send
        + 'static,
{
    async_stream(move |tx| async move {
        let mut seen: HashMap<SecretName, String> = HashMap::new();
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            let touched: Vec<(PartialObjectMeta<Secret>, bool)> = match event {
                Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => vec![(s, false)],
                Ok(watcher::Event::Delete(s)) => vec![(s, true)],
                Ok(_) => Vec::new(),
                Err(error) => {
                    tracing::debug!(%error, "Secret watch");
                    Vec::new()
                }
            };
            for (secret, deleted) in touched {
                let name = SecretName {
                    namespace: secret.namespace().unwrap_or_default(),
                    name: secret.name_any(),
                };
                let default = ctx.settings.default_credentials.as_ref();
                let objects = store.state();
                let users: Vec<&CheckoutLink> = valid(&objects)
                    .filter(|l| uses_secret(l, &name, default))
                    .collect();
                let Some(first) = users.first() else {
                    seen.remove(&name);
                    continue;
                };
                let now = if deleted {
                    "deleted".to_owned()
                } else {
                    match credentials_ref(first, default) {
                        Ok(r) => match ctx.secrets.resolve(&ctx.client, &r).await {
                            Ok(resolved) => identity(&resolved.credentials),
                            Err(error) => format!("unreadable: {error}"),
                        },
                        Err(e) => format!("error: {e}"),
                    }
                };
                if seen.insert(name, now.clone()).as_ref() == Some(&now) {
                    continue;
                }
                for link in &users {
                    if tx.send(object_ref(link)).is_err() {
                        return;
                    }
                }
            }
        }
    })
}

/// A stream fed by a task that sends into a channel.
fn async_stream<T, F, Fut>(f: F) -> impl Stream<Item = T> + Send
where
    T: Send + 'static,
    F: FnOnce(mpsc::UnboundedSender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(f(tx));
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{CheckoutLinkSpec, CheckoutLinkStatus};
    use crate::polar::Server;
    use crate::polar::mirror::Changes;

    fn resource(name: &str, uid: &str, id: Option<&str>, org: Option<&str>) -> CheckoutLink {
        let mut l = CheckoutLink::new(name, CheckoutLinkSpec::default());
        l.metadata.namespace = Some("shop".into());
        l.metadata.uid = Some(uid.into());
        l.status = Some(CheckoutLinkStatus {
            id: id.map(str::to_owned),
            organization_id: org.map(str::to_owned),
            ..Default::default()
        });
        l
    }

    fn report(org: &str, warmed: bool, changes: Changes, waiters: Vec<String>) -> SweepReport {
        SweepReport {
            server: Server::Sandbox,
            org: OrgKey::Id(org.into()),
            warmed,
            changes,
            waiters,
            calls: 1,
            links: 0,
            error: None,
            catalog_changed: false,
            results_changed: Vec::new(),
        }
    }

    fn names(refs: Vec<ObjectRef<Guarded>>) -> Vec<String> {
        let mut n: Vec<String> = refs.into_iter().map(|r| r.name).collect();
        n.sort();
        n
    }

    #[test]
    fn a_sweep_wakes_only_the_resources_it_concerns() {
        let links = vec![
            resource("changed", "u1", Some("AAA"), Some("o")),
            resource("vanished", "u2", Some("bbb"), Some("o")),
            resource("settled", "u3", Some("ccc"), Some("o")),
            resource("owner", "u4", None, None),
            resource("waiting", "u5", None, None),
        ];
        let changes = Changes {
            changed: vec!["aaa".into()],
            vanished: vec!["bbb".into()],
            owners: vec!["u4".into()],
        };
        let woken = woken_by(&report("o", false, changes, vec!["u5".into()]), &links);
        assert_eq!(names(woken), ["changed", "owner", "vanished", "waiting"]);
    }

    #[test]
    fn a_mirror_warming_up_wakes_every_resource_of_its_organisation() {
        let links = vec![
            resource("mine", "u1", Some("a"), Some("o")),
            resource("other-org", "u2", Some("b"), Some("p")),
            resource("new", "u3", None, None),
        ];
        let woken = woken_by(&report("O", true, Changes::default(), vec![]), &links);
        assert_eq!(names(woken), ["mine", "new"]);
        let quiet = woken_by(&report("o", false, Changes::default(), vec![]), &links);
        assert!(quiet.is_empty());
    }

    #[test]
    fn new_orders_wake_only_the_resources_they_came_through() {
        let links = vec![
            resource("sold", "u1", Some("a"), Some("o")),
            resource("quiet", "u2", Some("b"), Some("o")),
        ];
        let mut sweep = report("o", false, Changes::default(), vec![]);
        sweep.results_changed = vec!["u1".into()];
        assert_eq!(names(woken_by(&sweep, &links)), ["sold"]);
    }
}
