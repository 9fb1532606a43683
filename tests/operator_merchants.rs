//! For merchants: the URL delivered to the website (a ConfigMap), "can this link sell?", and
//! one manifest for sandbox and production (references).

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

async fn config_map(h: &Harness, name: &str) -> Option<ConfigMap> {
    let api: Api<ConfigMap> = Api::namespaced(h.client.clone(), &h.ns);
    api.get_opt(name).await.unwrap()
}

async fn data(h: &Harness, name: &str) -> std::collections::BTreeMap<String, String> {
    config_map(h, name)
        .await
        .and_then(|c| c.data)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_url_is_exported_to_a_shared_config_map_and_its_other_keys_are_kept() {
    let h = Harness::start(
        "export",
        Options {
            resync: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    // A ConfigMap someone else made, with a key of theirs.
    let api: Api<ConfigMap> = Api::namespaced(h.client.clone(), &h.ns);
    let mine: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "site"},
        "data": {"THEME": "dark"}
    }))
    .unwrap();
    api.patch(
        "site",
        &PatchParams::apply("helm").force(),
        &Patch::Apply(&mine),
    )
    .await
    .unwrap();

    h.create(
        "launch",
        json!({"products": [EBOOK], "urlParameters": {"utmSource": "site"},
            "export": {"configMap": "site", "keys": {"shareUrl": "LAUNCH_URL"}}}),
    )
    .await;
    let ready = h.wait_ready("launch").await;
    let share = status(&ready).share_url.clone().unwrap();
    eventually(
        "the share URL in the ConfigMap",
        Duration::from_secs(60),
        async || {
            let d = data(&h, "site").await;
            if d.get("LAUNCH_URL") == Some(&share) {
                Ok(())
            } else {
                Err(format!("{d:?}"))
            }
        },
    )
    .await;
    let d = data(&h, "site").await;
    assert_eq!(
        d.get("THEME").map(String::as_str),
        Some("dark"),
        "their key is kept"
    );
    assert_eq!(
        d.get("launch.id"),
        status(&ready).id.as_ref(),
        "a default key name"
    );
    assert_eq!(status(&ready).exported_to.as_deref(), Some("site"));

    // Recreated out of band: a new URL, and the key follows it.
    h.emulator.delete_link(&id(&ready)).unwrap();
    let after = h
        .wait_for("launch", Duration::from_secs(90), "recreated", |l| {
            l.status.as_ref().and_then(|s| s.share_url.as_ref()) != Some(&share)
                && condition(l, "Ready").is_some_and(|c| c.0 == "True")
        })
        .await;
    let new_share = status(&after).share_url.clone().unwrap();
    eventually(
        "the new share URL in the ConfigMap",
        Duration::from_secs(60),
        async || {
            let d = data(&h, "site").await;
            if d.get("LAUNCH_URL") == Some(&new_share) {
                Ok(())
            } else {
                Err(format!("{d:?}"))
            }
        },
    )
    .await;

    // Deleted: its keys go, theirs and the ConfigMap stay.
    h.delete("launch").await;
    h.wait_gone("launch").await;
    let d = data(&h, "site").await;
    assert_eq!(
        d,
        [("THEME".to_owned(), "dark".to_owned())].into(),
        "only the operator's keys were removed"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_map_the_operator_created_goes_with_its_last_key() {
    let h = Harness::start("export-created", Options::default()).await;
    for name in ["one", "two"] {
        h.create(
            name,
            json!({"products": [EBOOK], "export": {"configMap": "links"}}),
        )
        .await;
    }
    for name in ["one", "two"] {
        h.wait_ready(name).await;
    }
    eventually("both links exported", Duration::from_secs(60), async || {
        let d = data(&h, "links").await;
        if d.contains_key("one.url") && d.contains_key("two.url") {
            Ok(())
        } else {
            Err(format!("{d:?}"))
        }
    })
    .await;
    h.delete("one").await;
    h.wait_gone("one").await;
    let d = data(&h, "links").await;
    assert!(
        !d.contains_key("one.url") && d.contains_key("two.url"),
        "{d:?}"
    );
    h.delete("two").await;
    h.wait_gone("two").await;
    assert!(
        config_map(&h, "links").await.is_none(),
        "the ConfigMap it created is gone"
    );
    h.finish().await;
}

const GLOBEX_TOKEN: &str = "polar_oat_GlobexDemoWriteToken000000000000000033fE7W1";
const NO_ORG_SCOPE_TOKEN: &str = "polar_oat_AcmeDemoNoOrgScopeToken000000000000002EowaP";
const GLOBEX_EBOOK: &str = "a2000000-0000-4000-8000-000000000002";
const GLOBEX_PRO_MONTHLY: &str = "a2000000-0000-4000-8000-000000000003";
const GLOBEX_LAUNCH20: &str = "d2000000-0000-4000-8000-000000000002";

/// The manifest a merchant keeps in Git: no id of either environment in it.
fn portable(secret: &str) -> serde_json::Value {
    json!({
        "products": [{"metadata": {"sku": "ebook"}}, {"name": "Pro Monthly"}],
        "discount": {"presetCode": "launch20"},
        "credentialsSecretRef": {"name": secret}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_manifest_gives_each_organisation_its_own_products_in_the_specs_order() {
    let h = Harness::start("references", Options::default()).await;
    h.put_secret("acme", TOKEN, None).await;
    h.put_secret("globex", GLOBEX_TOKEN, None).await;
    h.create("sandbox", portable("acme")).await;
    h.create("production", portable("globex")).await;
    for (name, products, discount) in [
        ("sandbox", [EBOOK, PRO_MONTHLY], LAUNCH20),
        (
            "production",
            [GLOBEX_EBOOK, GLOBEX_PRO_MONTHLY],
            GLOBEX_LAUNCH20,
        ),
    ] {
        let link = h.wait_ready(name).await;
        let polar = h.polar_link(&id(&link));
        let ids: Vec<&str> = polar["products"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids, products,
            "{name}: the organisation's own products, in order"
        );
        assert_eq!(polar["discount_id"], discount, "{name}");
        let resolved = status(&link).resolved.clone().unwrap();
        assert_eq!(resolved.products, products.map(str::to_owned), "{name}");
        assert_eq!(resolved.discount_id.as_deref(), Some(discount));
        // The spec still names no id.
        assert!(link.spec.products.iter().all(|p| p.id().is_none()));
    }
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_reference_names_its_candidates_and_writes_nothing() {
    let h = Harness::start("ambiguous", Options::default()).await;
    // A second product with the Ebook's sku.
    h.emulator
        .edit_product(PRO_YEARLY, json!({"metadata": {"sku": "ebook"}}))
        .unwrap();
    h.emulator.reset_counters();
    h.create(
        "twins",
        json!({"products": [{"metadata": {"sku": "ebook"}}]}),
    )
    .await;
    let stalled = h
        .wait_condition("twins", "Ready", "False", "Ambiguous")
        .await;
    let message = condition(&stalled, "Ready").unwrap().2;
    for candidate in [EBOOK, PRO_YEARLY, "Ebook", "Pro Yearly"] {
        assert!(
            message.contains(candidate),
            "{candidate} not named: {message}"
        );
    }
    assert!(message.contains("spec.products[0]"), "{message}");
    assert_eq!(h.count(POST), 0, "nothing written: {:?}", h.link_counters());
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_moved_in_polar_is_one_patch_and_the_same_url() {
    let h = Harness::start(
        "moved",
        Options {
            resync: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    h.emulator
        .edit_product(PRO_YEARLY, json!({"metadata": {"sku": "featured"}}))
        .unwrap();
    h.create(
        "featured",
        json!({"products": [{"metadata": {"sku": "featured"}}]}),
    )
    .await;
    let before = h.wait_ready("featured").await;
    assert_eq!(h.polar_link(&id(&before))["products"][0]["id"], PRO_YEARLY);
    h.emulator.reset_counters();
    // The merchant moves the tag to another product in Polar's dashboard.
    h.emulator
        .edit_product(PRO_YEARLY, json!({"metadata": {"sku": "pro-yearly"}}))
        .unwrap();
    h.emulator
        .edit_product(PRO_MONTHLY, json!({"metadata": {"sku": "featured"}}))
        .unwrap();
    let after = h
        .wait_for("featured", Duration::from_secs(60), "re-resolved", |l| {
            l.status
                .as_ref()
                .and_then(|s| s.resolved.as_ref())
                .is_some_and(|r| r.products == [PRO_MONTHLY])
                && condition(l, "Ready").is_some_and(|c| c.0 == "True")
        })
        .await;
    assert_eq!(
        status(&after).url,
        status(&before).url,
        "the same link, the same URL"
    );
    assert_eq!(h.polar_link(&id(&after))["products"][0]["id"], PRO_MONTHLY);
    assert_eq!(
        (h.count(PATCH), h.count(POST)),
        (1, 0),
        "{:?}",
        h.link_counters()
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_without_the_products_scope_say_which_scope_is_missing() {
    let h = Harness::start("no-products-scope", Options::default()).await;
    h.put_secret("narrow", NO_ORG_SCOPE_TOKEN, None).await;
    h.create(
        "narrow",
        json!({"products": [{"name": "Ebook"}], "credentialsSecretRef": {"name": "narrow"}}),
    )
    .await;
    let stalled = h
        .wait_condition("narrow", "Stalled", "True", "ScopeMissing")
        .await;
    let message = condition(&stalled, "Stalled").unwrap().2;
    assert!(message.contains("products:read"), "{message}");
    // Ids need no such scope.
    h.create(
        "by-id",
        json!({"products": [EBOOK], "credentialsSecretRef": {"name": "narrow"}}),
    )
    .await;
    h.wait_ready("by-id").await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_whose_products_are_drafts_cannot_sell_until_one_is_published() {
    let h = Harness::start(
        "sellable",
        Options {
            resync: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    h.create("both", json!({"products": [EBOOK, PRO_MONTHLY]}))
        .await;
    let ready = h.wait_ready("both").await;
    assert_eq!(condition(&ready, "Sellable").unwrap().0, "True");
    h.emulator.reset_counters();
    for product in [EBOOK, PRO_MONTHLY] {
        h.emulator
            .edit_product(product, json!({"visibility": "draft"}))
            .unwrap();
    }
    let unsellable = h
        .wait_condition("both", "Sellable", "False", "ProductsUnavailable")
        .await;
    let message = condition(&unsellable, "Sellable").unwrap().2;
    assert!(
        message.contains("Ebook") && message.contains("is a draft"),
        "{message}"
    );
    assert_eq!(
        condition(&unsellable, "Ready").unwrap().0,
        "True",
        "in sync all the same"
    );
    h.wait_event("both", "ProductsUnavailable").await;
    h.emulator
        .edit_product(EBOOK, json!({"visibility": "public"}))
        .unwrap();
    let some = h
        .wait_condition("both", "Sellable", "True", "SomeProductsUnavailable")
        .await;
    assert!(
        condition(&some, "Sellable")
            .unwrap()
            .2
            .contains("Pro Monthly")
    );
    h.emulator
        .edit_product(PRO_MONTHLY, json!({"visibility": "public"}))
        .unwrap();
    h.wait_condition("both", "Sellable", "True", "Sellable")
        .await;
    // Read from the sweeps: not one call for it.
    assert_eq!(
        h.count(GET) + h.count(POST) + h.count(PATCH),
        0,
        "{:?}",
        h.link_counters()
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_preset_discount_is_reported_with_its_counts() {
    let h = Harness::start(
        "exhausted",
        Options {
            resync: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    h.create(
        "promo",
        json!({"products": [EBOOK], "discount": {"presetId": LAUNCH20}}),
    )
    .await;
    h.wait_ready("promo").await;
    h.emulator
        .edit_discount(
            LAUNCH20,
            json!({"max_redemptions": 100, "redemptions_count": 100}),
        )
        .unwrap();
    let used = h
        .wait_condition("promo", "Sellable", "False", "DiscountExhausted")
        .await;
    let message = condition(&used, "Sellable").unwrap().2;
    assert!(message.contains("100 times of 100"), "{message}");
    h.finish().await;
}
