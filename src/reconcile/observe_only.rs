//! `managementPolicy: Observe`: the link named by the adoption annotation is read (from the
//! mirror, or one GET when the mirror misses it or a sync is requested) and compared with the
//! spec; nothing is ever written to Polar. The comparison and the status it leads to are pure.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;

use crate::crd::{ADOPT_ANNOTATION, CheckoutLink, CheckoutLinkStatus, ManagementPolicy};
use crate::error::Error;
use crate::polar::account::Account;
use crate::polar::fields::diff;
use crate::polar::{Link, LinkFields, OWNER_METADATA_KEY, PolarError};

use super::status::{READY, SYNCED};

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
/// (naming the fields that differ).
pub fn observed_status(
    mut status: CheckoutLinkStatus,
    drift: &[&str],
    now: &Time,
) -> CheckoutLinkStatus {
    let previous = status.conditions.clone();
    let set = |conditions: &mut Vec<Condition>,
               type_: &str,
               value: &str,
               reason: &str,
               message: String| {
        let since = previous
            .iter()
            .find(|c: &&Condition| c.type_ == type_ && c.status == value)
            .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
        for c in conditions
            .iter_mut()
            .filter(|c: &&mut Condition| c.type_ == type_)
        {
            c.status = value.to_owned();
            c.reason = reason.to_owned();
            c.message = message.clone();
            c.last_transition_time = since.clone();
        }
    };
    set(
        &mut status.conditions,
        READY,
        "True",
        "Observed",
        "observe-only: the operator reads this Polar link and never changes it".to_owned(),
    );
    if drift.is_empty() {
        set(
            &mut status.conditions,
            SYNCED,
            "True",
            "InSync",
            String::new(),
        );
    } else {
        set(
            &mut status.conditions,
            SYNCED,
            "False",
            "Drifted",
            format!(
                "the Polar link differs from the spec in: {} (observe-only: nothing is changed)",
                drift.join(", ")
            ),
        );
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::polar::MetaValue;

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
