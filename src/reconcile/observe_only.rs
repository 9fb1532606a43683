//! `managementPolicy: Observe`: the link named by the adoption annotation is read (from the
//! mirror, or one GET when the mirror misses it or a sync is requested) and compared with the
//! spec; nothing is ever written to Polar. The comparison and the status it leads to are pure.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::crd::{ADOPT_ANNOTATION, CheckoutLink, CheckoutLinkStatus, ManagementPolicy};
use crate::error::Error;
use crate::polar::account::Account;
use crate::polar::fields::diff;
use crate::polar::{Link, LinkFields, OWNER_METADATA_KEY, PolarError};

use super::status::{READY, SYNCED, with_transition};

/// Whether the resource only observes its link.
pub fn is_observe_only(link: &CheckoutLink) -> bool {
    link.spec.management_policy == Some(ManagementPolicy::Observe)
}

/// The Polar field names in which `actual` differs from `desired`, the owner tag aside (an
/// observed link is never tagged).
pub fn drift(desired: &LinkFields, actual: &LinkFields) -> Vec<&'static str> {
    let untagged = |f: &LinkFields| {
        let mut f = f.clone();
        f.metadata.remove(OWNER_METADATA_KEY);
        f
    };
    diff(&untagged(desired), &untagged(actual)).field_names()
}

/// What reading the observed link came to.
pub enum Seen {
    /// The link as Polar holds it.
    Found(Box<Link>),
    /// The mirror that would answer is not warm yet (its sweep wakes the resource).
    Wait,
}

/// Reads the link the adoption annotation names: from the mirror, else with one GET (also
/// when `fresh`). A link Polar does not have is an error that says it is never recreated.
pub async fn read(account: &Arc<Account>, link: &CheckoutLink, fresh: bool) -> Result<Seen, Error> {
    let Some(id) = link
        .annotations()
        .get(ADOPT_ANNOTATION)
        .map(|s| s.trim().to_owned())
    else {
        return Err(Error::InvalidSpec(format!(
            "managementPolicy Observe needs the annotation {ADOPT_ANNOTATION} naming the Polar link to observe"
        )));
    };
    let polar = |source| Error::Polar {
        step: "get",
        source,
    };
    let orgs = account.orgs().await.map_err(polar)?;
    if !fresh {
        if let Some(entry) = orgs.iter().find_map(|o| o.mirror.get(&id)) {
            return Ok(Seen::Found(Box::new((*entry.link).clone())));
        }
        if !orgs.iter().all(|o| o.mirror.is_warm()) {
            return Ok(Seen::Wait);
        }
    }
    match account.get(&id).await {
        Ok(found) => Ok(Seen::Found(Box::new(found))),
        Err(PolarError::NotFound) => Err(Error::Adoption(format!(
            "the observed Polar checkout link {id} does not exist (or this token cannot see it); observe-only never creates a link"
        ))),
        Err(e) => Err(polar(e)),
    }
}

/// An observe-only status: Ready says the link is observed, Synced whether it matches the spec
/// (naming the fields that differ). `status` is the one built for the outcome; each condition
/// keeps the `lastTransitionTime` `previous` gave it while its status is unchanged.
pub fn observed_status(
    previous: Option<&CheckoutLinkStatus>,
    mut status: CheckoutLinkStatus,
    drift: &[&str],
    now: &Time,
) -> CheckoutLinkStatus {
    let synced = if drift.is_empty() {
        ("True", "InSync", String::new())
    } else {
        (
            "False",
            "Drifted",
            format!(
                "the Polar link differs from the spec in: {} (observe-only: nothing is changed)",
                drift.join(", ")
            ),
        )
    };
    let observed = [
        (
            READY,
            "True",
            "Observed",
            "observe-only: the operator reads this Polar link and never changes it".to_owned(),
        ),
        (SYNCED, synced.0, synced.1, synced.2),
    ];
    let before = previous.map_or(&[][..], |p| &p.conditions[..]);
    let generation = status.observed_generation;
    for condition in observed {
        let built = with_transition(before, condition, generation, now);
        if let Some(slot) = status
            .conditions
            .iter_mut()
            .find(|c| c.type_ == built.type_)
        {
            *slot = built;
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::polar::MetaValue;
    use crate::reconcile::status::{Outcome, Phase, build_status, condition};
    use k8s_openapi::jiff::Timestamp;

    fn time(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    fn observed(
        previous: Option<&CheckoutLinkStatus>,
        drift: &[&str],
        at: i64,
    ) -> CheckoutLinkStatus {
        let outcome = Outcome {
            generation: Some(1),
            link: None,
            url_parameters: None,
            phase: Phase::Ready,
            sellable: None,
            resolved: None,
            exported_to: None,
            results: None,
            sync_request: None,
        };
        let built = build_status(previous, &outcome, &time(at));
        observed_status(previous, built, drift, &time(at))
    }

    #[test]
    fn a_drifted_observed_link_keeps_its_transition_time_and_builds_the_same_status_again() {
        let first = observed(None, &["label"], 1);
        let synced = condition(Some(&first), SYNCED).unwrap();
        assert_eq!(
            (synced.status.as_str(), synced.reason.as_str()),
            ("False", "Drifted")
        );
        assert_eq!(condition(Some(&first), READY).unwrap().reason, "Observed");
        let again = observed(Some(&first), &["label"], 2);
        assert_eq!(again, first, "nothing new: the same status, so no write");
        let fixed = observed(Some(&again), &[], 3);
        let synced = condition(Some(&fixed), SYNCED).unwrap();
        assert_eq!(
            (synced.status.as_str(), synced.last_transition_time.clone()),
            ("True", time(3))
        );
        assert_eq!(
            condition(Some(&fixed), READY).unwrap().last_transition_time,
            time(1)
        );
    }

    #[test]
    fn drift_names_the_fields_and_ignores_the_owner_tag() {
        let mut desired = LinkFields {
            label: Some("Spring".into()),
            ..Default::default()
        };
        desired
            .metadata
            .insert(OWNER_METADATA_KEY.into(), MetaValue::Str("uid".into()));
        let mut actual = desired.clone();
        actual.metadata.clear();
        assert!(drift(&desired, &actual).is_empty(), "the tag is not drift");
        actual.label = Some("Summer".into());
        assert_eq!(drift(&desired, &actual), ["label"]);
    }
}
