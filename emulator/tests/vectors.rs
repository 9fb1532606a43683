//! Every vector from `polar-api/vectors/`, sent over HTTP on create and
//! on update: the stored value, or the 422 item's type and message.
mod common;

use common::*;
use serde_json::{Value, json};

fn vectors(name: &str) -> Vec<Value> {
    let path = format!("{}/../polar-api/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_url_vector_is_stored_or_rejected_exactly_as_polar_does() {
    let api = Api::start().await;
    let cases = vectors("url-normalization.json");
    assert!(cases.len() > 60);
    let link = api.create(json!({})).await;
    let path = format!("/v1/checkout-links/{}", link["id"].as_str().unwrap());
    for case in &cases {
        let field = case["field"].as_str().unwrap();
        let input = &case["input"];
        let created = api
            .post(
                "/v1/checkout-links/",
                ACME_TOKEN,
                json!({"payment_processor": "stripe", "products": [EBOOK], field: input}),
            )
            .await;
        let patched = api.patch(&path, ACME_TOKEN, json!({ field: input })).await;
        if let Some(output) = case.get("output") {
            assert_eq!(
                created.status, 201,
                "create {field} {input}: {}",
                created.text
            );
            assert_eq!(&created.body[field], output, "create {field} {input}");
            assert_eq!(
                patched.status, 200,
                "patch {field} {input}: {}",
                patched.text
            );
            assert_eq!(&patched.body[field], output, "patch {field} {input}");
        } else {
            let error = &case["error"];
            assert_eq!(created.status, 422, "create {field} {input}");
            let items: Vec<&Value> = created
                .detail()
                .iter()
                .filter(|i| i["loc"][2] == field)
                .collect();
            assert_eq!(
                items.len(),
                3,
                "one error per union member: {}",
                created.text
            );
            assert_eq!(items[2]["loc"], json!(["body", PRODUCTS_TAG, field]));
            for item in items {
                assert_eq!(item["type"], error["type"], "create {field} {input}");
                assert_eq!(item["msg"], error["msg"], "create {field} {input}");
                assert_eq!(&item["input"], input);
            }
            assert_eq!(patched.status, 422, "patch {field} {input}");
            let item = &patched.detail()[0];
            assert_eq!(item["loc"], json!(["body", field]));
            assert_eq!(item["type"], error["type"], "patch {field} {input}");
            assert_eq!(item["msg"], error["msg"], "patch {field} {input}");
        }
    }
}

#[tokio::test]
async fn every_metadata_vector_is_stored_or_rejected_exactly_as_polar_does() {
    let api = Api::start().await;
    let cases = vectors("metadata.json");
    let link = api.create(json!({})).await;
    let path = format!("/v1/checkout-links/{}", link["id"].as_str().unwrap());
    for case in &cases {
        let input = &case["input"];
        let has_nul = input
            .as_object()
            .unwrap()
            .iter()
            .any(|(k, v)| k.contains('\0') || v.as_str().is_some_and(|s| s.contains('\0')));
        let patched = api
            .patch(&path, ACME_TOKEN, json!({ "metadata": input }))
            .await;
        let created = api
            .post(
                "/v1/checkout-links/",
                ACME_TOKEN,
                json!({"payment_processor": "stripe", "products": [EBOOK], "metadata": input}),
            )
            .await;
        if let Some(output) = case.get("output") {
            assert_eq!(patched.status, 200, "patch {input}: {}", patched.text);
            assert_eq!(&patched.body["metadata"], output, "patch {input}");
            if has_nul {
                // Create schemas reject NUL in any string; updates do not.
                assert_eq!(created.status, 422, "create {input}");
                assert_eq!(
                    created.detail()[0]["msg"],
                    "This value contains invalid characters"
                );
            } else {
                assert_eq!(created.status, 201, "create {input}: {}", created.text);
                assert_eq!(&created.body["metadata"], output, "create {input}");
            }
        } else {
            let expected = case["errors"].as_array().unwrap();
            assert_eq!(patched.status, 422, "patch {input}");
            let got = patched.detail();
            assert_eq!(
                got.len() as u64,
                case["error_count"].as_u64().unwrap(),
                "patch {input}: {}",
                patched.text
            );
            for (want, item) in expected.iter().zip(got) {
                let mut loc = vec![json!("body")];
                loc.extend(want["loc"].as_array().unwrap().iter().cloned());
                assert_eq!(item["loc"], Value::Array(loc), "patch {input}");
                assert_eq!(item["type"], want["type"], "patch {input}");
                assert_eq!(item["msg"], want["msg"], "patch {input}");
            }
            assert_eq!(created.status, 422, "create {input}");
            let products_member: Vec<&Value> = created
                .detail()
                .iter()
                .filter(|i| i["loc"][1] == PRODUCTS_TAG)
                .collect();
            for (want, item) in expected.iter().zip(products_member) {
                let mut loc = vec![json!("body"), json!(PRODUCTS_TAG)];
                loc.extend(want["loc"].as_array().unwrap().iter().cloned());
                assert_eq!(item["loc"], Value::Array(loc), "create {input}");
                assert_eq!(item["type"], want["type"], "create {input}");
                assert_eq!(item["msg"], want["msg"], "create {input}");
            }
        }
    }
}
