//! Pure status building: an outcome becomes a [`CheckoutLinkStatus`] with the kstatus
//! conditions `Ready`, `Reconciling` and `Stalled`, and `Synced`. No IO.
//!
//! - In sync: `Ready=True` (Synced), `Reconciling=False`, `Stalled=False`, `Synced=True`.
//! - A transient failure (rate limit, Polar unavailable) of a link that was Ready at this
//!   generation: the three kstatus conditions stay as they were (the link still sells, and
//!   GitOps tools keep reading it as Current); `Synced=False` says what failed.
//! - Any other transient failure: `Ready=False` with the failure's reason, `Reconciling=True`
//!   with what was being done (Creating, Updating, Deleting, Observing), `Stalled=False`,
//!   `Synced=False`. The operator retries by itself.
//! - A permanent failure (invalid spec, credentials): `Ready=False`, `Stalled=True` and
//!   `Synced=False` with the reason, `Reconciling=False`.
//!
//! A condition keeps its `lastTransitionTime` while its status does not change, so a
//! reconcile that finds nothing new builds a status equal to the current one (and no write
//! is sent).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{CheckoutLinkStatus, ResolvedRefs, UrlParameters};
use crate::polar::Link;
use crate::share_url::share_url;

use super::results::{RESULTS, ResultsReport};
use super::sellable::{SELLABLE, Sellability};

/// The condition types.
pub const READY: &str = "Ready";
/// kstatus' "the controller is working on it".
pub const RECONCILING: &str = "Reconciling";
/// kstatus' "the controller cannot make progress without a change".
pub const STALLED: &str = "Stalled";
/// Whether the last attempt to bring the link to the spec succeeded (Crossplane's `Synced`).
pub const SYNCED: &str = "Synced";

/// A condition reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The link matches the spec.
    Synced,
    /// The link is being created.
    Creating,
    /// The link is being updated.
    Updating,
    /// The link is being deleted.
    Deleting,
    /// The link is being read from Polar.
    Observing,
    /// Polar (or the operator, before calling it) refused the spec.
    InvalidSpec,
    /// A product of the link is archived in Polar.
    ProductArchived,
    /// A product of the link does not exist in Polar (or not in the token's organisation), or
    /// is a draft.
    ProductUnavailable,
    /// The adoption annotation names a link that does not exist.
    AdoptionFailed,
    /// The Polar link belongs to another CheckoutLink, or the annotation names another link.
    OwnershipConflict,
    /// No credentials Secret, or it lacks the token.
    CredentialsMissing,
    /// Polar refused the token (401/403), or the Secret's server is unusable.
    CredentialsInvalid,
    /// The credentials belong to another organisation than the link's.
    OrganizationMismatch,
    /// A reference of the spec (product by metadata or name, discount by code) matches nothing.
    Unresolved,
    /// A reference of the spec matches several products or discounts.
    Ambiguous,
    /// The token lacks a scope a feature in use needs.
    ScopeMissing,
    /// Polar refused the API version the operator sends.
    ApiVersionRefused,
    /// Polar's rate limit was hit.
    RateLimited,
    /// Polar failed, timed out or could not be reached.
    PolarUnavailable,
    /// Polar answered in a way it never should (a redirect, 411, 413, an unknown 404).
    PolarUnexpected,
    /// The link disappeared from Polar while it was being changed.
    LinkGone,
    /// A deletion could not be confirmed: the token's organisation is unknown.
    DeletionUnverified,
}

impl Reason {
    /// The CamelCase name written to the condition.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Synced => "Synced",
            Reason::Creating => "Creating",
            Reason::Updating => "Updating",
            Reason::Deleting => "Deleting",
            Reason::Observing => "Observing",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::ProductArchived => "ProductArchived",
            Reason::ProductUnavailable => "ProductUnavailable",
            Reason::AdoptionFailed => "AdoptionFailed",
            Reason::OwnershipConflict => "OwnershipConflict",
            Reason::CredentialsMissing => "CredentialsMissing",
            Reason::CredentialsInvalid => "CredentialsInvalid",
            Reason::OrganizationMismatch => "OrganizationMismatch",
            Reason::Unresolved => "Unresolved",
            Reason::Ambiguous => "Ambiguous",
            Reason::ScopeMissing => "ScopeMissing",
            Reason::ApiVersionRefused => "ApiVersionRefused",
            Reason::RateLimited => "RateLimited",
            Reason::PolarUnavailable => "PolarUnavailable",
            Reason::PolarUnexpected => "PolarUnexpected",
            Reason::LinkGone => "LinkGone",
            Reason::DeletionUnverified => "DeletionUnverified",
        }
    }
}

/// What the operator was doing when something failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    /// Reading the link (GET, list).
    Observing,
    /// POST.
    Creating,
    /// PATCH.
    Updating,
    /// DELETE.
    Deleting,
}

impl Activity {
    /// The `Reconciling` reason for this activity.
    pub fn reason(self) -> Reason {
        match self {
            Activity::Observing => Reason::Observing,
            Activity::Creating => Reason::Creating,
            Activity::Updating => Reason::Updating,
            Activity::Deleting => Reason::Deleting,
        }
    }

    /// The Warning event reason for a failure of this activity.
    pub fn failed_event(self) -> &'static str {
        match self {
            Activity::Observing => "ObserveFailed",
            Activity::Creating => "CreateFailed",
            Activity::Updating => "UpdateFailed",
            Activity::Deleting => "DeleteFailed",
        }
    }
}

/// Where the resource stands after a reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// In sync with the spec.
    Ready,
    /// A transient failure; the operator retries.
    Retrying {
        /// What was being done.
        activity: Activity,
        /// The failure class.
        reason: Reason,
        /// Plain words, with Polar's message.
        message: String,
    },
    /// A permanent failure; nothing happens until something changes.
    Stalled {
        /// What was being done.
        activity: Activity,
        /// The failure class.
        reason: Reason,
        /// Plain words, with Polar's message.
        message: String,
    },
}

impl Phase {
    /// The reason of the `Ready` condition.
    pub fn ready_reason(&self) -> Reason {
        match self {
            Phase::Ready => Reason::Synced,
            Phase::Retrying { reason, .. } | Phase::Stalled { reason, .. } => *reason,
        }
    }
}

/// The link fields the status reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkInfo {
    /// Polar id.
    pub id: String,
    /// Public URL.
    pub url: String,
    /// Client secret (part of the URL; not a credential).
    pub client_secret: String,
    /// Owning organisation.
    pub organization_id: String,
}

impl From<&Link> for LinkInfo {
    fn from(link: &Link) -> Self {
        LinkInfo {
            id: link.id.clone(),
            url: link.url.clone(),
            client_secret: link.client_secret.clone(),
            organization_id: link.organization_id.clone(),
        }
    }
}

/// Everything a status is built from.
#[derive(Clone, Debug)]
pub struct Outcome<'a> {
    /// The resource's `metadata.generation`.
    pub generation: Option<i64>,
    /// The link, when known; `None` keeps what the previous status recorded.
    pub link: Option<LinkInfo>,
    /// `spec.urlParameters`.
    pub url_parameters: Option<&'a UrlParameters>,
    /// Where the resource stands.
    pub phase: Phase,
    /// Whether the link can sell; `None` keeps what the previous status said.
    pub sellable: Option<Sellability>,
    /// What the spec's references stand for; `None` keeps what the previous status said.
    pub resolved: Option<Option<ResolvedRefs>>,
    /// The ConfigMap the export wrote to; `None` keeps what the previous status said.
    pub exported_to: Option<Option<String>>,
    /// Campaign results; `None` keeps what the previous status said.
    pub results: Option<ResultsReport>,
    /// The sync request this attempt handled; `None` keeps what the previous status said.
    pub sync_request: Option<String>,
}

/// The `Paused` condition's type: written by the pause, dropped by any other status.
pub const PAUSED: &str = "Paused";

/// The status for `outcome`, keeping each condition's `lastTransitionTime` from `previous`
/// while its status is unchanged.
pub fn build_status(
    previous: Option<&CheckoutLinkStatus>,
    outcome: &Outcome<'_>,
    now: &Time,
) -> CheckoutLinkStatus {
    let empty = CheckoutLinkStatus::default();
    let previous = previous.unwrap_or(&empty);
    let (id, url, client_secret, organization_id) = match &outcome.link {
        Some(link) => (
            Some(link.id.clone()),
            Some(link.url.clone()),
            Some(link.client_secret.clone()),
            Some(link.organization_id.clone()),
        ),
        None => (
            previous.id.clone(),
            previous.url.clone(),
            previous.client_secret.clone(),
            previous.organization_id.clone(),
        ),
    };
    let share_url = url.as_deref().map(|u| share_url(u, outcome.url_parameters));
    let generation = outcome.generation;
    // A transient failure of a link already Ready at this generation changes only `Synced`.
    let kept =
        matches!(outcome.phase, Phase::Retrying { .. }) && is_ready_at(Some(previous), generation);
    let failed = |reason: Reason, message: &str| ("False", reason, message.to_owned());
    let (ready, reconciling, stalled, synced) = match &outcome.phase {
        Phase::Ready => (
            (
                "True",
                Reason::Synced,
                "the Polar checkout link matches the spec".to_owned(),
            ),
            ("False", Reason::Synced, String::new()),
            ("False", Reason::Synced, String::new()),
            ("True", Reason::Synced, String::new()),
        ),
        Phase::Retrying {
            activity,
            reason,
            message,
        } => (
            failed(*reason, message),
            ("True", activity.reason(), message.clone()),
            ("False", *reason, String::new()),
            failed(*reason, message),
        ),
        Phase::Stalled {
            activity: _,
            reason,
            message,
        } => (
            failed(*reason, message),
            ("False", *reason, String::new()),
            ("True", *reason, message.clone()),
            failed(*reason, message),
        ),
    };
    let mut conditions: Vec<Condition> = [
        (READY, ready),
        (RECONCILING, reconciling),
        (STALLED, stalled),
        (SYNCED, synced),
    ]
    .into_iter()
    .map(|(type_, (status, reason, message))| {
        match previous.conditions.iter().find(|c| c.type_ == type_) {
            Some(c) if kept && type_ != SYNCED => c.clone(),
            _ => with_transition(
                &previous.conditions,
                (type_, status, reason.as_str(), message),
                generation,
                now,
            ),
        }
    })
    .collect();
    if let Some(s) = &outcome.sellable {
        let status = if s.sellable { "True" } else { "False" };
        conditions.push(with_transition(
            &previous.conditions,
            (SELLABLE, status, s.reason, s.message.clone()),
            generation,
            now,
        ));
    }
    let mut results = previous.results.clone();
    let mut drop_results = false;
    if let Some(report) = &outcome.results {
        let (condition, counted) = report.condition();
        if let Some(counted) = counted {
            results = counted;
        }
        match condition {
            Some((status, reason, message)) => conditions.push(with_transition(
                &previous.conditions,
                (RESULTS, status, reason, message),
                generation,
                now,
            )),
            None => drop_results = true,
        }
    }
    // Conditions this outcome says nothing about keep what the previous status said (but
    // `Results` goes when results are off).
    let built: Vec<String> = conditions.iter().map(|c| c.type_.clone()).collect();
    for c in &previous.conditions {
        let dropped = (drop_results && c.type_ == RESULTS) || c.type_ == PAUSED;
        if !built.contains(&c.type_) && !dropped {
            conditions.push(c.clone());
        }
    }
    CheckoutLinkStatus {
        last_sync_request: outcome
            .sync_request
            .clone()
            .or_else(|| previous.last_sync_request.clone()),
        results,
        resolved: outcome
            .resolved
            .clone()
            .unwrap_or_else(|| previous.resolved.clone()),
        exported_to: outcome
            .exported_to
            .clone()
            .unwrap_or_else(|| previous.exported_to.clone()),
        id,
        url,
        client_secret,
        share_url,
        organization_id,
        observed_generation: generation,
        conditions,
    }
}

/// A condition `(type, status, reason, message)`, keeping the `lastTransitionTime` of the
/// previous condition of that type while its status is unchanged.
pub fn with_transition(
    previous: &[Condition],
    (type_, status, reason, message): (&str, &str, &str, String),
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// The condition of `type_`, if the status has it.
pub fn condition<'a>(status: Option<&'a CheckoutLinkStatus>, type_: &str) -> Option<&'a Condition> {
    status?.conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the status says Ready=True for `generation`.
pub fn is_ready_at(status: Option<&CheckoutLinkStatus>, generation: Option<i64>) -> bool {
    condition(status, READY).is_some_and(|c| {
        c.status == "True" && c.observed_generation == generation && generation.is_some()
    }) && status.is_some_and(|s| s.observed_generation == generation)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::crd::CampaignResults;

    fn time(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    fn info() -> LinkInfo {
        LinkInfo {
            id: "id-1".into(),
            url: "https://buy.polar.sh/polar_cl_x".into(),
            client_secret: "polar_cl_x".into(),
            organization_id: "org".into(),
        }
    }

    fn outcome(phase: Phase) -> Outcome<'static> {
        Outcome {
            generation: Some(2),
            link: Some(info()),
            url_parameters: None,
            phase,
            sellable: None,
            resolved: None,
            exported_to: None,
            results: None,
            sync_request: None,
        }
    }

    #[test]
    fn results_come_with_a_condition_that_says_how_they_stand_and_go_when_turned_off() {
        let counted = CampaignResults {
            orders: 2,
            summary: "2 orders, 30.00 USD net".into(),
            ..Default::default()
        };
        let with = |report| Outcome {
            results: Some(report),
            ..outcome(Phase::Ready)
        };
        let first = build_status(
            None,
            &with(ResultsReport::Counted(counted.clone())),
            &time(1),
        );
        assert_eq!(first.results.as_ref(), Some(&counted));
        let c = find(&first, RESULTS);
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "Counted"));
        assert_eq!(c.message, "2 orders, 30.00 USD net");
        let failing = ResultsReport::Failing("ScopeMissing", "needs orders:read".into());
        let refused = build_status(Some(&first), &with(failing), &time(2));
        assert_eq!(refused.results, first.results, "what was counted stays");
        assert_eq!(find(&refused, RESULTS).reason, "ScopeMissing");
        assert_eq!(
            find(&refused, READY).status,
            "True",
            "the link is unaffected"
        );
        let kept = build_status(Some(&refused), &outcome(Phase::Ready), &time(3));
        assert_eq!(
            find(&kept, RESULTS).reason,
            "ScopeMissing",
            "no news keeps it"
        );
        let off = build_status(Some(&refused), &with(ResultsReport::Off), &time(4));
        assert_eq!(off.results, None);
        assert!(off.conditions.iter().all(|c| c.type_ != RESULTS));
        let pending = build_status(None, &with(ResultsReport::Pending), &time(5));
        assert_eq!(find(&pending, RESULTS).status, "Unknown");
    }

    fn find<'a>(s: &'a CheckoutLinkStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    fn triple(s: &CheckoutLinkStatus) -> [(String, String); 3] {
        [READY, RECONCILING, STALLED].map(|t| {
            let c = find(s, t);
            (c.status.clone(), c.reason.clone())
        })
    }

    fn pair(status: &str, reason: &str) -> (String, String) {
        (status.to_owned(), reason.to_owned())
    }

    #[test]
    fn phases_map_to_kstatus_conditions() {
        let retry = Phase::Retrying {
            activity: Activity::Creating,
            reason: Reason::PolarUnavailable,
            message: "Polar answered with server error 503".into(),
        };
        let stall = Phase::Stalled {
            activity: Activity::Updating,
            reason: Reason::InvalidSpec,
            message: "Polar rejected the checkout link: discount_id: nope".into(),
        };
        let cases = [
            (
                Phase::Ready,
                [
                    pair("True", "Synced"),
                    pair("False", "Synced"),
                    pair("False", "Synced"),
                ],
            ),
            (
                retry,
                [
                    pair("False", "PolarUnavailable"),
                    pair("True", "Creating"),
                    pair("False", "PolarUnavailable"),
                ],
            ),
            (
                stall,
                [
                    pair("False", "InvalidSpec"),
                    pair("False", "InvalidSpec"),
                    pair("True", "InvalidSpec"),
                ],
            ),
        ];
        for (phase, want) in cases {
            let s = build_status(None, &outcome(phase.clone()), &time(10));
            assert_eq!(triple(&s), want, "{phase:?}");
            assert!(
                s.conditions
                    .iter()
                    .all(|c| c.observed_generation == Some(2))
            );
            assert_eq!(s.observed_generation, Some(2));
        }
    }

    #[test]
    fn the_status_reports_the_link_and_its_share_url() {
        let params = UrlParameters {
            utm_source: Some("news letter".into()),
            ..Default::default()
        };
        let o = Outcome {
            url_parameters: Some(&params),
            ..outcome(Phase::Ready)
        };
        let s = build_status(None, &o, &time(10));
        assert_eq!(s.id.as_deref(), Some("id-1"));
        assert_eq!(s.client_secret.as_deref(), Some("polar_cl_x"));
        assert_eq!(s.organization_id.as_deref(), Some("org"));
        assert_eq!(
            s.share_url.as_deref(),
            Some("https://buy.polar.sh/polar_cl_x?utm_source=news+letter")
        );
    }

    #[test]
    fn an_unknown_link_keeps_what_the_previous_status_recorded() {
        let before = build_status(None, &outcome(Phase::Ready), &time(10));
        let stall = Phase::Stalled {
            activity: Activity::Updating,
            reason: Reason::CredentialsInvalid,
            message: "bad token".into(),
        };
        let after = build_status(
            Some(&before),
            &Outcome {
                link: None,
                ..outcome(stall)
            },
            &time(20),
        );
        assert_eq!(after.id, before.id);
        assert_eq!(after.url, before.url);
        assert_eq!(after.share_url, before.share_url);
        assert_eq!(find(&after, READY).message, "bad token");
    }

    #[test]
    fn transition_times_change_only_with_the_status() {
        let first = build_status(None, &outcome(Phase::Ready), &time(10));
        let again = build_status(Some(&first), &outcome(Phase::Ready), &time(99));
        assert_eq!(
            first, again,
            "a reconcile that finds nothing new must not produce a write"
        );

        let stall = Phase::Stalled {
            activity: Activity::Updating,
            reason: Reason::InvalidSpec,
            message: "m".into(),
        };
        let stalled = build_status(Some(&first), &outcome(stall), &time(50));
        assert_eq!(find(&stalled, READY).last_transition_time, time(50));
        assert_eq!(find(&stalled, STALLED).last_transition_time, time(50));
        // Reconciling stayed False: its time is kept.
        assert_eq!(find(&stalled, RECONCILING).last_transition_time, time(10));
    }

    #[test]
    fn polar_messages_are_kept_in_plain_words() {
        let e = crate::error::Error::Polar {
            step: "create",
            source: crate::polar::PolarError::from_422_body(
                r#"{"error":"PolarRequestValidationError","detail":[{"type":"value_error","loc":["body","products",0],"msg":"Product is archived.","input":"x"}]}"#,
            ),
        };
        let decision = super::super::policy::decide(super::super::policy::Situation {
            activity: Activity::Creating,
            error: &e,
            failures: 0,
            deleting_for: None,
            grace: std::time::Duration::from_secs(600),
            state_retry: std::time::Duration::from_secs(600),
        });
        let s = build_status(None, &outcome(decision.phase), &time(1));
        assert_eq!(
            find(&s, STALLED).message,
            "Polar rejected the checkout link: products[0]: Product is archived."
        );
    }

    #[test]
    fn a_transient_failure_of_a_ready_link_only_unsyncs_it() {
        let ready = build_status(None, &outcome(Phase::Ready), &time(10));
        let blip = Phase::Retrying {
            activity: Activity::Updating,
            reason: Reason::PolarUnavailable,
            message: "Polar answered with server error 503".into(),
        };
        let after = build_status(Some(&ready), &outcome(blip.clone()), &time(20));
        assert_eq!(
            triple(&after),
            triple(&ready),
            "Ready, Reconciling, Stalled kept"
        );
        assert_eq!(find(&after, READY), find(&ready, READY));
        let synced = find(&after, SYNCED);
        assert_eq!(
            (synced.status.as_str(), synced.reason.as_str()),
            ("False", "PolarUnavailable")
        );
        assert_eq!(synced.last_transition_time, time(20));
        // Back in sync: Synced flips back, the rest never moved.
        let healed = build_status(Some(&after), &outcome(Phase::Ready), &time(30));
        assert_eq!(find(&healed, READY), find(&ready, READY));
        assert_eq!(find(&healed, SYNCED).status, "True");
        // At a new generation the link is not Ready yet: the failure shows.
        let newer = Outcome {
            generation: Some(3),
            ..outcome(blip)
        };
        let changed = build_status(Some(&ready), &newer, &time(40));
        assert_eq!(find(&changed, READY).status, "False");
        assert_eq!(find(&changed, RECONCILING).status, "True");
        // A permanent failure always shows.
        let stall = Phase::Stalled {
            activity: Activity::Updating,
            reason: Reason::InvalidSpec,
            message: "m".into(),
        };
        let stalled = build_status(Some(&ready), &outcome(stall), &time(50));
        assert_eq!(find(&stalled, READY).status, "False");
        assert_eq!(find(&stalled, STALLED).status, "True");
    }

    #[test]
    fn readiness_is_per_generation() {
        let s = build_status(None, &outcome(Phase::Ready), &time(1));
        assert!(is_ready_at(Some(&s), Some(2)));
        assert!(!is_ready_at(Some(&s), Some(3)));
        assert!(!is_ready_at(None, Some(2)));
    }
}
