//! Polar's rate limiter (asgi-ratelimit with Redis): a fixed window per
//! identity, opened by the first request; `429` with `retry-after` = window.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::{Auth, token_hash};
use crate::sync::Locked;

/// Requests per window for tokens Polar has not yet cached (`pending_auth`).
pub const COLD_TOKEN_LIMIT: u32 = 60;
/// How long Polar caches a token's identity after it authenticated.
pub const IDENTITY_CACHE: Duration = Duration::from_secs(300);

pub struct RateLimiter {
    limit: u32,
    window: Duration,
    cold_tokens: bool,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
    seen: Mutex<HashMap<u64, Instant>>,
}

impl RateLimiter {
    pub fn new(limit: u32, window: Duration, cold_tokens: bool) -> Self {
        RateLimiter {
            limit,
            window: window.max(Duration::from_millis(1)),
            cold_tokens,
            windows: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.limit > 0
    }

    /// `retry-after`: the window length in whole seconds (at least 1).
    pub fn retry_after(&self) -> u64 {
        self.window.as_secs().max(1)
    }

    /// The bucket key and its limit for a request.
    fn bucket(
        &self,
        auth: &Auth,
        token: Option<&str>,
        peer: IpAddr,
        now: Instant,
    ) -> (String, u32) {
        if self.cold_tokens
            && let Some(t) = token
        {
            let hash = token_hash(t);
            let warm = matches!(auth, Auth::Valid(_))
                && self
                    .seen
                    .locked()
                    .get(&hash)
                    .is_some_and(|at| now.duration_since(*at) < IDENTITY_CACHE);
            if !warm {
                return (format!("pending_auth:{hash:016x}"), COLD_TOKEN_LIMIT);
            }
        }
        match auth {
            Auth::Valid(p) => (p.rate_key(), self.limit),
            _ => (format!("ip:{peer}"), self.limit),
        }
    }

    /// Counts the request; `false` when it is over the limit.
    pub fn allow(&self, auth: &Auth, token: Option<&str>, peer: IpAddr) -> bool {
        if !self.enabled() {
            return true;
        }
        let now = Instant::now();
        let (key, limit) = self.bucket(auth, token, peer, now);
        let mut windows = self.windows.locked();
        let entry = windows.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= limit
    }

    /// Polar writes the identity cache after every request that authenticated.
    pub fn authenticated(&self, token: &str) {
        if self.cold_tokens {
            self.seen.locked().insert(token_hash(token), Instant::now());
        }
    }
}
