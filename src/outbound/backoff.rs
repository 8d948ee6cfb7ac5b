//! The one retry schedule: exponential backoff from a first delay up to a cap, jittered
//! when many callers could retry together, optionally limited in tries or total wait;
//! and the `Retry-After` header. `backon`'s `Retryable` combinator takes it as is.

use std::time::Duration;

/// Delays between retries: `first`, doubling each time up to `max`; jittered, each is a
/// random share of the delay up to it again (so retries of many callers spread out).
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
    jitter: bool,
    /// Delays left before giving up (`None`: no limit).
    times_left: Option<usize>,
    /// Waiting left before giving up (`None`: no limit).
    wait_left: Option<Duration>,
}

impl Backoff {
    /// Delays from `first`, doubling up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first.min(max),
            jitter: false,
            times_left: None,
            wait_left: None,
        }
    }

    /// The same, each delay jittered.
    pub fn jittered(mut self) -> Self {
        self.jitter = true;
        self
    }

    /// At most `times` retries.
    pub fn with_max_times(mut self, times: usize) -> Self {
        self.times_left = Some(times);
        self
    }

    /// Retries only while the waits add up to at most `total`.
    pub fn with_total_delay(mut self, total: Duration) -> Self {
        self.wait_left = Some(total);
        self
    }

    /// The next delay to wait (the cap once a limit is spent: for callers that never
    /// give up).
    pub fn next_delay(&mut self) -> Duration {
        self.next().unwrap_or(self.max)
    }

    fn grow(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        if self.jitter {
            delay + delay.mul_f64(fastrand::f64())
        } else {
            delay
        }
        .min(self.max)
    }

    /// Waits the next delay; false when `shutdown` came first (the caller stops).
    pub async fn pause(&mut self, shutdown: &tokio_util::sync::CancellationToken) -> bool {
        let wait = self.next_delay();
        tokio::select! {
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep(wait) => true,
        }
    }

    /// Starts again from the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = self.first.min(self.max);
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if let Some(times) = &mut self.times_left {
            *times = times.checked_sub(1)?;
        }
        let delay = self.grow();
        if let Some(left) = &mut self.wait_left {
            *left = left.checked_sub(delay)?;
        }
        Some(delay)
    }
}

/// A `Retry-After` value in seconds: delay-seconds, or an HTTP date (RFC 9110) from now.
pub fn retry_after_seconds(value: &str) -> Option<f64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return Some(seconds);
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.num_milliseconds().max(0) as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_start_again_after_a_reset() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(100), ms(500));
        let delays: Vec<Duration> = backoff.by_ref().take(5).collect();
        assert_eq!(delays, vec![ms(100), ms(200), ms(400), ms(500), ms(500)]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), ms(100));
    }

    #[test]
    fn jittered_delays_stay_between_the_delay_and_twice_it_within_the_cap() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(100), ms(1_000)).jittered();
        for (i, delay) in backoff.by_ref().take(3).enumerate() {
            let base = ms(100) * 2u32.pow(i as u32);
            assert!(
                delay >= base && delay <= (base * 2).min(ms(1_000)),
                "{i}: {delay:?}"
            );
        }
        // The fourth is 800 ms jittered (up to the cap); from the fifth on, the cap.
        assert!(backoff.skip(1).take(10).all(|d| d == ms(1_000)));
    }

    #[test]
    fn limits_end_the_retries() {
        let ms = Duration::from_millis;
        assert_eq!(Backoff::new(ms(10), ms(10)).with_max_times(3).count(), 3);
        let waits: Vec<Duration> = Backoff::new(ms(100), ms(1_000))
            .with_total_delay(ms(350))
            .collect();
        assert_eq!(waits, vec![ms(100), ms(200)]);
    }
}
