//! The mechanisms that let the operator serve many links on Polar's shared rate limit (their
//! mechanism, not their speed: `make bench` measures that): one budget and one `Retry-After`
//! per organisation whatever the tokens, Secrets watched by metadata only, a settled link that
//! stays Ready through a Polar outage without a status write, an update that costs one PATCH,
//! and drift found by sweeping the organisation's links.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use checkout_link_operator::reconcile;
use common::*;
use polar_emulator::FaultRule;
use serde_json::json;

/// A second Acme token with every scope (examples/emulator-seed.yaml).
const SHOP_TWO_TOKEN: &str = "polar_oat_AcmeDemoShopTwoToken000000000000000000X8Bo2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tokens_of_one_organisation_share_one_budget_and_one_retry_after() {
    let h = Harness::start(
        "one-budget",
        Options {
            resync: Duration::from_secs(600),
            // Polar's `retry-after` is the window: 5 s here.
            rate_limit_window: Duration::from_secs(5),
            ..Options::default()
        },
    )
    .await;
    h.put_secret("shop-two", SHOP_TWO_TOKEN, None).await;
    // Both tokens' first calls, so that each learns its organisation.
    h.create("a0", json!({"products": [EBOOK]})).await;
    h.create(
        "b0",
        json!({"products": [EBOOK], "credentialsSecretRef": {"name": "shop-two"}}),
    )
    .await;
    h.wait_ready("a0").await;
    h.wait_ready("b0").await;

    // Polar answers one call with 429 `retry-after: 5`; then both tokens create links.
    h.emulator.clear_requests();
    h.emulator.set_faults(vec![FaultRule {
        method: "POST".into(),
        path: "/v1/checkout-links/".into(),
        force_429: true,
        count: Some(1),
        ..Default::default()
    }]);
    for i in 1..=3 {
        h.create(&format!("a{i}"), json!({"products": [EBOOK]}))
            .await;
        h.create(
            &format!("b{i}"),
            json!({"products": [EBOOK], "credentialsSecretRef": {"name": "shop-two"}}),
        )
        .await;
    }
    for i in 1..=3 {
        h.wait_ready(&format!("a{i}")).await;
        h.wait_ready(&format!("b{i}")).await;
    }
    let requests = h.emulator.requests();
    let limited = requests
        .iter()
        .find(|r| r.status == 429)
        .expect("the forced 429");
    let at = |r: &polar_emulator::RequestLogEntry| {
        chrono_like(&r.timestamp).expect("an RFC 3339 timestamp")
    };
    // The log's timestamp is when an answer was sent; a request started that much earlier.
    let started = |r: &polar_emulator::RequestLogEntry| at(r) - r.duration_ms / 1000.0;
    let blocked_until = at(limited) + 5.0;
    let inside: Vec<String> = requests
        .iter()
        .filter(|r| r.organization_id.as_deref() == Some(ACME))
        // A request sent while the 429 was still on its way back cannot have heeded it: the
        // window starts once the answer could have arrived (the same 50 ms `make faults` uses).
        .filter(|r| started(r) > at(limited) + 0.05 && started(r) < blocked_until)
        .map(|r| {
            format!(
                "{} {} at +{:.2}s",
                r.method,
                r.path,
                started(r) - at(limited)
            )
        })
        .collect();
    assert!(
        inside.is_empty(),
        "calls of the organisation inside the Retry-After window (either token): {inside:?}"
    );
    h.finish().await;
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp such as `2026-12-01T22:24:00.641683Z`.
fn chrono_like(ts: &str) -> Option<f64> {
    let t: k8s_openapi::jiff::Timestamp = ts.parse().ok()?;
    Some(t.as_microsecond() as f64 / 1e6)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_watch_asks_the_apiserver_for_metadata_only() {
    let mut h = Harness::start("metadata-only", Options::default()).await;
    h.stop_controller().await;
    // An unrelated Secret whose data must never reach the operator.
    h.put_secret(
        "unrelated",
        "polar_oat_NeverToBeSeenByTheOperator0000000000000000",
        None,
    )
    .await;

    // The controller again, on a client that records what it asks the apiserver.
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let record = seen.clone();
    let layer = tower::util::MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
        let accept = req
            .headers()
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        record.lock().unwrap().push((req.uri().to_string(), accept));
        req
    });
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(testenv::ControlPlane::shared().kubeconfig_yaml())
            .unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let client = kube::client::ClientBuilder::try_from(config)
        .unwrap()
        .with_layer(&layer)
        .build();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(reconcile::run(
        client,
        h.settings(),
        h.metrics.clone(),
        h.readiness.clone(),
        async move {
            let _ = rx.await;
        },
    ));
    h.create("uses-the-default", json!({"products": [EBOOK]}))
        .await;
    h.wait_ready("uses-the-default").await;
    let _ = tx.send(());
    let _ = controller.await;

    let seen = seen.lock().unwrap().clone();
    let secret_requests: Vec<&(String, String)> = seen
        .iter()
        .filter(|(uri, _)| uri.contains("/secrets"))
        .collect();
    let lists: Vec<_> = secret_requests
        .iter()
        .filter(|(uri, _)| uri.ends_with("/secrets") || uri.contains("/secrets?"))
        .collect();
    assert!(
        !lists.is_empty(),
        "the Secrets were listed or watched: {seen:?}"
    );
    for (uri, accept) in &lists {
        assert!(
            accept.contains("as=PartialObjectMetadata"),
            "{uri} asked for whole Secrets (Accept: {accept:?})"
        );
    }
    // The one Secret read whole is the credentials Secret the link uses.
    let reads: Vec<&String> = secret_requests
        .iter()
        .filter(|(uri, accept)| !accept.contains("PartialObjectMetadata") && !uri.contains('?'))
        .map(|(uri, _)| uri)
        .collect();
    assert!(
        reads
            .iter()
            .all(|uri| uri.ends_with(&format!("/secrets/{SECRET}"))),
        "only the credentials Secret is read whole: {reads:?}"
    );
    assert!(!reads.is_empty(), "the credentials Secret was read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_link_stays_ready_through_a_polar_outage_without_a_status_write() {
    let h = Harness::start(
        "outage",
        Options {
            resync: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    h.create("steady", json!({"products": [EBOOK]})).await;
    h.wait_ready("steady").await;
    // Let the operator's own status write pass by.
    settle(Duration::from_secs(2)).await;
    let before = h.links.get("steady").await.unwrap();

    h.emulator.reset_counters();
    h.emulator.set_faults(vec![FaultRule {
        method: "*".into(),
        path: "*".into(),
        error_rate: 1.0,
        error_statuses: vec![503],
        ..Default::default()
    }]);
    // Several sweep intervals of 503s: the sweeps fail, the link is not touched.
    eventually("three failed sweeps", Duration::from_secs(60), async || {
        if h.count(LIST) >= 3 {
            Ok(())
        } else {
            Err("not yet")
        }
    })
    .await;
    h.emulator.clear_faults();
    eventually(
        "a sweep after the outage",
        Duration::from_secs(60),
        async || {
            if h.count(LIST) >= 4 {
                Ok(())
            } else {
                Err("not yet")
            }
        },
    )
    .await;
    let after = h.links.get("steady").await.unwrap();
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "no status write during the outage"
    );
    assert_eq!(condition(&after, "Ready").unwrap().0, "True");
    assert_eq!(
        h.count(POST) + h.count(PATCH) + h.count(GET),
        0,
        "{:?}",
        h.link_counters()
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_sends_exactly_one_patch_and_no_get() {
    let h = Harness::start("one-patch", Options::default()).await;
    h.create("edited", json!({"products": [EBOOK], "label": "v1"}))
        .await;
    h.wait_ready("edited").await;
    settle(Duration::from_secs(1)).await;
    h.emulator.reset_counters();
    h.patch_spec("edited", json!({"label": "v2"})).await;
    let done = h
        .wait_for("edited", Duration::from_secs(60), "updated", |l| {
            l.metadata.generation == Some(2)
                && l.status.as_ref().and_then(|s| s.observed_generation) == Some(2)
                && condition(l, "Ready").is_some_and(|c| c.0 == "True")
        })
        .await;
    assert_eq!(h.polar_link(&id(&done))["label"], "v2");
    assert_eq!(
        (h.count(PATCH), h.count(GET), h.count(POST)),
        (1, 0, 0),
        "{:?}",
        h.link_counters()
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_found_by_the_sweep_and_corrected_with_one_call_each() {
    let h = Harness::start(
        "drift",
        Options {
            resync: Duration::from_secs(2),
            ..Options::default()
        },
    )
    .await;
    h.create("edited", json!({"products": [EBOOK], "label": "mine"}))
        .await;
    h.create("deleted", json!({"products": [EBOOK]})).await;
    let edited = id(&h.wait_ready("edited").await);
    let deleted = id(&h.wait_ready("deleted").await);
    settle(Duration::from_secs(1)).await;
    h.emulator.reset_counters();
    h.emulator
        .edit_link(&edited, json!({"label": "changed in the dashboard"}))
        .unwrap();
    h.emulator.delete_link(&deleted).unwrap();
    h.wait_for("deleted", Duration::from_secs(60), "recreated", |l| {
        l.status
            .as_ref()
            .and_then(|s| s.id.as_deref())
            .is_some_and(|i| i != deleted)
    })
    .await;
    eventually("the label put back", Duration::from_secs(60), async || {
        if h.emulator
            .link(&edited)
            .is_some_and(|l| l["label"] == "mine")
        {
            Ok(())
        } else {
            Err("not yet")
        }
    })
    .await;
    // One PATCH for the edit; one GET to confirm the missing link and one POST to recreate it.
    assert_eq!(
        (h.count(PATCH), h.count(GET), h.count(POST)),
        (1, 1, 1),
        "{:?}",
        h.link_counters()
    );
    h.finish().await;
}
