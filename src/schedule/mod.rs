//! Schedules for `regsync server` and `regbot server`: cron expressions, `@every` intervals, and a
//! plain sleep-loop [`Runner`] that starts jobs when they are due.
//!
//! [`Schedule::parse`] reads the syntax regclient accepts (it uses `robfig/cron`'s standard
//! parser):
//!
//! * five fields, `minute hour day-of-month month day-of-week`, each a comma list of `*`, `n`,
//!   `a-b`, with an optional step `/n` (`*/15`, `10-40/10`; `a/n` means `a-max/n`); months may be
//!   written `JAN`..`DEC` and weekdays `SUN`..`SAT` (any case); both `0` and `7` are Sunday; `?`
//!   is accepted for `*` in the two day fields;
//! * `@hourly`, `@daily` / `@midnight`, `@weekly`, `@monthly`, `@yearly` / `@annually`;
//! * `@every <duration>` with a Go duration (`1h30m`, `5m`, `1.5h`, `500ms`).
//!
//! When both day fields are restricted, a day matches when **either** matches (Vixie cron's rule:
//! `0 0 13 * FRI` runs on every 13th and every Friday). A day field counts as unrestricted when it
//! contains a bare `*` or `?` (`*/2` is a restriction, as in `robfig/cron`).
//!
//! **Time zone**: cron fields are matched against UTC. regsync and regbot run in containers whose
//! local time is UTC, and the library reads no environment, so there is no local-time lookup; a
//! `TZ=` or `CRON_TZ=` prefix is refused rather than silently ignored.
//!
//! Computing the next run is pure: [`Schedule::next_after`] takes `now` as an argument.

mod runner;

pub use runner::{
    Event, EventSink, Job, JobFn, Runner, StopFlag, Summary, DEFAULT_GRACE, DEFAULT_SLICE,
};

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::config::GoDuration;
use crate::{Error, ErrorKind, Result};

use crate::civil::{
    civil_from_days, days_from_civil, from_unix_seconds, unix_seconds_floor, weekday_from_days,
};

/// How far ahead [`Schedule::next_after`] searches: a little over eight years, the longest gap
/// between two runs any valid expression can have (February 29th across a skipped century leap
/// year, e.g. 2096 to 2104). `None` within this bound means the expression never matches.
const SEARCH_DAYS: i64 = 8 * 366 + 31;

/// When a job runs: a cron expression (matched in UTC) or a fixed interval.
#[derive(Clone, PartialEq, Eq)]
pub struct Schedule {
    kind: Kind,
    /// The text it was parsed from (or `@every <interval>`), for `Display`.
    source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Cron(Cron),
    Every(Duration),
}

/// A parsed five-field cron expression, each field a bit set.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cron {
    /// Bits 0..=59.
    minutes: u64,
    /// Bits 0..=23.
    hours: u32,
    /// Bits 1..=31.
    days_of_month: u32,
    /// Bits 1..=12.
    months: u16,
    /// Bits 0..=6, Sunday = 0.
    days_of_week: u8,
    /// The day-of-month field contains a bare `*` or `?`.
    dom_star: bool,
    /// The day-of-week field contains a bare `*` or `?`.
    dow_star: bool,
}

impl Schedule {
    /// Parses a cron expression, a `@` descriptor, or `@every <duration>` (see the module docs).
    ///
    /// Errors are [`ErrorKind::InvalidInput`] and name the expression and the part that is wrong.
    pub fn parse(expr: &str) -> Result<Schedule> {
        let bad = |what: String| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("invalid schedule {expr:?}: {what}"),
            )
        };
        let text = expr.trim();
        if text.is_empty() {
            return Err(bad("empty expression".into()));
        }
        let first = text.split_whitespace().next().unwrap_or_default();
        if let Some(key) = first
            .split_once('=')
            .map(|(key, _)| key)
            .filter(|key| key.eq_ignore_ascii_case("TZ") || key.eq_ignore_ascii_case("CRON_TZ"))
        {
            return Err(bad(format!(
                "time zone prefix {key}= is not supported; schedules are evaluated in UTC"
            )));
        }
        if let Some(descriptor) = first.strip_prefix('@') {
            let args: Vec<&str> = text.split_whitespace().skip(1).collect();
            let descriptor = descriptor.to_ascii_lowercase();
            if descriptor == "every" {
                let [arg] = args[..] else {
                    return Err(bad(format!(
                        "@every takes exactly one duration (like 1h30m), got {}",
                        args.len()
                    )));
                };
                let d = GoDuration::parse(arg)
                    .map_err(|_| bad(format!("@every: invalid duration {arg:?}")))?
                    .0;
                if d.is_zero() {
                    return Err(bad(format!("@every: duration {arg:?} must be positive")));
                }
                return Ok(Schedule {
                    kind: Kind::Every(d),
                    source: text.split_whitespace().collect::<Vec<_>>().join(" "),
                });
            }
            let fields = match descriptor.as_str() {
                "hourly" => "0 * * * *",
                "daily" | "midnight" => "0 0 * * *",
                "weekly" => "0 0 * * 0",
                "monthly" => "0 0 1 * *",
                "yearly" | "annually" => "0 0 1 1 *",
                _ => {
                    return Err(bad(format!(
                        "unknown descriptor @{descriptor} (expected @hourly, @daily, @midnight, \
                         @weekly, @monthly, @yearly, @annually or @every <duration>)"
                    )))
                }
            };
            if !args.is_empty() {
                return Err(bad(format!("@{descriptor} takes no arguments")));
            }
            let cron = Cron::parse(fields).map_err(bad)?;
            return Ok(Schedule {
                kind: Kind::Cron(cron),
                source: text.to_string(),
            });
        }
        let cron = Cron::parse(text).map_err(bad)?;
        Ok(Schedule {
            kind: Kind::Cron(cron),
            source: text.split_whitespace().collect::<Vec<_>>().join(" "),
        })
    }

    /// A schedule that runs every `interval` (regsync/regbot `interval`), the same as
    /// `@every <interval>`. A zero interval is refused.
    pub fn every(interval: Duration) -> Result<Schedule> {
        if interval.is_zero() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "invalid interval 0s: must be positive",
            ));
        }
        Ok(Schedule {
            kind: Kind::Every(interval),
            source: format!("@every {}", GoDuration(interval)),
        })
    }

    /// The interval of an `@every` schedule, `None` for cron expressions.
    pub fn interval(&self) -> Option<Duration> {
        match self.kind {
            Kind::Every(d) => Some(d),
            Kind::Cron(_) => None,
        }
    }

    /// The next run strictly after `now`.
    ///
    /// Cron expressions give the first matching whole minute (UTC) after `now`; `None` when the
    /// expression never matches (`0 0 30 2 *`) or the time is out of range. `@every d` gives
    /// `now + d` (no rounding; a runner calls this with the previous scheduled time to keep a
    /// steady rhythm).
    pub fn next_after(&self, now: SystemTime) -> Option<SystemTime> {
        match &self.kind {
            Kind::Every(d) => now.checked_add(*d),
            Kind::Cron(c) => c.next_after(now),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.source)
    }
}

impl std::str::FromStr for Schedule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Schedule> {
        Schedule::parse(s)
    }
}

/// One cron field's bounds and names.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// The end of `*` and `a/n` (day-of-week: 6, so `1/2` does not add Sunday as 7).
    open_max: u32,
    /// Names for `min`, `min + 1`, ...
    names: &'static [&'static str],
    /// `?` may stand for `*`.
    question: bool,
}

const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    open_max: 59,
    names: &[],
    question: false,
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    open_max: 23,
    names: &[],
    question: false,
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    open_max: 31,
    names: &[],
    question: true,
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    open_max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    question: false,
};
/// 7 is Sunday as well; folded onto 0 after parsing.
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
    open_max: 6,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    question: true,
};

impl Field {
    /// Parses one field into a bit set (bit `n` for value `n`) and whether it contains a bare
    /// `*`/`?`. The error names the field and the offending text.
    fn parse(&self, text: &str) -> std::result::Result<(u64, bool), String> {
        let err = |what: String| format!("{} field {text:?}: {what}", self.name);
        let mut bits = 0u64;
        let mut star = false;
        for item in text.split(',') {
            if item.is_empty() {
                return Err(err("empty list item".into()));
            }
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => {
                    let step: u32 = parse_number(s)
                        .ok_or_else(|| err(format!("step {s:?} is not a number")))?;
                    if step == 0 {
                        return Err(err("step must be at least 1".into()));
                    }
                    (r, Some(step))
                }
                None => (item, None),
            };
            let (lo, hi) = if range == "*" || (self.question && range == "?") {
                if step.is_none_or(|s| s == 1) {
                    star = true;
                }
                (self.min, self.open_max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(a).map_err(err)?, self.value(b).map_err(err)?);
                if a > b {
                    return Err(err(format!("range {range:?} runs backwards")));
                }
                (a, b)
            } else {
                let a = self.value(range).map_err(err)?;
                // `a/n` runs from a to the end of the field.
                (
                    a,
                    if step.is_some() {
                        self.open_max.max(a)
                    } else {
                        a
                    },
                )
            };
            let step = step.unwrap_or(1) as usize;
            for v in (lo..=hi).step_by(step) {
                bits |= 1 << v;
            }
        }
        Ok((bits, star))
    }

    /// One value: a number in range or (for month and weekday) a three-letter name.
    fn value(&self, s: &str) -> std::result::Result<u32, String> {
        if let Some(i) = self.names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(self.min + i as u32);
        }
        let Some(v) = parse_number(s) else {
            return Err(if self.names.is_empty() {
                format!("{s:?} is not a number")
            } else {
                format!(
                    "{s:?} is neither a number nor a name ({}-{})",
                    self.names[0],
                    self.names[self.names.len() - 1]
                )
            });
        };
        if v < self.min || v > self.max {
            return Err(format!("{v} is out of range {}-{}", self.min, self.max));
        }
        Ok(v)
    }
}

/// A small unsigned decimal number (ASCII digits only, no sign).
fn parse_number(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Cron {
    fn parse(text: &str) -> std::result::Result<Cron, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields[..] else {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), got {}",
                fields.len()
            ));
        };
        let (minutes, _) = MINUTE.parse(minute)?;
        let (hours, _) = HOUR.parse(hour)?;
        let (days_of_month, dom_star) = DAY_OF_MONTH.parse(dom)?;
        let (months, _) = MONTH.parse(month)?;
        let (mut dow_bits, dow_star) = DAY_OF_WEEK.parse(dow)?;
        if dow_bits & (1 << 7) != 0 {
            dow_bits = (dow_bits & !(1 << 7)) | 1;
        }
        Ok(Cron {
            minutes,
            hours: hours as u32,
            days_of_month: days_of_month as u32,
            months: months as u16,
            days_of_week: dow_bits as u8,
            dom_star,
            dow_star,
        })
    }

    /// Whether the day `days` since the epoch (the `day`th of a month that may run) may run.
    fn day_matches(&self, days: i64, day: u32) -> bool {
        let dom = self.days_of_month & (1 << day) != 0;
        let dow = self.days_of_week & (1 << weekday_from_days(days)) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    fn next_after(&self, now: SystemTime) -> Option<SystemTime> {
        // The first whole minute strictly after `now`.
        let start = unix_seconds_floor(now)?.div_euclid(60).checked_add(1)?;
        let first_day = start.div_euclid(1440);
        let first_minute = start.rem_euclid(1440) as u32;
        let end = first_day.checked_add(SEARCH_DAYS)?;
        let mut day = first_day;
        while day < end {
            let (year, month, dom) = civil_from_days(day);
            if self.months & (1 << month) == 0 {
                // Skip the rest of a month that never runs.
                day = if month == 12 {
                    days_from_civil(year + 1, 1, 1)
                } else {
                    days_from_civil(year, month + 1, 1)
                };
                continue;
            }
            if !self.day_matches(day, dom) {
                day += 1;
                continue;
            }
            let (from_hour, from_minute) = if day == first_day {
                (first_minute / 60, first_minute % 60)
            } else {
                (0, 0)
            };
            for hour in from_hour..24 {
                if self.hours & (1 << hour) == 0 {
                    continue;
                }
                let from = if hour == from_hour { from_minute } else { 0 };
                let later = self.minutes >> from;
                if later != 0 {
                    let minute = from + later.trailing_zeros();
                    let secs = day
                        .checked_mul(86_400)?
                        .checked_add(i64::from(hour * 3600 + minute * 60))?;
                    return from_unix_seconds(secs);
                }
            }
            day += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests;
