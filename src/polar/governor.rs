//! Per-organisation pacing of Polar calls (REFERENCE.md §7).
//!
//! Polar counts requests per organisation (for an organisation access token) in a fixed
//! 60-second window: 500 per minute in production, 100 in sandbox. An [`OrgGovernor`] paces
//! calls with a GCRA limiter from the `governor` crate at a share of that limit, and holds
//! every call back while a `Retry-After` from a 429 is running. [`Governors`] hands out one
//! governor per (server, organisation), whatever the number of tokens, namespaces or Secrets
//! that reach it; a token whose organisation is not known yet has one of its own until it is.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

use super::Server;

/// The share of Polar's limit used when the configured one is not a number in (0, 1].
pub const DEFAULT_SHARE: f64 = 0.9;

/// Paces the calls of one organisation and honours `Retry-After`.
#[derive(Debug)]
pub struct OrgGovernor {
    limiter: DefaultDirectRateLimiter,
    /// The steady rate, in calls per minute.
    rate_per_minute: f64,
    burst: u32,
    /// Tokio's clock, so that tests with paused time control the block.
    blocked_until: Mutex<Option<Instant>>,
}

impl OrgGovernor {
    /// A governor for a server limit of `per_minute` calls, of which it uses `share`
    /// (for example 0.9). The steady rate is `per_minute × share`; the burst is what is left
    /// of the limit (`per_minute − rate`, at least 1), so that even a burst followed by a
    /// full minute at the steady rate stays within one fixed window's limit.
    pub fn new(per_minute: u32, share: f64) -> Self {
        let per_minute = per_minute.max(1);
        let share = if share.is_finite() && share > 0.0 {
            share.min(1.0)
        } else {
            DEFAULT_SHARE
        };
        let rate = (f64::from(per_minute) * share).max(1.0 / 60.0);
        // The epsilon keeps 500 × 0.9 = 450.00000000000006 from losing a burst slot.
        let burst = (f64::from(per_minute) - rate + 1e-6)
            .floor()
            .clamp(1.0, f64::from(per_minute)) as u32;
        let period = Duration::from_secs_f64(60.0 / rate);
        let burst_nz = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        // with_period is None only for a zero period, and 60 / rate is at most one hour.
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
            .allow_burst(burst_nz);
        OrgGovernor {
            limiter: RateLimiter::direct(quota),
            rate_per_minute: rate,
            burst,
            blocked_until: Mutex::new(None),
        }
    }

    /// The steady rate, in calls per minute.
    pub fn rate_per_minute(&self) -> f64 {
        self.rate_per_minute
    }

    /// How many calls may go at once after a quiet period.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Waits for a slot AND until any `Retry-After` block has passed.
    pub async fn acquire(&self) {
        self.wait_for_block().await;
        self.limiter.until_ready().await;
        // A 429 may have arrived while this call waited for its slot.
        self.wait_for_block().await;
    }

    /// Takes a slot if one is free right now and no block is running.
    pub fn try_acquire(&self) -> bool {
        self.blocked_until().is_none() && self.limiter.check().is_ok()
    }

    /// Holds every call back for `d` from now (a 429's `Retry-After`). A shorter block never
    /// shortens a longer one that is already running.
    pub fn block_for(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut guard = self.blocked_until.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none_or(|current| current < until) {
            *guard = Some(until);
        }
    }

    /// When the running `Retry-After` block ends, if one is running.
    pub fn blocked_until(&self) -> Option<std::time::Instant> {
        self.block_deadline().map(Instant::into_std)
    }

    fn block_deadline(&self) -> Option<Instant> {
        let guard = self.blocked_until.lock().unwrap_or_else(|p| p.into_inner());
        guard.filter(|until| *until > Instant::now())
    }

    async fn wait_for_block(&self) {
        while let Some(until) = self.block_deadline() {
            tokio::time::sleep_until(until).await;
        }
    }
}

/// Whom a governor paces.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Pace {
    /// Every token of one organisation.
    Organization(String),
    /// One token whose organisation is not known yet (by fingerprint, never the token).
    Token(String),
}

/// One [`OrgGovernor`] per (server, organisation).
#[derive(Debug)]
pub struct Governors {
    share: f64,
    override_per_minute: Option<u32>,
    by_key: Mutex<HashMap<(Server, Pace), Arc<OrgGovernor>>>,
}

impl Governors {
    /// A registry whose governors use `share` of each server's limit, or of
    /// `override_per_minute` when set (for organisations with a raised limit, or the emulator).
    pub fn new(share: f64, override_per_minute: Option<u32>) -> Self {
        Governors {
            share,
            override_per_minute,
            by_key: Mutex::new(HashMap::new()),
        }
    }

    /// The governor shared by every call to `server` paced as `pace`.
    pub fn get(&self, server: &Server, pace: Pace) -> Arc<OrgGovernor> {
        let mut map = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((server.clone(), pace))
            .or_insert_with(|| {
                let per_minute = self
                    .override_per_minute
                    .unwrap_or(server.default_rate_per_minute());
                Arc::new(OrgGovernor::new(per_minute, self.share))
            })
            .clone()
    }

    /// How many governors exist (one per organisation seen).
    pub fn len(&self) -> usize {
        self.by_key.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// True before the first call.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::polar::Token;

    fn free_slots(g: &OrgGovernor) -> u32 {
        let mut n = 0;
        while g.try_acquire() {
            n += 1;
            assert!(n < 10_000, "no limit");
        }
        n
    }

    #[test]
    fn rate_and_burst_stay_within_the_window_limit() {
        let production = OrgGovernor::new(500, 0.9);
        assert_eq!(
            (production.rate_per_minute().round(), production.burst()),
            (450.0, 50)
        );
        let sandbox = OrgGovernor::new(100, 0.9);
        assert_eq!(
            (sandbox.rate_per_minute().round(), sandbox.burst()),
            (90.0, 10)
        );
        let full = OrgGovernor::new(100, 1.0);
        assert_eq!(full.burst(), 1);
        let odd = OrgGovernor::new(100, f64::NAN);
        assert_eq!(odd.rate_per_minute().round(), 90.0);
    }

    #[test]
    fn only_the_burst_is_free_at_once() {
        // 6/min at half share: 3 per minute, one every 20 s, burst 3. Nothing refills within
        // the few microseconds this test takes.
        let g = OrgGovernor::new(6, 0.5);
        assert_eq!(free_slots(&g), 3);
        assert!(!g.try_acquire());
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_waits_once_the_burst_is_spent() {
        let g = OrgGovernor::new(6, 0.5);
        for _ in 0..3 {
            tokio::time::timeout(Duration::from_secs(1), g.acquire())
                .await
                .expect("burst slot");
        }
        // The next slot is 20 real seconds away (governor runs on the real clock); with tokio's
        // clock paused, the timeout fires as soon as the runtime has nothing else to do.
        assert!(
            tokio::time::timeout(Duration::from_secs(1), g.acquire())
                .await
                .is_err()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_paces_at_the_real_rate() {
        // 600/min at full share: one slot every 100 ms of real time, burst 1.
        let g = Arc::new(OrgGovernor::new(600, 1.0));
        let started = std::time::Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let g = g.clone();
                tokio::spawn(async move { g.acquire().await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // Four slots with a burst of one need at least three replenish periods.
        assert!(
            started.elapsed() >= Duration::from_millis(290),
            "{:?}",
            started.elapsed()
        );
        assert!(!g.try_acquire(), "the slots were all taken");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_holds_calls_back_until_it_passes() {
        let g = OrgGovernor::new(600, 1.0);
        g.block_for(Duration::from_secs(60));
        assert!(g.blocked_until().is_some());
        assert!(!g.try_acquire());
        assert!(
            tokio::time::timeout(Duration::from_secs(59), g.acquire())
                .await
                .is_err()
        );
        tokio::time::timeout(Duration::from_secs(2), g.acquire())
            .await
            .expect("block over");
        assert!(g.blocked_until().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_retry_after_does_not_shorten_a_longer_one() {
        let g = OrgGovernor::new(600, 1.0);
        g.block_for(Duration::from_secs(60));
        let long = g.blocked_until().unwrap();
        g.block_for(Duration::from_secs(1));
        assert_eq!(g.blocked_until(), Some(long));
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(
            tokio::time::timeout(Duration::from_secs(29), g.acquire())
                .await
                .is_err()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_block_set_while_waiting_for_a_slot_is_honoured() {
        let g = Arc::new(OrgGovernor::new(600, 1.0));
        g.acquire().await; // spend the burst: the next slot is 100 ms of real time away
        let waiter = {
            let g = g.clone();
            tokio::spawn(async move { g.acquire().await })
        };
        tokio::task::yield_now().await;
        g.block_for(Duration::from_secs(60));
        // The slot frees up in real time, but the block keeps the call back in tokio time.
        tokio::time::sleep(Duration::from_secs(59)).await;
        std::thread::sleep(Duration::from_millis(300));
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("block over")
            .unwrap();
    }

    #[test]
    fn registry_shares_a_governor_per_server_and_organisation() {
        let governors = Governors::new(0.9, None);
        let org = |id: &str| Pace::Organization(id.into());
        let a = governors.get(&Server::Production, org("a"));
        assert!(Arc::ptr_eq(
            &a,
            &governors.get(&Server::Production, org("a"))
        ));
        assert!(!Arc::ptr_eq(
            &a,
            &governors.get(&Server::Production, org("b"))
        ));
        let token = Token::new("polar_oat_a").fingerprint();
        assert!(!Arc::ptr_eq(
            &a,
            &governors.get(&Server::Production, Pace::Token(token))
        ));
        assert_eq!(governors.get(&Server::Sandbox, org("a")).burst(), 10);
        assert_eq!(a.burst(), 50);
        assert_eq!(governors.len(), 4);
        assert!(!format!("{governors:?}").contains("polar_oat_a"));
    }

    #[test]
    fn registry_override_replaces_the_server_limit() {
        let governors = Governors::new(0.5, Some(1000));
        let g = governors.get(&Server::Sandbox, Pace::Organization("o".into()));
        assert_eq!(g.rate_per_minute(), 500.0);
    }
}
