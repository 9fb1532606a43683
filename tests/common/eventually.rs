//! The one way the tests wait: a deadline on something they can observe, polled, and on
//! timeout a panic that shows what was last seen. Every deadline is stretched by
//! `TEST_TIMEOUT_SCALE` ([`testenv::scaled`]), so a loaded machine is given more time in one
//! place; none of them is a sleep that decides a verdict.

use std::fmt;
use std::future::Future;
use std::time::Duration;

pub use testenv::scaled;
use tokio::time::Instant;

/// How often [`eventually`] looks again.
pub const POLL: Duration = Duration::from_millis(100);

/// Polls `probe` until it gives `Ok`, for at most `timeout` (scaled); panics with the last
/// `Err` it gave: what it saw instead.
pub async fn eventually<T, Seen: fmt::Display>(
    what: &str,
    timeout: Duration,
    probe: impl AsyncFnMut() -> Result<T, Seen>,
) -> T {
    eventually_every(what, timeout, POLL, probe).await
}

/// [`eventually`], looking every `interval`.
pub async fn eventually_every<T, Seen: fmt::Display>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, Seen>,
) -> T {
    let timeout = scaled(timeout);
    let deadline = Instant::now() + timeout;
    loop {
        let seen = match probe().await {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last seen: {seen:#}");
        }
        tokio::time::sleep(interval).await;
    }
}

/// `Some(value)` as `Ok`, `None` as "nothing yet", for probes with nothing else to show.
pub fn found<T>(value: Option<T>) -> Result<T, &'static str> {
    value.ok_or("nothing yet")
}

/// Runs `f` with a deadline (scaled).
pub async fn within<T>(d: Duration, what: &str, f: impl Future<Output = T>) -> T {
    let d = scaled(d);
    tokio::time::timeout(d, f)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {d:?}"))
}
