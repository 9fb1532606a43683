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
