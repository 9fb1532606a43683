//! The fault paths where operators of this kind lose their users' trust: a second live link
//! after a lost answer, a link left tagged so that nobody can adopt it, two resources fighting
//! over one link, a 404 believed from the wrong organisation, a token sent in clear text.
//! Each test names the hole it closes.

mod common;

use std::time::Duration;

use checkout_link_operator::polar::{CheckoutLinks, LinkFields, MetaValue};
use common::*;
use kube::ResourceExt;
use polar_emulator::FaultRule;
use serde_json::{Value, json};

/// Globex's token: another organisation (examples/emulator-seed.yaml).
const GLOBEX_TOKEN: &str = "polar_oat_GlobexDemoWriteToken000000000000000033fE7W1";
const OWNER_KEY: &str = "k8s_checkout_link_uid";

/// The live links in the emulator tagged with `uid`.
fn tagged(h: &Harness, uid: &str) -> Vec<Value> {
    h.emulator
        .links()
        .into_iter()
        .filter(|l| l["metadata"][OWNER_KEY] == uid)
        .collect()
}

/// Hole 1: after an out-of-band delete, the recreate's POST commits but its answer is lost;
/// the next pass must find that link, not create a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreate_whose_answer_was_lost_leaves_one_live_link() {
    let h = Harness::start(
        "lost-recreate",
        Options {
            resync: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    let created = h.create("victim", json!({"products": [EBOOK]})).await;
    let uid = created.uid().unwrap();
    let before = h.wait_ready("victim").await;
    let old = id(&before);
    h.emulator.reset_counters();
    h.emulator.set_faults(vec![FaultRule {
        method: "POST".into(),
        path: "/v1/checkout-links/".into(),
        drop_response_after_commit: true,
        count: Some(1),
        ..Default::default()
    }]);
    h.emulator.delete_link(&old).unwrap();
    let after = h
        .wait_for("victim", Duration::from_secs(90), "recreated", |l| {
            l.status
                .as_ref()
                .and_then(|s| s.id.as_deref())
                .is_some_and(|i| i != old)
                && condition(l, "Ready").is_some_and(|c| c.0 == "True")
        })
        .await;
    // A few more sweeps: still one.
    settle(Duration::from_secs(3)).await;
    let live = tagged(&h, &uid);
    assert_eq!(live.len(), 1, "live links for the resource: {live:#?}");
    assert_eq!(live[0]["id"], id(&after).as_str());
    assert_eq!(h.count(POST), 1, "the lost create was found, not repeated");
    // And deleting the resource leaves nothing live.
    h.delete("victim").await;
    h.wait_gone("victim").await;
    assert!(tagged(&h, &uid).is_empty());
    h.finish().await;
}

/// Hole 2 (several links tagged with one UID): the extra ones are deleted, with an event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_link_tagged_for_the_resource_is_deleted_with_an_event() {
    let h = Harness::start(
        "duplicates",
        Options {
            resync: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    let created = h.create("one", json!({"products": [EBOOK]})).await;
    let uid = created.uid().unwrap();
    let kept = id(&h.wait_ready("one").await);
    // As a create whose answer was lost would have left it.
    let extra = h
        .polar_client()
        .create(&LinkFields {
            products: vec![EBOOK.into()],
            allow_discount_codes: true,
            metadata: [(OWNER_KEY.to_owned(), MetaValue::Str(uid.clone()))].into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let event = h.wait_event("one", "DuplicateDeleted").await;
    assert!(event.note.unwrap().contains(&extra.id));
    eventually("the duplicate gone", Duration::from_secs(30), async || {
        found((h.emulator.link(&extra.id).is_none()).then_some(()))
    })
    .await;
    let live = tagged(&h, &uid);
    assert_eq!(live.len(), 1);
    assert_eq!(
        live[0]["id"],
        kept.as_str(),
        "the link the status names is kept"
    );
    h.finish().await;
}

/// Hole 5: an orphaned link loses the owner tag, so another resource can adopt it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphaned_link_can_be_adopted_by_another_resource() {
    let h = Harness::start("orphan-adopt", Options::default()).await;
    h.create(
        "first",
        json!({"products": [EBOOK], "label": "moving", "deletionPolicy": "Orphan"}),
    )
    .await;
    let link = id(&h.wait_ready("first").await);
    h.delete("first").await;
    h.wait_gone("first").await;
    let polar = h.polar_link(&link);
    assert!(
        polar["metadata"].get(OWNER_KEY).is_none(),
        "the owner tag is gone: {}",
        polar["metadata"]
    );
    h.create_with(
        "second",
        json!({"annotations": {"polar.sh/checkout-link-id": link}}),
        json!({"products": [EBOOK], "label": "moving"}),
    )
    .await;
    let adopted = h.wait_ready("second").await;
    assert_eq!(id(&adopted), link, "the same link, the same URL");
    h.finish().await;
}

/// Hole 6: two resources adopting one link do not PATCH it back and forth forever; the
/// loser reports the conflict and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_resources_claiming_one_link_end_in_a_conflict_without_writes() {
    let h = Harness::start(
        "claims",
        Options {
            resync: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    let existing = h
        .polar_client()
        .create(&LinkFields {
            products: vec![EBOOK.into()],
            allow_discount_codes: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let annotated = json!({"annotations": {"polar.sh/checkout-link-id": existing.id}});
    h.create_with(
        "left",
        annotated.clone(),
        json!({"products": [EBOOK], "label": "left"}),
    )
    .await;
    h.create_with(
        "right",
        annotated,
        json!({"products": [EBOOK], "label": "right"}),
    )
    .await;
    let conflicted = |l: &checkout_link_operator::CheckoutLink| {
        condition(l, "Stalled").is_some_and(|c| {
            c.0 == "True" && (c.1 == "OwnershipConflict" || c.1 == "AdoptionFailed")
        })
    };
    // One of them holds it; the other ends stalled.
    eventually(
        "one owner and one conflict",
        Duration::from_secs(90),
        async || {
            let l = h.links.get("left").await.map_err(|e| e.to_string())?;
            let r = h.links.get("right").await.map_err(|e| e.to_string())?;
            let ready = |l: &checkout_link_operator::CheckoutLink| {
                condition(l, "Ready").is_some_and(|c| c.0 == "True")
            };
            if (ready(&l) && conflicted(&r)) || (ready(&r) && conflicted(&l)) {
                Ok(())
            } else {
                Err(format!(
                    "left {:?}, right {:?}",
                    condition(&l, "Ready"),
                    condition(&r, "Ready")
                ))
            }
        },
    )
    .await;
    settle(Duration::from_secs(2)).await;
    h.emulator.reset_counters();
    settle(Duration::from_secs(4)).await;
    assert_eq!(
        h.count(PATCH) + h.count(POST),
        0,
        "no tug of war: {:?}",
        h.link_counters()
    );
    h.finish().await;
}

/// Hole 6: an adoption annotation changed after adoption is not ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_annotation_changed_after_adoption_is_reported() {
    let h = Harness::start("annotation-moved", Options::default()).await;
    h.create("mine", json!({"products": [EBOOK]})).await;
    h.wait_ready("mine").await;
    h.links
        .patch(
            "mine",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"annotations": {
                "polar.sh/checkout-link-id": "5a1e0a34-0d6f-4f3b-8f5e-3b2a1c0d9e8f"
            }}})),
        )
        .await
        .unwrap();
    let stalled = h
        .wait_for("mine", Duration::from_secs(60), "in conflict", |l| {
            condition(l, "Stalled").is_some_and(|c| c.0 == "True" && c.1 == "OwnershipConflict")
        })
        .await;
    assert!(
        condition(&stalled, "Stalled")
            .unwrap()
            .2
            .contains("5a1e0a34")
    );
    h.finish().await;
}

/// Hole 7: credentials of another organisation answer 404 for every link: that must not be
/// read as "deleted outside Kubernetes" (no recreate, no false warning), nor count a deletion
/// as done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_another_organisation_recreates_nothing_and_deletes_nothing() {
    let h = Harness::start(
        "wrong-org",
        Options {
            resync: Duration::from_secs(1),
            deletion_grace: Duration::from_secs(3600),
            ..Options::default()
        },
    )
    .await;
    h.create("acme", json!({"products": [EBOOK]})).await;
    let link = id(&h.wait_ready("acme").await);
    h.emulator.reset_counters();
    h.put_secret(SECRET, GLOBEX_TOKEN, None).await;
    let stalled = h
        .wait_condition("acme", "Stalled", "True", "OrganizationMismatch")
        .await;
    assert!(condition(&stalled, "Stalled").unwrap().2.contains(ACME));
    settle(Duration::from_secs(3)).await;
    assert_eq!(
        h.count(POST),
        0,
        "nothing recreated: {:?}",
        h.link_counters()
    );
    assert!(
        h.events("acme")
            .await
            .iter()
            .all(|e| e.reason.as_deref() != Some("Recreated"))
    );
    h.delete("acme").await;
    let deleting = h
        .wait_for("acme", Duration::from_secs(60), "a stalled deletion", |l| {
            l.metadata.deletion_timestamp.is_some()
                && condition(l, "Stalled").is_some_and(|c| c.0 == "True")
        })
        .await;
    assert!(
        deleting
            .finalizers()
            .iter()
            .any(|f| f == "polar.sh/checkout-link-cleanup")
    );
    assert!(
        h.emulator.link(&link).is_some(),
        "the Acme link is still live"
    );
    // The right token again: the deletion completes and the link goes.
    h.put_secret(SECRET, TOKEN, None).await;
    h.wait_gone("acme").await;
    assert!(h.emulator.link(&link).is_none());
    h.finish().await;
}

/// Hole 9: a plain http:// server other than loopback is refused before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_server_in_the_cluster_is_refused() {
    let h = Harness::start("insecure", Options::default()).await;
    h.put_secret(
        "remote",
        TOKEN,
        Some("http://polar-emulator.default.svc:8787"),
    )
    .await;
    h.create(
        "remote",
        json!({"products": [EBOOK], "credentialsSecretRef": {"name": "remote"}}),
    )
    .await;
    let stalled = h
        .wait_condition("remote", "Stalled", "True", "CredentialsInvalid")
        .await;
    let message = condition(&stalled, "Stalled").unwrap().2;
    assert!(message.contains("http://"), "{message}");
    assert!(message.contains("--allow-insecure-servers"), "{message}");
    h.finish().await;
}

/// Hole 2: Polar commits a create after the client gave up; the retry must find that link, not
/// make a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_committed_after_the_timeout_is_found_not_repeated() {
    let h = Harness::start("slow-commit", Options::default()).await;
    // The harness's request timeout is 5 s: the answer comes after the client left.
    h.emulator.set_faults(vec![FaultRule {
        method: "POST".into(),
        path: "/v1/checkout-links/".into(),
        commit_delay_ms: 6000,
        count: Some(1),
        ..Default::default()
    }]);
    let created = h.create("slow", json!({"products": [EBOOK]})).await;
    let uid = created.uid().unwrap();
    let ready = h.wait_ready("slow").await;
    let live = tagged(&h, &uid);
    assert_eq!(live.len(), 1, "{live:#?}");
    assert_eq!(live[0]["id"], id(&ready).as_str());
    assert_eq!(h.count(POST), 1, "the slow create was found, not repeated");
    h.finish().await;
}

/// Hole 2: offset paging without a tie-breaker misses a link when an earlier one is deleted
/// mid-sweep; a link missing from a sweep is confirmed before it is called gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_a_sweep_missed_is_confirmed_not_recreated() {
    let h = Harness::start(
        "shifted-pages",
        Options {
            resync: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    // 100 links someone else made, then ours: it is the first of page 2.
    let polar = h.polar_client();
    for _ in 0..100 {
        polar
            .create(&LinkFields {
                products: vec![EBOOK.into()],
                allow_discount_codes: true,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    h.create("ours", json!({"products": [EBOOK]})).await;
    let link = id(&h.wait_ready("ours").await);
    settle(Duration::from_secs(2)).await;
    h.emulator.reset_counters();
    h.emulator.set_faults(vec![FaultRule {
        method: "GET".into(),
        path: "/v1/checkout-links/".into(),
        list_shift: 1,
        ..Default::default()
    }]);
    eventually(
        "a sweep that missed the link, and its confirmation",
        Duration::from_secs(60),
        async || {
            if h.count(GET) >= 1 {
                Ok(())
            } else {
                Err(format!("{:?}", h.link_counters()))
            }
        },
    )
    .await;
    h.emulator.clear_faults();
    settle(Duration::from_secs(2)).await;
    assert_eq!(
        id(&h.links.get("ours").await.unwrap()),
        link,
        "not recreated"
    );
    assert_eq!(h.count(POST), 0, "{:?}", h.link_counters());
    h.finish().await;
}

/// Hole 4: deleting a namespace deletes its Secrets with its CheckoutLinks; the links' Polar
/// links must still be deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_leaves_no_live_link_in_polar() {
    let h = Harness::start(
        "namespace-deletion",
        Options {
            controllers: true,
            ..Options::default()
        },
    )
    .await;
    h.put_secret("own", TOKEN, None).await;
    for name in ["a", "b"] {
        h.create(
            name,
            json!({"products": [EBOOK], "credentialsSecretRef": {"name": "own"}}),
        )
        .await;
    }
    for name in ["a", "b"] {
        h.wait_ready(name).await;
    }
    h.objects
        .wait_for_secret("own", "guarded", |s| {
            s.metadata
                .finalizers
                .as_ref()
                .is_some_and(|f| f.iter().any(|f| f == "polar.sh/credentials-in-use"))
        })
        .await;
    assert_eq!(h.emulator.links().len(), 2);
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(h.client.clone());
    namespaces.delete(&h.ns, &Default::default()).await.unwrap();
    eventually(
        "the namespace gone",
        Duration::from_secs(120),
        async || match namespaces.get_opt(&h.ns).await {
            Ok(None) => Ok(()),
            Ok(Some(ns)) => Err(format!("{:?}", ns.status)),
            Err(e) => Err(e.to_string()),
        },
    )
    .await;
    assert!(
        h.emulator.links().is_empty(),
        "live links left: {:#?}",
        h.emulator.links()
    );
    h.finish().await;
}
