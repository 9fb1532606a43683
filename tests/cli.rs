//! `kubectl-polar`: `import` writes manifests that apply as no change, `diff` prints what a
//! manifest would send and exits with a code CI can use; both only read from Polar.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use checkout_link_operator::CheckoutLink;
use checkout_link_operator::polar::{CheckoutLinks, LinkFields, MetaValue};
use common::*;
use kube::api::PostParams;

fn kubectl_polar(h: &Harness, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-polar"))
        .args(args)
        .env("POLAR_TOKEN", READ_ONLY_TOKEN)
        .env("POLAR_SERVER", h.emulator.base_url())
        .output()
        .expect("kubectl-polar runs")
}

fn writes(h: &Harness) -> u64 {
    [POST, PATCH, DELETE].iter().map(|k| h.count(k)).sum()
}

async fn dashboard_links(h: &Harness, n: usize) -> Vec<checkout_link_operator::polar::Link> {
    let polar = h.polar_client();
    let mut made = Vec::new();
    for i in 0..n {
        let mut fields = LinkFields {
            products: vec![EBOOK.into()],
            label: (i % 5 != 0).then(|| format!("Campaign {}", i / 2)),
            allow_discount_codes: i % 3 != 0,
            require_billing_address: i % 4 == 0,
            ..Default::default()
        };
        if i % 2 == 0 {
            fields
                .metadata
                .insert("source".into(), MetaValue::Str(format!("s{i}")));
            fields
                .metadata
                .insert("wave".into(), MetaValue::Int(i as i64));
        }
        if i % 7 == 0 {
            fields.success_url = Some("https://example.com/thanks?checkout={CHECKOUT_ID}".into());
        }
        made.push(polar.create(&fields).await.unwrap());
    }
    made
}

/// A fresh folder for one test's manifests.
fn scratch(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kubectl-polar-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn yaml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_links_apply_observed_with_no_write() {
    let h = Harness::start(
        "cli-import",
        Options {
            resync: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    let made = dashboard_links(&h, 250).await;
    let dir = scratch("import");
    let out = kubectl_polar(&h, &["import", "-n", &h.ns, "-o", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = yaml_files(dir.as_path());
    assert_eq!(files.len(), made.len(), "one file per link");
    let before = writes(&h);
    for file in &files {
        let link: CheckoutLink =
            serde_yaml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        h.links.create(&PostParams::default(), &link).await.unwrap();
    }
    eventually(
        "every imported link observed and in sync",
        Duration::from_secs(300),
        async || {
            let list = h
                .links
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?;
            let pending: Vec<String> = list
                .items
                .iter()
                .filter(|l| {
                    !(condition(l, "Ready").is_some_and(|c| c.0 == "True" && c.1 == "Observed")
                        && condition(l, "Synced").is_some_and(|c| c.1 == "InSync"))
                })
                .map(|l| {
                    format!(
                        "{}: {:?}",
                        l.metadata.name.clone().unwrap_or_default(),
                        condition(l, "Synced")
                    )
                })
                .collect();
            if list.items.len() == made.len() && pending.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} of {}: {:?}",
                    pending.len(),
                    list.items.len(),
                    pending.first()
                ))
            }
        },
    )
    .await;
    let sweeps = h.count(LIST);
    eventually("three more sweeps", Duration::from_secs(60), async || {
        let now = h.count(LIST);
        if now >= sweeps + 3 { Ok(()) } else { Err(now) }
    })
    .await;
    assert_eq!(writes(&h), before, "{:?}", h.link_counters());
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_prints_the_one_patch_a_changed_label_sends_and_exits_two() {
    let h = Harness::start("cli-diff", Options::default()).await;
    let made = dashboard_links(&h, 3).await;
    let dir = scratch("diff");
    let out = kubectl_polar(&h, &["import", "-o", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = writes(&h);

    let unchanged = kubectl_polar(&h, &["diff", "-f", dir.as_path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&unchanged.stdout);
    assert_eq!(unchanged.status.code(), Some(0), "{stdout}");
    assert_eq!(stdout.matches(": no change").count(), 3, "{stdout}");

    // The imported manifest of the second link, switched to the full policy, label changed.
    let file = yaml_files(dir.as_path())
        .into_iter()
        .find(|f| std::fs::read_to_string(f).unwrap().contains(&made[1].id))
        .unwrap();
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("managementPolicy: Observe", "managementPolicy: Full")
        .replace("label: Campaign 0", "label: Campaign 0, second run");
    std::fs::write(&file, text).unwrap();
    let changed = kubectl_polar(&h, &["diff", "-f", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&changed.stdout);
    assert_eq!(changed.status.code(), Some(2), "{stdout}");
    assert_eq!(
        stdout.trim_end(),
        format!(
            "campaign-0: update\n  PATCH /v1/checkout-links/{} {{\"label\":\"Campaign 0, second run\"}}",
            made[1].id
        )
    );
    assert_eq!(writes(&h), before, "diff only reads");

    let help = Command::new(env!("CARGO_BIN_EXE_kubectl-polar"))
        .args(["diff", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("-detailed-exitcode"));
    h.finish().await;
}
