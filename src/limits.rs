//! Overload protection: a per-client token-bucket rate limit and a global bound on requests in
//! flight. Both are in memory, per process: with N processes behind a load balancer a client's
//! effective rate is up to N times the configured one.
//!
//! The limiter's memory is bounded: a bucket that has been idle long enough to refill completely
//! carries no information and is swept away (at most once a second, when the table is full); if the
//! table is still full of active clients, new clients share one overflow bucket.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The most clients the limiter tracks separately.
pub const MAX_TRACKED_CLIENTS: usize = 100_000;

/// The key new clients share when the table is full of active ones.
const OVERFLOW: &str = "~overflow";

/// A token bucket per client.
pub struct RateLimiter {
    /// Tokens added per second; `0` turns limiting off.
    rate: f64,
    /// Bucket size: how many requests a client may send at once after being idle.
    burst: f64,
    capacity: usize,
    state: Mutex<Table>,
}

struct Table {
    buckets: HashMap<String, Bucket>,
    last_sweep: Instant,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// A limiter allowing `rate` requests a second with bursts of `burst`; `rate <= 0` is off.
    pub fn new(rate: f64, burst: u32) -> RateLimiter {
        Self::with_capacity(rate, burst, MAX_TRACKED_CLIENTS)
    }

    /// As [`RateLimiter::new`], tracking at most `capacity` clients.
    pub fn with_capacity(rate: f64, burst: u32, capacity: usize) -> RateLimiter {
        RateLimiter {
            rate: if rate.is_finite() && rate > 0.0 { rate } else { 0.0 },
            burst: f64::from(burst.max(1)),
            capacity: capacity.max(1),
            state: Mutex::new(Table { buckets: HashMap::new(), last_sweep: Instant::now() }),
        }
    }

    /// Whether limiting is on.
    pub fn enabled(&self) -> bool {
        self.rate > 0.0
    }

    /// How many clients are tracked.
    pub fn tracked(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).buckets.len()
    }

    /// Takes a token for `client`: `Ok(())`, or `Err(seconds)` to wait before the next one.
    pub fn check(&self, client: &str) -> Result<(), u64> {
        self.check_at(client, Instant::now())
    }

    fn check_at(&self, client: &str, now: Instant) -> Result<(), u64> {
        if !self.enabled() {
            return Ok(());
        }
        let mut table = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut key = client;
        if !table.buckets.contains_key(key) && table.buckets.len() >= self.capacity {
            // A full bucket is the same as no bucket: drop those, at most once a second.
            let refill = Duration::from_secs_f64(self.burst / self.rate);
            if now.duration_since(table.last_sweep) >= Duration::from_secs(1) {
                table.last_sweep = now;
                table.buckets.retain(|_, b| now.duration_since(b.updated) < refill);
            }
            if table.buckets.len() >= self.capacity {
                key = OVERFLOW;
            }
        }
        let (rate, burst) = (self.rate, self.burst);
        let bucket = match table.buckets.get_mut(key) {
            Some(b) => b,
            None => table.buckets.entry(key.to_owned()).or_insert(Bucket { tokens: burst, updated: now }),
        };
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - bucket.tokens) / rate).ceil();
            Err(if wait.is_finite() && wait >= 1.0 { wait as u64 } else { 1 })
        }
    }
}

/// Counts requests in flight against a bound.
pub struct InFlight {
    max: usize,
    current: AtomicUsize,
}

/// A slot taken from [`InFlight`]; given back when dropped.
pub struct Slot<'a>(&'a InFlight);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, Ordering::AcqRel);
    }
}

impl InFlight {
    /// At most `max` requests at once.
    pub fn new(max: usize) -> InFlight {
        InFlight { max, current: AtomicUsize::new(0) }
    }

    /// A slot, or `None` when `max` are taken.
    pub fn enter(&self) -> Option<Slot<'_>> {
        let previous = self.current.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(self);
        if previous >= self.max {
            drop(slot);
            None
        } else {
            Some(slot)
        }
    }

    /// Requests in flight now.
    pub fn current(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let limiter = RateLimiter::new(2.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at("a", t0).is_ok());
        }
        assert_eq!(limiter.check_at("a", t0), Err(1));
        assert!(limiter.check_at("b", t0).is_ok(), "another client has its own bucket");
        assert!(limiter.check_at("a", t0 + Duration::from_millis(500)).is_ok(), "one token back after 1/rate");
        assert!(limiter.check_at("a", t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn memory_is_bounded() {
        let limiter = RateLimiter::with_capacity(1.0, 1, 10);
        let t0 = Instant::now();
        for i in 0..1000 {
            let _ = limiter.check_at(&format!("client-{i}"), t0);
        }
        assert!(limiter.tracked() <= 11, "10 clients and the overflow bucket");
        // Once their buckets have refilled, idle clients are swept and new ones tracked again.
        let later = t0 + Duration::from_secs(5);
        assert!(limiter.check_at("fresh", later).is_ok());
        assert!(limiter.tracked() <= 11);
    }

    #[test]
    fn off_when_rate_is_zero() {
        let limiter = RateLimiter::new(0.0, 1);
        for _ in 0..100 {
            assert!(limiter.check("a").is_ok());
        }
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn in_flight_slots() {
        let bound = InFlight::new(2);
        let a = bound.enter();
        let b = bound.enter();
        assert!(a.is_some() && b.is_some());
        assert!(bound.enter().is_none());
        drop(a);
        assert!(bound.enter().is_some());
        assert_eq!(bound.current(), 1);
    }
}
