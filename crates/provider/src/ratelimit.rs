//! The global reconcile budget (Crossplane's `--max-reconcile-rate` r): a token bucket of r
//! per second with a burst of 10·r, across every kind. A reconcile over budget is not run
//! but requeued for when a token will be there. Time is given, so this does no I/O.

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

    /// Takes a token: `None` when there was one, else how long until there is.
    pub fn take(&mut self, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_table() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, t0);
        // The burst: 100 at once, then the 101st waits a tenth of a second.
        for i in 0..100 {
            assert_eq!(b.take(t0), None, "take {i}");
        }
        let wait = b.take(t0).expect("over budget");
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        // (after, takes granted): the rate refills 10 a second, capped at the burst.
        for (after_ms, granted) in [(100, 1), (1000, 10), (60_000, 100)] {
            let mut b = TokenBucket::new(10, t0);
            for _ in 0..100 {
                b.take(t0);
            }
            let later = t0 + Duration::from_millis(after_ms);
            let n = (0..1000).take_while(|_| b.take(later).is_none()).count();
            assert_eq!(n, granted, "after {after_ms} ms");
        }
        // A rate of 0 is taken as 1.
        let mut b = TokenBucket::new(0, t0);
        assert_eq!((0..100).filter(|_| b.take(t0).is_none()).count(), 10);
    }
}
