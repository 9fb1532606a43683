//! The Go-built tools (helm, kubectl, kubeconform) and `helm template` of the chart: the one
//! helm runner of the tests.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The chart under test.
pub fn chart() -> PathBuf {
    repo().join("charts/checkout-link-operator")
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
pub fn hack_dir(script: &str, args: &[&str]) -> PathBuf {
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

/// The non-empty documents of a multi-document YAML stream.
pub fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("valid YAML"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}
