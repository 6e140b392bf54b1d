//! What the database can hold: the limits the parser enforces so that an
//! event it accepts never fails in PostgreSQL (or in the app's Prisma
//! client reading the rows). An event that breaks one is judged `failed`
//! with the reason, before any database work, instead of failing a whole
//! batch and ending in the dead letters.
//!
//! - Text: PostgreSQL's `text` and `jsonb` cannot hold the NUL character.
//! - Ids: a Clerk user id is a key of btree indexes (whose entries must
//!   stay under about 2,700 bytes) and the payload of a `NOTIFY` (under
//!   8,000 bytes); Clerk's ids are about 32 bytes, so at most 255 (the
//!   ingest's limit for an svix-id too).
//! - E-mail addresses are a key of a unique btree index; no address is
//!   longer than 254 bytes (RFC 5321), so at most 512.
//! - Times: the years 1 to 9999, which `timestamp(3)`, `timestamptz` and
//!   JavaScript's `Date` all hold.

use std::ops::Range;

/// Longest Clerk user id or svix-id stored, in bytes.
pub const MAX_ID_BYTES: usize = 255;
/// Longest e-mail address stored, in bytes.
pub const MAX_EMAIL_BYTES: usize = 512;
/// Unix milliseconds from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z.
pub const TIMES_MS: Range<i64> = -62_135_596_800_000..253_402_300_800_000;

/// Why `text` cannot be stored, if it cannot.
pub fn text_problem(text: &str) -> Option<String> {
    text.contains('\0')
        .then(|| "contains a NUL character, which PostgreSQL cannot store".to_owned())
}

/// Why `text`, at most `max_bytes` long, cannot be stored, if it cannot.
pub fn key_problem(text: &str, max_bytes: usize) -> Option<String> {
    if text.len() > max_bytes {
        return Some(format!(
            "is {} bytes long; at most {max_bytes} can be stored",
            text.len()
        ));
    }
    text_problem(text)
}

/// Why the time `ms` (Unix milliseconds) cannot be stored, if it cannot.
pub fn time_problem(ms: i64) -> Option<&'static str> {
    (!TIMES_MS.contains(&ms))
        .then_some("is outside the years 1 to 9999, which PostgreSQL and Prisma store")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_refused() {
        assert_eq!(text_problem("Ada"), None);
        assert!(text_problem("A\0da").is_some_and(|p| p.contains("NUL")));
    }

    #[test]
    fn keys_are_bounded_in_bytes() {
        assert_eq!(key_problem(&"u".repeat(255), MAX_ID_BYTES), None);
        assert_eq!(
            key_problem(&"u".repeat(256), MAX_ID_BYTES).as_deref(),
            Some("is 256 bytes long; at most 255 can be stored")
        );
        assert!(key_problem("u\0", MAX_ID_BYTES).is_some());
    }

    #[test]
    fn times_are_the_years_1_to_9999() {
        for ok in [0, 1_700_000_000_000, TIMES_MS.start, TIMES_MS.end - 1] {
            assert_eq!(time_problem(ok), None, "{ok}");
        }
        for bad in [TIMES_MS.start - 1, TIMES_MS.end, i64::MAX, i64::MIN] {
            assert!(time_problem(bad).is_some(), "{bad}");
        }
    }
}
