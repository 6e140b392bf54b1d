//! `--since TIME`: an RFC 3339 instant (`2026-11-24T10:00:00Z`), a date
//! (`2026-11-24`, midnight UTC) or an age (`90s`, `30m`, `12h`, `7d`).

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

/// Parse `text` relative to `now`. The error says what is accepted.
pub fn parse(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    let unit_at = text.len().saturating_sub(1);
    let (number, unit) = text.split_at(unit_at);
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => 0,
    };
    match number.parse::<i64>() {
        Ok(n) if seconds_per_unit > 0 && n >= 0 => n
            .checked_mul(seconds_per_unit)
            .and_then(TimeDelta::try_seconds)
            .and_then(|age| now.checked_sub_signed(age))
            .ok_or_else(|| format!("'{text}' reaches too far back")),
        _ => Err(format!(
            "'{text}' is not a time: give an RFC 3339 instant (2026-11-24T10:00:00Z), \
             a date (2026-11-24) or an age (90s, 30m, 12h, 7d)"
        )),
    }
}

/// For clap: parse relative to the current time.
pub fn arg(text: &str) -> Result<DateTime<Utc>, String> {
    parse(text, Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap()
    }

    #[test]
    fn instants_dates_and_ages() {
        let at = |text| parse(text, now()).map(|t| t.to_rfc3339());
        assert_eq!(
            at("2026-11-24T10:00:00+02:00"),
            Ok("2026-11-24T08:00:00+00:00".into())
        );
        assert_eq!(at("2026-11-20"), Ok("2026-11-20T00:00:00+00:00".into()));
        assert_eq!(at("90s"), Ok("2026-11-24T11:58:30+00:00".into()));
        assert_eq!(at("30m"), Ok("2026-11-24T11:30:00+00:00".into()));
        assert_eq!(at("12h"), Ok("2026-11-24T00:00:00+00:00".into()));
        assert_eq!(at("7d"), Ok("2026-11-17T12:00:00+00:00".into()));
    }

    #[test]
    fn anything_else_is_refused_with_what_is_accepted() {
        for bad in [
            "",
            "yesterday",
            "5w",
            "-3h",
            "h",
            "2026-13-01",
            "99999999999999999d",
        ] {
            let error = parse(bad, now()).err().unwrap_or_default();
            assert!(!error.is_empty(), "{bad:?} was accepted");
        }
        assert!(
            parse("soon", now())
                .err()
                .unwrap_or_default()
                .contains("an age (90s, 30m, 12h, 7d)")
        );
    }
}
