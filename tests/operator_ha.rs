//! High availability: real operator processes with `--leader-election` against the real
//! apiserver and one emulator per test. One holds the Lease and alone calls Polar; SIGTERM
//! releases the Lease so the standby takes over at once; after a SIGKILL a fresh standby takes
//! over once the Lease expires; a leader cut off from the apiserver, or that sees another
//! holder, exits non-zero, before the Lease it holds expires. No link is created twice. And
//! the election needs only `get`, `create` and `patch` on Leases.

mod common;

use std::collections::BTreeSet;
use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use checkout_link_operator::CheckoutLink;
use checkout_link_operator::leader::{Election, Elector, Timing};
use checkout_link_operator::metrics::Metrics;
use checkout_link_operator::server::Readiness;
use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use testenv::ControlPlane;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

const LEASE: &str = "checkout-link-operator";
/// The lease duration given to the operators.
const LEASE_SECS: u64 = 4;

/// One operator process; killed (and its log printed, if the test fails) when dropped.
struct Operator {
    identity: String,
    child: Child,
    metrics: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl Operator {
    /// Starts the binary for `ns`, with `--leader-election` as a flag or (`via_env`) through
    /// its environment variable.
    fn spawn(ns: &str, identity: &str, via_env: bool) -> Operator {
        Operator::spawn_with(
            ControlPlane::shared().kubeconfig_path(),
            ns,
            identity,
            via_env,
        )
    }

    /// [`Operator::spawn`] with another kubeconfig.
    fn spawn_with(kubeconfig: &Path, ns: &str, identity: &str, via_env: bool) -> Operator {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let metrics = format!("127.0.0.1:{port}");
        let log = run_dir(ns).join(format!("{identity}.log"));
        let out = File::create(&log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_checkout-link-operator"));
        command
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--namespace", ns])
            .args(["--default-credentials-secret", &format!("{ns}/{SECRET}")])
            .args(["--leader-election-namespace", ns])
            .args([
                "--leader-election-lease-duration",
                &format!("{LEASE_SECS}s"),
            ])
            .args(["--leader-election-identity", identity])
            .args(["--metrics-addr", &metrics])
            .args(["--log-level", "info,kube_lease_manager=debug"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out);
        if via_env {
            command.env("CHECKOUT_LINK_OPERATOR_LEADER_ELECTION", "true");
        } else {
            command.arg("--leader-election");
        }
        Operator {
            identity: identity.to_owned(),
            child: command.spawn().expect("start the operator"),
            metrics,
            log,
            http: reqwest::Client::new(),
        }
    }

    /// Status and body of `GET path` on the metrics address, `None` while it does not answer.
    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = self
            .http
            .get(format!("http://{}{path}", self.metrics))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    /// The sum of a metric's samples (all label sets).
    async fn metric(&self, name: &str) -> f64 {
        let (_, text) = self.get("/metrics").await.expect("/metrics answers");
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Requests sent to Polar by this process.
    async fn polar_requests(&self) -> f64 {
        self.metric("checkout_link_operator_polar_requests_total")
            .await
    }

    /// Waits until `/readyz` answers 200 with a body containing `body`.
    async fn wait_ready(&self, body: &str) {
        poll(&format!("{} /readyz {body:?}", self.identity), || async {
            let healthy = self.get("/healthz").await.is_some_and(|(s, _)| s == 200);
            let ready = self.get("/readyz").await;
            (healthy
                && ready
                    .as_ref()
                    .is_some_and(|(s, b)| *s == 200 && b.contains(body)))
            .then_some(())
        })
        .await
    }

    /// Sends a signal with `kill`.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {}", self.identity);
    }

    /// Waits for the process to exit.
    async fn exited(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.identity);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!(
                "----- {} (last lines of {}) -----",
                self.identity,
                self.log.display()
            );
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// This test's files (operator logs, kubeconfig), beside the control plane's logs.
fn run_dir(ns: &str) -> PathBuf {
    let dir = ControlPlane::shared().dir().join("operator_ha").join(ns);
    std::fs::create_dir_all(&dir).expect("test directory");
    dir
}

/// Polls `check` every 50 ms until it gives a value; panics after 30 s.
async fn poll<T, F: Future<Output = Option<T>>>(what: &str, mut check: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The Lease's holder, if any.
async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt(LEASE)
        .await
        .expect("get lease")
        .and_then(|l| l.spec?.holder_identity)
}

/// Waits until `identity` holds the Lease; returns the Lease.
async fn wait_holder(leases: &Api<Lease>, identity: &str) -> Lease {
    poll(&format!("{identity} to hold the lease"), || async {
        let lease = leases.get_opt(LEASE).await.expect("get lease")?;
        let spec = lease.spec.as_ref()?;
        (spec.holder_identity.as_deref() == Some(identity)).then_some(lease)
    })
    .await
}

fn lease_time(lease: &Lease, field: &str) -> Timestamp {
    let spec = lease.spec.as_ref().expect("lease spec");
    let time = match field {
        "renewTime" => &spec.renew_time,
        _ => &spec.acquire_time,
    };
    time.as_ref().unwrap_or_else(|| panic!("no {field}")).0
}

/// Creates CheckoutLinks `names` and waits until each is Ready at its generation.
async fn create_ready(links: &Api<CheckoutLink>, names: &[&str]) {
    for name in names {
        let link: CheckoutLink = serde_json::from_value(json!({
            "apiVersion": "polar.sh/v1alpha1",
            "kind": "CheckoutLink",
            "metadata": {"name": name},
            "spec": {"label": name, "products": [EBOOK]},
        }))
        .unwrap();
        links
            .create(&PostParams::default(), &link)
            .await
            .expect("create CheckoutLink");
    }
    for name in names {
        poll(&format!("{name} Ready"), || async {
            let link = links.get(name).await.expect("get CheckoutLink");
            let ready = condition(&link, "Ready").is_some_and(|c| c.0 == "True")
                && link.status.as_ref().and_then(|s| s.observed_generation)
                    == link.metadata.generation;
            ready.then_some(())
        })
        .await;
    }
}

/// One test's namespace, emulator and default credentials Secret.
struct World {
    ns: String,
    emulator: polar_emulator::Emulator,
    links: Api<CheckoutLink>,
    leases: Api<Lease>,
}

impl World {
    async fn start(test: &str) -> World {
        init_logging();
        checkout_link_operator::polar::install_crypto_provider();
        let (client, ns) = ControlPlane::shared()
            .namespace(test)
            .await
            .expect("namespace");
        let emulator = polar_emulator::spawn(
            polar_emulator::Config::default(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .expect("emulator");
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET},
            "stringData": {"token": TOKEN, "server": emulator.base_url()},
        }))
        .unwrap();
        Api::<Secret>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &secret)
            .await
            .expect("create secret");
        World {
            links: Api::namespaced(client.clone(), &ns),
            leases: Api::namespaced(client, &ns),
            ns,
            emulator,
        }
    }

    /// Polar holds exactly one link per CheckoutLink, each created once.
    async fn assert_one_polar_link_per_checkout_link(&self, count: usize) {
        let ids: BTreeSet<String> = self
            .links
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .iter()
            .map(|l| {
                l.status
                    .as_ref()
                    .and_then(|s| s.id.clone())
                    .expect("status.id")
            })
            .collect();
        let polar: BTreeSet<String> = self
            .emulator
            .links()
            .iter()
            .map(|l| l["id"].as_str().expect("id").to_owned())
            .collect();
        assert_eq!(ids.len(), count, "{count} distinct ids");
        assert_eq!(polar, ids, "Polar holds exactly the CheckoutLinks' links");
        assert_eq!(
            self.emulator.counters().get(POST).copied(),
            Some(count as u64),
            "one create per link"
        );
    }
}

/// A TCP proxy to the apiserver that the test can cut: then every connection through it is
/// closed, and new ones are closed at once (a network partition, for one process).
struct Proxy {
    addr: std::net::SocketAddr,
    cut: watch::Sender<bool>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (cut, is_cut) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut is_cut = is_cut.clone();
                if *is_cut.borrow() {
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = is_cut.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Proxy { addr, cut }
    }

    /// A kubeconfig (written to `path`) that reaches the apiserver through the proxy.
    fn kubeconfig(&self, path: &Path) -> PathBuf {
        let plane = ControlPlane::shared();
        let yaml = plane
            .kubeconfig_yaml()
            .replace(plane.server(), &format!("https://{}", self.addr));
        std::fs::write(path, yaml).expect("write kubeconfig");
        path.to_owned()
    }

    fn cut(&self) {
        self.cut.send_replace(true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leads_and_a_standby_takes_over_on_sigterm_and_on_sigkill() {
    let w = World::start("ha").await;
    let (ns, links, leases, emulator) = (&w.ns, &w.links, &w.leases, &w.emulator);
    // Two replicas: exactly one leads, the other stands by, both are ready.
    let mut a = Operator::spawn(ns, "op-a", false);
    let mut b = Operator::spawn(ns, "op-b", true);
    let first = poll("a lease holder", || holder(leases)).await;
    let (leader, standby) = if first == "op-a" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    leader.wait_ready("ready\n").await;
    standby.wait_ready("standby").await;
    assert_eq!(leader.metric("checkout_link_operator_leader").await, 1.0);
    assert_eq!(standby.metric("checkout_link_operator_leader").await, 0.0);

    create_ready(links, &["one", "two", "three"]).await;
    assert!(leader.polar_requests().await > 0.0);
    assert_eq!(
        standby.polar_requests().await,
        0.0,
        "the standby never calls Polar"
    );
    assert_eq!(
        holder(leases).await.as_deref(),
        Some(leader.identity.as_str())
    );

    // SIGTERM: the leader finishes, releases the Lease and exits 0; the standby takes it
    // before the leader's last renewal would have expired.
    let last = leases.get(LEASE).await.expect("lease");
    let sigterm = Instant::now();
    leader.signal("TERM");
    let status = leader.exited().await;
    assert!(status.success(), "{} exited with {status}", leader.identity);
    assert_ne!(
        holder(leases).await.as_deref(),
        Some(leader.identity.as_str()),
        "the lease is released on SIGTERM"
    );
    assert!(leader.log_text().contains("released the leader lease"));
    let taken = wait_holder(leases, &standby.identity).await;
    let took = sigterm.elapsed();
    eprintln!("takeover after SIGTERM: {took:?}");
    let expiry = lease_time(&last, "renewTime") + Duration::from_secs(LEASE_SECS);
    assert!(
        lease_time(&taken, "acquireTime") < expiry,
        "the standby took the released lease without waiting for it to expire"
    );
    let b_leads = standby;
    b_leads.wait_ready("ready\n").await;
    assert_eq!(b_leads.metric("checkout_link_operator_leader").await, 1.0);
    create_ready(links, &["four", "five", "six"]).await;
    assert!(b_leads.polar_requests().await > 0.0);

    // A fresh standby; SIGKILL of the leader: the Lease is not released, the standby takes
    // it once it has expired, not before.
    let mut c = Operator::spawn(ns, "op-c", false);
    c.wait_ready("standby").await;
    b_leads.child.kill().expect("SIGKILL");
    b_leads.child.wait().expect("reaped");
    let killed = Instant::now();
    let dead = leases.get(LEASE).await.expect("lease");
    assert_eq!(
        dead.spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref()),
        Some(b_leads.identity.as_str())
    );
    let taken = wait_holder(leases, "op-c").await;
    let took = killed.elapsed();
    eprintln!("takeover after SIGKILL: {took:?} (lease {LEASE_SECS}s)");
    let expiry = lease_time(&dead, "renewTime") + Duration::from_secs(LEASE_SECS);
    assert!(
        lease_time(&taken, "acquireTime") >= expiry,
        "the standby must not take a lease before it expires"
    );
    assert_eq!(
        c.polar_requests().await,
        0.0,
        "no Polar call before leading"
    );
    c.wait_ready("ready\n").await;
    create_ready(links, &["seven", "eight", "nine"]).await;
    assert_eq!(c.metric("checkout_link_operator_leader").await, 1.0);
    assert!(c.polar_requests().await > 0.0);

    // Every CheckoutLink has its own Polar link, created once.
    let ids: BTreeSet<String> = links
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|l| {
            l.status
                .as_ref()
                .and_then(|s| s.id.clone())
                .expect("status.id")
        })
        .collect();
    let polar: BTreeSet<String> = emulator
        .links()
        .iter()
        .map(|l| l["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids.len(), 9, "nine distinct ids");
    assert_eq!(polar, ids, "Polar holds exactly the CheckoutLinks' links");
    assert_eq!(
        emulator.counters().get(POST).copied(),
        Some(9),
        "one create per link"
    );

    // Someone else takes the Lease: the leader stops at once, with a failure.
    leases
        .patch(
            LEASE,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {
                "holderIdentity": "intruder",
                "renewTime": MicroTime(Timestamp::now()),
                "leaseDurationSeconds": 60,
            }})),
        )
        .await
        .expect("patch lease");
    let status = c.exited().await;
    assert!(
        !status.success(),
        "a leader that lost the lease exits non-zero"
    );
    assert!(
        c.log_text().contains("lost the leader lease"),
        "{}",
        c.log_text()
    );

    for op in [&a, &b, &c] {
        assert!(
            !op.log_text().contains(TOKEN),
            "{} logged the token",
            op.identity
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_apiserver_stops_before_its_lease_expires() {
    let w = World::start("ha-partition").await;
    let plane = ControlPlane::shared();
    let proxy = Proxy::start(plane.server().trim_start_matches("https://").to_owned()).await;
    let kubeconfig = proxy.kubeconfig(&run_dir(&w.ns).join("kubeconfig"));
    let mut a = Operator::spawn_with(&kubeconfig, &w.ns, "op-a", false);
    wait_holder(&w.leases, "op-a").await;
    let b = Operator::spawn(&w.ns, "op-b", false);
    b.wait_ready("standby").await;
    create_ready(&w.links, &["before"]).await;

    proxy.cut();
    let status = a.exited().await;
    let stopped = Timestamp::now();
    assert!(
        !status.success(),
        "a leader that cannot renew exits non-zero"
    );
    assert!(
        a.log_text().contains("no renewal confirmed in time"),
        "{}",
        a.log_text()
    );
    // It stopped while the Lease still named it, before any standby could take it over.
    let held = w.leases.get(LEASE).await.expect("lease");
    assert_eq!(
        held.spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref()),
        Some("op-a")
    );
    let expiry = lease_time(&held, "renewTime") + Duration::from_secs(LEASE_SECS);
    assert!(
        stopped < expiry,
        "stopped at {stopped}, the lease expired at {expiry}"
    );
    let taken = wait_holder(&w.leases, "op-b").await;
    assert!(lease_time(&taken, "acquireTime") >= expiry);
    eprintln!(
        "partition: the leader stopped {:?} before its lease expired",
        Duration::try_from(expiry - stopped).unwrap_or_default()
    );

    b.wait_ready("ready\n").await;
    create_ready(&w.links, &["after"]).await;
    w.assert_one_polar_link_per_checkout_link(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_election_needs_only_get_create_and_patch_on_leases() {
    init_logging();
    let plane = ControlPlane::shared();
    let (admin, ns) = plane.namespace("ha-rbac").await.expect("namespace");
    let user = format!("{ns}-elector");
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "elector"},
        "rules": [{
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "patch"],
        }],
    }))
    .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "elector"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "elector"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }))
    .unwrap();
    let pp = PostParams::default();
    Api::<Role>::namespaced(admin.clone(), &ns)
        .create(&pp, &role)
        .await
        .expect("role");
    Api::<RoleBinding>::namespaced(admin.clone(), &ns)
        .create(&pp, &binding)
        .await
        .expect("binding");
    let client = testenv::client_from_yaml(&plane.kubeconfig_for_user(&user, None).unwrap())
        .await
        .expect("client");
    let leases: Api<Lease> = Api::namespaced(admin, &ns);
    let metrics = Arc::new(Metrics::new());
    let election = Election {
        namespace: ns.clone(),
        lease_name: LEASE.to_owned(),
        identity: "elector".to_owned(),
        timing: Timing::new(Duration::from_secs(LEASE_SECS)),
    };

    // Creates the Lease, takes it, renews it, releases it; then takes over an expired Lease
    // held by someone else.
    for round in ["create", "take over"] {
        if round == "take over" {
            let an_hour_ago = MicroTime(Timestamp::now() - Duration::from_secs(3600));
            leases
                .patch(
                    LEASE,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {
                        "holderIdentity": "an-earlier-leader",
                        "acquireTime": an_hour_ago,
                        "renewTime": an_hour_ago,
                        "leaseDurationSeconds": 15,
                    }})),
                )
                .await
                .expect("an expired lease");
        }
        let elector = Elector::new(
            client.clone(),
            election.clone(),
            metrics.clone(),
            Readiness::default(),
        );
        let led = within(
            Duration::from_secs(30),
            round,
            elector.lead(std::future::pending(), || async {
                let lease = wait_holder(&leases, "elector").await;
                assert!(metrics.encode().contains("checkout_link_operator_leader 1"));
                let acquired = lease_time(&lease, "acquireTime");
                poll("a renewal", || async {
                    let lease = leases.get(LEASE).await.ok()?;
                    (lease_time(&lease, "renewTime") > acquired).then_some(())
                })
                .await;
            }),
        )
        .await;
        assert_eq!(led, Ok(()), "{round}");
        assert_eq!(holder(&leases).await, None, "{round}: released");
        assert!(metrics.encode().contains("checkout_link_operator_leader 0"));
    }
}
