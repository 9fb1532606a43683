//! What the chart tests share: the Go-built tools (helm, kubectl, kubeconform), `helm template`,
//! manifests as JSON values, kubectl against the shared test apiserver, and the
//! prometheus-operator CRDs.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The chart under test.
pub fn chart() -> PathBuf {
    repo().join("charts/checkout-link-operator")
}

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

/// A pinned version from hack/versions.env, e.g. `KUBERNETES_VERSION`.
pub fn pinned(name: &str) -> String {
    let text = std::fs::read_to_string(repo().join("hack/versions.env")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} is not pinned in hack/versions.env"))
        .trim()
        .to_owned()
}

/// Runs a bash script from hack/ and returns the last line of its stdout (a directory).
fn hack_dir(script: &str, args: &[&str]) -> PathBuf {
    let out = Command::new("bash")
        .arg(repo().join("hack").join(script))
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running hack/{script}: {e}"));
    assert!(
        out.status.success(),
        "hack/{script} failed ({})",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
}

/// The directory with helm, kubectl and kubeconform, built from their pinned Go modules by
/// hack/build-tools.sh (a no-op once they are cached).
pub fn tools() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| hack_dir("build-tools.sh", &["helm", "kubeconform", "kubectl"]))
}

/// prometheus-operator's CRDs at the pinned version (fetched from the Go module proxy once).
pub fn prometheus_operator_crds() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| hack_dir("prometheus-operator-crds.sh", &[]))
}

/// What a command printed, and whether it succeeded.
pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs one of the tools with `args`, feeding `stdin`.
pub fn run(tool: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(tools().join(tool))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {tool}: {e}"));
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.unwrap_or_default().to_owned();
    let writer = std::thread::spawn(move || pipe.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `helm template <release> <chart> --namespace <namespace> <args>` with the Kubernetes
/// version the tests run (our source-built helm would otherwise assume v1.20): the manifests,
/// or helm's error.
pub fn render_in(
    chart: &Path,
    release: &str,
    namespace: &str,
    args: &[&str],
) -> Result<String, String> {
    let kube_version = pinned("KUBERNETES_VERSION");
    let mut all = vec![
        "template",
        release,
        chart.to_str().unwrap(),
        "--namespace",
        namespace,
        "--kube-version",
        &kube_version,
    ];
    all.extend_from_slice(args);
    let out = run("helm", &all, None);
    if out.ok {
        Ok(out.stdout)
    } else {
        Err(out.stderr)
    }
}

/// [`render_in`] for this repository's chart.
pub fn render(release: &str, namespace: &str, args: &[&str]) -> Result<String, String> {
    render_in(&chart(), release, namespace, args)
}

/// [`render`] that must succeed, parsed into objects.
pub fn objects(release: &str, namespace: &str, args: &[&str]) -> Vec<Value> {
    let yaml =
        render(release, namespace, args).unwrap_or_else(|e| panic!("helm template {args:?}: {e}"));
    documents(&yaml)
}

/// The non-empty documents of a multi-document YAML stream.
pub fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("valid YAML"))
        .filter(|v: &Value| !v.is_null())
        .collect()
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
