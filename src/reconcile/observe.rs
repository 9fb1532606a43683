//! Finding the link a resource stands for: from the organisation's mirror when it can, with
//! one GET only to confirm a link the mirror lacks, and never by a scan of its own. No
//! Kubernetes here; the decisions about what was found are pure ([`super::plan`]).
//!
//! - A known id found in the mirror costs nothing. Missing from a warm mirror, it is confirmed
//!   with one GET; a 404 is trusted only once the credentials' organisation is known to be the
//!   link's (a token of another organisation, or another server, answers 404 for everything).
//! - A link tagged with the resource's UID but unknown to it (a create whose answer was lost,
//!   an operator killed before writing the status) is found in the mirror's owner index —
//!   from a sweep that started after any create that may still commit. Further links with the
//!   same tag are duplicates, returned for deletion.
//! - Whatever is found must carry no other resource's owner tag.

use std::sync::Arc;

use tokio::time::Instant;

use crate::crd::ADOPT_ANNOTATION;
use crate::error::Error;
use crate::polar::account::Account;
use crate::polar::org::Org;
use crate::polar::{Link, PolarError};

use super::plan::{Observed, foreign_owner};

/// What observation starts from.
#[derive(Clone, Debug, Default)]
pub struct Known<'a> {
    /// The link the resource owns, if its id is known (status, or this process' memory).
    pub id: Option<&'a str>,
    /// Its URL as last recorded.
    pub url: Option<&'a str>,
    /// The organisation the status recorded for it.
    pub org: Option<&'a str>,
    /// The adoption annotation's value.
    pub adopt: Option<&'a str>,
    /// The resource's UID.
    pub uid: &'a str,
    /// When a link tagged with the UID may exist unknown to the resource: before concluding
    /// that there is none, the owner index must come from a sweep that started at or after
    /// this instant (after a create that may still commit, or after an earlier operator
    /// process may have handled the resource). `None`: no such link can exist (a resource
    /// created after this process started, with no uncertain create).
    pub search_from: Option<Instant>,
    /// The spec changed since the status was written: do not wait for a cold mirror.
    pub changed: bool,
    /// Read the link from Polar, not from the mirror (a sync request).
    pub fresh: bool,
}

/// What observation found.
#[derive(Debug)]
pub enum Observation {
    /// Something to plan from, and links carrying the same owner tag to delete.
    Found {
        /// The link (or its absence).
        observed: Box<Observed>,
        /// Other links tagged with the UID.
        duplicates: Vec<Link>,
    },
    /// The mirror that would answer is not ready (warming up, or a sweep after an uncertain
    /// create is due); its sweep report wakes the resource.
    Wait,
}

fn polar(step: &'static str) -> impl Fn(PolarError) -> Error {
    move |source| Error::Polar { step, source }
}

/// Finds the link the resource stands for.
pub async fn observe(account: &Arc<Account>, known: &Known<'_>) -> Result<Observation, Error> {
    let orgs = account.orgs().await.map_err(polar("get"))?;
    let orgs = link_orgs(account, &orgs, known.org)?;

    // The owner index: free when the mirrors are warm; waited for only before concluding
    // that no link exists, when one may.
    let warm = orgs.iter().all(|o| o.mirror.is_warm());
    let mut owned: Vec<Link> = Vec::new();
    if warm {
        for org in &orgs {
            owned.extend(
                org.mirror
                    .owned_by(known.uid)
                    .into_iter()
                    .map(|e| (*e.link).clone()),
            );
        }
    }
    let search_due = |orgs: &[Arc<Org>]| -> bool {
        let Some(from) = known.search_from else {
            return false;
        };
        let mut due = false;
        for org in orgs.iter().filter(|o| !o.mirror.swept_since(from)) {
            org.request_sweep(from, known.uid);
            due = true;
        }
        due
    };

    if let Some(id) = known.id {
        if let Some(adopt) = known.adopt.map(str::trim)
            && !adopt.eq_ignore_ascii_case(id)
        {
            return Err(Error::Conflict(format!(
                "the annotation {ADOPT_ANNOTATION} names the Polar link {adopt}, but this resource manages {id}; remove the annotation, or delete the resource and create it again to adopt {adopt}"
            )));
        }
        let cached = if known.fresh {
            None
        } else {
            orgs.iter().find_map(|o| o.mirror.get(id))
        };
        let found = match cached {
            Some(entry) => Some((*entry.link).clone()),
            None if !warm && !known.changed && !known.fresh => return Ok(Observation::Wait),
            None => match account.get(id).await {
                Ok(link) => Some(link),
                Err(PolarError::NotFound) => None,
                Err(e) => return Err(polar("get")(e)),
            },
        };
        return match found {
            Some(link) => {
                check_owner(&link, known.uid)?;
                let duplicates = owned.into_iter().filter(|l| l.id != link.id).collect();
                Ok(Observation::Found {
                    observed: Box::new(Observed::Linked(link)),
                    duplicates,
                })
            }
            // Gone; unless a link created for the resource since is already there.
            None if search_due(&orgs) => Ok(Observation::Wait),
            None => Ok(from_owned(owned).unwrap_or(Observation::Found {
                observed: Box::new(Observed::Gone {
                    id: id.to_owned(),
                    url: known.url.map(str::to_owned),
                }),
                duplicates: Vec::new(),
            })),
        };
    }

    if let Some(adopt) = known.adopt.map(str::trim) {
        let cached = orgs.iter().find_map(|o| o.mirror.get(adopt));
        let link = match cached {
            Some(entry) => (*entry.link).clone(),
            None => account.get(adopt).await.map_err(|e| match e {
                PolarError::NotFound => Error::Adoption(format!(
                    "the annotation {ADOPT_ANNOTATION} names the Polar link {adopt}, which does not exist (or belongs to another organisation)"
                )),
                PolarError::Validation { .. } => Error::Adoption(format!(
                    "the annotation {ADOPT_ANNOTATION} must be a Polar link id (a UUID), not {adopt:?}"
                )),
                other => polar("get")(other),
            })?,
        };
        if let Some(owner) = foreign_owner(&link, known.uid) {
            return Err(Error::Adoption(format!(
                "the Polar link {adopt} is managed by another CheckoutLink (uid \"{owner}\"); remove the annotation {ADOPT_ANNOTATION} or delete that resource first"
            )));
        }
        let duplicates = owned.into_iter().filter(|l| l.id != link.id).collect();
        return Ok(Observation::Found {
            observed: Box::new(Observed::AdoptTarget(link)),
            duplicates,
        });
    }

    // Before creating, the owner index must at least be warm: a link created for the
    // resource by an operator that stopped before writing the status is in it.
    if !warm || search_due(&orgs) {
        return Ok(Observation::Wait);
    }
    Ok(from_owned(owned).unwrap_or(Observation::Found {
        observed: Box::new(Observed::Absent),
        duplicates: Vec::new(),
    }))
}

/// The newest link tagged with the UID, the others as duplicates.
fn from_owned(mut owned: Vec<Link>) -> Option<Observation> {
    if owned.is_empty() {
        return None;
    }
    let newest = owned.remove(0);
    Some(Observation::Found {
        observed: Box::new(Observed::Owned(newest)),
        duplicates: owned,
    })
}

/// The organisations in which the link may be: the one its status names, when the credentials
/// act on it; an error when they are known to act on others only.
fn link_orgs(
    account: &Account,
    orgs: &[Arc<Org>],
    status_org: Option<&str>,
) -> Result<Vec<Arc<Org>>, Error> {
    let Some(wanted) = status_org else {
        return Ok(orgs.to_vec());
    };
    let known = account.known_orgs();
    if !known.is_empty() && !known.iter().any(|o| o.eq_ignore_ascii_case(wanted)) {
        return Err(Error::OrganizationMismatch(format!(
            "the Polar link belongs to organisation {wanted}, but the credentials act on {} ({}): restore the credentials of that organisation, or delete the resource with deletionPolicy Orphan",
            known.join(", "),
            account.server()
        )));
    }
    let matching: Vec<Arc<Org>> = orgs
        .iter()
        .filter(|o| o.id().is_some_and(|id| id.eq_ignore_ascii_case(wanted)))
        .cloned()
        .collect();
    Ok(if matching.is_empty() {
        orgs.to_vec()
    } else {
        matching
    })
}

/// A link the resource manages must not carry another resource's owner tag.
fn check_owner(link: &Link, uid: &str) -> Result<(), Error> {
    match foreign_owner(link, uid) {
        None => Ok(()),
        Some(owner) => Err(Error::Conflict(format!(
            "the Polar link {} is now tagged as managed by another CheckoutLink (uid \"{owner}\"): two resources manage it; delete one of them (with deletionPolicy Orphan to keep the link)",
            link.id
        ))),
    }
}

/// Whether a 404 for a link of `status_org` can be trusted with these credentials: their
/// organisation is known and is the link's (or the status recorded none).
pub fn trust_not_found(account: &Account, status_org: Option<&str>) -> bool {
    let known = account.known_orgs();
    match status_org {
        None => true,
        Some(org) => known.iter().any(|o| o.eq_ignore_ascii_case(org)),
    }
}

#[cfg(test)]
mod tests;
