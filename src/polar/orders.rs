//! An organisation's orders, as campaign results need them: each order's owner tag (the
//! `k8s_checkout_link_uid` a checkout link's metadata passes to its checkouts and orders), its
//! amounts and its `utm_source`. One sweep of `GET /v1/orders/` per interval per organisation,
//! from the newest order already read (less [`OVERLAP`], deduplicated by id), made only while
//! some resource wants results; every [`RESCAN_EVERY`] the sweep reads the last
//! [`REFUND_WINDOW`] again, for refunds (Polar has no `modified_after` filter on orders).
//!
//! The decisions are pure ([`OrdersState::next_read`], [`OrdersState::merge`]); the calls are
//! in [`super::org`]. No Kubernetes here.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::{OWNER_METADATA_KEY, PolarError};

/// Orders created this long before the newest one read are read again by the next sweep (and
/// deduplicated by id): an order whose transaction commits after a later one is still found.
pub const OVERLAP: Duration = Duration::from_secs(60);
/// Refunds of orders created this long ago or less are picked up by the re-scan.
pub const REFUND_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often the last [`REFUND_WINDOW`] of orders is read again (by default; see
/// `--results-rescan-interval`).
pub const RESCAN_EVERY: Duration = Duration::from_secs(3600);

/// An order of a link the operator manages, reduced to what results count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    /// Its id.
    pub id: String,
    /// `created_at`.
    pub created_at: Timestamp,
    /// The owner tag: the UID of the CheckoutLink whose link it came through.
    pub owner: String,
    /// `currency` (lower case, as Polar writes it).
    pub currency: String,
    /// `net_amount` in the currency's smallest unit (after discounts, before taxes).
    pub net_amount: i64,
    /// `refunded_amount`, likewise.
    pub refunded_amount: i64,
    /// `metadata.utm_source`, from the share URL (or the link's own metadata).
    pub utm_source: Option<String>,
}

impl Order {
    /// Reads an `Order` object; `None` for an order without an owner tag (not through a
    /// managed link) or without the fields counted.
    pub fn from_json(v: &Value) -> Option<Order> {
        let metadata = v.get("metadata")?;
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        Some(Order {
            id: v.get("id")?.as_str()?.to_owned(),
            created_at: v.get("created_at")?.as_str()?.parse().ok()?,
            owner: metadata.get(OWNER_METADATA_KEY).and_then(text)?,
            currency: v.get("currency")?.as_str()?.to_ascii_lowercase(),
            net_amount: v.get("net_amount")?.as_i64()?,
            refunded_amount: v
                .get("refunded_amount")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            utm_source: metadata.get("utm_source").and_then(text),
        })
    }
}

fn minus(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_sub(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MIN)
}

/// What the next orders sweep reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    /// `created_after` (`None`: every order).
    pub since: Option<Timestamp>,
    /// This read covers the last [`REFUND_WINDOW`] (a re-scan, or the first read).
    pub rescan: bool,
}

/// What the orders sweeps of one organisation know.
#[derive(Debug, Default)]
pub struct OrdersState {
    /// The resources that want results, with the newest order time their status has counted
    /// through (`None`: nothing counted yet).
    wanted: HashMap<String, Option<Timestamp>>,
    /// From when orders have been read since this process started (`Some(None)`: all).
    covered_from: Option<Option<Timestamp>>,
    /// The newest `created_at` read.
    newest: Option<Timestamp>,
    /// When the last read of the whole refund window was.
    last_rescan: Option<Timestamp>,
    /// The orders read, by owner.
    by_owner: HashMap<String, Vec<Order>>,
    /// Per owner, bumped whenever its orders change.
    revisions: HashMap<String, u64>,
    /// Why the last sweep failed (a missing `orders:read`, Polar down).
    error: Option<PolarError>,
}

/// The orders of one resource, as its reconcile folds them into its status.
#[derive(Clone, Debug, PartialEq)]
pub struct OrdersView {
    /// Its orders read since this process started, oldest first.
    pub orders: Vec<Order>,
    /// The newest order time of the organisation read so far (its status may count through it).
    pub through: Option<Timestamp>,
}

fn earlier(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        _ => None,
    }
}

impl OrdersState {
    /// Whether any resource wants results.
    pub fn is_wanted(&self) -> bool {
        !self.wanted.is_empty()
    }

    /// `uid` wants results, its status counting through `counted_through`; whether the orders
    /// it needs are not read yet (a sweep should come soon).
    pub fn want(&mut self, uid: &str, counted_through: Option<Timestamp>) -> bool {
        self.wanted.insert(uid.to_owned(), counted_through);
        !self.covers(counted_through)
    }

    /// `uid` no longer wants results (gone, or opted out).
    pub fn forget(&mut self, uid: &str) {
        self.wanted.remove(uid);
    }

    fn covers(&self, counted_through: Option<Timestamp>) -> bool {
        match (self.covered_from, counted_through) {
            (None, _) => false,
            (Some(None), _) => true,
            (Some(Some(_)), None) => false,
            (Some(Some(from)), Some(t)) => from <= minus(t, OVERLAP),
        }
    }

    /// The oldest point any resource needs orders from.
    fn needed(&self) -> Option<Timestamp> {
        let mut points = self.wanted.values().copied();
        let first = points.next().flatten();
        points.fold(first, earlier).map(|t| minus(t, OVERLAP))
    }

    /// What the next sweep reads at `now` (`None`: nobody wants results): orders after the
    /// newest one read (less the overlap); the whole refund window every `rescan_every`, and
    /// whatever a resource needs that is older than what was read.
    pub fn next_read(&self, now: Timestamp, rescan_every: Duration) -> Option<Read> {
        if !self.is_wanted() {
            return None;
        }
        let window = minus(now, REFUND_WINDOW);
        let rescan_due = self
            .last_rescan
            .is_none_or(|t| t <= minus(now, rescan_every));
        let needed = self.needed();
        let backfill = match (self.covered_from, needed) {
            (None, _) | (Some(Some(_)), None) => true,
            (Some(Some(from)), Some(n)) => n < from,
            (Some(None), _) => false,
        };
        if backfill || rescan_due {
            let since = match needed {
                Some(n) if backfill => Some(n.min(window)),
                None if backfill => None,
                _ => Some(window),
            };
            return Some(Read {
                since,
                rescan: true,
            });
        }
        let since = self.newest.map(|n| minus(n, OVERLAP)).or(Some(window));
        Some(Read {
            since,
            rescan: false,
        })
    }

    /// Takes in what a read found; the owners whose orders changed (new orders, new refunds).
    /// Orders older than both the refund window and what every resource needs are dropped.
    pub fn merge(&mut self, read: &Read, orders: Vec<Order>, now: Timestamp) -> Vec<String> {
        let mut changed: Vec<String> = Vec::new();
        for order in orders {
            self.newest = self.newest.max(Some(order.created_at));
            let list = self.by_owner.entry(order.owner.clone()).or_default();
            match list.iter_mut().find(|o| o.id == order.id) {
                Some(known) if *known == order => continue,
                Some(known) => *known = order.clone(),
                None => {
                    let at = list.partition_point(|o| o.created_at <= order.created_at);
                    list.insert(at, order.clone());
                }
            }
            if !changed.contains(&order.owner) {
                changed.push(order.owner);
            }
        }
        self.covered_from = Some(match self.covered_from {
            None => read.since,
            Some(from) => earlier(from, read.since),
        });
        if read.rescan {
            self.last_rescan = Some(now);
        }
        let floor = earlier(Some(minus(now, REFUND_WINDOW)), self.needed());
        if let Some(floor) = floor {
            for list in self.by_owner.values_mut() {
                list.retain(|o| o.created_at >= floor);
            }
            self.by_owner.retain(|_, list| !list.is_empty());
        }
        for owner in &changed {
            *self.revisions.entry(owner.clone()).or_default() += 1;
        }
        let recovered = self.error.take().is_some();
        if recovered {
            // Everyone who saw the failure sees the recovery.
            for uid in self.wanted.keys() {
                if !changed.contains(uid) {
                    changed.push(uid.clone());
                }
            }
        }
        changed
    }

    /// A read failed; the wanting resources to tell (when the failure is new).
    pub fn failed(&mut self, error: PolarError) -> Vec<String> {
        let new = self.error.as_ref() != Some(&error);
        self.error = Some(error);
        if new {
            self.wanted.keys().cloned().collect()
        } else {
            Vec::new()
        }
    }

    /// The orders of `uid` (`None`: the orders its status needs are not read yet).
    pub fn view(&self, uid: &str) -> Option<Result<OrdersView, PolarError>> {
        if let Some(error) = &self.error {
            return Some(Err(error.clone()));
        }
        let counted_through = self.wanted.get(uid).copied().flatten();
        if !self.covers(counted_through) {
            return None;
        }
        Some(Ok(OrdersView {
            orders: self.by_owner.get(uid).cloned().unwrap_or_default(),
            through: self.newest,
        }))
    }

    /// The revision of `uid`'s orders (an input of its reconcile), and whether a failure is
    /// recorded.
    pub fn revision(&self, uid: &str) -> (u64, bool) {
        (
            self.revisions.get(uid).copied().unwrap_or(0),
            self.error.is_some(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn order(id: &str, owner: &str, at: &str, refunded: i64) -> Order {
        Order {
            id: id.into(),
            created_at: t(at),
            owner: owner.into(),
            currency: "usd".into(),
            net_amount: 1000,
            refunded_amount: refunded,
            utm_source: None,
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn orders_are_read_with_their_owner_tag_only() {
        let o = Order::from_json(&json!({
            "id": "o1", "created_at": "2026-12-01T10:00:00Z", "currency": "USD",
            "net_amount": 2500, "refunded_amount": 0, "status": "paid",
            "metadata": {"k8s_checkout_link_uid": "u1", "utm_source": "newsletter"}
        }))
        .unwrap();
        assert_eq!(o.owner, "u1");
        assert_eq!(o.currency, "usd");
        assert_eq!(o.utm_source.as_deref(), Some("newsletter"));
        let untagged = json!({
            "id": "o2", "created_at": "2026-12-01T10:00:00Z", "currency": "usd",
            "net_amount": 1, "metadata": {"source": "dashboard"}
        });
        assert_eq!(Order::from_json(&untagged), None);
    }

    #[test]
    fn the_first_read_takes_what_the_oldest_status_needs_then_only_new_orders() {
        let now = t("2026-12-01T12:00:00Z");
        let mut state = OrdersState::default();
        assert_eq!(state.next_read(now, HOUR), None, "nobody wants results");
        assert!(state.want("a", None));
        assert!(state.want("b", Some(t("2026-11-30T00:00:00Z"))));
        let first = state.next_read(now, HOUR).unwrap();
        assert_eq!(first.since, None, "a has counted nothing: every order");
        assert!(state.view("a").is_none(), "not read yet");
        let changed = state.merge(
            &first,
            vec![
                order("1", "a", "2026-11-01T00:00:00Z", 0),
                order("2", "b", "2026-12-01T11:00:00Z", 0),
            ],
            now,
        );
        assert_eq!(changed, ["a", "b"]);
        let view = state.view("a").unwrap().unwrap();
        assert_eq!(view.orders.len(), 1);
        assert_eq!(view.through, Some(t("2026-12-01T11:00:00Z")));
        let next = state.next_read(now, HOUR).unwrap();
        assert_eq!(
            next,
            Read {
                since: Some(t("2026-12-01T10:59:00Z")),
                rescan: false
            },
            "from the newest order read, less the overlap"
        );
        assert!(
            state
                .merge(&next, vec![order("2", "b", "2026-12-01T11:00:00Z", 0)], now)
                .is_empty(),
            "an order read again is no change"
        );
    }

    #[test]
    fn the_refund_window_is_read_again_every_rescan_interval() {
        let now = t("2026-12-01T12:00:00Z");
        let mut state = OrdersState::default();
        state.want("a", Some(t("2026-12-01T11:00:00Z")));
        let first = state.next_read(now, HOUR).unwrap();
        assert_eq!(
            first.since,
            Some(t("2026-11-01T12:00:00Z")),
            "the refund window"
        );
        assert!(first.rescan);
        state.merge(
            &first,
            vec![order("1", "a", "2026-11-20T00:00:00Z", 0)],
            now,
        );
        let later = t("2026-12-01T12:30:00Z");
        assert!(!state.next_read(later, HOUR).unwrap().rescan);
        let due = t("2026-12-01T13:00:00Z");
        let rescan = state.next_read(due, HOUR).unwrap();
        assert!(rescan.rescan);
        let changed = state.merge(
            &rescan,
            vec![order("1", "a", "2026-11-20T00:00:00Z", 400)],
            due,
        );
        assert_eq!(changed, ["a"], "a refund is a change");
        assert_eq!(
            state.view("a").unwrap().unwrap().orders[0].refunded_amount,
            400
        );
    }

    #[test]
    fn a_resource_needing_older_orders_gets_them_read() {
        let now = t("2026-12-01T12:00:00Z");
        let mut state = OrdersState::default();
        state.want("a", Some(t("2026-12-01T11:00:00Z")));
        let first = state.next_read(now, HOUR).unwrap();
        state.merge(&first, vec![], now);
        assert!(state.view("a").is_some());
        assert!(
            state.want("b", Some(t("2026-09-01T00:00:00Z"))),
            "older than read"
        );
        assert!(state.view("b").is_none());
        let backfill = state.next_read(now, HOUR).unwrap();
        assert_eq!(backfill.since, Some(t("2026-08-31T23:59:00Z")));
        state.merge(&backfill, vec![], now);
        assert!(state.view("b").is_some());
    }

    #[test]
    fn a_missing_scope_is_reported_once_and_its_recovery_to_everyone() {
        let now = t("2026-12-01T12:00:00Z");
        let mut state = OrdersState::default();
        state.want("a", None);
        let forbidden = PolarError::Forbidden {
            message: "needs orders:read".into(),
        };
        assert_eq!(state.failed(forbidden.clone()), ["a"]);
        assert!(state.failed(forbidden).is_empty(), "no news");
        assert!(matches!(
            state.view("a"),
            Some(Err(PolarError::Forbidden { .. }))
        ));
        assert_eq!(state.revision("a"), (0, true));
        let read = state.next_read(now, HOUR).unwrap();
        assert_eq!(state.merge(&read, vec![], now), ["a"]);
        assert!(matches!(state.view("a"), Some(Ok(_))));
    }

    #[test]
    fn old_orders_are_dropped_once_no_status_needs_them() {
        let now = t("2026-12-01T12:00:00Z");
        let mut state = OrdersState::default();
        state.want("a", Some(t("2026-12-01T11:00:00Z")));
        let read = Read {
            since: None,
            rescan: true,
        };
        state.merge(
            &read,
            vec![
                order("old", "a", "2026-06-01T00:00:00Z", 0),
                order("new", "a", "2026-11-30T00:00:00Z", 0),
            ],
            now,
        );
        let ids: Vec<String> = state
            .view("a")
            .unwrap()
            .unwrap()
            .orders
            .into_iter()
            .map(|o| o.id)
            .collect();
        assert_eq!(ids, ["new"]);
    }
}
