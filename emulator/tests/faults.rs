//! The faults a reliability suite needs: a slow commit that outlives the
//! client, list pages that shift under a sweep, and answers as for another
//! organisation's token. Real HTTP over loopback.
mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use common::*;
use polar_emulator::{FaultRule, RequestLogEntry};
use reqwest::Method;
use serde_json::{Value, json};

const LIST: &str = "/v1/checkout-links/";

fn rule(method: &str, path: &str) -> FaultRule {
    FaultRule {
        method: method.into(),
        path: path.into(),
        ..FaultRule::default()
    }
}

/// Polls `check` until it returns `Some`, failing after `within`.
async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The log entry of the only request to `route` with `method`, once logged.
async fn logged(api: &Api, method: &str, route: &str) -> RequestLogEntry {
    eventually("the request log entry", Duration::from_secs(5), || async {
        let entries: Vec<_> = api
            .emu
            .requests()
            .into_iter()
            .filter(|e| e.method == method && e.route.as_deref() == Some(route))
            .collect();
        assert!(entries.len() <= 1, "one request expected: {entries:?}");
        entries.into_iter().next()
    })
    .await
}

fn impatient(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().timeout(timeout).build().unwrap()
}

fn create_body(label: &str) -> Value {
    json!({"payment_processor": "stripe", "products": [EBOOK], "label": label})
}

#[tokio::test]
async fn a_create_whose_client_gave_up_during_a_commit_delay_is_still_written() {
    let api = Api::start().await;
    let mut r = rule("POST", LIST);
    r.commit_delay_ms = 700;
    r.count = Some(1);
    api.emu.set_faults(vec![r]);

    let sent = Instant::now();
    let result = impatient(Duration::from_millis(150))
        .post(format!("{}{LIST}", api.base))
        .bearer_auth(ACME_TOKEN)
        .json(&create_body("slow"))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout(), "the client gives up");
    let empty = api.emu.links().is_empty();
    if sent.elapsed() < Duration::from_millis(700) {
        assert!(empty, "nothing is written before the commit delay");
    }

    let link = eventually("the link to be written", Duration::from_secs(5), || async {
        api.emu.links().into_iter().next()
    })
    .await;
    assert!(sent.elapsed() >= Duration::from_millis(700));
    assert_eq!(link["label"], "slow");
    assert_eq!(api.emu.links().len(), 1);

    let entry = logged(&api, "POST", LIST).await;
    assert_eq!(entry.status, 201, "the status the request computed");
    assert!(entry.client_gone);
    assert_eq!(entry.fault.as_deref(), Some("commit_delay"));
    assert_eq!(entry.faults, ["commit_delay"]);
    assert!(entry.duration_ms >= 700.0, "{}", entry.duration_ms);
    assert_eq!(api.emu.counters()["POST /v1/checkout-links/"], 1);

    // `count: 1` is used up: the next create is immediate.
    let started = Instant::now();
    api.create(json!({"label": "fast"})).await;
    assert!(started.elapsed() < Duration::from_millis(700));
}

#[tokio::test]
async fn a_client_that_waits_out_a_commit_delay_gets_the_usual_answer() {
    let api = Api::start().await;
    let link = api.create(json!({"label": "before"})).await;
    let id = link["id"].as_str().unwrap();
    let mut r = rule("PATCH", "/v1/checkout-links/{id}");
    r.commit_delay_ms = 300;
    api.emu.set_faults(vec![r]);

    let started = Instant::now();
    let r = api
        .patch(
            &format!("{LIST}{id}"),
            ACME_TOKEN,
            json!({"label": "after"}),
        )
        .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["label"], "after");
    assert_eq!(r.header("polar-version"), Some("2026-10"));
    assert_eq!(r.header("cache-control"), Some("private, no-store"));

    let entry = logged(&api, "PATCH", "/v1/checkout-links/{id}").await;
    assert_eq!(entry.status, 200);
    assert!(!entry.client_gone);
    assert_eq!(entry.fault.as_deref(), Some("commit_delay"));
}

#[tokio::test]
async fn a_commit_delay_with_a_dropped_response_writes_and_closes_the_connection() {
    let api = Api::start().await;
    let mut r = rule("POST", LIST);
    r.commit_delay_ms = 200;
    r.drop_response_after_commit = true;
    api.emu.set_faults(vec![r]);
    let result = api
        .client
        .post(format!("{}{LIST}", api.base))
        .bearer_auth(ACME_TOKEN)
        .json(&create_body("dropped late"))
        .send()
        .await;
    let err = result.unwrap_err();
    assert!(!err.is_timeout(), "the connection is closed: {err}");
    assert_eq!(api.emu.links()[0]["label"], "dropped late");
    let entry = logged(&api, "POST", LIST).await;
    assert_eq!(entry.status, 0);
    assert_eq!(entry.fault.as_deref(), Some("drop"));
    assert_eq!(entry.faults, ["commit_delay", "drop"]);
}

#[tokio::test]
async fn plain_latency_is_cancelled_with_the_client() {
    let api = Api::start().await;
    let mut r = rule("POST", LIST);
    r.latency_ms = 500;
    api.emu.set_faults(vec![r]);
    let result = impatient(Duration::from_millis(100))
        .post(format!("{}{LIST}", api.base))
        .bearer_auth(ACME_TOKEN)
        .json(&create_body("never"))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    // Once the request is logged as cancelled its future is gone, so nothing
    // can write any more.
    let entry = logged(&api, "POST", LIST).await;
    assert_eq!(entry.status, 0);
    assert!(entry.client_gone);
    assert_eq!(entry.fault.as_deref(), Some("latency"));
    assert!(api.emu.links().is_empty());
}

/// Creates `n` links labelled `link-000`, `link-001`, ... (oldest first).
async fn create_links(api: &Api, n: usize) -> Vec<String> {
    let mut labels = Vec::new();
    for i in 0..n {
        let label = format!("link-{i:03}");
        api.create(json!({"label": label})).await;
        labels.push(label);
    }
    let stored: Vec<_> = api
        .emu
        .links()
        .iter()
        .map(|l| l["label"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored, labels, "the store lists them in creation order");
    labels
}

/// Pages 1..=max_page at limit 100, as an offset-paging client sweeps.
async fn sweep(api: &Api) -> Vec<String> {
    let mut seen = Vec::new();
    let mut page = 1;
    loop {
        let r = api
            .get(&format!("{LIST}?limit=100&page={page}"), ACME_TOKEN)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.body["pagination"],
            json!({"total_count": 250, "max_page": 3}),
            "the store's totals on page {page}"
        );
        seen.extend(
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["label"].as_str().unwrap().to_string()),
        );
        if page >= r.body["pagination"]["max_page"].as_u64().unwrap() {
            return seen;
        }
        page += 1;
    }
}

fn list_faults(api: &Api) -> Vec<Option<String>> {
    api.emu
        .requests()
        .into_iter()
        .filter(|e| e.method == "GET" && e.route.as_deref() == Some(LIST))
        .map(|e| e.fault)
        .collect()
}

#[tokio::test]
async fn a_shift_of_one_makes_a_sweep_miss_the_first_row_of_page_two() {
    let api = Api::start().await;
    let labels = create_links(&api, 250).await;
    let mut r = rule("GET", LIST);
    r.list_shift = 1;
    api.emu.set_faults(vec![r]);
    api.emu.clear_requests();

    let seen = sweep(&api).await;
    let missed: Vec<_> = labels.iter().filter(|l| !seen.contains(l)).collect();
    assert_eq!(missed, ["link-100"], "an earlier link deleted after page 1");
    assert_eq!(seen.len(), 249, "page 3 has 49 rows, nothing repeats");
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique, seen);
    assert_eq!(
        list_faults(&api),
        [None, Some("shift".into()), Some("shift".into())],
        "the first page is not shifted"
    );
    assert_eq!(api.emu.counters()["GET /v1/checkout-links/"], 3);
}

#[tokio::test]
async fn a_negative_shift_repeats_rows_and_a_counted_shift_reorders_them() {
    let api = Api::start().await;
    let labels = create_links(&api, 250).await;

    let mut r = rule("GET", LIST);
    r.list_shift = -1;
    api.emu.set_faults(vec![r]);
    let seen = sweep(&api).await;
    assert_eq!(seen.len(), 251);
    assert_eq!(seen[99], "link-099");
    assert_eq!(seen[100], "link-099", "a link inserted before page 2");
    assert!(labels.iter().all(|l| seen.contains(l)), "nothing is missed");

    // One shifted page only (page 1 neither matches nor uses up the count):
    // link-100 seems to move behind page 2, and link-200 is listed twice.
    let mut r = rule("*", "*");
    r.list_shift = 1;
    r.count = Some(1);
    api.emu.set_faults(vec![r]);
    api.emu.clear_requests();
    let seen = sweep(&api).await;
    assert!(!seen.contains(&"link-100".to_string()));
    assert_eq!(seen.iter().filter(|l| *l == "link-200").count(), 2);
    assert_eq!(seen.len(), 250);
    assert_eq!(list_faults(&api), [None, Some("shift".into()), None]);
    assert!(
        api.emu
            .requests()
            .iter()
            .all(|e| e.fault.as_deref() != Some("shift")
                || e.query.as_deref() == Some("limit=100&page=2"))
    );
    assert!(
        api.send(Method::GET, "/__emulator/faults", None, None)
            .await
            .body
            == json!([]),
        "the counted rule expired"
    );
}

#[tokio::test]
async fn a_shift_rule_leaves_other_routes_and_first_pages_alone() {
    let api = Api::start().await;
    let link = api.create(json!({"label": "one"})).await;
    let mut r = rule("*", "*");
    r.list_shift = 5;
    r.latency_ms = 1;
    api.emu.set_faults(vec![r]);
    let id = link["id"].as_str().unwrap();
    assert_eq!(
        api.get(&format!("{LIST}{id}"), ACME_TOKEN).await.status,
        200
    );
    let first = api.get(LIST, ACME_TOKEN).await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 1);
    // Page 2 past the end is empty either way; a negative offset is clamped.
    let mut r = rule("GET", LIST);
    r.list_shift = -50;
    api.emu.set_faults(vec![r]);
    let r = api.get(&format!("{LIST}?page=2&limit=1"), ACME_TOKEN).await;
    assert_eq!(r.body["items"][0]["label"], "one", "offset 1 - 50 is row 0");
    assert_eq!(
        r.body["pagination"],
        json!({"total_count": 1, "max_page": 1})
    );
    assert!(
        api.emu.requests()[..3].iter().all(|e| e.fault.is_none()),
        "{:?}",
        api.emu.requests()
    );
}

/// Every checkout-link route for `link`, as `token` sends it.
async fn link_routes(api: &Api, token: &str, id: &str) -> Vec<(u16, Value, Option<String>)> {
    let item = format!("{LIST}{id}");
    let answers = [
        api.get(&item, token).await,
        api.patch(&item, token, json!({"label": "changed"})).await,
        api.delete(&item, token).await,
        api.get(LIST, token).await,
        api.post(
            LIST,
            token,
            json!({"payment_processor": "stripe", "products": [EBOOK, MONTHLY]}),
        )
        .await,
    ];
    answers
        .into_iter()
        .map(|r| {
            let version = r.header("polar-version").map(str::to_string);
            (r.status, r.body, version)
        })
        .collect()
}

#[tokio::test]
async fn not_found_answers_as_for_another_organisations_token_and_touches_nothing() {
    let api = Api::start().await;
    let link = api.create(json!({"label": "mine"})).await;
    let id = link["id"].as_str().unwrap();

    // Through the HTTP control, for every route.
    let faults = json!([{"method": "*", "path": "*", "not_found": true}]);
    let put = api
        .send(Method::PUT, "/__emulator/faults", None, Some(&faults))
        .await;
    assert_eq!(put.status, 204, "{}", put.text);
    api.emu.clear_requests();
    let hidden = link_routes(&api, ACME_TOKEN, id).await;

    let not_found = json!({"error": "ResourceNotFound", "detail": "Not found"});
    for (i, (status, body, version)) in hidden[..3].iter().enumerate() {
        assert_eq!((*status, body), (404, &not_found), "route {i}");
        assert_eq!(version.as_deref(), Some("2026-10"));
    }
    assert_eq!(hidden[3].0, 200);
    assert_eq!(
        hidden[3].1,
        json!({"items": [], "pagination": {"total_count": 0, "max_page": 0}})
    );
    assert_eq!(hidden[4].0, 422);
    let detail = hidden[4].1["detail"].as_array().unwrap();
    assert_eq!(
        locs(detail),
        [r#"["body","products",0]"#, r#"["body","products",1]"#]
    );
    assert!(detail.iter().all(|d| d["msg"] == "Product does not exist."));
    assert_eq!(hidden[4].1["error"], "PolarRequestValidationError");

    let entries = api.emu.requests();
    assert_eq!(
        entries.iter().map(|e| e.status).collect::<Vec<_>>(),
        [404, 404, 404, 200, 422]
    );
    assert!(
        entries
            .iter()
            .all(|e| e.fault.as_deref() == Some("not_found")
                && e.organization_id.as_deref() == Some(ACME))
    );

    // Nothing was changed, deleted or created.
    api.emu.clear_faults();
    let links = api.emu.links();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0], api.emu.link(id).unwrap());
    assert_eq!(links[0]["label"], "mine");
    assert!(links[0]["modified_at"].is_null());

    // The same answers as Globex's token gets for Acme's link (its list is
    // empty because Globex has no links).
    let globex = link_routes(&api, GLOBEX_TOKEN, id).await;
    assert_eq!(hidden, globex);
    assert_eq!(api.emu.links().len(), 1);
}

#[tokio::test]
async fn not_found_keeps_earlier_answers_and_counts_down() {
    let api = Api::start().await;
    let link = api.create(json!({})).await;
    let item = format!("{LIST}{}", link["id"].as_str().unwrap());
    let mut r = rule("*", "/v1/checkout-links/{id}");
    r.not_found = true;
    r.count = Some(3);
    api.emu.set_faults(vec![r]);

    // A missing scope and a bad body are answered as without the fault.
    assert_eq!(
        api.patch(&item, ACME_READ_TOKEN, json!({"label": "x"}))
            .await
            .status,
        403
    );
    let invalid = api.patch(&item, ACME_TOKEN, json!({"label": 5})).await;
    assert_eq!(invalid.status, 422);
    assert_eq!(invalid.body["error"], "RequestValidationError");
    // A personal token sees nothing either.
    assert_eq!(api.get(&item, USER_TOKEN).await.status, 404);
    // The list route did not match; the count is used up.
    assert_eq!(
        api.get(LIST, ACME_TOKEN).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(api.get(&item, ACME_TOKEN).await.status, 200);
    assert_eq!(api.get(&item, USER_TOKEN).await.status, 200);
    let counters = api.emu.counters();
    assert_eq!(counters["GET /v1/checkout-links/{id}"], 3);
    assert_eq!(counters["PATCH /v1/checkout-links/{id}"], 2);
}

#[tokio::test]
async fn the_new_fields_round_trip_through_the_http_control() {
    let api = Api::start().await;
    let faults = json!([
        {"method": "POST", "path": LIST, "commit_delay_ms": 250},
        {"method": "GET", "path": LIST, "list_shift": -2, "count": 4},
        {"path": "/v1/checkout-links/{id}", "not_found": true}
    ]);
    let put = api
        .send(Method::PUT, "/__emulator/faults", None, Some(&faults))
        .await;
    assert_eq!(put.status, 204, "{}", put.text);
    let got = api
        .send(Method::GET, "/__emulator/faults", None, None)
        .await
        .body;
    assert_eq!(got[0]["commit_delay_ms"], 250);
    assert_eq!(got[0]["list_shift"], 0);
    assert_eq!(got[1]["list_shift"], -2);
    assert_eq!(got[1]["count"], 4);
    assert_eq!(got[2]["not_found"], true);
    assert_eq!(got[2]["method"], "*");
    let rules: Vec<FaultRule> = serde_json::from_value(got).unwrap();
    assert_eq!(rules[0].commit_delay_ms, 250);
    assert!(rules[2].not_found);
    assert!(!rules[0].not_found);
}

#[tokio::test]
async fn not_found_on_every_route_empties_the_reads_too_but_not_anonymous_routes() {
    let api = Api::start().await;
    let link = api.create(json!({})).await;
    let mut r = rule("*", "*");
    r.not_found = true;
    api.emu.set_faults(vec![r]);
    for path in ["/v1/products/", "/v1/discounts/", "/v1/organizations/"] {
        let r = api.get(path, ACME_TOKEN).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body["items"], json!([]), "{path}");
        assert_eq!(r.body["pagination"]["total_count"], 0, "{path}");
    }
    for path in [
        format!("/v1/products/{EBOOK}"),
        format!("/v1/discounts/{LAUNCH20}"),
        format!("/v1/organizations/{ACME}"),
    ] {
        let r = api.get(&path, ACME_TOKEN).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.body["error"], "ResourceNotFound", "{path}");
    }
    // An unknown token is still 401, and the anonymous redirect still works.
    assert_eq!(api.get(LIST, "polar_oat_unknown").await.status, 401);
    let secret = link["client_secret"].as_str().unwrap();
    let redirect = api
        .send(Method::GET, &format!("{LIST}{secret}/redirect"), None, None)
        .await;
    assert_eq!(redirect.status, 307);
    let faults: Vec<_> = api.emu.requests()[1..]
        .iter()
        .map(|e| e.fault.clone())
        .collect();
    assert_eq!(faults[..6], vec![Some("not_found".to_string()); 6]);
    assert_eq!(faults[6..], [None, None], "the fault did not apply");
}
