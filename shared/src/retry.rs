//! Bounded retries with jittered exponential backoff: the one way the workspace tries again.
//!
//! Two shapes of retry occur here, and both go through a [`Backoff`]:
//! - a call that may fail transiently ([`Backoff::retry`]): try, and on a transient error wait
//!   and try again, at most `attempts` times in all;
//! - work that comes back partly done (DynamoDB's `UnprocessedItems`, a conditional write that
//!   lost a race): the caller loops and asks [`Attempts::again`] before each further round, which
//!   waits, or answers `false` when the rounds are used up.
//!
//! Waits grow `first, 2*first, 4*first, ...` up to `max`, each drawn at random from its upper
//! half ("equal jitter"), so that callers that failed together do not retry together.

use std::future::Future;
use std::time::Duration;

/// How often and how patiently to try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Tries in all, the first included (at least 1).
    pub attempts: u32,
    /// The wait before the second try (before jitter).
    pub first: Duration,
    /// No wait is longer than this.
    pub max: Duration,
}

impl Backoff {
    pub const fn new(attempts: u32, first: Duration, max: Duration) -> Self {
        Backoff { attempts, first, max }
    }

    /// The wait after try `attempt` (1-based) failed, before jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.first.saturating_mul(1u32 << doublings).min(self.max)
    }

    /// The wait after try `attempt` failed: at random in the upper half of its ceiling.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        ceiling / 2 + ceiling.mul_f64(rand::random::<f64>() / 2.0)
    }

    /// A fresh count of tries, for loops over partly done work.
    pub fn start(&self) -> Attempts {
        Attempts { policy: *self, done: 1 }
    }

    /// Runs `op` until it succeeds, fails for good (`transient` says no), or the tries are used
    /// up; the last error is returned as it was. `what` names the call in the log line that each
    /// retry writes.
    pub async fn retry<T, E, F, Fut>(&self, what: &str, mut op: F, transient: impl Fn(&E) -> bool) -> Result<T, E>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        let mut tries = self.start();
        loop {
            match op(tries.number()).await {
                Err(e) if transient(&e) && tries.left() => {
                    tracing::debug!(what, attempt = tries.number(), error = %e, "transient failure; retrying");
                    tries.again().await;
                }
                other => return other,
            }
        }
    }
}

/// The tries of one piece of work so far.
#[derive(Clone, Copy, Debug)]
pub struct Attempts {
    policy: Backoff,
    done: u32,
}

impl Attempts {
    /// The number of the current try (1 for the first).
    pub fn number(&self) -> u32 {
        self.done
    }

    /// Whether another try is allowed.
    pub fn left(&self) -> bool {
        self.done < self.policy.attempts
    }

    /// Waits before the next try and counts it; `false` (without waiting) when none is left.
    pub async fn again(&mut self) -> bool {
        if !self.left() {
            return false;
        }
        tokio::time::sleep(self.policy.delay(self.done)).await;
        self.done += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    const FAST: Backoff = Backoff::new(4, Duration::from_millis(1), Duration::from_millis(4));

    #[test]
    fn waits_double_up_to_the_cap_and_stay_in_the_upper_half() {
        let b = Backoff::new(10, Duration::from_millis(100), Duration::from_secs(1));
        let ceilings: Vec<u64> = (1..=6).map(|a| b.ceiling(a).as_millis() as u64).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        for attempt in 1..=6 {
            for _ in 0..50 {
                let d = b.delay(attempt);
                assert!(
                    d >= b.ceiling(attempt) / 2 && d <= b.ceiling(attempt),
                    "{d:?} for {attempt}"
                );
            }
        }
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(1), "no overflow on long runs");
    }

    #[tokio::test]
    async fn a_transient_error_is_retried_until_success() {
        let calls = AtomicU32::new(0);
        let out: Result<u32, String> = FAST
            .retry(
                "test",
                |n| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async move { if n < 3 { Err(format!("busy {n}")) } else { Ok(n) } }
                },
                |_| true,
            )
            .await;
        assert_eq!(out, Ok(3));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn tries_are_bounded_and_the_last_error_is_kept() {
        let calls = AtomicU32::new(0);
        let out: Result<(), String> = FAST
            .retry(
                "test",
                |n| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async move { Err(format!("busy {n}")) }
                },
                |_| true,
            )
            .await;
        assert_eq!(out, Err("busy 4".into()));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_permanent_error_is_not_retried() {
        let calls = AtomicU32::new(0);
        let out: Result<(), String> = FAST
            .retry(
                "test",
                |_| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async { Err("bad request".to_string()) }
                },
                |e| !e.starts_with("bad"),
            )
            .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn rounds_over_partly_done_work_end_when_the_tries_do() {
        let mut tries = FAST.start();
        let mut rounds = 1;
        while tries.again().await {
            rounds += 1;
        }
        assert_eq!(rounds, 4);
        assert!(!tries.again().await, "stays used up");
    }
}
