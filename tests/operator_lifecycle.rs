//! The operator against a real kube-apiserver and the Polar emulator: create, update, settle,
//! delete, adopt, recreate. Each test has its own namespace, emulator and controller.

mod common;

use std::time::Duration;

use checkout_link_operator::polar::{CheckoutLinks, LinkFields, MetaValue};
use common::*;
use kube::ResourceExt;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_link_becomes_ready_and_polar_holds_every_spec_field() {
    let h = Harness::start("create-ready", Options::default()).await;
    let created = h
        .create(
            "launch",
            json!({
                "label": "Launch - email campaign",
                "products": [PRO_YEARLY, PRO_MONTHLY],
                "discount": {"allowCodes": false, "presetId": LAUNCH20},
                "metadata": {"source": "email", "wave": 2, "vip": true, "ratio": 1.5},
                "successUrl": "https://Example.com/thanks?checkout_id={CHECKOUT_ID}",
                "returnUrl": "https://example.com",
                "requireBillingAddress": true,
                "trial": {"interval": "month", "count": 1},
                "urlParameters": {"utmSource": "newsletter", "utmMedium": "email", "utmCampaign": "launch"}
            }),
        )
        .await;
    let team = h
        .create("team", json!({"products": [TEAM], "seats": 5}))
        .await;

    let link = h.wait_ready("launch").await;
    let st = status(&link);
    let polar = h.polar_link(&id(&link));
    assert_eq!(st.url.as_deref(), polar["url"].as_str());
    assert_eq!(st.client_secret.as_deref(), polar["client_secret"].as_str());
    assert_eq!(st.organization_id.as_deref(), Some(ACME));
    assert_eq!(
        st.share_url.as_deref().unwrap(),
        format!(
            "{}?utm_source=newsletter&utm_medium=email&utm_campaign=launch",
            polar["url"].as_str().unwrap()
        )
    );
    assert_eq!(polar["label"], "Launch - email campaign");
    let products: Vec<&str> = polar["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(products, [PRO_YEARLY, PRO_MONTHLY], "product order is kept");
    assert_eq!(polar["allow_discount_codes"], false);
    assert_eq!(polar["discount_id"], LAUNCH20);
    assert_eq!(polar["require_billing_address"], true);
    assert_eq!(
        polar["success_url"],
        "https://example.com/thanks?checkout_id={CHECKOUT_ID}"
    );
    assert_eq!(polar["return_url"], "https://example.com/");
    assert_eq!(
        (
            polar["trial_interval"].clone(),
            polar["trial_interval_count"].clone()
        ),
        (json!("month"), json!(1))
    );
    assert_eq!(
        polar["metadata"],
        json!({"source": "email", "wave": 2, "vip": true, "ratio": 1.5, "k8s_checkout_link_uid": created.uid().unwrap()})
    );
    assert!(
        link.finalizers()
            .iter()
            .any(|f| f == "polar.sh/checkout-link-cleanup")
    );

    let team_link = h.wait_ready("team").await;
    let team_polar = h.polar_link(&id(&team_link));
    assert_eq!(team_polar["seats"], 5);
    assert_eq!(team_polar["allow_discount_codes"], true, "Polar's default");
    assert_eq!(team_polar["require_billing_address"], false);
    assert_eq!(
        team_polar["metadata"],
        json!({"k8s_checkout_link_uid": team.uid().unwrap()})
    );

    assert_eq!(
        h.count(POST),
        2,
        "one POST per link: {:?}",
        h.link_counters()
    );
    assert_eq!(h.count(PATCH), 0);
    let created_event = h.wait_event("launch", "Created").await;
    assert!(created_event.note.unwrap().contains(&id(&link)));
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_changed_field_is_one_patch_and_removed_fields_are_cleared() {
    let h = Harness::start("update", Options::default()).await;
    h.create(
        "promo",
        json!({
            "label": "Promo",
            "products": [EBOOK],
            "discount": {"presetId": LAUNCH20},
            "successUrl": "https://example.com/ok",
            "metadata": {"source": "ads"}
        }),
    )
    .await;
    let before = h.wait_ready("promo").await;
    let link_id = id(&before);
    let url = status(&before).url.clone();
    h.emulator.reset_counters();

    h.patch_spec("promo", json!({"label": "Promo v2"})).await;
    let after = h.wait_ready("promo").await;
    assert_eq!(h.count(PATCH), 1, "{:?}", h.link_counters());
    assert_eq!(h.count(POST), 0);
    let polar = h.polar_link(&link_id);
    assert_eq!(polar["label"], "Promo v2");
    assert_eq!(
        polar["success_url"], "https://example.com/ok",
        "untouched fields stay"
    );
    assert_eq!(status(&after).url, url, "the URL never changes on update");
    let updated = h.wait_event("promo", "Updated").await;
    assert_eq!(
        updated.note.as_deref(),
        Some(format!("updated label of Polar checkout link {link_id}").as_str())
    );

    h.patch_spec(
        "promo",
        json!({"label": null, "discount": null, "successUrl": null, "metadata": null}),
    )
    .await;
    let cleared = h.wait_ready("promo").await;
    assert_eq!(h.count(PATCH), 2, "{:?}", h.link_counters());
    let polar = h.polar_link(&link_id);
    assert_eq!(polar["label"], Value::Null);
    assert_eq!(polar["discount_id"], Value::Null);
    assert_eq!(polar["success_url"], Value::Null);
    assert_eq!(
        polar["metadata"],
        json!({"k8s_checkout_link_uid": cleared.uid().unwrap()})
    );
    assert_eq!(status(&cleared).url, url);
    assert_eq!(status(&cleared).id.as_deref(), Some(link_id.as_str()));
    h.finish().await;
}

/// The JSON bodies of the PATCH requests the emulator received since the log was cleared.
fn patch_bodies(h: &Harness) -> Vec<serde_json::Map<String, Value>> {
    h.emulator
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| {
            let body = r.body.expect("a PATCH body is logged");
            match serde_json::from_str(&body).expect("the PATCH body is JSON") {
                Value::Object(map) => map,
                other => panic!("the PATCH body is not an object: {other}"),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_changed_field_is_one_patch_carrying_only_that_field() {
    let h = Harness::start("patch-body", Options::default()).await;
    h.create(
        "each",
        json!({
            "label": "Each",
            "products": [PRO_MONTHLY],
            "discount": {"allowCodes": true, "presetId": LAUNCH20},
            "metadata": {"source": "ads"},
            "successUrl": "https://example.com/ok",
            "returnUrl": "https://example.com/back",
            "requireBillingAddress": false,
            "trial": {"interval": "month", "count": 1}
        }),
    )
    .await;
    let id = id(&h.wait_ready("each").await);
    let uid_key = "k8s_checkout_link_uid";

    // (what changes, the spec merge patch, the PATCH body Polar must receive)
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "label",
            json!({"label": "Each v2"}),
            json!({"label": "Each v2"}),
        ),
        (
            "discount codes",
            json!({"discount": {"allowCodes": false}}),
            json!({"allow_discount_codes": false}),
        ),
        (
            "billing address",
            json!({"requireBillingAddress": true}),
            json!({"require_billing_address": true}),
        ),
        (
            "success URL",
            json!({"successUrl": "https://example.com/thanks"}),
            json!({"success_url": "https://example.com/thanks"}),
        ),
        (
            "return URL",
            json!({"returnUrl": "https://example.com/home"}),
            json!({"return_url": "https://example.com/home"}),
        ),
        (
            "trial",
            json!({"trial": {"interval": "year", "count": 1}}),
            json!({"trial_interval": "year", "trial_interval_count": 1}),
        ),
        (
            "removed discount",
            json!({"discount": {"presetId": null}}),
            json!({"discount_id": null}),
        ),
        (
            "removed success URL",
            json!({"successUrl": null}),
            json!({"success_url": null}),
        ),
        (
            "removed label",
            json!({"label": null}),
            json!({"label": null}),
        ),
        // Products change: the preset trial goes along, or Polar would drop it.
        (
            "products",
            json!({"products": [PRO_YEARLY, PRO_MONTHLY]}),
            json!({"products": [PRO_YEARLY, PRO_MONTHLY],
                   "trial_interval": "year", "trial_interval_count": 1}),
        ),
    ];
    for (what, spec, expected) in cases {
        h.emulator.clear_requests();
        h.patch_spec("each", spec).await;
        h.wait_ready("each").await;
        let bodies = patch_bodies(&h);
        assert_eq!(bodies.len(), 1, "{what}: one PATCH, got {bodies:?}");
        assert_eq!(Value::Object(bodies[0].clone()), expected, "{what}");
    }

    // Metadata is replaced as a whole (with the operator's ownership key kept).
    h.emulator.clear_requests();
    let uid = h
        .patch_spec("each", json!({"metadata": {"source": "email"}}))
        .await
        .uid()
        .unwrap();
    h.wait_ready("each").await;
    let bodies = patch_bodies(&h);
    assert_eq!(bodies.len(), 1, "metadata: one PATCH, got {bodies:?}");
    assert_eq!(
        Value::Object(bodies[0].clone()),
        json!({"metadata": {"source": "email", uid_key: uid}})
    );

    // URL parameters only shape status.shareUrl: no Polar call at all.
    h.emulator.clear_requests();
    h.patch_spec("each", json!({"urlParameters": {"utmSource": "x"}}))
        .await;
    let link = h
        .wait_for("each", Duration::from_secs(30), "shareUrl updated", |l| {
            l.status
                .as_ref()
                .and_then(|s| s.share_url.as_deref())
                .is_some_and(|u| u.ends_with("?utm_source=x"))
        })
        .await;
    h.wait_ready("each").await;
    assert!(patch_bodies(&h).is_empty(), "no PATCH for urlParameters");
    assert_eq!(status(&link).id.as_deref(), Some(id.as_str()));
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_links_cost_no_polar_or_kubernetes_writes_across_resyncs() {
    let h = Harness::start(
        "settled",
        Options {
            resync: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    for (name, products) in [
        ("a", json!([EBOOK])),
        ("b", json!([PRO_MONTHLY, PRO_YEARLY])),
        ("c", json!([TEAM])),
    ] {
        h.create(
            name,
            json!({"products": products, "label": name, "returnUrl": "https://EXAMPLE.com:443"}),
        )
        .await;
    }
    for name in ["a", "b", "c"] {
        h.wait_ready(name).await;
    }
    // Let the status writes' own watch events pass, then measure. (Not a verdict: the
    // reconciles those events cause find the links settled, and cost nothing either.)
    settle(Duration::from_secs(1)).await;
    h.emulator.reset_counters();
    let versions: Vec<_> = {
        let mut v = Vec::new();
        for name in ["a", "b", "c"] {
            v.push(h.links.get(name).await.unwrap().resource_version());
        }
        v
    };
    // A window of several resyncs in which nothing may be written or called.
    settle(Duration::from_secs(5)).await;
    assert_eq!(h.count(POST), 0, "{:?}", h.link_counters());
    assert_eq!(h.count(PATCH), 0, "{:?}", h.link_counters());
    assert_eq!(
        h.count(GET),
        0,
        "links in sync cost no call between sweeps: {:?}",
        h.link_counters()
    );
    assert!(
        h.count(LIST) >= 1,
        "drift is looked for by sweeping the organisation's links: {:?}",
        h.link_counters()
    );
    for (name, version) in ["a", "b", "c"].iter().zip(&versions) {
        assert_eq!(
            &h.links.get(name).await.unwrap().resource_version(),
            version,
            "{name} was written"
        );
    }
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_resource_deletes_its_link_unless_the_policy_is_orphan() {
    let h = Harness::start("delete", Options::default()).await;
    h.create("gone", json!({"products": [EBOOK]})).await;
    h.create(
        "kept",
        json!({"products": [EBOOK], "deletionPolicy": "Orphan"}),
    )
    .await;
    let gone_id = id(&h.wait_ready("gone").await);
    let kept_id = id(&h.wait_ready("kept").await);

    h.delete("gone").await;
    h.delete("kept").await;
    h.wait_gone("gone").await;
    h.wait_gone("kept").await;
    assert_eq!(h.count(DELETE), 1, "{:?}", h.link_counters());
    assert!(
        h.emulator.link(&gone_id).is_none(),
        "the link was deleted in Polar"
    );
    assert!(
        h.emulator.link(&kept_id).is_some(),
        "the orphaned link stays in Polar"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_annotated_resource_adopts_the_existing_link() {
    let h = Harness::start("adopt", Options::default()).await;
    let existing = h
        .polar_client()
        .create(&LinkFields {
            products: vec![EBOOK.into()],
            label: Some("made by hand".into()),
            allow_discount_codes: true,
            ..Default::default()
        })
        .await
        .unwrap();
    h.emulator.reset_counters();

    let created = h
        .create_with(
            "adopted",
            json!({"annotations": {"polar.sh/checkout-link-id": existing.id}}),
            json!({"products": [EBOOK], "label": "managed now"}),
        )
        .await;
    let link = h.wait_ready("adopted").await;
    assert_eq!(id(&link), existing.id);
    assert_eq!(status(&link).url.as_deref(), Some(existing.url.as_str()));
    assert_eq!(
        h.count(POST),
        0,
        "adoption creates nothing: {:?}",
        h.link_counters()
    );
    assert_eq!(h.count(PATCH), 1);
    let polar = h.polar_link(&existing.id);
    assert_eq!(polar["label"], "managed now");
    assert_eq!(
        polar["metadata"]["k8s_checkout_link_uid"],
        created.uid().unwrap()
    );
    h.wait_event("adopted", "Adopted").await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_deleted_in_polar_is_recreated_with_a_warning() {
    let h = Harness::start(
        "recreate",
        Options {
            resync: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    h.create(
        "victim",
        json!({"products": [EBOOK], "urlParameters": {"utmSource": "x"}}),
    )
    .await;
    let before = h.wait_ready("victim").await;
    let (old_id, old_url) = (id(&before), status(&before).url.clone().unwrap());

    h.emulator.delete_link(&old_id).unwrap();
    let after = h
        .wait_for("victim", Duration::from_secs(30), "recreated", |l| {
            l.status
                .as_ref()
                .and_then(|s| s.id.as_deref())
                .is_some_and(|i| i != old_id)
        })
        .await;
    let new_url = status(&after).url.clone().unwrap();
    assert_ne!(new_url, old_url);
    assert_eq!(
        status(&after).share_url.as_deref(),
        Some(format!("{new_url}?utm_source=x").as_str())
    );
    assert!(h.emulator.link(&id(&after)).is_some());
    let event = h.wait_event("victim", "Recreated").await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    let note = event.note.unwrap();
    assert!(note.contains(&old_url) && note.contains(&new_url), "{note}");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_archived_in_polar_is_reported_in_the_conditions() {
    let h = Harness::start(
        "archived",
        Options {
            resync: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    h.create("two", json!({"products": [EBOOK, PRO_MONTHLY]}))
        .await;
    h.create("one", json!({"products": [EBOOK]})).await;
    h.wait_ready("two").await;
    h.wait_ready("one").await;

    // Archiving takes the product out of every link; a link left empty is deleted.
    h.emulator.archive_product(EBOOK).unwrap();
    for name in ["two", "one"] {
        let link = h
            .wait_condition(name, "Stalled", "True", "ProductArchived")
            .await;
        let (ready, reason, message) = condition(&link, "Ready").unwrap();
        assert_eq!(
            (ready.as_str(), reason.as_str()),
            ("False", "ProductArchived")
        );
        assert!(message.contains("Product is archived"), "{message}");
    }
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_created_before_a_crash_is_found_again_instead_of_duplicated() {
    let mut h = Harness::start("crash-recovery", Options::default()).await;
    // The operator is "down" while the resource is created, and a previous process had
    // created its link (tagged with the UID) without writing the status.
    h.stop_controller().await;
    let created = h
        .create("survivor", json!({"products": [EBOOK], "label": "L"}))
        .await;
    let uid = created.uid().unwrap();
    let orphan = h
        .polar_client()
        .create(&LinkFields {
            products: vec![EBOOK.into()],
            label: Some("L".into()),
            allow_discount_codes: true,
            metadata: [("k8s_checkout_link_uid".to_owned(), MetaValue::Str(uid))].into(),
            ..Default::default()
        })
        .await
        .unwrap();
    h.emulator.reset_counters();

    h.start_controller();
    let link = h.wait_ready("survivor").await;
    assert_eq!(id(&link), orphan.id, "the tagged link was adopted");
    assert_eq!(h.count(POST), 0, "{:?}", h.link_counters());
    assert_eq!(h.count(PATCH), 0, "it already matched the spec");
    assert!(h.count(LIST) >= 1);
    assert_eq!(h.emulator.links().len(), 1, "no duplicate");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_operator_finds_settled_links_with_no_writes() {
    let mut h = Harness::start("restart", Options::default()).await;
    h.create("steady", json!({"products": [EBOOK], "label": "S"}))
        .await;
    let before = h.wait_ready("steady").await;
    h.stop_controller().await;
    h.emulator.reset_counters();
    let metrics = h.metrics.clone();
    let reconciled = || samples(&metrics.encode(), RECONCILES).unwrap_or(0.0);
    let before_restart = reconciled();
    h.start_controller();
    // The new controller has looked at the link; then a window in which it may write nothing.
    eventually(
        "a reconcile after the restart",
        Duration::from_secs(60),
        async || {
            let now = reconciled();
            (now > before_restart)
                .then_some(())
                .ok_or(format!("{now} reconciles"))
        },
    )
    .await;
    settle(Duration::from_secs(3)).await;
    let after = h.links.get("steady").await.unwrap();
    assert_eq!(after.resource_version(), before.resource_version());
    assert_eq!(h.count(POST) + h.count(PATCH), 0, "{:?}", h.link_counters());
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoints_report_health_readiness_and_metrics() {
    let h = Harness::start("endpoints", Options::default()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(checkout_link_operator::server::serve_on(
        listener,
        h.metrics.clone(),
        h.readiness.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    h.create("measured", json!({"products": [EBOOK]})).await;
    h.wait_ready("measured").await;
    assert!(h.readiness.is_ready(), "ready once the caches are synced");

    let get = |path: &str| {
        let url = format!("{base}{path}");
        async move {
            let response = reqwest::get(&url).await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await.0, 200);
    let (code, metrics) = get("/metrics").await;
    assert_eq!(code, 200);
    for needle in [
        "checkout_link_operator_reconciles_total{result=\"ok\"}",
        "checkout_link_operator_polar_requests_total{verb=\"create\",status_class=\"2xx\"} 1",
        "checkout_link_operator_reconcile_duration_seconds_count",
    ] {
        assert!(
            metrics.contains(needle),
            "{needle} missing from:\n{metrics}"
        );
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_made_in_polar_is_corrected_at_the_next_resync() {
    let h = Harness::start(
        "drift",
        Options {
            resync: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    h.create(
        "steady",
        json!({"products": [EBOOK, PRO_MONTHLY], "label": "Kept"}),
    )
    .await;
    let link_id = id(&h.wait_ready("steady").await);
    h.emulator.reset_counters();
    h.emulator
        .edit_link(
            &link_id,
            json!({"label": "edited in the dashboard", "allow_discount_codes": false}),
        )
        .unwrap();
    eventually(
        "the drift to be corrected",
        Duration::from_secs(20),
        async || {
            let label = h.polar_link(&link_id)["label"].clone();
            (label == "Kept").then_some(()).ok_or(label)
        },
    )
    .await;
    assert_eq!(h.polar_link(&link_id)["allow_discount_codes"], true);
    assert_eq!(h.count(PATCH), 1, "{:?}", h.link_counters());
    h.wait_event("steady", "Updated").await;
    h.finish().await;
}
