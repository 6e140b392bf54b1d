//! A request budget for Clerk's Backend API, paced evenly (pure).
//!
//! Clerk allows an instance about 1,000 requests per 10 s in production and
//! 100 in development, shared with the app's own calls. `reconcile` spends
//! at most its budget, one request every `10 s / budget`: never a burst,
//! and no credit saved up while it waits on the database, so the app always
//! finds the rest of the limit free.

use std::time::{Duration, Instant};

/// The window Clerk's limits are counted over.
pub const WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Pacing {
    /// Between two requests; none without a budget.
    interval: Option<Duration>,
    /// The earliest the next request may go.
    next: Option<Instant>,
}

impl Pacing {
    /// At most `per_window` requests each [`WINDOW`]; 0 is no budget.
    pub fn new(per_window: u32) -> Self {
        Self {
            // Rounded up, so that budget + 1 requests never fit in a window.
            interval: (per_window > 0).then(|| {
                let nanos = WINDOW.as_nanos() as u64;
                Duration::from_nanos(nanos.div_ceil(u64::from(per_window)))
            }),
            next: None,
        }
    }

    /// How long a request about to go at `now` waits for its turn; the turn
    /// is then taken.
    pub fn wait(&mut self, now: Instant) -> Duration {
        let Some(interval) = self.interval else {
            return Duration::ZERO;
        };
        let turn = self.next.map_or(now, |next| next.max(now));
        self.next = Some(turn + interval);
        turn - now
    }

    /// The request went at `at`, later than its turn if its wait overslept
    /// (a busy machine): the next turn is then a full interval after it,
    /// so that no two requests go closer than the interval.
    pub fn went(&mut self, at: Instant) {
        if let (Some(interval), Some(next)) = (self.interval, self.next) {
            self.next = Some(next.max(at + interval));
        }
    }
}

/// The most of `sent` (instants in order) that fall within any one
/// [`WINDOW`]: what a budget must bound.
pub fn most_in_a_window(sent: &[Instant]) -> usize {
    (0..sent.len())
        .map(|i| {
            sent[i..]
                .iter()
                .take_while(|at| **at - sent[i] < WINDOW)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn no_budget_never_waits() {
        let mut pacing = Pacing::new(0);
        let now = Instant::now();
        assert!((0..1000).all(|_| pacing.wait(now) == Duration::ZERO));
    }

    #[test]
    fn requests_are_spaced_evenly() {
        let mut pacing = Pacing::new(20);
        let now = Instant::now();
        let waits: Vec<Duration> = (0..4).map(|_| pacing.wait(now)).collect();
        assert_eq!(
            waits,
            [0, 500, 1000, 1500].map(Duration::from_millis).to_vec()
        );
    }

    #[test]
    fn a_request_that_went_late_pushes_the_next_turn() {
        let mut pacing = Pacing::new(50);
        let start = Instant::now();
        assert_eq!(pacing.wait(start), Duration::ZERO);
        // Its turn was `start`, but it went 150 ms late.
        pacing.went(start + Duration::from_millis(150));
        let now = start + Duration::from_millis(160);
        assert_eq!(pacing.wait(now), Duration::from_millis(190));
    }

    #[test]
    fn an_idle_spell_saves_no_credit() {
        let mut pacing = Pacing::new(10);
        let start = Instant::now();
        assert_eq!(pacing.wait(start), Duration::ZERO);
        // A minute spent elsewhere: the next request goes at once, the one
        // after it a full interval later, not in a burst.
        let later = start + Duration::from_secs(60);
        assert_eq!(pacing.wait(later), Duration::ZERO);
        assert_eq!(pacing.wait(later), Duration::from_secs(1));
    }

    proptest! {
        /// However the requests come (each after some work of its own, and
        /// going some time after its turn), no window of 10 s holds more
        /// than the budget's requests.
        #[test]
        fn no_window_holds_more_than_the_budget(
            budget in 1_u32..200,
            steps in proptest::collection::vec((0_u64..300, 0_u64..100), 1..400),
        ) {
            let mut pacing = Pacing::new(budget);
            let start = Instant::now();
            let mut now = start;
            let mut sent = Vec::new();
            for (work, late) in steps {
                now += Duration::from_millis(work);
                now += pacing.wait(now) + Duration::from_millis(late);
                pacing.went(now);
                sent.push(now);
            }
            let most = most_in_a_window(&sent);
            prop_assert!(most <= budget as usize, "{most} requests within 10 s, budget {budget}");
        }
    }
}
