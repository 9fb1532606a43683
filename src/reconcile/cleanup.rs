//! The deletion path: DELETE the Polar link (404 counts as done), or leave it (`Orphan`
//! policy, or credentials missing or refused for longer than the deletion grace).
//!
//! A failed deletion returns [`Error::Deferred`], so that the finalizer stays and the error
//! policy retries at the time chosen here.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use tokio::time::Instant;

use crate::crd::{CheckoutLink, DeletionPolicy};
use crate::error::{CredentialsError, Error};

use super::credentials::{CredentialsRef, credentials_ref};
use super::execute;
use super::memory::{Hold, Inputs, Memory};
use super::status::{Activity, Outcome, Phase, build_status};
use super::{CREDENTIALS_RETRY, Context, MAX_BACKOFF};

impl Context {
    /// Deletes the Polar link (or leaves it, by policy or after the deletion grace).
    pub(super) async fn cleanup(&self, link: &CheckoutLink) -> Result<Action, Error> {
        let started = Instant::now();
        let uid = link.uid().ok_or(Error::MissingObjectField("uid"))?;
        let memory = self.recall(&uid);
        let known = Self::known_link(link, &memory);
        if link.spec.deletion_policy == Some(DeletionPolicy::Orphan) {
            if let Some((id, url)) = &known {
                let note = format!(
                    "deletionPolicy is Orphan: Polar checkout link {id} ({}) is left in place",
                    url.as_deref().unwrap_or("URL unknown")
                );
                self.publish(link, EventType::Normal, "Orphaned", "Delete", note)
                    .await;
            }
            self.forget(&uid);
            self.metrics.reconciled("ok", started.elapsed());
            return Ok(Action::await_change());
        }
        self.caches_synced().await;
        let cref = credentials_ref(link, self.settings.default_credentials.as_ref());
        let inputs = self.inputs(link, &cref);
        if let Some(wait) = self.held(&uid, &inputs) {
            self.metrics.reconciled("held", started.elapsed());
            let delay = wait.unwrap_or(MAX_BACKOFF);
            return Err(Error::Deferred {
                delay,
                cause: Box::new(Error::Held),
            });
        }

        let id = known.as_ref().map(|(id, _)| id.as_str());
        match self.delete_link(link, &uid, id, &memory, cref).await {
            Ok(deleted) => {
                if let Some(id) = deleted {
                    let note = format!("deleted Polar checkout link {id}");
                    self.publish(link, EventType::Normal, "Deleted", "Delete", note)
                        .await;
                }
                self.forget(&uid);
                self.metrics.reconciled("ok", started.elapsed());
                Ok(Action::await_change())
            }
            Err(error @ Error::Kube { .. }) => Err(error),
            Err(error) => {
                let id = known.map(|(id, _)| id);
                self.delete_failed(link, &uid, id, inputs, error, started)
                    .await
            }
        }
    }

    /// DELETE the known link, or the one tagged with the UID if one may exist. `Ok(id)` of the
    /// link deleted (or already gone), `Ok(None)` when there was none.
    async fn delete_link(
        &self,
        link: &CheckoutLink,
        uid: &str,
        id: Option<&str>,
        memory: &Memory,
        cref: Result<CredentialsRef, CredentialsError>,
    ) -> Result<Option<String>, Error> {
        if id.is_none() && !self.may_own_unknown_link(link, memory) {
            return Ok(None);
        }
        let credentials = match cref {
            Ok(r) => self.secrets.resolve(&self.client, &r).await?.credentials,
            Err(e) => Err(e),
        };
        let credentials = match credentials {
            Ok(c) => c,
            // Nothing was ever created as far as anyone knows: nothing to delete.
            Err(_) if id.is_none() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let client = self
            .polar
            .get(&credentials)
            .map_err(|source| Error::Polar {
                step: "connect",
                source,
            })?;
        let id = match id {
            Some(id) => id.to_owned(),
            None => match execute::find_owned(&*client, uid).await? {
                Some(found) => found.id,
                None => return Ok(None),
            },
        };
        execute::delete(&*client, &id).await?;
        Ok(Some(id))
    }

    /// Reports a failed deletion and picks the next attempt; releases the finalizer (Warning
    /// event `Orphaned`) once credentials have been missing or refused for the whole grace.
    async fn delete_failed(
        &self,
        link: &CheckoutLink,
        uid: &str,
        id: Option<String>,
        inputs: Inputs,
        error: Error,
        started: Instant,
    ) -> Result<Action, Error> {
        let phase = Phase::of_error(Activity::Deleting, &error);
        // Credentials missing or refused, or an id Polar refuses: only a human can fix these.
        let permanent = matches!(phase, Phase::Stalled { .. });
        let waited = link
            .metadata
            .deletion_timestamp
            .as_ref()
            .map(|t| Timestamp::now().as_millisecond() - t.0.as_millisecond())
            .map_or(Duration::ZERO, |ms| Duration::from_millis(ms.max(0) as u64));
        let grace = self.settings.deletion_grace;
        if permanent && waited >= grace {
            let note = format!(
                "gave up deleting Polar checkout link {} after {}s: {error}; the link is left in Polar",
                id.as_deref().unwrap_or("(unknown id)"),
                grace.as_secs()
            );
            self.publish(link, EventType::Warning, "Orphaned", "Delete", note)
                .await;
            self.forget(uid);
            self.metrics.reconciled("ok", started.elapsed());
            return Ok(Action::await_change());
        }
        let outcome = Outcome {
            generation: link.metadata.generation,
            link: None,
            url_parameters: link.spec.url_parameters.as_ref(),
            phase: phase.clone(),
        };
        let status = build_status(link.status.as_ref(), &outcome, &super::now());
        self.patch_status(link, &status).await?;
        self.publish_failure(link, &status, &phase, "Delete").await;
        let delay = if permanent {
            grace
                .saturating_sub(waited)
                .clamp(Duration::from_secs(1), CREDENTIALS_RETRY)
        } else {
            self.retry_delay(uid, &phase, &error).unwrap_or(MAX_BACKOFF)
        };
        self.remember(uid, |m| m.hold = Some(Hold::new(inputs, Some(delay))));
        self.metrics.error(error.category());
        let label = if permanent { "stalled" } else { "retrying" };
        self.metrics.reconciled(label, started.elapsed());
        tracing::info!(%error, retry_in_ms = delay.as_millis() as u64, "deletion did not complete");
        Err(Error::Deferred {
            delay,
            cause: Box::new(error),
        })
    }
}
