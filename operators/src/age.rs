//! Ages as operators read them: `42s`, `5m 03s`, `2h 05m`, `3d 04h`.

/// A short human form of `secs` (negative counts as 0).
pub fn human(secs: f64) -> String {
    let secs = if secs.is_finite() { secs.max(0.0) } else { 0.0 } as u64;
    let (days, hours, minutes, seconds) =
        (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    if days > 0 {
        format!("{days}d {hours:02}h")
    } else if hours > 0 {
        format!("{hours}h {minutes:02}m")
    } else if minutes > 0 {
        format!("{minutes}m {seconds:02}s")
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn ages_keep_the_two_largest_units() {
        assert_eq!(human(-3.0), "0s");
        assert_eq!(human(f64::NAN), "0s");
        assert_eq!(human(42.7), "42s");
        assert_eq!(human(303.0), "5m 03s");
        assert_eq!(human(7_500.0), "2h 05m");
        assert_eq!(human(273_600.0), "3d 04h");
    }
}
