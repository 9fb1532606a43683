//! `GET /v1/checkout-links/`: pagination, sorting, filters and the
//! `product_id` join quirk.
mod common;

use common::*;
use serde_json::{Value, json};

fn labels(r: &Res) -> Vec<String> {
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap_or("-").to_string())
        .collect()
}

#[tokio::test]
async fn list_defaults_to_ten_items_in_creation_order() {
    let api = Api::start().await;
    for i in 0..12 {
        api.create(json!({"label": format!("l{i:02}")})).await;
    }
    let r = api.get("/v1/checkout-links/", ACME_TOKEN).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        labels(&r),
        (0..10).map(|i| format!("l{i:02}")).collect::<Vec<_>>()
    );
    assert_eq!(
        r.body["pagination"],
        json!({"total_count": 12, "max_page": 2})
    );
    let r = api.get("/v1/checkout-links/?page=2", ACME_TOKEN).await;
    assert_eq!(labels(&r), ["l10", "l11"]);
    let r = api.get("/v1/checkout-links/?page=5", ACME_TOKEN).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["items"], json!([]));
}

#[tokio::test]
async fn limits_above_100_are_clamped_not_rejected() {
    let api = Api::start().await;
    for _ in 0..3 {
        api.create(json!({})).await;
    }
    let r = api.get("/v1/checkout-links/?limit=1000", ACME_TOKEN).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["pagination"],
        json!({"total_count": 3, "max_page": 1})
    );
    let r = api.get("/v1/checkout-links/?limit=2", ACME_TOKEN).await;
    assert_eq!(r.body["pagination"]["max_page"], 2);
}

#[tokio::test]
async fn an_empty_list_has_max_page_zero() {
    let api = Api::start().await;
    let r = api.get("/v1/checkout-links/", ACME_TOKEN).await;
    assert_eq!(
        r.body,
        json!({"items": [], "pagination": {"total_count": 0, "max_page": 0}})
    );
}

#[tokio::test]
async fn sorting_supports_descending_and_several_criteria() {
    let api = Api::start().await;
    api.create(json!({"label": "b", "allow_discount_codes": false}))
        .await;
    api.create(json!({"label": "a"})).await;
    api.create(json!({})).await;
    api.create(json!({"label": "c", "allow_discount_codes": false}))
        .await;
    let r = api
        .get("/v1/checkout-links/?sorting=label", ACME_TOKEN)
        .await;
    assert_eq!(
        labels(&r),
        ["a", "b", "c", "-"],
        "NULLs sort last ascending"
    );
    let r = api
        .get("/v1/checkout-links/?sorting=-label", ACME_TOKEN)
        .await;
    assert_eq!(labels(&r), ["-", "c", "b", "a"], "and first descending");
    let r = api
        .get(
            "/v1/checkout-links/?sorting=allow_discount_codes&sorting=-label",
            ACME_TOKEN,
        )
        .await;
    assert_eq!(labels(&r), ["c", "b", "-", "a"]);
    let r = api
        .get("/v1/checkout-links/?sorting=-created_at", ACME_TOKEN)
        .await;
    assert_eq!(labels(&r), ["c", "-", "a", "b"]);
}

#[tokio::test]
async fn another_organizations_links_are_invisible_and_organization_filters_narrow() {
    let api = Api::start().await;
    api.create(json!({"label": "acme"})).await;
    api.post(
        "/v1/checkout-links/",
        GLOBEX_TOKEN,
        json!({"payment_processor": "stripe", "products": [GLOBEX_WIDGET], "label": "globex"}),
    )
    .await;
    assert_eq!(
        labels(&api.get("/v1/checkout-links/", GLOBEX_TOKEN).await),
        ["globex"]
    );
    let r = api
        .get(
            &format!("/v1/checkout-links/?organization_id={GLOBEX}"),
            ACME_TOKEN,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["items"], json!([]));
    assert_eq!(
        labels(&api.get("/v1/checkout-links/", USER_TOKEN).await),
        ["acme", "globex"]
    );
    let r = api
        .get(
            &format!("/v1/checkout-links/?organization_id={GLOBEX}&organization_id={ACME}"),
            USER_TOKEN,
        )
        .await;
    assert_eq!(labels(&r), ["acme", "globex"]);
    let r = api
        .get(
            &format!("/v1/checkout-links/?organization_id={GLOBEX}"),
            USER_TOKEN,
        )
        .await;
    assert_eq!(labels(&r), ["globex"]);
}

#[tokio::test]
async fn product_filter_shows_only_matching_products_and_counts_join_rows() {
    let api = Api::start().await;
    api.create(json!({"label": "both", "products": [EBOOK, MONTHLY, YEARLY]}))
        .await;
    api.create(json!({"label": "ebook", "products": [EBOOK]}))
        .await;
    api.create(json!({"label": "none", "products": [TEAM]}))
        .await;
    let r = api
        .get(
            &format!("/v1/checkout-links/?product_id={MONTHLY}"),
            ACME_TOKEN,
        )
        .await;
    assert_eq!(labels(&r), ["both"]);
    let ids: Vec<&Value> = r.body["items"][0]["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["id"])
        .collect();
    assert_eq!(
        ids,
        [MONTHLY],
        "the filtered join loads only the matching products"
    );
    let r = api
        .get(
            &format!("/v1/checkout-links/?product_id={MONTHLY}&product_id={EBOOK}"),
            ACME_TOKEN,
        )
        .await;
    assert_eq!(labels(&r), ["both", "ebook"]);
    assert_eq!(
        r.body["pagination"]["total_count"], 3,
        "two rows for the link that matches twice"
    );
    assert_eq!(r.body["items"][0]["products"].as_array().unwrap().len(), 2);
}
