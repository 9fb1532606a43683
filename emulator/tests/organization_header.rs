//! The `Polar-Organization` header: a personal token acts on that one
//! organisation; an organisation token is refused for another one.
mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const NOBODY: &str = "44444444-4444-4444-8444-444444444444";

async fn get_as(api: &Api, path: &str, token: &str, org: &str) -> Res {
    api.send_with(
        Method::GET,
        path,
        Some(token),
        None,
        &[("polar-organization", org)],
    )
    .await
}

async fn create_as(api: &Api, token: &str, org: &str, product: &str) -> Res {
    api.send_with(
        Method::POST,
        "/v1/checkout-links/",
        Some(token),
        Some(&json!({"payment_processor": "stripe", "products": [product]})),
        &[("polar-organization", org)],
    )
    .await
}

fn organizations_of(r: &Res) -> Vec<String> {
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["organization_id"].as_str().unwrap().to_string())
        .collect()
}

/// One Acme link (Acme token) and one Globex link (Globex token).
async fn two_links(api: &Api) -> (Value, Value) {
    let acme = api.create(json!({})).await;
    let r = api
        .post(
            "/v1/checkout-links/",
            GLOBEX_TOKEN,
            json!({"payment_processor": "stripe", "products": [GLOBEX_WIDGET]}),
        )
        .await;
    assert_eq!(r.status, 201);
    (acme, r.body)
}

#[tokio::test]
async fn a_personal_token_with_the_header_sees_only_that_organization() {
    let api = Api::start().await;
    let (acme, globex) = two_links(&api).await;
    let r = api.get("/v1/checkout-links/", USER_TOKEN).await;
    assert_eq!(
        r.body["pagination"]["total_count"], 2,
        "both without the header"
    );

    let r = get_as(&api, "/v1/checkout-links/", USER_TOKEN, GLOBEX).await;
    assert_eq!(r.status, 200);
    assert_eq!(organizations_of(&r), [GLOBEX]);
    let r = get_as(
        &api,
        &format!("/v1/checkout-links/?organization_id={ACME}"),
        USER_TOKEN,
        GLOBEX,
    )
    .await;
    assert_eq!(
        r.body["pagination"]["total_count"], 0,
        "the filter cannot widen it"
    );
    let path = format!("/v1/checkout-links/{}", acme["id"].as_str().unwrap());
    assert_eq!(get_as(&api, &path, USER_TOKEN, GLOBEX).await.status, 404);
    assert_eq!(get_as(&api, &path, USER_TOKEN, ACME).await.status, 200);
    let path = format!("/v1/checkout-links/{}", globex["id"].as_str().unwrap());
    let r = api
        .send_with(
            Method::DELETE,
            &path,
            Some(USER_TOKEN),
            None,
            &[("polar-organization", ACME)],
        )
        .await;
    assert_eq!(r.status, 404, "writes are scoped too");

    let r = get_as(
        &api,
        "/v1/products/?limit=100&sorting=created_at",
        USER_TOKEN,
        GLOBEX,
    )
    .await;
    assert_eq!(item_ids(&r), [GLOBEX_WIDGET, GLOBEX_EBOOK, GLOBEX_MONTHLY]);
    let r = get_as(&api, "/v1/discounts/", USER_TOKEN, GLOBEX).await;
    assert_eq!(organizations_of(&r), [GLOBEX, GLOBEX]);
    let r = get_as(&api, "/v1/organizations/", USER_TOKEN, ACME).await;
    assert_eq!(r.body["items"][0]["id"], ACME);
    assert_eq!(r.body["pagination"]["total_count"], 1);
}

#[tokio::test]
async fn a_personal_token_creates_only_with_the_header_organizations_products() {
    let api = Api::start().await;
    let r = create_as(&api, USER_TOKEN, ACME, GLOBEX_WIDGET).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["detail"],
        json!([{"type": "value_error", "loc": ["body", "products", 0],
                "msg": "Product does not exist.", "input": GLOBEX_WIDGET}])
    );
    let r = create_as(&api, USER_TOKEN, ACME, EBOOK).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["organization_id"], ACME);
    let log = api.emu.requests();
    let entry = log.last().unwrap();
    assert_eq!(entry.polar_organization.as_deref(), Some(ACME));
    assert_eq!(entry.user_id.as_deref(), Some(USER));
}

#[tokio::test]
async fn an_organization_the_user_is_not_in_shows_nothing() {
    let api = Api::start().await;
    let (acme, _) = two_links(&api).await;
    for org in [NOBODY, "not-a-uuid", ""] {
        let r = get_as(&api, "/v1/checkout-links/", USER_TOKEN, org).await;
        assert_eq!(r.status, 200, "{org:?}");
        assert_eq!(
            r.body["pagination"],
            json!({"total_count": 0, "max_page": 0}),
            "{org:?}"
        );
        let path = format!("/v1/checkout-links/{}", acme["id"].as_str().unwrap());
        assert_eq!(
            get_as(&api, &path, USER_TOKEN, org).await.status,
            404,
            "{org:?}"
        );
        let r = create_as(&api, USER_TOKEN, org, EBOOK).await;
        assert_eq!(r.detail()[0]["msg"], "Product does not exist.", "{org:?}");
        let r = get_as(&api, "/v1/organizations/", USER_TOKEN, org).await;
        assert_eq!(r.body["pagination"]["total_count"], 0, "{org:?}");
    }
}

#[tokio::test]
async fn an_organization_token_accepts_its_own_organization_and_refuses_another() {
    let api = Api::start().await;
    api.create(json!({})).await;
    let r = get_as(&api, "/v1/checkout-links/", ACME_TOKEN, ACME).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["pagination"]["total_count"], 1);
    let r = create_as(&api, ACME_TOKEN, ACME, EBOOK).await;
    assert_eq!(r.status, 201);
    for org in [GLOBEX, NOBODY, "not-a-uuid"] {
        let r = get_as(&api, "/v1/checkout-links/", ACME_TOKEN, org).await;
        assert_eq!(r.status, 403, "{org:?}");
        assert_eq!(r.body["error"], "NotPermitted");
        assert!(r.body["detail"].as_str().unwrap().contains(org));
        assert_eq!(r.header("polar-version"), Some("2026-10"));
    }
    let r = create_as(&api, ACME_TOKEN, GLOBEX, EBOOK).await;
    assert_eq!(r.status, 403);
    assert_eq!(api.emu.links().len(), 2, "the refused create wrote nothing");
    // The token is checked first: no credentials is 401, a missing scope 403
    // insufficient_scope, before the organisation.
    let r = create_as(&api, ACME_READ_TOKEN, GLOBEX, EBOOK).await;
    assert_eq!(r.body["error"], "insufficient_scope");
    let r = api
        .send_with(
            Method::GET,
            "/v1/checkout-links/",
            None,
            None,
            &[("polar-organization", GLOBEX)],
        )
        .await;
    assert_eq!(r.status, 401);
    // An unknown route is a 404 before any organisation check.
    let r = get_as(&api, "/v1/unknown", ACME_TOKEN, GLOBEX).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, json!({"detail": "Not Found"}));
}
