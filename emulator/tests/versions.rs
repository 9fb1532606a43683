//! Polar's API versions: the supported set, the default, the 404 for any other
//! `Polar-Version` (before auth, rate limit and faults), a set changed at
//! runtime, and the seat-price shape that 2027-01 changes.
mod common;

use std::time::Duration;

use common::*;
use polar_emulator::{Config, FaultRule};
use reqwest::Method;
use serde_json::{Value, json};

const LIST: &str = "/v1/checkout-links/";

fn versions(set: &[&str], default: &str) -> Config {
    Config {
        rate_limit: 0,
        api_versions: set.iter().map(|v| v.to_string()).collect(),
        default_api_version: default.into(),
        ..Config::default()
    }
}

/// Polar's answer to a version it does not serve.
fn assert_version_404(r: &Res, why: &str) {
    assert_eq!(r.status, 404, "{why}: {}", r.text);
    assert_eq!(r.text, r#"{"detail":"Not Found"}"#, "{why}");
    assert_eq!(r.header("polar-version"), None, "{why}: no Polar-Version");
}

#[tokio::test]
async fn without_the_header_the_default_2026_10_is_served_and_echoed() {
    let api = Api::start().await;
    let r = api.get(LIST, ACME_TOKEN).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("polar-version"), Some("2026-10"));
    for v in ["2026-04", "2026-10", "2027-01"] {
        let r = api.get_at(v, LIST, ACME_TOKEN).await;
        assert_eq!(r.status, 200, "{v}");
        assert_eq!(r.header("polar-version"), Some(v));
    }
    assert_eq!(
        api.emu.api_versions().versions,
        ["2026-04", "2026-10", "2027-01"]
    );
}

#[tokio::test]
async fn errors_echo_the_version_too_401_404_422_and_the_429() {
    let api = Api::with(Config {
        rate_limit: 1,
        ..Config::default()
    })
    .await;
    let r = api.get_at("2027-01", LIST, "polar_oat_unknown").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("polar-version"), Some("2027-01"));
    let r = api
        .get_at("2026-04", "/v1/checkout-links/nope", ACME_TOKEN)
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.header("polar-version"), Some("2026-04"));
    let r = api.get_at("2026-04", LIST, ACME_TOKEN).await;
    assert_eq!(r.status, 429, "the limit of 1 was used by the 422");
    assert_eq!(r.header("polar-version"), Some("2026-04"));
}

#[tokio::test]
async fn any_other_version_is_404_not_found_without_the_header() {
    let api = Api::start().await;
    for bad in [
        "2020-01",
        "2026-07",
        "2027-04",
        "2026-4",
        "next",
        "",
        "2026-10,2027-01",
        "v2026-10",
    ] {
        let r = api.get_at(bad, LIST, ACME_TOKEN).await;
        assert_version_404(&r, &format!("Polar-Version {bad:?}"));
    }
    let r = api
        .send_with(
            Method::POST,
            LIST,
            Some(ACME_TOKEN),
            Some(&json!({"payment_processor": "stripe", "products": [EBOOK]})),
            &[("polar-version", "2025-01")],
        )
        .await;
    assert_version_404(&r, "a create");
    assert!(api.emu.links().is_empty(), "nothing was written");
    assert_eq!(
        api.emu.requests().last().unwrap().polar_version.as_deref(),
        Some("2025-01"),
        "the log keeps the header as sent"
    );
}

#[tokio::test]
async fn the_version_404_comes_before_the_token_the_rate_limit_faults_and_body_checks() {
    let api = Api::with(Config {
        rate_limit: 1,
        rate_limit_window: Duration::from_secs(60),
        ..Config::default()
    })
    .await;
    // A bad token: 404, not 401.
    let r = api.get_at("2019-12", LIST, "polar_oat_unknown").await;
    assert_version_404(&r, "bad token");
    // The limit (1 per window) is used up; the refused versions did not count.
    assert_eq!(api.get(LIST, ACME_TOKEN).await.status, 200);
    assert_eq!(api.get(LIST, ACME_TOKEN).await.status, 429);
    let r = api.get_at("2019-12", LIST, ACME_TOKEN).await;
    assert_version_404(&r, "rate limit exhausted");
    // Faults on every route: still the version's 404.
    api.emu.set_faults(vec![FaultRule {
        error_rate: 1.0,
        error_statuses: vec![503],
        ..FaultRule::default()
    }]);
    let r = api.get_at("2019-12", LIST, ACME_TOKEN).await;
    assert_version_404(&r, "faults");
    api.emu.clear_faults();
    // A chunked POST (no Content-Length would be 411) with a bad version.
    let request = format!(
        "POST /v1/checkout-links/ HTTP/1.1\r\nHost: x\r\nPolar-Version: 2019-12\r\nAuthorization: Bearer {ACME_TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"
    );
    let response = api
        .raw(request.as_bytes(), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    assert!(
        !response.to_ascii_lowercase().contains("polar-version"),
        "{response}"
    );
    assert_eq!(
        api.emu.counters().values().sum::<u64>(),
        2,
        "refused versions reach no route: only the two accepted GETs are counted"
    );
}

#[tokio::test]
async fn a_configured_set_can_refuse_2026_10_and_default_to_2027_01() {
    let api = Api::with(versions(&["2027-01"], "2027-01")).await;
    let r = api.get(LIST, ACME_TOKEN).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("polar-version"), Some("2027-01"));
    for refused in ["2026-10", "2026-04"] {
        assert_version_404(&api.get_at(refused, LIST, ACME_TOKEN).await, refused);
    }
    // A future version can be rehearsed too.
    let api = Api::with(versions(&["2027-01", "2027-04"], "2027-01")).await;
    let r = api.get_at("2027-04", LIST, ACME_TOKEN).await;
    assert_eq!(r.header("polar-version"), Some("2027-04"));
}

#[tokio::test]
async fn a_set_whose_default_it_does_not_contain_is_refused_at_spawn() {
    for (set, default, why) in [
        (
            &["2027-01"][..],
            "2026-10",
            "not one of the supported versions",
        ),
        (&[][..], "2026-10", "empty"),
        (&["2026-10", "latest"][..], "2026-10", "YYYY-MM"),
    ] {
        let err = polar_emulator::spawn(versions(set, default), "127.0.0.1:0".parse().unwrap())
            .await
            .err()
            .expect("spawn refuses the configuration");
        assert!(format!("{err:#}").contains(why), "{err:#}");
    }
}

#[tokio::test]
async fn the_set_can_be_changed_at_runtime_and_reset() {
    let api = Api::start().await;
    api.emu
        .set_api_versions(&["2026-10", "2027-01"], None)
        .unwrap();
    assert_version_404(
        &api.get_at("2026-04", LIST, ACME_TOKEN).await,
        "2026-04 dropped",
    );
    assert_eq!(
        api.get(LIST, ACME_TOKEN).await.header("polar-version"),
        Some("2026-10")
    );
    // The next rotation: 2027-01 becomes the default and 2026-10 goes.
    let r = api
        .send(
            Method::PUT,
            "/__emulator/api-versions",
            None,
            Some(&json!({"versions": ["2027-01"], "default": "2027-01"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"versions": ["2027-01"], "default": "2027-01"})
    );
    assert_version_404(
        &api.get_at("2026-10", LIST, ACME_TOKEN).await,
        "2026-10 dropped",
    );
    assert_eq!(
        api.get(LIST, ACME_TOKEN).await.header("polar-version"),
        Some("2027-01")
    );
    // A set without the default is refused and changes nothing.
    let r = api
        .send(
            Method::PUT,
            "/__emulator/api-versions",
            None,
            Some(&json!({"versions": ["2026-04"]})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["detail"].as_str().unwrap().contains("2027-01"),
        "{}",
        r.text
    );
    assert!(
        api.emu
            .set_api_versions(&["2026-13"], Some("2026-13"))
            .is_err()
    );
    let r = api
        .send(Method::GET, "/__emulator/api-versions", None, None)
        .await;
    assert_eq!(
        r.body,
        json!({"versions": ["2027-01"], "default": "2027-01"})
    );
    // DELETE (and reset) restore the configured set.
    let r = api
        .send(Method::DELETE, "/__emulator/api-versions", None, None)
        .await;
    assert_eq!(
        r.body,
        json!({"versions": ["2026-04", "2026-10", "2027-01"], "default": "2026-10"})
    );
    assert_eq!(api.get_at("2026-04", LIST, ACME_TOKEN).await.status, 200);
    api.emu
        .set_api_versions(&["2027-01"], Some("2027-01"))
        .unwrap();
    api.emu.reset();
    assert_eq!(api.get_at("2026-10", LIST, ACME_TOKEN).await.status, 200);
}

/// The seat-based price of the Team product in a link, at `version`.
async fn team_price(api: &Api, link: &str, version: &str) -> Value {
    let r = api
        .get_at(version, &format!("/v1/checkout-links/{link}"), ACME_TOKEN)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["product_price"], r.body["products"][0]["prices"][0]);
    r.body["products"][0]["prices"][0].clone()
}

#[tokio::test]
async fn seat_prices_have_seat_tiers_up_to_2026_10_and_tiers_in_2027_01() {
    let api = Api::start().await;
    let link = api.create(json!({"products": [TEAM], "seats": 3})).await;
    let id = link["id"].as_str().unwrap();
    for v in ["2026-04", "2026-10"] {
        let price = team_price(&api, id, v).await;
        assert_eq!(price["amount_type"], "seat_based");
        assert_eq!(
            price["seat_tiers"],
            json!({"seat_tier_type": "volume", "tiers": [
                {"min_seats": 1, "max_seats": 10, "price_per_seat": 800},
                {"min_seats": 11, "max_seats": 50, "price_per_seat": 600}],
                "minimum_seats": 1, "maximum_seats": 50}),
            "{v}"
        );
        assert!(price.get("tiers").is_none(), "{v}");
    }
    let price = team_price(&api, id, "2027-01").await;
    assert_eq!(price["amount_type"], "seat_based");
    assert!(price.get("seat_tiers").is_none());
    assert_eq!(
        price["tiers"],
        json!({"type": "volume", "tiers": [
            {"bound": 10, "unit_amount": "800"}, {"bound": 50, "unit_amount": "600"}]})
    );
    assert_eq!(
        (
            price["minimum_units"].clone(),
            price["maximum_units"].clone()
        ),
        (json!(1), json!(50))
    );
    // The create answer follows the request's version, and so do products.
    let r = api
        .send_with(
            Method::POST,
            LIST,
            Some(ACME_TOKEN),
            Some(&json!({"payment_processor": "stripe", "products": [TEAM]})),
            &[("polar-version", "2027-01")],
        )
        .await;
    assert_eq!(r.status, 201);
    assert!(r.body["products"][0]["prices"][0]["tiers"].is_object());
    let r = api
        .get_at("2027-01", &format!("/v1/products/{TEAM}"), ACME_TOKEN)
        .await;
    assert_eq!(r.body["prices"][0]["maximum_units"], 50);
    let r = api.get(&format!("/v1/products/{TEAM}"), ACME_TOKEN).await;
    assert_eq!(r.body["prices"][0]["seat_tiers"]["maximum_seats"], 50);
}

#[tokio::test]
async fn unit_prices_are_unit_based_with_tiers_in_every_version() {
    let api = Api::start().await;
    for v in ["2026-04", "2026-10", "2027-01"] {
        let r = api
            .get_at(v, &format!("/v1/products/{CREDITS}"), ACME_TOKEN)
            .await;
        let price = &r.body["prices"][0];
        assert_eq!(
            *price,
            json!({
                "created_at": "2026-01-01T00:08:00Z", "modified_at": null,
                "id": "b1000000-0000-4000-8000-000000000008", "source": "catalog",
                "amount_type": "unit_based", "price_currency": "usd", "tax_behavior": null,
                "is_archived": false, "product_id": CREDITS,
                "tiers": {"type": "volume", "tiers": [{"bound": 1000, "unit_amount": "10"}]},
                "minimum_units": 1, "unit_label": null, "maximum_units": 1000
            }),
            "{v}"
        );
    }
}
