//! `make bench`: the operator binary against a real control plane and the emulator with Polar's
//! rate limit, measured on every figure of DESIGN.md §7; prints one table with each figure's
//! ratio to its goal. Figures only: nothing here passes or fails.
//!
//! `BENCH_N` (default 1000) is the number of links; `BENCH_N=10000` runs the design size.
//! `BENCH_INTERVAL` (seconds, default 20) is the sweep interval, `BENCH_RATE` (default 3000)
//! the emulator's limit per minute (the operator is told the same and uses 90% of it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

use checkout_link_operator::CheckoutLink;

const TOKEN: &str = "polar_oat_AcmeDemoWriteToken00000000000000000013Difp9";
const EBOOK: &str = "a1000000-0000-4000-8000-000000000001";
const SHARE: f64 = 0.9;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn say(s: &str) {
    eprintln!("[bench] {s}");
}

/// The operator binary, run as a process so that its memory can be read.
struct Operator {
    child: Child,
    addr: String,
    http: reqwest::Client,
}

impl Operator {
    fn start(
        kubeconfig: &std::path::Path,
        secret: &str,
        interval: u64,
        rate: u64,
        extra: &[&str],
    ) -> Operator {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(target_dir().join("bench-operator.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_checkout-link-operator"))
            .args([
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
                "--default-credentials-secret",
                secret,
                "--resync-interval",
                &format!("{interval}s"),
                "--polar-rate-limit",
                &rate.to_string(),
                "--polar-rate-share",
                &SHARE.to_string(),
                "--metrics-addr",
                &addr,
                "--log-level",
                "warn",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the operator");
        Operator {
            child,
            addr,
            http: reqwest::Client::new(),
        }
    }

    async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let r = self
                .http
                .get(format!("http://{}/readyz", self.addr))
                .send()
                .await;
            if r.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "the operator never became ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The sum of every sample of a metric whose name and labels start with `prefix`.
    async fn metric(&self, prefix: &str) -> f64 {
        let Ok(r) = self
            .http
            .get(format!("http://{}/metrics", self.addr))
            .send()
            .await
        else {
            return 0.0;
        };
        let text = r.text().await.unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn target_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&dir).ok();
    dir
}

fn ready_at_generation(link: &CheckoutLink) -> bool {
    let status = link.status.as_ref();
    status.and_then(|s| s.observed_generation) == link.metadata.generation
        && status.is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

fn count_ready(store: &Store<CheckoutLink>) -> usize {
    store
        .state()
        .iter()
        .filter(|l| ready_at_generation(l))
        .count()
}

async fn wait(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < timeout, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

fn link_calls(emulator: &polar_emulator::Emulator) -> BTreeMap<String, u64> {
    emulator
        .counters()
        .into_iter()
        .filter(|(k, _)| k.contains("/v1/"))
        .collect()
}

fn calls(c: &BTreeMap<String, u64>, key: &str) -> u64 {
    c.get(key).copied().unwrap_or(0)
}

const POST: &str = "POST /v1/checkout-links/";
const LIST: &str = "GET /v1/checkout-links/";
const GET: &str = "GET /v1/checkout-links/{id}";
const PATCH: &str = "PATCH /v1/checkout-links/{id}";
const DELETE: &str = "DELETE /v1/checkout-links/{id}";

/// Polar calls other than sweeps.
fn link_writes_and_reads(c: &BTreeMap<String, u64>) -> u64 {
    calls(c, POST) + calls(c, GET) + calls(c, PATCH) + calls(c, DELETE)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

struct Row {
    id: &'static str,
    figure: String,
    measured: f64,
    unit: &'static str,
    goal: f64,
    /// `true`: lower is better (a ceiling); `false`: an exact target.
    ceiling: bool,
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    checkout_link_operator::polar::install_crypto_provider();
    let n = env_or("BENCH_N", 1000) as usize;
    let interval = env_or("BENCH_INTERVAL", 20);
    let rate = env_or("BENCH_RATE", 3000);
    let per_second = rate as f64 * SHARE / 60.0;
    let pages = n.div_ceil(100) as f64;
    let mut rows: Vec<Row> = Vec::new();
    say(&format!(
        "N = {n}, sweep interval {interval} s, emulator limit {rate}/min (operator paces at {per_second:.0}/s)"
    ));

    let plane = testenv::ControlPlane::shared();
    let (client, ns) = plane.namespace("bench").await.unwrap();
    let emulator = polar_emulator::spawn(
        polar_emulator::Config {
            rate_limit: rate as u32,
            rate_limit_window: Duration::from_secs(60),
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "polar"},
        "stringData": {"token": TOKEN, "server": emulator.base_url()}
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    let links: Api<CheckoutLink> = Api::namespaced(client.clone(), &ns);
    let (store, writer) = reflector::store::<CheckoutLink>();
    let reflect = watcher(links.clone(), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .for_each(|_| async {});
    tokio::spawn(reflect);

    // P6 idle.
    let operator = Operator::start(
        plane.kubeconfig_path(),
        &format!("{ns}/polar"),
        interval,
        rate,
        &[],
    );
    operator.ready().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_idle = operator.rss_mib();

    // P1: N new links, applied at once.
    say(&format!("P1: applying {n} CheckoutLinks"));
    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let links = links.clone();
            async move {
                let link: CheckoutLink = serde_json::from_value(json!({
                    "apiVersion": "polar.sh/v1alpha1", "kind": "CheckoutLink",
                    "metadata": {"name": format!("l{i}")},
                    "spec": {"products": [EBOOK], "label": format!("link {i}")}
                }))
                .unwrap();
                links.create(&PostParams::default(), &link).await.unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let applied = started.elapsed();
    wait("every link Ready", Duration::from_secs(3600), || {
        count_ready(&store) == n
    })
    .await;
    let converged = started.elapsed().as_secs_f64();
    rows.push(Row {
        id: "P1",
        figure: format!(
            "{n} new links converge (applied in {:.1} s)",
            applied.as_secs_f64()
        ),
        measured: converged,
        unit: "s",
        goal: 1.05 * n as f64 / per_second + 10.0,
        ceiling: true,
    });
    let rss_at_n = operator.rss_mib();

    // P3 and P4 (sweeps): several intervals of nothing changing.
    tokio::time::sleep(Duration::from_secs(interval)).await;
    emulator.reset_counters();
    let writes_before = operator
        .metric("checkout_link_operator_status_writes_total")
        .await;
    let intervals = 3;
    say(&format!(
        "P3/P4: {intervals} sweep intervals with nothing changing"
    ));
    tokio::time::sleep(Duration::from_secs(interval * intervals)).await;
    let quiet = link_calls(&emulator);
    let status_writes = operator
        .metric("checkout_link_operator_status_writes_total")
        .await
        - writes_before;
    rows.push(Row {
        id: "P3",
        figure: format!("Polar writes over {intervals} intervals"),
        measured: (calls(&quiet, POST) + calls(&quiet, PATCH) + calls(&quiet, DELETE)) as f64,
        unit: "calls",
        goal: 0.0,
        ceiling: true,
    });
    rows.push(Row {
        id: "P3",
        figure: format!("Kubernetes status writes over {intervals} intervals"),
        measured: status_writes,
        unit: "writes",
        goal: 0.0,
        ceiling: true,
    });
    rows.push(Row {
        id: "P4",
        figure: "sweep (list) calls per interval".into(),
        measured: calls(&quiet, LIST) as f64 / intervals as f64,
        unit: "calls",
        goal: 1.01 * pages + 1.0,
        ceiling: true,
    });
    rows.push(Row {
        id: "P4",
        figure: "other Polar calls between changes (GETs)".into(),
        measured: calls(&quiet, GET) as f64,
        unit: "calls",
        goal: 0.0,
        ceiling: true,
    });

    // P2: one create, one update, one delete, one no-op.
    say("P2: calls per create, update, delete and no-op");
    let mut p2 = |figure: &str, before: &BTreeMap<String, u64>, goal: f64| {
        let after = link_calls(&emulator);
        let spent = link_writes_and_reads(&after) - link_writes_and_reads(before);
        rows.push(Row {
            id: "P2",
            figure: figure.to_owned(),
            measured: spent as f64,
            unit: "calls",
            goal,
            ceiling: false,
        });
    };
    let before = link_calls(&emulator);
    let one: CheckoutLink = serde_json::from_value(json!({
        "apiVersion": "polar.sh/v1alpha1", "kind": "CheckoutLink",
        "metadata": {"name": "one"}, "spec": {"products": [EBOOK], "label": "one"}
    }))
    .unwrap();
    links.create(&PostParams::default(), &one).await.unwrap();
    wait("one Ready", Duration::from_secs(120), || {
        store
            .state()
            .iter()
            .any(|l| l.metadata.name.as_deref() == Some("one") && ready_at_generation(l))
    })
    .await;
    p2("calls for one create", &before, 1.0);
    let before = link_calls(&emulator);
    links
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"label": "one, renamed"}})),
        )
        .await
        .unwrap();
    wait("one updated", Duration::from_secs(120), || {
        store.state().iter().any(|l| {
            l.metadata.name.as_deref() == Some("one")
                && l.metadata.generation == Some(2)
                && ready_at_generation(l)
        })
    })
    .await;
    p2("calls for one spec change", &before, 1.0);
    let before = link_calls(&emulator);
    let reconciles = operator
        .metric("checkout_link_operator_reconciles_total")
        .await;
    links
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"bench/touched": "yes"}}})),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while operator
        .metric("checkout_link_operator_reconciles_total")
        .await
        <= reconciles
    {
        assert!(Instant::now() < deadline, "the no-op never reconciled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    p2("calls for a no-op reconcile", &before, 0.0);
    let before = link_calls(&emulator);
    links.delete("one", &DeleteParams::default()).await.unwrap();
    wait("one gone", Duration::from_secs(120), || {
        !store
            .state()
            .iter()
            .any(|l| l.metadata.name.as_deref() == Some("one"))
    })
    .await;
    p2("calls for one delete", &before, 1.0);

    // P4: drift corrected.
    say("P4: 10 out-of-band edits and 5 deletions");
    let state = store.state();
    let ids: Vec<(String, String)> = state
        .iter()
        .filter_map(|l| Some((l.metadata.name.clone()?, l.status.as_ref()?.id.clone()?)))
        .take(15)
        .collect();
    let started = Instant::now();
    for (_, id) in &ids[..10] {
        emulator
            .edit_link(id, json!({"label": "edited in the dashboard"}))
            .unwrap();
    }
    for (_, id) in &ids[10..] {
        emulator.delete_link(id).unwrap();
    }
    wait(
        "drift corrected",
        Duration::from_secs(interval * 10 + 60),
        || {
            let edited_back = ids[..10].iter().all(|(_, id)| {
                emulator
                    .link(id)
                    .is_some_and(|l| l["label"] != "edited in the dashboard")
            });
            let recreated = ids[10..].iter().all(|(name, id)| {
                store.state().iter().any(|l| {
                    l.metadata.name.as_ref() == Some(name)
                        && l.status.as_ref().and_then(|s| s.id.as_ref()) != Some(id)
                        && ready_at_generation(l)
                })
            });
            edited_back && recreated
        },
    )
    .await;
    rows.push(Row {
        id: "P4",
        figure: "10 edits and 5 deletions corrected".into(),
        measured: started.elapsed().as_secs_f64(),
        unit: "s",
        goal: interval as f64 + 10.0,
        ceiling: true,
    });

    // P6: large unrelated Secrets.
    say("P6: 200 Secrets of 1 MiB in another namespace");
    let (_, other) = plane.namespace("bench-secrets").await.unwrap();
    let big: Api<Secret> = Api::namespaced(client.clone(), &other);
    let payload = "x".repeat(1 << 20);
    // Measured right before and after the Secrets, so that the allocator growth of P2-P4
    // does not count as theirs.
    let rss_before_secrets = operator.rss_mib();
    futures::stream::iter(0..200)
        .map(|i| {
            let big = big.clone();
            let payload = payload.clone();
            async move {
                let s: Secret = serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("big-{i}")},
                    "stringData": {"blob": payload}
                }))
                .unwrap();
                big.create(&PostParams::default(), &s).await.unwrap();
            }
        })
        .buffer_unordered(4)
        .collect::<Vec<()>>()
        .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss_big_secrets = operator.rss_mib();
    let _ = Api::<Namespace>::all(client.clone())
        .delete(&other, &DeleteParams::default())
        .await;

    // P7: single applies while a sweep runs (list pages slowed so that sweeps never stop).
    say("P7: 20 single applies while a sweep is running");
    let latency = ((interval * 1000) as f64 / pages).ceil() as u64 + 50;
    emulator.set_faults(vec![polar_emulator::FaultRule {
        method: "GET".into(),
        path: "/v1/checkout-links/".into(),
        latency_ms: latency,
        ..Default::default()
    }]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    emulator.clear_requests();
    let mut latencies = Vec::new();
    let mut windows = Vec::new();
    for i in 0..20 {
        let name = format!("l{i}");
        let generation = store
            .state()
            .iter()
            .find(|l| l.metadata.name.as_ref() == Some(&name))
            .and_then(|l| l.metadata.generation)
            .unwrap_or(1);
        let applied_at = chrono_now();
        let t = Instant::now();
        links
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"label": format!("applied {i}")}})),
            )
            .await
            .unwrap();
        wait("an apply Ready", Duration::from_secs(120), || {
            store.state().iter().any(|l| {
                l.metadata.name.as_ref() == Some(&name)
                    && l.metadata.generation > Some(generation)
                    && ready_at_generation(l)
            })
        })
        .await;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        windows.push((applied_at, chrono_now()));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    emulator.clear_faults();
    let lists: Vec<(f64, f64)> = emulator
        .requests()
        .iter()
        .filter(|r| r.route.as_deref() == Some("/v1/checkout-links/") && r.method == "GET")
        .filter_map(|r| {
            // The log's timestamp is when the answer was sent.
            let end = parse_time(&r.timestamp)?;
            Some((end - r.duration_ms / 1000.0, end))
        })
        .collect();
    let during = windows
        .iter()
        .filter(|(a, b)| lists.iter().any(|(s, e)| s < b && e > a))
        .count();
    latencies.sort_by(f64::total_cmp);
    rows.push(Row {
        id: "P7",
        figure: format!("apply → Ready p50 ({during}/20 during a sweep)"),
        measured: percentile(&latencies, 0.5),
        unit: "ms",
        goal: 1000.0,
        ceiling: true,
    });
    rows.push(Row {
        id: "P7",
        figure: "apply → Ready p99".into(),
        measured: percentile(&latencies, 0.99),
        unit: "ms",
        goal: 1000.0,
        ceiling: true,
    });

    // P5: restart with N settled links.
    say("P5: operator restart with every link settled");
    tokio::time::sleep(Duration::from_secs(3)).await;
    operator.stop();
    emulator.reset_counters();
    let not_ready = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let operator = Operator::start(
        plane.kubeconfig_path(),
        &format!("{ns}/polar"),
        interval,
        rate,
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(3600);
    while operator
        .metric("checkout_link_operator_reconciles_total{result=\"ok\"}")
        .await
        < n as f64
    {
        if count_ready(&store) < n {
            not_ready.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        assert!(Instant::now() < deadline, "the restart never settled");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let restart = started.elapsed().as_secs_f64();
    let restart_calls: u64 = link_calls(&emulator).values().sum();
    rows.push(Row {
        id: "P5",
        figure: format!("Polar calls for a restart ({restart:.1} s to settle)"),
        measured: restart_calls as f64,
        unit: "calls",
        goal: pages + 2.0,
        ceiling: true,
    });
    rows.push(Row {
        id: "P5",
        figure: "samples with a link not Ready during the restart".into(),
        measured: not_ready.load(std::sync::atomic::Ordering::Relaxed) as f64,
        unit: "samples",
        goal: 0.0,
        ceiling: true,
    });
    operator.stop();

    // P9: campaign results: 250 new orders through N links in one interval.
    let orders = env_or("BENCH_ORDERS", 250) as usize;
    say(&format!(
        "P9: campaign results, {orders} orders through {n} links"
    ));
    let operator = Operator::start(
        plane.kubeconfig_path(),
        &format!("{ns}/polar"),
        interval,
        rate,
        &["--campaign-results"],
    );
    wait("every link with results", Duration::from_secs(3600), || {
        store
            .state()
            .iter()
            .all(|l| l.status.as_ref().is_some_and(|s| s.results.is_some()))
    })
    .await;
    let ids: Vec<String> = store
        .state()
        .iter()
        .filter_map(|l| l.status.as_ref()?.id.clone())
        .collect();
    emulator.reset_counters();
    emulator.clear_requests();
    let mut rng = rand::rng();
    for _ in 0..orders {
        let id = &ids[rand::Rng::random_range(&mut rng, 0..ids.len())];
        emulator
            .buy(id, polar_emulator::BuyOptions::default())
            .expect("a purchase");
    }
    let counted = |store: &Store<CheckoutLink>| -> i64 {
        store
            .state()
            .iter()
            .filter_map(|l| Some(l.status.as_ref()?.results.as_ref()?.orders))
            .sum()
    };
    let took = wait("every order counted", Duration::from_secs(600), || {
        counted(&store) == orders as i64
    })
    .await;
    // Every orders sweep reads from the newest order it read less a minute, so while the
    // orders are being counted each sweep reads them again: the cost is per sweep.
    let orders_reads: Vec<_> = emulator
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/v1/orders/")
        .collect();
    assert_eq!(
        orders_reads.len() as u64,
        calls(&emulator.counters(), "GET /v1/orders/"),
        "the emulator's request log kept every orders call"
    );
    let sweeps = orders_reads
        .iter()
        .filter(|r| {
            r.query
                .as_deref()
                .is_some_and(|q| q.split('&').any(|kv| kv == "page=1"))
        })
        .count()
        .max(1);
    rows.push(Row {
        id: "P9",
        figure: format!(
            "orders calls per orders sweep while {orders} new orders through {n} links are counted ({} calls, {sweeps} sweeps, {:.1} s)",
            orders_reads.len(),
            took.as_secs_f64()
        ),
        measured: orders_reads.len() as f64 / sweeps as f64,
        unit: "calls",
        goal: orders.div_ceil(100) as f64 + 1.0,
        ceiling: true,
    });
    operator.stop();

    rows.push(Row {
        id: "P6",
        figure: "RSS idle".into(),
        measured: rss_idle,
        unit: "MiB",
        goal: 16.0,
        ceiling: true,
    });
    rows.push(Row {
        id: "P6",
        figure: format!("RSS with {n} settled links (the goal is for 10,000)"),
        measured: rss_at_n,
        unit: "MiB",
        goal: 64.0,
        ceiling: true,
    });
    rows.push(Row {
        id: "P6",
        figure: format!(
            "RSS change from 200 unrelated 1 MiB Secrets ({rss_before_secrets:.2} -> {rss_big_secrets:.2} MiB)"
        ),
        measured: (rss_big_secrets - rss_before_secrets).abs(),
        unit: "MiB",
        goal: 5.0,
        ceiling: true,
    });

    // P8: the emulator alone.
    say("P8: emulator throughput and paged lists at 10,000 links");
    let (throughput, first_page, last_page) = emulator_figures().await;
    rows.push(Row {
        id: "P8",
        figure: "emulator throughput (16 connections, GET)".into(),
        measured: throughput,
        unit: "req/s",
        goal: 5000.0,
        ceiling: false,
    });
    rows.push(Row {
        id: "P8",
        figure: format!(
            "list page 100 vs page 1 at 10,000 links ({first_page:.2} ms vs {last_page:.2} ms)"
        ),
        measured: last_page / first_page,
        unit: "×",
        goal: 1.5,
        ceiling: true,
    });

    print_table(n, &rows);
}

fn chrono_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn parse_time(ts: &str) -> Option<f64> {
    let t: k8s_openapi::jiff::Timestamp = ts.parse().ok()?;
    Some(t.as_microsecond() as f64 / 1e6)
}

/// Requests per second of GETs, and the mean time of list page 1 and page 100, against an
/// emulator holding 10,000 links.
async fn emulator_figures() -> (f64, f64, f64) {
    let emulator = polar_emulator::spawn(
        polar_emulator::Config {
            rate_limit: 0,
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let base = emulator.base_url();
    let http = reqwest::Client::new();
    let ids: Vec<String> = futures::stream::iter(0..10_000)
        .map(|i| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let body = json!({"payment_processor": "stripe", "products": [EBOOK], "label": format!("p8 {i}")});
                let r: Value = http
                    .post(format!("{base}/v1/checkout-links/"))
                    .bearer_auth(TOKEN)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                r["id"].as_str().unwrap().to_owned()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let page = |p: u32| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let t = Instant::now();
            let r = http
                .get(format!(
                    "{base}/v1/checkout-links/?page={p}&limit=100&sorting=created_at"
                ))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            r.bytes().await.unwrap();
            t.elapsed().as_secs_f64() * 1000.0
        }
    };
    let mut first = 0.0;
    let mut last = 0.0;
    for _ in 0..20 {
        first += page(1).await;
        last += page(100).await;
    }
    let stop = Instant::now() + Duration::from_secs(3);
    let ids = Arc::new(ids);
    let done: Vec<u64> = futures::future::join_all((0..16).map(|w| {
        let (http, base, ids) = (http.clone(), base.clone(), ids.clone());
        async move {
            let mut n = 0u64;
            while Instant::now() < stop {
                let id = &ids[(n as usize * 16 + w) % ids.len()];
                let r = http
                    .get(format!("{base}/v1/checkout-links/{id}"))
                    .bearer_auth(TOKEN)
                    .send()
                    .await;
                if let Ok(r) = r
                    && r.bytes().await.is_ok()
                {
                    n += 1;
                }
            }
            n
        }
    }))
    .await;
    (
        done.iter().sum::<u64>() as f64 / 3.0,
        first / 20.0,
        last / 20.0,
    )
}

fn print_table(n: usize, rows: &[Row]) {
    println!();
    println!("checkout-link-operator benchmark, N = {n} (DESIGN.md §7; ratio = measured / goal)");
    println!();
    println!("| # | figure | measured | goal | ratio |");
    println!("|---|---|---|---|---|");
    for r in rows {
        let goal = if r.ceiling {
            format!("≤ {} {}", fmt(r.goal), r.unit)
        } else {
            format!("{} {}", fmt(r.goal), r.unit)
        };
        let ratio = if r.goal == 0.0 {
            if r.measured == 0.0 {
                "0 (met)".to_owned()
            } else {
                "—".to_owned()
            }
        } else {
            format!("{:.2}", r.measured / r.goal)
        };
        println!(
            "| {} | {} | {} {} | {} | {} |",
            r.id,
            r.figure,
            fmt(r.measured),
            r.unit,
            goal,
            ratio
        );
    }
}

fn fmt(x: f64) -> String {
    if (x.fract() == 0.0 && x.abs() < 1e9) || x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}
