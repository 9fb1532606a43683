//! Campaign results: a resource's orders (read by its organisation's orders sweep, see
//! [`crate::polar::orders`]) folded into `status.results`. Pure.
//!
//! The status is the ledger, so a restart neither loses nor double-counts: orders created up
//! to `countedThrough` less one minute are counted; those of the last minute before it are
//! counted by id (`recentOrderIds`); a refund adds the difference to what `refunds` recorded
//! for that order. `countedThrough` moves with the link's own orders (and at least once a
//! fortnight), so other links' orders cost this resource no status write.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::crd::{CampaignResults, RefundSeen, Revenue, SourceCount};
use crate::polar::orders::{OVERLAP, Order, OrdersView, REFUND_WINDOW};

/// At most this many `utm_source` entries; the others are counted as [`OTHER_SOURCE`].
pub const MAX_SOURCES: usize = 10;
/// The entry counting the sources beyond [`MAX_SOURCES`].
pub const OTHER_SOURCE: &str = "(other)";
/// `countedThrough` is moved forward at least this often even without new orders of the link,
/// so that the orders kept in memory (and read again after a restart) stay bounded.
const ADVANCE_EVERY: Duration = Duration::from_secs(14 * 24 * 3600);

/// The `Results` condition's type.
pub const RESULTS: &str = "Results";

/// Where a resource's campaign results stand.
#[derive(Clone, Debug, PartialEq)]
pub enum ResultsReport {
    /// Counted as of the last orders sweep.
    Counted(CampaignResults),
    /// The orders the status needs are not read yet.
    Pending,
    /// The orders cannot be read (the token lacks `orders:read`, Polar fails): the reason and
    /// the message; what was counted before stays.
    Failing(&'static str, String),
    /// Results are off (for the operator, or for this resource): none in the status.
    Off,
}

impl ResultsReport {
    /// The `Results` condition `(status, reason, message)` this report leads to (`None`: no
    /// condition), and the results to record (`None`: keep what the status holds; `Some(None)`:
    /// none).
    #[allow(clippy::type_complexity)]
    pub fn condition(
        &self,
    ) -> (
        Option<(&'static str, &'static str, String)>,
        Option<Option<CampaignResults>>,
    ) {
        match self {
            ResultsReport::Counted(r) => (
                Some(("True", "Counted", r.summary.clone())),
                Some(Some(r.clone())),
            ),
            ResultsReport::Pending => (
                Some((
                    "Unknown",
                    "Pending",
                    "the organisation's orders are being read".to_owned(),
                )),
                None,
            ),
            ResultsReport::Failing(reason, message) => {
                (Some(("False", *reason, message.clone())), None)
            }
            ResultsReport::Off => (None, Some(None)),
        }
    }
}

fn minus(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_sub(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MIN)
}

fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// `previous` with the orders of `view` it has not counted yet, and the refunds it has not.
pub fn fold(
    previous: Option<&CampaignResults>,
    view: &OrdersView,
    now: Timestamp,
) -> CampaignResults {
    let mut r = previous.cloned().unwrap_or_default();
    let through = r.counted_through.as_ref().map(|t| t.0);
    let counted_before = through.map(|t| minus(t, OVERLAP));
    let refund_floor = minus(now, REFUND_WINDOW);
    let mut counted_new = false;
    for order in &view.orders {
        let counted = counted_before.is_some_and(|b| order.created_at <= b)
            || r.recent_order_ids.contains(&order.id);
        if !counted {
            count(&mut r, order);
            counted_new = true;
        } else if order.created_at >= refund_floor {
            let before = r
                .refunds
                .iter()
                .find(|x| x.id == order.id)
                .map_or(0, |x| x.amount);
            if order.refunded_amount != before {
                revenue(&mut r, &order.currency).refunded += order.refunded_amount - before;
                record_refund(&mut r, order);
            }
        }
    }
    let lagging = through.is_none_or(|t| t <= minus(now, ADVANCE_EVERY));
    let new_through = if counted_new || lagging {
        through.max(view.through).or(through)
    } else {
        through
    };
    // Kubernetes keeps whole seconds of a time: the window is computed from what is stored.
    if let Some(t) = new_through.map(whole_seconds) {
        r.counted_through = Some(Time(t));
        let window = minus(t, OVERLAP);
        let recent: Vec<String> = view
            .orders
            .iter()
            .filter(|o| o.created_at > window)
            .map(|o| o.id.clone())
            .collect();
        // Ids counted earlier whose orders this process has not read stay until they age out.
        if counted_new || lagging {
            r.recent_order_ids = recent;
        }
    }
    r.refunds.retain(|x| x.created_at.0 >= refund_floor);
    r.summary = summary(&r);
    r
}

fn revenue<'a>(r: &'a mut CampaignResults, currency: &str) -> &'a mut Revenue {
    let at = match r.revenue.iter().position(|x| x.currency == currency) {
        Some(at) => at,
        None => {
            r.revenue.push(Revenue {
                currency: currency.to_owned(),
                net: 0,
                refunded: 0,
            });
            r.revenue.sort_by(|a, b| a.currency.cmp(&b.currency));
            r.revenue
                .iter()
                .position(|x| x.currency == currency)
                .unwrap_or_default()
        }
    };
    &mut r.revenue[at]
}

fn record_refund(r: &mut CampaignResults, order: &Order) {
    r.refunds.retain(|x| x.id != order.id);
    if order.refunded_amount != 0 {
        r.refunds.push(RefundSeen {
            id: order.id.clone(),
            created_at: Time(order.created_at),
            amount: order.refunded_amount,
        });
    }
}

fn count(r: &mut CampaignResults, order: &Order) {
    r.orders += 1;
    let money = revenue(r, &order.currency);
    money.net += order.net_amount;
    money.refunded += order.refunded_amount;
    record_refund(r, order);
    if r.last_order_at
        .as_ref()
        .is_none_or(|t| t.0 < order.created_at)
    {
        r.last_order_at = Some(Time(order.created_at));
    }
    if let Some(source) = &order.utm_source {
        let known = r.utm_sources.iter().any(|s| &s.source == source);
        let named = r
            .utm_sources
            .iter()
            .filter(|s| s.source != OTHER_SOURCE)
            .count();
        let key = if known || named < MAX_SOURCES {
            source.as_str()
        } else {
            OTHER_SOURCE
        };
        match r.utm_sources.iter_mut().find(|s| s.source == key) {
            Some(s) => s.orders += 1,
            None => r.utm_sources.push(SourceCount {
                source: key.to_owned(),
                orders: 1,
            }),
        }
        r.utm_sources
            .sort_by(|a, b| b.orders.cmp(&a.orders).then(a.source.cmp(&b.source)));
    }
}

/// `3 orders, 45.00 USD net (15.00 refunded)`; currencies in code order. Amounts are shown
/// with two decimals (Polar's currencies are in cents).
pub fn summary(r: &CampaignResults) -> String {
    let plural = if r.orders == 1 { "" } else { "s" };
    let mut parts = vec![format!("{} order{plural}", r.orders)];
    let money = |cents: i64| format!("{}.{:02}", cents / 100, (cents % 100).abs());
    for x in &r.revenue {
        let code = x.currency.to_ascii_uppercase();
        let refunded = if x.refunded != 0 {
            format!(" ({} refunded)", money(x.refunded))
        } else {
            String::new()
        };
        parts.push(format!("{} {code} net{refunded}", money(x.net)));
    }
    parts.join(", ")
}

/// The newest time the status counts through, for the orders sweep to start from.
pub fn counted_through(r: Option<&CampaignResults>) -> Option<Timestamp> {
    r?.counted_through.as_ref().map(|t| t.0)
}

/// Orders per currency, for a test or a log line.
pub fn by_currency(r: &CampaignResults) -> BTreeMap<String, (i64, i64)> {
    r.revenue
        .iter()
        .map(|x| (x.currency.clone(), (x.net, x.refunded)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn order(id: &str, at: &str, net: i64, refunded: i64, source: Option<&str>) -> Order {
        Order {
            id: id.into(),
            created_at: t(at),
            owner: "u".into(),
            currency: "usd".into(),
            net_amount: net,
            refunded_amount: refunded,
            utm_source: source.map(str::to_owned),
        }
    }

    fn view(orders: Vec<Order>, through: &str) -> OrdersView {
        OrdersView {
            orders,
            through: Some(t(through)),
        }
    }

    const NOW: &str = "2026-12-01T12:00:00Z";

    #[test]
    fn orders_are_counted_once_across_reads_and_restarts() {
        let now = t(NOW);
        let a = order("a", "2026-12-01T10:00:00Z", 2000, 0, Some("newsletter"));
        let b = order("b", "2026-12-01T11:59:30Z", 1500, 0, None);
        let first = fold(
            None,
            &view(vec![a.clone(), b.clone()], "2026-12-01T11:59:30Z"),
            now,
        );
        assert_eq!(first.orders, 2);
        assert_eq!(by_currency(&first)["usd"], (3500, 0));
        assert_eq!(first.recent_order_ids, ["b"], "b is in the overlap window");
        // The next sweep reads b again, and a new order c.
        let c = order("c", "2026-12-01T11:59:50Z", 1000, 0, Some("newsletter"));
        let second = fold(
            Some(&first),
            &view(
                vec![a.clone(), b.clone(), c.clone()],
                "2026-12-01T11:59:50Z",
            ),
            now,
        );
        assert_eq!(second.orders, 3);
        assert_eq!(by_currency(&second)["usd"], (4500, 0));
        // A restarted process reads from countedThrough less the overlap: only b and c.
        let restarted = fold(
            Some(&second),
            &view(vec![b, c], "2026-12-01T11:59:50Z"),
            now,
        );
        assert_eq!(restarted, second, "nothing counted twice, nothing written");
        assert_eq!(
            second.utm_sources,
            [SourceCount {
                source: "newsletter".into(),
                orders: 2
            }]
        );
        assert_eq!(second.summary, "3 orders, 45.00 USD net");
    }

    #[test]
    fn sub_second_times_survive_the_round_trip_through_kubernetes() {
        let now = t(NOW);
        let a = order("a", "2026-12-01T11:00:00.250Z", 100, 0, None);
        let b = order("b", "2026-12-01T11:58:59.250Z", 100, 0, None);
        let c = order("c", "2026-12-01T11:59:59.500Z", 100, 0, None);
        let first = fold(
            None,
            &view(
                vec![a.clone(), b.clone(), c.clone()],
                "2026-12-01T11:59:59.500Z",
            ),
            now,
        );
        // What Kubernetes gives back: whole seconds.
        let stored: CampaignResults =
            serde_json::from_value(serde_json::to_value(&first).unwrap()).unwrap();
        let again = fold(
            Some(&stored),
            &view(vec![a, b, c], "2026-12-01T11:59:59.500Z"),
            now,
        );
        assert_eq!(again.orders, 3, "{:?}", again.recent_order_ids);
    }

    #[test]
    fn a_refund_adds_only_what_was_not_counted() {
        let now = t(NOW);
        let a = order("a", "2026-11-30T10:00:00Z", 2000, 0, None);
        let first = fold(None, &view(vec![a.clone()], "2026-11-30T10:00:00Z"), now);
        let refunded = order("a", "2026-11-30T10:00:00Z", 2000, 500, None);
        let second = fold(
            Some(&first),
            &view(vec![refunded.clone()], "2026-11-30T10:00:00Z"),
            now,
        );
        assert_eq!(by_currency(&second)["usd"], (2000, 500));
        let again = fold(
            Some(&second),
            &view(vec![refunded], "2026-11-30T10:00:00Z"),
            now,
        );
        assert_eq!(
            by_currency(&again)["usd"],
            (2000, 500),
            "read again: no change"
        );
        let more = order("a", "2026-11-30T10:00:00Z", 2000, 2000, None);
        let third = fold(Some(&again), &view(vec![more], "2026-11-30T10:00:00Z"), now);
        assert_eq!(by_currency(&third)["usd"], (2000, 2000));
        assert_eq!(third.orders, 1);
        assert_eq!(third.summary, "1 order, 20.00 USD net (20.00 refunded)");
    }

    #[test]
    fn other_links_orders_do_not_move_the_status() {
        let now = t(NOW);
        let a = order("a", "2026-12-01T10:00:00Z", 2000, 0, None);
        let first = fold(None, &view(vec![a.clone()], "2026-12-01T10:00:00Z"), now);
        let later = fold(Some(&first), &view(vec![a], "2026-12-01T11:30:00Z"), now);
        assert_eq!(
            later, first,
            "a newer order of another link is no reason to write"
        );
        let in_a_month = t("2026-12-20T12:00:00Z");
        let advanced = fold(
            Some(&first),
            &view(vec![], "2026-12-20T11:00:00Z"),
            in_a_month,
        );
        assert_eq!(
            advanced.counted_through.map(|t| t.0),
            Some(t("2026-12-20T11:00:00Z")),
            "moved forward once it lags by a fortnight"
        );
    }

    #[test]
    fn sources_beyond_ten_are_counted_together() {
        let now = t(NOW);
        let orders: Vec<Order> = (0..12)
            .map(|i| {
                order(
                    &format!("o{i}"),
                    "2026-12-01T10:00:00Z",
                    100,
                    0,
                    Some(&format!("s{i:02}")),
                )
            })
            .collect();
        let r = fold(None, &view(orders, "2026-12-01T10:00:00Z"), now);
        assert_eq!(r.utm_sources.len(), MAX_SOURCES + 1);
        let other = r
            .utm_sources
            .iter()
            .find(|s| s.source == OTHER_SOURCE)
            .unwrap();
        assert_eq!(other.orders, 2);
        assert_eq!(r.utm_sources.iter().map(|s| s.orders).sum::<i64>(), 12);
    }

    #[test]
    fn several_currencies_are_kept_apart() {
        let now = t(NOW);
        let mut eur = order("e", "2026-12-01T10:00:00Z", 900, 0, None);
        eur.currency = "eur".into();
        let r = fold(
            None,
            &view(
                vec![order("u", "2026-12-01T10:00:01Z", 1000, 0, None), eur],
                "2026-12-01T10:00:01Z",
            ),
            now,
        );
        assert_eq!(r.summary, "2 orders, 9.00 EUR net, 10.00 USD net");
    }
}
