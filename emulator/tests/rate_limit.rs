//! Polar's fixed-window rate limit per organisation or user, and the
//! optional bucket for cold tokens.
mod common;

use std::time::Duration;

use common::*;
use polar_emulator::Config;
use reqwest::Method;

fn limited(limit: u32, window: Duration) -> Config {
    Config {
        rate_limit: limit,
        rate_limit_window: window,
        ..Config::default()
    }
}

#[tokio::test]
async fn requests_over_the_limit_get_429_with_an_empty_body_and_retry_after() {
    let api = Api::with(limited(3, Duration::from_secs(60))).await;
    for _ in 0..3 {
        assert_eq!(api.get("/v1/checkout-links/", ACME_TOKEN).await.status, 200);
    }
    let r = api.get("/v1/checkout-links/", ACME_TOKEN).await;
    assert_eq!(r.status, 429);
    assert!(r.text.is_empty());
    assert_eq!(r.header("retry-after"), Some("60"));
    assert_eq!(r.header("cache-control"), None);
    assert_eq!(r.header("content-type"), None);
    assert_eq!(r.header("polar-version"), Some("2026-10"));
}

#[tokio::test]
async fn the_window_is_fixed_and_opens_again_after_its_length() {
    let api = Api::with(limited(2, Duration::from_millis(400))).await;
    for _ in 0..2 {
        assert_eq!(api.get("/v1/products/", ACME_TOKEN).await.status, 200);
    }
    let r = api.get("/v1/products/", ACME_TOKEN).await;
    assert_eq!(r.status, 429);
    assert_eq!(
        r.header("retry-after"),
        Some("1"),
        "retry-after is the window in whole seconds, at least 1"
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(api.get("/v1/products/", ACME_TOKEN).await.status, 200);
}

#[tokio::test]
async fn each_organization_has_its_own_window_shared_by_its_tokens() {
    let api = Api::with(limited(2, Duration::from_secs(60))).await;
    assert_eq!(api.get("/v1/checkout-links/", ACME_TOKEN).await.status, 200);
    assert_eq!(
        api.get("/v1/checkout-links/", ACME_READ_TOKEN).await.status,
        200
    );
    assert_eq!(
        api.get("/v1/checkout-links/", ACME_READ_TOKEN).await.status,
        429,
        "both Acme tokens share organization:<id>"
    );
    assert_eq!(
        api.get("/v1/checkout-links/", GLOBEX_TOKEN).await.status,
        200
    );
    assert_eq!(
        api.get("/v1/checkout-links/", USER_TOKEN).await.status,
        200,
        "a personal token is keyed by user:<id>"
    );
}

#[tokio::test]
async fn a_limit_of_zero_turns_rate_limiting_off() {
    let api = Api::with(limited(0, Duration::from_secs(60))).await;
    for _ in 0..50 {
        assert_eq!(api.get("/v1/checkout-links/", ACME_TOKEN).await.status, 200);
    }
}

#[tokio::test]
async fn test_controls_are_never_rate_limited() {
    let api = Api::with(limited(1, Duration::from_secs(60))).await;
    for _ in 0..5 {
        let r = api
            .send(Method::GET, "/__emulator/counters", None, None)
            .await;
        assert_eq!(r.status, 200);
    }
}

#[tokio::test]
async fn cold_tokens_share_a_60_per_window_bucket_until_they_authenticate() {
    let config = Config {
        cold_token_limit: true,
        ..limited(1000, Duration::from_secs(60))
    };
    let api = Api::with(config).await;
    for _ in 0..60 {
        assert_eq!(
            api.get("/v1/checkout-links/", "polar_oat_unknown")
                .await
                .status,
            401
        );
    }
    let r = api.get("/v1/checkout-links/", "polar_oat_unknown").await;
    assert_eq!(r.status, 429, "an unknown token stays cold");
    // A valid token is cold for its first request only.
    for _ in 0..80 {
        assert_eq!(api.get("/v1/checkout-links/", ACME_TOKEN).await.status, 200);
    }
}
