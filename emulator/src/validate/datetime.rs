//! pydantic's lax `datetime` from a string (speedate), as FastAPI validates a
//! `datetime | None` query parameter: RFC 3339-like text (`T`, `t`, `_` or a
//! space between date and time, seconds and fraction optional, `Z` or
//! `±HH[:]MM`), a bare date (midnight), or a Unix timestamp in seconds (or
//! milliseconds above 2e10). A value without an offset is naive; Polar's
//! database compares it as UTC.
//!
//! When none of these parse, pydantic reports why the text is not a date,
//! as `datetime_from_date_parsing` (checked with pydantic 2.13.4).

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// The parsed instant, or speedate's reason (the `ctx.error` of the 422).
pub fn parse(s: &str) -> Result<DateTime<Utc>, &'static str> {
    if let Some(t) = timestamp(s) {
        return Ok(t);
    }
    let bytes = s.as_bytes();
    let date = date_prefix(bytes)?;
    if bytes.len() == 10 {
        return Ok(Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN)));
    }
    time_part(date, &bytes[10..]).ok_or("unexpected extra characters at the end of the input")
}

/// `YYYY-MM-DD` at the start, with speedate's errors in its order.
fn date_prefix(b: &[u8]) -> Result<NaiveDate, &'static str> {
    if b.len() < 10 {
        return Err("input is too short");
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r.clone()]
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| b[r].iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let year = digits(0..4).ok_or("invalid character in year")?;
    if b[4] != b'-' {
        return Err("invalid date separator, expected `-`");
    }
    let month = digits(5..7).ok_or("invalid character in month")?;
    if b[7] != b'-' {
        return Err("invalid date separator, expected `-`");
    }
    let day = digits(8..10).ok_or("invalid character in day")?;
    if !(1..=12).contains(&month) {
        return Err("month value is outside expected range of 1-12");
    }
    NaiveDate::from_ymd_opt(year as i32, month, day).ok_or("day value is outside expected range")
}

/// What follows the date: separator, `HH:MM[:SS[.fraction]]`, offset.
fn time_part(date: NaiveDate, b: &[u8]) -> Option<DateTime<Utc>> {
    let (&sep, rest) = b.split_first()?;
    if !matches!(sep, b'T' | b't' | b'_' | b' ') {
        return None;
    }
    let two = |b: &[u8], at: usize| -> Option<u32> {
        let d = b.get(at..at + 2)?;
        d.iter()
            .all(u8::is_ascii_digit)
            .then(|| u32::from(d[0] - b'0') * 10 + u32::from(d[1] - b'0'))
    };
    let hour = two(rest, 0)?;
    if rest.get(2) != Some(&b':') {
        return None;
    }
    let minute = two(rest, 3)?;
    let mut i = 5;
    let mut second = 0;
    let mut micros = 0;
    if rest.get(i) == Some(&b':') {
        second = two(rest, i + 1)?;
        i += 3;
        if matches!(rest.get(i), Some(b'.') | Some(b',')) {
            i += 1;
            let start = i;
            while rest.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return None;
            }
            let frac = &rest[start..i];
            for k in 0..6 {
                micros = micros * 10 + frac.get(k).map_or(0, |d| u32::from(d - b'0'));
            }
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let offset_secs: i64 = match &rest[i..] {
        [] => 0,
        [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), tz @ ..] => {
            let (h, m) = match tz.len() {
                5 if tz[2] == b':' => (two(tz, 0)?, two(tz, 3)?),
                4 => (two(tz, 0)?, two(tz, 2)?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i64::from(h * 3600 + m * 60);
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let time = NaiveTime::from_hms_micro_opt(hour, minute, second, micros)?;
    let local = NaiveDateTime::new(date, time);
    Some(Utc.from_utc_datetime(&(local - Duration::seconds(offset_secs))))
}

/// A Unix timestamp: `[+-]digits[.digits]`, seconds, or milliseconds when
/// its magnitude is above 2e10.
fn timestamp(s: &str) -> Option<DateTime<Utc>> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: f64 = format!("{int}.{}", if frac.is_empty() { "0" } else { frac })
        .parse()
        .ok()?;
    let value = if s.starts_with('-') { -value } else { value };
    let seconds = if value.abs() > 2e10 {
        value / 1000.0
    } else {
        value
    };
    if !seconds.is_finite() || seconds.abs() > 253_402_300_799.0 {
        return None;
    }
    let whole = seconds.floor();
    let micros = ((seconds - whole) * 1_000_000.0).round() as u32;
    DateTime::from_timestamp(whole as i64, micros.min(999_999) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        crate::model::timestamp(&parse(s).unwrap_or_else(|e| panic!("{s}: {e}")))
    }

    #[test]
    fn accepts_what_pydantic_accepts() {
        assert_eq!(ok("2026-01-01T00:00:00Z"), "2026-01-01T00:00:00Z");
        assert_eq!(ok("2026-01-01"), "2026-01-01T00:00:00Z");
        assert_eq!(ok("2026-01-01 00:00:00+02:00"), "2025-12-31T22:00:00Z");
        assert_eq!(ok("2026-01-01t00:00:00z"), "2026-01-01T00:00:00Z");
        assert_eq!(ok("2026-01-01_00:00"), "2026-01-01T00:00:00Z");
        assert_eq!(ok("2026-01-01T00:00:00+0200"), "2025-12-31T22:00:00Z");
        assert_eq!(ok("2026-01-01T00:00:00-00:00"), "2026-01-01T00:00:00Z");
        assert_eq!(
            ok("2026-01-01T00:00:00.123456789Z"),
            "2026-01-01T00:00:00.123456Z"
        );
        assert_eq!(ok("2026-01-01T00:00:00.5"), "2026-01-01T00:00:00.500000Z");
        assert_eq!(ok("1767225600"), "2026-01-01T00:00:00Z");
        assert_eq!(ok("1767225600000"), "2026-01-01T00:00:00Z");
        assert_eq!(ok("+1767225600"), "2026-01-01T00:00:00Z");
        assert_eq!(ok("20260101"), "1970-08-23T11:48:21Z");
        assert_eq!(ok("2024-02-29"), "2024-02-29T00:00:00Z");
    }

    #[test]
    fn refuses_with_pydantics_reasons() {
        for (s, why) in [
            ("x", "input is too short"),
            ("", "input is too short"),
            ("2026-1-1", "input is too short"),
            ("1e3", "input is too short"),
            ("１２３", "input is too short"),
            (
                "2026-13-01",
                "month value is outside expected range of 1-12",
            ),
            (
                "2026-00-01",
                "month value is outside expected range of 1-12",
            ),
            ("2026-02-30", "day value is outside expected range"),
            ("2026-01-00", "day value is outside expected range"),
            ("2026/01/01", "invalid date separator, expected `-`"),
            ("2026-0a-01", "invalid character in month"),
            ("2026-01-0a", "invalid character in day"),
            (" 2026-01-01", "invalid character in year"),
            (
                "12345678901234567890",
                "invalid date separator, expected `-`",
            ),
            (
                "2026-01-01T25:00:00Z",
                "unexpected extra characters at the end of the input",
            ),
            (
                "2026-01-01T00",
                "unexpected extra characters at the end of the input",
            ),
            (
                "2026-01-01T00:00:60",
                "unexpected extra characters at the end of the input",
            ),
            (
                "2026-01-01T00:00:00+24:00",
                "unexpected extra characters at the end of the input",
            ),
            (
                "2026-01-01T00:00:00 Z",
                "unexpected extra characters at the end of the input",
            ),
            (
                "2026-01-01X00:00:00",
                "unexpected extra characters at the end of the input",
            ),
        ] {
            assert_eq!(parse(s), Err(why), "{s:?}");
        }
    }
}
