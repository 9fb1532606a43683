//! Kubernetes events (`events.k8s.io/v1`) about CheckoutLinks, a repeat within six minutes
//! counted in the first event's `series`, as kube's `Recorder` and client-go do.
//!
//! Not kube's `Recorder`: it keeps every whole Event it sent for six minutes in a map that
//! never shrinks, and scans all of it on every publish. After 10,000 links were created (one
//! `Created` event each) that held 24 MiB for the life of the process (`make bench`, P6).
//! Here a repeat is found by a 64-bit key of what makes it the same event, and the map keeps
//! only the event's name, count and time; it is swept once a minute and shrunk when it empties.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::EventType;
use serde_json::json;

/// A repeat within this time of the last one is counted in its series.
pub const SERIES_TTL: SignedDuration = SignedDuration::from_mins(6);
const SWEEP_EVERY: SignedDuration = SignedDuration::from_mins(1);

/// What the next publication of an event is.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A new Event object.
    Create,
    /// The `count`th occurrence of the Event object `name`.
    Repeat {
        /// The Event object counting the repeats.
        name: String,
        /// The occurrences so far, this one included.
        count: i32,
    },
}

#[derive(Debug)]
struct Seen {
    name: String,
    count: i32,
    last: Timestamp,
}

/// The events published lately, by key. Pure.
#[derive(Debug, Default)]
pub struct Series {
    seen: HashMap<u64, Seen>,
    swept: Option<Timestamp>,
}

impl Series {
    /// Whether the event of `key` published at `now` is new or a repeat.
    pub fn next(&mut self, key: u64, now: Timestamp) -> Next {
        self.sweep(now);
        match self.seen.get(&key) {
            Some(s) if now.duration_since(s.last) < SERIES_TTL => Next::Repeat {
                name: s.name.clone(),
                count: s.count + 1,
            },
            _ => Next::Create,
        }
    }

    /// Records that the event of `key` went out as the `count`th occurrence of `name`.
    pub fn sent(&mut self, key: u64, name: String, count: i32, now: Timestamp) {
        self.seen.insert(
            key,
            Seen {
                name,
                count,
                last: now,
            },
        );
    }

    /// How many events are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn sweep(&mut self, now: Timestamp) {
        if self
            .swept
            .is_some_and(|t| now.duration_since(t) < SWEEP_EVERY)
        {
            return;
        }
        self.swept = Some(now);
        self.seen
            .retain(|_, s| now.duration_since(s.last) < SERIES_TTL);
        if self.seen.capacity() > 4 * self.seen.len().max(64) {
            self.seen.shrink_to_fit();
        }
    }
}

/// One event to publish.
pub struct Occurrence<'a> {
    /// The object it is about.
    pub regarding: &'a ObjectReference,
    /// Normal or Warning.
    pub type_: EventType,
    /// Why (CamelCase).
    pub reason: &'a str,
    /// What the operator did or tried.
    pub action: &'a str,
    /// Plain words.
    pub note: String,
}

impl Occurrence<'_> {
    /// What makes two events the same: the object, the type, the reason, the action and the
    /// note.
    pub fn key(&self) -> u64 {
        let mut h = DefaultHasher::new();
        (
            &self.regarding.namespace,
            &self.regarding.name,
            &self.regarding.uid,
            matches!(self.type_, EventType::Warning),
            self.reason,
            self.action,
            &self.note,
        )
            .hash(&mut h);
        h.finish()
    }
}

/// Publishes events as `controller`.
pub struct Publisher {
    client: kube::Client,
    controller: String,
    series: Mutex<Series>,
}

impl Publisher {
    /// A publisher reporting as `controller` (also the reporting instance).
    pub fn new(client: kube::Client, controller: &str) -> Self {
        Publisher {
            client,
            controller: controller.to_owned(),
            series: Mutex::default(),
        }
    }

    fn series(&self) -> std::sync::MutexGuard<'_, Series> {
        crate::polar::pool::lock(&self.series)
    }

    /// Creates the event, or counts it in the series of the same event published lately.
    pub async fn publish(&self, occurrence: Occurrence<'_>) -> Result<(), kube::Error> {
        let key = occurrence.key();
        let now = Timestamp::now();
        let next = self.series().next(key, now);
        let events: Api<Event> = Api::namespaced(
            self.client.clone(),
            occurrence
                .regarding
                .namespace
                .as_deref()
                .unwrap_or("default"),
        );
        let counted = match next {
            Next::Repeat { name, count } => {
                let series =
                    json!({"series": {"count": count, "lastObservedTime": MicroTime(now)}});
                match events
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&series))
                    .await
                {
                    Ok(_) => Some((name, count)),
                    // The event is gone (an apiserver's event TTL can be short): a new one.
                    Err(kube::Error::Api(e)) if e.code == 404 => None,
                    Err(e) => return Err(e),
                }
            }
            Next::Create => None,
        };
        let (name, count) = match counted {
            Some(counted) => counted,
            None => {
                let event = self.event(occurrence, now);
                events.create(&PostParams::default(), &event).await?;
                (event.metadata.name.unwrap_or_default(), 1)
            }
        };
        self.series().sent(key, name, count, now);
        Ok(())
    }

    fn event(&self, o: Occurrence<'_>, now: Timestamp) -> Event {
        let object = o.regarding.name.as_deref().unwrap_or(&self.controller);
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{object}.{:x}", now.as_nanosecond())),
                namespace: o.regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            action: Some(o.action.to_owned()),
            reason: Some(o.reason.to_owned()),
            note: Some(o.note),
            type_: Some(
                match o.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_owned(),
            ),
            event_time: Some(MicroTime(now)),
            regarding: Some(o.regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.controller.clone()),
            ..Event::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn key(regarding: &ObjectReference, type_: EventType, reason: &str, note: &str) -> u64 {
        Occurrence {
            regarding,
            type_,
            reason,
            action: "Update",
            note: note.into(),
        }
        .key()
    }

    fn link(name: &str) -> ObjectReference {
        ObjectReference {
            namespace: Some("shop".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectReference::default()
        }
    }

    #[test]
    fn a_repeat_within_six_minutes_is_counted_on_the_first_event() {
        let mut s = Series::default();
        let k = key(&link("a"), EventType::Normal, "Updated", "label");
        assert_eq!(s.next(k, at(0)), Next::Create);
        s.sent(k, "a.1".into(), 1, at(0));
        let repeat = Next::Repeat {
            name: "a.1".into(),
            count: 2,
        };
        assert_eq!(s.next(k, at(300)), repeat);
        s.sent(k, "a.1".into(), 2, at(300));
        assert_eq!(
            s.next(k, at(600)),
            Next::Repeat {
                name: "a.1".into(),
                count: 3
            },
            "six minutes from the last repeat, not the first"
        );
        assert_eq!(s.next(k, at(300 + 360)), Next::Create);
    }

    #[test]
    fn another_object_reason_or_note_is_another_event() {
        let k = |name: &str, reason: &str, note: &str| {
            key(&link(name), EventType::Warning, reason, note)
        };
        let base = k("a", "RateLimited", "x");
        assert_ne!(base, k("b", "RateLimited", "x"));
        assert_ne!(base, k("a", "PolarUnavailable", "x"));
        assert_ne!(base, k("a", "RateLimited", "y"));
        assert_ne!(base, key(&link("a"), EventType::Normal, "RateLimited", "x"));
        assert_eq!(base, k("a", "RateLimited", "x"));
    }

    #[test]
    fn old_events_are_forgotten_and_the_map_shrinks() {
        let mut s = Series::default();
        for i in 0..10_000u64 {
            s.sent(i, format!("e.{i}"), 1, at(0));
        }
        let grown = s.seen.capacity();
        assert_eq!(
            s.next(1, at(60)),
            Next::Repeat {
                name: "e.1".into(),
                count: 2
            }
        );
        assert_eq!(s.len(), 10_000);
        assert_eq!(s.next(1, at(361)), Next::Create);
        assert!(s.is_empty(), "{} left", s.len());
        assert!(
            s.seen.capacity() < grown / 4,
            "capacity {} (was {grown})",
            s.seen.capacity()
        );
    }
}
