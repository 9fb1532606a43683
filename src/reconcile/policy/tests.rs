//! The failure policy as one table: every error class, under every activity, with a sentence
//! that says what the row means.

use std::time::Duration;

use super::*;

/// The sweep interval the rows assume.
const STATE_RETRY: Duration = Duration::from_secs(300);

fn polar(source: PolarError) -> Error {
    Error::Polar {
        step: "call",
        source,
    }
}

fn service_422(loc: &str, index: Option<i64>, msg: &str) -> PolarError {
    let loc = match index {
        Some(i) => format!(r#"["body","{loc}",{i}]"#),
        None => format!(r#"["body","{loc}"]"#),
    };
    PolarError::from_422_body(&format!(
        r#"{{"error":"PolarRequestValidationError","detail":[{{"type":"value_error","loc":{loc},"msg":"{msg}","input":"x"}}]}}"#
    ))
}

fn request_422() -> PolarError {
    PolarError::from_422_body(
        r#"{"error":"RequestValidationError","detail":[{"type":"url_scheme","loc":["body","success_url"],"msg":"URL scheme should be 'http' or 'https'","input":"ftp://x"}]}"#,
    )
}

/// Permanent or transient, and how the next attempt comes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Then {
    /// Stalled, retried when something changes.
    StallUntilChange,
    /// Stalled, retried after this long.
    StallThenRetryIn(Duration),
    /// Stalled, retried after [`STATE_RETRY`], doubling with each failure up to an hour.
    StallThenRetrySlowly,
    /// Retrying after this long.
    RetryIn(Duration),
}

struct Row {
    says: &'static str,
    error: Error,
    reason: Reason,
    then: Then,
    /// Whether a create failing this way may have committed.
    uncertain_if_creating: bool,
}

fn rows() -> Vec<Row> {
    use Then::*;
    let secret = |e| Error::Credentials(e);
    vec![
        Row {
            says: "Polar refusing the body itself stalls until the spec changes",
            error: polar(request_422()),
            reason: Reason::InvalidSpec,
            then: StallUntilChange,
            uncertain_if_creating: false,
        },
        Row {
            says: "an archived product stalls, and is looked at again later: it may be unarchived",
            error: polar(service_422("products", Some(0), "Product is archived.")),
            reason: Reason::ProductArchived,
            then: StallThenRetrySlowly,
            uncertain_if_creating: false,
        },
        Row {
            says: "a product that does not exist (yet) stalls, and is looked at again later",
            error: polar(service_422("products", Some(1), "Product does not exist.")),
            reason: Reason::ProductUnavailable,
            then: StallThenRetrySlowly,
            uncertain_if_creating: false,
        },
        Row {
            says: "a draft product stalls, and is looked at again later",
            error: polar(service_422("products", Some(0), "Product is a draft.")),
            reason: Reason::ProductUnavailable,
            then: StallThenRetrySlowly,
            uncertain_if_creating: false,
        },
        Row {
            says: "a discount that does not apply stalls as an invalid spec, looked at again later",
            error: polar(service_422(
                "discount_id",
                None,
                "Discount does not exist or is not applicable to this product.",
            )),
            reason: Reason::InvalidSpec,
            then: StallThenRetrySlowly,
            uncertain_if_creating: false,
        },
        Row {
            says: "a seat count the products refuse stalls as an invalid spec, looked at again later",
            error: polar(service_422(
                "seats",
                None,
                "Seats can only be preconfigured when all products use seat-based pricing.",
            )),
            reason: Reason::InvalidSpec,
            then: StallThenRetrySlowly,
            uncertain_if_creating: false,
        },
        Row {
            says: "a refused token stalls, and is tried again every five minutes",
            error: polar(PolarError::Unauthorized {
                message: "invalid_token".into(),
            }),
            reason: Reason::CredentialsInvalid,
            then: StallThenRetryIn(REFUSED_RETRY),
            uncertain_if_creating: false,
        },
        Row {
            says: "a token without the scope stalls, and is tried again every five minutes",
            error: polar(PolarError::Forbidden {
                message: "insufficient_scope".into(),
            }),
            reason: Reason::CredentialsInvalid,
            then: StallThenRetryIn(REFUSED_RETRY),
            uncertain_if_creating: false,
        },
        Row {
            says: "a refused API version stalls with its own reason, never as a missing link",
            error: polar(PolarError::VersionRefused {
                version: "2026-10".into(),
            }),
            reason: Reason::ApiVersionRefused,
            then: StallThenRetryIn(REFUSED_RETRY),
            uncertain_if_creating: false,
        },
        Row {
            says: "a 429 is retried no sooner than Retry-After",
            error: polar(PolarError::RateLimited {
                retry_after: Duration::from_secs(60),
            }),
            reason: Reason::RateLimited,
            then: RetryIn(Duration::from_secs(60)),
            uncertain_if_creating: false,
        },
        Row {
            says: "a 5xx is retried with backoff, and a create may have committed",
            error: polar(PolarError::Server { status: 503 }),
            reason: Reason::PolarUnavailable,
            then: RetryIn(Duration::from_secs(4)),
            uncertain_if_creating: true,
        },
        Row {
            says: "a timeout is retried with backoff, and a create may have committed",
            error: polar(PolarError::Timeout),
            reason: Reason::PolarUnavailable,
            then: RetryIn(Duration::from_secs(4)),
            uncertain_if_creating: true,
        },
        Row {
            says: "a cut connection is retried with backoff, and a create may have committed",
            error: polar(PolarError::Transport {
                message: "reset".into(),
            }),
            reason: Reason::PolarUnavailable,
            then: RetryIn(Duration::from_secs(4)),
            uncertain_if_creating: true,
        },
        Row {
            says: "an unreadable success is retried, and a create may have committed",
            error: polar(PolarError::Decode {
                message: "eof".into(),
            }),
            reason: Reason::PolarUnavailable,
            then: RetryIn(Duration::from_secs(4)),
            uncertain_if_creating: true,
        },
        Row {
            says: "a 404 while changing a link is retried soon: the next look sees it gone",
            error: polar(PolarError::NotFound),
            reason: Reason::LinkGone,
            then: RetryIn(Duration::from_secs(4)),
            uncertain_if_creating: false,
        },
        Row {
            says: "a status Polar never sends stalls, and is looked at again later",
            error: polar(PolarError::Unexpected {
                status: 413,
                message: "too large".into(),
            }),
            reason: Reason::PolarUnexpected,
            then: StallThenRetrySlowly,
            uncertain_if_creating: false,
        },
        Row {
            says: "no credentials configured stalls until a Secret or flag changes",
            error: secret(CredentialsError::NotConfigured),
            reason: Reason::CredentialsMissing,
            then: StallUntilChange,
            uncertain_if_creating: false,
        },
        Row {
            says: "a missing Secret stalls until it appears",
            error: secret(CredentialsError::SecretNotFound {
                namespace: "n".into(),
                name: "s".into(),
            }),
            reason: Reason::CredentialsMissing,
            then: StallUntilChange,
            uncertain_if_creating: false,
        },
        Row {
            says: "a Secret without the token stalls until it is fixed",
            error: secret(CredentialsError::KeyMissing {
                namespace: "n".into(),
                name: "s".into(),
                key: "token".into(),
            }),
            reason: Reason::CredentialsMissing,
            then: StallUntilChange,
            uncertain_if_creating: false,
        },
        Row {
            says: "an unusable server in the Secret stalls as invalid credentials",
            error: secret(CredentialsError::BadServer {
                namespace: "n".into(),
                name: "s".into(),
                message: "plain http".into(),
            }),
            reason: Reason::CredentialsInvalid,
            then: StallUntilChange,
            uncertain_if_creating: false,
        },
        Row {
            says: "a spec the operator refuses before calling Polar stalls until it changes",
            error: Error::InvalidSpec("spec.products[0]: bad".into()),
            reason: Reason::InvalidSpec,
            then: StallUntilChange,
            uncertain_if_creating: false,
        },
        Row {
            says: "an adoption annotation that cannot be followed stalls until it changes",
            error: Error::Adoption("no such link".into()),
            reason: Reason::AdoptionFailed,
            then: StallUntilChange,
            uncertain_if_creating: false,
        },
        Row {
            says: "a link claimed by another resource stalls, with no write, until something changes",
            error: Error::Conflict("two owners".into()),
            reason: Reason::OwnershipConflict,
            then: StallUntilChange,
            uncertain_if_creating: false,
        },
        Row {
            says: "a reference that matches nothing stalls until the spec or Polar's catalog changes",
            error: Error::Unresolved("spec.products[0] (metadata sku=x): no product".into()),
            reason: Reason::Unresolved,
            then: StallUntilChange,
            uncertain_if_creating: false,
        },
        Row {
            says: "a reference that matches several stalls until the spec or the catalog changes",
            error: Error::Ambiguous("spec.products[0] matches 2 products".into()),
            reason: Reason::Ambiguous,
            then: StallUntilChange,
            uncertain_if_creating: false,
        },
        Row {
            says: "a scope a feature needs stalls, and is tried again every five minutes",
            error: Error::ScopeMissing("the token lacks products:read".into()),
            reason: Reason::ScopeMissing,
            then: StallThenRetryIn(REFUSED_RETRY),
            uncertain_if_creating: false,
        },
        Row {
            says: "credentials of another organisation stall until they change",
            error: Error::OrganizationMismatch("other org".into()),
            reason: Reason::OrganizationMismatch,
            then: StallUntilChange,
            uncertain_if_creating: false,
        },
        Row {
            says: "a 404 that cannot be verified stalls, and is looked at again later",
            error: Error::Unverified("unknown org".into()),
            reason: Reason::DeletionUnverified,
            then: StallThenRetrySlowly,
            uncertain_if_creating: false,
        },
    ]
}

const ACTIVITIES: [Activity; 4] = [
    Activity::Observing,
    Activity::Creating,
    Activity::Updating,
    Activity::Deleting,
];

fn situation(activity: Activity, error: &Error, failures: u32) -> Situation<'_> {
    Situation {
        activity,
        error,
        failures,
        deleting_for: None,
        grace: Duration::from_secs(600),
        state_retry: STATE_RETRY,
    }
}

#[test]
fn every_error_class_under_every_activity() {
    for row in rows() {
        for activity in ACTIVITIES {
            // Two failures before this one: the backoff rows read 4 s.
            let d = decide(situation(activity, &row.error, 2));
            let what = format!("{} (while {activity:?})", row.says);
            assert_eq!(d.phase.ready_reason(), row.reason, "{what}");
            let got = match (&d.phase, d.retry) {
                (Phase::Stalled { .. }, Retry::OnChange) => Then::StallUntilChange,
                (Phase::Stalled { .. }, Retry::In(t)) => Then::StallThenRetryIn(t),
                (Phase::Retrying { .. }, Retry::In(t)) => Then::RetryIn(t),
                (phase, retry) => panic!("{what}: {phase:?} with {retry:?}"),
            };
            let want = match row.then {
                // Two failures before: the slow retry has doubled twice.
                Then::StallThenRetrySlowly => Then::StallThenRetryIn(STATE_RETRY * 4),
                other => other,
            };
            assert_eq!(got, want, "{what}");
            assert_eq!(
                d.uncertain_create,
                row.uncertain_if_creating && activity == Activity::Creating,
                "{what}: uncertain create"
            );
            assert!(!d.release, "{what}: nothing is released outside a deletion");
            match &d.phase {
                Phase::Retrying {
                    activity: a,
                    message,
                    ..
                }
                | Phase::Stalled {
                    activity: a,
                    message,
                    ..
                } => {
                    assert_eq!(*a, activity, "{what}");
                    assert_eq!(message, &plain_words(&row.error), "{what}");
                }
                Phase::Ready => unreachable!(),
            }
        }
    }
}

#[test]
fn warning_events_are_named_by_what_a_person_must_fix_else_by_the_step() {
    let named = [
        (
            Error::Credentials(CredentialsError::NotConfigured),
            "CredentialsMissing",
        ),
        (
            polar(PolarError::Unauthorized {
                message: "x".into(),
            }),
            "CredentialsInvalid",
        ),
        (Error::Adoption("x".into()), "AdoptionFailed"),
        (Error::Conflict("x".into()), "OwnershipConflict"),
        (
            Error::OrganizationMismatch("x".into()),
            "OrganizationMismatch",
        ),
        (
            polar(PolarError::VersionRefused {
                version: "2026-10".into(),
            }),
            "ApiVersionRefused",
        ),
    ];
    for (error, event) in &named {
        for activity in ACTIVITIES {
            assert_eq!(
                decide(situation(activity, error, 0)).event,
                *event,
                "{error}"
            );
        }
    }
    let by_step = polar(PolarError::Server { status: 502 });
    for (activity, event) in [
        (Activity::Observing, "ObserveFailed"),
        (Activity::Creating, "CreateFailed"),
        (Activity::Updating, "UpdateFailed"),
        (Activity::Deleting, "DeleteFailed"),
    ] {
        assert_eq!(decide(situation(activity, &by_step, 0)).event, event);
    }
}

#[test]
fn a_deletion_waits_for_a_person_only_for_the_grace() {
    let missing = Error::Credentials(CredentialsError::SecretNotFound {
        namespace: "n".into(),
        name: "s".into(),
    });
    let deleting = |waited| Situation {
        deleting_for: Some(Duration::from_secs(waited)),
        ..situation(Activity::Deleting, &missing, 0)
    };
    // Within the grace: retried before the grace runs out, not "on change" only.
    let early = decide(deleting(30));
    assert!(!early.release);
    assert_eq!(early.retry, Retry::In(REFUSED_RETRY));
    let late = decide(deleting(590));
    assert!(!late.release);
    assert_eq!(late.retry, Retry::In(Duration::from_secs(10)));
    // Past it: the finalizer is released with an Orphaned Warning.
    let over = decide(deleting(600));
    assert!(over.release);
    assert_eq!(over.event, "Orphaned");
    // A transient failure never gives up: Polar comes back.
    let down = polar(PolarError::Server { status: 503 });
    let transient = decide(Situation {
        deleting_for: Some(Duration::from_secs(6000)),
        ..situation(Activity::Deleting, &down, 0)
    });
    assert!(!transient.release);
    assert!(matches!(transient.phase, Phase::Retrying { .. }));
}

#[test]
fn backoff_doubles_from_one_second_to_five_minutes() {
    for (failures, secs) in [(0u32, 1), (1, 2), (3, 8), (8, 256), (9, 300), (40, 300)] {
        assert_eq!(backoff(failures), Duration::from_secs(secs), "{failures}");
    }
    let slow = |failures| {
        decide(situation(
            Activity::Updating,
            &polar(service_422("products", Some(0), "Product is archived.")),
            failures,
        ))
        .retry
    };
    assert_eq!(slow(0), Retry::In(STATE_RETRY));
    assert_eq!(slow(20), Retry::In(MAX_STATE_RETRY), "capped at an hour");
}
