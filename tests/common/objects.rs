//! The Kubernetes side of a test: CheckoutLinks, credentials Secrets and Events of one
//! namespace, seen through one client (the admin's, or a ServiceAccount's), and waits on them.

use std::collections::BTreeSet;
use std::time::Duration;

use checkout_link_operator::{CheckoutLink, CheckoutLinkStatus};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use polar_emulator::Emulator;
use serde_json::{Value, json};

use super::eventually::eventually;
use super::{POST, condition};

/// How long a CheckoutLink may take to reach a state, or to go (before scaling).
pub const LINK_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an Event may take to be recorded (before scaling).
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

/// One namespace's CheckoutLinks, Secrets and Events through one client.
#[derive(Clone)]
pub struct Objects {
    pub client: kube::Client,
    pub ns: String,
    pub links: Api<CheckoutLink>,
    pub secrets: Api<Secret>,
}

impl Objects {
    /// Waits until the Secret `name` satisfies `check`.
    pub async fn wait_for_secret(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&Secret) -> bool,
    ) -> Secret {
        crate::common::eventually(
            &format!("the Secret {name} to be {what}"),
            std::time::Duration::from_secs(90),
            async || match self.secrets.get_opt(name).await {
                Ok(Some(s)) if check(&s) => Ok(s),
                Ok(Some(s)) => Err(format!("{:?}", s.metadata.finalizers)),
                Ok(None) => Err("no such Secret".to_owned()),
                Err(e) => Err(e.to_string()),
            },
        )
        .await
    }

    pub fn new(client: kube::Client, ns: &str) -> Objects {
        Objects {
            links: Api::namespaced(client.clone(), ns),
            secrets: Api::namespaced(client.clone(), ns),
            client,
            ns: ns.to_owned(),
        }
    }

    /// Creates or replaces a credentials Secret (server-side apply).
    pub async fn put_secret(&self, name: &str, token: &str, server: &str) {
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "stringData": {"token": token, "server": server},
        }))
        .unwrap();
        self.secrets
            .patch(
                name,
                &PatchParams::apply("tests").force(),
                &Patch::Apply(&secret),
            )
            .await
            .expect("apply secret");
    }

    /// Creates a CheckoutLink with extra metadata (annotations, labels) and `spec` (JSON, as
    /// in a manifest).
    pub async fn create_with(&self, name: &str, metadata: Value, spec: Value) -> CheckoutLink {
        let mut meta = metadata;
        meta["name"] = json!(name);
        let link: CheckoutLink = serde_json::from_value(json!({
            "apiVersion": "polar.sh/v1alpha1",
            "kind": "CheckoutLink",
            "metadata": meta,
            "spec": spec,
        }))
        .expect("a valid CheckoutLink");
        self.links
            .create(&PostParams::default(), &link)
            .await
            .expect("create CheckoutLink")
    }

    /// Merge-patches the spec.
    pub async fn patch_spec(&self, name: &str, spec: Value) -> CheckoutLink {
        self.links
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .expect("patch spec")
    }

    /// Merge-patches the annotations (a `null` value removes one).
    pub async fn annotate(&self, name: &str, annotations: Value) -> CheckoutLink {
        self.links
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": {"annotations": annotations} })),
            )
            .await
            .expect("patch annotations")
    }

    /// Deletes a CheckoutLink (the finalizer runs).
    pub async fn delete(&self, name: &str) {
        self.links
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }

    /// The CheckoutLink, which must exist.
    pub async fn get(&self, name: &str) -> CheckoutLink {
        self.links
            .get_opt(name)
            .await
            .expect("get CheckoutLink")
            .unwrap_or_else(|| panic!("{}/{name} does not exist", self.ns))
    }

    /// Polls until `check` accepts the object (or panics after `timeout`, printing it).
    pub async fn wait_for(
        &self,
        name: &str,
        timeout: Duration,
        what: &str,
        check: impl Fn(&CheckoutLink) -> bool,
    ) -> CheckoutLink {
        eventually(
            &format!("{name} to be {what}"),
            timeout,
            async || match self.links.get_opt(name).await {
                Ok(Some(link)) if check(&link) => Ok(link),
                Ok(Some(link)) => Err(summary(&link).to_string()),
                Ok(None) => Err("no such object".to_owned()),
                Err(e) => Err(e.to_string()),
            },
        )
        .await
    }

    /// Waits for Ready=True at the current generation.
    pub async fn wait_ready(&self, name: &str) -> CheckoutLink {
        self.wait_for(name, LINK_TIMEOUT, "Ready", is_ready).await
    }

    /// Waits for a condition with this status and reason, at the current generation.
    pub async fn wait_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: &str,
    ) -> CheckoutLink {
        let what = format!("{type_}={status} ({reason})");
        self.wait_for(name, LINK_TIMEOUT, &what, |l| {
            condition(l, type_).is_some_and(|c| c.0 == status && c.1 == reason) && observed(l)
        })
        .await
    }

    /// Waits until the CheckoutLink no longer exists.
    pub async fn wait_gone(&self, name: &str) {
        eventually(
            &format!("{name} to be deleted"),
            LINK_TIMEOUT,
            async || match self.links.get_opt(name).await.expect("get") {
                None => Ok(()),
                Some(link) => Err(summary(&link)),
            },
        )
        .await
    }

    /// Events about the object, oldest first.
    pub async fn events(&self, name: &str) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.ns);
        let mut events: Vec<Event> = api
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect();
        events.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
        events
    }

    /// Waits until an event with `reason` exists, and returns it.
    pub async fn wait_event(&self, name: &str, reason: &str) -> Event {
        self.wait_event_where(name, &format!("a {reason} event"), |e| {
            e.reason.as_deref() == Some(reason)
        })
        .await
    }

    /// Waits until an event about `name` satisfies `check`, and returns it.
    pub async fn wait_event_where(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&Event) -> bool,
    ) -> Event {
        eventually(&format!("{what} for {name}"), EVENT_TIMEOUT, async || {
            let events = self.events(name).await;
            match events.iter().find(|e| check(e)) {
                Some(e) => Ok(e.clone()),
                None => Err(format!("events {:?}", event_summaries(&events))),
            }
        })
        .await
    }
}

/// Ready=True at the current generation.
pub fn is_ready(link: &CheckoutLink) -> bool {
    condition(link, "Ready").is_some_and(|c| c.0 == "True") && observed(link)
}

/// The status speaks of the current generation.
pub fn observed(link: &CheckoutLink) -> bool {
    link.status.as_ref().and_then(|s| s.observed_generation) == link.metadata.generation
}

/// No status written by the operator: the apiserver's default (observedGeneration -1) only.
pub fn unwritten(link: &CheckoutLink) -> bool {
    link.status
        .as_ref()
        .is_none_or(|s| *s == CheckoutLinkStatus::unobserved())
}

/// What a failure message shows of a CheckoutLink.
pub fn summary(link: &CheckoutLink) -> Value {
    json!({"metadata": link.metadata, "status": link.status})
}

/// (reason, note, series count) of each event.
pub fn event_summaries(events: &[Event]) -> Vec<(Option<&str>, Option<&str>, Option<i32>)> {
    events
        .iter()
        .map(|e| {
            let series = e.series.as_ref().map(|s| s.count);
            (e.reason.as_deref(), e.note.as_deref(), series)
        })
        .collect()
}

/// The Lease's holder, if the Lease exists and names one.
pub async fn lease_holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    leases
        .get_opt(name)
        .await
        .expect("get lease")
        .and_then(|l| l.spec?.holder_identity)
}

/// One emulator counter (0 when absent).
pub fn count(emulator: &Emulator, key: &str) -> u64 {
    emulator.counters().get(key).copied().unwrap_or(0)
}

/// Every checkout-link call the emulator received.
pub fn polar_calls(emulator: &Emulator) -> u64 {
    emulator
        .counters()
        .iter()
        .filter(|(k, _)| k.contains("/v1/checkout-links/"))
        .map(|(_, n)| n)
        .sum()
}

/// Polar holds exactly one link per CheckoutLink in `links`, each created once.
pub async fn assert_one_polar_link_per_checkout_link(
    links: &Api<CheckoutLink>,
    emulator: &Emulator,
    count: usize,
) {
    let ids: BTreeSet<String> = links
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|l| {
            l.status
                .as_ref()
                .and_then(|s| s.id.clone())
                .expect("status.id")
        })
        .collect();
    let polar: BTreeSet<String> = emulator
        .links()
        .iter()
        .map(|l| l["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids.len(), count, "{count} distinct ids");
    assert_eq!(polar, ids, "Polar holds exactly the CheckoutLinks' links");
    assert_eq!(
        emulator.counters().get(POST).copied(),
        Some(count as u64),
        "one create per link"
    );
}
