//! What the controller remembers per resource, in memory (keyed by UID): the inputs of the
//! last attempt and until when nothing is to be done for them, the failure count for the
//! backoff, the link id it last established, and whether a create may have left a link
//! behind whose id is not known.

use std::time::Duration;

use k8s_openapi::jiff::SignedDuration;
use kube::ResourceExt;
use tokio::time::Instant;

use crate::crd::{ADOPT_ANNOTATION, CheckoutLink};
use crate::error::CredentialsError;

use super::Context;
use super::credentials::CredentialsRef;

/// Resources created this long after the controller started cannot have been seen by an
/// earlier operator process (allowing for clock skew between the apiserver and the operator).
const CLOCK_SKEW: Duration = Duration::from_secs(5);

/// What a reconcile depends on besides Polar. When it has not changed, a reconcile triggered
/// before the scheduled time does nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Inputs {
    generation: Option<i64>,
    secret_version: String,
    adopt: Option<String>,
    deleting: bool,
}

/// "Nothing to do for these inputs until then" (`None`: until they change).
#[derive(Clone, Debug)]
pub(super) struct Hold {
    inputs: Inputs,
    until: Option<Instant>,
}

impl Hold {
    /// Holds `inputs` for `delay` from now (`None`: until they change).
    pub(super) fn new(inputs: Inputs, delay: Option<Duration>) -> Self {
        Hold {
            inputs,
            until: delay.map(|d| Instant::now() + d),
        }
    }
}

/// What the controller remembers about one resource.
#[derive(Clone, Debug, Default)]
pub(super) struct Memory {
    pub(super) hold: Option<Hold>,
    /// Consecutive transient failures, for the backoff.
    pub(super) failures: u32,
    /// The link id and URL this process last established, in case the status lags behind.
    pub(super) known: Option<(String, String)>,
    /// A create was sent without a definite answer: the link may exist.
    pub(super) create_uncertain: bool,
    /// An owner search found nothing, and no create was sent since.
    pub(super) searched: bool,
}

impl Context {
    fn memory(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Memory>> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes what is remembered about `uid`.
    pub(super) fn remember<T>(&self, uid: &str, f: impl FnOnce(&mut Memory) -> T) -> T {
        f(self.memory().entry(uid.to_owned()).or_default())
    }

    /// What is remembered about `uid`.
    pub(super) fn recall(&self, uid: &str) -> Memory {
        self.memory().get(uid).cloned().unwrap_or_default()
    }

    /// Forgets `uid` (its resource is gone).
    pub(super) fn forget(&self, uid: &str) {
        self.memory().remove(uid);
    }

    /// Counts a transient failure; returns the count before it (0 for the first).
    pub(super) fn bump_failures(&self, uid: &str) -> u32 {
        self.remember(uid, |m| {
            let n = m.failures;
            m.failures = m.failures.saturating_add(1);
            n
        })
    }

    /// `Some(wait)` when nothing is to be done for these inputs yet: `Some(None)` until
    /// they change, `Some(Some(d))` for `d` more.
    pub(super) fn held(&self, uid: &str, inputs: &Inputs) -> Option<Option<Duration>> {
        let hold = self.recall(uid).hold?;
        if &hold.inputs != inputs {
            return None;
        }
        match hold.until {
            None => Some(None),
            Some(until) => {
                let now = Instant::now();
                (until > now).then(|| Some(until - now))
            }
        }
    }

    /// The inputs of a reconcile of `link` now.
    pub(super) fn inputs(
        &self,
        link: &CheckoutLink,
        cref: &Result<CredentialsRef, CredentialsError>,
    ) -> Inputs {
        Inputs {
            generation: link.metadata.generation,
            secret_version: cref
                .as_ref()
                .ok()
                .and_then(|r| self.secrets.version(&r.secret))
                .unwrap_or_default(),
            adopt: link.annotations().get(ADOPT_ANNOTATION).cloned(),
            deleting: link.metadata.deletion_timestamp.is_some(),
        }
    }

    /// Whether a link tagged with this resource's UID may exist unknown to this process: a
    /// create without a definite answer, or a resource an earlier process may have handled
    /// (one created before this process started). Assumes one operator process at a time
    /// (leader election).
    pub(super) fn may_own_unknown_link(&self, link: &CheckoutLink, memory: &Memory) -> bool {
        if memory.create_uncertain {
            return true;
        }
        if memory.searched {
            return false;
        }
        let created = link.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let skew = SignedDuration::try_from(CLOCK_SKEW).unwrap_or_default();
        created.is_none_or(|c| c <= self.started + skew)
    }

    /// The link this resource owns, as far as this process or the status knows: (id, URL).
    pub(super) fn known_link(
        link: &CheckoutLink,
        memory: &Memory,
    ) -> Option<(String, Option<String>)> {
        match &memory.known {
            Some((id, url)) => Some((id.clone(), Some(url.clone()))),
            None => {
                let status = link.status.as_ref()?;
                Some((status.id.clone()?, status.url.clone()))
            }
        }
    }
}
