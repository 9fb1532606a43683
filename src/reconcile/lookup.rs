//! What a resource needs from its organisation besides its link: the catalog its references
//! name ([`references`]) and the orders its campaign results count ([`campaign_results`]).
//! Both come from the organisation's sweeps; the decisions are in [`super::resolve`] and
//! [`super::results`].

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;

use crate::crd::CheckoutLink;
use crate::error::Error;
use crate::polar::PolarError;
use crate::polar::account::Account;

use super::context::Context;
use super::resolve::{self, Resolution, Unresolved};
use super::results::{self, RESULTS, ResultsReport};
use super::status::condition;

/// What the spec's references stand for in the link's organisation; `None` while the
/// organisation's catalog is being read (its sweep wakes the resource).
pub(super) async fn references(
    link: &CheckoutLink,
    uid: &str,
    account: &Arc<Account>,
) -> Result<Option<Resolution>, Error> {
    let (products, discounts) = resolve::needs(&link.spec);
    if !products && !discounts {
        return resolve::resolve(&link.spec, None)
            .map(Some)
            .map_err(unresolved);
    }
    let orgs = account.orgs().await.map_err(|source| Error::Polar {
        step: "get",
        source,
    })?;
    let status_org = link
        .status
        .as_ref()
        .and_then(|s| s.organization_id.as_deref());
    let org = orgs
        .iter()
        .find(|o| o.id().is_some_and(|id| Some(id) == status_org))
        .or_else(|| orgs.first())
        .ok_or_else(|| Error::Unresolved("the credentials' organisation is not known".into()))?;
    org.want_catalog(products, discounts, uid);
    let catalog = match org.catalog().0 {
        None => return Ok(None),
        Some(Ok(catalog)) => catalog,
        Some(Err(PolarError::Forbidden { message })) => {
            let scopes = match (products, discounts) {
                (true, true) => "products:read and discounts:read",
                (true, false) => "products:read",
                _ => "discounts:read",
            };
            return Err(Error::ScopeMissing(format!(
                "naming products by metadata or name, or a discount by code, needs the token scope {scopes}: {message}"
            )));
        }
        Some(Err(source)) => {
            return Err(Error::Polar {
                step: "list",
                source,
            });
        }
    };
    resolve::resolve(&link.spec, Some(&catalog))
        .map(Some)
        .map_err(unresolved)
}

/// The campaign results of the resource, whose link belongs to `org_id`: counted from its
/// organisation's orders sweep (which it asks for), `Off` when they are off but the status
/// still has some, `None` when there is nothing new to say.
pub(super) async fn campaign_results(
    ctx: &Context,
    link: &CheckoutLink,
    uid: &str,
    account: &Arc<Account>,
    org_id: &str,
) -> Option<ResultsReport> {
    let previous = link.status.as_ref();
    let counted = previous.and_then(|s| s.results.as_ref());
    let reported = condition(previous, RESULTS).is_some();
    if !ctx.settings.campaign_results || link.spec.campaign_results == Some(false) {
        ctx.polar.forget_results(account.server(), uid);
        return (counted.is_some() || reported).then_some(ResultsReport::Off);
    }
    let orgs = account.orgs().await.ok()?;
    let org = orgs
        .iter()
        .find(|o| o.id().is_some_and(|id| id.eq_ignore_ascii_case(org_id)))?;
    org.want_results(uid, results::counted_through(counted));
    Some(match org.results(uid) {
        // After a restart the status keeps what it counted until the first sweep.
        None if reported => return None,
        None => ResultsReport::Pending,
        Some(Ok(view)) => ResultsReport::Counted(results::fold(counted, &view, Timestamp::now())),
        Some(Err(PolarError::Forbidden { message })) => ResultsReport::Failing(
            "ScopeMissing",
            format!(
                "campaign results need the token scope orders:read (the link itself is unaffected): {message}"
            ),
        ),
        Some(Err(error)) => ResultsReport::Failing(
            "OrdersUnreadable",
            format!(
                "the organisation's orders could not be read; the results are as of the last read: {error}"
            ),
        ),
    })
}

fn unresolved(u: Unresolved) -> Error {
    match u {
        Unresolved::NoMatch(m) => Error::Unresolved(m),
        Unresolved::Ambiguous(m) => Error::Ambiguous(m),
    }
}
