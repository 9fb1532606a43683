//! Tokens, scopes and organisations: 401, 403 and 404 as Polar sends them.
mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_request_without_credentials_gets_401_unauthorized() {
    let api = Api::start().await;
    let r = api
        .send(Method::GET, "/v1/checkout-links/", None, None)
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.body,
        json!({"error": "Unauthorized", "detail": "Unauthorized"})
    );
    assert_eq!(
        r.text,
        r#"{"error":"Unauthorized","detail":"Unauthorized"}"#
    );
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"polar\""));
    assert_eq!(r.header("cache-control"), Some("private, no-store"));
}

#[tokio::test]
async fn a_header_that_is_not_bearer_counts_as_no_credentials() {
    let api = Api::start().await;
    let r = api
        .client
        .get(format!("{}/v1/checkout-links/", api.base))
        .header("authorization", format!("Token {ACME_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"polar\"");
}

#[tokio::test]
async fn an_unknown_token_gets_401_invalid_token_with_authlib_headers() {
    let api = Api::start().await;
    for token in ["polar_oat_doesnotexist", "something_else"] {
        let r = api.get("/v1/checkout-links/", token).await;
        assert_eq!(r.status, 401);
        assert_eq!(
            r.body,
            json!({"error": "invalid_token", "error_description": "The access token provided is expired, revoked, malformed, or invalid for other reasons."})
        );
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("pragma"), Some("no-cache"));
        assert_eq!(
            r.header("www-authenticate"),
            Some(
                "Bearer realm=\"polar\", error=\"invalid_token\", error_description=\"The access token provided is expired, revoked, malformed, or invalid for other reasons.\""
            )
        );
    }
}

#[tokio::test]
async fn writes_need_the_write_scope_and_get_403_insufficient_scope() {
    let api = Api::start().await;
    let r = api
        .post(
            "/v1/checkout-links/",
            ACME_READ_TOKEN,
            json!({"payment_processor": "stripe", "products": [EBOOK]}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.body,
        json!({"error": "insufficient_scope", "error_description": "The request requires higher privileges than provided by the access token."})
    );
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            "Bearer realm=\"polar\", scope=\"checkout_links:write\", error=\"insufficient_scope\", error_description=\"The request requires higher privileges than provided by the access token.\""
        )
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    let link = api.create(json!({})).await;
    let path = format!("/v1/checkout-links/{}", link["id"].as_str().unwrap());
    assert_eq!(
        api.patch(&path, ACME_READ_TOKEN, json!({})).await.status,
        403
    );
    assert_eq!(api.delete(&path, ACME_READ_TOKEN).await.status, 403);
}

#[tokio::test]
async fn reads_accept_the_read_or_the_write_scope() {
    let mut config = polar_emulator::Config {
        rate_limit: 0,
        ..Default::default()
    };
    config.seed.tokens.push(polar_emulator::SeedToken {
        token: "polar_oat_writeonly".into(),
        scopes: vec!["checkout_links:write".into()],
        organization: Some(ACME.parse().unwrap()),
        ..Default::default()
    });
    config.seed.tokens.push(polar_emulator::SeedToken {
        token: "polar_oat_noscope".into(),
        scopes: vec![],
        organization: Some(ACME.parse().unwrap()),
        ..Default::default()
    });
    let api = Api::with(config).await;
    assert_eq!(
        api.get("/v1/checkout-links/", ACME_READ_TOKEN).await.status,
        200
    );
    assert_eq!(
        api.get("/v1/checkout-links/", "polar_oat_writeonly")
            .await
            .status,
        200
    );
    let r = api.get("/v1/checkout-links/", "polar_oat_noscope").await;
    assert_eq!(r.status, 403);
    let challenge = r.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("checkout_links:read") && challenge.contains("checkout_links:write"),
        "{challenge}"
    );
}

#[tokio::test]
async fn another_organizations_link_is_404_not_403() {
    let api = Api::start().await;
    let link = api.create(json!({})).await;
    let path = format!("/v1/checkout-links/{}", link["id"].as_str().unwrap());
    for r in [
        api.get(&path, GLOBEX_TOKEN).await,
        api.patch(&path, GLOBEX_TOKEN, json!({"label": "x"})).await,
        api.delete(&path, GLOBEX_TOKEN).await,
    ] {
        assert_eq!(r.status, 404);
        assert_eq!(
            r.body,
            json!({"error": "ResourceNotFound", "detail": "Not found"})
        );
    }
    assert_eq!(
        api.get(&path, USER_TOKEN).await.status,
        200,
        "the user belongs to both organizations"
    );
}

#[tokio::test]
async fn authentication_comes_before_path_validation() {
    let api = Api::start().await;
    let r = api
        .send(Method::GET, "/v1/checkout-links/not-a-uuid", None, None)
        .await;
    assert_eq!(r.status, 401);
    let r = api
        .get("/v1/checkout-links/not-a-uuid", "polar_oat_nope")
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn an_invalid_token_is_rejected_even_on_unknown_routes() {
    let api = Api::start().await;
    let r = api.get("/v1/nowhere", "polar_oat_nope").await;
    assert_eq!(r.status, 401);
    let r = api.get("/v1/nowhere", ACME_TOKEN).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, json!({"detail": "Not Found"}));
}
