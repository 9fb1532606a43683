//! A real Kubernetes control plane for tests and local use: etcd and kube-apiserver (and, when
//! asked, kube-controller-manager), built from pinned Go modules by `hack/build-tools.sh`,
//! started on loopback with free ports, their own certificate authorities and an admin client
//! certificate, the way controller-runtime's envtest starts them.
//!
//! - [`ControlPlane::shared`] gives one control plane per test binary, with `crds/` installed.
//! - [`ControlPlane::shared_with_controllers`] gives a second one per test binary that also
//!   runs kube-controller-manager ([`CONTROLLERS`]: namespaces are finalised, owner references
//!   are garbage-collected).
//! - [`ControlPlane::start`] starts one with options (used by the `testenv` binary behind
//!   `make cluster-up`, and by tests that need a plane of their own, e.g. to restart its
//!   kube-apiserver with [`ControlPlane::restart_apiserver`]).
//! - Children are started in their own process group by a supervisor thread that lives as long
//!   as the process, with a parent-death signal (`setpriv --pdeathsig KILL`): when the test
//!   process exits or is killed, etcd, kube-apiserver and kube-controller-manager die with it.
//!   Dropping a [`ControlPlane`] stops them gracefully.
#![forbid(unsafe_code)]

mod certs;
mod supervisor;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::runtime::wait::{await_condition, conditions};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

pub use certs::Pem;

/// How long etcd and kube-apiserver may take to become ready on a loaded 2-core machine
/// (before [`scaled`]).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a graceful stop ([`Stop::Graceful`]) waits before it sends SIGKILL (before
/// [`scaled`]).
const STOP_GRACE: Duration = Duration::from_secs(30);

/// The controllers kube-controller-manager runs when [`Options::controller_manager`] is set and
/// [`Options::controllers`] is empty: what namespace deletion needs to finish
/// (`namespace-controller`), what deletes objects whose owners are gone
/// (`garbage-collector-controller`), and what fills service-account token Secrets
/// (`serviceaccount-token-controller`). Nothing that starts pods or adds objects to every
/// namespace (no `serviceaccount-controller`, no `root-ca-certificate-publisher-controller`).
pub const CONTROLLERS: &[&str] = &[
    "namespace-controller",
    "garbage-collector-controller",
    "serviceaccount-token-controller",
];

/// The environment variable that stretches every deadline of the tests: a float, 1 by default
/// (e.g. `TEST_TIMEOUT_SCALE=3` on a slow or busy machine).
pub const TIMEOUT_SCALE_VAR: &str = "TEST_TIMEOUT_SCALE";

/// The factor `TEST_TIMEOUT_SCALE` gives (1 when unset; a value that is not a positive number
/// is refused, so that a typo does not silently shorten the deadlines).
pub fn timeout_scale() -> f64 {
    static SCALE: OnceLock<f64> = OnceLock::new();
    *SCALE.get_or_init(|| match std::env::var(TIMEOUT_SCALE_VAR) {
        Err(_) => 1.0,
        Ok(text) => match text.trim().parse::<f64>() {
            Ok(scale) if scale.is_finite() && scale > 0.0 => scale,
            _ => panic!("{TIMEOUT_SCALE_VAR}={text:?}: want a positive number such as 3"),
        },
    })
}

/// A deadline stretched by [`timeout_scale`]: every wait of the tests on something observable
/// goes through this, so a loaded machine can be given more time in one place.
pub fn scaled(deadline: Duration) -> Duration {
    deadline.mul_f64(timeout_scale())
}

/// Where the repository lives (this crate is one of its workspace members).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testenv lives inside the repository")
        .to_path_buf()
}

/// The directory holding `etcd`, `kube-apiserver`, `kubectl`, `kube-controller-manager`, `helm`
/// and `kubeconform`.
///
/// `TESTENV_BIN_DIR` wins (the Makefile sets it); otherwise `hack/build-tools.sh etcd
/// kube-apiserver kubectl` is run, which builds what is missing into its cache and prints the
/// directory.
pub fn tools_dir() -> anyhow::Result<PathBuf> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    if let Some(dir) = DIR.get() {
        return Ok(dir.clone());
    }
    let dir = match std::env::var_os("TESTENV_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => build_tools(&["etcd", "kube-apiserver", "kubectl"])?,
    };
    for tool in ["etcd", "kube-apiserver"] {
        if !dir.join(tool).is_file() {
            bail!("{} has no {tool}; run hack/build-tools.sh", dir.display());
        }
    }
    Ok(DIR.get_or_init(|| dir).clone())
}

/// The path of one tool in [`tools_dir`]. A tool the directory lacks is built by
/// `hack/build-tools.sh TOOL` unless `TESTENV_BIN_DIR` chose the directory (then it is an
/// error that says what to run).
pub fn tool(name: &str) -> anyhow::Result<PathBuf> {
    let path = tools_dir()?.join(name);
    if path.is_file() {
        return Ok(path);
    }
    if std::env::var_os("TESTENV_BIN_DIR").is_some() {
        bail!(
            "TESTENV_BIN_DIR={} has no {name}; run `hack/build-tools.sh {name}`",
            path.parent().unwrap_or(Path::new("")).display()
        );
    }
    let path = build_tools(&[name])?.join(name);
    if !path.is_file() {
        bail!(
            "hack/build-tools.sh {name} did not produce {}",
            path.display()
        );
    }
    Ok(path)
}

/// Runs `hack/build-tools.sh TOOLS...` and returns the directory it prints last.
fn build_tools(tools: &[&str]) -> anyhow::Result<PathBuf> {
    let script = repo_root().join("hack/build-tools.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(tools)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed ({})", script.display(), out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(PathBuf::from(
        stdout.lines().last().unwrap_or_default().trim(),
    ))
}

/// Options for [`ControlPlane::start`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Where to keep data, certificates, logs and the kubeconfig; a fresh temporary directory
    /// when `None`.
    pub dir: Option<PathBuf>,
    /// CRD manifests (files) to install and wait for.
    pub crds: Vec<PathBuf>,
    /// Also copy the admin kubeconfig here.
    pub kubeconfig_out: Option<PathBuf>,
    /// Also run kube-controller-manager (started once the CRDs are installed, so its first
    /// discovery sees them).
    pub controller_manager: bool,
    /// Its `--controllers` list; empty means [`CONTROLLERS`].
    pub controllers: Vec<String>,
}

/// How [`ControlPlane::stop_apiserver`] stops kube-apiserver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: the apiserver finishes in-flight requests, ends the watches and exits, in about
    /// a second (SIGKILL if it is still running 30 s later, scaled).
    Graceful,
    /// SIGKILL: a crash; connections drop in the middle of requests and watches.
    Kill,
}

/// One child process and how it was started, so that it can be started again.
struct Process {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    child: Child,
}

/// A running etcd + kube-apiserver pair (+ kube-controller-manager when asked for).
pub struct ControlPlane {
    dir: PathBuf,
    owns_dir: bool,
    server: String,
    ca: Pem,
    client_ca: certs::TinyCa,
    kubeconfig_path: PathBuf,
    kubeconfig_yaml: String,
    controller_manager: bool,
    /// One of the per-binary planes, which other tests use at the same time: never stopped.
    shared: bool,
    /// In start order (etcd, kube-apiserver, kube-controller-manager); stopped in reverse.
    processes: Mutex<Vec<Process>>,
}

impl ControlPlane {
    /// The control plane shared by every test of this test binary, with `crds/` installed.
    /// Started on first use; its processes die with the test process.
    pub fn shared() -> &'static ControlPlane {
        static SHARED: OnceLock<ControlPlane> = OnceLock::new();
        SHARED.get_or_init(|| start_shared(false))
    }

    /// A second control plane shared by the tests of this test binary that need controllers:
    /// like [`ControlPlane::shared`] (with `crds/`), plus kube-controller-manager running
    /// [`CONTROLLERS`], so deleted namespaces are finalised and objects whose owner is gone are
    /// garbage-collected. A separate plane, so that tests on [`ControlPlane::shared`] keep a
    /// cluster where nothing but the code under test deletes objects. Started on first use.
    pub fn shared_with_controllers() -> &'static ControlPlane {
        static SHARED: OnceLock<ControlPlane> = OnceLock::new();
        SHARED.get_or_init(|| start_shared(true))
    }

    /// Starts etcd and kube-apiserver, waits until the apiserver is ready, installs the CRDs
    /// and, if asked, starts kube-controller-manager and waits for its `/healthz`. Blocking;
    /// call it outside of an async runtime or from `spawn_blocking`.
    pub fn start(options: Options) -> anyhow::Result<ControlPlane> {
        let bin = tools_dir()?;
        let controller_manager = match options.controller_manager {
            true => Some(tool("kube-controller-manager")?),
            false => None,
        };
        let (dir, owns_dir) = match &options.dir {
            Some(dir) => (dir.clone(), false),
            None => (fresh_temp_dir()?, true),
        };
        let certs_dir = dir.join("certs");
        let etcd_dir = dir.join("etcd");
        // A previous run's state would make a second start of `make cluster-up` inconsistent.
        let _ = std::fs::remove_dir_all(&etcd_dir);
        std::fs::create_dir_all(&certs_dir)?;
        std::fs::create_dir_all(&etcd_dir)?;
        let _ = std::fs::remove_file(dir.join("pids"));

        let mut plane = ControlPlane {
            dir: dir.clone(),
            owns_dir,
            server: String::new(),
            ca: Pem {
                cert: String::new(),
                key: String::new(),
            },
            client_ca: certs::TinyCa::new("testenv-client-ca")?,
            kubeconfig_path: dir.join("kubeconfig"),
            kubeconfig_yaml: String::new(),
            controller_manager: controller_manager.is_some(),
            shared: false,
            processes: Mutex::new(Vec::new()),
        };

        // etcd
        let (etcd_client, etcd_peer) = (free_port()?, free_port()?);
        let etcd_url = format!("http://127.0.0.1:{etcd_client}");
        let etcd_args = vec![
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}"),
            format!("--initial-cluster=default=http://127.0.0.1:{etcd_peer}"),
            format!("--data-dir={}", etcd_dir.display()),
            "--unsafe-no-fsync=true".to_string(),
        ];
        plane.spawn("etcd", bin.join("etcd"), etcd_args)?;
        plane.wait_until("etcd", || http_ok(etcd_client, "/health"))?;

        // certificates (envtest's three tiny CAs)
        let serving_ca = certs::TinyCa::new("testenv-serving-ca")?;
        let serving = serving_ca.serving_cert()?;
        let sa = certs::TinyCa::new("testenv-service-accounts")?.pem();
        plane.ca = serving_ca.pem();
        let files = [
            ("apiserver.crt", &serving.cert),
            ("apiserver.key", &serving.key),
            ("serving-ca.crt", &plane.ca.cert),
            ("sa-signer.crt", &sa.cert),
            ("sa-signer.key", &sa.key),
            ("client-cert-auth-ca.crt", &plane.client_ca.pem().cert),
        ];
        for (name, content) in files {
            std::fs::write(certs_dir.join(name), content)?;
        }

        // kube-apiserver
        let port = free_port()?;
        plane.server = format!("https://127.0.0.1:{port}");
        let cert = |name: &str| certs_dir.join(name).display().to_string();
        let apiserver_args = vec![
            format!("--etcd-servers={etcd_url}"),
            format!("--cert-dir={}", certs_dir.display()),
            format!("--secure-port={port}"),
            "--bind-address=127.0.0.1".to_string(),
            "--service-cluster-ip-range=10.0.0.0/24".to_string(),
            "--allow-privileged=true".to_string(),
            "--disable-admission-plugins=ServiceAccount".to_string(),
            "--authorization-mode=RBAC".to_string(),
            format!("--service-account-issuer=https://127.0.0.1:{port}/"),
            format!("--service-account-key-file={}", cert("sa-signer.crt")),
            format!(
                "--service-account-signing-key-file={}",
                cert("sa-signer.key")
            ),
            format!("--client-ca-file={}", cert("client-cert-auth-ca.crt")),
            "--enable-priority-and-fairness=false".to_string(),
            "--profiling=false".to_string(),
            // On SIGTERM, end the open watches (kube-controller-manager's, an operator's) and
            // wait up to 5 s for them; without it the apiserver waits a minute for them to
            // close by themselves, and a graceful stop turns into a SIGKILL.
            "--shutdown-watch-termination-grace-period=5s".to_string(),
        ];
        plane.spawn("kube-apiserver", bin.join("kube-apiserver"), apiserver_args)?;

        let admin = plane
            .client_ca
            .client_cert("admin", Some("system:masters"))?;
        plane.kubeconfig_yaml = plane.kubeconfig_for(&admin);
        std::fs::write(&plane.kubeconfig_path, &plane.kubeconfig_yaml)?;

        let started = Instant::now();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let client = client_from_yaml(&plane.kubeconfig_yaml).await?;
            plane.wait_apiserver_ready(&client).await?;
            plane.install_crds(&client, &options.crds).await
        })?;

        // kube-controller-manager: its own kubeconfig, the service-account key the apiserver
        // verifies tokens with, no leader election, controllers acting with its own identity
        // (CN system:kube-controller-manager in system:masters, since
        // --use-service-account-credentials=false leaves it to delete anything in a namespace).
        if let Some(program) = controller_manager {
            let identity = plane
                .client_ca
                .client_cert("system:kube-controller-manager", Some("system:masters"))?;
            let kubeconfig = dir.join("kube-controller-manager.kubeconfig");
            std::fs::write(&kubeconfig, plane.kubeconfig_for(&identity))?;
            let tls = serving_ca.serving_cert()?;
            std::fs::write(certs_dir.join("kube-controller-manager.crt"), &tls.cert)?;
            std::fs::write(certs_dir.join("kube-controller-manager.key"), &tls.key)?;
            let kcm_port = free_port()?;
            let controllers = match options.controllers.is_empty() {
                true => CONTROLLERS.join(","),
                false => options.controllers.join(","),
            };
            let kubeconfig = kubeconfig.display().to_string();
            let args = vec![
                format!("--kubeconfig={kubeconfig}"),
                format!("--authentication-kubeconfig={kubeconfig}"),
                format!("--authorization-kubeconfig={kubeconfig}"),
                // Client certificates checked against the file, not looked up in the cluster
                // (the lookup also wants a request-header CA, which this apiserver has none of).
                format!("--client-ca-file={}", cert("client-cert-auth-ca.crt")),
                "--authentication-skip-lookup=true".to_string(),
                format!("--controllers={controllers}"),
                "--leader-elect=false".to_string(),
                "--use-service-account-credentials=false".to_string(),
                format!(
                    "--service-account-private-key-file={}",
                    cert("sa-signer.key")
                ),
                format!("--root-ca-file={}", cert("serving-ca.crt")),
                "--bind-address=127.0.0.1".to_string(),
                format!("--secure-port={kcm_port}"),
                format!("--tls-cert-file={}", cert("kube-controller-manager.crt")),
                format!(
                    "--tls-private-key-file={}",
                    cert("kube-controller-manager.key")
                ),
                // The default 20/s would make the namespace controller the slow part of a
                // test that deletes many objects.
                "--kube-api-qps=100".to_string(),
                "--kube-api-burst=200".to_string(),
                "--profiling=false".to_string(),
            ];
            plane.spawn("kube-controller-manager", program, args)?;
            runtime.block_on(plane.wait_controller_manager_ready(kcm_port, &admin))?;
        }
        eprintln!(
            "[testenv] control plane ready at {} in {:.1}s{} (logs in {})",
            plane.server,
            started.elapsed().as_secs_f64(),
            match plane.controller_manager {
                true => ", with kube-controller-manager",
                false => "",
            },
            plane.dir.display()
        );
        if let Some(out) = &options.kubeconfig_out {
            if let Some(parent) = out.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(out, &plane.kubeconfig_yaml)?;
        }
        Ok(plane)
    }

    /// Stops kube-apiserver and starts it again after `down_for`, on the same port with the
    /// same certificates and flags (etcd and its data are kept), and waits until `/readyz`
    /// answers `ok`. SIGTERM first ([`Stop::Graceful`]); see
    /// [`ControlPlane::restart_apiserver_with`] for SIGKILL. Clients made before keep working
    /// afterwards: same address, same CA, same admin certificate.
    ///
    /// Only for a plane of one's own ([`ControlPlane::start`]): the shared planes are refused,
    /// since the other tests of the binary use them at the same time.
    pub async fn restart_apiserver(&self, down_for: Duration) -> anyhow::Result<()> {
        self.restart_apiserver_with(Stop::Graceful, down_for).await
    }

    /// [`ControlPlane::restart_apiserver`], choosing how the apiserver is stopped.
    pub async fn restart_apiserver_with(
        &self,
        how: Stop,
        down_for: Duration,
    ) -> anyhow::Result<()> {
        let began = Instant::now();
        let status = self.stop_apiserver(how).await?;
        let stopped = began.elapsed();
        tokio::time::sleep(down_for).await;
        let starting = Instant::now();
        self.start_apiserver().await?;
        eprintln!(
            "[testenv] kube-apiserver restarted ({how:?}): stopped in {:.1}s ({status}), down for \
             {:.1}s, ready {:.1}s after its start",
            stopped.as_secs_f64(),
            down_for.as_secs_f64(),
            starting.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Stops kube-apiserver and waits until it has exited; etcd (and kube-controller-manager)
    /// keep running. [`ControlPlane::start_apiserver`] brings it back. Returns how it exited:
    /// success after a graceful stop, killed by signal 9 after [`Stop::Kill`] (or after a
    /// graceful stop that overran its grace, which is also logged). Refused on the shared
    /// planes, like [`ControlPlane::restart_apiserver`].
    pub async fn stop_apiserver(&self, how: Stop) -> anyhow::Result<ExitStatus> {
        self.refuse_shared("stop kube-apiserver")?;
        let pgid = {
            let mut processes = self.processes();
            let apiserver = apiserver(&mut processes)?;
            if apiserver.child.try_wait()?.is_some() {
                bail!("kube-apiserver is not running");
            }
            Pid::from_raw(apiserver.child.id() as i32)
        };
        let first = match how {
            Stop::Graceful => Signal::SIGTERM,
            Stop::Kill => Signal::SIGKILL,
        };
        killpg(pgid, first).context("signalling kube-apiserver")?;
        let grace = scaled(STOP_GRACE);
        let deadline = Instant::now() + grace;
        let mut killed = how == Stop::Kill;
        loop {
            if let Some(status) = apiserver(&mut self.processes())?.child.try_wait()? {
                return Ok(status);
            }
            if !killed && Instant::now() > deadline {
                eprintln!(
                    "[testenv] kube-apiserver still running {grace:?} after SIGTERM: SIGKILL"
                );
                let _ = killpg(pgid, Signal::SIGKILL);
                killed = true;
            } else if killed && Instant::now() > deadline + scaled(Duration::from_secs(10)) {
                bail!("kube-apiserver (pid {pgid}) did not exit after SIGKILL");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts kube-apiserver again after [`ControlPlane::stop_apiserver`] (same program, flags,
    /// port and certificates; its log goes on in the same file) and waits until it is ready.
    pub async fn start_apiserver(&self) -> anyhow::Result<()> {
        self.refuse_shared("start kube-apiserver")?;
        let (program, args) = {
            let mut processes = self.processes();
            let apiserver = apiserver(&mut processes)?;
            if apiserver.child.try_wait()?.is_none() {
                bail!("kube-apiserver is already running");
            }
            (apiserver.program.clone(), apiserver.args.clone())
        };
        let child = self.launch("kube-apiserver", &program, &args, true)?;
        apiserver(&mut self.processes())?.child = child;
        self.write_pids()?;
        let client = client_from_yaml(&self.kubeconfig_yaml).await?;
        self.wait_apiserver_ready(&client).await
    }

    /// Whether kube-controller-manager runs in this plane.
    pub fn has_controller_manager(&self) -> bool {
        self.controller_manager
    }

    /// The apiserver's URL, e.g. `https://127.0.0.1:41234`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Path of the admin (`system:masters`) kubeconfig.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The admin kubeconfig as YAML.
    pub fn kubeconfig_yaml(&self) -> &str {
        &self.kubeconfig_yaml
    }

    /// The directory with data, certificates and the processes' logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A kubeconfig for another user, authenticated by a client certificate (CN = user,
    /// O = group); the user has no rights until RBAC grants some.
    pub fn kubeconfig_for_user(&self, user: &str, group: Option<&str>) -> anyhow::Result<String> {
        Ok(self.kubeconfig_for(&self.client_ca.client_cert(user, group)?))
    }

    /// An admin client. Make one per test (a client belongs to the runtime that made it).
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        client_from_yaml(&self.kubeconfig_yaml).await
    }

    /// A fresh namespace named after the test, and an admin client.
    pub async fn namespace(&self, test: &str) -> anyhow::Result<(kube::Client, String)> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let client = self.client().await?;
        let slug: String = test
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(40)
            .collect();
        let name = format!(
            "{}-{}-{}",
            slug.trim_matches('-'),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        Ok((client, name))
    }

    /// Installs manifests (server-side apply): CustomResourceDefinitions, each waited for
    /// until established and served, and cluster-scoped objects such as
    /// ValidatingAdmissionPolicies and their bindings.
    pub async fn install_crds(
        &self,
        client: &kube::Client,
        files: &[PathBuf],
    ) -> anyhow::Result<()> {
        let params = PatchParams::apply("testenv").force();
        for file in files {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let value: serde_json::Value = serde::Deserialize::deserialize(doc)?;
                if value.is_null() {
                    continue;
                }
                let object: DynamicObject = serde_json::from_value(value.clone())?;
                let types = object
                    .types
                    .clone()
                    .context("manifest without apiVersion/kind")?;
                let name = object
                    .metadata
                    .name
                    .clone()
                    .context("manifest without a name")?;
                if types.kind == "CustomResourceDefinition" {
                    let crd: CustomResourceDefinition = serde_json::from_value(value)?;
                    install_crd(client, &crd)
                        .await
                        .with_context(|| format!("installing {}", file.display()))?;
                    continue;
                }
                let gvk = GroupVersionKind::try_from(&types)?;
                let (resource, _) = kube::discovery::pinned_kind(client, &gvk).await?;
                let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
                api.patch(&name, &params, &Patch::Apply(&object))
                    .await
                    .with_context(|| {
                        format!("installing {} {name} from {}", types.kind, file.display())
                    })?;
            }
        }
        Ok(())
    }

    fn kubeconfig_for(&self, user: &Pem) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: testenv\n  cluster:\n    server: {}\n    \
             certificate-authority-data: {}\nusers:\n- name: testenv-user\n  user:\n    \
             client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: testenv\n  \
             context:\n    cluster: testenv\n    user: testenv-user\n    namespace: default\n\
             current-context: testenv\n",
            self.server,
            b64(&self.ca.cert),
            b64(&user.cert),
            b64(&user.key)
        )
    }

    /// Polls `/readyz` until it answers `ok`, then waits for the `default` namespace.
    async fn wait_apiserver_ready(&self, client: &kube::Client) -> anyhow::Result<()> {
        let timeout = scaled(START_TIMEOUT);
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            let req = http::Request::get("/readyz").body(Vec::new())?;
            match client.request_text(req).await {
                Ok(body) if body.trim() == "ok" => break,
                _ if Instant::now() > deadline => {
                    bail!(
                        "kube-apiserver not ready after {timeout:?}; {}",
                        self.log_tail("kube-apiserver")
                    )
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        // envtest also waits for the default namespace before declaring the plane usable.
        let namespaces = Api::<Namespace>::all(client.clone());
        while namespaces.get_opt("default").await?.is_none() {
            if Instant::now() > deadline {
                bail!("namespace default never appeared");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Polls kube-controller-manager's `/healthz` on its secure port (its serving certificate
    /// is signed by the serving CA; the admin certificate authenticates, through the
    /// apiserver's client CA).
    async fn wait_controller_manager_ready(&self, port: u16, admin: &Pem) -> anyhow::Result<()> {
        let yaml = self
            .kubeconfig_for(admin)
            .replace(&self.server, &format!("https://127.0.0.1:{port}"));
        let client = client_from_yaml(&yaml).await?;
        let timeout = scaled(START_TIMEOUT);
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            let req = http::Request::get("/healthz").body(Vec::new())?;
            match client.request_text(req).await {
                Ok(body) if body.trim() == "ok" => return Ok(()),
                _ if Instant::now() > deadline => {
                    bail!(
                        "kube-controller-manager not healthy after {timeout:?}; {}",
                        self.log_tail("kube-controller-manager")
                    )
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    fn processes(&self) -> MutexGuard<'_, Vec<Process>> {
        self.processes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn refuse_shared(&self, what: &str) -> anyhow::Result<()> {
        if self.shared {
            bail!(
                "refusing to {what} of a shared control plane (other tests use it); \
                 start a plane of your own with ControlPlane::start"
            );
        }
        Ok(())
    }

    fn spawn(&self, name: &str, program: PathBuf, args: Vec<String>) -> anyhow::Result<()> {
        let child = self.launch(name, &program, &args, false)?;
        self.processes().push(Process {
            name: name.to_string(),
            program,
            args,
            child,
        });
        self.write_pids()
    }

    /// Starts one child on the supervisor thread; its stdout and stderr go to `<dir>/<name>.log`
    /// (appended to when `again`, with a line that marks the restart).
    fn launch(
        &self,
        name: &str,
        program: &Path,
        args: &[String],
        again: bool,
    ) -> anyhow::Result<Child> {
        let path = self.dir.join(format!("{name}.log"));
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(again)
            .truncate(!again)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        if again {
            writeln!(log, "--- testenv: {name} started again ---")?;
        }
        supervisor::spawn(supervisor::Spec {
            program: program.to_path_buf(),
            args: args.to_vec(),
            log,
        })
        .with_context(|| format!("starting {name}"))
    }

    /// `<dir>/pids` ("name pid" per line, the processes of now) lets people (and the orphan
    /// test) find the processes. Written whole and renamed into place.
    fn write_pids(&self) -> anyhow::Result<()> {
        let text: String = self
            .processes()
            .iter()
            .map(|p| format!("{} {}\n", p.name, p.child.id()))
            .collect();
        let tmp = self.dir.join("pids.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, self.dir.join("pids"))?;
        Ok(())
    }

    fn wait_until(&self, name: &str, ready: impl Fn() -> bool) -> anyhow::Result<()> {
        let timeout = scaled(START_TIMEOUT);
        let deadline = Instant::now() + timeout;
        while !ready() {
            self.check_alive()?;
            if Instant::now() > deadline {
                bail!(
                    "{name} not ready after {timeout:?}; {}",
                    self.log_tail(name)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    fn check_alive(&self) -> anyhow::Result<()> {
        let mut processes = self.processes();
        for process in processes.iter_mut() {
            if let Some(status) = process.child.try_wait()? {
                let name = process.name.clone();
                drop(processes);
                bail!("{name} exited early ({status}); {}", self.log_tail(&name));
            }
        }
        Ok(())
    }

    fn log_tail(&self, name: &str) -> String {
        let path = self.dir.join(format!("{name}.log"));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("last lines of {}:\n{tail}", path.display())
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let processes = self.processes.get_mut().unwrap_or_else(|e| e.into_inner());
        for process in processes.iter_mut().rev() {
            supervisor::stop(&mut process.child, Duration::from_secs(10));
        }
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Starts one of the per-binary planes, with `crds/` installed.
fn start_shared(controller_manager: bool) -> ControlPlane {
    let crds = std::fs::read_dir(repo_root().join("crds"))
        .map(|entries| {
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .collect();
            files.sort();
            files
        })
        .unwrap_or_default();
    // Started on a plain thread: `start` runs its own runtime, which must not nest in the
    // caller's (tests call this from inside `#[tokio::test]`).
    let mut plane = std::thread::spawn(move || {
        ControlPlane::start(Options {
            crds,
            controller_manager,
            ..Options::default()
        })
    })
    .join()
    .unwrap_or_else(|_| Err(anyhow::anyhow!("the start thread panicked")))
    .unwrap_or_else(|e| panic!("could not start the test control plane: {e:#}"));
    plane.shared = true;
    plane
}

fn apiserver(processes: &mut [Process]) -> anyhow::Result<&mut Process> {
    processes
        .iter_mut()
        .find(|p| p.name == "kube-apiserver")
        .context("this plane has no kube-apiserver")
}

async fn install_crd(client: &kube::Client, crd: &CustomResourceDefinition) -> anyhow::Result<()> {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    let name = crd.metadata.name.clone().context("CRD without a name")?;
    api.patch(
        &name,
        &PatchParams::apply("testenv").force(),
        &Patch::Apply(crd),
    )
    .await?;
    let established = await_condition(api.clone(), &name, conditions::is_crd_established());
    let timeout = scaled(Duration::from_secs(30));
    tokio::time::timeout(timeout, established)
        .await
        .with_context(|| format!("CRD {name} not established within {timeout:?}"))??;
    // Like envtest, also wait until discovery serves each version.
    for version in crd.spec.versions.iter().filter(|v| v.served) {
        let path = format!("/apis/{}/{}", crd.spec.group, version.name);
        let deadline = Instant::now() + timeout;
        loop {
            let req = http::Request::get(&path).body(Vec::new())?;
            match client.request_text(req).await {
                Ok(body) if body.contains(&format!("\"{}\"", crd.spec.names.plural)) => break,
                _ if Instant::now() > deadline => bail!("{path} never served {name}"),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    Ok(())
}

/// A kube client for a kubeconfig given as YAML.
pub async fn client_from_yaml(yaml: &str) -> anyhow::Result<kube::Client> {
    let kubeconfig = Kubeconfig::from_yaml(yaml)?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    config.read_timeout = Some(Duration::from_secs(60));
    Ok(kube::Client::try_from(config)?)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn http_ok(port: u16, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200")
}

/// A new directory under the system temp dir, named by pid; directories of processes that no
/// longer run (killed test binaries) are removed on the way.
fn fresh_temp_dir() -> anyhow::Result<PathBuf> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let base = std::env::temp_dir().join("checkout-link-operator-testenv");
    std::fs::create_dir_all(&base)?;
    if let Ok(entries) = std::fs::read_dir(&base) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let pid = name.split('-').next().unwrap_or_default();
            if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = base.join(format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
