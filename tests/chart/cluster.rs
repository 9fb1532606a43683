//! The chart against real apiservers: kubeconform with schemas from the apiserver's OpenAPI
//! document, server-side apply under the restricted Pod Security Standard, and the Helm
//! install → upgrade → uninstall lifecycle of the CRD.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

use serde_json::{Value, json};
use testenv::ControlPlane;

use crate::kubeconform_schemas;
use crate::support::*;

/// The shared test apiserver, with prometheus-operator's ServiceMonitor CRD installed too.
fn plane() -> &'static ControlPlane {
    static MONITORING: OnceLock<()> = OnceLock::new();
    let plane = ControlPlane::shared();
    MONITORING.get_or_init(|| {
        let crd = prometheus_operator_crds().join("monitoring.coreos.com_servicemonitors.yaml");
        let kubeconfig = plane.kubeconfig_path();
        kubectl_ok(
            kubeconfig,
            &["apply", "--server-side", "-f", crd.to_str().unwrap()],
            None,
        );
        kubectl_ok(
            kubeconfig,
            &[
                "wait",
                "--for=condition=Established",
                &kubectl_timeout(60),
                "crd/servicemonitors.monitoring.coreos.com",
            ],
            None,
        );
    });
    plane
}

/// A fresh namespace that enforces the `restricted` Pod Security Standard.
fn restricted_namespace(kubeconfig: &Path, name: &str) -> String {
    let name = format!("{name}-{}", std::process::id());
    kubectl_ok(kubeconfig, &["create", "namespace", &name], None);
    kubectl_ok(
        kubeconfig,
        &[
            "label",
            "namespace",
            &name,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/warn=restricted",
        ],
        None,
    );
    name
}

#[test]
fn rendered_manifests_conform_to_the_apiservers_schemas_offline_and_strictly() {
    let plane = plane();
    let scratch = Scratch::new("kubeconform");
    let all_on = all_on();
    let good = [
        ("defaults.yaml", render("kc", "ops", &[]).unwrap()),
        (
            "all-on.yaml",
            render("kc", "ops", &["--values", all_on.to_str().unwrap()]).unwrap(),
        ),
        (
            "examples.yaml",
            std::fs::read_to_string(repo().join("examples/checkoutlinks.yaml")).unwrap(),
        ),
    ];
    // Controls: each has one thing wrong that only a strict, complete schema notices.
    let bad = [
        (
            "deployment.yaml",
            "apps/v1",
            "Deployment",
            json!({"spec": {"replicaz": 2, "selector": {}, "template": {}}}),
            "replicaz",
        ),
        (
            "service.yaml",
            "v1",
            "Service",
            json!({"spec": {"ports": [{"port": "http"}]}}),
            "/spec/ports/0/port",
        ),
        (
            "checkoutlink.yaml",
            "polar.sh/v1alpha1",
            "CheckoutLink",
            json!({"spec": {"products": ["x"], "labell": "typo"}}),
            "labell",
        ),
        (
            "servicemonitor.yaml",
            "monitoring.coreos.com/v1",
            "ServiceMonitor",
            json!({"spec": {"selector": {}, "endpoints": [{"port": "metrics", "intervall": "30s"}]}}),
            "intervall",
        ),
        (
            "crd.yaml",
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            json!({"spec": {"scope": "Namespaced", "group": "g", "names": {"plural": "xs", "kind": "X"}, "versions": [], "preserveUnknownFieldz": true}}),
            "preserveUnknownFieldz",
        ),
    ];
    let mut kinds = BTreeSet::new();
    let mut good_files = Vec::new();
    let mut expected_valid = 0;
    for (name, yaml) in &good {
        for doc in documents(yaml) {
            kinds.insert((
                doc["apiVersion"].as_str().unwrap().to_owned(),
                doc["kind"].as_str().unwrap().to_owned(),
            ));
            expected_valid += 1;
        }
        good_files.push(scratch.write(name, yaml));
    }
    let mut bad_files = Vec::new();
    for (name, api_version, kind, mut object, _) in bad.clone() {
        object["apiVersion"] = json!(api_version);
        object["kind"] = json!(kind);
        object["metadata"] = json!({"name": "control"});
        kinds.insert((api_version.to_owned(), kind.to_owned()));
        bad_files.push(scratch.write(name, &serde_yaml::to_string(&object).unwrap()));
    }
    for needed in [
        "CheckoutLink",
        "ServiceMonitor",
        "Deployment",
        "CustomResourceDefinition",
        "ValidatingAdmissionPolicy",
    ] {
        assert!(
            kinds.iter().any(|(_, k)| k == needed),
            "nothing renders a {needed}"
        );
    }

    let schemas = scratch.0.join("schemas");
    std::fs::create_dir_all(&schemas).unwrap();
    let kubeconfig = plane.kubeconfig_path();
    let written = kubeconform_schemas::write(&kinds, &schemas, |path| {
        let out = kubectl(kubeconfig, &["get", "--raw", path], None);
        if out.ok {
            Ok(out.stdout)
        } else {
            Err(out.stderr)
        }
    })
    .unwrap();
    assert_eq!(written.len(), kinds.len());

    let kubeconform = |files: &[std::path::PathBuf]| -> Vec<Value> {
        let location = kubeconform_schemas::location(&schemas);
        let mut args = vec![
            "-strict",
            "-verbose",
            "-output",
            "json",
            "-schema-location",
            &location,
        ];
        args.extend(files.iter().map(|f| f.to_str().unwrap()));
        let out = run("kubeconform", &args, None);
        let report: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("kubeconform output ({e}):\n{}{}", out.stdout, out.stderr));
        // Comment-only documents come back with an empty kind and status.
        let resources = report["resources"].as_array().cloned().unwrap_or_default();
        resources
            .into_iter()
            .filter(|r| r["kind"] != "" || r["status"] != "")
            .collect()
    };
    let results = kubeconform(&good_files);
    let invalid: Vec<&Value> = results
        .iter()
        .filter(|r| r["status"] != "statusValid")
        .collect();
    assert!(invalid.is_empty(), "kubeconform: {invalid:#?}");
    assert_eq!(
        results.len(),
        expected_valid,
        "every document validated: {results:#?}"
    );

    let results = kubeconform(&bad_files);
    assert_eq!(results.len(), bad.len(), "{results:#?}");
    for (name, _, kind, _, field) in bad {
        let result = results
            .iter()
            .find(|r| r["filename"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("no result for {name}"));
        let text = result.to_string();
        assert!(
            result["status"] == "statusInvalid" && text.contains(field),
            "the {kind} control must be invalid because of {field}: {result:#}"
        );
    }
}

/// Renders the chart, applies it to the shared apiserver (server-side dry run first, then for
/// real) in a namespace that enforces the restricted Pod Security Standard, and checks that
/// every object exists and that a pod made from the Deployment's template would be admitted.
fn apply_release(release: &str, args: &[&str]) {
    let plane = plane();
    let kubeconfig = plane.kubeconfig_path();
    let namespace = restricted_namespace(kubeconfig, release);
    let yaml = render(release, &namespace, args).unwrap();
    let objects = documents(&yaml);
    // testenv installed the CRD and the policy already, as field manager "testenv"; the
    // policy's atomic matchConstraints, defaulted by the apiserver, then conflicts.
    let apply = ["apply", "--server-side", "--force-conflicts", "-f", "-"];

    let dry = kubectl(
        kubeconfig,
        &[&apply[..], &["--dry-run=server"]].concat(),
        Some(&yaml),
    );
    assert!(dry.ok, "server-side dry run:\n{}{}", dry.stdout, dry.stderr);
    assert!(!dry.stderr.contains("PodSecurity"), "{}", dry.stderr);
    let deployment = format!(
        "deployment/{}",
        one(&objects, "Deployment")["metadata"]["name"]
            .as_str()
            .unwrap()
    );
    let out = kubectl(kubeconfig, &["-n", &namespace, "get", &deployment], None);
    assert!(
        !out.ok && out.stderr.contains("NotFound"),
        "the dry run created {deployment}"
    );

    let applied = kubectl(kubeconfig, &apply, Some(&yaml));
    assert!(applied.ok, "apply:\n{}{}", applied.stdout, applied.stderr);
    assert!(
        !applied.stderr.contains("PodSecurity"),
        "{}",
        applied.stderr
    );
    let listed: Value = serde_json::from_str(&kubectl_ok(
        kubeconfig,
        &["get", "-f", "-", "-o", "json"],
        Some(&yaml),
    ))
    .unwrap();
    let listed = listed["items"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| vec![listed.clone()]);
    assert_eq!(kinds_and_names(&listed), kinds_and_names(&objects));
    for object in listed
        .iter()
        .filter(|o| o["metadata"].get("namespace").is_some())
    {
        assert_eq!(object["metadata"]["namespace"], namespace.as_str());
    }

    // No kubelet runs, so no pod starts; admission of the pod template is checked directly.
    let template = &one(&objects, "Deployment")["spec"]["template"];
    let pod = |spec: &Value| {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "template-check", "namespace": namespace, "labels": template["metadata"]["labels"]},
               "spec": spec})
        .to_string()
    };
    kubectl_ok(
        kubeconfig,
        &["create", "--dry-run=server", "-f", "-"],
        Some(&pod(&template["spec"])),
    );
    // Control: the namespace does enforce the standard.
    let mut weakened = template["spec"].clone();
    weakened["containers"][0]["securityContext"]
        .as_object_mut()
        .unwrap()
        .remove("allowPrivilegeEscalation");
    let out = kubectl(
        kubeconfig,
        &["create", "--dry-run=server", "-f", "-"],
        Some(&pod(&weakened)),
    );
    assert!(
        !out.ok && out.stderr.contains("PodSecurity"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_defaults_apply_to_a_real_apiserver() {
    apply_release("defaults", &[]);
}

#[test]
fn everything_on_applies_to_a_real_apiserver() {
    apply_release("all-on", &["--values", all_on().to_str().unwrap()]);
}

/// What the chart README promises about the CRD, on a private apiserver that starts without
/// it: `helm install` creates it, `helm upgrade` updates it (Helm's crds/ folder would not),
/// `helm uninstall` keeps it and the CheckoutLinks, and a later release adopts it with
/// `--take-ownership`. The CheckoutLink applied is the one NOTES.txt tells users to apply.
#[test]
fn helm_upgrades_the_crd_and_uninstall_keeps_it_and_the_links() {
    let plane = ControlPlane::start(testenv::Options::default()).unwrap();
    let kubeconfig = plane.kubeconfig_path().to_str().unwrap().to_owned();
    let helm = |args: &[&str]| {
        let mut all = vec!["--kubeconfig", &kubeconfig, "--namespace", "ops"];
        all.extend_from_slice(args);
        run("helm", &all, None)
    };
    let printer_columns = || -> Vec<String> {
        let crd: Value = serde_json::from_str(&kubectl_ok(
            plane.kubeconfig_path(),
            &["get", "crd", "checkoutlinks.polar.sh", "-o", "json"],
            None,
        ))
        .unwrap();
        crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };

    // An "older chart": the same, with one printer column named differently.
    let scratch = Scratch::new("lifecycle");
    let old_chart = scratch.0.join("checkout-link-operator");
    copy_dir(&chart(), &old_chart);
    let crd_file = old_chart.join("files/crds/checkoutlinks.polar.sh.yaml");
    let crd = std::fs::read_to_string(&crd_file).unwrap();
    assert!(crd.contains("name: Polar ID\n"));
    std::fs::write(&crd_file, crd.replace("name: Polar ID\n", "name: Old ID\n")).unwrap();

    let out = helm(&[
        "install",
        "clo",
        old_chart.to_str().unwrap(),
        "--create-namespace",
    ]);
    assert!(out.ok, "helm install:\n{}{}", out.stdout, out.stderr);
    assert!(printer_columns().contains(&"Old ID".to_owned()));

    // The first CheckoutLink, as NOTES.txt shows it (with its own credentials Secret, since
    // the release has no default credentials).
    let notes = out
        .stdout
        .split("NOTES:")
        .nth(1)
        .expect("helm install prints NOTES");
    let manifest: String = notes
        .lines()
        .skip_while(|l| !l.contains("kubectl apply -f - <<'YAML'"))
        .skip(1)
        .take_while(|l| l.trim() != "YAML")
        .map(|l| format!("{}\n", l.strip_prefix("     ").unwrap_or(l)))
        .collect();
    assert!(
        manifest.contains("kind: CheckoutLink"),
        "no manifest in NOTES:\n{notes}"
    );
    assert!(
        notes.contains("kubectl -n shop create secret generic polar"),
        "{notes}"
    );
    assert!(
        notes.contains("kubectl -n shop wait checkoutlink/my-first-link --for=condition=Ready"),
        "{notes}"
    );
    // helm does not wait for a CRD rendered from templates to be served.
    kubectl_ok(
        plane.kubeconfig_path(),
        &[
            "wait",
            "--for=condition=Established",
            &kubectl_timeout(60),
            "crd/checkoutlinks.polar.sh",
        ],
        None,
    );
    kubectl_ok(
        plane.kubeconfig_path(),
        &["create", "namespace", "shop"],
        None,
    );
    kubectl_ok(
        plane.kubeconfig_path(),
        &["apply", "-f", "-"],
        Some(&manifest),
    );

    let out = helm(&["upgrade", "clo", chart().to_str().unwrap()]);
    assert!(out.ok, "helm upgrade:\n{}{}", out.stdout, out.stderr);
    let columns = printer_columns();
    assert!(
        columns.contains(&"Polar ID".to_owned()) && !columns.contains(&"Old ID".to_owned()),
        "{columns:?}"
    );

    let out = helm(&["uninstall", "clo"]);
    assert!(out.ok, "helm uninstall:\n{}{}", out.stdout, out.stderr);
    let exists =
        |args: &[&str]| kubectl(plane.kubeconfig_path(), &[&["get"], args].concat(), None).ok;
    assert!(
        !exists(&["-n", "ops", "deployment/clo-checkout-link-operator"]),
        "the Deployment is uninstalled"
    );
    assert!(
        !exists(&["clusterrole/clo-checkout-link-operator-ops"]),
        "the ClusterRole is uninstalled"
    );
    assert!(exists(&["crd/checkoutlinks.polar.sh"]), "the CRD is kept");
    assert!(
        exists(&["validatingadmissionpolicy/checkoutlinks.polar.sh-metadata"]),
        "the policy is kept"
    );
    assert!(
        exists(&["validatingadmissionpolicybinding/checkoutlinks.polar.sh-metadata"]),
        "the binding is kept"
    );
    assert!(
        exists(&["-n", "shop", "checkoutlink/my-first-link"]),
        "the CheckoutLink is kept"
    );

    // The kept CRD still names the old release: another release must take it over explicitly.
    let out = helm(&["install", "clo-2", chart().to_str().unwrap()]);
    assert!(
        !out.ok && out.stderr.contains("invalid ownership metadata"),
        "{}",
        out.stderr
    );
    let out = helm(&[
        "install",
        "clo-2",
        chart().to_str().unwrap(),
        "--take-ownership",
    ]);
    assert!(
        out.ok,
        "helm install --take-ownership:\n{}{}",
        out.stdout, out.stderr
    );
    assert!(exists(&["-n", "shop", "checkoutlink/my-first-link"]));
}

/// `--timeout=` for `kubectl wait`, `secs` scaled by `TEST_TIMEOUT_SCALE`.
fn kubectl_timeout(secs: u64) -> String {
    let timeout = testenv::scaled(std::time::Duration::from_secs(secs));
    format!("--timeout={}ms", timeout.as_millis())
}
