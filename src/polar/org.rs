//! [`Org`]: one organisation on one server, its [`Mirror`] and its sweeps: one list of every
//! page each interval, earlier when a caller asks for one (after an uncertain create), through
//! any account of the organisation. Each sweep's result goes out as a [`SweepReport`]. Until
//! an account knows its organisation (a token without `organizations:read` that sees no link
//! yet), it sweeps on its own, unfiltered. No Kubernetes here.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::account::Account;
use super::catalog::Catalog;
use super::mirror::{Changes, Mirror};
use super::orders::{OrdersState, OrdersView};
use super::pool::{Inner, lock};
use super::{PolarError, Server};

/// Sweeps of one organisation start at least this far apart, however often they are asked for.
pub const MIN_SWEEP_GAP: Duration = Duration::from_secs(1);

/// Which organisation's links a mirror holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OrgKey {
    /// An organisation by id.
    Id(String),
    /// Whatever one token sees, while its organisation is unknown (by token fingerprint).
    Token(String),
}

/// What one sweep found, for the controller to wake the resources concerned.
#[derive(Clone, Debug)]
pub struct SweepReport {
    /// The server swept.
    pub server: Server,
    /// The organisation swept.
    pub org: OrgKey,
    /// This was the organisation's first complete sweep (its mirror just became usable).
    pub warmed: bool,
    /// What changed since the previous sweep (empty on failure).
    pub changes: Changes,
    /// The callers that asked for this sweep (see [`Org::request_sweep`]).
    pub waiters: Vec<String>,
    /// List calls made.
    pub calls: u32,
    /// Links listed.
    pub links: usize,
    /// Why the sweep did not complete, if it did not.
    pub error: Option<PolarError>,
    /// The organisation's products or discounts (swept while references use them) changed.
    pub catalog_changed: bool,
    /// The UIDs whose orders changed (or whose orders sweep failed or recovered).
    pub results_changed: Vec<String>,
}

/// The products and discounts of an organisation, swept while links name them by reference.
#[derive(Debug, Default)]
pub(super) struct CatalogState {
    /// Whether products, and discounts, are wanted.
    wanted: (bool, bool),
    /// The last sweep: what it read, or why it failed.
    value: Option<Result<Catalog, PolarError>>,
    /// Bumped whenever `value` changes.
    revision: u64,
}

#[derive(Debug, Default)]
pub(super) struct Schedule {
    /// The earliest start asked for by a caller, and who asked.
    requested: Option<Instant>,
    waiters: Vec<String>,
    last_start: Option<Instant>,
    /// Sweeps failed in a row.
    failures: u32,
}

/// One organisation on one server: its mirror and its sweeps.
pub struct Org {
    pub(super) server: Server,
    pub(super) key: OrgKey,
    /// The organisation's links.
    pub mirror: Mirror,
    pub(super) accounts: Mutex<Vec<Weak<Account>>>,
    pub(super) wake: Notify,
    pub(super) schedule: Mutex<Schedule>,
    pub(super) catalog: Mutex<CatalogState>,
    pub(super) orders: Mutex<OrdersState>,
}

impl std::fmt::Debug for Org {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Org")
            .field("server", &self.server)
            .field("key", &self.key)
            .field("links", &self.mirror.len())
            .finish_non_exhaustive()
    }
}

impl Org {
    /// The organisation's id (`None` for an account's own unfiltered view).
    pub fn id(&self) -> Option<&str> {
        match &self.key {
            OrgKey::Id(id) => Some(id),
            OrgKey::Token(_) => None,
        }
    }

    /// Its key.
    pub fn key(&self) -> &OrgKey {
        &self.key
    }

    /// Asks for the organisation's products and/or discounts to be swept too, from now on;
    /// `waiter` is named in the report of the sweep that first reads them.
    pub fn want_catalog(&self, products: bool, discounts: bool, waiter: &str) {
        let mut catalog = lock(&self.catalog);
        let before = catalog.wanted;
        catalog.wanted = (before.0 || products, before.1 || discounts);
        let read = catalog.value.is_some() && catalog.wanted == before;
        drop(catalog);
        if !read {
            self.request_sweep(Instant::now(), waiter);
        }
    }

    /// The products and discounts as last swept (`None`: not swept yet since they were
    /// wanted), and its revision.
    pub fn catalog(&self) -> (Option<Result<Catalog, PolarError>>, u64) {
        let catalog = lock(&self.catalog);
        (catalog.value.clone(), catalog.revision)
    }

    /// `uid` wants campaign results from now on, its status counting through
    /// `counted_through`; a sweep comes soon if the orders it needs are not read yet.
    pub fn want_results(&self, uid: &str, counted_through: Option<k8s_openapi::jiff::Timestamp>) {
        if lock(&self.orders).want(uid, counted_through) {
            self.request_sweep(Instant::now(), uid);
        }
    }

    /// `uid` no longer wants campaign results.
    pub fn forget_results(&self, uid: &str) {
        lock(&self.orders).forget(uid);
    }

    /// `uid`'s orders (`None`: not read yet).
    pub fn results(&self, uid: &str) -> Option<Result<OrdersView, PolarError>> {
        lock(&self.orders).view(uid)
    }

    /// The revision of `uid`'s orders, and whether the orders sweep is failing.
    pub fn results_revision(&self, uid: &str) -> (u64, bool) {
        lock(&self.orders).revision(uid)
    }

    pub(super) fn attach(&self, account: &Arc<Account>) {
        let mut accounts = lock(&self.accounts);
        accounts.retain(|a| a.strong_count() > 0);
        if !accounts
            .iter()
            .any(|a| std::ptr::eq(a.as_ptr(), Arc::as_ptr(account)))
        {
            accounts.push(Arc::downgrade(account));
        }
    }

    /// Asks for a sweep that starts no earlier than `not_before` (so it lists whatever was
    /// committed before then); `waiter` is named in that sweep's report.
    pub fn request_sweep(&self, not_before: Instant, waiter: &str) {
        let mut schedule = lock(&self.schedule);
        if schedule.last_start.is_some_and(|s| s >= not_before)
            && self.mirror.swept_since(not_before)
        {
            return;
        }
        schedule.requested = Some(schedule.requested.map_or(not_before, |r| r.max(not_before)));
        if !schedule.waiters.iter().any(|w| w == waiter) {
            schedule.waiters.push(waiter.to_owned());
        }
        drop(schedule);
        self.wake.notify_one();
    }

    /// A live account of this organisation, for a sweep (an account whose organisation has
    /// become known leaves its unfiltered view).
    fn sweeping_account(&self) -> Option<Arc<Account>> {
        let mut accounts = lock(&self.accounts);
        accounts.retain(|a| a.strong_count() > 0);
        accounts.iter().rev().find_map(|a| {
            let account = a.upgrade()?;
            let belongs = match &self.key {
                OrgKey::Id(_) => true,
                OrgKey::Token(_) => lock(&account.state).orgs.is_none(),
            };
            belongs.then_some(account)
        })
    }

    /// Waits until the next sweep is due: the periodic one after `interval`, or one asked for.
    async fn until_due(&self, interval: Duration) {
        loop {
            let notified = self.wake.notified();
            let due = {
                let schedule = lock(&self.schedule);
                let last = schedule.last_start;
                let periodic = last.map_or_else(Instant::now, |l| l + interval);
                let asked = schedule
                    .requested
                    .map(|r| r.max(last.map_or_else(Instant::now, |l| l + MIN_SWEEP_GAP)));
                asked.map_or(periodic, |a| a.min(periodic))
            };
            if Instant::now() >= due {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(due) => return,
                () = notified => {}
            }
        }
    }
}

/// Reads the wanted parts of the catalog, if any are; whether it changed, and the calls made.
async fn sweep_catalog(org: &Org, account: &Account) -> (bool, u32) {
    let wanted = lock(&org.catalog).wanted;
    if !wanted.0 && !wanted.1 {
        return (false, 0);
    }
    let (read, calls) = account.list_catalog(org.id(), wanted).await;
    let mut catalog = lock(&org.catalog);
    let changed = catalog.value.as_ref() != Some(&read);
    if changed {
        catalog.value = Some(read);
        catalog.revision += 1;
    }
    (changed, calls)
}

/// Reads the orders campaign results need, if any resource wants them; the UIDs whose orders
/// changed, and the calls made.
async fn sweep_orders(org: &Org, account: &Account, rescan_every: Duration) -> (Vec<String>, u32) {
    let now = k8s_openapi::jiff::Timestamp::now();
    let Some(read) = lock(&org.orders).next_read(now, rescan_every) else {
        return (Vec::new(), 0);
    };
    let (result, calls) = account.list_orders(org.id(), read.since).await;
    let mut state = lock(&org.orders);
    let changed = match result {
        Ok(orders) => state.merge(&read, orders, now),
        Err(error) => state.failed(error),
    };
    (changed, calls)
}

/// Sweeps one organisation until no account of it is left.
pub(super) async fn sweep_loop(org: Weak<Org>, pool: Weak<Inner>) {
    loop {
        let (Some(org), Some(pool)) = (org.upgrade(), pool.upgrade()) else {
            return;
        };
        let interval = pool.settings.sweep_interval;
        org.until_due(interval).await;
        let Some(account) = org.sweeping_account() else {
            pool.drop_org(&org);
            return;
        };
        let started_at = Instant::now();
        let waiters = {
            let mut schedule = lock(&org.schedule);
            schedule.last_start = Some(started_at);
            if schedule.requested.is_some_and(|r| r <= started_at) {
                schedule.requested = None;
            }
            std::mem::take(&mut schedule.waiters)
        };
        let warm_before = org.mirror.is_warm();
        let start = org.mirror.start_sweep();
        let report = match account.list_all(org.id()).await {
            Ok((items, calls)) => {
                let links = items.len();
                if let Some(first) = items.first()
                    && org.id().is_none()
                {
                    // The unfiltered view revealed the token's organisation.
                    account.learn(&first.organization_id.clone());
                }
                let changes = org.mirror.finish_sweep(start, items);
                lock(&org.schedule).failures = 0;
                let (catalog_changed, catalog_calls) = sweep_catalog(&org, &account).await;
                let (results_changed, orders_calls) =
                    sweep_orders(&org, &account, pool.settings.results_rescan).await;
                SweepReport {
                    catalog_changed,
                    results_changed,
                    server: org.server.clone(),
                    org: org.key.clone(),
                    warmed: !warm_before,
                    changes,
                    waiters,
                    calls: calls + catalog_calls + orders_calls,
                    links,
                    error: None,
                }
            }
            Err((error, calls)) => {
                // Tried again with a backoff (at most the interval) when someone waits for it:
                // a caller, or the warm-up every link of the organisation waits for.
                let mut schedule = lock(&org.schedule);
                schedule.failures = schedule.failures.saturating_add(1);
                let retry = MIN_SWEEP_GAP
                    .saturating_mul(1 << schedule.failures.min(10))
                    .min(interval);
                if !waiters.is_empty() || !warm_before {
                    schedule.requested = Some(started_at + retry);
                }
                schedule.waiters.extend(waiters);
                drop(schedule);
                SweepReport {
                    server: org.server.clone(),
                    org: org.key.clone(),
                    warmed: false,
                    changes: Changes::default(),
                    waiters: Vec::new(),
                    calls,
                    links: org.mirror.len(),
                    error: Some(error),
                    catalog_changed: false,
                    results_changed: Vec::new(),
                }
            }
        };
        drop(account);
        if pool.reports.send(report).is_err() {
            return;
        }
    }
}
