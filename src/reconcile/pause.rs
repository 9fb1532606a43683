//! The pause: while a resource carries `polar.sh/paused: "true"` the operator makes no Polar
//! call for it (no create, patch, delete, or read), not even for its deletion, which waits
//! until the pause is lifted. A `Paused` condition and an event say so, and a gauge counts
//! paused resources so that a forgotten pause shows. Any later status drops the condition.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use crate::crd::{CheckoutLink, CheckoutLinkStatus, PAUSE_ANNOTATION};
use crate::error::Error;

use super::context::{Context, now};
use super::status::{PAUSED, condition, with_transition};

/// Whether the resource is paused.
pub fn is_paused(link: &CheckoutLink) -> bool {
    link.annotations()
        .get(PAUSE_ANNOTATION)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The status of a paused resource: the previous one, with `Paused=True`.
pub fn paused_status(previous: Option<&CheckoutLinkStatus>, now: &Time) -> CheckoutLinkStatus {
    let mut status = previous.cloned().unwrap_or_default();
    let message = format!(
        "the annotation {PAUSE_ANNOTATION} is true: no Polar call is made for this resource (nor its deletion) until it is removed"
    );
    let paused = with_transition(
        &status.conditions,
        (PAUSED, "True", "Paused", message),
        previous.and_then(|s| s.observed_generation),
        now,
    );
    status.conditions.retain(|c| c.type_ != PAUSED);
    status.conditions.push(paused);
    status
}

/// Holds a paused resource: the condition, an event when the pause begins, the gauge. Waits
/// for the resource to change.
pub(super) async fn hold(ctx: &Context, link: &CheckoutLink) -> Result<Action, Error> {
    let uid = link.uid().unwrap_or_default();
    let status = paused_status(link.status.as_ref(), &now());
    let began = condition(link.status.as_ref(), PAUSED).is_none_or(|c| c.status != "True");
    ctx.patch_status(link, &status).await?;
    // Whatever was held for the last inputs no longer holds once the pause ends.
    ctx.remember(&uid, |m| {
        m.paused = true;
        m.hold = None;
    });
    ctx.metrics.set_paused(ctx.paused_count());
    if began {
        let note = format!(
            "paused by the annotation {PAUSE_ANNOTATION}: no Polar call until it is removed"
        );
        ctx.publish(link, EventType::Normal, "Paused", "Pause", note)
            .await;
    }
    ctx.metrics.reconciled("paused", std::time::Duration::ZERO);
    Ok(Action::await_change())
}

/// A resource no longer paused: the gauge, and an event when the pause just ended.
pub(super) async fn resumed(ctx: &Context, link: &CheckoutLink) {
    let uid = link.uid().unwrap_or_default();
    let was = ctx.remember(&uid, |m| std::mem::take(&mut m.paused));
    let reported = condition(link.status.as_ref(), PAUSED).is_some_and(|c| c.status == "True");
    if was || reported {
        ctx.metrics.set_paused(ctx.paused_count());
        let note = format!("the annotation {PAUSE_ANNOTATION} is gone: reconciling again");
        ctx.publish(link, EventType::Normal, "Resumed", "Pause", note)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn time(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn only_true_pauses() {
        let mut link = CheckoutLink::new(
            "l",
            serde_json::from_value(
                serde_json::json!({"products": ["a1000000-0000-4000-8000-000000000001"]}),
            )
            .unwrap(),
        );
        assert!(!is_paused(&link));
        for (value, paused) in [
            ("true", true),
            (" True ", true),
            ("false", false),
            ("", false),
        ] {
            link.metadata.annotations =
                Some([(PAUSE_ANNOTATION.to_owned(), value.to_owned())].into());
            assert_eq!(is_paused(&link), paused, "{value:?}");
        }
    }

    #[test]
    fn the_paused_condition_keeps_its_time_and_everything_else_stays() {
        let previous = CheckoutLinkStatus {
            id: Some("id".into()),
            ..Default::default()
        };
        let first = paused_status(Some(&previous), &time(1));
        assert_eq!(first.id.as_deref(), Some("id"));
        let c = condition(Some(&first), PAUSED).unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "Paused"));
        assert!(c.message.contains(PAUSE_ANNOTATION));
        let again = paused_status(Some(&first), &time(9));
        assert_eq!(again, first, "no new write while the pause lasts");
    }
}
