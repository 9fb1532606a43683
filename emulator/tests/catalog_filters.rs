//! The product and discount lists filtered as Polar filters them:
//! `metadata[key]`, `query` (ILIKE / LIKE), the other filters, sorting and
//! paging; discounts' redemption fields.
mod common;

use chrono::{DateTime, Utc};
use common::*;
use polar_emulator::{Config, Seed, SeedToken};
use serde_json::json;

fn set(ids: Vec<String>) -> std::collections::BTreeSet<String> {
    ids.into_iter().collect()
}

#[tokio::test]
async fn metadata_values_of_one_key_are_ored_and_keys_anded() {
    let api = Api::start().await;
    let r = api
        .get("/v1/products/?metadata[sku]=ebook", ACME_TOKEN)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(item_ids(&r), [EBOOK]);
    let r = api
        .get(
            "/v1/products/?metadata[sku]=ebook&metadata[sku]=team&sorting=created_at",
            ACME_TOKEN,
        )
        .await;
    assert_eq!(item_ids(&r), [EBOOK, TEAM], "one key's values are OR-ed");
    let r = api
        .get(
            "/v1/products/?metadata[plan]=pro&metadata[months]=12",
            ACME_TOKEN,
        )
        .await;
    assert_eq!(item_ids(&r), [YEARLY], "different keys are AND-ed");
    let r = api
        .get(
            "/v1/products/?metadata[plan]=pro&metadata[sku]=team",
            ACME_TOKEN,
        )
        .await;
    assert_eq!(item_ids(&r), Vec::<String>::new());
    assert_eq!(r.body["pagination"]["total_count"], 0);
    // Percent-encoded brackets are the same parameter.
    let r = api
        .get("/v1/products/?metadata%5Bsku%5D=team", ACME_TOKEN)
        .await;
    assert_eq!(item_ids(&r), [TEAM]);
}

#[tokio::test]
async fn metadata_values_are_compared_as_text() {
    let api = Api::start().await;
    let r = api
        .get(
            "/v1/products/?metadata[months]=1&sorting=created_at",
            ACME_TOKEN,
        )
        .await;
    assert_eq!(item_ids(&r), [MONTHLY, TEAM], "the integer 1 matches \"1\"");
    for text in ["1.0", "01", " 1"] {
        let r = api
            .get(
                &format!("/v1/products/?metadata[months]={text}"),
                ACME_TOKEN,
            )
            .await;
        assert_eq!(item_ids(&r), Vec::<String>::new(), "{text:?} is not \"1\"");
    }
    let r = api
        .get("/v1/products/?metadata[metered]=true", ACME_TOKEN)
        .await;
    assert_eq!(item_ids(&r), [CREDITS], "a boolean is \"true\"");
    let r = api
        .get("/v1/products/?metadata[metered]=True", ACME_TOKEN)
        .await;
    assert_eq!(item_ids(&r), Vec::<String>::new());
    let r = api
        .get("/v1/products/?metadata[sku]=EBOOK", ACME_TOKEN)
        .await;
    assert_eq!(item_ids(&r), Vec::<String>::new(), "case-sensitive");
    let r = api.get("/v1/products/?metadata[sku]=", ACME_TOKEN).await;
    assert_eq!(item_ids(&r), Vec::<String>::new(), "an empty value");
    let r = api.get("/v1/products/?metadata[nope]=x", ACME_TOKEN).await;
    assert_eq!(item_ids(&r), Vec::<String>::new(), "an absent key is NULL");
}

#[tokio::test]
async fn parameters_that_are_not_metadata_keys_are_ignored_and_never_422() {
    let api = Api::start().await;
    for query in [
        "metadata[]=x",
        "metadata=x",
        "metadatax[sku]=ebook",
        "meta[sku]=ebook",
        "metadata[sku=ebook",
    ] {
        let r = api
            .get(&format!("/v1/products/?{query}&limit=100"), ACME_TOKEN)
            .await;
        assert_eq!(r.status, 200, "{query}");
        assert_eq!(r.body["pagination"]["total_count"], 8, "{query}");
    }
    // Anything after the first `]` is ignored, as Python's re.match does.
    let r = api
        .get("/v1/products/?metadata[sku]extra=team", ACME_TOKEN)
        .await;
    assert_eq!(item_ids(&r), [TEAM]);
}

#[tokio::test]
async fn each_organization_has_its_own_ebook_and_pro_monthly() {
    let api = Api::start().await;
    let r = api
        .get(
            "/v1/products/?metadata[sku]=ebook&metadata[sku]=pro-monthly",
            GLOBEX_TOKEN,
        )
        .await;
    assert_eq!(item_ids(&r), [GLOBEX_MONTHLY, GLOBEX_EBOOK]);
    assert_eq!(r.body["items"][1]["name"], "Ebook");
    let r = api
        .get("/v1/products/?metadata[sku]=ebook", USER_TOKEN)
        .await;
    assert_eq!(item_ids(&r), [GLOBEX_EBOOK, EBOOK], "newest first");
    let r = api
        .get(
            &format!("/v1/products/?metadata[sku]=ebook&organization_id={ACME}"),
            USER_TOKEN,
        )
        .await;
    assert_eq!(item_ids(&r), [EBOOK]);
    let r = api
        .get("/v1/products/?query=pro%20monthly", USER_TOKEN)
        .await;
    assert_eq!(
        set(item_ids(&r)),
        set(vec![MONTHLY.into(), GLOBEX_MONTHLY.into()])
    );
}

#[tokio::test]
async fn product_query_is_an_ilike_substring_with_its_wildcards() {
    let api = Api::start().await;
    for (query, want) in [
        ("pro", vec![MONTHLY, YEARLY]),
        ("PRO%20Y", vec![YEARLY]),
        ("pr_", vec![MONTHLY, YEARLY]),
        ("p_o", vec![MONTHLY, YEARLY, DRAFT]),
        ("h%25ly", vec![MONTHLY]),
        ("yearly", vec![YEARLY]),
        ("nothing", vec![]),
    ] {
        let r = api
            .get(
                &format!("/v1/products/?query={query}&sorting=name"),
                ACME_TOKEN,
            )
            .await;
        assert_eq!(item_ids(&r), want, "query={query}");
    }
    // A `%` matches any run, so this is every product.
    let r = api
        .get("/v1/products/?query=%25&limit=100", ACME_TOKEN)
        .await;
    assert_eq!(r.body["pagination"]["total_count"], 8);
    // An escaped `_` is a literal underscore, which no name has.
    let r = api.get("/v1/products/?query=%5C_", ACME_TOKEN).await;
    assert_eq!(r.body["pagination"]["total_count"], 0);
}

#[tokio::test]
async fn visibility_archived_and_ids_filter_and_bad_values_are_422() {
    let api = Api::start().await;
    let r = api
        .get(
            "/v1/products/?visibility=draft&visibility=private&sorting=created_at",
            ACME_TOKEN,
        )
        .await;
    assert_eq!(item_ids(&r), [DRAFT, CONSULTING]);
    let r = api
        .get("/v1/products/?is_archived=false&limit=100", ACME_TOKEN)
        .await;
    assert_eq!(r.body["pagination"]["total_count"], 7);
    assert!(!item_ids(&r).contains(&ARCHIVED.to_string()));
    let r = api
        .get(
            &format!("/v1/products/?id={GLOBEX_EBOOK}&id={EBOOK}&sorting=created_at"),
            USER_TOKEN,
        )
        .await;
    assert_eq!(item_ids(&r), [EBOOK, GLOBEX_EBOOK]);
    let r = api
        .get(
            "/v1/products/?visibility=public&visibility=secret",
            ACME_TOKEN,
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["error"], "RequestValidationError");
    assert_eq!(r.detail()[0]["type"], "enum");
    assert_eq!(r.detail()[0]["loc"], json!(["query", "visibility", 1]));
    assert_eq!(
        r.detail()[0]["msg"],
        "Input should be 'draft', 'private' or 'public'"
    );
    let r = api.get("/v1/products/?id=nope", ACME_TOKEN).await;
    assert_eq!(r.detail()[0]["loc"], json!(["query", "id", 0]));
    assert_eq!(r.detail()[0]["type"], "uuid_parsing");
    let r = api.get("/v1/products/?organization_id=1", ACME_TOKEN).await;
    assert_eq!(r.detail()[0]["loc"], json!(["query", "organization_id", 0]));
}

#[tokio::test]
async fn products_sort_by_the_first_price_with_nulls_last_and_page() {
    let api = Api::start().await;
    // Fixed and custom amounts; the seat-based Team and unit-based API
    // Credits have no amount (NULL): last ascending, first descending.
    let r = api
        .get("/v1/products/?sorting=price_amount&limit=100", ACME_TOKEN)
        .await;
    assert_eq!(
        item_ids(&r),
        [
            MONTHLY, EBOOK, DRAFT, ARCHIVED, CONSULTING, YEARLY, TEAM, CREDITS
        ]
    );
    let r = api
        .get("/v1/products/?sorting=-price_amount&limit=100", ACME_TOKEN)
        .await;
    assert_eq!(
        item_ids(&r),
        [
            TEAM, CREDITS, YEARLY, CONSULTING, ARCHIVED, DRAFT, EBOOK, MONTHLY
        ]
    );
    // custom (2) before fixed (3); ties keep creation order.
    let r = api
        .get(
            "/v1/products/?sorting=price_amount_type&limit=100",
            ACME_TOKEN,
        )
        .await;
    assert_eq!(
        item_ids(&r),
        [
            CONSULTING, EBOOK, MONTHLY, YEARLY, ARCHIVED, DRAFT, TEAM, CREDITS
        ]
    );
    // Default -created_at, in pages of 3.
    let page = |n: usize| format!("/v1/products/?limit=3&page={n}");
    let r = api.get(&page(1), ACME_TOKEN).await;
    assert_eq!(item_ids(&r), [CREDITS, CONSULTING, DRAFT]);
    assert_eq!(
        r.body["pagination"],
        json!({"total_count": 8, "max_page": 3})
    );
    let r = api.get(&page(3), ACME_TOKEN).await;
    assert_eq!(item_ids(&r), [MONTHLY, EBOOK]);
    let r = api.get(&page(4), ACME_TOKEN).await;
    assert_eq!(item_ids(&r), Vec::<String>::new());
}

#[tokio::test]
async fn products_read_with_products_read_or_products_write() {
    let mut seed = Seed::demo();
    seed.tokens.push(SeedToken {
        token: "polar_oat_productswriteronly".into(),
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
    let r = api
        .get(
            "/v1/products/?metadata[sku]=ebook",
            "polar_oat_productswriteronly",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(item_ids(&r), [EBOOK]);
    let r = api.get("/v1/products/", ACME_NO_ORG_TOKEN).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["error"], "insufficient_scope");
}

#[tokio::test]
async fn discount_query_is_name_like_or_code_ilike() {
    let api = Api::start().await;
    let q = |s: &str| format!("/v1/discounts/?query={s}&sorting=created_at");
    assert_eq!(
        item_ids(&api.get(&q("launch"), ACME_TOKEN).await),
        [LAUNCH20]
    );
    assert_eq!(
        item_ids(&api.get(&q("launch"), USER_TOKEN).await),
        [LAUNCH20, GLOBEX_LAUNCH20],
        "code ILIKE in both organisations"
    );
    assert_eq!(
        item_ids(&api.get(&q("Launch%2020"), USER_TOKEN).await),
        [LAUNCH20, GLOBEX_LAUNCH20],
        "name LIKE"
    );
    assert_eq!(
        item_ids(&api.get(&q("launch%2020"), USER_TOKEN).await),
        Vec::<String>::new(),
        "the name is case-sensitive and no code has a space"
    );
    assert_eq!(item_ids(&api.get(&q("t_am"), ACME_TOKEN).await), [TEAM5]);
    assert_eq!(
        item_ids(&api.get(&q("20%25"), ACME_TOKEN).await),
        [LAUNCH20],
        "`20%` is `20` then anything"
    );
    let r = api
        .get(
            &format!("/v1/discounts/?query=LAUNCH20&organization_id={GLOBEX}"),
            USER_TOKEN,
        )
        .await;
    assert_eq!(item_ids(&r), [GLOBEX_LAUNCH20]);
    let r = api
        .get("/v1/discounts/?organization_id=x", ACME_TOKEN)
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.detail()[0]["loc"], json!(["query", "organization_id", 0]));
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn seed_with_redemptions() -> Config {
    let mut seed = Seed::demo();
    for d in &mut seed.discounts {
        match d.id.to_string().as_str() {
            LAUNCH20 => {
                d.starts_at = Some(at("2026-02-01T00:00:00Z"));
                d.ends_at = Some(at("2026-03-01T12:30:00.250000Z"));
                d.max_redemptions = Some(100);
                d.redemptions_count = 7;
            }
            TEAM5 => d.redemptions_count = 3,
            _ => {}
        }
    }
    Config {
        seed,
        rate_limit: 0,
        ..Config::default()
    }
}

#[tokio::test]
async fn discounts_carry_their_seeded_window_and_redemptions() {
    let api = Api::with(seed_with_redemptions()).await;
    let r = api
        .get(&format!("/v1/discounts/{LAUNCH20}"), ACME_TOKEN)
        .await;
    assert_eq!(r.body["starts_at"], "2026-02-01T00:00:00Z");
    assert_eq!(r.body["ends_at"], "2026-03-01T12:30:00.250000Z");
    assert_eq!(r.body["max_redemptions"], 100);
    assert_eq!(r.body["redemptions_count"], 7);
    let r = api.get(&format!("/v1/discounts/{TEAM5}"), ACME_TOKEN).await;
    assert_eq!(r.body["starts_at"], json!(null));
    assert_eq!(r.body["max_redemptions"], json!(null));
    assert_eq!(r.body["redemptions_count"], 3);
    let link = api.create(json!({"discount_id": LAUNCH20})).await;
    assert_eq!(link["discount"]["ends_at"], "2026-03-01T12:30:00.250000Z");
    assert_eq!(link["discount"]["redemptions_count"], 7);
    assert_eq!(link["discount"]["max_redemptions"], 100);
}

#[tokio::test]
async fn discounts_sort_by_redemptions_and_ends_at_with_nulls_last() {
    let api = Api::with(seed_with_redemptions()).await;
    let r = api
        .get("/v1/discounts/?sorting=-redemptions_count", ACME_TOKEN)
        .await;
    assert_eq!(item_ids(&r), [LAUNCH20, TEAM5]);
    let r = api.get("/v1/discounts/?sorting=ends_at", ACME_TOKEN).await;
    assert_eq!(item_ids(&r), [LAUNCH20, TEAM5], "NULL last ascending");
    let r = api.get("/v1/discounts/?sorting=-ends_at", ACME_TOKEN).await;
    assert_eq!(item_ids(&r), [TEAM5, LAUNCH20], "NULL first descending");
    let r = api.get("/v1/discounts/", USER_TOKEN).await;
    assert_eq!(
        item_ids(&r),
        [GLOBEX_LAUNCH20, GLOBEX10, TEAM5, LAUNCH20],
        "newest first by default"
    );
    let r = api.get("/v1/discounts/?limit=3&page=2", USER_TOKEN).await;
    assert_eq!(item_ids(&r), [LAUNCH20]);
    assert_eq!(
        r.body["pagination"],
        json!({"total_count": 4, "max_page": 2})
    );
}

#[test]
fn seeded_discount_limits_are_checked() {
    let mut seed = Seed::demo();
    seed.discounts[0].max_redemptions = Some(0);
    let err = format!("{:#}", seed.validate().unwrap_err());
    assert!(err.contains("max_redemptions"), "{err}");
    let mut seed = Seed::demo();
    seed.products[0]
        .metadata
        .insert("nested".into(), json!({"a": 1}));
    let err = format!("{:#}", seed.validate().unwrap_err());
    assert!(err.contains("metadata"), "{err}");
}
