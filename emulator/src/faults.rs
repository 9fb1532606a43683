//! Injected faults: latency, error statuses, hung requests, responses dropped
//! after the write, forced 429s; each rule optionally for the next N requests.

use std::sync::Mutex;
use std::time::Duration;

use crate::sync::Locked;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// One rule. `method` and `path` (a route template such as
/// `/v1/checkout-links/{id}`) select requests; `*` or empty matches any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultRule {
    pub method: String,
    pub path: String,
    pub latency_ms: u64,
    /// Probability (0..=1) of answering with one of `error_statuses`.
    pub error_rate: f64,
    /// Defaults to `[500]` when empty.
    pub error_statuses: Vec<u16>,
    /// Hold the request without answering until the client gives up.
    pub timeout: bool,
    /// Perform the request, then close the connection without a response.
    pub drop_response_after_commit: bool,
    /// Answer like Polar's rate limiter.
    pub force_429: bool,
    /// Apply to the next N matching requests only, then expire.
    pub count: Option<u32>,
}

impl Default for FaultRule {
    fn default() -> Self {
        FaultRule {
            method: "*".into(),
            path: "*".into(),
            latency_ms: 0,
            error_rate: 0.0,
            error_statuses: Vec::new(),
            timeout: false,
            drop_response_after_commit: false,
            force_429: false,
            count: None,
        }
    }
}

impl FaultRule {
    fn matches(&self, method: &str, template: &str) -> bool {
        let any = |s: &str| s.is_empty() || s == "*";
        (any(&self.method) || self.method.eq_ignore_ascii_case(method))
            && (any(&self.path) || self.path == template)
    }
}

/// What the matching rules do to one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    pub latency: Duration,
    pub action: Option<FaultAction>,
    pub drop_after: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    Timeout,
    TooManyRequests,
    Status(u16),
}

#[derive(Default)]
pub struct Faults(Mutex<Vec<FaultRule>>);

impl Faults {
    pub fn set(&self, rules: Vec<FaultRule>) {
        *self.0.locked() = rules;
    }

    pub fn get(&self) -> Vec<FaultRule> {
        self.0.locked().clone()
    }

    /// Applies every matching rule (using up one of its `count`).
    pub fn plan(&self, method: &str, template: &str) -> FaultPlan {
        let mut rules = self.0.locked();
        let mut plan = FaultPlan::default();
        if rules.is_empty() {
            return plan;
        }
        let mut rng = rand::rng();
        for rule in rules.iter_mut().filter(|r| r.matches(method, template)) {
            if let Some(n) = rule.count.as_mut() {
                if *n == 0 {
                    continue;
                }
                *n -= 1;
            }
            plan.latency += Duration::from_millis(rule.latency_ms);
            plan.drop_after |= rule.drop_response_after_commit;
            if plan.action.is_some() {
                continue;
            }
            if rule.timeout {
                plan.action = Some(FaultAction::Timeout);
            } else if rule.force_429 {
                plan.action = Some(FaultAction::TooManyRequests);
            } else if rule.error_rate > 0.0 && rng.random::<f64>() < rule.error_rate {
                let statuses = if rule.error_statuses.is_empty() {
                    &[500][..]
                } else {
                    &rule.error_statuses[..]
                };
                plan.action = Some(FaultAction::Status(
                    statuses[rng.random_range(0..statuses.len())],
                ));
            }
        }
        rules.retain(|r| r.count != Some(0));
        plan
    }
}
