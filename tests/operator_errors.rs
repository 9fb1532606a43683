//! The operator when things go wrong: specs Polar refuses, bad or missing credentials,
//! Polar failing or rate limiting, and deletions that cannot reach Polar.

mod common;

use std::time::Duration;

use common::*;
use polar_emulator::FaultRule;
use serde_json::json;

/// A Team-only discount: Polar refuses it on a link with other products.
const TEAM5: &str = "d1000000-0000-4000-8000-000000000002";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_polar_refuses_stalls_with_its_message_after_one_post_until_fixed() {
    // What Polar refuses because of its own state is looked at again after one sweep
    // interval (then less and less often): 30 s here, longer than this test looks.
    let h = Harness::start(
        "rejected",
        Options {
            resync: Duration::from_secs(30),
            ..Options::default()
        },
    )
    .await;
    h.create("old-course", json!({"products": [LEGACY_ARCHIVED]}))
        .await;
    h.create(
        "wrong-discount",
        json!({"products": [EBOOK], "discount": {"presetId": TEAM5}}),
    )
    .await;

    let archived = h
        .wait_condition("old-course", "Stalled", "True", "ProductArchived")
        .await;
    let (_, _, message) = condition(&archived, "Stalled").unwrap();
    assert_eq!(
        message,
        "Polar rejected the checkout link: products[0]: Product is archived."
    );
    let wrong = h
        .wait_condition("wrong-discount", "Stalled", "True", "InvalidSpec")
        .await;
    let (ready, _, message) = condition(&wrong, "Ready").unwrap();
    assert_eq!(ready, "False");
    assert!(
        message.contains("discount_id: Discount does not exist or is not applicable"),
        "{message}"
    );
    assert_eq!(condition(&wrong, "Reconciling").unwrap().0, "False");
    let event = h.wait_event("wrong-discount", "CreateFailed").await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));

    // Several resync intervals later: still exactly one POST per resource (a window in which
    // nothing may happen, so a sleep, not a wait).
    settle(Duration::from_secs(4)).await;
    assert_eq!(h.count(POST), 2, "{:?}", h.link_counters());
    assert_eq!(
        h.events("wrong-discount").await.len(),
        1,
        "one event per transition"
    );

    h.patch_spec("old-course", json!({"products": [EBOOK]}))
        .await;
    h.patch_spec(
        "wrong-discount",
        json!({"discount": {"presetId": LAUNCH20}}),
    )
    .await;
    let fixed = h.wait_ready("old-course").await;
    assert!(h.emulator.link(&id(&fixed)).is_some());
    let fixed = h.wait_ready("wrong-discount").await;
    assert_eq!(h.polar_link(&id(&fixed))["discount_id"], LAUNCH20);
    assert_eq!(condition(&fixed, "Stalled").unwrap().0, "False");
    assert_eq!(h.count(POST), 4);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_credentials_stall_until_the_secret_is_rotated() {
    let h = Harness::start(
        "bad-token",
        Options {
            token: Some(UNKNOWN_TOKEN.to_owned()),
            ..Options::default()
        },
    )
    .await;
    h.create("link", json!({"products": [EBOOK]})).await;
    let stalled = h
        .wait_condition("link", "Stalled", "True", "CredentialsInvalid")
        .await;
    let (_, _, message) = condition(&stalled, "Ready").unwrap();
    assert!(message.contains("access token"), "{message}");
    h.wait_event("link", "CredentialsInvalid").await;
    let calls = h.count(LIST) + h.count(POST);
    // A window in which no call may be made.
    settle(Duration::from_secs(2)).await;
    assert_eq!(
        h.count(LIST) + h.count(POST),
        calls,
        "no retries before the slow requeue"
    );

    // A token that may read but not write: 403, same class.
    h.put_secret(SECRET, READ_ONLY_TOKEN, None).await;
    let forbidden = h
        .wait_for(
            "link",
            Duration::from_secs(30),
            "refused for a missing scope",
            |l| condition(l, "Ready").is_some_and(|c| c.2.contains("checkout_links:write")),
        )
        .await;
    assert_eq!(
        condition(&forbidden, "Stalled").unwrap().1,
        "CredentialsInvalid"
    );

    h.put_secret(SECRET, TOKEN, None).await;
    let ready = h.wait_ready("link").await;
    assert!(h.emulator.link(&id(&ready)).is_some());
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credentials_stall_until_the_secret_appears() {
    let h = Harness::start(
        "no-secret",
        Options {
            token: None,
            ..Options::default()
        },
    )
    .await;
    h.create("default-creds", json!({"products": [EBOOK]}))
        .await;
    h.create(
        "own-creds",
        json!({"products": [EBOOK], "credentialsSecretRef": {"name": "mine", "key": "t"}}),
    )
    .await;
    let stalled = h
        .wait_condition("default-creds", "Stalled", "True", "CredentialsMissing")
        .await;
    let (_, _, message) = condition(&stalled, "Stalled").unwrap();
    assert_eq!(
        message,
        format!("the credentials Secret {}/polar does not exist", h.ns)
    );
    h.wait_event("default-creds", "CredentialsMissing").await;
    h.wait_condition("own-creds", "Stalled", "True", "CredentialsMissing")
        .await;

    // The Secret exists but lacks the key the resource names.
    h.put_secret("mine", TOKEN, None).await;
    let keyless = h
        .wait_for(
            "own-creds",
            Duration::from_secs(30),
            "missing its key",
            |l| condition(l, "Stalled").is_some_and(|c| c.2.contains("has no key \"t\"")),
        )
        .await;
    assert_eq!(
        condition(&keyless, "Stalled").unwrap().1,
        "CredentialsMissing"
    );
    assert_eq!(
        h.link_counters().values().sum::<u64>(),
        0,
        "Polar was never called"
    );

    h.put_secret(SECRET, TOKEN, None).await;
    h.wait_ready("default-creds").await;
    h.patch_spec(
        "own-creds",
        json!({"credentialsSecretRef": {"name": "mine", "key": "token"}}),
    )
    .await;
    h.wait_ready("own-creds").await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_with_backoff_until_they_pass() {
    let h = Harness::start("server-errors", Options::default()).await;
    h.emulator.set_faults(vec![FaultRule {
        method: "POST".into(),
        path: "/v1/checkout-links/".into(),
        error_rate: 1.0,
        error_statuses: vec![503],
        count: Some(3),
        ..FaultRule::default()
    }]);
    h.create("flaky", json!({"products": [EBOOK]})).await;
    let retrying = h
        .wait_condition("flaky", "Reconciling", "True", "Creating")
        .await;
    assert_eq!(condition(&retrying, "Ready").unwrap().1, "PolarUnavailable");
    let ready = h.wait_ready("flaky").await;
    assert_eq!(
        h.count(POST),
        4,
        "three failures, one success: {:?}",
        h.link_counters()
    );
    assert_eq!(h.emulator.links().len(), 1);
    assert_eq!(condition(&ready, "Reconciling").unwrap().0, "False");
    h.wait_event("flaky", "CreateFailed").await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_is_not_duplicated() {
    let h = Harness::start("lost-answer", Options::default()).await;
    h.emulator.set_faults(vec![FaultRule {
        method: "POST".into(),
        path: "/v1/checkout-links/".into(),
        drop_response_after_commit: true,
        count: Some(1),
        ..FaultRule::default()
    }]);
    h.create("once", json!({"products": [EBOOK]})).await;
    let ready = h.wait_ready("once").await;
    assert_eq!(h.count(POST), 1, "{:?}", h.link_counters());
    assert_eq!(
        h.emulator.links().len(),
        1,
        "the link Polar created was found again"
    );
    assert_eq!(h.emulator.links()[0]["id"], id(&ready));
    h.finish().await;
}

/// Parses the emulator log's RFC 3339 timestamps.
fn at(entry: &polar_emulator::RequestLogEntry) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(&entry.timestamp).expect("an RFC 3339 timestamp")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_honoured_and_a_burst_converges_with_bounded_calls() {
    // 4 requests per 2-second window: Retry-After is 2. One reconcile at a time, so that no
    // request is already on its way when a 429 arrives.
    let h = Harness::start(
        "rate-limit",
        Options {
            rate_limit: 4,
            rate_limit_window: Duration::from_secs(2),
            concurrency: 1,
            ..Options::default()
        },
    )
    .await;
    let names: Vec<String> = (0..8).map(|i| format!("burst-{i}")).collect();
    for name in &names {
        h.create(name, json!({"products": [EBOOK], "label": name}))
            .await;
    }
    for name in &names {
        h.wait_ready(name).await;
    }
    assert_eq!(h.emulator.links().len(), 8);
    let requests = h.emulator.requests();
    let limited: Vec<_> = requests.iter().filter(|r| r.status == 429).collect();
    let total = requests.len();
    assert!(
        !limited.is_empty(),
        "the burst should hit the limit: {total} requests"
    );
    // Bounded: each link needs one POST (plus at most one owner search while the controller
    // is young); every 429 costs one more call, and a 429 blocks the organisation for 2 s.
    assert!(
        total <= 8 * 2 + limited.len(),
        "{total} requests, {} limited",
        limited.len()
    );
    assert!(
        limited.len() <= 8,
        "{} requests were rate limited",
        limited.len()
    );
    // Retry-After honoured: after a 429, nothing is sent before the window has passed.
    for l in &limited {
        let retry_at = at(l) + chrono::Duration::milliseconds(1900);
        let early: Vec<_> = requests
            .iter()
            .filter(|r| at(r) > at(l) && at(r) < retry_at)
            .collect();
        assert!(
            early.is_empty(),
            "sent {} request(s) within Retry-After of a 429",
            early.len()
        );
    }
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_reported_and_retried_after_retry_after() {
    let h = Harness::start(
        "forced-429",
        Options {
            rate_limit: 1000,
            rate_limit_window: Duration::from_secs(2),
            ..Options::default()
        },
    )
    .await;
    h.emulator.set_faults(vec![FaultRule {
        method: "POST".into(),
        path: "/v1/checkout-links/".into(),
        force_429: true,
        count: Some(1),
        ..FaultRule::default()
    }]);
    h.create("patient", json!({"products": [EBOOK]})).await;
    let limited = h
        .wait_condition("patient", "Reconciling", "True", "Creating")
        .await;
    assert_eq!(condition(&limited, "Ready").unwrap().1, "RateLimited");
    h.wait_ready("patient").await;
    let posts: Vec<_> = h
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].status, 429);
    let gap = at(&posts[1]) - at(&posts[0]);
    assert!(
        gap >= chrono::Duration::milliseconds(1900),
        "retried after {gap:?}, before Retry-After"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_without_credentials_gives_up_after_the_grace_period() {
    let h = Harness::start(
        "deletion-grace",
        Options {
            deletion_grace: Duration::from_secs(3),
            ..Options::default()
        },
    )
    .await;
    h.create("stuck", json!({"products": [EBOOK]})).await;
    let link_id = id(&h.wait_ready("stuck").await);
    h.secrets.delete(SECRET, &Default::default()).await.unwrap();
    // The Secret watch saw the deletion: the link it wakes reports the missing Secret.
    h.wait_condition("stuck", "Ready", "False", "CredentialsMissing")
        .await;
    h.delete("stuck").await;
    let waiting = h
        .wait_condition("stuck", "Stalled", "True", "CredentialsMissing")
        .await;
    assert!(waiting.metadata.deletion_timestamp.is_some());
    h.wait_gone("stuck").await;
    assert!(
        h.emulator.link(&link_id).is_some(),
        "the link is left in Polar"
    );
    let events = h.events("stuck").await;
    let orphaned = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("Orphaned"))
        .expect("an Orphaned event");
    assert_eq!(orphaned.type_.as_deref(), Some("Warning"));
    assert!(orphaned.note.as_deref().unwrap().contains(&link_id));
    assert_eq!(h.count(DELETE), 0);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_retries_through_server_errors() {
    let h = Harness::start("delete-retry", Options::default()).await;
    h.create("doomed", json!({"products": [EBOOK]})).await;
    let link_id = id(&h.wait_ready("doomed").await);
    h.emulator.set_faults(vec![FaultRule {
        method: "DELETE".into(),
        path: "/v1/checkout-links/{id}".into(),
        error_rate: 1.0,
        error_statuses: vec![502],
        count: Some(2),
        ..FaultRule::default()
    }]);
    h.delete("doomed").await;
    h.wait_gone("doomed").await;
    assert_eq!(h.count(DELETE), 3, "{:?}", h.link_counters());
    assert!(h.emulator.link(&link_id).is_none());
    h.finish().await;
}
