//! What the chart tests share besides the tools and `helm template` (tests/common/helm.rs):
//! manifests as JSON values, kubectl against the shared test apiserver, and the
//! prometheus-operator CRDs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

pub use crate::common::helm::*;

/// The values file with every optional feature on.
pub fn all_on() -> PathBuf {
    chart().join("ci/all-on-values.yaml")
}

/// The chart's appVersion (the default image tag).
pub fn app_version() -> String {
    let chart: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart().join("Chart.yaml")).unwrap())
            .unwrap();
    chart["appVersion"].as_str().unwrap().to_owned()
}

/// prometheus-operator's CRDs at the pinned version (fetched from the Go module proxy once).
pub fn prometheus_operator_crds() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| hack_dir("prometheus-operator-crds.sh", &[]))
}

/// [`render`] that must succeed, parsed into objects.
pub fn objects(release: &str, namespace: &str, args: &[&str]) -> Vec<Value> {
    let yaml =
        render(release, namespace, args).unwrap_or_else(|e| panic!("helm template {args:?}: {e}"));
    documents(&yaml)
}

/// The one object of `kind` (panics when there is none or several).
pub fn one<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "expected one {kind}, found {}", found.len());
    found[0]
}

/// `kind/name` of every object, sorted.
pub fn kinds_and_names(objects: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = objects
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

/// The operator container of a rendered Deployment.
pub fn container(objects: &[Value]) -> &Value {
    let containers = &one(objects, "Deployment")["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        containers.as_array().map(Vec::len),
        Some(1),
        "one container"
    );
    &containers[0]
}

/// The operator container's arguments.
pub fn args(objects: &[Value]) -> Vec<String> {
    container(objects)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// Labels of an object (or of a pod template, given its `metadata`).
pub fn labels(metadata: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(metadata["labels"].clone()).unwrap_or_default()
}

/// A fresh scratch directory under the system temp dir (removed by [`Scratch`]'s drop).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(what: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "clo-chart-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// kubectl with an admin kubeconfig.
pub fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut all = vec!["--kubeconfig", kubeconfig.to_str().unwrap()];
    all.extend_from_slice(args);
    run("kubectl", &all, stdin)
}

/// kubectl that must succeed; its stdout.
pub fn kubectl_ok(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = kubectl(kubeconfig, args, stdin);
    assert!(
        out.ok,
        "kubectl {args:?} failed:\n{}{}",
        out.stdout, out.stderr
    );
    out.stdout
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
