//! [`Pool`]: the accounts (one per server and token) and the organisations (one per server and
//! organisation id) of every reconcile, made on first use. No Kubernetes here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::account::{Account, AccountState};
use super::governor::{Governors, Pace};
use super::mirror::Mirror;
use super::org::{Org, OrgKey, Schedule, SweepReport, sweep_loop};
use super::{CheckoutLinks, Credentials, PolarError, Server};

/// Builds the HTTP client of a token: the reqwest client normally, a fake in unit tests.
pub type ClientFactory =
    Arc<dyn Fn(&Credentials) -> Result<Arc<dyn CheckoutLinks>, PolarError> + Send + Sync>;

/// How long an account may go unused by reconciles before it is dropped (a rotated token, a
/// Secret no link uses any more). Dropped accounts are made again on demand.
pub const ACCOUNT_IDLE_TTL: Duration = Duration::from_secs(3600);
/// How the pool runs.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// Share of Polar's rate limit to use.
    pub rate_share: f64,
    /// Per-minute limit overriding the server's default.
    pub rate_limit: Option<u32>,
    /// Time between two periodic sweeps of an organisation.
    pub sweep_interval: Duration,
    /// Time between two reads of the refund window of orders (campaign results).
    pub results_rescan: Duration,
}

/// Accounts and organisations, shared by every reconcile.
pub struct Pool {
    inner: Arc<Inner>,
}

pub(super) type KeptAccount = (Arc<Account>, Instant);

pub(super) struct Inner {
    pub(super) factory: ClientFactory,
    pub(super) governors: Governors,
    pub(super) settings: PoolSettings,
    /// By (server, token fingerprint), with when a reconcile last asked for it.
    pub(super) accounts: Mutex<HashMap<(Server, String), KeptAccount>>,
    pub(super) orgs: Mutex<HashMap<(Server, OrgKey), Arc<Org>>>,
    pub(super) reports: mpsc::UnboundedSender<SweepReport>,
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

    /// The highest catalog revision of the organisations on `server` (an input of resources
    /// that use references: a new product or a renamed one is looked at again).
    pub fn catalog_revision(&self, server: &Server) -> u64 {
        lock(&self.inner.orgs)
            .iter()
            .filter(|((s, _), _)| s == server)
            .map(|(_, org)| org.catalog().1)
            .max()
            .unwrap_or(0)
    }

    /// The revision of `uid`'s orders on `server` (an input of its reconcile when campaign
    /// results are on), and whether an orders sweep is failing there.
    pub fn results_revision(&self, server: &Server, uid: &str) -> (u64, bool) {
        lock(&self.inner.orgs)
            .iter()
            .filter(|((s, _), _)| s == server)
            .map(|(_, org)| org.results_revision(uid))
            .fold((0, false), |a, b| (a.0.max(b.0), a.1 || b.1))
    }

    /// Every organisation on `server` stops counting results for `uid`.
    pub fn forget_results(&self, server: &Server, uid: &str) {
        for ((s, _), org) in lock(&self.inner.orgs).iter() {
            if s == server {
                org.forget_results(uid);
            }
        }
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
    pub(super) fn org(self: &Arc<Self>, server: &Server, key: OrgKey) -> Arc<Org> {
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
            catalog: Mutex::new(Default::default()),
            orders: Mutex::new(Default::default()),
        });
        orgs.insert((server.clone(), key), org.clone());
        tokio::spawn(sweep_loop(Arc::downgrade(&org), Arc::downgrade(self)));
        org
    }

    pub(super) fn drop_org(&self, org: &Org) {
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

/// A mutex's guard, also after a panic while it was held (the data stays usable: every
/// critical section leaves it consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests;
