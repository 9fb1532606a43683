//! Products' `is_deletable` and `DELETE /v1/products/{id}`.
mod common;

use common::*;
use polar_emulator::{Config, Seed, SeedToken};
use serde_json::{Value, json};

const PRODUCTS_WRITER: &str = "polar_oat_acmeproductswriter";

fn with_products_writer(mut seed: Seed) -> Config {
    seed.tokens.push(SeedToken {
        token: PRODUCTS_WRITER.into(),
        organization: Some(ACME.parse().unwrap()),
        scopes: vec!["products:write".into(), "checkout_links:read".into()],
        ..Default::default()
    });
    Config {
        seed,
        rate_limit: 0,
        ..Config::default()
    }
}

fn deletable(r: &Res) -> Vec<(String, bool)> {
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_string(),
                p["is_deletable"]
                    .as_bool()
                    .expect("is_deletable is a boolean"),
            )
        })
        .collect()
}

#[tokio::test]
async fn is_deletable_is_false_while_a_discount_is_restricted_to_the_product() {
    let api = Api::start().await;
    let r = api
        .get("/v1/products/?limit=100&sorting=created_at", ACME_TOKEN)
        .await;
    let flags = deletable(&r);
    assert_eq!(flags.len(), 8);
    for (id, flag) in flags {
        assert_eq!(
            flag,
            id != TEAM,
            "{id}: only Team has a discount restricted to it"
        );
    }
    let r = api.get(&format!("/v1/products/{TEAM}"), ACME_TOKEN).await;
    assert_eq!(r.body["is_deletable"], false);
    // Products embedded in links and discounts do not carry it.
    let link = api.create(json!({"products": [TEAM]})).await;
    assert!(link["products"][0].get("is_deletable").is_none());
    let r = api.get(&format!("/v1/discounts/{TEAM5}"), ACME_TOKEN).await;
    assert!(r.body["products"][0].get("is_deletable").is_none());
}

#[tokio::test]
async fn the_seed_can_override_is_deletable() {
    let mut seed = Seed::demo();
    for p in &mut seed.products {
        if p.id.to_string() == EBOOK {
            p.is_deletable = Some(false);
        }
        if p.id.to_string() == TEAM {
            p.is_deletable = Some(true);
        }
    }
    let api = Api::with(Config {
        seed,
        rate_limit: 0,
        ..Config::default()
    })
    .await;
    for (id, want) in [(EBOOK, false), (TEAM, true), (MONTHLY, true)] {
        let r = api.get(&format!("/v1/products/{id}"), ACME_TOKEN).await;
        assert_eq!(r.body["is_deletable"], want, "{id}");
    }
    let yaml = format!(
        "organizations: [{{id: {ACME}, name: A, slug: a}}]\n\
         products:\n  - {{id: {EBOOK}, organization: {ACME}, name: X, is_deletable: false, prices: [{{type: free}}]}}\n"
    );
    let seed = Seed::from_yaml(&yaml).unwrap();
    assert_eq!(seed.products[0].is_deletable, Some(false));
}

#[tokio::test]
async fn deleting_a_product_needs_products_write_and_a_deletable_product() {
    let api = Api::with(with_products_writer(Seed::demo())).await;
    let r = api
        .delete(&format!("/v1/products/{EBOOK}"), ACME_TOKEN)
        .await;
    assert_eq!(r.status, 403, "products:read is not enough");
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("scope=\"products:write\"")
    );
    let r = api
        .delete(&format!("/v1/products/{TEAM}"), PRODUCTS_WRITER)
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.body,
        json!({"error": "ProductNotDeletable", "detail": "Product is in use and cannot be deleted."})
    );
    let r = api
        .delete(&format!("/v1/products/{GLOBEX_WIDGET}"), PRODUCTS_WRITER)
        .await;
    assert_eq!(r.status, 404, "another organisation's product");
    assert_eq!(r.body["error"], "ResourceNotFound");
    let r = api.delete("/v1/products/not-a-uuid", PRODUCTS_WRITER).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        api.get(&format!("/v1/products/{TEAM}"), ACME_TOKEN)
            .await
            .status,
        200,
        "a refused delete leaves the product"
    );
}

#[tokio::test]
async fn a_deleted_product_is_gone_from_the_api_and_from_links() {
    let api = Api::with(with_products_writer(Seed::demo())).await;
    let both = api.create(json!({"products": [EBOOK, MONTHLY]})).await;
    let only = api.create(json!({"products": [EBOOK]})).await;
    let r = api
        .delete(&format!("/v1/products/{EBOOK}"), PRODUCTS_WRITER)
        .await;
    assert_eq!(r.status, 204);
    assert!(r.text.is_empty());
    assert_eq!(
        api.get(&format!("/v1/products/{EBOOK}"), ACME_TOKEN)
            .await
            .status,
        404
    );
    let r = api.get("/v1/products/?limit=100", ACME_TOKEN).await;
    assert_eq!(r.body["pagination"]["total_count"], 7);
    assert!(!r.text.contains(EBOOK));
    assert_eq!(
        api.delete(&format!("/v1/products/{EBOOK}"), PRODUCTS_WRITER)
            .await
            .status,
        404,
        "deleted twice"
    );
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    let r = api
        .get(&format!("/v1/checkout-links/{}", id(&both)), ACME_TOKEN)
        .await;
    assert_eq!(r.body["products"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["products"][0]["id"], MONTHLY);
    assert_eq!(
        api.get(&format!("/v1/checkout-links/{}", id(&only)), ACME_TOKEN)
            .await
            .status,
        404,
        "a link left without products is deleted"
    );
    let r = api
        .post(
            "/v1/checkout-links/",
            ACME_TOKEN,
            json!({"payment_processor": "stripe", "products": [EBOOK]}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.detail()[0]["msg"], "Product does not exist.");
    let r = api
        .post(
            "/v1/checkout-links/",
            ACME_TOKEN,
            json!({"payment_processor": "stripe", "product_price_id": EBOOK_PRICE}),
        )
        .await;
    assert_eq!(r.detail()[0]["msg"], "Price does not exist.");
    assert!(
        api.emu.archive_product(EBOOK).is_err(),
        "nothing to archive"
    );
}
