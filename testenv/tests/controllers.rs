//! kube-controller-manager in [`ControlPlane::shared_with_controllers`]: a deleted namespace is
//! finalised (and only there: the plain shared plane keeps it Terminating), owner references
//! are garbage-collected, service-account token Secrets are filled with tokens the apiserver
//! accepts.

mod support;

use std::time::Duration;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use support::{config_map, eventually, meta, namespace_phase, owned_by, secret};
use testenv::{ControlPlane, Stop};

/// Namespace deletion is a few seconds of work for the namespace controller; a minute leaves
/// room for a loaded 2-core machine (before `TEST_TIMEOUT_SCALE`).
const GONE_WITHIN: Duration = Duration::from_secs(60);

async fn names<K>(api: &Api<K>) -> Vec<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default())
        .await
        .expect("listing")
        .items
        .iter()
        .filter_map(|o| o.meta().name.clone())
        .collect()
}

#[tokio::test]
async fn a_deleted_namespace_is_finalised_only_where_the_controller_manager_runs() {
    let with = ControlPlane::shared_with_controllers();
    let without = ControlPlane::shared();
    assert!(with.has_controller_manager() && !without.has_controller_manager());
    let (managed, managed_ns) = with.namespace("deleted with kcm").await.unwrap();
    let (plain, plain_ns) = without.namespace("deleted without kcm").await.unwrap();

    for (client, ns) in [(&managed, &managed_ns), (&plain, &plain_ns)] {
        config_map(client, ns, "settings").await;
        secret(client, ns, "credentials", None).await;
        Api::<Namespace>::all(client.clone())
            .delete(ns, &DeleteParams::default())
            .await
            .unwrap();
        assert_eq!(
            namespace_phase(client, ns).await.as_deref(),
            Some("Terminating"),
            "{ns} right after its deletion"
        );
    }

    eventually(
        "the namespace of the plane with kube-controller-manager to be gone",
        GONE_WITHIN,
        async || match namespace_phase(&managed, &managed_ns).await {
            None => Ok(()),
            Some(phase) => Err(format!("{managed_ns} is {phase}")),
        },
    )
    .await;
    // The namespace controller deletes the contents before it drops its finalizer.
    assert!(
        names(&Api::<ConfigMap>::namespaced(managed.clone(), &managed_ns))
            .await
            .is_empty()
    );
    assert!(
        names(&Api::<Secret>::namespaced(managed.clone(), &managed_ns))
            .await
            .is_empty()
    );

    // By then the plane without it has not even begun: still Terminating, contents intact.
    assert_eq!(
        namespace_phase(&plain, &plain_ns).await.as_deref(),
        Some("Terminating")
    );
    assert_eq!(
        names(&Api::<ConfigMap>::namespaced(plain.clone(), &plain_ns)).await,
        ["settings"]
    );
    assert_eq!(
        names(&Api::<Secret>::namespaced(plain.clone(), &plain_ns)).await,
        ["credentials"]
    );
}

#[tokio::test]
async fn objects_whose_owner_is_gone_are_garbage_collected() {
    let plane = ControlPlane::shared_with_controllers();
    let (client, ns) = plane.namespace("garbage collection").await.unwrap();
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);

    // Background propagation (the default): the owner goes at once, the collector follows.
    let owner = config_map(&client, &ns, "owner").await;
    secret(&client, &ns, "dependent", Some(owned_by(&owner))).await;
    secret(&client, &ns, "bystander", None).await;
    config_maps
        .delete("owner", &DeleteParams::default())
        .await
        .unwrap();
    // An object that names an owner already deleted is collected as well.
    secret(&client, &ns, "late-dependent", Some(owned_by(&owner))).await;

    // Foreground propagation: the owner waits (finalizer foregroundDeletion) until the
    // collector has deleted its dependents, so it would never go without the collector.
    let patient = config_map(&client, &ns, "patient-owner").await;
    secret(
        &client,
        &ns,
        "foreground-dependent",
        Some(owned_by(&patient)),
    )
    .await;
    config_maps
        .delete("patient-owner", &DeleteParams::foreground())
        .await
        .unwrap();

    eventually(
        "the dependents and the foreground owner to be deleted",
        GONE_WITHIN,
        async || {
            let left = [names(&secrets).await, names(&config_maps).await].concat();
            match left.iter().any(|n| n != "bystander") {
                false => Ok(()),
                true => Err(format!("still there: {left:?}")),
            }
        },
    )
    .await;
    assert_eq!(
        names(&secrets).await,
        ["bystander"],
        "the unowned Secret stays"
    );
}

#[tokio::test]
async fn a_service_account_token_secret_is_filled_with_a_token_the_apiserver_accepts() {
    let plane = ControlPlane::shared_with_controllers();
    let (client, ns) = plane.namespace("service account token").await.unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &ServiceAccount {
                metadata: meta("robot"),
                ..ServiceAccount::default()
            },
        )
        .await
        .unwrap();
    let mut metadata = meta("robot-token");
    metadata.annotations = Some(
        [(
            "kubernetes.io/service-account.name".to_string(),
            "robot".to_string(),
        )]
        .into(),
    );
    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
    secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata,
                type_: Some("kubernetes.io/service-account-token".to_string()),
                ..Secret::default()
            },
        )
        .await
        .unwrap();

    let (token, ca) = eventually(
        "the token controller to fill robot-token",
        GONE_WITHIN,
        async || {
            let data = secrets
                .get("robot-token")
                .await
                .unwrap()
                .data
                .unwrap_or_default();
            match (data.get("token"), data.get("ca.crt")) {
                (Some(token), Some(ca)) => Ok((token.0.clone(), ca.0.clone())),
                _ => Err(format!("keys {:?}", data.keys().collect::<Vec<_>>())),
            }
        },
    )
    .await;

    // The token is signed with the key the apiserver verifies with, and ca.crt (from
    // --root-ca-file) is the CA that signed the apiserver's serving certificate.
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    \
         certificate-authority-data: {}\nusers:\n- name: robot\n  user:\n    token: {}\n\
         contexts:\n- name: c\n  context:\n    cluster: c\n    user: robot\ncurrent-context: c\n",
        plane.server(),
        b64(&ca),
        String::from_utf8(token).unwrap()
    );
    let robot = testenv::client_from_yaml(&kubeconfig).await.unwrap();
    let review = Api::<SelfSubjectReview>::all(robot)
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap();
    let user = review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username);
    assert_eq!(user, Some(format!("system:serviceaccount:{ns}:robot")));
}

#[tokio::test]
async fn the_shared_planes_refuse_to_stop_their_apiserver() {
    for plane in [
        ControlPlane::shared(),
        ControlPlane::shared_with_controllers(),
    ] {
        let err = plane.stop_apiserver(Stop::Kill).await.unwrap_err();
        assert!(err.to_string().contains("shared"), "{err:#}");
        assert!(plane.restart_apiserver(Duration::ZERO).await.is_err());
        // Still serving.
        let client = plane.client().await.unwrap();
        Api::<Namespace>::all(client).get("default").await.unwrap();
    }
}
