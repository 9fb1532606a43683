//! High availability: real operator processes with `--leader-election` against the real
//! apiserver and one emulator per test. One holds the Lease and alone calls Polar; SIGTERM
//! releases the Lease so the standby takes over at once; after a SIGKILL a fresh standby takes
//! over once the Lease expires; a leader cut off from the apiserver, or that sees another
//! holder, exits non-zero, before the Lease it holds expires. No link is created twice. And
//! the election needs only `get`, `create` and `patch` on Leases.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use checkout_link_operator::CheckoutLink;
use checkout_link_operator::leader::{Election, Elector, Timing};
use checkout_link_operator::metrics::Metrics;
use checkout_link_operator::server::Readiness;
use common::objects::lease_holder;
use common::process::{LEADER, Operator, PROCESS_TIMEOUT};
use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use testenv::ControlPlane;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

const LEASE: &str = "checkout-link-operator";
/// The lease duration given to the operators.
const LEASE_SECS: u64 = 4;

/// Starts the binary for `ns`, with `--leader-election` as a flag or (`via_env`) through its
/// environment variable; `kubeconfig`: the shared control plane's by default.
fn spawn(kubeconfig: Option<&Path>, ns: &str, identity: &str, via_env: bool) -> Operator {
    let plane = ControlPlane::shared();
    let kubeconfig = kubeconfig.unwrap_or(plane.kubeconfig_path());
    let mut args = vec![
        format!("--namespace={ns}"),
        format!("--default-credentials-secret={ns}/{SECRET}"),
        format!("--leader-election-namespace={ns}"),
        format!("--leader-election-lease-duration={LEASE_SECS}s"),
        format!("--leader-election-identity={identity}"),
        "--log-level=info,kube_lease_manager=debug".to_owned(),
    ];
    let mut env = Vec::new();
    if via_env {
        env.push(("CHECKOUT_LINK_OPERATOR_LEADER_ELECTION", "true"));
    } else {
        args.push("--leader-election".to_owned());
    }
    let log = run_dir(ns).join(format!("{identity}.log"));
    Operator::spawn(identity, kubeconfig, &log, args, &env)
}

/// This test's files (operator logs, kubeconfig), beside the control plane's logs.
fn run_dir(ns: &str) -> PathBuf {
    let dir = ControlPlane::shared().dir().join("operator_ha").join(ns);
    std::fs::create_dir_all(&dir).expect("test directory");
    dir
}

/// The Lease's holder, if any.
async fn holder(leases: &Api<Lease>) -> Option<String> {
    lease_holder(leases, LEASE).await
}

/// Waits until `identity` holds the Lease; returns the Lease.
async fn wait_holder(leases: &Api<Lease>, identity: &str) -> Lease {
    let what = format!("{identity} to hold the lease");
    eventually(&what, PROCESS_TIMEOUT, async || {
        let lease = leases.get_opt(LEASE).await.expect("get lease");
        let holder = lease
            .as_ref()
            .and_then(|l| l.spec.as_ref()?.holder_identity.clone());
        match lease {
            Some(lease) if holder.as_deref() == Some(identity) => Ok(lease),
            _ => Err(format!("holder {holder:?}")),
        }
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

/// One test's namespace, emulator and default credentials Secret (no controller in-process:
/// the operator processes are the controllers).
struct World {
    ns: String,
    emulator: polar_emulator::Emulator,
    objects: Objects,
    links: Api<CheckoutLink>,
    leases: Api<Lease>,
}

impl World {
    async fn start(test: &str) -> World {
        let (client, ns) = namespace(test).await;
        let emulator = emulator(polar_emulator::Config::default()).await;
        let objects = Objects::new(client.clone(), &ns);
        objects
            .put_secret(SECRET, TOKEN, &emulator.base_url())
            .await;
        World {
            links: objects.links.clone(),
            leases: Api::namespaced(client, &ns),
            objects,
            ns,
            emulator,
        }
    }

    /// Creates CheckoutLinks `names` and waits until each is Ready at its generation.
    async fn create_ready(&self, names: &[&str]) {
        for name in names {
            let spec = json!({"label": name, "products": [EBOOK]});
            self.objects.create_with(name, json!({}), spec).await;
        }
        for name in names {
            self.objects.wait_ready(name).await;
        }
    }

    /// Polar holds exactly one link per CheckoutLink, each created once.
    async fn assert_one_polar_link_per_checkout_link(&self, count: usize) {
        assert_one_polar_link_per_checkout_link(&self.links, &self.emulator, count).await
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
    let (ns, leases) = (&w.ns, &w.leases);
    // Two replicas: exactly one leads, the other stands by, both are ready.
    let a = spawn(None, ns, "op-a", false);
    let b = spawn(None, ns, "op-b", true);
    let first = eventually("a lease holder", PROCESS_TIMEOUT, async || {
        found(holder(leases).await)
    })
    .await;
    let (leader, standby) = if first == "op-a" { (&a, &b) } else { (&b, &a) };
    leader.wait_ready("ready\n").await;
    standby.wait_ready("standby").await;
    assert_eq!(leader.metric(LEADER).await, 1.0);
    assert_eq!(standby.metric(LEADER).await, 0.0);

    w.create_ready(&["one", "two", "three"]).await;
    assert!(leader.polar_requests().await > 0.0);
    assert_eq!(
        standby.polar_requests().await,
        0.0,
        "the standby never calls Polar"
    );
    assert_eq!(holder(leases).await.as_deref(), Some(leader.name.as_str()));

    // SIGTERM: the leader finishes, releases the Lease and exits 0; the standby takes it
    // before the leader's last renewal would have expired.
    let last = leases.get(LEASE).await.expect("lease");
    let sigterm = Instant::now();
    leader.signal("TERM");
    let status = leader.exited().await;
    assert!(status.success(), "{} exited with {status}", leader.name);
    assert_ne!(
        holder(leases).await.as_deref(),
        Some(leader.name.as_str()),
        "the lease is released on SIGTERM"
    );
    assert!(leader.log().contains("released the leader lease"));
    let taken = wait_holder(leases, &standby.name).await;
    let took = sigterm.elapsed();
    eprintln!("takeover after SIGTERM: {took:?}");
    let expiry = lease_time(&last, "renewTime") + Duration::from_secs(LEASE_SECS);
    assert!(
        lease_time(&taken, "acquireTime") < expiry,
        "the standby took the released lease without waiting for it to expire"
    );
    let b_leads = standby;
    b_leads.wait_ready("ready\n").await;
    assert_eq!(b_leads.metric(LEADER).await, 1.0);
    w.create_ready(&["four", "five", "six"]).await;
    assert!(b_leads.polar_requests().await > 0.0);

    // A fresh standby; SIGKILL of the leader: the Lease is not released, the standby takes
    // it once it has expired, not before.
    let c = spawn(None, ns, "op-c", false);
    c.wait_ready("standby").await;
    // A standby makes no Polar call while the leader lives (read before the kill: once op-c
    // has taken the lease, its calls may start at any moment).
    w.create_ready(&["while-c-waits"]).await;
    assert_eq!(
        c.polar_requests().await,
        0.0,
        "no Polar call before leading"
    );
    b_leads.kill();
    let killed = Instant::now();
    let dead = leases.get(LEASE).await.expect("lease");
    assert_eq!(
        dead.spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref()),
        Some(b_leads.name.as_str())
    );
    let taken = wait_holder(leases, "op-c").await;
    let took = killed.elapsed();
    eprintln!("takeover after SIGKILL: {took:?} (lease {LEASE_SECS}s)");
    let expiry = lease_time(&dead, "renewTime") + Duration::from_secs(LEASE_SECS);
    assert!(
        lease_time(&taken, "acquireTime") >= expiry,
        "the standby must not take a lease before it expires"
    );
    c.wait_ready("ready\n").await;
    w.create_ready(&["seven", "eight", "nine"]).await;
    assert_eq!(c.metric(LEADER).await, 1.0);
    assert!(c.polar_requests().await > 0.0);

    // Every CheckoutLink has its own Polar link, created once.
    w.assert_one_polar_link_per_checkout_link(10).await;

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
    assert!(c.log().contains("lost the leader lease"), "{}", c.log());

    for op in [&a, &b, &c] {
        assert!(!op.log().contains(TOKEN), "{} logged the token", op.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_apiserver_stops_before_its_lease_expires() {
    let w = World::start("ha-partition").await;
    let plane = ControlPlane::shared();
    let proxy = Proxy::start(plane.server().trim_start_matches("https://").to_owned()).await;
    let kubeconfig = proxy.kubeconfig(&run_dir(&w.ns).join("kubeconfig"));
    let a = spawn(Some(&kubeconfig), &w.ns, "op-a", false);
    wait_holder(&w.leases, "op-a").await;
    let b = spawn(None, &w.ns, "op-b", false);
    b.wait_ready("standby").await;
    w.create_ready(&["before"]).await;

    proxy.cut();
    let status = a.exited().await;
    let stopped = Timestamp::now();
    assert!(
        !status.success(),
        "a leader that cannot renew exits non-zero"
    );
    assert!(
        a.log().contains("no renewal confirmed in time"),
        "{}",
        a.log()
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
    w.create_ready(&["after"]).await;
    w.assert_one_polar_link_per_checkout_link(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_election_needs_only_get_create_and_patch_on_leases() {
    let (admin, ns) = namespace("ha-rbac").await;
    let plane = ControlPlane::shared();
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
                eventually("a renewal", PROCESS_TIMEOUT, async || {
                    let lease = leases.get(LEASE).await.map_err(|e| e.to_string())?;
                    let renewed = lease_time(&lease, "renewTime");
                    (renewed > acquired)
                        .then_some(())
                        .ok_or(format!("renewTime {renewed}, acquired {acquired}"))
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
