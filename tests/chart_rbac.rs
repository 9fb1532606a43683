//! The Helm chart's RBAC is exactly what the operator needs: enough for the whole life of a
//! CheckoutLink, and nothing the operator could do without.
//!
//! The chart is rendered by the real helm; its RBAC objects and ServiceAccount are applied to the
//! test apiserver, and the real operator binary runs outside the cluster with the
//! ServiceAccount's identity: a client certificate for the user
//! `system:serviceaccount:<namespace>:<name>` (group `system:serviceaccounts`), which RBAC matches
//! against ServiceAccount subjects by that user name, as it does for a token (checked: a
//! SelfSubjectReview names that user, who may do nothing before the chart's bindings exist and
//! exactly what they grant after).
//!
//! Each run is the chart's default deployment: leader election on (with the Deployment's own
//! `--leader-election*` arguments), all namespaces watched through the ClusterRole, the
//! ServiceAccount, default credentials Secret and Lease in the release namespace, the
//! CheckoutLinks in another namespace. The runs go on at the same time against one apiserver,
//! each with its own release (so its own ClusterRole), namespaces, emulator and operator process;
//! each operator picks its run's links by label (`--label-selector`, the sharding flag).
//!
//! - `full`: the chart's rules. A link is created, updated twice (the second `Updated` event
//!   repeats the first: the recorder patches it), a second link waits for its own Secret until it
//!   is created, both are deleted (DELETE reaches Polar, the finalizers are released); nothing is
//!   forbidden. `no-leader-election` does the same with `leaderElection.enabled=false` (no Role).
//! - `narrowed`: the narrowing RBAC.md describes (`rbac.create=false`, `--namespace`, and its YAML:
//!   the chart's rules bound in the watched namespace only, the default Secret alone by name) is
//!   enough for the same life; the YAML is read from RBAC.md and checked against the chart.
//! - One run per verb of every rule in [`CASES`], with the role lacking just that verb: each shows
//!   its own symptom, and the 403 for that verb and resource in the operator's log.
//! - The cases are matched against the rules read from the rendered chart: a verb the chart
//!   grants without a case here, or a case for a verb it no longer grants, fails the test.
//!
//! Here: the cases, the scenarios and the tests. `chart_rbac/rbac.rs` reads the chart's RBAC
//! (verbs, bindings, RBAC.md's recipe, access reviews); `chart_rbac/world.rs` sets up one run
//! on tests/common (namespaces, Secrets, links, waits, events and the operator process).

mod common;
#[path = "chart_rbac/rbac.rs"]
mod rbac;
#[path = "chart_rbac/world.rs"]
mod world;

use std::any::Any;
use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use anyhow::ensure;
use common::{DELETE, EBOOK, PATCH, POST, TOKEN, condition, scaled, unwritten};
use futures::FutureExt as _;
use rbac::{ClusterRole, Rendered, Role, RoleKind, Verb, check_recipe, narrowing_recipe};
use serde_json::{Value, json};
use testenv::ControlPlane;
use world::{Run, World, has_finalizer};

use Symptom::*;

/// How long a run keeps watching, once the 403 showed, for something that must not happen
/// (before scaling).
const OBSERVE: Duration = Duration::from_secs(4);
/// A link's own credentials Secret, in the link's namespace.
const OWN_SECRET: &str = "shop-polar";

// ---------------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------------

/// What breaks when one verb is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Symptom {
    /// A watch cannot list: the operator leads but `/readyz` never answers 200 (its caches never
    /// sync), no status is written and Polar is not called.
    NeverReady,
    /// The first list worked but the watch cannot follow: a CheckoutLink created afterwards is
    /// never seen (the log never names it; no finalizer, no status, Polar not called).
    NewLinksUnseen,
    /// The link is seen (the log names it) but the finalizer cannot be added: no status, Polar
    /// not called.
    NoFinalizer,
    /// The status cannot be written: the link is created in Polar exactly once (despite the
    /// retries) but the resource never shows its id, URL or Ready condition.
    NoStatus,
    /// The credentials Secret's data cannot be read: the finalizer is added, then no status is
    /// written and Polar is not called.
    CredentialsUnreadable,
    /// Secret changes are not seen: a link waiting for its Secret stays `CredentialsMissing`
    /// after the Secret is created (with the full rules it becomes Ready).
    SecretChangesUnseen,
    /// The link becomes Ready but no Event is recorded for it.
    NoEvents,
    /// Events are recorded but a repeated one is not counted: after the second `Updated` the
    /// event has no series (with the full rules its series count is 2).
    RepeatsUncounted,
    /// Leader election never succeeds: the `leader` gauge stays 0, the Lease is not the
    /// operator's, and no finalizer, no status, Polar not called.
    NeverLeads,
    /// A link with its own Secret becomes Ready, but the Secret never carries the credentials
    /// finalizer (so a namespace deletion could take the token before the link is deleted).
    SecretUnguarded,
    /// The link becomes Ready but its export never reaches the ConfigMap (an `ExportFailed`
    /// event says why).
    ExportNotWritten,
    /// The export is written, but the ConfigMap the operator created stays after the link is
    /// deleted.
    ExportLeftBehind,
}

/// A verb, and what breaks without it.
#[derive(Clone, Copy, Debug)]
struct Case {
    /// Names the run (its release, namespaces and label).
    id: &'static str,
    role: RoleKind,
    group: &'static str,
    resource: &'static str,
    verb: &'static str,
    symptom: Symptom,
}

const fn case(
    id: &'static str,
    role: RoleKind,
    group: &'static str,
    resource: &'static str,
    verb: &'static str,
    symptom: Symptom,
) -> Case {
    Case {
        id,
        role,
        group,
        resource,
        verb,
        symptom,
    }
}

impl Case {
    fn verb(&self) -> Verb {
        Verb {
            role: self.role,
            group: self.group.to_owned(),
            resource: self.resource.to_owned(),
            verb: self.verb.to_owned(),
        }
    }
}

/// One case per verb the chart grants (RBAC.md says why each is needed).
#[rustfmt::skip]
const CASES: &[Case] = &[
    case("links-list", ClusterRole, "polar.sh", "checkoutlinks", "list", NeverReady),
    case("links-watch", ClusterRole, "polar.sh", "checkoutlinks", "watch", NewLinksUnseen),
    case("links-patch", ClusterRole, "polar.sh", "checkoutlinks", "patch", NoFinalizer),
    case("status-patch", ClusterRole, "polar.sh", "checkoutlinks/status", "patch", NoStatus),
    case("secrets-get", ClusterRole, "", "secrets", "get", CredentialsUnreadable),
    case("secrets-list", ClusterRole, "", "secrets", "list", NeverReady),
    case("secrets-watch", ClusterRole, "", "secrets", "watch", SecretChangesUnseen),
    case("secrets-patch", ClusterRole, "", "secrets", "patch", SecretUnguarded),
    case("configmaps-get", ClusterRole, "", "configmaps", "get", ExportNotWritten),
    case("configmaps-create", ClusterRole, "", "configmaps", "create", ExportNotWritten),
    case("configmaps-patch", ClusterRole, "", "configmaps", "patch", ExportNotWritten),
    case("configmaps-delete", ClusterRole, "", "configmaps", "delete", ExportLeftBehind),
    case("events-create", ClusterRole, "events.k8s.io", "events", "create", NoEvents),
    case("events-patch", ClusterRole, "events.k8s.io", "events", "patch", RepeatsUncounted),
    case("leases-get", Role, "coordination.k8s.io", "leases", "get", NeverLeads),
    case("leases-create", Role, "coordination.k8s.io", "leases", "create", NeverLeads),
    case("leases-patch", Role, "coordination.k8s.io", "leases", "patch", NeverLeads),
];

/// Every case's verb is granted by the chart, and every verb the chart grants has a case.
fn check_coverage(granted: &BTreeSet<Verb>) -> anyhow::Result<()> {
    let covered: BTreeSet<Verb> = CASES.iter().map(Case::verb).collect();
    let ids: BTreeSet<&str> = CASES.iter().map(|c| c.id).collect();
    ensure!(ids.len() == CASES.len(), "two cases share an id");
    let uncovered: Vec<String> = granted
        .difference(&covered)
        .map(|v| v.to_string())
        .collect();
    let stale: Vec<String> = covered.difference(granted).map(|v| v.to_string()).collect();
    ensure!(
        uncovered.is_empty(),
        "the chart grants {uncovered:?} without a case in tests/chart_rbac.rs: add one that shows \
         what breaks without it (or drop the verb from the chart)"
    );
    ensure!(
        stale.is_empty(),
        "tests/chart_rbac.rs has cases for {stale:?}, which the chart no longer grants"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------------

/// The ConfigMap `shop` exports its URL to (created by the operator).
const SITE: &str = "shop-site";

fn shop_spec() -> Value {
    json!({"label": "v1", "products": [EBOOK], "export": {"configMap": SITE}})
}

/// The ConfigMap `SITE`, if it exists.
async fn site(w: &World) -> Option<k8s_openapi::api::core::v1::ConfigMap> {
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(w.objects.client.clone(), &w.objects.ns);
    api.get_opt(SITE).await.unwrap()
}

/// With enough rights: the operator leads (with leader election), and two links live their
/// whole life; nothing is forbidden, the token never logged.
async fn full(w: &mut World, extra: &[String]) {
    w.start_operator(extra);
    if let Some((_, identity)) = w.lease() {
        let w = &*w;
        w.operator()
            .wait("the operator to hold the Lease", async || {
                (w.lease_holder().await.as_deref() == Some(identity.as_str())).then_some(())
            })
            .await;
    }
    w.wait_synced().await;
    lifecycle(w).await;
    let log = w.operator().log();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "something was forbidden"
    );
    assert!(!log.contains(TOKEN), "the Polar token is in the log");
}

/// Create, update twice, a link waiting for its own Secret, delete.
async fn lifecycle(w: &World) {
    // Create: finalizer, Polar link, status, event.
    w.create_link("shop", shop_spec()).await;
    let link = w.wait_ready("shop").await;
    assert!(has_finalizer(&link), "no finalizer on a Ready link");
    let status = link.status.unwrap_or_default();
    let id = status.id.unwrap_or_default();
    let polar = w
        .emulator
        .link(&id)
        .expect("the status' id is not in Polar");
    assert!(
        polar["url"].as_str() == status.url.as_deref(),
        "status.url is not Polar's {}",
        polar["url"]
    );
    assert!(w.count(POST) == 1, "POSTs: {}", w.count(POST));
    w.wait_event("shop", "Created", None).await;
    // The export: the URL in the ConfigMap the operator created for it.
    let url = status.url.clone().unwrap_or_default();
    w.operator()
        .wait("the URL exported to the ConfigMap", async || {
            let data = site(w).await?.data?;
            (data.get("shop.url") == Some(&url)).then_some(())
        })
        .await;

    // Update twice: a PATCH each, Ready at each generation; the second Updated event is counted
    // on the first (the recorder patches it).
    for (n, label) in [(1, "v2"), (2, "v3")] {
        let generation = w.set_label("shop", label).await;
        let link = w.wait_ready("shop").await;
        assert!(
            link.metadata.generation == generation,
            "Ready at another generation"
        );
        let patches = w.count(PATCH);
        assert!(patches == n, "PATCHes: {patches} (want {n})");
        let polar = w.emulator.link(&id).expect("the link left Polar");
        assert!(
            polar["label"] == label,
            "Polar's label is {}",
            polar["label"]
        );
    }
    w.wait_event("shop", "Updated", Some(2)).await;

    // A link with its own Secret, in its own namespace: missing, then created; the Secret is
    // kept (finalizer) while the link uses it.
    own_secret_arrives(w).await;
    w.wait_ready("own").await;
    assert!(w.count(POST) == 2, "POSTs: {}", w.count(POST));
    w.objects
        .wait_for_secret(OWN_SECRET, "guarded by the credentials finalizer", guarded)
        .await;

    // Delete: DELETE reaches Polar, the finalizers are released.
    for name in ["shop", "own"] {
        w.objects.delete(name).await;
    }
    for name in ["shop", "own"] {
        w.objects.wait_gone(name).await;
    }
    assert!(w.count(DELETE) == 2, "DELETEs: {}", w.count(DELETE));
    w.operator()
        .wait(
            "the exported ConfigMap deleted with its last key",
            async || site(w).await.is_none().then_some(()),
        )
        .await;
    w.objects
        .wait_for_secret(OWN_SECRET, "released by the operator", |s| !guarded(s))
        .await;
    assert!(
        w.emulator.link(&id).is_none(),
        "the link is still live in Polar"
    );
}

/// Creates `own`, which uses the Secret `shop-polar` of its namespace; waits until it says the
/// Secret is missing, then creates the Secret.
async fn own_secret_arrives(w: &World) {
    let mut spec = shop_spec();
    spec["credentialsSecretRef"] = json!({"name": OWN_SECRET});
    w.create_link("own", spec).await;
    w.wait_link("own", "CredentialsMissing", |l| {
        condition(l, "Ready").is_some_and(|c| c.0 == "False" && c.1 == "CredentialsMissing")
    })
    .await;
    w.put_secret(&w.objects, OWN_SECRET).await
}

/// Lets the operator work for a while after the 403 showed, before the checks that something
/// did *not* happen (no status, no Polar call, no event...): there is no event to wait for when
/// nothing is meant to happen, so this is a window, not a deadline. Scaled like the deadlines:
/// a slower machine gets a longer window, which only makes those checks stricter.
async fn observe() {
    tokio::time::sleep(scaled(OBSERVE)).await;
}

/// Without one verb: what the case's symptom says, after the 403 for it showed in the log.
async fn without(w: &mut World, case: &Case) {
    w.start_operator(&[]);
    let forbidden = async |w: &World| w.wait_forbidden(case.verb, case.resource).await;
    // Create `shop`, see the 403, then give the operator time to do what it should not manage.
    let create_then_observe = async |w: &World| {
        w.create_link("shop", shop_spec()).await;
        forbidden(w).await;
        observe().await;
    };
    match case.symptom {
        NeverReady => {
            create_then_observe(w).await;
            let op = w.operator();
            assert!(op.leads().await == Some(true), "it does not lead");
            assert!(!op.ready().await, "/readyz answers 200");
            assert!(unwritten(&w.link("shop").await), "a status was written");
            assert!(w.polar_calls() == 0, "Polar was called");
        }
        NewLinksUnseen => {
            w.wait_synced().await;
            create_then_observe(w).await;
            w.untouched("shop", false).await;
            let named = format!("{}/shop", w.app);
            assert!(
                !w.operator().log().contains(&named),
                "the log names {named}"
            );
        }
        NoFinalizer => {
            w.wait_synced().await;
            create_then_observe(w).await;
            w.untouched("shop", false).await;
            // Seen (unlike NewLinksUnseen): its failed reconciles are logged.
            let named = format!("{}/shop", w.app);
            let log = w.operator().log();
            assert!(log.contains(&named), "the log never names {named}");
        }
        NoStatus => {
            w.wait_synced().await;
            create_then_observe(w).await;
            let link = w.link("shop").await;
            assert!(has_finalizer(&link), "no finalizer");
            assert!(unwritten(&link), "a status was written");
            let created = (w.count(POST), w.emulator.links().len());
            assert!(
                created == (1, 1),
                "(POSTs, links in Polar): {created:?}, want one each"
            );
        }
        CredentialsUnreadable => {
            w.wait_synced().await;
            create_then_observe(w).await;
            w.untouched("shop", true).await;
        }
        SecretChangesUnseen => {
            w.wait_synced().await;
            own_secret_arrives(w).await;
            forbidden(w).await;
            observe().await;
            let ready = condition(&w.link("own").await, "Ready");
            let missing = ready
                .as_ref()
                .is_some_and(|c| c.0 == "False" && c.1 == "CredentialsMissing");
            assert!(missing, "the link saw its Secret: {ready:?}");
            assert!(w.polar_calls() == 0, "Polar was called");
        }
        NoEvents => {
            w.wait_synced().await;
            w.create_link("shop", shop_spec()).await;
            w.wait_ready("shop").await;
            w.set_label("shop", "v2").await;
            w.wait_ready("shop").await;
            forbidden(w).await;
            observe().await;
            let events = w.events("shop").await;
            assert!(events.is_empty(), "events were recorded: {events:?}");
        }
        RepeatsUncounted => {
            w.wait_synced().await;
            w.create_link("shop", shop_spec()).await;
            w.wait_ready("shop").await;
            for label in ["v2", "v3"] {
                w.set_label("shop", label).await;
                w.wait_ready("shop").await;
            }
            forbidden(w).await;
            observe().await;
            let mut events = w.events("shop").await;
            events.sort();
            let want = [("Created".to_owned(), None), ("Updated".to_owned(), None)];
            assert!(events == want, "events: {events:?}, want {want:?}");
        }
        ExportNotWritten => {
            w.wait_synced().await;
            w.create_link("shop", shop_spec()).await;
            w.wait_ready("shop").await;
            forbidden(w).await;
            observe().await;
            let data = site(w).await.and_then(|c| c.data).unwrap_or_default();
            assert!(
                !data.contains_key("shop.url"),
                "the URL was exported: {data:?}"
            );
            w.wait_event("shop", "ExportFailed", None).await;
        }
        ExportLeftBehind => {
            w.wait_synced().await;
            w.create_link("shop", shop_spec()).await;
            w.wait_ready("shop").await;
            w.operator()
                .wait("the URL exported", async || site(w).await.map(|_| ()))
                .await;
            w.objects.delete("shop").await;
            w.objects.wait_gone("shop").await;
            forbidden(w).await;
            observe().await;
            assert!(site(w).await.is_some(), "the ConfigMap was deleted");
        }
        SecretUnguarded => {
            w.wait_synced().await;
            let mut spec = shop_spec();
            spec["credentialsSecretRef"] = json!({"name": OWN_SECRET});
            w.put_secret(&w.objects, OWN_SECRET).await;
            w.create_link("own", spec).await;
            w.wait_ready("own").await;
            forbidden(w).await;
            observe().await;
            let secret = w.objects.secrets.get(OWN_SECRET).await.unwrap();
            assert!(!guarded(&secret), "the Secret carries the finalizer");
        }
        NeverLeads => {
            let (_, identity) = w.lease().expect("no leader election in the Deployment");
            create_then_observe(w).await;
            let holder = w.lease_holder().await;
            assert!(
                holder.as_deref() != Some(identity.as_str()),
                "the operator holds the Lease"
            );
            let leads = w.operator().leads().await;
            assert!(leads == Some(false), "the leader gauge: {leads:?}");
            w.untouched("shop", false).await;
        }
    }
}

/// Whether a Secret carries the operator's credentials finalizer.
fn guarded(secret: &k8s_openapi::api::core::v1::Secret) -> bool {
    secret
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == "polar.sh/credentials-in-use"))
}

/// What a panic said.
fn panic_message(panic: &(dyn Any + Send)) -> String {
    let text = panic.downcast_ref::<String>().map(String::as_str);
    let text = text.or_else(|| panic.downcast_ref::<&str>().copied());
    text.unwrap_or("(a panic without a message)").to_owned()
}

/// Sets up and runs one run; on failure, what failed with the world's report. The runs go on
/// in one task, so a failing one is caught here and the others finish.
async fn run(run: Run) -> Result<Duration, String> {
    let started = Instant::now();
    let setup = AssertUnwindSafe(World::new(&run)).catch_unwind().await;
    let mut world = match setup {
        Ok(Ok(world)) => world,
        Ok(Err(e)) => return Err(format!("setting up: {e:#}")),
        Err(panic) => return Err(format!("setting up: {}", panic_message(&*panic))),
    };
    let scenario = async {
        match &run {
            Run::Full | Run::NoLeaderElection => full(&mut world, &[]).await,
            Run::Narrowed => {
                let namespace = format!("--namespace={}", world.app);
                full(&mut world, &[namespace]).await
            }
            Run::Without(case) => without(&mut world, case).await,
        }
    };
    match AssertUnwindSafe(scenario).catch_unwind().await {
        Ok(()) => Ok(started.elapsed()),
        Err(panic) => Err(format!(
            "{}\n{}",
            panic_message(&*panic),
            world.report().await
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_verb_the_chart_grants_has_a_case_and_its_roles_bind_the_service_account() {
    let chart = Rendered::new("coverage", "operators", &[]).await.unwrap();
    chart.check_bindings("operators").unwrap();
    let granted = chart.verbs().unwrap();
    check_coverage(&granted).unwrap();

    // The check fails for a verb granted without a case, and for a case without its verb.
    let extra = Verb {
        role: ClusterRole,
        group: String::new(),
        resource: "configmaps".into(),
        verb: "list".into(),
    };
    let mut more = granted.clone();
    more.insert(extra);
    assert!(check_coverage(&more).is_err());
    let mut fewer = granted.clone();
    fewer.remove(&CASES[0].verb());
    assert!(check_coverage(&fewer).is_err());

    // Taking a verb out leaves every other one, with its resource names.
    for case in CASES {
        let reduced = Rendered {
            objects: chart.without(&case.verb()).unwrap(),
            args: Vec::new(),
        };
        let mut expected = chart.grants().unwrap();
        expected.retain(|(v, _)| v != &case.verb());
        let mut got = reduced.grants().unwrap();
        expected.sort();
        got.sort();
        assert_eq!(got, expected, "{}", case.id);
    }

    // Without leader election, no Role.
    let no_election = Run::NoLeaderElection.helm_values();
    let no_election = Rendered::new("coverage", "operators", no_election)
        .await
        .unwrap();
    assert!(no_election.find("Role").unwrap().is_none());

    // RBAC.md's narrowing grants the chart's rules (for the names it uses).
    let named = Rendered::new("checkout-link-operator", "operators", &[])
        .await
        .unwrap();
    let recipe = narrowing_recipe("operators", "shop").unwrap();
    check_recipe(&recipe, &named, "operators", "shop").unwrap();

    // The Deployment's Lease is the one the Role names.
    let lease = chart
        .args
        .iter()
        .find_map(|a| a.strip_prefix("--leader-election-lease-name="))
        .expect("the Deployment names its Lease");
    let named: Vec<_> = chart
        .grants()
        .unwrap()
        .into_iter()
        .filter(|(_, n)| !n.is_empty())
        .collect();
    assert!(!named.is_empty(), "no verb is limited to the Lease");
    for (verb, names) in named {
        assert_eq!(verb.resource, "leases", "{verb} is limited to {names:?}");
        assert_eq!(names, [lease], "{verb}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_charts_rbac_is_exactly_what_the_operator_needs() {
    tokio::task::spawn_blocking(ControlPlane::shared)
        .await
        .expect("the control plane");
    let chart = Rendered::new("coverage", "operators", &[]).await.unwrap();
    check_coverage(&chart.verbs().unwrap()).unwrap();

    let mut runs = vec![Run::Full, Run::NoLeaderElection, Run::Narrowed];
    runs.extend(CASES.iter().map(|c| Run::Without(*c)));
    let started = Instant::now();
    // One task: the runs wait on the apiserver, the emulators and the operator processes.
    let results = futures::future::join_all(runs.iter().map(|r| run(*r))).await;
    let mut failures = Vec::new();
    for (r, result) in runs.iter().zip(results) {
        match result {
            Ok(took) => eprintln!(
                "ok   {:20} {:5.1}s  {}",
                r.id(),
                took.as_secs_f64(),
                r.describe()
            ),
            Err(report) => {
                eprintln!("FAIL {:20}         {}", r.id(), r.describe());
                failures.push(format!("=== {}: {}\n{report}", r.id(), r.describe()));
            }
        }
    }
    eprintln!(
        "{} runs in {:.1}s",
        runs.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
