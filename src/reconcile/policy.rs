//! The failure policy: one pure function, [`decide`], from what went wrong to everything that
//! follows — the phase and reason the status shows, when to try again, the Warning event,
//! whether a deletion gives up and releases its finalizer, and whether a create may have
//! committed. Every other place asks it. No IO.
//!
//! Errors are classified by the structure of Polar's answers (status code, the 422 body's
//! `error` key that says which layer refused), never by their text — with one exception, noted
//! where it is made: Polar gives no code for *why* a product was refused.

use std::time::Duration;

use crate::error::{CredentialsError, Error};
use crate::polar::PolarError;
use crate::polar::error::{Problem, ValidationLayer};

use super::status::{Activity, Phase, Reason};

/// The longest backoff after repeated transient failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long to wait before trying credentials or an API version Polar refused again.
pub const REFUSED_RETRY: Duration = Duration::from_secs(300);
/// The longest wait between retries of a request Polar refused because of its own state (an
/// archived product, a discount that no longer applies), which may change without any change
/// here; the first retry comes after one sweep interval ([`Situation::state_retry`]).
pub const MAX_STATE_RETRY: Duration = Duration::from_secs(3600);

/// What failed, and the circumstances the decision depends on.
#[derive(Clone, Copy, Debug)]
pub struct Situation<'a> {
    /// What was being done.
    pub activity: Activity,
    /// The failure.
    pub error: &'a Error,
    /// Failures in a row before this one (0 for the first).
    pub failures: u32,
    /// For a deletion: how long ago it was requested.
    pub deleting_for: Option<Duration>,
    /// How long a deletion keeps trying when only a person can fix the failure.
    pub grace: Duration,
    /// The first wait before retrying what Polar refused because of its own state (the sweep
    /// interval): doubled with each failure, up to [`MAX_STATE_RETRY`].
    pub state_retry: Duration,
}

/// When to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// After this long (the caller adds up to 20% of jitter, never less).
    In(Duration),
    /// When an input changes (the spec, the Secret, the annotation, the link in Polar).
    OnChange,
}

/// Everything that follows a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// What the status shows.
    pub phase: Phase,
    /// When to try again.
    pub retry: Retry,
    /// The reason of the Warning event, published when the status changes.
    pub event: &'static str,
    /// A deletion gives up: the finalizer is released and the link left in Polar (`Orphaned`).
    pub release: bool,
    /// A create may have committed although its answer was lost: before creating again, look
    /// for a link tagged with the resource's UID in a sweep made after the request timeout.
    pub uncertain_create: bool,
}

/// `1s × 2^failures`, at most [`MAX_BACKOFF`].
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1)
        .saturating_mul(1u32 << failures.min(16))
        .min(MAX_BACKOFF)
}

/// The decision for a failure.
pub fn decide(s: Situation<'_>) -> Decision {
    let (class, reason, retry) = classify(s.error, s.failures, s.state_retry);
    let message = plain_words(s.error);
    let phase = match class {
        Class::Transient => Phase::Retrying {
            activity: s.activity,
            reason,
            message,
        },
        Class::Permanent => Phase::Stalled {
            activity: s.activity,
            reason,
            message,
        },
    };
    let uncertain_create = s.activity == Activity::Creating && answer_may_be_lost(s.error);
    let mut decision = Decision {
        event: event_reason(s.activity, reason),
        phase,
        retry,
        release: false,
        uncertain_create,
    };
    if let (Some(waited), Class::Permanent) = (s.deleting_for, class) {
        // Only a person can fix this; a deletion waits for them for the grace, not forever.
        if waited >= s.grace {
            decision.release = true;
            decision.event = "Orphaned";
        } else {
            let left = (s.grace - waited).max(Duration::from_secs(1));
            decision.retry = Retry::In(match retry {
                Retry::In(d) => d.min(left),
                Retry::OnChange => left.min(REFUSED_RETRY),
            });
        }
    }
    decision
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// The operator retries by itself; the status says Retrying.
    Transient,
    /// Something has to change first; the status says Stalled.
    Permanent,
}

fn classify(error: &Error, failures: u32, state_retry: Duration) -> (Class, Reason, Retry) {
    use Class::{Permanent, Transient};
    let slow = || {
        Retry::In(
            state_retry
                .saturating_mul(1 << failures.min(12))
                .min(MAX_STATE_RETRY),
        )
    };
    match error.inner() {
        Error::Polar { source, .. } => match source {
            PolarError::Validation {
                layer: ValidationLayer::Service,
                problems,
                ..
            } => (Permanent, state_reason(problems), slow()),
            PolarError::Validation { .. } => (Permanent, Reason::InvalidSpec, Retry::OnChange),
            PolarError::Unauthorized { .. } | PolarError::Forbidden { .. } => (
                Permanent,
                Reason::CredentialsInvalid,
                Retry::In(REFUSED_RETRY),
            ),
            PolarError::VersionRefused { .. } => (
                Permanent,
                Reason::ApiVersionRefused,
                Retry::In(REFUSED_RETRY),
            ),
            PolarError::RateLimited { retry_after } => {
                (Transient, Reason::RateLimited, Retry::In(*retry_after))
            }
            // A PATCH or DELETE raced with a deletion in Polar: the next observation sees it.
            PolarError::NotFound => (Transient, Reason::LinkGone, Retry::In(backoff(failures))),
            PolarError::Server { .. }
            | PolarError::Timeout
            | PolarError::Transport { .. }
            | PolarError::Decode { .. } => (
                Transient,
                Reason::PolarUnavailable,
                Retry::In(backoff(failures)),
            ),
            // 3xx, 411, 413, an unknown 404: not fixed by waiting a few seconds.
            PolarError::Unexpected { .. } => (Permanent, Reason::PolarUnexpected, slow()),
        },
        Error::Credentials(CredentialsError::BadServer { .. }) => {
            (Permanent, Reason::CredentialsInvalid, Retry::OnChange)
        }
        Error::Credentials(_) => (Permanent, Reason::CredentialsMissing, Retry::OnChange),
        Error::InvalidSpec(_) => (Permanent, Reason::InvalidSpec, Retry::OnChange),
        Error::Adoption(_) => (Permanent, Reason::AdoptionFailed, Retry::OnChange),
        Error::Conflict(_) => (Permanent, Reason::OwnershipConflict, Retry::OnChange),
        // Looked at again when the catalog sweep sees a change (an input of the resource).
        Error::Unresolved(_) => (Permanent, Reason::Unresolved, Retry::OnChange),
        Error::Ambiguous(_) => (Permanent, Reason::Ambiguous, Retry::OnChange),
        Error::ScopeMissing(_) => (Permanent, Reason::ScopeMissing, Retry::In(REFUSED_RETRY)),
        Error::OrganizationMismatch(_) => {
            (Permanent, Reason::OrganizationMismatch, Retry::OnChange)
        }
        Error::Unverified(_) => (Permanent, Reason::DeletionUnverified, slow()),
        // Kubernetes and internal failures are retried by the controller's error policy.
        Error::Kube { .. }
        | Error::Finalizer(_)
        | Error::Deferred { .. }
        | Error::Held
        | Error::MissingObjectField(_) => (
            Transient,
            Reason::PolarUnavailable,
            Retry::In(backoff(failures)),
        ),
    }
}

/// The message for the status: Polar's own words for Polar's answers (the step is in the
/// condition's reason), the error itself otherwise.
pub fn plain_words(error: &Error) -> String {
    match error.inner() {
        Error::Polar { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

/// The reason for a 422 from Polar's service checks. Polar gives these no code: the location
/// says which field, and for products only the message tells an archived product from a
/// missing or draft one (`server/polar/checkout_link/service.py`). Other fields (a discount
/// that does not apply, seats the products do not allow) read as an invalid spec, retried
/// slowly all the same.
fn state_reason(problems: &[Problem]) -> Reason {
    let at = |prefix: &'static str| {
        problems
            .iter()
            .filter(move |p| p.location.starts_with(prefix))
    };
    if at("products").any(|p| p.message == "Product is archived.") {
        Reason::ProductArchived
    } else if at("products").next().is_some() {
        Reason::ProductUnavailable
    } else {
        Reason::InvalidSpec
    }
}

/// Whether a failed request may still have been carried out by Polar: no answer, or one that
/// may not come from Polar's application (a proxy's 5xx, a page that is not Polar's JSON).
fn answer_may_be_lost(error: &Error) -> bool {
    matches!(
        error.polar(),
        Some(
            PolarError::Server { .. }
                | PolarError::Timeout
                | PolarError::Transport { .. }
                | PolarError::Decode { .. }
        )
    )
}

/// The Warning event reason: named after the failure class where a person has something to
/// fix, else after the step that failed.
fn event_reason(activity: Activity, reason: Reason) -> &'static str {
    match reason {
        Reason::CredentialsMissing => "CredentialsMissing",
        Reason::CredentialsInvalid => "CredentialsInvalid",
        Reason::AdoptionFailed => "AdoptionFailed",
        Reason::OwnershipConflict => "OwnershipConflict",
        Reason::OrganizationMismatch => "OrganizationMismatch",
        Reason::ApiVersionRefused => "ApiVersionRefused",
        Reason::ScopeMissing => "ScopeMissing",
        _ => activity.failed_event(),
    }
}

#[cfg(test)]
mod tests;
