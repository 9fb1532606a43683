//! The pool, its accounts, organisations and sweeps against the fake Polar.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::polar::fake::{self, Fake, ORG, credentials, link};
use crate::polar::{Link, LinkFields, LinkPatch, MetaValue, OWNER_METADATA_KEY};

fn owned(uid: &str) -> LinkFields {
    LinkFields {
        products: vec!["p".into()],
        metadata: [(OWNER_METADATA_KEY.to_owned(), MetaValue::Str(uid.into()))].into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_429_holds_every_call_of_the_organisation_back_for_retry_after() {
    let fake = Fake::with(vec![link("a", owned("u"))]);
    *fake.orgs.lock().unwrap() = Some(vec![ORG.into()]);
    let (pool, _reports) = fake::pool(fake.clone(), Duration::from_secs(3600));
    let one = pool.account(&credentials("one")).unwrap();
    let two = pool.account(&credentials("two")).unwrap();
    one.orgs().await.unwrap();
    two.orgs().await.unwrap();
    fake.clear_calls();
    fake.fail_next(PolarError::RateLimited {
        retry_after: Duration::from_secs(60),
    });
    assert!(matches!(
        one.get("a").await,
        Err(PolarError::RateLimited { .. })
    ));
    // The other token of the same organisation waits too, without reaching Polar.
    let waited = tokio::time::timeout(Duration::from_millis(300), two.get("a")).await;
    assert!(waited.is_err(), "a call went out inside Retry-After");
    assert_eq!(fake.calls(), ["get a"], "only the call that got the 429");
}

#[tokio::test]
async fn tokens_of_one_organisation_share_one_governor_once_it_is_known() {
    let fake = Fake::with(vec![]);
    let (pool, _reports) = fake::pool(fake.clone(), Duration::from_secs(3600));
    let one = pool.account(&credentials("one")).unwrap();
    let two = pool.account(&credentials("two")).unwrap();
    let governor = |a: &Arc<Account>| lock(&a.state).governor.clone();
    assert!(
        !Arc::ptr_eq(&governor(&one), &governor(&two)),
        "unknown yet"
    );
    // Learned from Polar's answers: a created link names its organisation.
    one.create(&owned("u")).await.unwrap();
    two.create(&owned("v")).await.unwrap();
    assert!(Arc::ptr_eq(&governor(&one), &governor(&two)));
    assert_eq!(one.known_orgs(), [ORG]);
}

#[tokio::test]
async fn the_organisation_is_asked_for_once_and_learned_from_links_without_the_scope() {
    let fake = Fake::with(vec![]);
    *fake.orgs.lock().unwrap() = Some(vec![ORG.into()]);
    let (pool, _reports) = fake::pool(fake.clone(), Duration::from_secs(3600));
    let account = pool.account(&credentials("a")).unwrap();
    let orgs = account.orgs().await.unwrap();
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0].id(), Some(ORG));
    account.orgs().await.unwrap();
    let asked = fake
        .calls()
        .iter()
        .filter(|c| *c == "organizations")
        .count();
    assert_eq!(asked, 1);

    let scopeless = Fake::with(vec![]);
    let (pool, _reports) = fake::pool(scopeless.clone(), Duration::from_secs(3600));
    let account = pool.account(&credentials("b")).unwrap();
    let orgs = account.orgs().await.unwrap();
    assert_eq!(orgs[0].id(), None, "its own unfiltered view until it knows");
    assert!(account.known_orgs().is_empty());
    account.create(&owned("u")).await.unwrap();
    assert_eq!(account.known_orgs(), [ORG]);
    assert_eq!(account.orgs().await.unwrap()[0].id(), Some(ORG));
}

#[tokio::test]
async fn a_refused_token_costs_one_call_per_hold_not_one_per_link() {
    let fake = Fake::with(vec![]);
    let (pool, _reports) = fake::pool(fake.clone(), Duration::from_secs(3600));
    let account = pool.account(&credentials("revoked")).unwrap();
    fake.fail_next(PolarError::Unauthorized {
        message: "invalid_token".into(),
    });
    for id in ["a", "b", "c"] {
        assert!(matches!(
            account.get(id).await,
            Err(PolarError::Unauthorized { .. })
        ));
    }
    assert_eq!(fake.calls(), ["get a"]);
}

#[tokio::test]
async fn answers_are_written_through_to_the_mirror() {
    let fake = Fake::with(vec![]);
    *fake.orgs.lock().unwrap() = Some(vec![ORG.into()]);
    let (pool, _reports) = fake::pool(fake.clone(), Duration::from_secs(3600));
    let account = pool.account(&credentials("a")).unwrap();
    let org = account.orgs().await.unwrap().remove(0);
    let created = account.create(&owned("u")).await.unwrap();
    assert_eq!(org.mirror.get(&created.id).unwrap().link.id, created.id);
    assert_eq!(org.mirror.owned_by("u").len(), 1);
    let patch = LinkPatch {
        label: Some(Some("new".into())),
        ..Default::default()
    };
    account.update(&created.id, &patch).await.unwrap();
    assert_eq!(
        org.mirror
            .get(&created.id)
            .unwrap()
            .link
            .fields
            .label
            .as_deref(),
        Some("new")
    );
    account.delete(&created.id).await.unwrap();
    assert!(org.mirror.get(&created.id).is_none());
}

#[tokio::test]
async fn a_new_organisation_warms_with_one_sweep_of_every_page() {
    let links: Vec<Link> = (0..250)
        .map(|i| link(&format!("l{i}"), owned("u")))
        .collect();
    let fake = Fake::with(links);
    *fake.orgs.lock().unwrap() = Some(vec![ORG.into()]);
    let (pool, mut reports) = fake::pool(fake.clone(), Duration::from_secs(3600));
    let account = pool.account(&credentials("a")).unwrap();
    let org = account.orgs().await.unwrap().remove(0);
    let report = tokio::time::timeout(Duration::from_secs(10), reports.recv())
        .await
        .expect("a sweep")
        .unwrap();
    assert!(report.warmed);
    assert_eq!((report.calls, report.links), (3, 250));
    assert!(org.mirror.is_warm());
    assert_eq!(org.mirror.len(), 250);
    let lists = fake
        .calls()
        .iter()
        .filter(|c| c.starts_with("list"))
        .count();
    assert_eq!(lists, 3, "ceil(250 / 100)");
}

#[tokio::test]
async fn a_requested_sweep_names_its_waiters_and_reports_changes() {
    let fake = Fake::with(vec![link("a", owned("u"))]);
    *fake.orgs.lock().unwrap() = Some(vec![ORG.into()]);
    let (pool, mut reports) = fake::pool(fake.clone(), Duration::from_secs(3600));
    let account = pool.account(&credentials("a")).unwrap();
    let org = account.orgs().await.unwrap().remove(0);
    let warm = reports.recv().await.unwrap();
    assert!(warm.warmed);
    // Out of band: the link is deleted and another one appears.
    fake.links.lock().unwrap()[0] = link("b", owned("w"));
    org.request_sweep(tokio::time::Instant::now(), "waiter-uid");
    let report = tokio::time::timeout(Duration::from_secs(10), reports.recv())
        .await
        .expect("the requested sweep")
        .unwrap();
    assert!(!report.warmed);
    assert_eq!(report.waiters, ["waiter-uid"]);
    assert_eq!(report.changes.vanished, ["a"]);
    assert_eq!(report.changes.changed, ["b"]);
    assert_eq!(report.changes.owners, ["w"]);
}

#[tokio::test]
async fn a_failed_sweep_is_reported_and_the_mirror_kept() {
    let fake = Fake::with(vec![link("a", owned("u"))]);
    *fake.orgs.lock().unwrap() = Some(vec![ORG.into()]);
    let (pool, mut reports) = fake::pool(fake.clone(), Duration::from_secs(3600));
    let account = pool.account(&credentials("a")).unwrap();
    let org = account.orgs().await.unwrap().remove(0);
    reports.recv().await.unwrap();
    fake.fail_next(PolarError::Server { status: 503 });
    org.request_sweep(tokio::time::Instant::now(), "w");
    let failed = reports.recv().await.unwrap();
    assert!(failed.error.is_some());
    assert_eq!(org.mirror.len(), 1, "a failed sweep changes nothing");
    // The waiter is served by the next sweep, after a backoff.
    let next = tokio::time::timeout(Duration::from_secs(10), reports.recv())
        .await
        .expect("a retry")
        .unwrap();
    assert!(next.error.is_none());
    assert_eq!(next.waiters, ["w"]);
}

#[tokio::test(start_paused = true)]
async fn accounts_are_reused_and_the_idle_ones_dropped_when_a_new_one_is_made() {
    let made = Arc::new(AtomicUsize::new(0));
    let counted = made.clone();
    let fake = Fake::with(vec![]);
    let factory: ClientFactory = Arc::new(move |_: &Credentials| {
        counted.fetch_add(1, Ordering::SeqCst);
        Ok(fake.clone() as Arc<dyn CheckoutLinks>)
    });
    let (tx, _rx) = mpsc::unbounded_channel();
    let clients = Pool::new(
        factory,
        PoolSettings {
            rate_share: 1.0,
            rate_limit: None,
            sweep_interval: Duration::from_secs(600),
            results_rescan: Duration::from_secs(3600),
        },
        tx,
    );
    let old = credentials("old");
    let new = credentials("new");

    clients.account(&old).unwrap();
    clients.account(&old).unwrap();
    assert_eq!(made.load(Ordering::SeqCst), 1, "one client per token");

    tokio::time::advance(ACCOUNT_IDLE_TTL / 2).await;
    clients.account(&new).unwrap();
    assert_eq!(clients.len(), 2, "the old client was used recently");

    tokio::time::advance(ACCOUNT_IDLE_TTL).await;
    clients.account(&new).unwrap();
    assert_eq!(clients.len(), 2, "reusing a client drops nothing");
    clients.account(&credentials("newer")).unwrap();
    assert_eq!(clients.len(), 2, "the old token's client is gone");
    clients.account(&old).unwrap();
    assert_eq!(
        made.load(Ordering::SeqCst),
        4,
        "a dropped client is made again"
    );
}
