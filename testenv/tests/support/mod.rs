//! What the testenv tests share: one way to wait (a deadline on something observable, scaled by
//! `TEST_TIMEOUT_SCALE`, failing with what was last seen) and small object builders.
#![allow(dead_code)]

use std::fmt::Display;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::time::Instant;

/// Polls `probe` every 100 ms until it gives `Ok`, for at most `timeout` (scaled); panics with
/// the last `Err`: what it saw instead.
pub async fn eventually<T, Seen: Display>(
    what: &str,
    timeout: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, Seen>,
) -> T {
    let timeout = testenv::scaled(timeout);
    let deadline = Instant::now() + timeout;
    loop {
        let seen = match probe().await {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last seen: {seen}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        ..ObjectMeta::default()
    }
}

pub async fn config_map(client: &kube::Client, ns: &str, name: &str) -> ConfigMap {
    let cm = ConfigMap {
        metadata: meta(name),
        data: Some([("k".to_string(), "v".to_string())].into()),
        ..ConfigMap::default()
    };
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap_or_else(|e| panic!("creating ConfigMap {ns}/{name}: {e}"))
}

/// An Opaque Secret, owned by `owner` when given.
pub async fn secret(
    client: &kube::Client,
    ns: &str,
    name: &str,
    owner: Option<OwnerReference>,
) -> Secret {
    let mut metadata = meta(name);
    metadata.owner_references = owner.map(|o| vec![o]);
    let secret = Secret {
        metadata,
        string_data: Some([("k".to_string(), "v".to_string())].into()),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap_or_else(|e| panic!("creating Secret {ns}/{name}: {e}"))
}

/// An owner reference to a ConfigMap.
pub fn owned_by(cm: &ConfigMap) -> OwnerReference {
    OwnerReference {
        api_version: "v1".to_string(),
        kind: "ConfigMap".to_string(),
        name: cm
            .metadata
            .name
            .clone()
            .expect("a created ConfigMap has a name"),
        uid: cm
            .metadata
            .uid
            .clone()
            .expect("a created ConfigMap has a uid"),
        ..OwnerReference::default()
    }
}

/// The namespace's phase, or `None` once it is gone.
pub async fn namespace_phase(client: &kube::Client, name: &str) -> Option<String> {
    Api::<Namespace>::all(client.clone())
        .get_opt(name)
        .await
        .unwrap_or_else(|e| panic!("reading namespace {name}: {e}"))
        .map(|ns| ns.status.and_then(|s| s.phase).unwrap_or_default())
}
