//! The operator pins Polar's API version: every request carries `Polar-Version: 2026-10`, and
//! Polar refusing that version (its next rotation) stalls the resources with a reason that
//! names it — never a recreate, never a deletion counted as done.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_the_operator_sends_carries_the_pinned_api_version() {
    let h = Harness::start(
        "version-pinned",
        Options {
            resync: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    h.create("v", json!({"products": [EBOOK], "label": "one"}))
        .await;
    h.wait_ready("v").await;
    h.patch_spec("v", json!({"label": "two"})).await;
    h.wait_for("v", Duration::from_secs(60), "updated", |l| {
        condition(l, "Ready").is_some_and(|c| c.0 == "True")
            && l.status.as_ref().and_then(|s| s.observed_generation) == l.metadata.generation
            && l.metadata.generation == Some(2)
    })
    .await;
    h.delete("v").await;
    h.wait_gone("v").await;
    let requests = h.emulator.requests();
    let verbs: std::collections::BTreeSet<String> = requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.route.clone().unwrap_or_default()))
        .collect();
    for needed in [POST, PATCH, DELETE, LIST] {
        assert!(verbs.contains(needed), "{needed} was never sent: {verbs:?}");
    }
    let unpinned: Vec<_> = requests
        .iter()
        .filter(|r| r.polar_version.as_deref() != Some("2026-10"))
        .map(|r| format!("{} {} {:?}", r.method, r.path, r.polar_version))
        .collect();
    assert!(
        unpinned.is_empty(),
        "requests without Polar-Version 2026-10: {unpinned:?}"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_api_version_stalls_and_neither_creates_nor_deletes() {
    let h = Harness::start(
        "version-refused",
        Options {
            resync: Duration::from_secs(1),
            deletion_grace: Duration::from_secs(3600),
            ..Options::default()
        },
    )
    .await;
    h.create("settled", json!({"products": [EBOOK]})).await;
    let settled = h.wait_ready("settled").await;
    let kept = id(&settled);

    // Polar's next rotation, rehearsed: 2026-10 is no longer served.
    h.emulator
        .set_api_versions(&["2027-01"], Some("2027-01"))
        .unwrap();
    h.create("new", json!({"products": [EBOOK]})).await;
    let stalled = h
        .wait_condition("new", "Stalled", "True", "ApiVersionRefused")
        .await;
    let (_, _, message) = condition(&stalled, "Stalled").unwrap();
    assert!(
        message.contains("2026-10"),
        "the version is named: {message}"
    );
    assert!(
        message.contains("--polar-api-version"),
        "the way out is named: {message}"
    );
    h.wait_event("new", "ApiVersionRefused").await;

    // Several sweep intervals later the settled link was neither recreated nor reported gone.
    settle(Duration::from_secs(4)).await;
    let still = h.links.get("settled").await.unwrap();
    assert_eq!(id(&still), kept, "never recreated");
    assert!(
        h.events("settled")
            .await
            .iter()
            .all(|e| e.reason.as_deref() != Some("Recreated")),
        "no false 'deleted outside Kubernetes' warning"
    );

    // A deletion is not counted as done: the finalizer stays, the link stays.
    h.delete("settled").await;
    let deleting = h
        .wait_condition("settled", "Stalled", "True", "ApiVersionRefused")
        .await;
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert!(
        h.emulator.link(&kept).is_some(),
        "the link is still in Polar"
    );
    assert_eq!(h.emulator.links().len(), 1, "nothing was created");
    let writes: Vec<_> = h
        .emulator
        .requests()
        .into_iter()
        .filter(|r| matches!(r.method.as_str(), "POST" | "DELETE") && r.status / 100 == 2)
        .filter(|r| r.polar_version.as_deref() == Some("2026-10"))
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect();
    assert_eq!(
        writes.len(),
        1,
        "only the first create went through: {writes:?}"
    );
    h.finish().await;
}
