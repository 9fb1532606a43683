//! Create, read, update and delete, with the response object Polar sends.
mod common;

use common::*;
use polar_emulator::secret;
use serde_json::json;

#[tokio::test]
async fn create_returns_201_with_the_full_checkout_link_object() {
    let api = Api::start().await;
    let r = api
        .post(
            "/v1/checkout-links/",
            ACME_TOKEN,
            json!({"payment_processor": "stripe", "products": [MONTHLY, EBOOK]}),
        )
        .await;
    assert_eq!(r.status, 201);
    let link = &r.body;
    for key in [
        "id",
        "created_at",
        "modified_at",
        "trial_interval",
        "trial_interval_count",
        "metadata",
        "payment_processor",
        "client_secret",
        "success_url",
        "return_url",
        "label",
        "allow_discount_codes",
        "require_billing_address",
        "discount_id",
        "seats",
        "units",
        "organization_id",
        "products",
        "discount",
        "url",
        "product_id",
        "product_price_id",
        "product",
        "product_price",
    ] {
        assert!(link.get(key).is_some(), "missing key {key}");
    }
    assert_eq!(link["modified_at"], json!(null));
    assert_eq!(link["payment_processor"], "stripe");
    assert_eq!(link["allow_discount_codes"], true);
    assert_eq!(link["require_billing_address"], false);
    assert_eq!(link["metadata"], json!({}));
    assert_eq!(link["units"], json!(null));
    assert_eq!(link["organization_id"], ACME);
    assert_eq!(link["products"][0]["id"], MONTHLY);
    assert_eq!(link["products"][1]["id"], EBOOK);
    assert_eq!(link["product_id"], MONTHLY);
    assert_eq!(link["product"]["id"], MONTHLY);
    assert_eq!(
        link["product_price_id"],
        "b1000000-0000-4000-8000-000000000002"
    );
    assert_eq!(
        link["product_price"]["id"],
        "b1000000-0000-4000-8000-000000000002"
    );
    assert_eq!(link["products"][0]["prices"][0]["amount_type"], "fixed");
    let created = link["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.contains('T'), "{created}");
    assert_eq!(
        uuid::Uuid::parse_str(link["id"].as_str().unwrap())
            .unwrap()
            .get_version_num(),
        4
    );
}

#[tokio::test]
async fn client_secret_is_polar_cl_with_37_characters_and_a_crc32_checksum() {
    let api = Api::start().await;
    let link = api.create(json!({})).await;
    let s = link["client_secret"].as_str().unwrap();
    assert_eq!(s.len(), 52);
    assert!(secret::is_valid(s, "polar_cl_"), "{s}");
}

#[tokio::test]
async fn url_uses_the_production_template_by_default() {
    let api = Api::start().await;
    let link = api.create(json!({})).await;
    let s = link["client_secret"].as_str().unwrap();
    assert_eq!(link["url"], format!("https://buy.polar.sh/{s}"));
}

#[tokio::test]
async fn url_template_is_configurable_and_the_redirect_route_works() {
    let api = Api::with(polar_emulator::Config {
        url_template: "{base_url}/v1/checkout-links/{client_secret}/redirect".into(),
        ..Default::default()
    })
    .await;
    let link = api.create(json!({"label": "Launch"})).await;
    let url = link["url"].as_str().unwrap();
    assert!(url.starts_with(&api.base), "{url}");
    let r = api
        .client
        .get(format!("{url}?utm_source=news&embed_origin=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.contains("/checkout/polar_c_"), "{location}");
    assert!(
        location.contains("utm_source=news") && !location.contains("embed_origin"),
        "{location}"
    );
    let page = api.client.get(&location).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Launch"));
}

#[tokio::test]
async fn redirect_returns_404_after_the_link_is_deleted() {
    let api = Api::start().await;
    let link = api.create(json!({})).await;
    let secret = link["client_secret"].as_str().unwrap();
    let path = format!("/v1/checkout-links/{secret}/redirect");
    let r = api.send(reqwest::Method::GET, &path, None, None).await;
    assert_eq!(r.status, 307);
    let id = link["id"].as_str().unwrap();
    assert_eq!(
        api.delete(&format!("/v1/checkout-links/{id}"), ACME_TOKEN)
            .await
            .status,
        204
    );
    let r = api.send(reqwest::Method::GET, &path, None, None).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        json!({"error": "ResourceNotFound", "detail": "Not found"})
    );
}

#[tokio::test]
async fn get_returns_the_same_object_as_create() {
    let api = Api::start().await;
    let link = api
        .create(json!({"label": "x", "metadata": {"a": 1}}))
        .await;
    let r = api
        .get(
            &format!("/v1/checkout-links/{}", link["id"].as_str().unwrap()),
            ACME_READ_TOKEN,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, link);
}

#[tokio::test]
async fn success_url_keeps_the_checkout_id_placeholder() {
    let api = Api::start().await;
    let link = api
        .create(json!({"success_url": "https://Example.com/thanks?checkout_id={CHECKOUT_ID}"}))
        .await;
    assert_eq!(
        link["success_url"],
        "https://example.com/thanks?checkout_id={CHECKOUT_ID}"
    );
}

#[tokio::test]
async fn update_replaces_products_in_the_given_order() {
    let api = Api::start().await;
    let link = api.create(json!({"products": [EBOOK, MONTHLY]})).await;
    let path = format!("/v1/checkout-links/{}", link["id"].as_str().unwrap());
    let r = api
        .patch(&path, ACME_TOKEN, json!({"products": [YEARLY, EBOOK]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ids: Vec<&str> = r.body["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [YEARLY, EBOOK]);
    assert_eq!(r.body["product_id"], YEARLY);
}

#[tokio::test]
async fn update_replaces_metadata_instead_of_merging() {
    let api = Api::start().await;
    let link = api.create(json!({"metadata": {"a": "1", "b": 2}})).await;
    let path = format!("/v1/checkout-links/{}", link["id"].as_str().unwrap());
    let r = api
        .patch(&path, ACME_TOKEN, json!({"metadata": {"c": true}}))
        .await;
    assert_eq!(r.body["metadata"], json!({"c": true}));
    let r = api.patch(&path, ACME_TOKEN, json!({"metadata": {}})).await;
    assert_eq!(r.body["metadata"], json!({}));
}

#[tokio::test]
async fn metadata_keeps_the_order_the_client_sent() {
    let api = Api::start().await;
    let r = api
        .client
        .post(format!("{}/v1/checkout-links/", api.base))
        .bearer_auth(ACME_TOKEN)
        .header("content-type", "application/json")
        .body(format!(r#"{{"payment_processor":"stripe","products":["{EBOOK}"],"metadata":{{"z":1,"a":2.0,"m":"x"}}}}"#))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(
        text.contains(r#""metadata":{"z":1,"a":2.0,"m":"x"}"#),
        "{text}"
    );
}

#[tokio::test]
async fn explicit_null_clears_and_omission_keeps() {
    let api = Api::start().await;
    let link = api
        .create(json!({"label": "L", "success_url": "https://a.example/", "return_url": "https://b.example/", "discount_id": LAUNCH20}))
        .await;
    let path = format!("/v1/checkout-links/{}", link["id"].as_str().unwrap());
    let r = api.patch(&path, ACME_TOKEN, json!({"label": "L2"})).await;
    assert_eq!(r.body["label"], "L2");
    assert_eq!(r.body["success_url"], "https://a.example/");
    assert_eq!(r.body["discount_id"], LAUNCH20);
    let r = api
        .patch(
            &path,
            ACME_TOKEN,
            json!({"label": null, "success_url": null, "return_url": null, "discount_id": null}),
        )
        .await;
    assert_eq!(r.status, 200);
    for key in [
        "label",
        "success_url",
        "return_url",
        "discount_id",
        "discount",
    ] {
        assert_eq!(r.body[key], json!(null), "{key}");
    }
}

#[tokio::test]
async fn update_sets_modified_at_when_a_field_changes() {
    let api = Api::start().await;
    let link = api.create(json!({"label": "a"})).await;
    let path = format!("/v1/checkout-links/{}", link["id"].as_str().unwrap());
    let same = api.patch(&path, ACME_TOKEN, json!({"label": "a"})).await;
    assert_eq!(
        same.body["modified_at"],
        json!(null),
        "a no-op PATCH changes no column"
    );
    let r = api.patch(&path, ACME_TOKEN, json!({"label": "b"})).await;
    assert!(r.body["modified_at"].is_string());
    assert_eq!(r.body["created_at"], link["created_at"]);
}

#[tokio::test]
async fn delete_is_a_soft_delete_that_hides_the_link_everywhere() {
    let api = Api::start().await;
    let link = api.create(json!({})).await;
    let id = link["id"].as_str().unwrap();
    let path = format!("/v1/checkout-links/{id}");
    let r = api.delete(&path, ACME_TOKEN).await;
    assert_eq!(r.status, 204);
    assert!(r.text.is_empty());
    assert_eq!(api.get(&path, ACME_TOKEN).await.status, 404);
    assert_eq!(
        api.patch(&path, ACME_TOKEN, json!({"label": "x"}))
            .await
            .status,
        404
    );
    assert_eq!(api.delete(&path, ACME_TOKEN).await.status, 404);
    let list = api.get("/v1/checkout-links/", ACME_TOKEN).await;
    assert_eq!(list.body["pagination"]["total_count"], 0);
    let stored = api.emu.stored_link(id).unwrap();
    assert!(stored["deleted_at"].is_string());
    assert!(api.emu.link(id).is_none());
}

#[tokio::test]
async fn deprecated_single_product_forms_still_create_links() {
    let api = Api::start().await;
    let r = api
        .post(
            "/v1/checkout-links/",
            ACME_TOKEN,
            json!({"payment_processor": "stripe", "product_id": EBOOK}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["products"][0]["id"], EBOOK);
    let r = api
        .post(
            "/v1/checkout-links/",
            ACME_TOKEN,
            json!({"payment_processor": "stripe", "product_price_id": EBOOK_PRICE}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["product_id"], EBOOK);
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let api = Api::start().await;
    let link = api
        .create(json!({"organization_id": GLOBEX, "whatever": 1}))
        .await;
    assert_eq!(link["organization_id"], ACME);
}

#[tokio::test]
async fn numeric_strings_and_lax_booleans_are_coerced_like_pydantic() {
    let api = Api::start().await;
    let link = api
        .create(json!({"products": [TEAM], "seats": "5", "allow_discount_codes": "no", "trial_interval": "week", "trial_interval_count": 2.0}))
        .await;
    assert_eq!(link["seats"], 5);
    assert_eq!(link["allow_discount_codes"], false);
    assert_eq!(link["trial_interval_count"], 2);
}

#[tokio::test]
async fn discount_is_embedded_without_its_product_list() {
    let api = Api::start().await;
    let link = api.create(json!({"discount_id": LAUNCH20})).await;
    assert_eq!(link["discount"]["id"], LAUNCH20);
    assert_eq!(link["discount"]["type"], "percentage");
    assert_eq!(link["discount"]["basis_points"], 2000);
    assert!(link["discount"].get("products").is_none());
}
