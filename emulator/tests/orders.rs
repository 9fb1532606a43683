//! Orders: bought through a link (the buy control), refunded, read and
//! filtered as Polar serves them.
mod common;

use std::collections::BTreeMap;

use common::*;
use polar_emulator::{BuyOptions, Config, FaultRule, Seed, SeedToken};
use reqwest::Method;
use serde_json::{Value, json};

async fn buy(api: &Api, link: &Value, body: Value) -> Res {
    api.send(
        Method::POST,
        &format!(
            "/__emulator/checkout-links/{}/buy",
            link["id"].as_str().unwrap()
        ),
        None,
        Some(&body),
    )
    .await
}

async fn bought(api: &Api, link: &Value, body: Value) -> Value {
    let r = buy(api, link, body).await;
    assert_eq!(r.status, 201, "buy failed: {}", r.text);
    r.body
}

fn query(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

#[tokio::test]
async fn an_order_has_every_field_of_polars_order_schema() {
    let api = Api::start().await;
    let link = api.create(json!({})).await;
    let order = bought(&api, &link, json!({})).await;
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../polar-api/reads-2026-04.openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let schemas = &spec["components"]["schemas"];
    let required = |name: &str| -> Vec<String> {
        schemas[name]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect()
    };
    for field in required("Order") {
        assert!(order.get(&field).is_some(), "Order.{field} is missing");
    }
    for field in required("OrderCustomer") {
        assert!(
            order["customer"].get(&field).is_some(),
            "OrderCustomer.{field}"
        );
    }
    for field in required("OrderProduct") {
        assert!(
            order["product"].get(&field).is_some(),
            "OrderProduct.{field}"
        );
    }
    for field in required("OrderItemSchema") {
        assert!(order["items"][0].get(&field).is_some(), "item.{field}");
    }
    // What polar-sdk 1.0.2 requires besides, in every version.
    for field in [
        "units",
        "seats",
        "custom_field_data",
        "next_payment_attempt_at",
    ] {
        assert!(order.get(field).is_some(), "{field}");
    }
    assert!(order["items"][0].get("start_timestamp").is_some());
    assert!(order["items"][0].get("end_timestamp").is_some());

    assert_eq!(order["status"], "paid");
    assert_eq!(order["paid"], true);
    assert_eq!(order["subtotal_amount"], 1900);
    assert_eq!(order["discount_amount"], 0);
    assert_eq!(order["net_amount"], 1900);
    assert_eq!(order["tax_amount"], 0);
    assert_eq!(order["total_amount"], 1900);
    assert_eq!(order["due_amount"], 1900);
    assert_eq!(order["refunded_amount"], 0);
    assert_eq!(order["refundable_amount"], 1900);
    assert_eq!(order["currency"], "usd");
    assert_eq!(order["billing_reason"], "purchase");
    assert_eq!(order["product_id"], EBOOK);
    assert_eq!(order["product"]["name"], "Ebook");
    assert!(order["product"].get("prices").is_none(), "OrderProduct");
    assert_eq!(order["description"], "Ebook");
    assert_eq!(order["items"][0]["product_price_id"], EBOOK_PRICE);
    assert_eq!(order["items"][0]["amount"], 1900);
    assert_eq!(order["subscription"], json!(null));
    assert_eq!(order["discount"], json!(null));
    assert_eq!(order["modified_at"], json!(null));
    assert_eq!(order["customer"]["organization_id"], ACME);
    assert_eq!(order["customer_id"], order["customer"]["id"]);
    assert!(
        order["checkout_id"]
            .as_str()
            .unwrap()
            .parse::<uuid::Uuid>()
            .is_ok()
    );
    assert!(
        order["invoice_number"]
            .as_str()
            .unwrap()
            .starts_with("ACME-")
    );
    assert!(order["invoice_number"].as_str().unwrap().ends_with("-0001"));
    let got = api
        .get(&format!("/v1/orders/{}", id(&order)), ACME_TOKEN)
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, order);
}

#[tokio::test]
async fn the_links_metadata_wins_over_the_share_urls_values() {
    let api = Api::start().await;
    let link = api
        .create(json!({"metadata": {"campaign": "spring", "utm_source": "link", "count": 3}}))
        .await;
    let order = bought(
        &api,
        &link,
        json!({"query": {
            "utm_source": "newsletter",
            "utm_medium": "email",
            "utm_campaign": "launch",
            "utm_content": "hero",
            "utm_term": "ebook",
            "reference_id": "r1",
            "ref": "not metadata",
            "campaign": "not metadata either",
        }}),
    )
    .await;
    assert_eq!(
        order["metadata"],
        json!({
            "campaign": "spring",
            "utm_source": "link",
            "count": 3,
            "reference_id": "r1",
            "utm_medium": "email",
            "utm_campaign": "launch",
            "utm_term": "ebook",
            "utm_content": "hero",
        })
    );
    // The link itself is not changed by a purchase.
    let link = api.emu.link(id(&link)).unwrap();
    assert_eq!(
        link["metadata"],
        json!({"campaign": "spring", "utm_source": "link", "count": 3})
    );
    // Without query values the order has the link's metadata only.
    let plain = bought(&api, &api.create(json!({})).await, json!({})).await;
    assert_eq!(plain["metadata"], json!({}));
}

#[tokio::test]
async fn orders_need_orders_read() {
    let api = Api::start().await;
    let order = bought(&api, &api.create(json!({})).await, json!({})).await;
    let path = format!("/v1/orders/{}", id(&order));
    for token in [GLOBEX_TOKEN, ACME_READ_TOKEN, ACME_NO_ORG_TOKEN, USER_TOKEN] {
        for p in ["/v1/orders/", path.as_str()] {
            let r = api.get(p, token).await;
            assert_eq!(r.status, 403, "{token} {p}");
            assert_eq!(r.body["error"], "insufficient_scope");
            assert!(
                r.header("www-authenticate")
                    .unwrap()
                    .contains("scope=\"orders:read\"")
            );
        }
    }
    assert_eq!(api.get(&path, ACME_SHOP_TWO_TOKEN).await.status, 200);
    assert_eq!(api.get("/v1/orders/", ACME_TOKEN).await.status, 200);
    assert_eq!(
        api.send(Method::GET, "/v1/orders/", None, None)
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn orders_belong_to_their_organization() {
    let mut seed = Seed::demo();
    seed.tokens.push(SeedToken {
        token: "polar_oat_globexorders".into(),
        organization: Some(GLOBEX.parse().unwrap()),
        scopes: vec!["orders:read".into()],
        ..Default::default()
    });
    let api = Api::with(Config {
        seed,
        rate_limit: 0,
        ..Config::default()
    })
    .await;
    let acme = bought(&api, &api.create(json!({})).await, json!({})).await;
    let r = api
        .post(
            "/v1/checkout-links/",
            GLOBEX_TOKEN,
            json!({"payment_processor": "stripe", "products": [GLOBEX_EBOOK]}),
        )
        .await;
    let globex = bought(&api, &r.body, json!({})).await;
    assert_eq!(globex["subtotal_amount"], 2900);
    assert!(
        globex["invoice_number"]
            .as_str()
            .unwrap()
            .starts_with("GLOBEX-")
    );
    let r = api.get("/v1/orders/", "polar_oat_globexorders").await;
    assert_eq!(item_ids(&r), [id(&globex)]);
    let r = api
        .get(
            &format!("/v1/orders/{}", id(&acme)),
            "polar_oat_globexorders",
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        json!({"error": "ResourceNotFound", "detail": "Not found"})
    );
    let r = api.get("/v1/orders/", ACME_TOKEN).await;
    assert_eq!(item_ids(&r), [id(&acme)]);
    let r = api
        .get(&format!("/v1/orders/?organization_id={GLOBEX}"), ACME_TOKEN)
        .await;
    assert_eq!(r.body["pagination"]["total_count"], 0);
    // The not_found fault: the token's organisation owns nothing.
    api.emu.set_faults(vec![FaultRule {
        method: "GET".into(),
        path: "*".into(),
        not_found: true,
        ..FaultRule::default()
    }]);
    assert_eq!(
        api.get("/v1/orders/", ACME_TOKEN).await.body["items"],
        json!([])
    );
    assert_eq!(
        api.get(&format!("/v1/orders/{}", id(&acme)), ACME_TOKEN)
            .await
            .status,
        404
    );
    api.emu.clear_faults();
    let r = api.get("/v1/orders/not-a-uuid", ACME_TOKEN).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.detail()[0]["loc"], json!(["path", "id"]));
}

#[tokio::test]
async fn a_recurring_product_starts_a_subscription() {
    let api = Api::start().await;
    let link = api.create(json!({"products": [MONTHLY, EBOOK]})).await;
    let order = bought(&api, &link, json!({})).await;
    assert_eq!(order["product_id"], MONTHLY, "the first product by default");
    assert_eq!(order["billing_reason"], "subscription_create");
    let sub = &order["subscription"];
    assert_eq!(order["subscription_id"], sub["id"]);
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["recurring_interval"], "month");
    assert_eq!(sub["amount"], 900);
    assert_eq!(sub["product_id"], MONTHLY);
    assert_eq!(sub["checkout_id"], order["checkout_id"]);
    assert_eq!(
        order["items"][0]["start_timestamp"],
        sub["current_period_start"]
    );
    assert_eq!(
        order["items"][0]["end_timestamp"],
        sub["current_period_end"]
    );
    let one_time = bought(&api, &link, json!({"product_id": EBOOK})).await;
    assert_eq!(one_time["billing_reason"], "purchase");
    let r = api
        .get("/v1/orders/?product_billing_type=recurring", ACME_TOKEN)
        .await;
    assert_eq!(item_ids(&r), [id(&order)]);
    let r = api
        .get("/v1/orders/?product_billing_type=one_time", ACME_TOKEN)
        .await;
    assert_eq!(item_ids(&r), [id(&one_time)]);
    let r = api
        .get(
            &format!(
                "/v1/orders/?subscription_id={}",
                sub["id"].as_str().unwrap()
            ),
            ACME_TOKEN,
        )
        .await;
    assert_eq!(item_ids(&r), [id(&order)]);
}

#[tokio::test]
async fn seats_units_custom_amounts_and_currencies() {
    let api = Api::start().await;
    let team = api.create(json!({"products": [TEAM], "seats": 12})).await;
    let order = bought(&api, &team, json!({})).await;
    assert_eq!(order["seats"], 12);
    assert_eq!(order["subtotal_amount"], 12 * 600, "the 11-50 tier");
    let credits = api
        .create(json!({"products": [CREDITS], "units": 50}))
        .await;
    let order = bought(&api, &credits, json!({})).await;
    assert_eq!(order["units"], 50);
    assert_eq!(order["subtotal_amount"], 500);
    let consulting = api.create(json!({"products": [CONSULTING]})).await;
    let order = bought(&api, &consulting, json!({})).await;
    assert_eq!(order["subtotal_amount"], 10000, "the preset amount");
    let order = bought(
        &api,
        &consulting,
        json!({"amount": 12345, "currency": "USD"}),
    )
    .await;
    assert_eq!(order["subtotal_amount"], 12345);
    assert_eq!(order["currency"], "usd");
    let r = buy(&api, &consulting, json!({"currency": "eur"})).await;
    assert_eq!(r.status, 400);
    let r = buy(&api, &consulting, json!({"amount": -1})).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn a_links_preset_discount_applies_while_it_is_redeemable() {
    let api = Api::start().await;
    let link = api.create(json!({"discount_id": LAUNCH20})).await;
    let order = bought(&api, &link, json!({})).await;
    assert_eq!(order["discount_id"], LAUNCH20);
    assert_eq!(order["discount_amount"], 380);
    assert_eq!(order["net_amount"], 1520);
    assert_eq!(order["total_amount"], 1520);
    assert_eq!(order["discount"]["code"], "LAUNCH20");
    let d = api
        .get(&format!("/v1/discounts/{LAUNCH20}"), ACME_TOKEN)
        .await;
    assert_eq!(d.body["redemptions_count"], 1);
    let shown = api.emu.link(id(&link)).unwrap();
    assert_eq!(shown["discount"]["redemptions_count"], 1);
    // Used up: the next order pays full price and the count stays.
    api.emu
        .edit_discount(LAUNCH20, json!({"max_redemptions": 1}))
        .unwrap();
    let order = bought(&api, &link, json!({})).await;
    assert_eq!(order["discount_id"], json!(null));
    assert_eq!(order["discount_amount"], 0);
    // Ended, or not started: no discount either.
    api.emu
        .edit_discount(
            LAUNCH20,
            json!({"max_redemptions": null, "ends_at": "2020-01-01T00:00:00Z"}),
        )
        .unwrap();
    assert_eq!(bought(&api, &link, json!({})).await["discount_amount"], 0);
    api.emu
        .edit_discount(
            LAUNCH20,
            json!({"ends_at": null, "starts_at": "2999-01-01T00:00:00Z"}),
        )
        .unwrap();
    assert_eq!(bought(&api, &link, json!({})).await["discount_amount"], 0);
    let r = api
        .get(&format!("/v1/orders/?discount_id={LAUNCH20}"), ACME_TOKEN)
        .await;
    assert_eq!(r.body["pagination"]["total_count"], 1);
    // A fixed discount restricted to Team.
    let team = api
        .create(json!({"products": [TEAM], "seats": 2, "discount_id": TEAM5}))
        .await;
    let order = bought(&api, &team, json!({})).await;
    assert_eq!(order["subtotal_amount"], 1600);
    assert_eq!(order["discount_amount"], 500);
}

#[tokio::test]
async fn buying_through_a_link_that_cannot_sell_is_refused() {
    let api = Api::start().await;
    let link = api.create(json!({"products": [EBOOK, MONTHLY]})).await;
    let r = buy(&api, &link, json!({"product_id": TEAM})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = buy(&api, &link, json!({"coupon": "x"})).await;
    assert_eq!(r.status, 400);
    api.emu
        .edit_product(EBOOK, json!({"visibility": "draft"}))
        .unwrap();
    let order = bought(&api, &link, json!({})).await;
    assert_eq!(order["product_id"], MONTHLY, "a draft is left out");
    api.emu
        .edit_product(MONTHLY, json!({"visibility": "draft"}))
        .unwrap();
    let r = buy(&api, &link, json!({})).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("No valid products."), "{}", r.text);
    api.emu.delete_link(id(&link)).unwrap();
    assert_eq!(buy(&api, &link, json!({})).await.status, 404);
    let r = api
        .send(
            Method::POST,
            "/__emulator/checkout-links/d1000000-0000-4000-8000-0000000000ff/buy",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn the_metadata_filter_works_on_orders_as_on_products() {
    let api = Api::start().await;
    let spring = api
        .create(json!({"metadata": {"campaign": "spring", "wave": 2, "vip": true}}))
        .await;
    let fall = api.create(json!({"metadata": {"campaign": "fall"}})).await;
    let a = bought(
        &api,
        &spring,
        json!({"query": {"utm_source": "newsletter"}}),
    )
    .await;
    let b = bought(&api, &spring, json!({"query": {"utm_source": "x"}})).await;
    let c = bought(&api, &fall, json!({"query": {"utm_source": "newsletter"}})).await;
    let list = |q: &str| format!("/v1/orders/?{q}&sorting=created_at");
    let ids = |r: &Res| item_ids(r);
    assert_eq!(
        ids(&api
            .get(&list("metadata[campaign]=spring"), ACME_TOKEN)
            .await),
        [id(&a), id(&b)]
    );
    assert_eq!(
        ids(&api
            .get(
                &list("metadata[campaign]=spring&metadata[campaign]=fall"),
                ACME_TOKEN
            )
            .await),
        [id(&a), id(&b), id(&c)],
        "OR"
    );
    assert_eq!(
        ids(&api
            .get(
                &list("metadata[campaign]=spring&metadata[utm_source]=newsletter"),
                ACME_TOKEN
            )
            .await),
        [id(&a)],
        "AND"
    );
    assert_eq!(
        ids(&api.get(&list("metadata[wave]=2"), ACME_TOKEN).await),
        [id(&a), id(&b)],
        "the integer 2 as text"
    );
    assert_eq!(
        ids(&api.get(&list("metadata[vip]=true"), ACME_TOKEN).await),
        [id(&a), id(&b)]
    );
    assert!(ids(&api.get(&list("metadata[wave]=2.0"), ACME_TOKEN).await).is_empty());
    let r = api
        .get(
            &list(&format!(
                "checkout_id={}",
                a["checkout_id"].as_str().unwrap()
            )),
            ACME_TOKEN,
        )
        .await;
    assert_eq!(ids(&r), [id(&a)]);
    let r = api
        .get(
            &list(&format!(
                "customer_id={}",
                c["customer_id"].as_str().unwrap()
            )),
            ACME_TOKEN,
        )
        .await;
    assert_eq!(ids(&r), [id(&c)]);
    let r = api
        .get(&list(&format!("product_id={MONTHLY}")), ACME_TOKEN)
        .await;
    assert!(ids(&r).is_empty());
    let r = api
        .get(&list(&format!("product_id={EBOOK}")), ACME_TOKEN)
        .await;
    assert_eq!(r.body["pagination"]["total_count"], 3);
    let r = api.get(&list("external_customer_id=x"), ACME_TOKEN).await;
    assert!(ids(&r).is_empty());
    for bad in [
        "product_id=x",
        "checkout_id=1",
        "status=open",
        "product_billing_type=monthly",
        "sorting=total",
    ] {
        let r = api.get(&list(bad), ACME_TOKEN).await;
        assert_eq!(r.status, 422, "{bad}");
        assert_eq!(r.body["error"], "RequestValidationError");
    }
}

#[tokio::test]
async fn one_customer_per_email_in_an_organization() {
    let api = Api::start().await;
    let link = api.create(json!({})).await;
    let q = |email: &str| json!({"query": {"customer_email": email, "customer_name": "Ada"}});
    let a = bought(&api, &link, q("ada@example.com")).await;
    let b = bought(&api, &link, q("ADA@example.com")).await;
    let c = bought(&api, &link, json!({})).await;
    assert_eq!(a["customer_id"], b["customer_id"]);
    assert_ne!(a["customer_id"], c["customer_id"]);
    assert_eq!(a["customer"]["email"], "ada@example.com");
    assert_eq!(a["customer"]["name"], "Ada");
    assert!(a["invoice_number"].as_str().unwrap().ends_with("-0001"));
    assert!(b["invoice_number"].as_str().unwrap().ends_with("-0002"));
    let r = api.get("/v1/orders/?sorting=customer", ACME_TOKEN).await;
    assert_eq!(item_ids(&r)[..2], [id(&a), id(&b)], "ada@ before buyer-");
}

async fn three_orders_at(api: &Api, times: [&str; 3]) -> Vec<Value> {
    let link = api.create(json!({})).await;
    let mut out = Vec::new();
    for t in times {
        out.push(
            api.emu
                .buy(
                    id(&link),
                    BuyOptions {
                        created_at: Some(t.parse().unwrap()),
                        ..Default::default()
                    },
                )
                .unwrap(),
        );
    }
    out
}

#[tokio::test]
async fn created_after_and_created_before_are_exclusive() {
    let api = Api::start().await;
    let o = three_orders_at(
        &api,
        [
            "2026-03-01T10:00:00.000001Z",
            "2026-03-01T11:00:00Z",
            "2026-03-02T00:00:00Z",
        ],
    )
    .await;
    assert_eq!(o[0]["created_at"], "2026-03-01T10:00:00.000001Z");
    let list = |q: &str| format!("/v1/orders/?{q}&sorting=created_at");
    for (q, want) in [
        ("created_after=2026-03-01T11:00:00Z", vec![2]),
        ("created_before=2026-03-01T11:00:00Z", vec![0]),
        (
            "created_after=2026-03-01T10:00:00.000001Z&created_before=2026-03-02T00:00:00Z",
            vec![1],
        ),
        ("created_after=2026-03-01T10:00:00Z", vec![0, 1, 2]),
        ("created_after=2026-03-01T12:00:00%2B01:00", vec![2]),
        ("created_before=2026-03-02", vec![0, 1]),
        ("created_after=2026-03-02", vec![]),
        ("created_after=1772362800", vec![2]),
        ("created_after=1772359200", vec![0, 1, 2]),
        ("created_after=2026-03-01T11:00:00", vec![2]),
    ] {
        let r = api.get(&list(q), ACME_TOKEN).await;
        assert_eq!(r.status, 200, "{q}: {}", r.text);
        let want: Vec<&str> = want.iter().map(|i| id(&o[*i])).collect();
        assert_eq!(item_ids(&r), want, "{q}");
    }
    let r = api
        .get("/v1/orders/?created_after=yesterday", ACME_TOKEN)
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["detail"][0],
        json!({
            "type": "datetime_from_date_parsing",
            "loc": ["query", "created_after"],
            "msg": "Input should be a valid datetime or date, input is too short",
            "input": "yesterday",
            "ctx": {"error": "input is too short"},
        })
    );
    let r = api
        .get("/v1/orders/?created_before=2026-02-30&page=0", ACME_TOKEN)
        .await;
    assert_eq!(r.detail().len(), 2);
    assert_eq!(
        r.detail()[1]["msg"],
        "Input should be a valid datetime or date, day value is outside expected range"
    );
}

#[tokio::test]
async fn orders_page_and_sort() {
    let api = Api::start().await;
    let link = api.create(json!({"products": [EBOOK, YEARLY]})).await;
    let mut o = Vec::new();
    for (i, (product, amount)) in [
        (EBOOK, 500),
        (YEARLY, 9000),
        (EBOOK, 100),
        (EBOOK, 3000),
        (YEARLY, 2000),
    ]
    .into_iter()
    .enumerate()
    {
        let at = format!("2026-04-0{}T00:00:00Z", i + 1);
        o.push(
            api.emu
                .buy(
                    id(&link),
                    BuyOptions {
                        product_id: Some(product.parse().unwrap()),
                        amount: Some(amount),
                        created_at: Some(at.parse().unwrap()),
                        ..Default::default()
                    },
                )
                .unwrap(),
        );
    }
    let ids =
        |idx: &[usize]| -> Vec<String> { idx.iter().map(|i| id(&o[*i]).to_string()).collect() };
    let r = api.get("/v1/orders/", ACME_TOKEN).await;
    assert_eq!(
        item_ids(&r),
        ids(&[4, 3, 2, 1, 0]),
        "newest first by default"
    );
    assert_eq!(
        r.body["pagination"],
        json!({"total_count": 5, "max_page": 1})
    );
    let r = api.get("/v1/orders/?limit=2&page=2", ACME_TOKEN).await;
    assert_eq!(item_ids(&r), ids(&[2, 1]));
    assert_eq!(
        r.body["pagination"],
        json!({"total_count": 5, "max_page": 3})
    );
    let r = api.get("/v1/orders/?limit=2&page=4", ACME_TOKEN).await;
    assert_eq!(item_ids(&r), Vec::<String>::new());
    let r = api.get("/v1/orders/?sorting=created_at", ACME_TOKEN).await;
    assert_eq!(item_ids(&r), ids(&[0, 1, 2, 3, 4]));
    let r = api.get("/v1/orders/?sorting=-net_amount", ACME_TOKEN).await;
    assert_eq!(item_ids(&r), ids(&[1, 3, 4, 0, 2]));
    let r = api.get("/v1/orders/?sorting=amount", ACME_TOKEN).await;
    assert_eq!(item_ids(&r), ids(&[2, 0, 4, 3, 1]));
    // By product name, then newest first within one product.
    let r = api
        .get(
            "/v1/orders/?sorting=-product&sorting=-created_at",
            ACME_TOKEN,
        )
        .await;
    assert_eq!(item_ids(&r), ids(&[4, 1, 3, 2, 0]));
    // Status: paid (2) < refunded (3) < partially_refunded (4).
    api.emu.refund(id(&o[0]), None).unwrap();
    api.emu.refund(id(&o[1]), Some(1)).unwrap();
    let r = api
        .get("/v1/orders/?sorting=status&sorting=created_at", ACME_TOKEN)
        .await;
    assert_eq!(item_ids(&r), ids(&[2, 3, 4, 0, 1]));
    let r = api
        .get(
            "/v1/orders/?status=refunded&status=partially_refunded&sorting=created_at",
            ACME_TOKEN,
        )
        .await;
    assert_eq!(item_ids(&r), ids(&[0, 1]));
    // Orders without a subscription (NULL) sort last ascending.
    let r = api
        .get("/v1/orders/?sorting=subscription", ACME_TOKEN)
        .await;
    let first_two: std::collections::BTreeSet<String> = item_ids(&r)[..2].iter().cloned().collect();
    assert_eq!(first_two, ids(&[1, 4]).into_iter().collect());
    let r = api.get("/v1/orders/?limit=500", ACME_TOKEN).await;
    assert_eq!(
        r.body["pagination"]["max_page"], 1,
        "limit is clamped to 100"
    );
}

#[tokio::test]
async fn refunds_move_refunded_amount_status_and_modified_at_only() {
    let api = Api::start().await;
    let order = bought(
        &api,
        &api.create(json!({"discount_id": LAUNCH20})).await,
        json!({}),
    )
    .await;
    let path = format!("/__emulator/orders/{}/refund", id(&order));
    let r = api
        .send(Method::POST, &path, None, Some(&json!({"amount": 520})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "partially_refunded");
    assert_eq!(r.body["paid"], true);
    assert_eq!(r.body["refunded_amount"], 520);
    assert_eq!(r.body["refundable_amount"], 1000);
    assert_eq!(r.body["net_amount"], 1520, "amounts stay");
    assert_eq!(r.body["created_at"], order["created_at"]);
    let modified = r.body["modified_at"].as_str().unwrap().to_string();
    let got = api
        .get(&format!("/v1/orders/{}", id(&order)), ACME_TOKEN)
        .await;
    assert_eq!(got.body, r.body);
    let r = api
        .send(Method::POST, &path, None, Some(&json!({"amount": 1001})))
        .await;
    assert_eq!(r.status, 400, "more than is left");
    let r = api
        .send(Method::POST, &path, None, Some(&json!({"amount": 0})))
        .await;
    assert_eq!(r.status, 400);
    let r = api
        .send(Method::POST, &path, None, Some(&json!({"cents": 5})))
        .await;
    assert_eq!(r.status, 400);
    let r = api.send(Method::POST, &path, None, None).await;
    assert_eq!(r.status, 200, "the rest by default");
    assert_eq!(r.body["status"], "refunded");
    assert_eq!(r.body["refunded_amount"], 1520);
    assert_eq!(r.body["refundable_amount"], 0);
    assert_eq!(r.body["created_at"], order["created_at"]);
    assert!(r.body["modified_at"].as_str().unwrap() >= modified.as_str());
    let r = api.send(Method::POST, &path, None, None).await;
    assert_eq!(r.status, 400, "nothing left to refund");
    let r = api
        .send(
            Method::POST,
            "/__emulator/orders/d1000000-0000-4000-8000-0000000000ff/refund",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    assert!(api.emu.refund("x", None).is_err());
}

#[tokio::test]
async fn an_ordered_product_is_not_deletable() {
    let mut seed = Seed::demo();
    seed.tokens.push(SeedToken {
        token: "polar_oat_productswriter".into(),
        organization: Some(ACME.parse().unwrap()),
        scopes: vec!["products:write".into()],
        ..Default::default()
    });
    let api = Api::with(Config {
        seed,
        rate_limit: 0,
        ..Config::default()
    })
    .await;
    let p = api.get(&format!("/v1/products/{EBOOK}"), ACME_TOKEN).await;
    assert_eq!(p.body["is_deletable"], true);
    bought(&api, &api.create(json!({})).await, json!({})).await;
    let p = api.get(&format!("/v1/products/{EBOOK}"), ACME_TOKEN).await;
    assert_eq!(p.body["is_deletable"], false);
    let r = api
        .delete(&format!("/v1/products/{EBOOK}"), "polar_oat_productswriter")
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["error"], "ProductNotDeletable");
    // Pro Monthly has no order and stays deletable.
    let p = api
        .get(&format!("/v1/products/{MONTHLY}"), ACME_TOKEN)
        .await;
    assert_eq!(p.body["is_deletable"], true);
}

#[tokio::test]
async fn orders_are_soft_state_reset_with_the_rest() {
    let api = Api::start().await;
    let link = api.create(json!({})).await;
    let order = api
        .emu
        .buy(
            id(&link),
            BuyOptions {
                query: query(&[("utm_source", "ads")]),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(order["metadata"], json!({"utm_source": "ads"}));
    assert_eq!(api.emu.order(id(&order)).unwrap(), order);
    assert_eq!(api.emu.orders().len(), 1);
    let r = api
        .send(Method::GET, "/__emulator/orders", None, None)
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = api
        .send(
            Method::GET,
            &format!("/__emulator/orders/{}", id(&order)),
            None,
            None,
        )
        .await;
    assert_eq!(r.body, order);
    // Controls are not counted.
    assert!(api.emu.counters().keys().all(|k| !k.contains("orders")));
    api.emu.reset();
    assert!(api.emu.orders().is_empty());
    assert!(api.emu.order(id(&order)).is_none());
    let r = api.get("/v1/orders/", ACME_TOKEN).await;
    assert_eq!(r.body["pagination"]["total_count"], 0);
    let d = api
        .get(&format!("/v1/discounts/{LAUNCH20}"), ACME_TOKEN)
        .await;
    assert_eq!(d.body["redemptions_count"], 0);
}
