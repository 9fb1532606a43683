//! [`Account`]: every call for one token on one server. No Kubernetes here.
//!
//! An account waits for its governor (one per organisation for organisation tokens, see
//! [`super::governor`]), blocks it for a 429's `Retry-After`, stops calling for a while after
//! Polar refused the token or the API version (so a revoked token costs one call per retry
//! period, not one per link), learns its organisation from Polar's answers, and writes every
//! link Polar returns into its organisation's mirror ([`super::org`]).

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::catalog::Catalog;
use super::governor::{OrgGovernor, Pace};
use super::orders::Order;
use super::org::{Org, OrgKey};
use super::pool::{Inner, lock};
use super::{CheckoutLinks, Link, LinkFields, LinkPatch, ListQuery, PolarError, Server};

/// After Polar refused a token (401) or the API version, calls with that account fail at once
/// for this long instead of reaching Polar.
pub const REFUSAL_HOLD: Duration = Duration::from_secs(300);
pub(super) struct AccountState {
    /// The organisations the token acts on; `None` until known.
    pub(super) orgs: Option<Vec<String>>,
    pub(super) governor: Arc<OrgGovernor>,
    /// Polar refused the token or the version: the error, and until when to repeat it.
    pub(super) refused: Option<(PolarError, Instant)>,
}

/// One token on one server.
pub struct Account {
    pub(super) server: Server,
    pub(super) fingerprint: String,
    /// A personal (or OAuth user) token: Polar counts its calls per user, not organisation.
    pub(super) personal: bool,
    pub(super) client: Arc<dyn CheckoutLinks>,
    pub(super) pool: Weak<Inner>,
    pub(super) state: Mutex<AccountState>,
    /// Held while the organisation is looked up; `true` once it was tried.
    pub(super) discovery: tokio::sync::Mutex<bool>,
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
    pub(super) fn learn(self: &Arc<Self>, org: &str) {
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

    /// Every page of one list, from page 1 to Polar's `max_page`, and the calls made; the
    /// first failure ends the read.
    async fn every_page<T, F, Fut>(&self, read: F) -> (Result<Vec<T>, PolarError>, u32)
    where
        F: Fn(Arc<dyn CheckoutLinks>, u32) -> Fut,
        Fut: std::future::Future<Output = Result<(Vec<T>, u64), PolarError>>,
    {
        let mut items = Vec::new();
        let mut page = 1;
        loop {
            match self.call(|c| read(c, page)).await {
                Ok((found, max_page)) => {
                    items.extend(found);
                    if u64::from(page) >= max_page {
                        return (Ok(items), page);
                    }
                    page += 1;
                }
                Err(e) => return (Err(e), page),
            }
        }
    }

    /// Every page of the organisation's products (neither archived) and/or discounts, as
    /// `wanted`; the calls made. A failure (a missing scope, Polar down) is the result.
    pub(super) async fn list_catalog(
        &self,
        org: Option<&str>,
        (products, discounts): (bool, bool),
    ) -> (Result<Catalog, PolarError>, u32) {
        let mut calls = 0;
        let mut catalog = Catalog::default();
        if products {
            let (read, n) = self
                .every_page(|c, page| async move { c.list_products(page, org).await })
                .await;
            calls += n;
            match read {
                Ok(items) => catalog.products = items,
                Err(e) => return (Err(e), calls),
            }
        }
        if discounts {
            let (read, n) = self
                .every_page(|c, page| async move { c.list_discounts(page, org).await })
                .await;
            calls += n;
            match read {
                Ok(items) => catalog.discounts = items,
                Err(e) => return (Err(e), calls),
            }
        }
        (Ok(catalog), calls)
    }

    /// Every page of the organisation's orders created after `since`, oldest first; the calls
    /// made. A failure (a missing `orders:read`, Polar down) is the result.
    pub(super) async fn list_orders(
        &self,
        org: Option<&str>,
        since: Option<k8s_openapi::jiff::Timestamp>,
    ) -> (Result<Vec<Order>, PolarError>, u32) {
        self.every_page(|c, page| async move { c.list_orders(page, org, since).await })
            .await
    }

    /// Every page of the organisation's links (`None`: whatever the token sees), with the
    /// number of calls made. A sweep whose `total_count` moved while it ran still returns what
    /// it read: links it may have missed are confirmed one by one by their owners. A link
    /// that moved to a later page while the sweep ran is kept once.
    pub(super) async fn list_all(
        &self,
        org: Option<&str>,
    ) -> Result<(Vec<Link>, u32), (PolarError, u32)> {
        let (read, calls) = self
            .every_page(|c, page| {
                let query = ListQuery {
                    organization_id: org.map(str::to_owned),
                    ..ListQuery::page(page)
                };
                async move { c.list(&query).await.map(|p| (p.items, p.max_page)) }
            })
            .await;
        let mut seen = std::collections::HashSet::new();
        match read {
            Ok(mut links) => {
                links.retain(|link| seen.insert(link.id.to_ascii_lowercase()));
                Ok((links, calls))
            }
            Err(e) => Err((e, calls)),
        }
    }
}
