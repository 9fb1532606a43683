//! Observation against the fake Polar: what each case costs, and what it concludes.

use std::time::Duration;

use super::*;
use crate::polar::fake::{self, Fake, ORG, credentials, link};
use crate::polar::{LinkFields, MetaValue, OWNER_METADATA_KEY};

const UID: &str = "uid-1";

fn owned(uid: &str) -> LinkFields {
    LinkFields {
        products: vec!["p".into()],
        metadata: [(OWNER_METADATA_KEY.to_owned(), MetaValue::Str(uid.into()))].into(),
        ..Default::default()
    }
}

/// A pool over `fake` whose organisation is known and whose mirror has had its first sweep.
async fn warm(fake: &Arc<Fake>) -> (crate::polar::pool::Pool, Arc<Account>) {
    *fake.orgs.lock().unwrap() = Some(vec![ORG.into()]);
    let (pool, mut reports) = fake::pool(fake.clone(), Duration::from_secs(3600));
    let account = pool.account(&credentials("t")).unwrap();
    account.orgs().await.unwrap();
    assert!(reports.recv().await.unwrap().warmed);
    fake.clear_calls();
    // Keep the reports flowing without anyone reading them.
    tokio::spawn(async move { while reports.recv().await.is_some() {} });
    (pool, account)
}

fn known(id: Option<&'static str>) -> Known<'static> {
    Known {
        id,
        uid: UID,
        org: Some(ORG),
        ..Default::default()
    }
}

fn found(o: Observation) -> (Observed, Vec<Link>) {
    match o {
        Observation::Found {
            observed,
            duplicates,
        } => (*observed, duplicates),
        Observation::Wait => panic!("waited"),
    }
}

#[tokio::test]
async fn a_known_link_in_the_mirror_costs_no_call() {
    let fake = Fake::with(vec![link("a", owned(UID))]);
    let (_pool, account) = warm(&fake).await;
    let (observed, duplicates) = found(observe(&account, &known(Some("a"))).await.unwrap());
    assert!(matches!(observed, Observed::Linked(l) if l.id == "a"));
    assert!(duplicates.is_empty());
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

#[tokio::test]
async fn a_link_missing_from_the_mirror_is_confirmed_with_one_get() {
    let fake = Fake::with(vec![]);
    let (_pool, account) = warm(&fake).await;
    // Created after the sweep by someone else's hand: the mirror does not know it yet.
    let untagged = LinkFields {
        products: vec!["p".into()],
        ..Default::default()
    };
    fake.links.lock().unwrap().push(link("late", untagged));
    let (observed, _) = found(observe(&account, &known(Some("late"))).await.unwrap());
    assert!(matches!(observed, Observed::Linked(_)));
    assert_eq!(fake.calls(), ["get late"]);
    // A vanished one is gone, with the URL the status recorded.
    let k = Known {
        url: Some("u"),
        ..known(Some("gone"))
    };
    let (observed, _) = found(observe(&account, &k).await.unwrap());
    assert_eq!(
        observed,
        Observed::Gone {
            id: "gone".into(),
            url: Some("u".into())
        }
    );
}

#[tokio::test]
async fn a_link_created_for_the_resource_is_found_in_the_owner_index_with_its_duplicates() {
    let fake = Fake::with(vec![
        link("old", owned(UID)),
        link("newest", owned(UID)),
        link("theirs", owned("other")),
    ]);
    let (_pool, account) = warm(&fake).await;
    let k = Known {
        search_from: Some(tokio::time::Instant::now() - Duration::from_secs(60)),
        ..known(None)
    };
    let (observed, duplicates) = found(observe(&account, &k).await.unwrap());
    assert!(
        matches!(observed, Observed::Owned(l) if l.id == "newest"),
        "newest first"
    );
    assert_eq!(duplicates.len(), 1);
    assert_eq!(duplicates[0].id, "old");
    assert!(
        fake.calls().is_empty(),
        "answered from the mirror: {:?}",
        fake.calls()
    );
}

#[tokio::test]
async fn a_search_after_an_uncertain_create_waits_for_a_later_sweep() {
    let fake = Fake::with(vec![]);
    let (_pool, account) = warm(&fake).await;
    let k = Known {
        search_from: Some(tokio::time::Instant::now() + Duration::from_secs(30)),
        ..known(None)
    };
    assert!(matches!(
        observe(&account, &k).await.unwrap(),
        Observation::Wait
    ));
    // A resource that no earlier create can have served needs no search at all.
    let (observed, _) = found(observe(&account, &known(None)).await.unwrap());
    assert_eq!(observed, Observed::Absent);
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn a_link_tagged_by_another_resource_is_a_conflict() {
    let fake = Fake::with(vec![link("a", owned("someone-else"))]);
    let (_pool, account) = warm(&fake).await;
    let err = observe(&account, &known(Some("a"))).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    let k = Known {
        adopt: Some("b"),
        ..known(Some("a"))
    };
    let err = observe(&account, &k).await.unwrap_err();
    assert!(err.to_string().contains("names the Polar link b"), "{err}");
}

#[tokio::test]
async fn adoption_refuses_missing_and_foreign_links() {
    let fake = Fake::with(vec![
        link("theirs", owned("other-uid")),
        link("free", LinkFields::default()),
    ]);
    let (_pool, account) = warm(&fake).await;
    let adopt = |id| Known {
        adopt: Some(id),
        ..known(None)
    };
    let (observed, _) = found(observe(&account, &adopt("free")).await.unwrap());
    assert!(matches!(observed, Observed::AdoptTarget(_)));
    let foreign = observe(&account, &adopt("theirs")).await.unwrap_err();
    assert!(
        foreign.to_string().contains("another CheckoutLink"),
        "{foreign}"
    );
    let missing = observe(&account, &adopt("nope")).await.unwrap_err();
    assert!(missing.to_string().contains("does not exist"), "{missing}");
}

#[tokio::test]
async fn credentials_of_another_organisation_are_refused_before_any_call() {
    let fake = Fake::with(vec![link("a", owned(UID))]);
    let (_pool, account) = warm(&fake).await;
    let k = Known {
        org: Some("7f000000-0000-4000-8000-000000000000"),
        ..known(Some("a"))
    };
    let err = observe(&account, &k).await.unwrap_err();
    assert!(matches!(err, Error::OrganizationMismatch(_)), "{err}");
    assert!(fake.calls().is_empty());
    assert!(trust_not_found(&account, Some(ORG)));
    assert!(!trust_not_found(
        &account,
        Some("7f000000-0000-4000-8000-000000000000")
    ));
}

#[tokio::test]
async fn a_cold_mirror_is_waited_for_unless_the_spec_changed() {
    let fake = Fake::with(vec![link("a", owned(UID))]);
    *fake.orgs.lock().unwrap() = Some(vec![ORG.into()]);
    // The first sweep is held back: the mirror stays cold.
    fake.hold_lists
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (pool, _reports) = fake::pool(fake.clone(), Duration::from_secs(3600));
    let account = pool.account(&credentials("t")).unwrap();
    let settled = observe(&account, &known(Some("a"))).await.unwrap();
    assert!(!account.orgs().await.unwrap()[0].mirror.is_warm());
    assert!(
        matches!(settled, Observation::Wait),
        "a settled link waits for the sweep"
    );
    let changed = Known {
        changed: true,
        ..known(Some("a"))
    };
    let (observed, _) = found(observe(&account, &changed).await.unwrap());
    assert!(
        matches!(observed, Observed::Linked(_)),
        "a spec change does not wait"
    );
    assert_eq!(fake.calls(), ["organizations", "get a"]);
}
