//! Throughput of the emulator over loopback: 32 connections drive a mix of
//! create (20%), get (40%), list (20%) and patch (20%) for 5 seconds, with
//! rate limiting off. Prints requests/second and latency percentiles.
//!
//! `cargo bench -p polar-emulator --bench throughput` (release profile).
//! `BENCH_SECONDS` and `BENCH_CONNECTIONS` override the defaults.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use polar_emulator::Config;
use serde_json::{Value, json};

const TOKEN: &str = "polar_oat_AcmeDemoWriteToken00000000000000000013Difp9";
const PRODUCTS: [&str; 3] = [
    "a1000000-0000-4000-8000-000000000001",
    "a1000000-0000-4000-8000-000000000002",
    "a1000000-0000-4000-8000-000000000003",
];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A 200 whose body arrived in full.
async fn ok(response: reqwest::Result<reqwest::Response>) -> bool {
    match response {
        Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
        _ => false,
    }
}

struct Worker {
    latencies: Vec<u32>,
    errors: u64,
}

async fn worker(client: reqwest::Client, base: String, n: usize, stop: Arc<AtomicBool>) -> Worker {
    let mut out = Worker {
        latencies: Vec::with_capacity(100_000),
        errors: 0,
    };
    let mut ids: Vec<String> = Vec::new();
    let mut i = n;
    while !stop.load(Ordering::Relaxed) {
        i = i.wrapping_add(7);
        let started = Instant::now();
        let op = if ids.is_empty() { 0 } else { i % 5 };
        let result = match op {
            0 => {
                let body = json!({"payment_processor": "stripe", "products": [PRODUCTS[i % 3]], "label": format!("bench {n}"), "metadata": {"worker": n as i64}});
                match client
                    .post(format!("{base}/v1/checkout-links/"))
                    .bearer_auth(TOKEN)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 201 => r
                        .json::<Value>()
                        .await
                        .map(|v| {
                            if let Some(id) = v["id"].as_str() {
                                ids.push(id.to_string());
                            }
                        })
                        .is_ok(),
                    _ => false,
                }
            }
            1 | 2 => {
                let id = &ids[i % ids.len()];
                ok(client
                    .get(format!("{base}/v1/checkout-links/{id}"))
                    .bearer_auth(TOKEN)
                    .send()
                    .await)
                .await
            }
            3 => {
                let page = 1 + i % 3;
                ok(client
                    .get(format!("{base}/v1/checkout-links/?limit=10&page={page}"))
                    .bearer_auth(TOKEN)
                    .send()
                    .await)
                .await
            }
            _ => {
                let id = &ids[i % ids.len()];
                let body = json!({"label": format!("patched {i}"), "success_url": "https://example.com/thanks?checkout_id={CHECKOUT_ID}"});
                ok(client
                    .patch(format!("{base}/v1/checkout-links/{id}"))
                    .bearer_auth(TOKEN)
                    .json(&body)
                    .send()
                    .await)
                .await
            }
        };
        if result {
            out.latencies
                .push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
        } else {
            out.errors += 1;
        }
    }
    out
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let seconds = env_or("BENCH_SECONDS", 5);
    let connections = env_or("BENCH_CONNECTIONS", 32) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let config = Config { rate_limit: 0, ..Config::default() };
        let emulator = polar_emulator::spawn(config, "127.0.0.1:0".parse()?).await?;
        let base = emulator.base_url();
        let client = reqwest::Client::builder().pool_max_idle_per_host(connections).build()?;
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let tasks: Vec<_> = (0..connections)
            .map(|n| tokio::spawn(worker(client.clone(), base.clone(), n, stop.clone())))
            .collect();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let mut latencies = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let w = t.await?;
            latencies.extend(w.latencies);
            errors += w.errors;
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_unstable();
        println!("polar-emulator throughput: {connections} connections, {seconds} s, mix create 20% / get 40% / list 20% / patch 20%");
        println!("requests: {} ok, {errors} failed", latencies.len());
        println!("requests/second: {:.0}", latencies.len() as f64 / elapsed);
        println!(
            "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.90),
            percentile(&latencies, 0.99),
            percentile(&latencies, 1.0)
        );
        println!("links stored: {}", emulator.links().len());
        emulator.shutdown().await;
        anyhow::Ok(())
    })
}
