//! Cron schedules (croner) evaluated in UTC.

use std::str::FromStr as _;

use chrono::{DateTime, Utc};

/// Parse a cron expression; the error text is croner's, meant for the designer.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    croner::Cron::from_str(expr.trim()).map_err(|e| e.to_string())
}

/// The first fire time strictly after `after`, if any.
pub fn next_fire(cron: &croner::Cron, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(&after, false).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn weekday_mornings() {
        let cron = parse_cron("0 9 * * MON-FRI").unwrap();
        // 2026-11-27 is a Friday; the next fire after Friday 10:00 is Monday 09:00.
        let fri = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
        assert_eq!(
            next_fire(&cron, fri).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap()
        );
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "every monday", "61 * * * *", "* * * *", "0 25 * * *"] {
            assert!(parse_cron(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
