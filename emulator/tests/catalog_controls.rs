//! Out-of-band product and discount controls: edit a product, create one
//! later, edit a discount (HTTP and the Rust handle).
mod common;

use common::*;
use polar_emulator::{SeedPrice, SeedProduct};
use reqwest::Method;
use serde_json::{Value, json};

async fn control(api: &Api, method: Method, path: &str, body: Value) -> Res {
    api.send(method, &format!("/__emulator/{path}"), None, Some(&body))
        .await
}

#[tokio::test]
async fn a_product_edit_shows_in_reads_filters_and_links() {
    let api = Api::start().await;
    let link = api.create(json!({"products": [EBOOK, MONTHLY]})).await;
    let r = control(
        &api,
        Method::PATCH,
        &format!("products/{EBOOK}"),
        json!({"name": "Ebook, 2nd edition", "metadata": {"sku": "ebook-2", "edition": 2}, "visibility": "private"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], "Ebook, 2nd edition");
    assert!(r.body["modified_at"].is_string());
    assert_eq!(r.body["is_deletable"], true, "the full Product form");
    let got = api.get(&format!("/v1/products/{EBOOK}"), ACME_TOKEN).await;
    assert_eq!(got.body, r.body);
    assert_eq!(
        got.body["metadata"],
        json!({"sku": "ebook-2", "edition": 2})
    );
    assert_eq!(got.body["visibility"], "private");
    let r = api
        .get("/v1/products/?metadata[edition]=2", ACME_TOKEN)
        .await;
    assert_eq!(item_ids(&r), [EBOOK]);
    let r = api
        .get("/v1/products/?metadata[sku]=ebook", ACME_TOKEN)
        .await;
    assert_eq!(item_ids(&r), Vec::<String>::new(), "the old value is gone");
    let link = api
        .get(
            &format!("/v1/checkout-links/{}", link["id"].as_str().unwrap()),
            ACME_TOKEN,
        )
        .await;
    assert_eq!(link.body["products"][0]["name"], "Ebook, 2nd edition");
    assert_eq!(link.body["products"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn archiving_by_edit_empties_links_and_unarchiving_does_not_restore_them() {
    let api = Api::start().await;
    let both = api.create(json!({"products": [EBOOK, MONTHLY]})).await;
    let only = api.create(json!({"products": [EBOOK]})).await;
    let both_id = both["id"].as_str().unwrap();
    let only_id = only["id"].as_str().unwrap();
    let r = control(
        &api,
        Method::PATCH,
        &format!("products/{EBOOK}"),
        json!({"is_archived": true}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["is_archived"], true);
    let both = api
        .get(&format!("/v1/checkout-links/{both_id}"), ACME_TOKEN)
        .await;
    assert_eq!(both.body["products"].as_array().unwrap().len(), 1);
    assert_eq!(both.body["products"][0]["id"], MONTHLY);
    assert_eq!(
        api.get(&format!("/v1/checkout-links/{only_id}"), ACME_TOKEN)
            .await
            .status,
        404,
        "a link left without products is soft-deleted"
    );
    let stored = api.emu.stored_link(only_id).unwrap();
    assert!(stored["deleted_at"].is_string());

    let r = api
        .emu
        .edit_product(EBOOK, json!({"is_archived": false}))
        .unwrap();
    assert_eq!(r["is_archived"], false);
    let both = api
        .get(&format!("/v1/checkout-links/{both_id}"), ACME_TOKEN)
        .await;
    assert_eq!(
        both.body["products"].as_array().unwrap().len(),
        1,
        "un-archiving does not put the product back"
    );
    assert!(api.emu.link(only_id).is_none(), "nor revives the link");
    // The product can be used again.
    api.create(json!({"products": [EBOOK]})).await;
}

#[tokio::test]
async fn product_edits_that_cannot_apply_are_refused_without_a_change() {
    let api = Api::start().await;
    for (patch, status) in [
        (json!({"visibility": "hidden"}), 400),
        (json!({"price": 5}), 400),
        (json!({"name": 5}), 400),
        (json!({"metadata": {"a": {"nested": true}}}), 400),
        (json!({"is_archived": "yes"}), 400),
        (json!(["name"]), 400),
    ] {
        let r = control(
            &api,
            Method::PATCH,
            &format!("products/{EBOOK}"),
            patch.clone(),
        )
        .await;
        assert_eq!(r.status, status, "{patch}: {}", r.text);
    }
    let r = control(
        &api,
        Method::PATCH,
        "products/a1000000-0000-4000-8000-0000000000ff",
        json!({"name": "x"}),
    )
    .await;
    assert_eq!(r.status, 404);
    // A refused edit changed nothing, not even the fields before the bad one.
    let r = control(
        &api,
        Method::PATCH,
        &format!("products/{EBOOK}"),
        json!({"name": "Changed", "visibility": "hidden"}),
    )
    .await;
    assert_eq!(r.status, 400);
    let got = api.get(&format!("/v1/products/{EBOOK}"), ACME_TOKEN).await;
    assert_eq!(got.body["name"], "Ebook");
    assert_eq!(got.body["modified_at"], json!(null));
    assert!(api.emu.edit_product("not-a-uuid", json!({})).is_err());
}

fn later_product(id: &str) -> SeedProduct {
    SeedProduct {
        id: id.parse().unwrap(),
        organization: ACME.parse().unwrap(),
        name: "Launch Week Bundle".into(),
        metadata: serde_json::from_value(json!({"sku": "bundle"})).unwrap(),
        prices: vec![SeedPrice {
            kind: "fixed".into(),
            amount: Some(4500),
            currency: "usd".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

const LATER: &str = "a1000000-0000-4000-8000-0000000000a1";

#[tokio::test]
async fn a_product_created_later_is_the_newest_and_can_be_sold() {
    let api = Api::start().await;
    let r = api
        .send(
            Method::POST,
            "/__emulator/products",
            None,
            Some(&serde_json::to_value(later_product(LATER)).unwrap()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["id"], LATER);
    assert_eq!(r.body["prices"][0]["price_amount"], 4500);
    assert_eq!(r.body["modified_at"], json!(null));
    let created: chrono::DateTime<chrono::Utc> =
        r.body["created_at"].as_str().unwrap().parse().unwrap();
    let age = chrono::Utc::now() - created;
    assert!(age.num_seconds().abs() < 60, "created now: {created}");
    let list = api.get("/v1/products/?limit=100", ACME_TOKEN).await;
    assert_eq!(item_ids(&list)[0], LATER, "the newest");
    assert_eq!(list.body["pagination"]["total_count"], 9);
    let r = api
        .get("/v1/products/?metadata[sku]=bundle", ACME_TOKEN)
        .await;
    assert_eq!(item_ids(&r), [LATER]);
    assert_eq!(
        api.get(&format!("/v1/products/{LATER}"), GLOBEX_TOKEN)
            .await
            .status,
        404
    );
    let link = api.create(json!({"products": [LATER]})).await;
    assert_eq!(link["products"][0]["name"], "Launch Week Bundle");

    // The same id again, an unknown organisation, no price: refused.
    let mut again = later_product(LATER);
    assert!(api.emu.add_product(again.clone()).is_err());
    again.id = "a1000000-0000-4000-8000-0000000000a2".parse().unwrap();
    again.organization = "44444444-4444-4444-8444-444444444444".parse().unwrap();
    let err = format!("{:#}", api.emu.add_product(again.clone()).unwrap_err());
    assert!(err.contains("unknown organization"), "{err}");
    again.organization = ACME.parse().unwrap();
    again.prices.clear();
    assert!(api.emu.add_product(again).is_err());
    let r = api
        .send(
            Method::POST,
            "/__emulator/products",
            None,
            Some(&json!({"id": LATER, "name": "no organization"})),
        )
        .await;
    assert_eq!(r.status, 400);

    // reset() goes back to the seed.
    api.emu.reset();
    assert_eq!(
        api.get(&format!("/v1/products/{LATER}"), ACME_TOKEN)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn a_product_added_in_code_keeps_a_given_created_at() {
    let api = Api::start().await;
    let mut p = later_product(LATER);
    p.created_at = Some("2025-06-01T00:00:00Z".parse().unwrap());
    let r = api.emu.add_product(p).unwrap();
    assert_eq!(r["created_at"], "2025-06-01T00:00:00Z");
    let list = api
        .get("/v1/products/?limit=100&sorting=created_at", ACME_TOKEN)
        .await;
    assert_eq!(item_ids(&list)[0], LATER, "the oldest");
}

#[tokio::test]
async fn a_discount_edit_shows_in_reads_and_in_links() {
    let api = Api::start().await;
    let link = api.create(json!({"discount_id": LAUNCH20})).await;
    let link_id = link["id"].as_str().unwrap();
    let r = control(
        &api,
        Method::PATCH,
        &format!("discounts/{LAUNCH20}"),
        json!({
            "starts_at": "2026-02-01T00:00:00Z",
            "ends_at": "2026-02-28T23:59:59.5+00:00",
            "max_redemptions": 10,
            "redemptions_count": 10,
            "code": "LAUNCH-XX",
            "name": "Launch (used up)",
        }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["ends_at"], "2026-02-28T23:59:59.500000Z");
    assert!(r.body["modified_at"].is_string());
    assert_eq!(r.body["products"], json!([]), "the full Discount form");
    let got = api
        .get(&format!("/v1/discounts/{LAUNCH20}"), ACME_TOKEN)
        .await;
    assert_eq!(got.body, r.body);
    let link = api
        .get(&format!("/v1/checkout-links/{link_id}"), ACME_TOKEN)
        .await;
    let d = &link.body["discount"];
    assert_eq!(d["starts_at"], "2026-02-01T00:00:00Z");
    assert_eq!(d["ends_at"], "2026-02-28T23:59:59.500000Z");
    assert_eq!(d["max_redemptions"], 10);
    assert_eq!(d["redemptions_count"], 10);
    assert_eq!(d["code"], "LAUNCH-XX");
    assert_eq!(d["name"], "Launch (used up)");
    let r = api.get("/v1/discounts/?query=launch-x", ACME_TOKEN).await;
    assert_eq!(item_ids(&r), [LAUNCH20], "the new code is searched");

    // Back to open-ended with nulls, through the Rust handle.
    let d = api
        .emu
        .edit_discount(
            LAUNCH20,
            json!({"starts_at": null, "ends_at": null, "max_redemptions": null, "code": null}),
        )
        .unwrap();
    assert_eq!(d["ends_at"], json!(null));
    assert_eq!(d["code"], json!(null));
    assert_eq!(d["redemptions_count"], 10);
}

#[tokio::test]
async fn discount_edits_that_cannot_apply_are_refused() {
    let api = Api::start().await;
    for patch in [
        json!({"max_redemptions": 0}),
        json!({"redemptions_count": -1}),
        json!({"ends_at": "tomorrow"}),
        json!({"basis_points": 5}),
        json!({"name": null}),
    ] {
        let r = control(
            &api,
            Method::PATCH,
            &format!("discounts/{TEAM5}"),
            patch.clone(),
        )
        .await;
        assert_eq!(r.status, 400, "{patch}: {}", r.text);
    }
    let r = control(
        &api,
        Method::PATCH,
        "discounts/d1000000-0000-4000-8000-0000000000ff",
        json!({"name": "x"}),
    )
    .await;
    assert_eq!(r.status, 404);
    let got = api.get(&format!("/v1/discounts/{TEAM5}"), ACME_TOKEN).await;
    assert_eq!(got.body["modified_at"], json!(null));
}
