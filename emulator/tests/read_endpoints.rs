//! Products, discounts and organisations, as the operator reads them.
mod common;

use common::*;
use serde_json::json;

fn ids(r: &Res) -> Vec<String> {
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_product_is_returned_with_prices_and_archived_products_too() {
    let api = Api::start().await;
    let r = api.get(&format!("/v1/products/{TEAM}"), ACME_TOKEN).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["name"], "Team");
    assert_eq!(r.body["is_recurring"], true);
    assert_eq!(r.body["recurring_interval"], "month");
    assert_eq!(r.body["attached_custom_fields"], json!([]));
    let tiers = &r.body["prices"][0]["seat_tiers"];
    assert_eq!(tiers["minimum_seats"], 1);
    assert_eq!(tiers["maximum_seats"], 50);
    let r = api
        .get(&format!("/v1/products/{ARCHIVED}"), ACME_TOKEN)
        .await;
    assert_eq!(r.body["is_archived"], true);
    assert_eq!(
        api.get(&format!("/v1/products/{GLOBEX_WIDGET}"), ACME_TOKEN)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn product_list_filters_by_id_archived_and_query() {
    let api = Api::start().await;
    let r = api.get("/v1/products/?limit=100", ACME_TOKEN).await;
    assert_eq!(r.body["pagination"]["total_count"], 8);
    assert_eq!(ids(&r)[0], CREDITS, "newest first by default");
    assert_eq!(ids(&r)[1], CONSULTING);
    let r = api
        .get(
            &format!("/v1/products/?id={EBOOK}&id={TEAM}&id={GLOBEX_WIDGET}&sorting=created_at"),
            ACME_TOKEN,
        )
        .await;
    assert_eq!(ids(&r), [EBOOK, TEAM]);
    let r = api.get("/v1/products/?is_archived=true", ACME_TOKEN).await;
    assert_eq!(ids(&r), [ARCHIVED]);
    let r = api
        .get("/v1/products/?query=PRO&sorting=name", ACME_TOKEN)
        .await;
    assert_eq!(ids(&r), [MONTHLY, YEARLY]);
    let r = api.get("/v1/products/?is_archived=maybe", ACME_TOKEN).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.detail()[0]["loc"], json!(["query", "is_archived"]));
}

#[tokio::test]
async fn products_need_the_products_scope() {
    let mut config = polar_emulator::Config {
        rate_limit: 0,
        ..Default::default()
    };
    config.seed.tokens.push(polar_emulator::SeedToken {
        token: "polar_oat_linksonly".into(),
        scopes: vec!["checkout_links:write".into()],
        organization: Some(ACME.parse().unwrap()),
        ..Default::default()
    });
    let api = Api::with(config).await;
    let r = api.get("/v1/products/", "polar_oat_linksonly").await;
    assert_eq!(r.status, 403);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("scope=\"products:read products:write\"")
    );
    assert_eq!(
        api.get("/v1/discounts/", "polar_oat_linksonly")
            .await
            .status,
        403
    );
    assert_eq!(
        api.get(&format!("/v1/organizations/{ACME}"), "polar_oat_linksonly")
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn a_discount_is_returned_with_its_product_restriction() {
    let api = Api::start().await;
    let r = api.get(&format!("/v1/discounts/{TEAM5}"), ACME_TOKEN).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["type"], "fixed");
    assert_eq!(r.body["amounts"], json!({"usd": 500}));
    assert_eq!(r.body["amount"], 500);
    assert_eq!(r.body["currency"], "usd");
    assert_eq!(r.body["products"][0]["id"], TEAM);
    assert!(r.body["products"][0].get("prices").is_none());
    assert_eq!(
        api.get(&format!("/v1/discounts/{GLOBEX10}"), ACME_TOKEN)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn discount_query_matches_name_case_sensitively_or_code_case_insensitively() {
    let api = Api::start().await;
    assert_eq!(
        ids(&api.get("/v1/discounts/?query=launch20", ACME_TOKEN).await),
        [LAUNCH20],
        "code ILIKE"
    );
    assert_eq!(
        ids(&api.get("/v1/discounts/?query=Team", ACME_TOKEN).await),
        [TEAM5],
        "name LIKE"
    );
    assert!(
        ids(&api.get("/v1/discounts/?query=team%20$", ACME_TOKEN).await).is_empty(),
        "name is case-sensitive"
    );
}

#[tokio::test]
async fn an_organization_token_sees_only_its_organization() {
    let api = Api::start().await;
    let r = api
        .get(&format!("/v1/organizations/{ACME}"), ACME_TOKEN)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["slug"], "acme");
    assert_eq!(
        api.get(&format!("/v1/organizations/{GLOBEX}"), ACME_TOKEN)
            .await
            .status,
        404
    );
    let r = api.get("/v1/organizations/", USER_TOKEN).await;
    assert_eq!(r.body["pagination"]["total_count"], 2);
    let r = api.get("/v1/organizations/?slug=globex", USER_TOKEN).await;
    assert_eq!(ids(&r), [GLOBEX]);
}
