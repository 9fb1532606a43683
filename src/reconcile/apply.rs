//! The apply path: credentials → observe → plan → execute → status, events and the next
//! attempt's time (asked of [`super::policy`]).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use tokio::time::Instant;

use crate::crd::ResolvedRefs;
use crate::crd::{ADOPT_ANNOTATION, CheckoutLink, SYNC_ANNOTATION};
use crate::error::Error;
use crate::polar::Link;
use crate::polar::account::Account;

use super::context::{Context, jitter, now};
use super::credentials::credentials_ref;
use super::execute::{self, Done, Failure};
use super::export;
use super::lookup::{campaign_results, references};
use super::memory::{Inputs, Memory};
use super::observe::{Known, Observation, observe};
use super::observe_only;
use super::plan::{self, AdoptedBy, Plan};
use super::policy::{self, Retry, Situation};
use super::resolve;
use super::results::ResultsReport;
use super::sellable;
use super::status::{Activity, LinkInfo, Outcome, Phase, build_status};

/// How long a resource waits for a mirror before looking again by itself (its sweep report
/// normally wakes it much sooner).
const WAIT_FOR_MIRROR: Duration = Duration::from_secs(30);

/// What one attempt came to.
enum Attempt {
    /// Done; with what the references stood for (`None`: the spec has none), the campaign
    /// results (`None`: nothing to say), and for an observe-only resource the fields in which
    /// the link differs from the spec.
    Done(
        Done,
        Option<ResolvedRefs>,
        Option<ResultsReport>,
        Option<Vec<&'static str>>,
    ),
    Failed(Failure),
    /// A mirror must be swept first; nothing was done.
    Wait,
}

/// Brings the Polar link to the spec and reports it in the status.
pub(super) async fn apply(ctx: &Context, link: &CheckoutLink) -> Result<Action, Error> {
    let started = Instant::now();
    let uid = link.uid().ok_or(Error::MissingObjectField("uid"))?;
    ctx.caches_synced().await;
    let memory = ctx.recall(&uid);
    let cref = credentials_ref(link, ctx.settings.default_credentials.as_ref());
    let credentials = match &cref {
        Ok(r) => ctx.secrets.resolve(&ctx.client, r).await?.credentials,
        Err(e) => Err(e.clone()),
    };
    let inputs = ctx.inputs(link, &uid, &credentials, &memory);
    if let Some(wait) = ctx.held(&uid, &inputs) {
        ctx.metrics.reconciled("held", started.elapsed());
        return Ok(wait.map_or_else(Action::await_change, Action::requeue));
    }

    // A Secret of the link's own namespace is kept until the link is gone (namespace deletion).
    if let (Ok(r), Ok(_), Some(_)) = (&cref, &credentials, &link.spec.credentials_secret_ref) {
        ctx.secrets.guard(&ctx.client, &r.secret).await;
    }
    let attempt = match credentials {
        Err(e) => Attempt::Failed(Failure::new(Activity::Observing, e.into())),
        Ok(credentials) => match ctx.polar.account(&credentials) {
            Err(source) => Attempt::Failed(Failure::new(
                Activity::Observing,
                Error::Polar {
                    step: "connect",
                    source,
                },
            )),
            Ok(account) => sync(ctx, link, &uid, &memory, &account).await,
        },
    };
    let (action, label) = match attempt {
        Attempt::Done(done, resolved, results, drift) => (
            succeeded(ctx, link, &uid, inputs, done, (resolved, results, drift)).await?,
            "ok",
        ),
        Attempt::Wait => (Action::requeue(WAIT_FOR_MIRROR), "waiting"),
        Attempt::Failed(Failure {
            error: error @ Error::Kube { .. },
            ..
        }) => return Err(error),
        Attempt::Failed(failure) => failed(ctx, link, &uid, inputs, failure).await?,
    };
    ctx.metrics.reconciled(label, started.elapsed());
    Ok(action)
}

/// Observe, plan, execute: one Polar write at most (plus one DELETE per duplicate link).
async fn sync(
    ctx: &Context,
    link: &CheckoutLink,
    uid: &str,
    memory: &Memory,
    account: &Arc<Account>,
) -> Attempt {
    let known = Context::known_link(link, memory);
    let activity = if known.is_some() {
        Activity::Updating
    } else {
        Activity::Creating
    };
    let status = link.status.as_ref();
    let resolution = match references(link, uid, account).await {
        Ok(Some(resolution)) => resolution,
        Ok(None) => return Attempt::Wait,
        Err(error) => return Attempt::Failed(Failure::new(activity, error)),
    };
    let resolved = (resolve::needs(&link.spec) != (false, false)).then(|| ResolvedRefs {
        products: resolution.products.clone(),
        discount_id: resolution.discount_id.clone(),
    });
    let desired = match plan::desired_fields(&link.spec, uid, &resolution) {
        Ok(desired) => desired,
        Err(m) => return Attempt::Failed(Failure::new(activity, Error::InvalidSpec(m))),
    };
    if observe_only::is_observe_only(link) {
        return match observe_only::read(account, link, sync_requested(link)).await {
            Ok(observe_only::Seen::Wait) => Attempt::Wait,
            Err(error) => Attempt::Failed(Failure::new(Activity::Observing, error)),
            Ok(observe_only::Seen::Found(found)) => {
                ctx.remember(uid, |m| {
                    m.known = Some((found.id.clone(), found.url.clone()))
                });
                let drift = observe_only::drift(&desired, &found.fields);
                let org = found.organization_id.clone();
                let results = campaign_results(ctx, link, uid, account, &org).await;
                Attempt::Done(Done::InSync(*found), resolved, results, Some(drift))
            }
        };
    }
    let known_ref = Known {
        id: known.as_ref().map(|(id, _)| id.as_str()),
        url: known.as_ref().and_then(|(_, url)| url.as_deref()),
        org: status.and_then(|s| s.organization_id.as_deref()),
        adopt: link.annotations().get(ADOPT_ANNOTATION).map(String::as_str),
        uid,
        search_from: search_from(ctx, link, memory),
        changed: status.and_then(|s| s.observed_generation) != link.metadata.generation,
        fresh: sync_requested(link),
    };
    let (observed, duplicates) = match observe(account, &known_ref).await {
        Ok(Observation::Found {
            observed,
            duplicates,
        }) => (observed, duplicates),
        Ok(Observation::Wait) => return Attempt::Wait,
        Err(error) => return Attempt::Failed(Failure::new(Activity::Observing, error)),
    };
    if let Err(failure) = delete_duplicates(ctx, link, account, duplicates).await {
        return Attempt::Failed(failure);
    }

    let plan = plan::plan(&desired, *observed);
    let creates = matches!(plan, Plan::Create(_) | Plan::Recreate { .. });
    let sent = Instant::now();
    match execute::execute(account, plan).await {
        Ok(done) => {
            let l = done.link();
            ctx.remember(uid, |m| {
                m.known = Some((l.id.clone(), l.url.clone()));
                m.uncertain_since = None;
            });
            let residual = execute::residual_diff(&desired, l);
            if !residual.is_empty() && !matches!(done, Done::InSync(_)) {
                tracing::warn!(fields = ?residual, "Polar stored some fields differently from what was sent");
            }
            let org = l.organization_id.clone();
            let results = campaign_results(ctx, link, uid, account, &org).await;
            Attempt::Done(done, resolved, results, None)
        }
        Err(failure) => {
            if creates {
                let uncertain = policy::decide(situation(ctx, uid, &failure)).uncertain_create;
                ctx.remember(uid, |m| {
                    m.uncertain_since = uncertain.then_some(sent).or(m.uncertain_since)
                });
            }
            Attempt::Failed(failure)
        }
    }
}

/// The value of the sync annotation, if set.
fn sync_request(link: &CheckoutLink) -> Option<String> {
    link.annotations().get(SYNC_ANNOTATION).cloned()
}

/// Whether the sync annotation carries a value not handled yet.
fn sync_requested(link: &CheckoutLink) -> bool {
    let handled = link
        .status
        .as_ref()
        .and_then(|s| s.last_sync_request.as_ref());
    sync_request(link).is_some_and(|v| Some(&v) != handled)
}

/// From when the owner index must have been swept before concluding that no link exists:
/// after a create that may still commit (up to twice the request timeout after it was sent),
/// or, for a resource an earlier process may have handled, after this one started (plus that
/// window, for a create that process may have left in flight).
fn search_from(ctx: &Context, link: &CheckoutLink, memory: &Memory) -> Option<Instant> {
    let timeout = ctx.commit_window();
    let uncertain = memory.uncertain_since.map(|t| t + timeout);
    let inherited = ctx
        .may_have_been_handled_before(link, memory)
        .then(|| ctx.started.1 + timeout);
    uncertain.max(inherited)
}

/// Deletes the links that carry the resource's owner tag besides the one it keeps (from
/// creates whose answers were lost), with a Warning event each.
async fn delete_duplicates(
    ctx: &Context,
    link: &CheckoutLink,
    account: &Arc<Account>,
    duplicates: Vec<Link>,
) -> Result<(), Failure> {
    for extra in duplicates {
        execute::delete(account, &extra.id)
            .await
            .map_err(|e| Failure::new(Activity::Deleting, e))?;
        let note = format!(
            "deleted Polar checkout link {} ({}): a second link created for this resource (an earlier create's answer was lost)",
            extra.id, extra.url
        );
        ctx.publish(link, EventType::Warning, "DuplicateDeleted", "Delete", note)
            .await;
    }
    Ok(())
}

fn situation<'a>(ctx: &Context, uid: &str, failure: &'a Failure) -> Situation<'a> {
    Situation {
        activity: failure.activity,
        error: &failure.error,
        failures: ctx.recall(uid).failures,
        deleting_for: None,
        grace: ctx.settings.deletion_grace,
        state_retry: ctx.settings.resync_interval,
    }
}

/// In sync: Ready status (right after a create, the write that persists the new id),
/// the event, and a look at the mirror after the resync interval (which costs no call).
async fn succeeded(
    ctx: &Context,
    link: &CheckoutLink,
    uid: &str,
    inputs: Inputs,
    done: Done,
    (resolved, results, drift): (
        Option<ResolvedRefs>,
        Option<ResultsReport>,
        Option<Vec<&'static str>>,
    ),
) -> Result<Action, Error> {
    let mut outcome = Outcome {
        results,
        sync_request: sync_request(link),
        resolved: Some(resolved),
        exported_to: None,
        generation: link.metadata.generation,
        link: Some(LinkInfo::from(done.link())),
        url_parameters: link.spec.url_parameters.as_ref(),
        phase: Phase::Ready,
        sellable: Some(sellable::assess(done.link(), Timestamp::now())),
    };
    let build = |outcome: &Outcome<'_>| {
        let at = now();
        let status = build_status(link.status.as_ref(), outcome, &at);
        match &drift {
            Some(drift) => observe_only::observed_status(link.status.as_ref(), status, drift, &at),
            None => status,
        }
    };
    let mut status = build(&outcome);
    if let Some(to) = export::exported(ctx, link, &status).await {
        outcome.exported_to = Some(to);
        status = build(&outcome);
    }
    ctx.patch_status(link, &status).await?;
    ctx.publish_sellable(link, &status).await;
    let resync = jitter(ctx.settings.resync_interval);
    ctx.remember(uid, |m| m.failures = 0);
    ctx.hold(uid, inputs, Some(resync));
    if let Some((type_, reason, action, note)) = done_event(&done) {
        ctx.publish(link, type_, reason, action, note).await;
    }
    Ok(Action::requeue(resync))
}

/// Not in sync: the status says why, a Warning event goes out if that is new, and the next
/// attempt waits as the policy says.
async fn failed(
    ctx: &Context,
    link: &CheckoutLink,
    uid: &str,
    inputs: Inputs,
    failure: Failure,
) -> Result<(Action, &'static str), Error> {
    let decision = policy::decide(situation(ctx, uid, &failure));
    ctx.bump_failures(uid);
    let outcome = Outcome {
        generation: link.metadata.generation,
        link: failure.link.as_ref().map(LinkInfo::from),
        url_parameters: link.spec.url_parameters.as_ref(),
        phase: decision.phase.clone(),
        sellable: failure
            .link
            .as_ref()
            .map(|l| sellable::assess(l, Timestamp::now()))
            .or_else(|| sellable::of_refusal(&failure.error)),
        resolved: None,
        exported_to: None,
        results: None,
        sync_request: sync_request(link),
    };
    let status = build_status(link.status.as_ref(), &outcome, &now());
    ctx.patch_status(link, &status).await?;
    ctx.publish_sellable(link, &status).await;
    let delay = match decision.retry {
        Retry::In(d) => Some(jitter(d)),
        Retry::OnChange => None,
    };
    tracing::info!(
        error = %failure.error,
        reason = decision.phase.ready_reason().as_str(),
        retry_in_ms = delay.map(|d| d.as_millis() as u64),
        "reconcile did not converge"
    );
    ctx.hold(uid, inputs, delay);
    ctx.publish_failure(
        link,
        &status,
        decision.event,
        "Reconcile",
        failure.error.to_string(),
    )
    .await;
    ctx.metrics.error(failure.error.category());
    let label = if matches!(decision.phase, Phase::Stalled { .. }) {
        "stalled"
    } else {
        "retrying"
    };
    Ok((
        delay.map_or_else(Action::await_change, Action::requeue),
        label,
    ))
}

/// The event for what was done: (type, reason, action, note); none when nothing was.
fn done_event(done: &Done) -> Option<(EventType, &'static str, &'static str, String)> {
    Some(match done {
        Done::InSync(_) => return None,
        Done::Created(l) => (
            EventType::Normal,
            "Created",
            "Create",
            format!("created Polar checkout link {} ({})", l.id, l.url),
        ),
        Done::Updated { link: l, fields } => (
            EventType::Normal,
            "Updated",
            "Update",
            format!(
                "updated {} of Polar checkout link {}",
                fields.join(", "),
                l.id
            ),
        ),
        Done::Adopted {
            link: l,
            by,
            fields,
        } => {
            let how = match by {
                AdoptedBy::Annotation => format!("named by the annotation {ADOPT_ANNOTATION}"),
                AdoptedBy::OwnerTag => {
                    "created for this resource earlier (its id had not reached the status)"
                        .to_owned()
                }
            };
            let changed = if fields.is_empty() {
                String::new()
            } else {
                format!("; updated {}", fields.join(", "))
            };
            (
                EventType::Normal,
                "Adopted",
                "Adopt",
                format!("adopted Polar checkout link {} {how}{changed}", l.id),
            )
        }
        Done::Recreated {
            link: l,
            old_id,
            old_url,
        } => (
            EventType::Warning,
            "Recreated",
            "Create",
            format!(
                "Polar checkout link {old_id} ({}) was deleted outside Kubernetes; recreated it as {} ({})",
                old_url.as_deref().unwrap_or("URL unknown"),
                l.id,
                l.url
            ),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::polar::LinkFields;

    fn link(id: &str) -> Link {
        Link {
            id: id.into(),
            organization_id: "org".into(),
            client_secret: "polar_cl_x".into(),
            url: format!("https://buy.polar.sh/{id}"),
            created_at: String::new(),
            modified_at: None,
            fields: LinkFields::default(),
            availability: Default::default(),
        }
    }

    #[test]
    fn events_name_what_was_done() {
        assert_eq!(done_event(&Done::InSync(link("a"))), None);
        let (t, reason, _, note) = done_event(&Done::Created(link("a"))).unwrap();
        assert_eq!(
            (t, reason, note.as_str()),
            (
                EventType::Normal,
                "Created",
                "created Polar checkout link a (https://buy.polar.sh/a)"
            )
        );
        let (_, reason, _, note) = done_event(&Done::Updated {
            link: link("a"),
            fields: vec!["label", "products"],
        })
        .unwrap();
        assert_eq!(
            (reason, note.as_str()),
            (
                "Updated",
                "updated label, products of Polar checkout link a"
            )
        );
        let recreated = Done::Recreated {
            link: link("new"),
            old_id: "old".into(),
            old_url: Some("https://buy.polar.sh/old".into()),
        };
        let (t, reason, _, note) = done_event(&recreated).unwrap();
        assert_eq!((t, reason), (EventType::Warning, "Recreated"));
        assert!(
            note.contains("https://buy.polar.sh/old") && note.contains("https://buy.polar.sh/new"),
            "{note}"
        );
        let adopted = Done::Adopted {
            link: link("a"),
            by: AdoptedBy::Annotation,
            fields: vec![],
        };
        assert!(done_event(&adopted).unwrap().3.contains(ADOPT_ANNOTATION));
    }
}
