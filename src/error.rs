//! The operator's [`Error`]: what a reconcile can fail on, named after the step that failed,
//! with a bounded [`Error::category`] for metrics and event reasons.
//!
//! No variant holds the Polar access token: Polar errors are scrubbed by `polar::http`, and
//! credential errors name the Secret and the key, never the value.

use crate::polar::PolarError;

/// A reconcile failure.
#[derive(thiserror::Error, Debug)]
pub enum Error {
    /// A call to Polar failed.
    #[error("{step} failed: {source}")]
    Polar {
        /// What the operator was doing (`create`, `get`, `update`, `delete`, `list`).
        step: &'static str,
        #[source]
        source: PolarError,
    },
    /// The credentials Secret is missing, lacks the token key, or holds an unusable server.
    #[error("{0}")]
    Credentials(#[from] CredentialsError),
    /// The spec cannot be sent to Polar (caught before any call).
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// A Kubernetes API call failed.
    #[error("{step} failed: {source}")]
    Kube {
        /// The call (`PatchStatus`, `GetSecret`, ...).
        step: &'static str,
        #[source]
        source: kube::Error,
    },
    /// The finalizer helper failed to add or remove the finalizer.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// The adoption annotation cannot be followed (no such link, or another resource's).
    #[error("{0}")]
    Adoption(String),
    /// The Polar link is claimed by another resource (its owner tag names another UID), or the
    /// adoption annotation names another link than the one this resource manages.
    #[error("{0}")]
    Conflict(String),
    /// A reference of the spec (a product by metadata or name, a discount by code) matches
    /// nothing in the link's organisation.
    #[error("{0}")]
    Unresolved(String),
    /// A reference of the spec matches several products or discounts.
    #[error("{0}")]
    Ambiguous(String),
    /// The token lacks a scope a feature in use needs (`products:read` for references...).
    #[error("{0}")]
    ScopeMissing(String),
    /// The credentials act on another organisation than the one that owns the link.
    #[error("{0}")]
    OrganizationMismatch(String),
    /// Polar answered 404 for a link, but the token's organisation is not known, so the answer
    /// cannot be told apart from "wrong organisation": the deletion is not counted as done.
    #[error("{0}")]
    Unverified(String),
    /// A failure already handled (status written, event sent) that must still fail the
    /// reconcile (so the finalizer stays): the error policy retries after `delay`.
    #[error("{cause} (next attempt in {}s)", delay.as_secs())]
    Deferred {
        /// When to try again.
        delay: std::time::Duration,
        /// What failed.
        cause: Box<Error>,
    },
    /// Nothing failed: a reconcile came before the scheduled retry, which stays as it was.
    #[error("waiting for the scheduled retry")]
    Held,
    /// The object lacks a field the apiserver always sets (name, namespace, uid).
    #[error("the object has no {0}")]
    MissingObjectField(&'static str),
}

/// Why no usable credentials could be read.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum CredentialsError {
    /// No `credentialsSecretRef` and no default Secret configured.
    #[error(
        "no credentials: the CheckoutLink has no spec.credentialsSecretRef and the operator has no default credentials Secret (--default-credentials-secret)"
    )]
    NotConfigured,
    /// The Secret does not exist.
    #[error("the credentials Secret {namespace}/{name} does not exist")]
    SecretNotFound { namespace: String, name: String },
    /// The Secret lacks the token key, or it is empty.
    #[error("the credentials Secret {namespace}/{name} has no key {key:?} (or it is empty)")]
    KeyMissing {
        namespace: String,
        name: String,
        key: String,
    },
    /// The `server` key is not `production`, `sandbox` or a base URL.
    #[error("the credentials Secret {namespace}/{name} has an unusable \"server\" key: {message}")]
    BadServer {
        namespace: String,
        name: String,
        message: String,
    },
}

impl Error {
    /// A bounded label: `polar_<polar category>`, `credentials_missing`,
    /// `credentials_invalid`, `invalid_spec`, `adoption`, `conflict`, `unresolved`,
    /// `ambiguous`, `scope_missing`, `organization_mismatch`,
    /// `unverified`, `kube`, `finalizer`, `held` or `internal`.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Polar { source, .. } => match source.category() {
                "validation" => "polar_validation",
                "credentials" => "polar_credentials",
                "not_found" => "polar_not_found",
                "version_refused" => "polar_version_refused",
                "rate_limited" => "polar_rate_limited",
                "server" => "polar_server",
                "timeout" => "polar_timeout",
                "transport" => "polar_transport",
                "decode" => "polar_decode",
                _ => "polar_unexpected",
            },
            Error::Credentials(CredentialsError::BadServer { .. }) => "credentials_invalid",
            Error::Credentials(_) => "credentials_missing",
            Error::InvalidSpec(_) => "invalid_spec",
            Error::Kube { .. } => "kube",
            Error::Finalizer(_) => "finalizer",
            Error::Adoption(_) => "adoption",
            Error::Conflict(_) => "conflict",
            Error::Unresolved(_) => "unresolved",
            Error::Ambiguous(_) => "ambiguous",
            Error::ScopeMissing(_) => "scope_missing",
            Error::OrganizationMismatch(_) => "organization_mismatch",
            Error::Unverified(_) => "unverified",
            Error::Held => "held",
            Error::Deferred { cause, .. } => cause.category(),
            Error::MissingObjectField(_) => "internal",
        }
    }

    /// The Polar error inside, if this is one.
    pub fn polar(&self) -> Option<&PolarError> {
        match self {
            Error::Polar { source, .. } => Some(source),
            Error::Deferred { cause, .. } => cause.polar(),
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.polar(),
                _ => None,
            },
            _ => None,
        }
    }

    /// The reconcile error inside the finalizer and deferral wrappers, or `self`.
    pub fn inner(&self) -> &Error {
        match self {
            Error::Deferred { cause, .. } => cause.inner(),
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.inner(),
                _ => self,
            },
            _ => self,
        }
    }
}

impl Error {
    /// The delay a [`Error::Deferred`] asks for, looking inside the finalizer wrapper.
    pub fn deferred_delay(&self) -> Option<std::time::Duration> {
        match self {
            Error::Deferred { delay, .. } => Some(*delay),
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.deferred_delay(),
                _ => None,
            },
            _ => None,
        }
    }
}

/// `Result` with the operator's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_messages_name_the_secret_but_hold_no_value() {
        let e = Error::from(CredentialsError::KeyMissing {
            namespace: "shop".into(),
            name: "polar".into(),
            key: "token".into(),
        });
        assert_eq!(
            e.to_string(),
            "the credentials Secret shop/polar has no key \"token\" (or it is empty)"
        );
        assert_eq!(e.category(), "credentials_missing");
    }

    #[test]
    fn polar_categories_are_prefixed_and_bounded() {
        let e = Error::Polar {
            step: "create",
            source: PolarError::Server { status: 503 },
        };
        assert_eq!(e.category(), "polar_server");
        assert_eq!(
            e.to_string(),
            "create failed: Polar answered with server error 503"
        );
        assert!(e.polar().is_some());
        let wrapped = Error::Finalizer(Box::new(kube::runtime::finalizer::Error::CleanupFailed(e)));
        assert_eq!(wrapped.polar(), Some(&PolarError::Server { status: 503 }));
        assert_eq!(wrapped.inner().category(), "polar_server");
    }
}
