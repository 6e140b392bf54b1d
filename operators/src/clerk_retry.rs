//! When to try a request to Clerk's Backend API again, and after how long
//! (pure): a rate-limited answer (429) waits as its `Retry-After` asks
//! (seconds or an HTTP date) without using up the tries; no answer or a
//! server error backs off; anything else is not tried again.

use clerk_sync_domain::backoff::Backoff;
use std::time::{Duration, SystemTime};

/// Tries of one request before giving up.
pub const ATTEMPTS: u32 = 5;
/// Between tries of a request Clerk could not answer: 250 ms, doubling.
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(64));
/// The longest wait honoured from `Retry-After`.
const LONGEST_WAIT: Duration = Duration::from_secs(60);
/// Rate-limited answers (429) in a row before giving up: they do not use up
/// [`ATTEMPTS`], but Clerk refusing for half an hour is an outage.
pub const RATE_LIMITED_TRIES: u32 = 30;

/// The tries of one request so far: failures, and rate-limited answers in
/// a row, which are counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tries {
    /// Tries that failed other than by a 429, the current one included.
    pub attempt: u32,
    /// 429s in a row, the current one included.
    pub rate_limited: u32,
}

impl Default for Tries {
    fn default() -> Self {
        Self {
            attempt: 1,
            rate_limited: 0,
        }
    }
}

impl Tries {
    /// After a failed try (`status` None: no answer at all; `retry_after`
    /// as Clerk asked), how long to wait before the next, or None when not
    /// to try again. Counts the try.
    pub fn next(&mut self, status: Option<u16>, retry_after: Option<Duration>) -> Option<Duration> {
        if status == Some(429) {
            self.rate_limited += 1;
            if self.rate_limited >= RATE_LIMITED_TRIES {
                return None;
            }
            let exponential = BACKOFF.after(self.rate_limited - 1);
            return Some(retry_after.unwrap_or(exponential).min(LONGEST_WAIT));
        }
        self.rate_limited = 0;
        let wait = backoff(self.attempt, status)?;
        self.attempt += 1;
        Some(wait)
    }
}

/// How long to wait before try `attempt + 1` after a failed try `attempt`
/// that was not rate-limited (`status` None: no answer at all), or None
/// when not to try again.
pub fn backoff(attempt: u32, status: Option<u16>) -> Option<Duration> {
    if attempt >= ATTEMPTS {
        return None;
    }
    match status {
        None | Some(500..=599) => Some(BACKOFF.after(attempt.saturating_sub(1))),
        Some(_) => None,
    }
}

/// A `Retry-After` value in either of its forms: seconds, or an HTTP date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`, and the two obsolete forms), as the
/// wait from `now`; a date in the past is no wait. None when unreadable.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value)
        .map(|date| date.with_timezone(&chrono::Utc))
        .or_else(|_| {
            ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
                .iter()
                .find_map(|format| chrono::NaiveDateTime::parse_from_str(value, format).ok())
                .map(|naive| naive.and_utc())
                .ok_or(())
        })
        .ok()?;
    let now = chrono::DateTime::<chrono::Utc>::from(now);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_back_off_and_other_answers_give_up() {
        assert_eq!(backoff(1, Some(503)), Some(Duration::from_millis(250)));
        assert_eq!(backoff(3, None), Some(Duration::from_millis(1000)));
        assert_eq!(backoff(ATTEMPTS, Some(503)), None);
        assert_eq!(backoff(1, Some(400)), None);
        assert_eq!(backoff(1, Some(422)), None);
    }

    #[test]
    fn rate_limits_wait_as_asked_without_using_up_the_tries() {
        let mut tries = Tries::default();
        let three = Some(Duration::from_secs(3));
        for _ in 0..ATTEMPTS * 2 {
            assert_eq!(tries.next(Some(429), three), three);
        }
        assert_eq!(tries.attempt, 1, "429s use no try");
        assert_eq!(
            tries.next(Some(429), Some(Duration::from_secs(3600))),
            Some(LONGEST_WAIT)
        );
        // Without a readable Retry-After: backoff by 429s in a row.
        let mut tries = Tries::default();
        assert_eq!(
            tries.next(Some(429), None),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            tries.next(Some(429), None),
            Some(Duration::from_millis(500))
        );
        // A server error in between ends the run of 429s and uses a try.
        assert_eq!(
            tries.next(Some(503), None),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            tries,
            Tries {
                attempt: 2,
                rate_limited: 0
            }
        );
        // Clerk refusing for ever is given up on.
        let mut tries = Tries::default();
        let waits = (0..RATE_LIMITED_TRIES)
            .map_while(|_| tries.next(Some(429), three))
            .count();
        assert_eq!(waits, RATE_LIMITED_TRIES as usize - 1);
    }

    #[test]
    fn retry_after_is_read_in_both_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_757); // Sun, 06 Nov 1994 08:49:17 GMT
        assert_eq!(retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        let in_20_s = Some(Duration::from_secs(20));
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), in_20_s);
        assert_eq!(retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now), in_20_s);
        assert_eq!(retry_after("Sun Nov  6 08:49:37 1994", now), in_20_s);
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date passed is no wait"
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-1", now), None);
    }
}
