//! The apply path: credentials → observe → plan → execute → status, events and the next
//! attempt's time.

use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use tokio::time::Instant;

use crate::crd::{ADOPT_ANNOTATION, CheckoutLink};
use crate::error::{CredentialsError, Error};
use crate::polar::PolarError;

use super::credentials::{CredentialsRef, credentials_ref};
use super::execute::{self, Done, Failure, Known};
use super::memory::{Hold, Inputs};
use super::plan::{self, AdoptedBy, Observed, Plan};
use super::status::{Activity, LinkInfo, Outcome, Phase, build_status};
use super::{CREDENTIALS_RETRY, Context, backoff, jitter};

impl Context {
    /// Brings the Polar link to the spec and reports it in the status.
    pub(super) async fn apply(&self, link: &CheckoutLink) -> Result<Action, Error> {
        let started = Instant::now();
        let uid = link.uid().ok_or(Error::MissingObjectField("uid"))?;
        self.caches_synced().await;
        let cref = credentials_ref(link, self.settings.default_credentials.as_ref());
        let inputs = self.inputs(link, &cref);
        if let Some(wait) = self.held(&uid, &inputs) {
            self.metrics.reconciled("held", started.elapsed());
            return Ok(wait.map_or_else(Action::await_change, Action::requeue));
        }

        let (action, label) = match self.sync(link, &uid, cref).await {
            Ok(done) => (self.succeeded(link, &uid, inputs, done).await?, "ok"),
            Err(Failure {
                error: error @ Error::Kube { .. },
                ..
            }) => return Err(error),
            Err(failure) => self.failed(link, &uid, inputs, failure).await?,
        };
        self.metrics.reconciled(label, started.elapsed());
        Ok(action)
    }

    /// Observe, plan, execute: at most one Polar write.
    async fn sync(
        &self,
        link: &CheckoutLink,
        uid: &str,
        cref: Result<CredentialsRef, CredentialsError>,
    ) -> Result<Done, Failure> {
        let memory = self.recall(uid);
        let known = Self::known_link(link, &memory);
        let activity = if known.is_some() {
            Activity::Updating
        } else {
            Activity::Creating
        };
        let desired = plan::desired_fields(&link.spec, uid)
            .map_err(|m| Failure::new(activity, Error::InvalidSpec(m)))?;
        let observing = |error: Error| Failure::new(Activity::Observing, error);
        let cref = cref.map_err(|e| observing(e.into()))?;
        let resolved = self
            .secrets
            .resolve(&self.client, &cref)
            .await
            .map_err(observing)?;
        let credentials = resolved.credentials.map_err(|e| observing(e.into()))?;
        let client = self.polar.get(&credentials).map_err(|source| {
            observing(Error::Polar {
                step: "connect",
                source,
            })
        })?;

        let search_owned = known.is_none() && self.may_own_unknown_link(link, &memory);
        let adopt = link.annotations().get(ADOPT_ANNOTATION).map(String::as_str);
        let known_ref = Known {
            id: known.as_ref().map(|(id, _)| id.as_str()),
            url: known.as_ref().and_then(|(_, url)| url.as_deref()),
            adopt: adopt.filter(|_| known.is_none()),
            uid,
            search_owned,
        };
        let observed = execute::observe(&*client, &known_ref)
            .await
            .map_err(observing)?;
        if search_owned && observed == Observed::Absent {
            self.remember(uid, |m| m.searched = true);
        }

        let plan = plan::plan(&desired, observed);
        let creates = matches!(plan, Plan::Create(_) | Plan::Recreate { .. });
        if creates {
            self.remember(uid, |m| m.create_uncertain = true);
        }
        let result = execute::execute(&*client, plan).await;
        match &result {
            Ok(done) => {
                let l = done.link();
                self.remember(uid, |m| {
                    m.known = Some((l.id.clone(), l.url.clone()));
                    m.create_uncertain = false;
                });
                let residual = execute::residual_diff(&desired, l);
                if !residual.is_empty() && !matches!(done, Done::InSync(_)) {
                    tracing::warn!(fields = ?residual, "Polar stored some fields differently from what was sent");
                }
            }
            Err(failure) if creates => {
                // Polar refused before creating anything, unless the answer may have been lost.
                let lost = failure.error.polar().is_some_and(|e| {
                    matches!(
                        e,
                        PolarError::Server { .. }
                            | PolarError::Timeout
                            | PolarError::Transport { .. }
                            | PolarError::Decode { .. }
                    )
                });
                self.remember(uid, |m| m.create_uncertain = lost);
            }
            Err(_) => {}
        }
        result
    }

    /// In sync: Ready status (right after a create, the write that persists the new id),
    /// the event, and a resync after the interval.
    async fn succeeded(
        &self,
        link: &CheckoutLink,
        uid: &str,
        inputs: Inputs,
        done: Done,
    ) -> Result<Action, Error> {
        let outcome = Outcome {
            generation: link.metadata.generation,
            link: Some(LinkInfo::from(done.link())),
            url_parameters: link.spec.url_parameters.as_ref(),
            phase: Phase::Ready,
        };
        let status = build_status(link.status.as_ref(), &outcome, &super::now());
        self.patch_status(link, &status).await?;
        let resync = jitter(self.settings.resync_interval, 0.9, 1.1);
        self.remember(uid, |m| {
            m.failures = 0;
            m.hold = Some(Hold::new(inputs, Some(resync)));
        });
        if let Some((type_, reason, action, note)) = done_event(&done) {
            self.publish(link, type_, reason, action, note).await;
        }
        Ok(Action::requeue(resync))
    }

    /// Not in sync: the status says why, a Warning event goes out if that is new, and the
    /// next attempt waits (backoff, Retry-After, slow retry, or a change).
    async fn failed(
        &self,
        link: &CheckoutLink,
        uid: &str,
        inputs: Inputs,
        failure: Failure,
    ) -> Result<(Action, &'static str), Error> {
        let phase = Phase::of_error(failure.activity, &failure.error);
        let outcome = Outcome {
            generation: link.metadata.generation,
            link: failure.link.as_ref().map(LinkInfo::from),
            url_parameters: link.spec.url_parameters.as_ref(),
            phase: phase.clone(),
        };
        let status = build_status(link.status.as_ref(), &outcome, &super::now());
        self.patch_status(link, &status).await?;
        let delay = self.retry_delay(uid, &phase, &failure.error);
        tracing::info!(
            error = %failure.error,
            reason = phase.ready_reason().as_str(),
            retry_in_ms = delay.map(|d| d.as_millis() as u64),
            "reconcile did not converge"
        );
        self.remember(uid, |m| m.hold = Some(Hold::new(inputs, delay)));
        self.publish_failure(link, &status, &phase, "Reconcile")
            .await;
        self.metrics.error(failure.error.category());
        let label = if matches!(phase, Phase::Stalled { .. }) {
            "stalled"
        } else {
            "retrying"
        };
        Ok((
            delay.map_or_else(Action::await_change, Action::requeue),
            label,
        ))
    }

    /// When to try again after a failure; `None`: when the inputs change.
    pub(super) fn retry_delay(&self, uid: &str, phase: &Phase, error: &Error) -> Option<Duration> {
        match (phase, error.polar()) {
            (Phase::Retrying { .. }, Some(PolarError::RateLimited { retry_after })) => {
                self.bump_failures(uid);
                // Never before Retry-After.
                Some(jitter(*retry_after, 1.0, 1.1))
            }
            (Phase::Retrying { .. }, _) => Some(backoff(self.bump_failures(uid))),
            (
                Phase::Stalled { .. },
                Some(PolarError::Unauthorized { .. } | PolarError::Forbidden { .. }),
            ) => Some(jitter(CREDENTIALS_RETRY, 1.0, 1.1)),
            (Phase::Stalled { .. } | Phase::Ready, _) => None,
        }
    }
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
    use crate::polar::{Link, LinkFields};

    fn link(id: &str) -> Link {
        Link {
            id: id.into(),
            organization_id: "org".into(),
            client_secret: "polar_cl_x".into(),
            url: format!("https://buy.polar.sh/{id}"),
            created_at: String::new(),
            modified_at: None,
            fields: LinkFields::default(),
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
