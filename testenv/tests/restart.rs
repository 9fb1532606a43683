//! Restarting kube-apiserver while etcd keeps running: the same address, certificates and data
//! afterwards, so a client made before the restart keeps working; kube-controller-manager
//! reconnects by itself.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams};
use support::{config_map, eventually, namespace_phase};
use testenv::{ControlPlane, Options, Stop};

fn apiserver_pid(plane: &ControlPlane) -> u32 {
    std::fs::read_to_string(plane.dir().join("pids"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("kube-apiserver "))
        .expect("kube-apiserver in the pids file")
        .parse()
        .unwrap()
}

/// What must hold after each restart, through the client made before the first one.
async fn still_there(client: &kube::Client, ns: &str, objects: &[&str]) {
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("the old client lists namespaces again");
    assert!(
        namespaces
            .items
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some(ns))
    );
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), ns);
    for name in objects {
        assert!(
            config_maps.get_opt(name).await.unwrap().is_some(),
            "{ns}/{name} was written before the restart and etcd kept it"
        );
    }
}

#[tokio::test]
async fn the_apiserver_restarts_on_its_port_and_etcd_keeps_the_data() {
    let plane = tokio::task::spawn_blocking(|| {
        ControlPlane::start(Options {
            controller_manager: true,
            ..Options::default()
        })
    })
    .await
    .unwrap()
    .expect("a control plane of this test's own");
    let client = plane.client().await.unwrap();
    let (_, ns) = plane.namespace("restart").await.unwrap();
    config_map(&client, &ns, "before").await;
    let first_pid = apiserver_pid(&plane);

    // 1. SIGTERM, by hand: it shuts down by itself (exit status 0, not the SIGKILL that
    // follows an overrun grace), and while it is down, requests fail.
    let status = plane.stop_apiserver(Stop::Graceful).await.unwrap();
    assert!(status.success(), "kube-apiserver after SIGTERM: {status}");
    let down = Api::<Namespace>::all(client.clone()).get("default").await;
    assert!(
        down.is_err(),
        "a request while the apiserver is stopped: {down:?}"
    );
    plane.start_apiserver().await.unwrap();
    let second_pid = apiserver_pid(&plane);
    assert_ne!(first_pid, second_pid, "a new kube-apiserver process");
    still_there(&client, &ns, &["before"]).await;
    config_map(&client, &ns, "between").await;

    // 2. SIGKILL (a crash), down for two seconds.
    plane
        .restart_apiserver_with(Stop::Kill, Duration::from_secs(2))
        .await
        .unwrap();
    assert_ne!(apiserver_pid(&plane), second_pid);
    still_there(&client, &ns, &["before", "between"]).await;
    config_map(&client, &ns, "after").await;

    // 3. The plain graceful restart, straight back up.
    plane.restart_apiserver(Duration::ZERO).await.unwrap();
    still_there(&client, &ns, &["before", "between", "after"]).await;

    // A client made now agrees with the old one.
    let fresh = plane.client().await.unwrap();
    still_there(&fresh, &ns, &["before", "between", "after"]).await;

    // kube-controller-manager survived the restarts: it still finalises a namespace. Its
    // informers come back on client-go's reflector backoff (800 ms doubling to 30 s), so it
    // may take half a minute to notice the deletion; hence more room than on a calm plane.
    Api::<Namespace>::all(client.clone())
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the namespace to be finalised after the restarts",
        Duration::from_secs(120),
        async || match namespace_phase(&client, &ns).await {
            None => Ok(()),
            Some(phase) => Err(format!("{ns} is {phase}")),
        },
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(plane.dir().join("pids"))
            .unwrap()
            .lines()
            .count(),
        3,
        "etcd, kube-apiserver, kube-controller-manager"
    );
    tokio::task::spawn_blocking(move || drop(plane))
        .await
        .unwrap();
}
