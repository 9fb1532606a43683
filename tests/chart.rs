//! The Helm chart, `charts/checkout-link-operator`, with the real tools: helm and kubeconform
//! built from their pinned Go modules, and a real kube-apiserver (testenv).
//!
//! - `helm lint --strict` and `helm template`, with the defaults and with
//!   `ci/all-on-values.yaml`; bad values fail with a message naming the field;
//! - kubeconform, offline and strict, against schemas generated from the test apiserver's
//!   OpenAPI document (CheckoutLink and prometheus-operator's ServiceMonitor CRDs included);
//! - server-side dry-run, then apply, of both renderings to the apiserver, in namespaces that
//!   enforce the `restricted` Pod Security Standard;
//! - `helm install` → `helm upgrade` → `helm uninstall` on a private apiserver: the upgrade
//!   updates the CRD, the uninstall keeps it and the CheckoutLinks;
//! - the chart's copy of the CRD is the generated one; every value is typed in
//!   values.schema.json and documented in the chart README; the Deployment's arguments are
//!   flags the operator parses, with the values given.
//!
//! Rendering tests are here; `chart/flags.rs` (operator flags and credentials),
//! `chart/consistency.rs` (CRD copy, schema, README), `chart/cluster.rs` (kubeconform and the
//! apiservers), `chart/kubeconform_schemas.rs` (OpenAPI → kubeconform schemas) and
//! `chart/support.rs` (manifests, kubectl) hold the rest; the tools and `helm template` are
//! `common/helm.rs`, shared with `chart_rbac.rs`.

#[path = "chart/cluster.rs"]
mod cluster;
mod common;
#[path = "chart/consistency.rs"]
mod consistency;
#[path = "chart/flags.rs"]
mod flags;
#[path = "chart/kubeconform_schemas.rs"]
mod kubeconform_schemas;
#[path = "chart/support.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use support::*;

#[test]
fn helm_lint_passes_strictly_with_the_defaults_and_with_everything_on() {
    let kube_version = pinned("KUBERNETES_VERSION");
    let all_on = all_on();
    for extra in [vec![], vec!["--values", all_on.to_str().unwrap()]] {
        let chart = chart();
        let mut args = vec![
            "lint",
            "--strict",
            "--kube-version",
            &kube_version,
            chart.to_str().unwrap(),
        ];
        args.extend(extra.iter().copied());
        let out = run("helm", &args, None);
        assert!(
            out.ok && out.stdout.contains("0 chart(s) failed"),
            "helm {args:?}:\n{}{}",
            out.stdout,
            out.stderr
        );
        assert!(!out.stdout.contains("[WARNING]"), "{}", out.stdout);
    }
}

#[test]
fn bad_values_fail_rendering_with_a_message_naming_the_field() {
    let cases: &[(&[&str], &str)] = &[
        (&["--set", "replicaCount=two"], "/replicaCount"),
        (&["--set", "replicaCount=-1"], "/replicaCount"),
        (&["--set", "operator.logFormat=xml"], "/operator/logFormat"),
        (
            &["--set", "image.pullPolicy=Sometimes"],
            "/image/pullPolicy",
        ),
        (
            &["--set", "operator.resyncInterval=ten minutes"],
            "/operator/resyncInterval",
        ),
        (
            &["--set", "leaderElection.leaseDuration=15 s"],
            "/leaderElection/leaseDuration",
        ),
        (
            &["--set", "operator.polarRateShare=1.5"],
            "/operator/polarRateShare",
        ),
        (
            &["--set", "operator.concurrency=0"],
            "/operator/concurrency",
        ),
        (&["--set", "metrics.port=80"], "/metrics/port"),
        (
            &["--set", "credentials.server=staging"],
            "/credentials/server",
        ),
        (
            &["--set", "podDisruptionBudget.minAvailable=half"],
            "/podDisruptionBudget/minAvailable",
        ),
        (&["--set", "replicas=2"], "'replicas'"),
        (&["--set", "operator.namespace=shop"], "'namespace'"),
        (
            &["--set", "credentials.create=true"],
            "credentials.token is required when credentials.create is true",
        ),
        (
            &[
                "--set",
                "credentials.create=true,credentials.token=t,credentials.existingSecret=polar",
            ],
            "credentials.existingSecret, not both",
        ),
        (
            &[
                "--set",
                "podDisruptionBudget.enabled=true,podDisruptionBudget.minAvailable=1,podDisruptionBudget.maxUnavailable=1",
            ],
            "minAvailable or maxUnavailable, not both",
        ),
        (
            &["--set", "serviceAccount.create=false"],
            "serviceAccount.name is required when serviceAccount.create is false",
        ),
        (
            &["--set", "leaderElection.enabled=false,replicaCount=2"],
            "more than one replica needs leaderElection.enabled=true",
        ),
    ];
    for (args, expected) in cases {
        match render("bad", "ops", args) {
            Ok(_) => panic!("helm template {args:?} succeeded"),
            Err(e) => assert!(
                e.contains(expected),
                "helm template {args:?}: expected {expected:?} in:\n{e}"
            ),
        }
    }
    // The chart's kubeVersion: the ValidatingAdmissionPolicy needs Kubernetes >= 1.30.
    let out = run(
        "helm",
        &[
            "template",
            "old",
            chart().to_str().unwrap(),
            "--kube-version",
            "v1.29.9",
        ],
        None,
    );
    assert!(
        !out.ok && out.stderr.contains("kubeVersion"),
        "{}",
        out.stderr
    );
}

/// With leader election, upgrades roll (the new pod waits for the Lease); without it, nothing
/// may overlap two controllers: the old pod stops before the new one starts.
#[test]
fn without_leader_election_one_replica_and_the_recreate_strategy() {
    let elected = one(&objects("clo", "ops", &[]), "Deployment").clone();
    assert_eq!(
        elected["spec"].get("strategy"),
        None,
        "the default RollingUpdate"
    );
    let single = objects("clo", "ops", &["--set", "leaderElection.enabled=false"]);
    let deployment = one(&single, "Deployment");
    assert_eq!(deployment["spec"]["strategy"], json!({"type": "Recreate"}));
    assert_eq!(deployment["spec"]["replicas"], 1);
    let paused = objects(
        "clo",
        "ops",
        &["--set", "leaderElection.enabled=false,replicaCount=0"],
    );
    assert_eq!(one(&paused, "Deployment")["spec"]["replicas"], 0);
    let ha = objects("clo", "ops", &["--set", "replicaCount=3"]);
    assert_eq!(one(&ha, "Deployment")["spec"]["replicas"], 3);
}

#[test]
fn the_defaults_render_the_operator_and_its_crd_only() {
    let objects = objects("clo", "ops", &[]);
    assert_eq!(
        kinds_and_names(&objects),
        [
            "ClusterRole/clo-checkout-link-operator-ops",
            "ClusterRoleBinding/clo-checkout-link-operator-ops",
            "CustomResourceDefinition/checkoutlinks.polar.sh",
            "Deployment/clo-checkout-link-operator",
            "Role/clo-checkout-link-operator-leader-election",
            "RoleBinding/clo-checkout-link-operator-leader-election",
            "ServiceAccount/clo-checkout-link-operator",
            "ValidatingAdmissionPolicy/checkoutlinks.polar.sh-metadata",
            "ValidatingAdmissionPolicyBinding/checkoutlinks.polar.sh-metadata",
        ]
    );
    let deployment = one(&objects, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 1);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "clo-checkout-link-operator");
    let container = container(&objects);
    assert_eq!(
        container["image"],
        format!(
            "ghcr.io/polar-operators/checkout-link-operator:{}",
            app_version()
        )
    );
    // Hardened.
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(
        container["resources"],
        json!({"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}})
    );
    // Probes on the metrics port.
    assert_eq!(
        container["ports"],
        json!([{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "metrics"})
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "metrics"})
    );
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
}

#[test]
fn the_optional_objects_select_the_operator_pods() {
    let all = objects("allon", "ops", &["--values", all_on().to_str().unwrap()]);
    let pod_labels = labels(&one(&all, "Deployment")["spec"]["template"]["metadata"]);
    let selects_pods = |selector: &Value, what: &str| {
        let wanted: BTreeMap<String, String> = serde_json::from_value(selector.clone()).unwrap();
        assert!(!wanted.is_empty(), "{what} selects nothing");
        for (k, v) in &wanted {
            assert_eq!(
                pod_labels.get(k),
                Some(v),
                "{what} selects {k}={v}, pods have {pod_labels:?}"
            );
        }
    };
    let service = one(&all, "Service");
    selects_pods(&service["spec"]["selector"], "the Service");
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "metrics", "port": 8443, "targetPort": "metrics", "protocol": "TCP"}])
    );
    let monitor = one(&all, "ServiceMonitor");
    let service_labels = labels(&service["metadata"]);
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(
            service_labels.get(k).map(String::as_str),
            v.as_str(),
            "ServiceMonitor selector {k}"
        );
    }
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"],
        json!(["ops"])
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");

    let budget = one(&all, "PodDisruptionBudget");
    selects_pods(
        &budget["spec"]["selector"]["matchLabels"],
        "the PodDisruptionBudget",
    );
    assert_eq!(budget["spec"]["minAvailable"], 1);
    assert!(budget["spec"].get("maxUnavailable").is_none());

    let policy = one(&all, "NetworkPolicy");
    selects_pods(
        &policy["spec"]["podSelector"]["matchLabels"],
        "the NetworkPolicy",
    );
    let ingress = policy["spec"]["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 1);
    assert_eq!(
        ingress[0]["ports"],
        json!([{"port": "metrics", "protocol": "TCP"}])
    );
    assert_eq!(
        ingress[0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "monitoring"
    );
    let egress_ports: BTreeSet<String> = policy["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rule| rule["ports"].as_array().unwrap().clone())
        .map(|p| format!("{}/{}", p["protocol"].as_str().unwrap(), p["port"]))
        .collect();
    let expected = ["UDP/53", "TCP/53", "TCP/443", "TCP/6443", "TCP/8787"];
    assert_eq!(
        egress_ports,
        expected.iter().map(|s| s.to_string()).collect()
    );

    // The Service also comes with the ServiceMonitor alone; the budget defaults to maxUnavailable 1.
    let alone = objects(
        "clo",
        "ops",
        &[
            "--set",
            "metrics.serviceMonitor.enabled=true,podDisruptionBudget.enabled=true",
        ],
    );
    one(&alone, "Service");
    assert_eq!(
        one(&alone, "PodDisruptionBudget")["spec"]["maxUnavailable"],
        1
    );
    for (value, expected) in [("0", json!(0)), ("50%", json!("50%"))] {
        let set =
            format!("podDisruptionBudget.enabled=true,podDisruptionBudget.maxUnavailable={value}");
        let rendered = objects("clo", "ops", &["--set", &set]);
        let budget = one(&rendered, "PodDisruptionBudget");
        assert_eq!(budget["spec"]["maxUnavailable"], expected, "{set}");
    }
}

#[test]
fn cluster_scoped_names_stay_unique_per_namespace_when_names_are_long() {
    let role_name = |release: &str, namespace: &str| {
        let objects = objects(release, namespace, &[]);
        let name = one(&objects, "ClusterRole")["metadata"]["name"]
            .as_str()
            .expect("a ClusterRole name")
            .to_owned();
        assert!(name.len() <= 63, "{name} is longer than 63 characters");
        name
    };
    assert_eq!(role_name("shop", "ops"), "shop-checkout-link-operator-ops");
    let long = "storefront-production";
    let a = role_name(long, "shop-eu-west-1-production-a");
    let b = role_name(long, "shop-eu-west-1-production-b");
    assert_ne!(a, b, "two namespaces share the ClusterRole name");
    assert!(
        a.starts_with("storefront-production-checkout-link-operator-"),
        "{a}"
    );
}
