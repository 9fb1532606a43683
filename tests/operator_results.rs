//! Campaign results: orders and revenue per link in `status.results`, from one orders sweep per
//! organisation, exact across restarts and refunds; a missing `orders:read` is a condition.

mod common;

use std::time::Duration;

use checkout_link_operator::crd::{CampaignResults, CheckoutLink};
use common::*;
use polar_emulator::BuyOptions;
use serde_json::{Value, json};

const NO_ORDERS_SCOPE_TOKEN: &str = "polar_oat_AcmeDemoNoOrgScopeToken000000000000002EowaP";

fn results(link: &CheckoutLink) -> Option<&CampaignResults> {
    link.status.as_ref()?.results.as_ref()
}

fn net(r: &CampaignResults) -> (i64, i64) {
    r.revenue
        .iter()
        .find(|x| x.currency == "usd")
        .map_or((0, 0), |x| (x.net, x.refunded))
}

fn buy(h: &Harness, link: &CheckoutLink, query: &[(&str, &str)]) -> Value {
    let options = BuyOptions {
        query: query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..BuyOptions::default()
    };
    h.emulator.buy(&id(link), options).expect("a purchase")
}

fn amount(order: &Value, key: &str) -> i64 {
    order[key]
        .as_i64()
        .unwrap_or_else(|| panic!("{key} in {order}"))
}

async fn wait_results(
    h: &Harness,
    name: &str,
    what: &str,
    ok: impl Fn(&CampaignResults) -> bool,
) -> CampaignResults {
    let link = h
        .wait_for(name, Duration::from_secs(90), what, |l| {
            results(l).is_some_and(&ok)
        })
        .await;
    results(&link).cloned().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_counted_per_link_once_with_refunds_and_sources() {
    let mut h = Harness::start(
        "results",
        Options {
            resync: Duration::from_secs(1),
            campaign_results: Some(Duration::from_secs(3)),
            ..Options::default()
        },
    )
    .await;
    h.create(
        "a",
        json!({"products": [EBOOK], "metadata": {"source": "email_campaign"}}),
    )
    .await;
    h.create("b", json!({"products": [EBOOK]})).await;
    h.create(
        "quiet",
        json!({"products": [EBOOK], "campaignResults": false}),
    )
    .await;
    let a = h.wait_ready("a").await;
    let b = h.wait_ready("b").await;
    let quiet = h.wait_ready("quiet").await;
    // Before any order: counted, zero.
    let zero = wait_results(&h, "a", "results with no order", |r| r.orders == 0).await;
    assert_eq!(zero.summary, "0 orders");

    let first = buy(&h, &a, &[("utm_source", "newsletter")]);
    let second = buy(&h, &a, &[]);
    buy(&h, &b, &[]);
    buy(&h, &quiet, &[]);
    let r = wait_results(&h, "a", "two orders through a", |r| r.orders == 2).await;
    assert_eq!(
        net(&r).0,
        amount(&first, "net_amount") + amount(&second, "net_amount")
    );
    assert_eq!(r.utm_sources.len(), 1);
    assert_eq!(
        (r.utm_sources[0].source.as_str(), r.utm_sources[0].orders),
        ("newsletter", 1)
    );
    wait_results(&h, "b", "one order through b", |r| r.orders == 1).await;

    // A restart between purchases: nothing lost, nothing counted twice.
    h.stop_controller().await;
    let third = buy(&h, &a, &[]);
    h.start_controller();
    let total =
        amount(&first, "net_amount") + amount(&second, "net_amount") + amount(&third, "net_amount");
    let r = wait_results(&h, "a", "three orders through a", |r| r.orders == 3).await;
    assert_eq!(net(&r), (total, 0));
    let last: k8s_openapi::jiff::Timestamp = third["created_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        r.last_order_at.map(|t| t.0.as_second()),
        Some(last.as_second()),
        "whole seconds, as Kubernetes keeps times"
    );

    // A refund: picked up by the re-scan.
    let refund = 500.min(amount(&second, "total_amount"));
    let second_id = second["id"].as_str().unwrap();
    h.emulator.refund(second_id, Some(refund)).unwrap();
    let r = wait_results(&h, "a", "the refund", |r| net(r).1 > 0).await;
    assert_eq!(net(&r), (total, refund));
    assert_eq!(r.orders, 3);

    // Later sweeps (more orders reads) change nothing.
    let reads = h.count(ORDERS);
    eventually(
        "two more orders sweeps",
        Duration::from_secs(60),
        async || {
            let now = h.count(ORDERS);
            if now >= reads + 2 { Ok(()) } else { Err(now) }
        },
    )
    .await;
    let a = h.links.get("a").await.unwrap();
    assert_eq!(results(&a), Some(&r), "nothing counted twice");
    let b = h.links.get("b").await.unwrap();
    assert_eq!(results(&b).map(|r| r.orders), Some(1));
    let quiet = h.links.get("quiet").await.unwrap();
    assert_eq!(results(&quiet), None, "opted out");
    assert!(condition(&quiet, "Results").is_none());
    let c = condition(&a, "Results").unwrap();
    assert_eq!((c.0.as_str(), c.1.as_str()), ("True", "Counted"));
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_orders_read_a_condition_names_the_scope_and_the_link_stays_ready() {
    let h = Harness::start(
        "results-scope",
        Options {
            resync: Duration::from_secs(1),
            campaign_results: Some(Duration::from_secs(3600)),
            token: Some(NO_ORDERS_SCOPE_TOKEN.to_owned()),
            ..Options::default()
        },
    )
    .await;
    h.create("a", json!({"products": [EBOOK]})).await;
    let a = h
        .wait_for("a", Duration::from_secs(90), "the Results condition", |l| {
            condition(l, "Results").is_some_and(|c| c.1 == "ScopeMissing")
        })
        .await;
    let (_, _, message) = condition(&a, "Results").unwrap();
    assert!(message.contains("orders:read"), "{message}");
    assert_eq!(condition(&a, "Ready").unwrap().0, "True");
    // No retry storm: the orders sweep runs with the link sweeps, once per interval.
    let sweeps = h.count(LIST);
    eventually("five more sweeps", Duration::from_secs(60), async || {
        let now = h.count(LIST);
        if now >= sweeps + 5 { Ok(()) } else { Err(now) }
    })
    .await;
    let (lists, orders) = (h.count(LIST), h.count(ORDERS));
    assert!(
        orders <= lists + 1,
        "{orders} orders calls for {lists} sweeps"
    );
    let a = h.links.get("a").await.unwrap();
    assert_eq!(condition(&a, "Ready").unwrap().0, "True", "still Ready");
    assert_eq!(condition(&a, "Synced").unwrap().0, "True", "still in sync");
    h.finish().await;
}
