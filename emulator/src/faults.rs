//! Injected faults: latency, slow commits that outlive the client, error
//! statuses, hung requests, responses dropped after the write, forced 429s,
//! list pages that shift under a sweep, and answers as for another
//! organisation; each rule optionally for the next N requests.

use std::sync::Mutex;
use std::time::Duration;

use crate::sync::Locked;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The list route a `list_shift` rule applies to.
pub const LINKS_LIST: &str = "/v1/checkout-links/";

/// One rule. `method` and `path` (a route template such as
/// `/v1/checkout-links/{id}`) select requests; `*` or empty matches any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultRule {
    pub method: String,
    pub path: String,
    /// Wait this long before anything else; a client that leaves meanwhile
    /// cancels the request (nothing is written).
    pub latency_ms: u64,
    /// Run the route handler (validation, Polar's checks and the write) this
    /// long after the request arrived, on a task of its own: the write
    /// happens even when the client has given up meanwhile, as Polar's server
    /// finishes a request whose client timed out.
    pub commit_delay_ms: u64,
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
    /// Moves the window of `GET /v1/checkout-links/` pages after the first by
    /// this many rows: positive as if that many earlier links had been deleted
    /// since the first page (rows are skipped), negative as if that many had
    /// been inserted before the window (rows repeat). A rule with a non-zero
    /// shift matches only such requests (page 2 and later).
    pub list_shift: i64,
    /// Answer as for a token of another, empty organisation: links and
    /// products are not found (404, empty lists, "Product does not exist.").
    pub not_found: bool,
    /// Apply to the next N matching requests only, then expire.
    pub count: Option<u32>,
}

impl Default for FaultRule {
    fn default() -> Self {
        FaultRule {
            method: "*".into(),
            path: "*".into(),
            latency_ms: 0,
            commit_delay_ms: 0,
            error_rate: 0.0,
            error_statuses: Vec::new(),
            timeout: false,
            drop_response_after_commit: false,
            force_429: false,
            list_shift: 0,
            not_found: false,
            count: None,
        }
    }
}

/// What a rule can select a request by.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub method: &'a str,
    /// The matched route template.
    pub template: &'a str,
    /// A `GET /v1/checkout-links/` whose page is 2 or later.
    pub later_page: bool,
}

impl FaultRule {
    fn matches(&self, t: &Target) -> bool {
        let any = |s: &str| s.is_empty() || s == "*";
        let shift_applies =
            self.list_shift == 0 || (t.later_page && t.method == "GET" && t.template == LINKS_LIST);
        shift_applies
            && (any(&self.method) || self.method.eq_ignore_ascii_case(t.method))
            && (any(&self.path) || self.path == t.template)
    }
}

/// What the matching rules do to one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    pub latency: Duration,
    pub commit_delay: Duration,
    pub action: Option<FaultAction>,
    pub drop_after: bool,
    pub list_shift: i64,
    pub not_found: bool,
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
    pub fn plan(&self, target: Target) -> FaultPlan {
        let mut rules = self.0.locked();
        let mut plan = FaultPlan::default();
        if rules.is_empty() {
            return plan;
        }
        let mut rng = rand::rng();
        for rule in rules.iter_mut().filter(|r| r.matches(&target)) {
            if let Some(n) = rule.count.as_mut() {
                if *n == 0 {
                    continue;
                }
                *n -= 1;
            }
            plan.latency += Duration::from_millis(rule.latency_ms);
            plan.commit_delay += Duration::from_millis(rule.commit_delay_ms);
            plan.drop_after |= rule.drop_response_after_commit;
            plan.list_shift = plan.list_shift.saturating_add(rule.list_shift);
            plan.not_found |= rule.not_found;
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
