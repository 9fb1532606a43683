//! A fake Polar for unit tests: links in memory, a log of the calls, and canned failures.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::org::SweepReport;
use super::pool::{ClientFactory, Pool, PoolSettings};
use super::{
    CheckoutLinks, Credentials, Link, LinkFields, LinkPatch, ListQuery, Page, PolarError, Server,
    Token,
};

/// The organisation of every fake link.
pub const ORG: &str = "0e6c5b2a-1f3d-4c7e-9a8b-6d5c4b3a2f1e";

/// A fake Polar: links in memory, the calls in order, failures to return next.
#[derive(Default)]
pub struct Fake {
    pub links: Mutex<Vec<Link>>,
    pub calls: Mutex<Vec<String>>,
    pub fail: Mutex<VecDeque<PolarError>>,
    /// `organizations()` answers this (default: forbidden, as without the scope).
    pub orgs: Mutex<Option<Vec<String>>>,
    /// While set, list calls wait (a sweep that has not finished yet).
    pub hold_lists: std::sync::atomic::AtomicBool,
}

impl Fake {
    /// A fake holding `links`.
    pub fn with(links: Vec<Link>) -> Arc<Self> {
        Arc::new(Fake {
            links: Mutex::new(links),
            ..Default::default()
        })
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    /// Forgets the calls so far.
    pub fn clear_calls(&self) {
        self.calls.lock().unwrap().clear();
    }

    /// Makes the next call fail with `e`.
    pub fn fail_next(&self, e: PolarError) {
        self.fail.lock().unwrap().push_back(e);
    }

    fn call(&self, c: String) -> Result<(), PolarError> {
        self.calls.lock().unwrap().push(c);
        self.fail.lock().unwrap().pop_front().map_or(Ok(()), Err)
    }
}

/// A link of [`ORG`] with these fields.
pub fn link(id: &str, fields: LinkFields) -> Link {
    Link {
        id: id.into(),
        organization_id: ORG.into(),
        client_secret: format!("polar_cl_{id}"),
        url: format!("https://buy.polar.sh/polar_cl_{id}"),
        created_at: format!("2026-01-01T00:00:00.{:06}Z", id.len()),
        modified_at: None,
        fields,
        availability: Default::default(),
    }
}

#[async_trait::async_trait]
impl CheckoutLinks for Fake {
    async fn create(&self, fields: &LinkFields) -> Result<Link, PolarError> {
        self.call("create".into())?;
        let mut links = self.links.lock().unwrap();
        let mut l = link(&format!("new-{}", links.len()), fields.clone());
        l.created_at = format!("2026-06-01T00:00:00.{:06}Z", links.len());
        links.push(l.clone());
        Ok(l)
    }
    async fn get(&self, id: &str) -> Result<Link, PolarError> {
        self.call(format!("get {id}"))?;
        self.links
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.id == id)
            .cloned()
            .ok_or(PolarError::NotFound)
    }
    async fn update(&self, id: &str, patch: &LinkPatch) -> Result<Link, PolarError> {
        self.call(format!("update {id} {:?}", patch.field_names()))?;
        let mut links = self.links.lock().unwrap();
        let l = links
            .iter_mut()
            .find(|l| l.id == id)
            .ok_or(PolarError::NotFound)?;
        if let Some(label) = &patch.label {
            l.fields.label = label.clone();
        }
        if let Some(m) = &patch.metadata {
            l.fields.metadata = m.clone();
        }
        if let Some(p) = &patch.products {
            l.fields.products = p.clone();
        }
        Ok(l.clone())
    }
    async fn delete(&self, id: &str) -> Result<(), PolarError> {
        self.call(format!("delete {id}"))?;
        let mut links = self.links.lock().unwrap();
        let before = links.len();
        links.retain(|l| l.id != id);
        if links.len() == before {
            Err(PolarError::NotFound)
        } else {
            Ok(())
        }
    }
    async fn list(&self, query: &ListQuery) -> Result<Page, PolarError> {
        while self.hold_lists.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        self.call(format!("list {}", query.page))?;
        let links = self.links.lock().unwrap();
        let start = ((query.page - 1) * query.limit) as usize;
        let items = links
            .iter()
            .skip(start)
            .take(query.limit as usize)
            .cloned()
            .collect();
        let total = links.len() as u64;
        Ok(Page {
            items,
            total_count: total,
            max_page: total.div_ceil(u64::from(query.limit)),
        })
    }
    async fn organizations(&self) -> Result<Vec<String>, PolarError> {
        self.call("organizations".into())?;
        self.orgs
            .lock()
            .unwrap()
            .clone()
            .ok_or(PolarError::Forbidden {
                message: "insufficient_scope".into(),
            })
    }
}

/// Credentials of an organisation token.
pub fn credentials(token: &str) -> Credentials {
    Credentials {
        token: Token::new(format!("polar_oat_{token}")),
        server: Server::Sandbox,
    }
}

/// A pool whose every account talks to `fake`, sweeping every `interval`, with the reports.
pub fn pool(
    fake: Arc<Fake>,
    interval: std::time::Duration,
) -> (Pool, tokio::sync::mpsc::UnboundedReceiver<SweepReport>) {
    let factory: ClientFactory =
        Arc::new(move |_: &Credentials| Ok(fake.clone() as Arc<dyn CheckoutLinks>));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let settings = PoolSettings {
        rate_share: 1.0,
        rate_limit: Some(60_000),
        sweep_interval: interval,
        results_rescan: std::time::Duration::from_secs(3600),
    };
    (Pool::new(factory, settings, tx), rx)
}
