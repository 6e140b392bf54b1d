//! How long to wait before trying again: delays that double from a first
//! one up to a longest one. Pure: the callers sleep.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    longest: Duration,
    next: Duration,
}

impl Backoff {
    /// Reconnecting to RabbitMQ or PostgreSQL, and a failed message's
    /// retry: from 100 ms to 5 s.
    pub const SERVICE: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));

    pub const fn new(first: Duration, longest: Duration) -> Self {
        Self {
            first,
            longest,
            next: first,
        }
    }

    /// The wait before the next try; each call doubles the one after it.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.longest);
        delay
    }

    /// Start again from the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// The wait before try `attempt` + 1 of a sequence kept elsewhere
    /// (attempt 0 waits the first delay).
    pub fn after(&self, attempt: u32) -> Duration {
        self.first
            .saturating_mul(1 << attempt.min(16))
            .min(self.longest)
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::Duration;

    #[test]
    fn delays_double_up_to_the_longest_and_start_again_on_reset() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(100), ms(500));
        let delays: Vec<Duration> = (0..5).map(|_| backoff.next_delay()).collect();
        assert_eq!(delays, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), ms(100));
        assert_eq!(backoff.after(0), ms(100));
        assert_eq!(backoff.after(2), ms(400));
        assert_eq!(backoff.after(u32::MAX), ms(500));
    }
}
