//! The Polar side of the operator's state: one [`Account`] per (server, token), one [`Org`] per
//! (server, organisation), and the [`Pool`] that hands them out. No Kubernetes here.
//!
//! - An [`Account`] makes every call for one token: it waits for its governor (one per
//!   organisation for organisation tokens, see [`super::governor`]), blocks it for a 429's
//!   `Retry-After`, stops calling for a while after Polar refused the token or the API version
//!   (so a revoked token costs one call per retry period, not one per link), learns its
//!   organisation from Polar's answers, and writes every link Polar returns into the mirror.
//! - An [`Org`] holds the organisation's [`Mirror`] and runs its sweeps: one list of every page
//!   each interval, earlier when a caller asks for one (after an uncertain create), through
//!   any account of the organisation. Each sweep's result goes out as a [`SweepReport`].
//! - Until an account knows its organisation (a token without `organizations:read` that sees
//!   no link yet), it sweeps on its own, unfiltered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::governor::{Governors, OrgGovernor, Pace};
use super::mirror::{Changes, Mirror};
use super::{
    CheckoutLinks, Credentials, Link, LinkFields, LinkPatch, ListQuery, PolarError, Server,
};

/// Builds the HTTP client of a token: the reqwest client normally, a fake in unit tests.
pub type ClientFactory =
    Arc<dyn Fn(&Credentials) -> Result<Arc<dyn CheckoutLinks>, PolarError> + Send + Sync>;

/// How long an account may go unused by reconciles before it is dropped (a rotated token, a
/// Secret no link uses any more). Dropped accounts are made again on demand.
pub const ACCOUNT_IDLE_TTL: Duration = Duration::from_secs(3600);
/// After Polar refused a token (401) or the API version, calls with that account fail at once
/// for this long instead of reaching Polar.
pub const REFUSAL_HOLD: Duration = Duration::from_secs(300);
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
}

/// How the pool runs.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// Share of Polar's rate limit to use.
    pub rate_share: f64,
    /// Per-minute limit overriding the server's default.
    pub rate_limit: Option<u32>,
    /// Time between two periodic sweeps of an organisation.
    pub sweep_interval: Duration,
}

/// Accounts and organisations, shared by every reconcile.
pub struct Pool {
    inner: Arc<Inner>,
}

type KeptAccount = (Arc<Account>, Instant);

struct Inner {
    factory: ClientFactory,
    governors: Governors,
    settings: PoolSettings,
    /// By (server, token fingerprint), with when a reconcile last asked for it.
    accounts: Mutex<HashMap<(Server, String), KeptAccount>>,
    orgs: Mutex<HashMap<(Server, OrgKey), Arc<Org>>>,
    reports: mpsc::UnboundedSender<SweepReport>,
}

impl Pool {
    /// A pool whose clients `factory` makes; sweep reports go to `reports`.
    pub fn new(
        factory: ClientFactory,
        settings: PoolSettings,
        reports: mpsc::UnboundedSender<SweepReport>,
    ) -> Self {
        Pool {
            inner: Arc::new(Inner {
                factory,
                governors: Governors::new(settings.rate_share, settings.rate_limit),
                settings,
                accounts: Mutex::new(HashMap::new()),
                orgs: Mutex::new(HashMap::new()),
                reports,
            }),
        }
    }

    /// The account of `credentials`, made on first use. Making one also drops the accounts
    /// unused for [`ACCOUNT_IDLE_TTL`], so rotated tokens do not pile up.
    pub fn account(&self, credentials: &Credentials) -> Result<Arc<Account>, PolarError> {
        let key = (credentials.server.clone(), credentials.token.fingerprint());
        let now = Instant::now();
        let mut accounts = lock(&self.inner.accounts);
        if let Some((account, used)) = accounts.get_mut(&key) {
            *used = now;
            return Ok(account.clone());
        }
        accounts.retain(|_, (_, used)| now.duration_since(*used) < ACCOUNT_IDLE_TTL);
        let client = (self.inner.factory)(credentials)?;
        let personal = !credentials.token.expose().starts_with("polar_oat_");
        let governor = self.inner.governors.get(&key.0, Pace::Token(key.1.clone()));
        let account = Arc::new(Account {
            server: key.0.clone(),
            fingerprint: key.1.clone(),
            personal,
            client,
            pool: Arc::downgrade(&self.inner),
            state: Mutex::new(AccountState {
                orgs: None,
                governor,
                refused: None,
            }),
            discovery: tokio::sync::Mutex::new(false),
        });
        accounts.insert(key, (account.clone(), now));
        Ok(account)
    }

    /// How many accounts are kept.
    pub fn len(&self) -> usize {
        lock(&self.inner.accounts).len()
    }

    /// Whether no account is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The mirrors' revisions of the link `id` and of the links tagged with `uid`, on `server`
    /// (see [`Mirror::revisions`]).
    pub fn revisions(
        &self,
        server: &Server,
        id: Option<&str>,
        uid: &str,
    ) -> (Option<u64>, Option<u64>) {
        let orgs = lock(&self.inner.orgs);
        let mut out = (None, None);
        for ((s, _), org) in orgs.iter() {
            if s != server {
                continue;
            }
            let (a, b) = org.mirror.revisions(id, uid);
            out = (out.0.max(a), out.1.max(b));
        }
        out
    }

    /// The organisations with a mirror, and how many links each holds.
    pub fn mirrors(&self) -> Vec<(OrgKey, usize)> {
        lock(&self.inner.orgs)
            .iter()
            .map(|((_, key), org)| (key.clone(), org.mirror.len()))
            .collect()
    }
}

impl Inner {
    /// The organisation, made (and its sweeps started) on first use.
    fn org(self: &Arc<Self>, server: &Server, key: OrgKey) -> Arc<Org> {
        let mut orgs = lock(&self.orgs);
        if let Some(org) = orgs.get(&(server.clone(), key.clone())) {
            return org.clone();
        }
        let org = Arc::new(Org {
            server: server.clone(),
            key: key.clone(),
            mirror: Mirror::new(),
            accounts: Mutex::new(Vec::new()),
            wake: Notify::new(),
            schedule: Mutex::new(Schedule::default()),
        });
        orgs.insert((server.clone(), key), org.clone());
        tokio::spawn(sweep_loop(Arc::downgrade(&org), Arc::downgrade(self)));
        org
    }

    fn drop_org(&self, org: &Org) {
        let mut orgs = lock(&self.orgs);
        let key = (org.server.clone(), org.key.clone());
        if orgs
            .get(&key)
            .is_some_and(|o| std::ptr::eq(Arc::as_ptr(o), org))
        {
            orgs.remove(&key);
        }
    }
}

struct AccountState {
    /// The organisations the token acts on; `None` until known.
    orgs: Option<Vec<String>>,
    governor: Arc<OrgGovernor>,
    /// Polar refused the token or the version: the error, and until when to repeat it.
    refused: Option<(PolarError, Instant)>,
}

/// One token on one server.
pub struct Account {
    server: Server,
    fingerprint: String,
    /// A personal (or OAuth user) token: Polar counts its calls per user, not organisation.
    personal: bool,
    client: Arc<dyn CheckoutLinks>,
    pool: Weak<Inner>,
    state: Mutex<AccountState>,
    /// Held while the organisation is looked up; `true` once it was tried.
    discovery: tokio::sync::Mutex<bool>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("server", &self.server)
            .field("token", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// The server this account talks to.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The organisations the token is known to act on (empty while unknown).
    pub fn known_orgs(&self) -> Vec<String> {
        lock(&self.state).orgs.clone().unwrap_or_default()
    }

    /// The organisations whose mirrors serve this account: its own once known (asking Polar
    /// once, with `GET /v1/organizations/`, when it does not know them yet), else the
    /// account's own unfiltered view.
    pub async fn orgs(self: &Arc<Self>) -> Result<Vec<Arc<Org>>, PolarError> {
        if lock(&self.state).orgs.is_none() {
            let mut tried = self.discovery.lock().await;
            if !*tried && lock(&self.state).orgs.is_none() {
                match self.call(|c| async move { c.organizations().await }).await {
                    Ok(orgs) if !orgs.is_empty() => {
                        for org in orgs {
                            self.learn(&org);
                        }
                    }
                    // No `organizations:read` scope (or nothing visible): learn from links.
                    Ok(_) | Err(PolarError::Forbidden { .. }) => {}
                    Err(e) => return Err(e),
                }
                *tried = true;
            }
        }
        let Some(pool) = self.pool.upgrade() else {
            return Ok(Vec::new());
        };
        let keys = match lock(&self.state).orgs.clone() {
            Some(orgs) => orgs.into_iter().map(OrgKey::Id).collect(),
            None => vec![OrgKey::Token(self.fingerprint.clone())],
        };
        let orgs: Vec<Arc<Org>> = keys
            .into_iter()
            .map(|key| pool.org(&self.server, key))
            .collect();
        for org in &orgs {
            org.attach(self);
        }
        Ok(orgs)
    }

    /// Notes that the token acts on `org` (from an answer of Polar's).
    fn learn(self: &Arc<Self>, org: &str) {
        let org = org.to_ascii_lowercase();
        let mut state = lock(&self.state);
        let orgs = state.orgs.get_or_insert_with(Vec::new);
        if orgs.contains(&org) {
            return;
        }
        orgs.push(org.clone());
        let first = orgs.len() == 1;
        // An organisation token's calls count against its organisation: share its governor,
        // keeping a Retry-After that is still running.
        if first
            && !self.personal
            && let Some(pool) = self.pool.upgrade()
        {
            let shared = pool.governors.get(&self.server, Pace::Organization(org));
            if let Some(until) = state.governor.blocked_until() {
                shared.block_for(until.saturating_duration_since(std::time::Instant::now()));
            }
            state.governor = shared;
        }
    }

    /// The mirror of a link's organisation, if the account serves it.
    fn mirror_for(&self, link: &Link) -> Option<Arc<Org>> {
        let pool = self.pool.upgrade()?;
        let orgs = lock(&pool.orgs);
        orgs.get(&(
            self.server.clone(),
            OrgKey::Id(link.organization_id.to_ascii_lowercase()),
        ))
        .or_else(|| orgs.get(&(self.server.clone(), OrgKey::Token(self.fingerprint.clone()))))
        .cloned()
    }

    /// Every organisation this account's answers may land in.
    fn all_orgs(&self) -> Vec<Arc<Org>> {
        let Some(pool) = self.pool.upgrade() else {
            return Vec::new();
        };
        let mut keys: Vec<OrgKey> = self.known_orgs().into_iter().map(OrgKey::Id).collect();
        keys.push(OrgKey::Token(self.fingerprint.clone()));
        let orgs = lock(&pool.orgs);
        keys.into_iter()
            .filter_map(|k| orgs.get(&(self.server.clone(), k)).cloned())
            .collect()
    }

    /// Runs one call: after the governor allows it, unless Polar refused this account lately.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, PolarError>
    where
        F: FnOnce(Arc<dyn CheckoutLinks>) -> Fut,
        Fut: std::future::Future<Output = Result<T, PolarError>>,
    {
        let governor = {
            let state = lock(&self.state);
            if let Some((error, until)) = &state.refused
                && Instant::now() < *until
            {
                return Err(error.clone());
            }
            state.governor.clone()
        };
        governor.acquire().await;
        let result = f(self.client.clone()).await;
        match &result {
            Err(PolarError::RateLimited { retry_after }) => {
                // Taken again: a token may have joined its organisation's governor meanwhile.
                lock(&self.state).governor.block_for(*retry_after);
            }
            Err(e @ (PolarError::Unauthorized { .. } | PolarError::VersionRefused { .. })) => {
                lock(&self.state).refused = Some((e.clone(), Instant::now() + REFUSAL_HOLD));
            }
            Ok(_) => lock(&self.state).refused = None,
            Err(_) => {}
        }
        result
    }

    /// Learns the link's organisation and records the link in its mirror.
    fn seen(self: &Arc<Self>, link: &Link) {
        self.learn(&link.organization_id);
        if let Some(org) = self.mirror_for(link) {
            org.mirror.record(link.clone());
        }
    }

    /// `POST /v1/checkout-links/`.
    pub async fn create(self: &Arc<Self>, fields: &LinkFields) -> Result<Link, PolarError> {
        let link = self.call(|c| async move { c.create(fields).await }).await?;
        self.seen(&link);
        Ok(link)
    }

    /// `GET /v1/checkout-links/{id}`; a 404 also takes the link out of the mirrors.
    pub async fn get(self: &Arc<Self>, id: &str) -> Result<Link, PolarError> {
        match self.call(|c| async move { c.get(id).await }).await {
            Ok(link) => {
                self.seen(&link);
                Ok(link)
            }
            Err(PolarError::NotFound) => {
                self.forget(id);
                Err(PolarError::NotFound)
            }
            Err(e) => Err(e),
        }
    }

    /// `PATCH /v1/checkout-links/{id}`.
    pub async fn update(self: &Arc<Self>, id: &str, patch: &LinkPatch) -> Result<Link, PolarError> {
        match self
            .call(|c| async move { c.update(id, patch).await })
            .await
        {
            Ok(link) => {
                self.seen(&link);
                Ok(link)
            }
            Err(PolarError::NotFound) => {
                self.forget(id);
                Err(PolarError::NotFound)
            }
            Err(e) => Err(e),
        }
    }

    /// `DELETE /v1/checkout-links/{id}`; the link leaves the mirrors (also on 404).
    pub async fn delete(self: &Arc<Self>, id: &str) -> Result<(), PolarError> {
        let result = self.call(|c| async move { c.delete(id).await }).await;
        if matches!(result, Ok(()) | Err(PolarError::NotFound)) {
            self.forget(id);
        }
        result
    }

    fn forget(&self, id: &str) {
        for org in self.all_orgs() {
            org.mirror.forget(id);
        }
    }

    /// Every page of the organisation's links (`None`: whatever the token sees), with the
    /// number of calls made. A sweep whose `total_count` moved while it ran still returns what
    /// it read: links it may have missed are confirmed one by one by their owners.
    async fn list_all(&self, org: Option<&str>) -> Result<(Vec<Link>, u32), (PolarError, u32)> {
        let mut items: Vec<Link> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut page = 1;
        loop {
            let query = ListQuery {
                organization_id: org.map(str::to_owned),
                ..ListQuery::page(page)
            };
            let listed = self
                .call(|c| async move { c.list(&query).await })
                .await
                .map_err(|e| (e, page))?;
            for link in listed.items {
                if seen.insert(link.id.to_ascii_lowercase()) {
                    items.push(link);
                }
            }
            if u64::from(page) >= listed.max_page {
                return Ok((items, page));
            }
            page += 1;
        }
    }
}

#[derive(Debug, Default)]
struct Schedule {
    /// The earliest start asked for by a caller, and who asked.
    requested: Option<Instant>,
    waiters: Vec<String>,
    last_start: Option<Instant>,
    /// Sweeps failed in a row.
    failures: u32,
}

/// One organisation on one server: its mirror and its sweeps.
pub struct Org {
    server: Server,
    key: OrgKey,
    /// The organisation's links.
    pub mirror: Mirror,
    accounts: Mutex<Vec<Weak<Account>>>,
    wake: Notify,
    schedule: Mutex<Schedule>,
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

    fn attach(&self, account: &Arc<Account>) {
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

/// Sweeps one organisation until no account of it is left.
async fn sweep_loop(org: Weak<Org>, pool: Weak<Inner>) {
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
                SweepReport {
                    server: org.server.clone(),
                    org: org.key.clone(),
                    warmed: !warm_before,
                    changes,
                    waiters,
                    calls,
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
                }
            }
        };
        drop(account);
        if pool.reports.send(report).is_err() {
            return;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests;
