//! Polar's service checks (422 `PolarRequestValidationError`) and update
//! semantics from REFERENCE.md §5.
mod common;

use common::*;
use polar_emulator::{Config, Seed, SeedPrice, SeedProduct};
use serde_json::{Value, json};

const LINKS: &str = "/v1/checkout-links/";

fn create_body(products: &[&str]) -> Value {
    json!({"payment_processor": "stripe", "products": products})
}

#[tokio::test]
async fn product_errors_are_collected_with_their_index() {
    let api = Api::start().await;
    let missing = "a9999999-0000-4000-8000-000000000001";
    let r = api
        .post(
            LINKS,
            ACME_TOKEN,
            create_body(&[missing, ARCHIVED, DRAFT, GLOBEX_WIDGET, EBOOK]),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body,
        json!({"error": "PolarRequestValidationError", "detail": [
            {"type": "value_error", "loc": ["body", "products", 0], "msg": "Product does not exist.", "input": missing},
            {"type": "value_error", "loc": ["body", "products", 1], "msg": "Product is archived.", "input": ARCHIVED},
            {"type": "value_error", "loc": ["body", "products", 2], "msg": "Product is a draft.", "input": DRAFT},
            {"type": "value_error", "loc": ["body", "products", 3], "msg": "Product does not exist.", "input": GLOBEX_WIDGET},
        ]})
    );
}

#[tokio::test]
async fn private_products_are_accepted() {
    let api = Api::start().await;
    let r = api
        .post(LINKS, ACME_TOKEN, create_body(&[CONSULTING]))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["products"][0]["visibility"], "private");
}

#[tokio::test]
async fn a_user_token_cannot_mix_products_of_two_organizations() {
    let api = Api::start().await;
    let r = api
        .post(LINKS, USER_TOKEN, create_body(&[EBOOK, GLOBEX_WIDGET]))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.detail()[0]["loc"], json!(["body", "products"]));
    assert_eq!(
        r.detail()[0]["msg"],
        "Products must all belong to the same organization."
    );
    let r = api
        .post(LINKS, USER_TOKEN, create_body(&[GLOBEX_WIDGET]))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["organization_id"], GLOBEX);
}

#[tokio::test]
async fn update_rejects_products_of_another_organization() {
    let api = Api::start().await;
    let link = api
        .post(LINKS, USER_TOKEN, create_body(&[EBOOK]))
        .await
        .body;
    let path = format!("{LINKS}{}", link["id"].as_str().unwrap());
    let r = api
        .patch(&path, USER_TOKEN, json!({"products": [GLOBEX_WIDGET]}))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["detail"],
        json!([{"type": "value_error", "loc": ["body", "products"], "msg": "Products don't belong to the checkout link's organization.", "input": [GLOBEX_WIDGET]}])
    );
}

#[tokio::test]
async fn a_discount_must_belong_to_the_organization_and_apply_to_every_product() {
    let api = Api::start().await;
    let msg = "Discount does not exist or is not applicable to this product.";
    let mut body = create_body(&[EBOOK]);
    body["discount_id"] = json!(TEAM5);
    let r = api.post(LINKS, ACME_TOKEN, body.clone()).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["detail"],
        json!([{"type": "value_error", "loc": ["body", "discount_id"], "msg": msg, "input": TEAM5}])
    );
    body["products"] = json!([TEAM]);
    assert_eq!(api.post(LINKS, ACME_TOKEN, body.clone()).await.status, 201);
    body["discount_id"] = json!(GLOBEX10);
    assert_eq!(
        api.post(LINKS, ACME_TOKEN, body).await.body["detail"][0]["msg"],
        msg
    );
}

#[tokio::test]
async fn a_products_only_change_does_not_revalidate_the_discount() {
    let api = Api::start().await;
    let link = api
        .create(json!({"products": [TEAM], "discount_id": TEAM5}))
        .await;
    let path = format!("{LINKS}{}", link["id"].as_str().unwrap());
    let r = api
        .patch(&path, ACME_TOKEN, json!({"products": [EBOOK]}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["discount_id"], TEAM5);
    let r = api
        .patch(
            &path,
            ACME_TOKEN,
            json!({"products": [EBOOK], "discount_id": TEAM5}),
        )
        .await;
    assert_eq!(r.status, 422);
}

#[tokio::test]
async fn seats_need_seat_based_products_and_a_seat_count_in_range() {
    let api = Api::start().await;
    let mut body = create_body(&[EBOOK]);
    body["seats"] = json!(3);
    let r = api.post(LINKS, ACME_TOKEN, body.clone()).await;
    assert_eq!(
        r.body["detail"],
        json!([{"type": "value_error", "loc": ["body", "seats"], "msg": "Seats can only be preconfigured when all products use seat-based pricing.", "input": 3}])
    );
    body["products"] = json!([TEAM]);
    body["seats"] = json!(51);
    let r = api.post(LINKS, ACME_TOKEN, body.clone()).await;
    assert_eq!(
        r.body["detail"][0]["msg"],
        "Product 'Team' allows between 1 and 50 seats."
    );
    body["seats"] = json!(50);
    let r = api.post(LINKS, ACME_TOKEN, body).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["seats"], 50);
}

fn seed_with_unit_product() -> Seed {
    let mut seed = Seed::demo();
    seed.products.push(SeedProduct {
        id: "a1000000-0000-4000-8000-000000000099".parse().unwrap(),
        organization: ACME.parse().unwrap(),
        name: "API Credits".into(),
        prices: vec![SeedPrice {
            kind: "unit".into(),
            currency: "usd".into(),
            amount: Some(10),
            minimum_units: Some(10),
            maximum_units: Some(1000),
            ..Default::default()
        }],
        ..Default::default()
    });
    seed
}

#[tokio::test]
async fn units_need_unit_based_products_and_a_unit_count_in_range() {
    let api = Api::with(Config {
        seed: seed_with_unit_product(),
        rate_limit: 0,
        ..Config::default()
    })
    .await;
    let credits = "a1000000-0000-4000-8000-000000000099";
    let mut body = create_body(&[EBOOK]);
    body["units"] = json!(20);
    let r = api.post(LINKS, ACME_TOKEN, body.clone()).await;
    assert_eq!(
        r.body["detail"][0]["msg"],
        "Units can only be preconfigured when all products use unit-based pricing."
    );
    body["products"] = json!([credits]);
    body["units"] = json!(5);
    let r = api.post(LINKS, ACME_TOKEN, body.clone()).await;
    assert_eq!(
        r.body["detail"][0]["msg"],
        "Product 'API Credits' allows between 10 and 1000 units."
    );
    body["units"] = json!(20);
    let r = api.post(LINKS, ACME_TOKEN, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["units"], 20);
}

#[tokio::test]
async fn changing_to_products_that_are_not_recurring_clears_the_trial() {
    let api = Api::start().await;
    let link = api
        .create(json!({"products": [MONTHLY], "trial_interval": "week", "trial_interval_count": 2}))
        .await;
    let path = format!("{LINKS}{}", link["id"].as_str().unwrap());
    let r = api
        .patch(&path, ACME_TOKEN, json!({"products": [EBOOK, YEARLY]}))
        .await;
    assert_eq!(
        r.body["trial_interval"], "week",
        "a recurring product keeps the trial"
    );
    let r = api
        .patch(&path, ACME_TOKEN, json!({"products": [EBOOK]}))
        .await;
    assert_eq!(r.body["trial_interval"], json!(null));
    assert_eq!(r.body["trial_interval_count"], json!(null));
    let r = api
        .patch(
            &path,
            ACME_TOKEN,
            json!({"products": [EBOOK], "trial_interval": "day", "trial_interval_count": 3}),
        )
        .await;
    assert_eq!(
        r.body["trial_interval"], "day",
        "a trial sent in the same PATCH is applied afterwards"
    );
}

#[tokio::test]
async fn a_seat_lock_that_no_longer_fits_new_products_is_cleared() {
    let api = Api::start().await;
    let link = api.create(json!({"products": [TEAM], "seats": 5})).await;
    let path = format!("{LINKS}{}", link["id"].as_str().unwrap());
    let r = api
        .patch(&path, ACME_TOKEN, json!({"products": [EBOOK]}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["seats"], json!(null));
    let r = api
        .patch(&path, ACME_TOKEN, json!({"products": [EBOOK], "seats": 5}))
        .await;
    assert_eq!(
        r.status, 422,
        "a seat count sent with the products is checked strictly"
    );
}

#[tokio::test]
async fn trials_are_allowed_on_one_time_products_at_create() {
    let api = Api::start().await;
    let link = api
        .create(json!({"products": [EBOOK], "trial_interval": "month", "trial_interval_count": 1}))
        .await;
    assert_eq!(link["trial_interval"], "month");
}

#[tokio::test]
async fn duplicate_products_fail_with_a_plain_500_like_the_database_constraint() {
    let api = Api::start().await;
    let r = api
        .post(LINKS, ACME_TOKEN, create_body(&[EBOOK, EBOOK]))
        .await;
    assert_eq!(r.status, 500);
    assert_eq!(r.text, "Internal Server Error");
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    assert!(api.emu.links().is_empty());
    let link = api.create(json!({})).await;
    let path = format!("{LINKS}{}", link["id"].as_str().unwrap());
    assert_eq!(
        api.patch(&path, ACME_TOKEN, json!({"products": [MONTHLY, MONTHLY]}))
            .await
            .status,
        500
    );
}

#[tokio::test]
async fn explicit_null_booleans_on_update_fail_with_a_500() {
    let api = Api::start().await;
    let link = api.create(json!({})).await;
    let path = format!("{LINKS}{}", link["id"].as_str().unwrap());
    let r = api
        .patch(&path, ACME_TOKEN, json!({"allow_discount_codes": null}))
        .await;
    assert_eq!(r.status, 500);
    assert_eq!(
        api.emu.link(link["id"].as_str().unwrap()).unwrap()["allow_discount_codes"],
        true
    );
}

#[tokio::test]
async fn the_deprecated_price_form_checks_the_price() {
    let api = Api::start().await;
    let body = |id: &str| json!({"payment_processor": "stripe", "product_price_id": id});
    let r = api
        .post(
            LINKS,
            ACME_TOKEN,
            body("b9999999-0000-4000-8000-000000000001"),
        )
        .await;
    assert_eq!(
        r.body["detail"][0]["loc"],
        json!(["body", "product_price_id"])
    );
    assert_eq!(r.body["detail"][0]["msg"], "Price does not exist.");
    let r = api.post(LINKS, ACME_TOKEN, body(ARCHIVED_PRICE)).await;
    assert_eq!(r.body["detail"][0]["msg"], "Product is archived.");
}
