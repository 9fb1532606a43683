//! HTTP-level behaviour: headers on every response, body size limits,
//! unknown routes, trailing slashes, API versions.
mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn responses_carry_cache_control_and_the_polar_version() {
    let api = Api::start().await;
    for r in [
        api.get("/v1/checkout-links/", ACME_TOKEN).await,
        api.get(
            "/v1/checkout-links/a9999999-0000-4000-8000-000000000001",
            ACME_TOKEN,
        )
        .await,
        api.get("/v1/unknown", ACME_TOKEN).await,
    ] {
        assert_eq!(r.header("cache-control"), Some("private, no-store"));
        assert_eq!(r.header("polar-version"), Some("2026-10"));
    }
    assert_eq!(
        api.get("/v1/checkout-links/", ACME_TOKEN)
            .await
            .header("content-type"),
        Some("application/json")
    );
}

#[tokio::test]
async fn the_requested_api_version_is_echoed_and_an_unknown_one_is_404() {
    let api = Api::start().await;
    let r = api
        .client
        .get(format!("{}/v1/checkout-links/", api.base))
        .bearer_auth(ACME_TOKEN)
        .header("polar-version", "2026-10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["polar-version"], "2026-10");
    let r = api
        .client
        .get(format!("{}/v1/checkout-links/", api.base))
        .bearer_auth(ACME_TOKEN)
        .header("polar-version", "2020-01")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        json!({"detail": "Not Found"})
    );
}

#[tokio::test]
async fn a_post_without_content_length_gets_411() {
    let api = Api::start().await;
    let request = format!(
        "POST /v1/checkout-links/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ACME_TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"
    );
    let response = api
        .raw(request.as_bytes(), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 411"), "{response}");
    assert!(
        response.contains(
            r#"{"error":"LengthRequired","detail":"A Content-Length header is required."}"#
        ),
        "{response}"
    );
}

#[tokio::test]
async fn a_body_over_10_mib_gets_413() {
    let api = Api::start().await;
    let request = format!(
        "PATCH /v1/checkout-links/a9999999-0000-4000-8000-000000000001 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ACME_TOKEN}\r\nContent-Length: 10485761\r\nConnection: close\r\n\r\n"
    );
    let response = api
        .raw(request.as_bytes(), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        response.contains("Request body exceeded the maximum allowed size of 10485760 bytes."),
        "{response}"
    );
}

#[tokio::test]
async fn unknown_routes_get_starlettes_not_found() {
    let api = Api::start().await;
    let r = api.get("/v1/checkout-links/a/b/c", ACME_TOKEN).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, json!({"detail": "Not Found"}));
}

#[tokio::test]
async fn a_wrong_method_gets_405() {
    let api = Api::start().await;
    let r = api
        .send(
            Method::PUT,
            "/v1/checkout-links/a9999999-0000-4000-8000-000000000001",
            Some(ACME_TOKEN),
            Some(&json!({})),
        )
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.body, json!({"detail": "Method Not Allowed"}));
    assert_eq!(r.header("allow"), Some("GET, PATCH, DELETE"));
}

#[tokio::test]
async fn a_missing_or_extra_trailing_slash_redirects_with_307() {
    let api = Api::start().await;
    let r = api.get("/v1/checkout-links?limit=5", ACME_TOKEN).await;
    assert_eq!(r.status, 307);
    assert_eq!(
        r.header("location"),
        Some(format!("{}/v1/checkout-links/?limit=5", api.base).as_str())
    );
    let r = api
        .get(
            "/v1/checkout-links/a9999999-0000-4000-8000-000000000001/",
            ACME_TOKEN,
        )
        .await;
    assert_eq!(r.status, 307);
}

#[tokio::test]
async fn the_api_prefix_is_rewritten_to_v1() {
    let api = Api::start().await;
    let r = api.get("/api/v1/checkout-links/", ACME_TOKEN).await;
    assert_eq!(r.status, 200);
}
