//! Operating links safely: the pause (no Polar call at all while it lasts, a condition and a
//! gauge) and sync-now (an immediate reconcile that reads the link from Polar, echoed in the
//! status).

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const PAUSE: &str = "polar.sh/paused";
const SYNC: &str = "polar.sh/sync-requested";

/// Calls on one link and creates (the sweeps' list calls are the organisation's, not the link's).
fn link_calls(h: &Harness) -> u64 {
    [POST, GET, PATCH, DELETE].iter().map(|k| h.count(k)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_link_costs_no_call_until_the_pause_is_lifted() {
    let h = Harness::start(
        "pause",
        Options {
            resync: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    h.create("a", json!({"products": [EBOOK], "label": "one"}))
        .await;
    let ready = h.wait_ready("a").await;
    let polar_id = id(&ready);

    h.annotate("a", json!({PAUSE: "true"})).await;
    h.wait_for("a", Duration::from_secs(60), "Paused", |l| {
        condition(l, "Paused").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert!(
        h.metrics
            .encode()
            .contains("checkout_link_operator_paused_resources 1"),
        "the gauge counts it"
    );
    let before = link_calls(&h);
    let sweeps = h.count(LIST);
    // A spec change and an out-of-band edit while paused.
    h.patch_spec("a", json!({"label": "two"})).await;
    h.emulator
        .edit_link(&polar_id, json!({"label": "edited in the dashboard"}))
        .unwrap();
    eventually("three more sweeps", Duration::from_secs(60), async || {
        let now = h.count(LIST);
        if now >= sweeps + 3 { Ok(()) } else { Err(now) }
    })
    .await;
    assert_eq!(link_calls(&h), before, "{:?}", h.link_counters());
    assert_eq!(h.polar_link(&polar_id)["label"], "edited in the dashboard");
    let paused = h.links.get("a").await.unwrap();
    assert_eq!(condition(&paused, "Paused").unwrap().0, "True");

    // Lifted: the spec is applied, the condition and the gauge go.
    h.annotate("a", json!({PAUSE: null})).await;
    let resumed = h
        .wait_for(
            "a",
            Duration::from_secs(60),
            "Ready at the new generation",
            |l| is_ready(l) && condition(l, "Paused").is_none(),
        )
        .await;
    assert_eq!(id(&resumed), polar_id, "the same link");
    assert_eq!(h.polar_link(&polar_id)["label"], "two");
    assert!(
        h.metrics
            .encode()
            .contains("checkout_link_operator_paused_resources 0"),
        "the gauge is back to 0"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_now_reads_the_link_from_polar_and_echoes_the_request() {
    // A sweep interval far longer than the test: only the sync request can see the edit.
    let h = Harness::start("sync-now", Options::default()).await;
    h.create("a", json!({"products": [EBOOK], "label": "mine"}))
        .await;
    let ready = h.wait_ready("a").await;
    let polar_id = id(&ready);
    h.emulator
        .edit_link(&polar_id, json!({"label": "edited in the dashboard"}))
        .unwrap();
    let (gets, patches) = (h.count(GET), h.count(PATCH));
    h.annotate("a", json!({SYNC: "2026-12-02T10:00:00Z"})).await;
    let synced = h
        .wait_for("a", Duration::from_secs(60), "the request echoed", |l| {
            l.status
                .as_ref()
                .and_then(|s| s.last_sync_request.as_deref())
                == Some("2026-12-02T10:00:00Z")
        })
        .await;
    assert!(is_ready(&synced));
    assert_eq!(
        h.polar_link(&polar_id)["label"],
        "mine",
        "the drift is corrected"
    );
    assert_eq!(h.count(GET), gets + 1, "one read of the link");
    assert_eq!(h.count(PATCH), patches + 1, "one patch");
    h.finish().await;
}
