//! `make faults`: the operator binary against the real control plane and the emulator with
//! faults injected, printing one table of figures, each with its count of runs. Figures only:
//! nothing here passes or fails (the fast cases of each fault are tests in
//! `tests/operator_faults.rs`, run by `make test`).
//!
//! `FAULTS_KILL_CYCLES` (default 10, 10 runs each), `FAULTS_LINKS` (default 200),
//! `FAULTS_ONLY` (a comma-separated list of sections, default all).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::process::Operator;
use common::{ACME, EBOOK, Objects, TOKEN};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use polar_emulator::{Emulator, FaultRule};
use rand::Rng;
use serde_json::{Value, json};
use testenv::ControlPlane;

use checkout_link_operator::CheckoutLink;

const OWNER: &str = "k8s_checkout_link_uid";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn say(s: &str) {
    eprintln!("[faults] {s}");
}

fn log_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/faults");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Row {
    figure: String,
    runs: usize,
    measured: String,
    goal: String,
}

/// Every operator process of the suite, for the token search.
struct Logs(Vec<PathBuf>);

fn operator(plane: &ControlPlane, name: &str, logs: &mut Logs, args: &[String]) -> Operator {
    let log = log_dir().join(format!("{name}.log"));
    logs.0.push(log.clone());
    // Defaults, unless `args` sets the flag itself (clap refuses a flag given twice).
    let flag = |a: &str| a.split('=').next().unwrap_or(a).to_owned();
    let mut all: Vec<String> = [
        "--log-level=trace",
        "--log-format=json",
        "--resync-interval=2s",
        "--polar-timeout=3s",
    ]
    .iter()
    .filter(|d| !args.iter().any(|a| flag(a) == flag(d)))
    .map(|d| (*d).to_owned())
    .collect();
    all.extend(args.iter().cloned());
    Operator::spawn(name, plane.kubeconfig_path(), &log, all, &[])
}

async fn emulator(config: polar_emulator::Config) -> Emulator {
    polar_emulator::spawn(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn spec() -> Value {
    json!({"products": [EBOOK]})
}

/// Live links per owner UID.
fn tagged(emulator: &Emulator) -> BTreeMap<String, usize> {
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for l in emulator.links() {
        if let Some(uid) = l["metadata"][OWNER].as_str() {
            *by.entry(uid.to_owned()).or_default() += 1;
        }
    }
    by
}

fn ready(link: &CheckoutLink) -> bool {
    common::is_ready(link)
}

async fn wait_all_ready(objects: &Objects, emulator: &Emulator, timeout: Duration) -> bool {
    let started = Instant::now();
    loop {
        let links = objects.links.list(&ListParams::default()).await;
        if let Ok(list) = links {
            let all = list.items.iter().all(|l| {
                ready(l)
                    && l.status
                        .as_ref()
                        .and_then(|s| s.id.as_deref())
                        .is_some_and(|id| emulator.link(id).is_some())
            });
            if all && !list.items.is_empty() {
                return true;
            }
        }
        if started.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
    common::init_logging();
    let mut rows = Vec::new();
    let mut logs = Logs(Vec::new());
    let mut namespaces = Vec::new();
    // `FAULTS_ONLY=flaky,restarts` runs some sections (kills, flaky, restarts, namespaces,
    // credentials, admission); the token search always runs, over what did.
    let only = std::env::var("FAULTS_ONLY").unwrap_or_default();
    let on = |name: &str| only.is_empty() || only.split(',').any(|s| s.trim() == name);
    if on("kills") {
        rows.extend(kill_runs(&mut logs, &mut namespaces).await);
    }
    if on("flaky") {
        rows.extend(flaky_polar(&mut logs, &mut namespaces).await);
    }
    if on("restarts") {
        rows.extend(apiserver_restarts(&mut logs).await);
    }
    if on("namespaces") {
        rows.extend(namespace_deletions(&mut logs).await);
    }
    if on("credentials") {
        rows.extend(credentials_removed(&mut logs, &mut namespaces).await);
    }
    if on("admission") {
        rows.extend(invalid_manifests(&mut logs, &mut namespaces).await);
    }
    rows.push(token_search(&logs, &namespaces).await);
    println!();
    println!("checkout-link-operator fault suite (make faults)");
    println!();
    println!("| figure | runs | measured | goal |");
    println!("|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} |",
            r.figure, r.runs, r.measured, r.goal
        );
    }
}

/// SIGKILL at random points of creates and recreates, with lost answers and slow commits.
async fn kill_runs(logs: &mut Logs, namespaces: &mut Vec<(kube::Client, String)>) -> Vec<Row> {
    let cycles = env_or("FAULTS_KILL_CYCLES", 10) as usize;
    say(&format!(
        "kills: {cycles} cycles of 5 creates and 5 recreates"
    ));
    let plane = ControlPlane::shared();
    let (client, ns) = common::namespace("faults-kill").await;
    namespaces.push((client.clone(), ns.clone()));
    let objects = Objects::new(client, &ns);
    let emulator = emulator(polar_emulator::Config {
        rate_limit: 0,
        ..Default::default()
    })
    .await;
    objects
        .put_secret("polar", TOKEN, &emulator.base_url())
        .await;
    let args = vec![
        format!("--default-credentials-secret={ns}/polar"),
        format!("--namespace={ns}"),
    ];
    let mut op = operator(plane, "kill-0", logs, &args);
    let mut runs = 0;
    let mut not_ready = 0;
    let mut rng = rand::rng();
    for cycle in 0..cycles {
        let faults: Vec<FaultRule> = (0..3)
            .filter_map(|_| match rng.random_range(0..3) {
                0 => Some(FaultRule {
                    method: "POST".into(),
                    path: "/v1/checkout-links/".into(),
                    drop_response_after_commit: true,
                    count: Some(1),
                    ..Default::default()
                }),
                1 => Some(FaultRule {
                    method: "POST".into(),
                    path: "/v1/checkout-links/".into(),
                    commit_delay_ms: 4000,
                    count: Some(1),
                    ..Default::default()
                }),
                _ => None,
            })
            .collect();
        emulator.set_faults(faults);
        // Five recreates: links of earlier cycles deleted out of band.
        let existing = objects
            .links
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        for l in existing.iter().take(5) {
            if let Some(id) = l.status.as_ref().and_then(|s| s.id.as_deref()) {
                let _ = emulator.delete_link(id);
                runs += 1;
            }
        }
        for i in 0..5 {
            objects
                .create_with(&format!("c{cycle}-{i}"), json!({}), spec())
                .await;
            runs += 1;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..2500))).await;
        op.kill();
        let _ = op.exited().await;
        op = operator(plane, &format!("kill-{}", cycle + 1), logs, &args);
        if !wait_all_ready(&objects, &emulator, Duration::from_secs(180)).await {
            not_ready += 1;
        }
    }
    emulator.clear_faults();
    // Let duplicates that the sweeps would find be found (that is the mechanism measured).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let links = objects
        .links
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let by = tagged(&emulator);
    let duplicates: usize = links
        .iter()
        .map(|l| {
            by.get(&l.uid().unwrap_or_default())
                .copied()
                .unwrap_or(0)
                .saturating_sub(1)
        })
        .sum();
    let ready_count = links.iter().filter(|l| ready(l)).count();
    op.kill();
    vec![
        Row {
            figure: "SIGKILL during creates and recreates (lost answers, slow commits): duplicate live links".into(),
            runs,
            measured: duplicates.to_string(),
            goal: "0".into(),
        },
        Row {
            figure: format!("… resources Ready at the end ({not_ready} cycles timed out)"),
            runs,
            measured: format!("{ready_count}/{}", links.len()),
            goal: "all".into(),
        },
    ]
}

/// 200 links under 30% 5xx and 2 s of latency on every route, with Polar's rate limit hit.
async fn flaky_polar(logs: &mut Logs, namespaces: &mut Vec<(kube::Client, String)>) -> Vec<Row> {
    let n = env_or("FAULTS_LINKS", 200) as usize;
    say(&format!(
        "flaky Polar: {n} links, 30% 5xx, 2 s latency, a rate limit below the operator's pace"
    ));
    let plane = ControlPlane::shared();
    let (client, ns) = common::namespace("faults-flaky").await;
    namespaces.push((client.clone(), ns.clone()));
    let objects = Objects::new(client, &ns);
    // 40 per 10 s: below what 16 concurrent requests of 2 s each can send (8 per second).
    let emulator = emulator(polar_emulator::Config {
        rate_limit: 40,
        rate_limit_window: Duration::from_secs(10),
        ..Default::default()
    })
    .await;
    objects
        .put_secret("polar", TOKEN, &emulator.base_url())
        .await;
    emulator.set_faults(vec![FaultRule {
        method: "*".into(),
        path: "*".into(),
        latency_ms: 2000,
        error_rate: 0.3,
        error_statuses: vec![500, 502, 503],
        ..Default::default()
    }]);
    let args = vec![
        format!("--default-credentials-secret={ns}/polar"),
        format!("--namespace={ns}"),
        "--concurrency=16".into(),
        "--polar-rate-limit=3000".into(),
        "--polar-timeout=10s".into(),
    ];
    let op = operator(plane, "flaky", logs, &args);
    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let objects = &objects;
            async move {
                objects
                    .create_with(&format!("f{i}"), json!({}), spec())
                    .await;
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    let converged = wait_all_ready(&objects, &emulator, Duration::from_secs(1800)).await;
    let took = started.elapsed().as_secs_f64();
    emulator.clear_faults();
    let links = objects
        .links
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let ready_count = links.iter().filter(|l| ready(l)).count();
    // Every call, per link (a fault answered before the route has no body to attribute it
    // by, so the figures are totals divided by links).
    let requests = emulator.requests();
    let posts = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/v1/checkout-links"))
        .count();
    let inside = calls_inside_retry_after(&requests, Duration::from_secs(10));
    let limited = requests.iter().filter(|r| r.status == 429).count();
    op.kill();
    vec![
        Row {
            figure: format!("{n} links, 30% 5xx, 2 s latency: converged ({took:.0} s)"),
            runs: n,
            measured: format!(
                "{ready_count}/{n}{}",
                if converged { "" } else { " (timed out)" }
            ),
            goal: "all".into(),
        },
        Row {
            figure: "… Polar calls per link (every call, sweeps and retries, ÷ links)".into(),
            runs: n,
            measured: format!("{:.2}", requests.len() as f64 / n as f64),
            goal: "bounded (no storm)".into(),
        },
        Row {
            figure: "… creates sent per link (POSTs ÷ links; 30% fail)".into(),
            runs: n,
            measured: format!("{:.2}", posts as f64 / n as f64),
            goal: "≈ 1 ÷ 0.7 = 1.43".into(),
        },
        Row {
            figure: format!("… calls made inside a Retry-After window ({limited} answers 429)"),
            runs: limited,
            measured: inside.to_string(),
            goal: "0".into(),
        },
    ]
}

fn timestamp(ts: &str) -> f64 {
    ts.parse::<k8s_openapi::jiff::Timestamp>()
        .map(|t| t.as_microsecond() as f64 / 1e6)
        .unwrap_or(0.0)
}

/// Requests of the organisation sent after a 429 reached the operator and before its
/// `Retry-After` ran out (the log's timestamp is when an answer was sent).
fn calls_inside_retry_after(
    requests: &[polar_emulator::RequestLogEntry],
    window: Duration,
) -> usize {
    let limits: Vec<f64> = requests
        .iter()
        .filter(|r| r.status == 429)
        .map(|r| timestamp(&r.timestamp))
        .collect();
    requests
        .iter()
        .filter(|r| r.organization_id.as_deref() == Some(ACME) || r.status == 429)
        .filter(|r| {
            let sent = timestamp(&r.timestamp) - r.duration_ms / 1000.0;
            limits
                .iter()
                .any(|t| sent > *t + 0.05 && sent < *t + window.as_secs_f64() - 0.05)
        })
        .count()
}

/// kube-apiserver restarted twice (etcd kept) during a run of 200 links.
async fn apiserver_restarts(logs: &mut Logs) -> Vec<Row> {
    let n = env_or("FAULTS_LINKS", 200) as usize;
    say(&format!("apiserver restarts: {n} links, two restarts"));
    let crds: Vec<PathBuf> = [
        "checkoutlinks.polar.sh.yaml",
        "checkoutlinks.polar.sh-metadata-policy.yaml",
    ]
    .iter()
    .map(|f| testenv::repo_root().join("crds").join(f))
    .collect();
    let plane = tokio::task::spawn_blocking(move || {
        ControlPlane::start(testenv::Options {
            crds,
            ..Default::default()
        })
    })
    .await
    .unwrap()
    .expect("a control plane of its own");
    let (client, ns) = plane.namespace("faults-restart").await.unwrap();
    let objects = Objects::new(client, &ns);
    let emulator = emulator(polar_emulator::Config {
        rate_limit: 0,
        ..Default::default()
    })
    .await;
    objects
        .put_secret("polar", TOKEN, &emulator.base_url())
        .await;
    // Slow Polar a little, so that the run is still going when the apiserver goes down.
    emulator.set_faults(vec![FaultRule {
        method: "POST".into(),
        path: "/v1/checkout-links/".into(),
        latency_ms: 100,
        ..Default::default()
    }]);
    let args = vec![
        format!("--default-credentials-secret={ns}/polar"),
        format!("--namespace={ns}"),
    ];
    let op = operator(&plane, "restart", logs, &args);
    for i in 0..n - 10 {
        objects
            .create_with(&format!("r{i}"), json!({}), spec())
            .await;
    }
    // Round 0 restarts while the first creates are still being worked through; round 1 once
    // every link is Ready.
    let mut took = [0.0_f64; 2];
    for (round, took) in took.iter_mut().enumerate() {
        if round == 0 {
            tokio::time::sleep(Duration::from_secs(3)).await;
        } else {
            wait_all_ready(&objects, &emulator, Duration::from_secs(600)).await;
        }
        plane
            .restart_apiserver(Duration::from_secs(15))
            .await
            .expect("restart");
        let back = Instant::now();
        let names: Vec<String> = (0..5).map(|i| format!("after-{round}-{i}")).collect();
        for name in &names {
            objects.create_with(name, json!({}), spec()).await;
        }
        loop {
            let mut all = true;
            for name in &names {
                all &= objects.links.get(name).await.is_ok_and(|l| ready(&l));
            }
            if all || back.elapsed() > Duration::from_secs(300) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        *took = back.elapsed().as_secs_f64();
    }
    emulator.clear_faults();
    let converged = wait_all_ready(&objects, &emulator, Duration::from_secs(600)).await;
    let links = objects
        .links
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let by = tagged(&emulator);
    let duplicates: usize = by.values().map(|n| n.saturating_sub(1)).sum();
    let ready_count = links.iter().filter(|l| ready(l)).count();
    op.kill();
    vec![
        Row {
            figure: format!(
                "kube-apiserver restarted twice (15 s down, etcd kept): Ready, none lost{}",
                if converged { "" } else { " (timed out)" }
            ),
            runs: links.len(),
            measured: format!("{ready_count}/{n}"),
            goal: "all".into(),
        },
        Row {
            figure: "… duplicate live links".into(),
            runs: links.len(),
            measured: duplicates.to_string(),
            goal: "0".into(),
        },
        Row {
            figure: "… 5 links applied after a restart with every link settled: all Ready within"
                .into(),
            runs: 5,
            measured: format!("{:.1} s", took[1]),
            goal: "≤ 10 s".into(),
        },
        Row {
            figure: format!(
                "… 5 links applied after a restart amid {} creates: all Ready within",
                n - 10
            ),
            runs: 5,
            measured: format!("{:.1} s", took[0]),
            goal: "after the backlog".into(),
        },
    ]
}

/// Namespaces deleted with their own credentials, one of them with an operator restart.
async fn namespace_deletions(logs: &mut Logs) -> Vec<Row> {
    say("namespace deletions with per-namespace credentials");
    let plane = ControlPlane::shared_with_controllers();
    let emulator = emulator(polar_emulator::Config {
        rate_limit: 0,
        ..Default::default()
    })
    .await;
    let (admin, operator_ns) = common::namespace_in(plane, "faults-ns-operator").await;
    let default = Objects::new(admin.clone(), &operator_ns);
    default
        .put_secret("polar", TOKEN, &emulator.base_url())
        .await;
    let args = vec![format!("--default-credentials-secret={operator_ns}/polar")];
    let mut op = operator(plane, "namespaces-0", logs, &args);
    let mut uids = Vec::new();
    let mut runs = 0;
    for (round, restart) in [(0, false), (1, true), (2, false), (3, true)] {
        let (client, ns) = common::namespace_in(plane, &format!("faults-ns-{round}")).await;
        let objects = Objects::new(client.clone(), &ns);
        objects.put_secret("own", TOKEN, &emulator.base_url()).await;
        for i in 0..5 {
            let link = objects
                .create_with(
                    &format!("n{i}"),
                    json!({}),
                    json!({"products": [EBOOK], "credentialsSecretRef": {"name": "own"}}),
                )
                .await;
            uids.push(link.uid().unwrap_or_default());
            runs += 1;
        }
        for i in 0..5 {
            objects.wait_ready(&format!("n{i}")).await;
        }
        let namespaces: Api<Namespace> = Api::all(client);
        namespaces
            .delete(&ns, &DeleteParams::default())
            .await
            .unwrap();
        if restart {
            op.kill();
            let _ = op.exited().await;
            op = operator(plane, &format!("namespaces-{}", round + 1), logs, &args);
        }
        let started = Instant::now();
        while namespaces.get_opt(&ns).await.unwrap().is_some()
            && started.elapsed() < Duration::from_secs(300)
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let by = tagged(&emulator);
    let left: usize = uids.iter().map(|u| by.get(u).copied().unwrap_or(0)).sum();
    op.kill();
    vec![Row {
        figure: "namespaces deleted with their own credentials (two with an operator restart): live links left in Polar".into(),
        runs,
        measured: left.to_string(),
        goal: "0".into(),
    }]
}

/// The credentials Secret removed while links are being deleted.
async fn credentials_removed(
    logs: &mut Logs,
    namespaces: &mut Vec<(kube::Client, String)>,
) -> Vec<Row> {
    say("credentials removed during deletion");
    let plane = ControlPlane::shared();
    let (client, ns) = common::namespace("faults-no-credentials").await;
    namespaces.push((client.clone(), ns.clone()));
    let objects = Objects::new(client.clone(), &ns);
    let emulator = emulator(polar_emulator::Config {
        rate_limit: 0,
        ..Default::default()
    })
    .await;
    objects
        .put_secret("polar", TOKEN, &emulator.base_url())
        .await;
    let grace = 15;
    let args = vec![
        format!("--default-credentials-secret={ns}/polar"),
        format!("--namespace={ns}"),
        format!("--deletion-grace={grace}s"),
    ];
    let op = operator(plane, "no-credentials", logs, &args);
    let n = 10;
    for i in 0..n {
        objects
            .create_with(&format!("d{i}"), json!({}), spec())
            .await;
    }
    wait_all_ready(&objects, &emulator, Duration::from_secs(120)).await;
    let ids: Vec<String> = objects
        .links
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|l| l.status.as_ref()?.id.clone())
        .collect();
    objects
        .secrets
        .delete("polar", &DeleteParams::default())
        .await
        .unwrap();
    let started = Instant::now();
    for i in 0..n {
        objects.delete(&format!("d{i}")).await;
    }
    let mut longest: f64 = 0.0;
    for i in 0..n {
        let name = format!("d{i}");
        while objects.links.get_opt(&name).await.unwrap().is_some()
            && started.elapsed() < Duration::from_secs(grace * 4)
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        longest = longest.max(started.elapsed().as_secs_f64());
    }
    let events: Api<Event> = Api::namespaced(client, &ns);
    let notes: String = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|e| e.note.clone())
        .collect::<Vec<_>>()
        .join("\n");
    let log = op.log();
    let leftover: Vec<&String> = ids
        .iter()
        .filter(|id| emulator.link(id).is_some())
        .collect();
    let unnamed = leftover
        .iter()
        .filter(|id| !notes.contains(id.as_str()) && !log.contains(id.as_str()))
        .count();
    op.kill();
    vec![
        Row {
            figure: format!(
                "credentials removed during deletion: the longest deletion (grace {grace} s)"
            ),
            runs: n,
            measured: format!("{longest:.1} s"),
            goal: format!("≤ {grace} s + one retry"),
        },
        Row {
            figure: format!(
                "… links left in Polar ({}) not named in an event or the log",
                leftover.len()
            ),
            runs: leftover.len(),
            measured: unnamed.to_string(),
            goal: "0".into(),
        },
    ]
}

/// Manifests admission must refuse, with the operator running: refused, and no Polar call.
async fn invalid_manifests(
    logs: &mut Logs,
    namespaces: &mut Vec<(kube::Client, String)>,
) -> Vec<Row> {
    let p = EBOOK;
    let bad: Vec<Value> = vec![
        json!({}),
        json!({"products": []}),
        json!({"products": ["abc"]}),
        json!({"products": ["6ba7b810-9dad-11d1-80b4-00c04fd430c8"]}),
        json!({"products": [p, p]}),
        json!({"products": [p, p.to_uppercase()]}),
        json!({"products": [7]}),
        json!({"products": [{}]}),
        json!({"products": [{"name": "a", "metadata": {"sku": "b"}}]}),
        json!({"products": [{"sku": "x"}]}),
        json!({"products": [{"metadata": {}}]}),
        json!({"products": [{"metadata": {"tier": 1}}]}),
        json!({"products": [{"id": "abc"}]}),
        json!({"products": [{"name": ""}]}),
        json!({"products": [p], "label": "a\u{0}b"}),
        json!({"products": [p], "successUrl": "ftp://example.com"}),
        json!({"products": [p], "successUrl": "/relative"}),
        json!({"products": [p], "successUrl": ""}),
        json!({"products": [p], "returnUrl": "mailto:a@b.c"}),
        json!({"products": [p], "returnUrl": format!("https://example.com/{}", "a".repeat(2100))}),
        json!({"products": [p], "metadata": {"": "x"}}),
        json!({"products": [p], "metadata": {"k".repeat(41): "x"}}),
        json!({"products": [p], "metadata": {"k": ""}}),
        json!({"products": [p], "metadata": {"k": "v".repeat(501)}}),
        // (`{"k": null}` is not here: the apiserver drops a null map value before admission,
        // as it does every null of a non-nullable field, so the key is simply absent.)
        json!({"products": [p], "metadata": {"k": {"nested": 1}}}),
        json!({"products": [p], "metadata": {"k": [1]}}),
        json!({"products": [p], "metadata": {"k8s_checkout_link_uid": "x"}}),
        json!({"products": [p], "metadata": (0..50).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}),
        json!({"products": [p], "seats": 0}),
        json!({"products": [p], "seats": 10001}),
        json!({"products": [p], "units": 0}),
        json!({"products": [p], "trial": {"interval": "month"}}),
        json!({"products": [p], "trial": {"count": 1}}),
        json!({"products": [p], "trial": {"interval": "fortnight", "count": 1}}),
        json!({"products": [p], "trial": {"interval": "day", "count": 1001}}),
        json!({"products": [p], "discount": {"presetId": "nope"}}),
        json!({"products": [p], "discount": {"presetId": "0b7e4a8e-8d59-4d0c-9a43-1b9f0e0c8d11", "presetCode": "X"}}),
        json!({"products": [p], "deletionPolicy": "Keep"}),
        json!({"products": [p], "credentialsSecretRef": {"name": "x", "namespace": "other"}}),
        json!({"products": [p], "credentialsSecretRef": {"name": ""}}),
        json!({"products": [p], "urlParameters": {"customerEmail": "not-an-email"}}),
        json!({"products": [p], "urlParameters": {"amount": "12.50"}}),
        json!({"products": [p], "urlParameters": {"customFieldData": {"bad key": "x"}}}),
        json!({"products": [p], "metadata": {"utm_source": "a"}, "urlParameters": {"utmSource": "b"}}),
        json!({"products": [p], "export": {"configMap": "Not_A_Name"}}),
        json!({"products": [p], "export": {}}),
    ];
    say(&format!("admission: {} invalid manifests", bad.len()));
    let plane = ControlPlane::shared();
    let (client, ns) = common::namespace("faults-invalid").await;
    namespaces.push((client.clone(), ns.clone()));
    let objects = Objects::new(client.clone(), &ns);
    let emulator = emulator(polar_emulator::Config {
        rate_limit: 0,
        ..Default::default()
    })
    .await;
    objects
        .put_secret("polar", TOKEN, &emulator.base_url())
        .await;
    let args = vec![
        format!("--default-credentials-secret={ns}/polar"),
        format!("--namespace={ns}"),
    ];
    let op = operator(plane, "invalid", logs, &args);
    let resource = kube::api::ApiResource::erase::<CheckoutLink>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &resource);
    let mut admitted = 0;
    for (i, spec) in bad.iter().enumerate() {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "polar.sh/v1alpha1", "kind": "CheckoutLink",
            "metadata": {"name": format!("bad-{i}")}, "spec": spec
        }))
        .unwrap();
        if api.create(&PostParams::default(), &object).await.is_ok() {
            say(&format!("admitted: {spec}"));
            admitted += 1;
        }
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let calls = common::objects::polar_calls(&emulator);
    op.kill();
    vec![
        Row {
            figure: "invalid manifests admitted".into(),
            runs: bad.len(),
            measured: admitted.to_string(),
            goal: "0".into(),
        },
        Row {
            figure: "… Polar calls they caused".into(),
            runs: bad.len(),
            measured: calls.to_string(),
            goal: "0".into(),
        },
    ]
}

/// The token in every log line (trace level), every event and every status of the suite.
async fn token_search(logs: &Logs, namespaces: &[(kube::Client, String)]) -> Row {
    let mut lines = 0;
    let mut found = 0;
    for path in &logs.0 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for line in text.lines() {
            lines += 1;
            if line.contains(TOKEN) {
                found += 1;
            }
        }
    }
    let mut objects = 0;
    for (client, ns) in namespaces {
        let events: Api<Event> = Api::namespaced(client.clone(), ns);
        for e in events
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            objects += 1;
            if serde_json::to_string(&e)
                .unwrap_or_default()
                .contains(TOKEN)
            {
                found += 1;
            }
        }
        let links: Api<CheckoutLink> = Api::namespaced(client.clone(), ns);
        for l in links
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            objects += 1;
            if serde_json::to_string(&l.status)
                .unwrap_or_default()
                .contains(TOKEN)
            {
                found += 1;
            }
        }
    }
    Row {
        figure: format!(
            "the token in {lines} log lines (trace level) and {objects} events and statuses"
        ),
        runs: logs.0.len(),
        measured: found.to_string(),
        goal: "0".into(),
    }
}
