//! The time window a statistics request asks for: `from` and `to` as UTC calendar dates
//! (`YYYY-MM-DD`, both days included), checked before any query, and the bucket width the
//! charts use for it. Dates are converted with the proleptic Gregorian calendar (no time
//! zone data needed: everything is UTC).

use serde::Deserialize;

use crate::problem::ApiError;

pub const DAY_MS: i64 = 86_400_000;
pub const HOUR_MS: i64 = 3_600_000;
/// Longest window one request may ask for, in days: a year and a day.
pub const MAX_DAYS: i64 = 366;
/// Days shown when the request names no window.
pub const DEFAULT_DAYS: i64 = 30;
/// Windows up to this many days are charted by the hour.
const HOURLY_UP_TO_DAYS: i64 = 2;

/// The query string of the statistics page and its JSON form.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowQuery {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A checked window: `[from, to)` in Unix milliseconds, whole UTC days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: i64,
    pub to: i64,
}

impl Window {
    /// Buckets of an hour for short windows, else of a day.
    pub fn bucket_ms(&self) -> i64 {
        if self.to - self.from <= HOURLY_UP_TO_DAYS * DAY_MS {
            HOUR_MS
        } else {
            DAY_MS
        }
    }

    pub fn buckets(&self) -> usize {
        usize::try_from((self.to - self.from) / self.bucket_ms()).unwrap_or(0)
    }

    /// The first and last day, as `YYYY-MM-DD`.
    pub fn dates(&self) -> (String, String) {
        (date_of(self.from), date_of(self.to - DAY_MS))
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count (Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM-DD` of the UTC day holding `millis`.
pub fn date_of(millis: i64) -> String {
    let (y, m, d) = civil_from_days(millis.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:00` of the UTC hour holding `millis`.
pub fn hour_of(millis: i64) -> String {
    let hour = millis.rem_euclid(DAY_MS) / HOUR_MS;
    format!("{} {hour:02}:00", date_of(millis))
}

/// Parses a `YYYY-MM-DD` date between years 2000 and 2999 into its day number.
fn parse_date(field: &str, text: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "{field}: a date as YYYY-MM-DD between 2000-01-01 and 2999-12-31."
        ))
    };
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return Err(bad());
    }
    let number = |range: std::ops::Range<usize>| -> Result<i64, ApiError> {
        let part = text.get(range).ok_or_else(bad)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse().map_err(|_| bad())
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if !(2000..=2999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
    {
        return Err(bad());
    }
    Ok(days_from_civil(year, month, day))
}

/// The window a query names. Missing ends default to the [`DEFAULT_DAYS`] days ending with
/// the day of `default_end` (the later of now and the newest recorded event, so an
/// accelerated demo clock stays in view).
pub fn window(query: &WindowQuery, default_end: i64) -> Result<Window, ApiError> {
    let last_day = match &query.to {
        Some(text) => parse_date("to", text)?,
        None => match &query.from {
            Some(from) => parse_date("from", from)? + DEFAULT_DAYS - 1,
            None => default_end.div_euclid(DAY_MS),
        },
    };
    let first_day = match &query.from {
        Some(text) => parse_date("from", text)?,
        None => last_day - (DEFAULT_DAYS - 1),
    };
    if first_day > last_day {
        return Err(ApiError::bad_request(
            "from: the first day must not be after the last day (to).",
        ));
    }
    let days = last_day - first_day + 1;
    if days > MAX_DAYS {
        return Err(ApiError::bad_request(format!(
            "from/to: {days} days asked; at most {MAX_DAYS} days at a time."
        )));
    }
    Ok(Window {
        from: first_day * DAY_MS,
        to: (last_day + 1) * DAY_MS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_day_numbers() {
        for text in ["2000-01-01", "2024-02-29", "2026-11-29", "2999-12-31"] {
            let days = parse_date("from", text).unwrap();
            assert_eq!(date_of(days * DAY_MS), text);
        }
        assert!(parse_date("from", "1970-01-01").is_err());
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(hour_of(DAY_MS + 5 * HOUR_MS + 1), "1970-01-02 05:00");
    }

    #[test]
    fn malformed_dates_are_refused() {
        for text in [
            "",
            "2026-1-01",
            "2026-13-01",
            "2026-02-30",
            "2025-02-29",
            "20260101",
            "+026-01-01",
            "2026-01-0a",
            "2026-01-01x",
            "３０２６-01-01",
            "99999-01-01",
        ] {
            assert!(parse_date("to", text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn windows_are_ordered_bounded_and_bucketed() {
        let q = |f: Option<&str>, t: Option<&str>| WindowQuery {
            from: f.map(str::to_owned),
            to: t.map(str::to_owned),
        };
        let w = window(&q(Some("2026-01-01"), Some("2026-01-01")), 0).unwrap();
        assert_eq!(
            (w.to - w.from, w.bucket_ms(), w.buckets()),
            (DAY_MS, HOUR_MS, 24)
        );
        let w = window(&q(Some("2026-01-01"), Some("2026-12-31")), 0).unwrap();
        assert_eq!((w.bucket_ms(), w.buckets()), (DAY_MS, 365));
        assert!(window(&q(Some("2026-01-02"), Some("2026-01-01")), 0).is_err());
        assert!(window(&q(Some("2000-01-01"), Some("2999-12-31")), 0).is_err());
        let end = parse_date("to", "2026-11-29").unwrap() * DAY_MS + 5;
        let w = window(&q(None, None), end).unwrap();
        assert_eq!(
            w.dates(),
            ("2026-10-31".to_owned(), "2026-11-29".to_owned())
        );
    }
}
