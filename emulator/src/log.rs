//! Request counters (by method and route template) and the request log.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use crate::sync::Locked;
use serde::{Deserialize, Serialize};

/// One request as the emulator saw it. The `Authorization` value is never kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestLogEntry {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The route template, when a route matched.
    pub route: Option<String>,
    /// 0 when no response was sent (timeout, dropped connection, or a client
    /// that left before the answer); a `commit_delay` request whose client
    /// left keeps the status it computed (see `client_gone`).
    pub status: u16,
    pub organization_id: Option<String>,
    pub user_id: Option<String>,
    /// The injected fault that decided the answer, if any: `latency`,
    /// `commit_delay`, `shift`, `not_found`, `drop`, `timeout`, `status`,
    /// `429` (when several applied, the last of these in that order).
    pub fault: Option<String>,
    /// Every injected fault that applied, in the order they did.
    #[serde(default)]
    pub faults: Vec<String>,
    /// The client closed the connection before the answer: either the request
    /// was cancelled (status 0), or a `commit_delay` request went on without it.
    #[serde(default)]
    pub client_gone: bool,
    pub timestamp: String,
    pub duration_ms: f64,
    /// The request body of a POST, PUT or PATCH that reached a route, as UTF-8 (lossy);
    /// tests read it to check what a client sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The `Polar-Version` header as sent (`None`: absent, so the default applied).
    #[serde(default)]
    pub polar_version: Option<String>,
    /// The `Polar-Organization` header as sent.
    #[serde(default)]
    pub polar_organization: Option<String>,
}

pub const LOG_CAPACITY: usize = 10_000;

#[derive(Default)]
pub struct Counters(Mutex<HashMap<String, u64>>);

impl Counters {
    pub fn hit(&self, method: &str, template: &str) {
        let key = format!("{method} {template}");
        *self.0.locked().entry(key).or_insert(0) += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0
            .locked()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    pub fn reset(&self) {
        self.0.locked().clear();
    }
}

/// The last [`LOG_CAPACITY`] requests.
#[derive(Default)]
pub struct RequestLog(Mutex<VecDeque<RequestLogEntry>>);

impl RequestLog {
    pub fn push(&self, entry: RequestLogEntry) {
        let mut log = self.0.locked();
        if log.len() == LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(entry);
    }

    pub fn entries(&self) -> Vec<RequestLogEntry> {
        self.0.locked().iter().cloned().collect()
    }

    pub fn clear(&self) {
        self.0.locked().clear();
    }
}
