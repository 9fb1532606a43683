//! Test controls under `/__emulator/` and their in-process twins.
mod common;

use std::time::{Duration, Instant};

use common::*;
use polar_emulator::FaultRule;
use reqwest::Method;
use serde_json::json;

fn rule(method: &str, path: &str) -> FaultRule {
    FaultRule {
        method: method.into(),
        path: path.into(),
        ..FaultRule::default()
    }
}

#[tokio::test]
async fn archiving_a_product_removes_it_from_links_and_deletes_links_left_empty() {
    let api = Api::start().await;
    let both = api.create(json!({"products": [EBOOK, MONTHLY]})).await;
    let only = api.create(json!({"products": [EBOOK]})).await;
    let r = api
        .send(
            Method::POST,
            &format!("/__emulator/products/{EBOOK}/archive"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let both = api
        .get(
            &format!("/v1/checkout-links/{}", both["id"].as_str().unwrap()),
            ACME_TOKEN,
        )
        .await;
    assert_eq!(both.body["products"].as_array().unwrap().len(), 1);
    assert_eq!(both.body["products"][0]["id"], MONTHLY);
    let only_id = only["id"].as_str().unwrap();
    assert_eq!(
        api.get(&format!("/v1/checkout-links/{only_id}"), ACME_TOKEN)
            .await
            .status,
        404
    );
    let stored = api
        .send(
            Method::GET,
            &format!("/__emulator/checkout-links/{only_id}"),
            None,
            None,
        )
        .await;
    assert!(stored.body["deleted_at"].is_string());
    assert_eq!(
        api.get(&format!("/v1/products/{EBOOK}"), ACME_TOKEN)
            .await
            .body["is_archived"],
        true
    );
    assert!(
        api.emu
            .archive_product("a9999999-0000-4000-8000-000000000001")
            .is_err()
    );
}

#[tokio::test]
async fn an_out_of_band_edit_sets_polar_fields_without_validation() {
    let api = Api::start().await;
    let link = api.create(json!({})).await;
    let id = link["id"].as_str().unwrap();
    let r = api
        .send(
            Method::PATCH,
            &format!("/__emulator/checkout-links/{id}"),
            None,
            Some(&json!({"label": "changed elsewhere", "seats": 99999, "products": [ARCHIVED]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let got = api
        .get(&format!("/v1/checkout-links/{id}"), ACME_TOKEN)
        .await
        .body;
    assert_eq!(got["label"], "changed elsewhere");
    assert_eq!(got["seats"], 99999);
    assert_eq!(got["products"][0]["id"], ARCHIVED);
    assert!(got["modified_at"].is_string());
    api.emu
        .edit_link(id, json!({"success_url": "not even a url"}))
        .unwrap();
    assert_eq!(api.emu.link(id).unwrap()["success_url"], "not even a url");
    let r = api
        .send(
            Method::PATCH,
            &format!("/__emulator/checkout-links/{id}"),
            None,
            Some(&json!({"nope": 1})),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn an_out_of_band_delete_soft_deletes_the_link() {
    let api = Api::start().await;
    let a = api.create(json!({})).await;
    let b = api.create(json!({})).await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    assert_eq!(
        api.send(
            Method::DELETE,
            &format!("/__emulator/checkout-links/{a}"),
            None,
            None
        )
        .await
        .status,
        204
    );
    api.emu.delete_link(b).unwrap();
    assert_eq!(
        api.get(&format!("/v1/checkout-links/{a}"), ACME_TOKEN)
            .await
            .status,
        404
    );
    assert!(api.emu.links().is_empty());
    assert!(api.emu.stored_link(b).unwrap()["deleted_at"].is_string());
    assert_eq!(
        api.send(
            Method::DELETE,
            &format!("/__emulator/checkout-links/{a}"),
            None,
            None
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn counters_count_every_request_by_method_and_route_template() {
    let api = Api::with(polar_emulator::Config {
        rate_limit: 1,
        ..Default::default()
    })
    .await;
    let link = api.create(json!({})).await;
    let path = format!("/v1/checkout-links/{}", link["id"].as_str().unwrap());
    api.get(&path, ACME_TOKEN).await;
    api.get(&path, ACME_TOKEN).await;
    let counters = api
        .send(Method::GET, "/__emulator/counters", None, None)
        .await
        .body;
    assert_eq!(
        counters,
        json!({"POST /v1/checkout-links/": 1, "GET /v1/checkout-links/{id}": 2}),
        "429s are counted too"
    );
    assert_eq!(api.emu.counters()["GET /v1/checkout-links/{id}"], 2);
    assert_eq!(
        api.send(Method::DELETE, "/__emulator/counters", None, None)
            .await
            .status,
        204
    );
    assert!(api.emu.counters().is_empty());
}

#[tokio::test]
async fn the_request_log_never_keeps_the_authorization_value() {
    let api = Api::start().await;
    api.create(json!({})).await;
    api.get("/v1/checkout-links/?limit=5", ACME_TOKEN).await;
    let r = api
        .send(Method::GET, "/__emulator/requests", None, None)
        .await;
    assert!(!r.text.contains(ACME_TOKEN));
    let log = r.body.as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["method"], "POST");
    assert_eq!(log[0]["status"], 201);
    assert_eq!(log[0]["organization_id"], ACME);
    assert_eq!(log[1]["query"], "limit=5");
    assert_eq!(log[1]["route"], "/v1/checkout-links/");
    assert!(log[1]["timestamp"].is_string());
    assert_eq!(api.emu.requests().len(), 2);
}

#[tokio::test]
async fn the_request_log_keeps_the_body_of_writes_only() {
    let api = Api::start().await;
    let link = api.create(json!({"label": "logged"})).await;
    let path = format!("/v1/checkout-links/{}", link["id"].as_str().unwrap());
    api.get(&path, ACME_TOKEN).await;
    let log = api.emu.requests();
    let sent: serde_json::Value =
        serde_json::from_str(log[0].body.as_deref().expect("a POST body is logged")).unwrap();
    assert_eq!(sent["label"], "logged");
    assert_eq!(log[1].method, "GET");
    assert_eq!(log[1].body, None, "a GET has no body to log");
}

#[tokio::test]
async fn an_injected_error_status_answers_before_the_write() {
    let api = Api::start().await;
    let mut r = rule("POST", "/v1/checkout-links/");
    r.error_rate = 1.0;
    r.error_statuses = vec![503];
    r.count = Some(1);
    api.emu.set_faults(vec![r]);
    let body = json!({"payment_processor": "stripe", "products": [EBOOK]});
    let first = api
        .post("/v1/checkout-links/", ACME_TOKEN, body.clone())
        .await;
    assert_eq!(first.status, 503);
    assert!(api.emu.links().is_empty());
    let second = api.post("/v1/checkout-links/", ACME_TOKEN, body).await;
    assert_eq!(second.status, 201, "count = 1 expires after one request");
    assert_eq!(api.emu.counters()["POST /v1/checkout-links/"], 2);
}

#[tokio::test]
async fn faults_can_be_set_over_http_with_a_route_template() {
    let api = Api::start().await;
    let link = api.create(json!({})).await;
    let faults = json!([{"method": "GET", "path": "/v1/checkout-links/{id}", "force_429": true}]);
    assert_eq!(
        api.send(Method::PUT, "/__emulator/faults", None, Some(&faults))
            .await
            .status,
        204
    );
    let r = api
        .get(
            &format!("/v1/checkout-links/{}", link["id"].as_str().unwrap()),
            ACME_TOKEN,
        )
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("60"));
    assert_eq!(
        api.get("/v1/checkout-links/", ACME_TOKEN).await.status,
        200,
        "other routes are untouched"
    );
    assert_eq!(
        api.send(Method::DELETE, "/__emulator/faults", None, None)
            .await
            .status,
        204
    );
    assert_eq!(
        api.get(
            &format!("/v1/checkout-links/{}", link["id"].as_str().unwrap()),
            ACME_TOKEN
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let api = Api::start().await;
    let mut r = rule("*", "*");
    r.latency_ms = 200;
    api.emu.set_faults(vec![r]);
    let started = Instant::now();
    assert_eq!(api.get("/v1/checkout-links/", ACME_TOKEN).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    api.emu.clear_faults();
}

#[tokio::test]
async fn a_timeout_fault_never_answers() {
    let api = Api::start().await;
    let mut r = rule("GET", "/v1/checkout-links/");
    r.timeout = true;
    api.emu.set_faults(vec![r]);
    let result = api
        .client
        .get(format!("{}/v1/checkout-links/", api.base))
        .bearer_auth(ACME_TOKEN)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
}

#[tokio::test]
async fn a_dropped_response_still_commits_the_write() {
    let api = Api::start().await;
    let mut r = rule("POST", "/v1/checkout-links/");
    r.drop_response_after_commit = true;
    r.count = Some(1);
    api.emu.set_faults(vec![r]);
    let body =
        format!(r#"{{"payment_processor":"stripe","products":["{EBOOK}"],"label":"dropped"}}"#);
    let request = format!(
        "POST /v1/checkout-links/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ACME_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = api.raw(request.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(
        answer.as_deref(),
        Some(""),
        "the connection closes with nothing written"
    );
    let links = api.emu.links();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0]["label"], "dropped");
    assert_eq!(api.emu.requests()[0].status, 0);
    assert_eq!(api.emu.requests()[0].fault.as_deref(), Some("drop"));
}

#[tokio::test]
async fn unknown_controls_are_404() {
    let api = Api::start().await;
    assert_eq!(
        api.send(Method::GET, "/__emulator/nothing", None, None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn reset_returns_to_the_seed() {
    let api = Api::start().await;
    api.create(json!({})).await;
    api.emu.archive_product(MONTHLY).unwrap();
    assert_eq!(
        api.send(Method::POST, "/__emulator/reset", None, None)
            .await
            .status,
        204
    );
    assert!(api.emu.links().is_empty());
    assert_eq!(
        api.get(&format!("/v1/products/{MONTHLY}"), ACME_TOKEN)
            .await
            .body["is_archived"],
        false
    );
}
