//! Operating links safely: the pause (no Polar call at all while it lasts, a condition and a
//! gauge) and sync-now (an immediate reconcile that reads the link from Polar, echoed in the
//! status).

mod common;

use std::time::Duration;

use checkout_link_operator::polar::{CheckoutLinks, LinkFields};
use common::*;
use kube::ResourceExt;
use serde_json::json;

const PAUSE: &str = "polar.sh/paused";
const SYNC: &str = "polar.sh/sync-requested";
const ADOPT: &str = "polar.sh/checkout-link-id";

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
    wait_paused_gauge(&h, 1).await;
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
    wait_paused_gauge(&h, 0).await;
    h.finish().await;
}

/// Waits for the paused-resources gauge to read `n`: the gauge follows the status write, so
/// it is waited for, not read once.
async fn wait_paused_gauge(h: &Harness, n: u32) {
    let line = format!("checkout_link_operator_paused_resources {n}");
    eventually(&line, Duration::from_secs(30), async || {
        if h.metrics.encode().contains(&line) {
            Ok(())
        } else {
            Err("another value")
        }
    })
    .await;
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

fn writes(h: &Harness) -> u64 {
    [POST, PATCH, DELETE].iter().map(|k| h.count(k)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observed_links_are_read_never_written_and_adopted_when_switched_to_full() {
    let h = Harness::start(
        "observe",
        Options {
            resync: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    // Links made in Polar's dashboard, and manifests that describe them, observe-only.
    let polar = h.polar_client();
    let mut made = Vec::new();
    for i in 0..4 {
        let fields = LinkFields {
            products: vec![EBOOK.into()],
            label: Some(format!("dashboard {i}")),
            allow_discount_codes: true,
            ..Default::default()
        };
        made.push(polar.create(&fields).await.unwrap());
    }
    for (i, link) in made.iter().enumerate() {
        h.create_with(
            &format!("o{i}"),
            json!({"annotations": {ADOPT: link.id}}),
            json!({"products": [EBOOK], "label": format!("dashboard {i}"), "managementPolicy": "Observe"}),
        )
        .await;
    }
    for (i, link) in made.iter().enumerate() {
        let seen = h
            .wait_for(&format!("o{i}"), Duration::from_secs(60), "observed", |l| {
                condition(l, "Ready").is_some_and(|c| c.0 == "True" && c.1 == "Observed")
            })
            .await;
        assert_eq!(id(&seen), link.id);
        assert_eq!(status(&seen).url.as_deref(), Some(link.url.as_str()));
        assert_eq!(condition(&seen, "Synced").unwrap().1, "InSync");
    }
    let before = writes(&h);

    // Drift is reported with the field's name, and left alone.
    h.patch_spec("o0", json!({"label": "changed in Git"})).await;
    let drifted = h
        .wait_for("o0", Duration::from_secs(60), "drift reported", |l| {
            condition(l, "Synced").is_some_and(|c| c.1 == "Drifted")
        })
        .await;
    let (_, _, message) = condition(&drifted, "Synced").unwrap();
    assert!(message.contains("label"), "{message}");
    assert_eq!(condition(&drifted, "Ready").unwrap().0, "True");

    // A link deleted in Polar is reported, not recreated.
    h.emulator.delete_link(&made[1].id).unwrap();
    let missing = h
        .wait_for(
            "o1",
            Duration::from_secs(60),
            "the missing link reported",
            |l| condition(l, "Ready").is_some_and(|c| c.0 == "False"),
        )
        .await;
    let (_, _, message) = condition(&missing, "Ready").unwrap();
    assert!(
        message.contains(&made[1].id) && message.contains("never creates"),
        "{message}"
    );

    // Deleting an observing resource leaves its link.
    h.delete("o2").await;
    h.wait_gone("o2").await;
    assert!(
        h.emulator.link(&made[2].id).is_some(),
        "the observed link stays"
    );

    // Three sweeps later: not one write, no owner tag anywhere.
    let sweeps = h.count(LIST);
    eventually("three more sweeps", Duration::from_secs(60), async || {
        let now = h.count(LIST);
        if now >= sweeps + 3 { Ok(()) } else { Err(now) }
    })
    .await;
    assert_eq!(writes(&h), before, "{:?}", h.link_counters());
    assert_eq!(h.polar_link(&made[0].id)["label"], "dashboard 0");
    for link in [&made[0], &made[2], &made[3]] {
        let metadata = &h.polar_link(&link.id)["metadata"];
        assert!(
            metadata.get("k8s_checkout_link_uid").is_none(),
            "{metadata}"
        );
    }

    // Switched to the full policy: adopted with one PATCH (the owner tag), same URL.
    let patches = h.count(PATCH);
    let o3 = h
        .patch_spec("o3", json!({"managementPolicy": "Full"}))
        .await;
    let adopted = h
        .wait_for("o3", Duration::from_secs(60), "managed", |l| {
            is_ready(l) && condition(l, "Ready").is_some_and(|c| c.1 == "Synced")
        })
        .await;
    assert_eq!(status(&adopted).url.as_deref(), Some(made[3].url.as_str()));
    assert_eq!(h.count(PATCH), patches + 1, "{:?}", h.link_counters());
    assert_eq!(
        h.polar_link(&made[3].id)["metadata"]["k8s_checkout_link_uid"],
        o3.uid().unwrap()
    );
    h.finish().await;
}
