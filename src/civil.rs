//! Civil (proleptic Gregorian, UTC) dates from and to days since the Unix epoch.
//!
//! Howard Hinnant's `days_from_civil` / `civil_from_days`, written out by hand so no date
//! library is needed; shared by the scheduler, the templates' `time` values and regbot's `os`
//! table. Valid far beyond any range they use.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// English month names, January first.
pub(crate) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// English weekday names, Sunday first.
pub(crate) const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Days since 1970-01-01 of the civil date `year-month-day` (`month` 1..=12, `day` 1..=31).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0 .. February = 11
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of `days` since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Day of the week of `days` since 1970-01-01: 0 = Sunday .. 6 = Saturday (1970-01-01 was a
/// Thursday).
pub(crate) fn weekday_from_days(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

/// Whole seconds since the Unix epoch, rounded down (also before 1970), or `None` when out of
/// `i64` range.
pub(crate) fn unix_seconds_floor(t: SystemTime) -> Option<i64> {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).ok(),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).ok()?;
            let secs = if d.subsec_nanos() > 0 {
                secs.checked_add(1)?
            } else {
                secs
            };
            Some(-secs)
        }
    }
}

/// The instant `secs` seconds after (or, when negative, before) the Unix epoch.
pub(crate) fn from_unix_seconds(secs: i64) -> Option<SystemTime> {
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        let cases = [
            ((1970, 1, 1), 0, 4),
            ((1969, 12, 31), -1, 3),
            ((2000, 1, 1), 10_957, 6),
            ((2000, 2, 29), 11_016, 2),
            ((2000, 3, 1), 11_017, 3),
            ((2024, 1, 1), 19_723, 1),
            ((2024, 2, 29), 19_782, 4),
            ((2026, 11, 27), 20_784, 5),
            ((2100, 3, 1), 47_541, 1),
            ((1900, 3, 1), -25_508, 4),
        ];
        for ((y, m, d), days, wd) in cases {
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
            assert_eq!(civil_from_days(days), (y, m, d), "{days}");
            assert_eq!(weekday_from_days(days), wd, "{y}-{m}-{d}");
        }
        // 1700000000 is 2023-11-14T22:13:20Z.
        let secs: i64 = 1_700_000_000;
        assert_eq!(civil_from_days(secs.div_euclid(86_400)), (2023, 11, 14));
        assert_eq!(secs.rem_euclid(86_400), 22 * 3600 + 13 * 60 + 20);
    }

    #[test]
    fn round_trip_and_month_lengths() {
        let mut prev = civil_from_days(-800_000);
        for days in -799_999..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            // Each day follows the previous one: same month and day + 1, or the first of the next
            // month after the last day of the previous one.
            let (py, pm, pd) = prev;
            if d == 1 {
                let leap = (py % 4 == 0 && py % 100 != 0) || py % 400 == 0;
                let len = match pm {
                    2 if leap => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                assert_eq!(pd, len, "{py}-{pm}");
                if pm == 12 {
                    assert_eq!((y, m), (py + 1, 1));
                } else {
                    assert_eq!((y, m), (py, pm + 1));
                }
            } else {
                assert_eq!((y, m, d), (py, pm, pd + 1));
            }
            prev = (y, m, d);
        }
    }

    #[test]
    fn unix_seconds() {
        let t = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(unix_seconds_floor(t), Some(-2));
        assert_eq!(
            unix_seconds_floor(UNIX_EPOCH - Duration::from_secs(1)),
            Some(-1)
        );
        assert_eq!(
            unix_seconds_floor(UNIX_EPOCH + Duration::from_millis(1999)),
            Some(1)
        );
        assert_eq!(
            from_unix_seconds(-2),
            Some(UNIX_EPOCH - Duration::from_secs(2))
        );
        assert_eq!(
            from_unix_seconds(60),
            Some(UNIX_EPOCH + Duration::from_secs(60))
        );
    }
}
