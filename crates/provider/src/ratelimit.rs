//! The global reconcile budget (Crossplane's `--max-reconcile-rate` r): a token bucket of r
//! per second with a burst of 10·r, across every kind. Each reconcile reserves the next token
//! and waits until it is there, as golang.org/x/time/rate's `Reserve` does: with the
//! controllers' concurrency at r, at most r reconciles wait at once, each for its own turn.
//! (Requeueing the ones over budget instead made every waiting resource retry at the same
//! instant: 50,000 futile wake-ups a second with 10,000 resources.) Time is given, so this
//! does no I/O.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// `per_second` reconciles a second (at least one), bursts of ten times that.
    pub fn new(per_second: u16, now: Instant) -> TokenBucket {
        let rate = f64::from(per_second.max(1));
        TokenBucket {
            rate,
            burst: rate * 10.0,
            tokens: rate * 10.0,
            at: now,
        }
    }

    /// Reserves the next token: `None` when there was one, else how long until the reserved
    /// one is there (later reservations queue behind it).
    pub fn reserve(&mut self, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
        self.tokens -= 1.0;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / self.rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_table() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, t0);
        let close = |d: Option<Duration>, secs: f64| {
            d.is_some_and(|d| (d.as_secs_f64() - secs).abs() < 1e-9)
        };
        // The burst: 100 at once; then each reservation waits its turn, a tenth of a second
        // after the one before.
        for i in 0..100 {
            assert_eq!(b.reserve(t0), None, "reserve {i}");
        }
        for (i, wait) in [0.1, 0.2, 0.3].into_iter().enumerate() {
            let got = b.reserve(t0);
            assert!(
                close(got, wait),
                "reservation {} over budget: {got:?}",
                i + 1
            );
        }
        // Time pays the queue back: 0.3 s later the three are due and the next waits 0.1 s.
        assert!(close(b.reserve(t0 + Duration::from_millis(300)), 0.1));
        // (after, reservations without a wait): the rate refills 10 a second, capped at the
        // burst.
        for (after_ms, granted) in [(100, 1), (1000, 10), (60_000, 100)] {
            let mut b = TokenBucket::new(10, t0);
            for _ in 0..100 {
                b.reserve(t0);
            }
            let later = t0 + Duration::from_millis(after_ms);
            let n = (0..1000).take_while(|_| b.reserve(later).is_none()).count();
            assert_eq!(n, granted, "after {after_ms} ms");
        }
        // A rate of 0 is taken as 1.
        let mut b = TokenBucket::new(0, t0);
        assert_eq!((0..100).filter(|_| b.reserve(t0).is_none()).count(), 10);
    }
}
