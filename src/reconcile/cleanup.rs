//! The deletion path: DELETE the Polar link and every other link tagged with the resource's
//! UID (404 counts as done once the credentials' organisation is verified), or leave the link
//! (`Orphan` policy: its owner tag is removed, so another resource can adopt it). When a person
//! has to fix something (credentials gone or refused), the policy's deletion grace bounds the
//! wait, then the finalizer is released with an `Orphaned` Warning naming the link.
//!
//! A failed deletion returns [`Error::Deferred`], so that the finalizer stays and the error
//! policy retries at the time chosen here.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use tokio::time::Instant;

use crate::crd::{CheckoutLink, DeletionPolicy};
use crate::error::Error;
use crate::polar::account::Account;
use crate::polar::{LinkPatch, OWNER_METADATA_KEY, PolarError};

use super::context::{Context, jitter, now};
use super::credentials::credentials_ref;
use super::execute;
use super::memory::{Inputs, Memory};
use super::observe::trust_not_found;
use super::policy::{self, MAX_BACKOFF, Retry, Situation};
use super::status::{Activity, Outcome, build_status};

/// How long a deletion waits for a mirror before looking again by itself.
const WAIT_FOR_MIRROR: Duration = Duration::from_secs(5);

/// What a deletion left behind.
enum Removal {
    /// Done: these links were deleted (or found gone); this one was left in place (orphaned),
    /// with its owner tag removed or not.
    Done {
        deleted: Vec<String>,
        orphaned: Option<(String, bool)>,
    },
    /// A mirror must be swept first.
    Wait,
}

/// Deletes the Polar link (or leaves it, by policy or after the deletion grace).
pub(super) async fn cleanup(ctx: &Context, link: &CheckoutLink) -> Result<Action, Error> {
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
        return Err(Error::Deferred {
            delay: wait.unwrap_or(MAX_BACKOFF),
            cause: Box::new(Error::Held),
        });
    }
    let known = Context::known_link(link, &memory);
    let orphan = link.spec.deletion_policy == Some(DeletionPolicy::Orphan);
    // Nothing was ever created as far as anyone knows (or the link is only observed): nothing
    // to delete, no call to make.
    if super::observe_only::is_observe_only(link)
        || known.is_none()
            && memory.uncertain_since.is_none()
            && !ctx.may_have_been_handled_before(link, &memory)
    {
        return finished(ctx, link, &uid, Vec::new(), None, started).await;
    }
    let result = match credentials {
        // The link stays anyway; without credentials its owner tag stays too.
        Err(e) if orphan => {
            tracing::info!(error = %e, "no credentials: the orphaned link keeps its owner tag");
            Ok(Removal::Done {
                deleted: Vec::new(),
                orphaned: known.as_ref().map(|(id, _)| (id.clone(), false)),
            })
        }
        Err(e) => Err(Error::from(e)),
        Ok(credentials) => {
            // Its orders no longer need counting (nor keeping in memory).
            ctx.polar.forget_results(&credentials.server, &uid);
            match ctx.polar.account(&credentials) {
                Err(source) => Err(Error::Polar {
                    step: "connect",
                    source,
                }),
                Ok(account) => remove(ctx, link, &uid, &memory, &account, orphan).await,
            }
        }
    };
    match result {
        Ok(Removal::Done { deleted, orphaned }) => {
            finished(ctx, link, &uid, deleted, orphaned, started).await
        }
        Ok(Removal::Wait) => Err(Error::Deferred {
            delay: WAIT_FOR_MIRROR,
            cause: Box::new(Error::Held),
        }),
        Err(error @ Error::Kube { .. }) => Err(error),
        Err(error) => {
            let id = known.map(|(id, _)| id);
            delete_failed(ctx, link, &uid, id, inputs, error, started).await
        }
    }
}

/// Deletes (or, by policy, untags) the resource's links.
async fn remove(
    ctx: &Context,
    link: &CheckoutLink,
    uid: &str,
    memory: &Memory,
    account: &Arc<Account>,
    orphan: bool,
) -> Result<Removal, Error> {
    let known = Context::known_link(link, memory).map(|(id, _)| id);
    let status_org = link
        .status
        .as_ref()
        .and_then(|s| s.organization_id.as_deref());
    let orgs = account.orgs().await.map_err(polar("list"))?;
    // Every link tagged with the UID, from a sweep made after any create that may still commit.
    let timeout = ctx.commit_window();
    let from = memory.uncertain_since.map(|t| t + timeout).max(
        ctx.may_have_been_handled_before(link, memory)
            .then(|| ctx.started.1 + timeout),
    );
    let mut ids: Vec<String> = known.iter().cloned().collect();
    if let Some(from) = from {
        let stale: Vec<_> = orgs
            .iter()
            .filter(|o| !o.mirror.swept_since(from))
            .collect();
        if !stale.is_empty() {
            for org in stale {
                org.request_sweep(from, uid);
            }
            return Ok(Removal::Wait);
        }
    }
    for org in &orgs {
        for entry in org.mirror.owned_by(uid) {
            if !ids.iter().any(|id| id.eq_ignore_ascii_case(&entry.link.id)) {
                ids.push(entry.link.id.clone());
            }
        }
    }

    if orphan {
        // Keep the link, without the owner tag, so that another resource may adopt it.
        let Some(id) = ids.first().cloned() else {
            return Ok(Removal::Done {
                deleted: Vec::new(),
                orphaned: None,
            });
        };
        untag(account, &id, uid).await?;
        return Ok(Removal::Done {
            deleted: Vec::new(),
            orphaned: Some((id, true)),
        });
    }
    let mut deleted = Vec::new();
    for id in ids {
        let was_there = execute::delete(account, &id).await?;
        if !was_there && !trust_not_found(account, status_org) {
            return Err(Error::Unverified(format!(
                "Polar answered 404 for the checkout link {id}, but the credentials' organisation is unknown, so the link may still exist in organisation {}: give the token the organizations:read scope, or check the link in Polar",
                status_org.unwrap_or("(unknown)")
            )));
        }
        deleted.push(id);
    }
    Ok(Removal::Done {
        deleted,
        orphaned: None,
    })
}

/// Removes the owner tag from a link that stays in Polar (one PATCH; none when it has no tag).
async fn untag(account: &Arc<Account>, id: &str, uid: &str) -> Result<(), Error> {
    let current = match account.get(id).await {
        Ok(link) => link,
        Err(PolarError::NotFound) => return Ok(()),
        Err(e) => return Err(polar("get")(e)),
    };
    if current.owner() != Some(uid) {
        return Ok(());
    }
    let mut metadata = current.fields.metadata.clone();
    metadata.remove(OWNER_METADATA_KEY);
    let patch = LinkPatch {
        metadata: Some(metadata),
        ..Default::default()
    };
    match account.update(id, &patch).await {
        Ok(_) | Err(PolarError::NotFound) => Ok(()),
        Err(e) => Err(polar("update")(e)),
    }
}

fn polar(step: &'static str) -> impl Fn(PolarError) -> Error {
    move |source| Error::Polar { step, source }
}

/// The deletion is done: events, memory forgotten, the finalizer released.
async fn finished(
    ctx: &Context,
    link: &CheckoutLink,
    uid: &str,
    deleted: Vec<String>,
    orphaned: Option<(String, bool)>,
    started: Instant,
) -> Result<Action, Error> {
    for id in deleted {
        let note = format!("deleted Polar checkout link {id}");
        ctx.publish(link, EventType::Normal, "Deleted", "Delete", note)
            .await;
    }
    if let Some((id, untagged)) = orphaned {
        let url = link.status.as_ref().and_then(|s| s.url.as_deref());
        let tag = if untagged {
            "without this resource's owner tag, so another resource may adopt it"
        } else {
            "still tagged with this resource's UID (no credentials to remove the tag)"
        };
        let note = format!(
            "deletionPolicy is Orphan: Polar checkout link {id} ({}) is left in place, {tag}",
            url.unwrap_or("URL unknown")
        );
        ctx.publish(link, EventType::Normal, "Orphaned", "Delete", note)
            .await;
    }
    if let Some(to) = link.status.as_ref().and_then(|s| s.exported_to.as_deref())
        && let Err(error) = super::export::remove(&ctx.client, link, to).await
    {
        let forbidden = matches!(
            &error,
            Error::Kube { source: kube::Error::Api(e), .. } if e.code == 403
        );
        if !forbidden {
            // The finalizer stays until the keys are gone.
            return Err(Error::Deferred {
                delay: Duration::from_secs(5),
                cause: Box::new(error),
            });
        }
        // Without the right, retrying would wedge the deletion: say it once and go on.
        let note = format!("the exported keys stay in the ConfigMap {to}: {error}");
        ctx.publish(link, EventType::Warning, "ExportFailed", "Delete", note)
            .await;
    }
    ctx.forget(uid);
    ctx.metrics.reconciled("ok", started.elapsed());
    Ok(Action::await_change())
}

/// Reports a failed deletion and picks the next attempt; releases the finalizer (Warning
/// event `Orphaned`) when the policy says the grace is over.
async fn delete_failed(
    ctx: &Context,
    link: &CheckoutLink,
    uid: &str,
    id: Option<String>,
    inputs: Inputs,
    error: Error,
    started: Instant,
) -> Result<Action, Error> {
    let waited = link
        .metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| Timestamp::now().as_millisecond() - t.0.as_millisecond())
        .map_or(Duration::ZERO, |ms| Duration::from_millis(ms.max(0) as u64));
    let decision = policy::decide(Situation {
        activity: Activity::Deleting,
        error: &error,
        failures: ctx.recall(uid).failures,
        deleting_for: Some(waited),
        grace: ctx.settings.deletion_grace,
        state_retry: ctx.settings.resync_interval,
    });
    ctx.bump_failures(uid);
    if decision.release {
        let id = id.as_deref().unwrap_or("(unknown id)");
        let note = format!(
            "gave up deleting Polar checkout link {id} after {}s: {error}; the link is left in Polar",
            ctx.settings.deletion_grace.as_secs()
        );
        // The event may not be accepted (a namespace being deleted refuses new events): the
        // log keeps the link id in any case.
        tracing::warn!(link_id = id, %error, "leaving the Polar checkout link in place");
        ctx.publish(link, EventType::Warning, decision.event, "Delete", note)
            .await;
        ctx.metrics.orphaned();
        ctx.forget(uid);
        ctx.metrics.reconciled("ok", started.elapsed());
        return Ok(Action::await_change());
    }
    let outcome = Outcome {
        generation: link.metadata.generation,
        link: None,
        url_parameters: link.spec.url_parameters.as_ref(),
        phase: decision.phase.clone(),
        sellable: None,
        resolved: None,
        exported_to: None,
        results: None,
        sync_request: None,
    };
    let status = build_status(link.status.as_ref(), &outcome, &now());
    ctx.patch_status(link, &status).await?;
    ctx.publish_failure(link, &status, decision.event, "Delete", error.to_string())
        .await;
    let delay = match decision.retry {
        Retry::In(d) => jitter(d),
        Retry::OnChange => MAX_BACKOFF,
    };
    ctx.hold(uid, inputs, Some(delay));
    ctx.metrics.error(error.category());
    let label = if matches!(decision.phase, super::status::Phase::Stalled { .. }) {
        "stalled"
    } else {
        "retrying"
    };
    ctx.metrics.reconciled(label, started.elapsed());
    tracing::info!(%error, retry_in_ms = delay.as_millis() as u64, "deletion did not complete");
    Err(Error::Deferred {
        delay,
        cause: Box::new(error),
    })
}
