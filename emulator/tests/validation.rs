//! Request validation (422 `RequestValidationError`) as FastAPI and pydantic
//! report it: union member tags on POST, plain locations on PATCH.
mod common;

use common::*;
use serde_json::{Value, json};

const LINKS: &str = "/v1/checkout-links/";

#[tokio::test]
async fn a_missing_products_field_gives_three_missing_errors_one_per_union_member() {
    let api = Api::start().await;
    let body = json!({"payment_processor": "stripe"});
    let r = api.post(LINKS, ACME_TOKEN, body.clone()).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body,
        json!({"error": "RequestValidationError", "detail": [
            {"type": "missing", "loc": ["body", PRICE_TAG, "product_price_id"], "msg": "Field required", "input": body},
            {"type": "missing", "loc": ["body", PRODUCT_TAG, "product_id"], "msg": "Field required", "input": body},
            {"type": "missing", "loc": ["body", PRODUCTS_TAG, "products"], "msg": "Field required", "input": body},
        ]})
    );
}

#[tokio::test]
async fn field_errors_repeat_for_every_union_member_with_its_tag() {
    let api = Api::start().await;
    let r = api
        .post(
            LINKS,
            ACME_TOKEN,
            json!({"payment_processor": "paypal", "products": [EBOOK]}),
        )
        .await;
    assert_eq!(r.status, 422);
    let items = r.detail();
    let literal: Vec<&Value> = items
        .iter()
        .filter(|i| i["type"] == "literal_error")
        .collect();
    assert_eq!(literal.len(), 3);
    assert_eq!(
        literal[2]["loc"],
        json!(["body", PRODUCTS_TAG, "payment_processor"])
    );
    assert_eq!(
        literal[2]["msg"],
        "Input should be <PaymentProcessor.stripe: 'stripe'>"
    );
    assert_eq!(
        literal[2]["ctx"],
        json!({"expected": "<PaymentProcessor.stripe: 'stripe'>"})
    );
}

#[tokio::test]
async fn an_empty_products_list_is_too_short() {
    let api = Api::start().await;
    let r = api
        .post(
            LINKS,
            ACME_TOKEN,
            json!({"payment_processor": "stripe", "products": []}),
        )
        .await;
    let last = r.detail().last().unwrap().clone();
    assert_eq!(
        last,
        json!({"type": "too_short", "loc": ["body", PRODUCTS_TAG, "products"],
               "msg": "List should have at least 1 item after validation, not 0", "input": [],
               "ctx": {"field_type": "List", "min_length": 1, "actual_length": 0}})
    );
}

#[tokio::test]
async fn product_ids_must_be_uuid_version_4() {
    let api = Api::start().await;
    let r = api
        .post(LINKS, ACME_TOKEN, json!({"payment_processor": "stripe", "products": ["abc", "a0000000-0000-1000-8000-000000000001"]}))
        .await;
    let items: Vec<&Value> = r
        .detail()
        .iter()
        .filter(|i| i["loc"][1] == PRODUCTS_TAG)
        .collect();
    assert_eq!(items[0]["type"], "uuid_parsing");
    assert_eq!(
        items[0]["loc"],
        json!(["body", PRODUCTS_TAG, "products", 0])
    );
    assert_eq!(
        items[0]["msg"],
        "Input should be a valid UUID, invalid length: expected length 32 for simple format, found 3"
    );
    assert_eq!(items[1]["type"], "uuid_version");
    assert_eq!(items[1]["msg"], "UUID version 4 expected");
    assert_eq!(items[1]["ctx"], json!({"expected_version": 4}));
}

#[tokio::test]
async fn trial_interval_and_count_must_be_set_together() {
    let api = Api::start().await;
    let body =
        json!({"payment_processor": "stripe", "products": [MONTHLY], "trial_interval": "week"});
    let r = api.post(LINKS, ACME_TOKEN, body.clone()).await;
    assert_eq!(r.status, 422);
    let last = r.detail().last().unwrap();
    assert_eq!(
        *last,
        json!({"type": "missing", "loc": ["body", PRODUCTS_TAG],
               "msg": "Both trial_interval and trial_interval_count must be set together.", "input": body})
    );
    let link = api.create(json!({})).await;
    let path = format!("/v1/checkout-links/{}", link["id"].as_str().unwrap());
    let r = api
        .patch(&path, ACME_TOKEN, json!({"trial_interval_count": 3}))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.detail()[0]["loc"], json!(["body"]));
    assert_eq!(r.detail()[0]["type"], "missing");
}

#[tokio::test]
async fn seats_and_trial_counts_have_pydantic_bounds() {
    let api = Api::start().await;
    let r = api
        .post(LINKS, ACME_TOKEN, json!({"payment_processor": "stripe", "products": [TEAM], "seats": 10001, "trial_interval": "day", "trial_interval_count": 0, "units": 0}))
        .await;
    let mine: Vec<&Value> = r
        .detail()
        .iter()
        .filter(|i| i["loc"][1] == PRODUCTS_TAG)
        .collect();
    let by_field = |f: &str| mine.iter().find(|i| i["loc"][2] == f).unwrap().to_owned();
    assert_eq!(by_field("seats")["type"], "less_than_equal");
    assert_eq!(by_field("seats")["ctx"], json!({"le": 10000}));
    assert_eq!(
        by_field("trial_interval_count")["type"],
        "greater_than_equal"
    );
    assert_eq!(
        by_field("trial_interval_count")["msg"],
        "Input should be greater than or equal to 1"
    );
    assert_eq!(by_field("units")["type"], "greater_than_equal");
}

#[tokio::test]
async fn patch_errors_have_plain_body_locations() {
    let api = Api::start().await;
    let link = api.create(json!({})).await;
    let path = format!("/v1/checkout-links/{}", link["id"].as_str().unwrap());
    let r = api.patch(&path, ACME_TOKEN, json!({"label": 5, "seats": 0, "products": [], "trial_interval": "hour", "trial_interval_count": 1})).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["error"], "RequestValidationError");
    assert_eq!(
        locs(r.detail()),
        [
            "[\"body\",\"trial_interval\"]",
            "[\"body\",\"products\"]",
            "[\"body\",\"label\"]",
            "[\"body\",\"seats\"]"
        ]
    );
}

#[tokio::test]
async fn strings_with_nul_are_rejected_on_create_but_stored_on_update() {
    let api = Api::start().await;
    let r = api
        .post(
            LINKS,
            ACME_TOKEN,
            json!({"payment_processor": "stripe", "products": [EBOOK], "label": "a\u{0}b"}),
        )
        .await;
    assert_eq!(r.status, 422);
    let item = r
        .detail()
        .iter()
        .find(|i| i["loc"] == json!(["body", PRODUCTS_TAG, "label"]))
        .unwrap();
    assert_eq!(item["msg"], "This value contains invalid characters");
    let link = api.create(json!({})).await;
    let path = format!("/v1/checkout-links/{}", link["id"].as_str().unwrap());
    let r = api
        .patch(&path, ACME_TOKEN, json!({"label": "a\u{0}b"}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["label"], "a\u{0}b");
}

#[tokio::test]
async fn invalid_json_is_a_422_json_invalid_with_pythons_message_and_position() {
    let api = Api::start().await;
    let r = api
        .client
        .post(format!("{}{LINKS}", api.base))
        .bearer_auth(ACME_TOKEN)
        .header("content-type", "application/json")
        .body("{\"payment_processor\": \"stripe\",}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "RequestValidationError", "detail": [
            {"type": "json_invalid", "loc": ["body", 30], "msg": "JSON decode error", "input": {},
             "ctx": {"error": "Illegal trailing comma before end of object"}}]})
    );
}

#[tokio::test]
async fn invalid_json_is_reported_before_authentication() {
    let api = Api::start().await;
    let r = api
        .client
        .post(format!("{}{LINKS}", api.base))
        .header("content-type", "application/json")
        .body("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn an_empty_body_is_a_missing_body() {
    let api = Api::start().await;
    let r = api
        .client
        .post(format!("{}{LINKS}", api.base))
        .bearer_auth(ACME_TOKEN)
        .header("content-type", "application/json")
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["detail"],
        json!([{"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}])
    );
}

#[tokio::test]
async fn a_body_that_is_not_an_object_fails_every_member_with_model_type() {
    let api = Api::start().await;
    let r = api.post(LINKS, ACME_TOKEN, json!([1])).await;
    let items = r.detail();
    assert_eq!(items.len(), 3);
    assert_eq!(items[2]["type"], "model_type");
    assert_eq!(items[2]["loc"], json!(["body", PRODUCTS_TAG]));
    assert_eq!(
        items[2]["msg"],
        "Input should be a valid dictionary or instance of CheckoutLinkCreateProducts"
    );
}

#[tokio::test]
async fn a_malformed_path_id_is_422_not_404() {
    let api = Api::start().await;
    let r = api.get("/v1/checkout-links/not-a-uuid", ACME_TOKEN).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.detail()[0]["loc"], json!(["path", "id"]));
    assert_eq!(r.detail()[0]["type"], "uuid_parsing");
    let r = api
        .delete(
            "/v1/checkout-links/a1000000-0000-1000-8000-000000000001",
            ACME_TOKEN,
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.detail()[0]["type"], "uuid_version");
    let r = api
        .patch("/v1/checkout-links/nope", ACME_TOKEN, json!({"seats": 0}))
        .await;
    assert_eq!(
        locs(r.detail()),
        ["[\"path\",\"id\"]", "[\"body\",\"seats\"]"]
    );
}

#[tokio::test]
async fn list_rejects_non_positive_pages_and_limits_and_unknown_sorting() {
    let api = Api::start().await;
    let r = api
        .get(
            "/v1/checkout-links/?limit=0&page=-1&sorting=price&organization_id=x",
            ACME_TOKEN,
        )
        .await;
    assert_eq!(r.status, 422);
    let items = r.detail();
    assert_eq!(items[0]["loc"], json!(["query", "page"]));
    assert_eq!(
        items[1],
        json!({"type": "greater_than", "loc": ["query", "limit"], "msg": "Input should be greater than 0", "input": "0", "ctx": {"gt": 0}})
    );
    assert_eq!(items[2]["type"], "enum");
    assert_eq!(items[2]["loc"], json!(["query", "sorting", 0]));
    assert_eq!(items[3]["loc"], json!(["query", "organization_id", 0]));
    let r = api.get("/v1/checkout-links/?limit=abc", ACME_TOKEN).await;
    assert_eq!(r.detail()[0]["type"], "int_parsing");
}

#[tokio::test]
async fn a_body_that_cannot_be_decoded_at_all_gets_fastapis_400() {
    let api = Api::start().await;
    for body in [vec![0xff, 0xfe, 0x7b], "[".repeat(5000).into_bytes()] {
        let r = api
            .client
            .post(format!("{}{LINKS}", api.base))
            .bearer_auth(ACME_TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body,
            json!({"detail": "There was an error parsing the body"})
        );
    }
}
