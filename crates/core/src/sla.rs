//! SLA arithmetic: when a task is due, counting only working time when a calendar is set.

use chrono::{
    DateTime, Datelike as _, Duration, FixedOffset, NaiveTime, TimeZone as _, Utc, Weekday,
};

use crate::blueprint::WorkingHours;

/// A validated working-hours calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    days: [bool; 7],
    start: NaiveTime,
    end: NaiveTime,
    offset: FixedOffset,
}

impl Calendar {
    /// Check a blueprint's `working_hours`; the error says which part is wrong.
    pub fn parse(w: &WorkingHours) -> Result<Self, String> {
        let mut days = [false; 7];
        for d in &w.days {
            let day: Weekday = d.parse().map_err(|_| {
                format!("`{d}` is not a day; use mon, tue, wed, thu, fri, sat or sun")
            })?;
            days[day.num_days_from_monday() as usize] = true;
        }
        if !days.contains(&true) {
            return Err("`days` lists no working day".into());
        }
        let time = |t: &str| {
            NaiveTime::parse_from_str(t, "%H:%M")
                .map_err(|_| format!("`{t}` is not a time; write HH:MM, e.g. 09:00"))
        };
        let (start, end) = (time(&w.start)?, time(&w.end)?);
        if start >= end {
            return Err(format!(
                "the working day must start before it ends ({} is not before {})",
                w.start, w.end
            ));
        }
        let offset = parse_offset(&w.utc_offset)?;
        Ok(Self {
            days,
            start,
            end,
            offset,
        })
    }

    fn works_on(&self, day: Weekday) -> bool {
        self.days[day.num_days_from_monday() as usize]
    }
}

fn parse_offset(text: &str) -> Result<FixedOffset, String> {
    let bad = || format!("`{text}` is not a UTC offset; write +HH:MM or -HH:MM, e.g. +01:00");
    let (sign, rest) = match text.split_at_checked(1) {
        Some(("+", r)) => (1, r),
        Some(("-", r)) => (-1, r),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 14 || m > 59 {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

/// When a task created at `start` with an SLA of `sla` is due.
pub fn due_at(start: DateTime<Utc>, sla: Duration, calendar: Option<&Calendar>) -> DateTime<Utc> {
    let Some(cal) = calendar else {
        return start + sla;
    };
    let mut now = start.with_timezone(&cal.offset);
    let mut left = sla;
    // A calendar with at least one working day reaches the end within a bounded number of
    // days; the bound only guards against a pathological SLA (years of working time).
    for _ in 0..(366 * 20) {
        let date = now.date_naive();
        let open = cal
            .offset
            .from_local_datetime(&date.and_time(cal.start))
            .single();
        let close = cal
            .offset
            .from_local_datetime(&date.and_time(cal.end))
            .single();
        if let (Some(open), Some(close)) = (open, close)
            && cal.works_on(now.weekday())
            && now < close
        {
            let from = now.max(open);
            let available = close - from;
            if left <= available {
                return (from + left).with_timezone(&Utc);
            }
            left -= available;
        }
        // Move to the start of the next day.
        let next = date.succ_opt().unwrap_or(date);
        now = cal
            .offset
            .from_local_datetime(&next.and_time(NaiveTime::MIN))
            .single()
            .unwrap_or(now + Duration::days(1));
    }
    start + sla
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cal(days: &[&str], start: &str, end: &str, offset: &str) -> Calendar {
        Calendar::parse(&WorkingHours {
            days: days.iter().map(|d| (*d).to_owned()).collect(),
            start: start.into(),
            end: end.into(),
            utc_offset: offset.into(),
        })
        .unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn due_times() {
        let week = cal(
            &["mon", "tue", "wed", "thu", "fri"],
            "09:00",
            "17:00",
            "+00:00",
        );
        let paris = cal(
            &["mon", "tue", "wed", "thu", "fri"],
            "09:00",
            "17:00",
            "+01:00",
        );
        // (created, sla hours, calendar, due)
        let cases: &[(&str, i64, Option<&Calendar>, &str)] = &[
            ("2026-11-27T16:00:00Z", 4, None, "2026-11-27T20:00:00Z"),
            // Friday 16:00 + 4h of work: 1h on Friday, 3h on Monday.
            (
                "2026-11-27T16:00:00Z",
                4,
                Some(&week),
                "2026-11-30T12:00:00Z",
            ),
            // Saturday: the clock starts on Monday morning.
            (
                "2026-11-28T10:00:00Z",
                2,
                Some(&week),
                "2026-11-30T11:00:00Z",
            ),
            // Before opening: starts at 09:00.
            (
                "2026-11-25T07:00:00Z",
                1,
                Some(&week),
                "2026-11-25T10:00:00Z",
            ),
            // Exactly a day of work from the opening.
            (
                "2026-11-25T09:00:00Z",
                8,
                Some(&week),
                "2026-11-25T17:00:00Z",
            ),
            // 16 h from Wednesday noon: Wed 5h, Thu 8h, Fri 3h.
            (
                "2026-11-25T12:00:00Z",
                16,
                Some(&week),
                "2026-11-27T12:00:00Z",
            ),
            // Paris hours (UTC+1): 16:30 UTC is 17:30 local, after closing; next day 09:00 local = 08:00 UTC.
            (
                "2026-11-25T16:30:00Z",
                1,
                Some(&paris),
                "2026-11-26T09:00:00Z",
            ),
        ];
        for (created, hours, calendar, due) in cases {
            assert_eq!(
                due_at(t(created), Duration::hours(*hours), *calendar),
                t(due),
                "{created} + {hours}h"
            );
        }
    }

    #[test]
    fn bad_calendars_say_what_is_wrong() {
        let w = |days: &[&str], start: &str, end: &str, off: &str| WorkingHours {
            days: days.iter().map(|d| (*d).to_owned()).collect(),
            start: start.into(),
            end: end.into(),
            utc_offset: off.into(),
        };
        let cases = [
            (
                w(&["funday"], "09:00", "17:00", "+00:00"),
                "`funday` is not a day",
            ),
            (w(&[], "09:00", "17:00", "+00:00"), "no working day"),
            (w(&["mon"], "9am", "17:00", "+00:00"), "`9am` is not a time"),
            (
                w(&["mon"], "17:00", "09:00", "+00:00"),
                "must start before it ends",
            ),
            (
                w(&["mon"], "09:00", "17:00", "CET"),
                "`CET` is not a UTC offset",
            ),
        ];
        for (input, expected) in cases {
            let err = Calendar::parse(&input).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
    }
}
