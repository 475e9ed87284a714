//! A small stand-in for Go's `time` package: `time.Now`, `time.Parse`, and `time.Time` with
//! `.Unix`, `.Format` and friends. Civil dates are computed from Unix seconds directly
//! (the crate's `civil` module), since no date crate is available.

use std::sync::Arc;

use super::{Object, Value};
use crate::civil::{civil_from_days, days_from_civil, MONTHS, WEEKDAYS as DAYS};
use crate::error::{Error, ErrorKind, Result};

/// A point in time with a fixed zone offset, like Go's `time.Time`.
#[derive(Clone, Debug, PartialEq)]
pub struct Time {
    secs: i64,
    nanos: u32,
    offset: i32,
    zone: String,
}

/// Broken-down local fields.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    weekday: usize,
    yday: u32,
}

impl Time {
    /// The current time in UTC.
    pub fn now() -> Time {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Time::from_unix(d.as_secs() as i64, d.subsec_nanos())
    }

    /// A UTC time from Unix seconds and nanoseconds.
    pub fn from_unix(secs: i64, nanos: u32) -> Time {
        Time {
            secs,
            nanos: nanos.min(999_999_999),
            offset: 0,
            zone: "UTC".into(),
        }
    }

    /// Seconds since the Unix epoch.
    pub fn unix(&self) -> i64 {
        self.secs
    }

    fn civil(&self) -> Civil {
        let local = self.secs.saturating_add(self.offset as i64);
        let days = local.div_euclid(86400);
        let rem = local.rem_euclid(86400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            min: (rem % 3600 / 60) as u32,
            sec: (rem % 60) as u32,
            weekday: (days + 4).rem_euclid(7) as usize,
            yday: (days - days_from_civil(year, 1, 1) + 1) as u32,
        }
    }

    /// Formats with a Go reference-time layout (`2006-01-02T15:04:05Z07:00`).
    pub fn format(&self, layout: &str) -> String {
        let c = self.civil();
        let mut out = String::new();
        for chunk in chunks(layout) {
            let tok = match chunk {
                Chunk::Lit(s) => {
                    out.push_str(s);
                    continue;
                }
                Chunk::Tok(t) => t,
            };
            let h12 = if c.hour.is_multiple_of(12) {
                12
            } else {
                c.hour % 12
            };
            match tok {
                Tok::LongMonth => out.push_str(MONTHS[c.month as usize - 1]),
                Tok::Month => out.push_str(&MONTHS[c.month as usize - 1][..3]),
                Tok::NumMonth => out.push_str(&c.month.to_string()),
                Tok::ZeroMonth => out.push_str(&format!("{:02}", c.month)),
                Tok::LongWeekDay => out.push_str(DAYS[c.weekday]),
                Tok::WeekDay => out.push_str(&DAYS[c.weekday][..3]),
                Tok::Day => out.push_str(&c.day.to_string()),
                Tok::UnderDay => out.push_str(&format!("{:>2}", c.day)),
                Tok::ZeroDay => out.push_str(&format!("{:02}", c.day)),
                Tok::UnderYearDay => out.push_str(&format!("{:>3}", c.yday)),
                Tok::ZeroYearDay => out.push_str(&format!("{:03}", c.yday)),
                Tok::Hour => out.push_str(&format!("{:02}", c.hour)),
                Tok::Hour12 => out.push_str(&h12.to_string()),
                Tok::ZeroHour12 => out.push_str(&format!("{h12:02}")),
                Tok::Minute => out.push_str(&c.min.to_string()),
                Tok::ZeroMinute => out.push_str(&format!("{:02}", c.min)),
                Tok::Second => out.push_str(&c.sec.to_string()),
                Tok::ZeroSecond => out.push_str(&format!("{:02}", c.sec)),
                Tok::LongYear => {
                    if c.year < 0 {
                        out.push_str(&format!("-{:04}", -c.year))
                    } else {
                        out.push_str(&format!("{:04}", c.year))
                    }
                }
                Tok::Year => out.push_str(&format!("{:02}", c.year.rem_euclid(100))),
                Tok::PM => out.push_str(if c.hour >= 12 { "PM" } else { "AM" }),
                Tok::Pm => out.push_str(if c.hour >= 12 { "pm" } else { "am" }),
                Tok::Zone(z, colon, secs, hours_only) => {
                    if z && self.offset == 0 {
                        out.push('Z');
                    } else {
                        out.push_str(&fmt_offset(self.offset, colon, secs, hours_only));
                    }
                }
                Tok::TzName => {
                    if self.zone.is_empty() {
                        out.push_str(&fmt_offset(self.offset, false, false, false));
                    } else {
                        out.push_str(&self.zone);
                    }
                }
                Tok::Frac(sep, n, nines) => {
                    let digits = format!("{:09}", self.nanos);
                    let mut d = &digits[..n.min(9)];
                    if nines {
                        d = d.trim_end_matches('0');
                        if d.is_empty() {
                            continue;
                        }
                    }
                    out.push(sep);
                    out.push_str(d);
                }
            }
        }
        out
    }

    /// Parses `value` with a Go reference-time layout.
    pub fn parse(layout: &str, value: &str) -> Result<Time> {
        let bad = |what: &str| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("parsing time {value:?} as {layout:?}: cannot parse {what}"),
            )
        };
        let mut v = value;
        let (mut year, mut month, mut day) = (0i64, 1u32, 1u32);
        let (mut hour, mut min, mut sec, mut nanos) = (0u32, 0u32, 0u32, 0u32);
        let mut pm: Option<bool> = None;
        let mut offset = 0i32;
        let mut zone = "UTC".to_string();
        let parts = chunks(layout);
        for (ci, chunk) in parts.iter().enumerate() {
            let next_is_frac = matches!(parts.get(ci + 1), Some(Chunk::Tok(Tok::Frac(..))));
            let tok = match *chunk {
                Chunk::Lit(s) => {
                    v = v
                        .strip_prefix(s)
                        .ok_or_else(|| bad(&format!("{v:?} as {s:?}")))?;
                    continue;
                }
                Chunk::Tok(t) => t,
            };
            let rest = v;
            let num = |v: &mut &str, min_d: usize, max_d: usize| -> Option<i64> {
                let n = v
                    .bytes()
                    .take(max_d)
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                if n < min_d {
                    return None;
                }
                let x = v[..n].parse().ok();
                *v = &v[n..];
                x
            };
            let name = |v: &mut &str, list: &[&str], short: bool| -> Option<u32> {
                for (i, full) in list.iter().enumerate() {
                    let n = if short { &full[..3] } else { full };
                    if v.get(..n.len()).is_some_and(|p| p.eq_ignore_ascii_case(n)) {
                        *v = &v[n.len()..];
                        return Some(i as u32);
                    }
                }
                None
            };
            let ok = match tok {
                Tok::LongMonth | Tok::Month => name(&mut v, &MONTHS, tok == Tok::Month)
                    .map(|m| month = m + 1)
                    .is_some(),
                Tok::NumMonth | Tok::ZeroMonth => {
                    num(&mut v, if tok == Tok::ZeroMonth { 2 } else { 1 }, 2)
                        .map(|m| month = m as u32)
                        .is_some()
                }
                Tok::LongWeekDay | Tok::WeekDay => {
                    name(&mut v, &DAYS, tok == Tok::WeekDay).is_some()
                }
                Tok::Day | Tok::UnderDay | Tok::ZeroDay => {
                    if tok == Tok::UnderDay {
                        v = v.strip_prefix(' ').unwrap_or(v);
                    }
                    num(&mut v, if tok == Tok::ZeroDay { 2 } else { 1 }, 2)
                        .map(|d| day = d as u32)
                        .is_some()
                }
                Tok::UnderYearDay | Tok::ZeroYearDay => num(&mut v, 1, 3).is_some(),
                Tok::Hour | Tok::Hour12 | Tok::ZeroHour12 => {
                    num(&mut v, 1, 2).map(|h| hour = h as u32).is_some()
                }
                Tok::Minute | Tok::ZeroMinute => {
                    num(&mut v, 1, 2).map(|m| min = m as u32).is_some()
                }
                Tok::Second | Tok::ZeroSecond => {
                    let ok = num(&mut v, 1, 2).map(|s| sec = s as u32).is_some();
                    // Go accepts a fractional second the layout does not mention.
                    if ok
                        && !next_is_frac
                        && (v.starts_with('.') || v.starts_with(','))
                        && v[1..].starts_with(|c: char| c.is_ascii_digit())
                    {
                        let n = v[1..].bytes().take_while(|b| b.is_ascii_digit()).count();
                        nanos = frac_nanos(&v[1..1 + n]);
                        v = &v[1 + n..];
                    }
                    ok
                }
                Tok::LongYear => num(&mut v, 4, 4).map(|y| year = y).is_some(),
                Tok::Year => num(&mut v, 2, 2)
                    .map(|y| year = if y >= 69 { 1900 + y } else { 2000 + y })
                    .is_some(),
                Tok::PM | Tok::Pm => {
                    let p = v.get(..2).map(|s| s.to_ascii_uppercase());
                    match p.as_deref() {
                        Some("PM") => pm = Some(true),
                        Some("AM") => pm = Some(false),
                        _ => return Err(bad("AM/PM")),
                    }
                    v = &v[2..];
                    true
                }
                Tok::Zone(z, ..) => {
                    if z && v.starts_with('Z') {
                        v = &v[1..];
                        offset = 0;
                        zone = "UTC".into();
                        true
                    } else {
                        match parse_offset(&mut v) {
                            Some(o) => {
                                offset = o;
                                zone = String::new();
                                true
                            }
                            None => false,
                        }
                    }
                }
                Tok::TzName => {
                    let n = v.bytes().take_while(|b| b.is_ascii_uppercase()).count();
                    if n < 3 {
                        false
                    } else {
                        zone = v[..n].to_string();
                        offset = 0;
                        v = &v[n..];
                        true
                    }
                }
                Tok::Frac(sep, n, nines) => {
                    if !v.starts_with(sep) {
                        // Optional with 9s, as in Go.
                        nines
                    } else {
                        let d = v[1..].bytes().take_while(|b| b.is_ascii_digit()).count();
                        if !nines && d != n {
                            false
                        } else {
                            nanos = frac_nanos(&v[1..1 + d]);
                            v = &v[1 + d..];
                            true
                        }
                    }
                }
            };
            if !ok {
                return Err(bad(&format!("{rest:?}")));
            }
        }
        if !v.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("parsing time {value:?}: extra text: {v:?}"),
            ));
        }
        match pm {
            Some(true) if hour < 12 => hour += 12,
            Some(false) if hour == 12 => hour = 0,
            _ => {}
        }
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || min > 59
            || sec > 59
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("parsing time {value:?}: value out of range"),
            ));
        }
        let days = days_from_civil(year, month, day);
        let secs = days * 86400 + (hour * 3600 + min * 60 + sec) as i64 - offset as i64;
        Ok(Time {
            secs,
            nanos,
            offset,
            zone,
        })
    }
}

fn frac_nanos(digits: &str) -> u32 {
    let mut d = digits.to_string();
    d.truncate(9);
    while d.len() < 9 {
        d.push('0');
    }
    d.parse().unwrap_or(0)
}

fn fmt_offset(offset: i32, colon: bool, secs: bool, hours_only: bool) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let a = offset.unsigned_abs();
    let (h, m, s) = (a / 3600, a % 3600 / 60, a % 60);
    let sep = if colon { ":" } else { "" };
    let mut out = format!("{sign}{h:02}");
    if !hours_only {
        out.push_str(&format!("{sep}{m:02}"));
    }
    if secs {
        out.push_str(&format!("{sep}{s:02}"));
    }
    out
}

/// Parses `+hh`, `+hhmm`, `+hh:mm` (and seconds) at the start of `v`.
fn parse_offset(v: &mut &str) -> Option<i32> {
    let sign = match v.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = v[1..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ':')
        .collect();
    let used = 1 + digits.len();
    let d: String = digits.chars().filter(|c| *c != ':').collect();
    let part = |i: usize| d.get(i..i + 2).and_then(|x| x.parse::<i32>().ok());
    let h = part(0)?;
    let m = if d.len() >= 4 { part(2)? } else { 0 };
    let s = if d.len() >= 6 { part(4)? } else { 0 };
    *v = &v[used..];
    Some(sign * (h * 3600 + m * 60 + s))
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Tok {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    /// `Z` allowed, colon separated, with seconds, hours only.
    Zone(bool, bool, bool, bool),
    TzName,
    /// Separator, digit count, trailing zeros trimmed (`.999`).
    Frac(char, usize, bool),
}

enum Chunk<'a> {
    Lit(&'a str),
    Tok(Tok),
}

/// Splits a Go layout into literals and reference-time elements.
fn chunks(layout: &str) -> Vec<Chunk<'_>> {
    // Longest alternatives first, as Go does.
    const TABLE: &[(&str, Tok)] = &[
        ("January", Tok::LongMonth),
        ("Jan", Tok::Month),
        ("Monday", Tok::LongWeekDay),
        ("Mon", Tok::WeekDay),
        ("MST", Tok::TzName),
        ("002", Tok::ZeroYearDay),
        ("01", Tok::ZeroMonth),
        ("02", Tok::ZeroDay),
        ("03", Tok::ZeroHour12),
        ("04", Tok::ZeroMinute),
        ("05", Tok::ZeroSecond),
        ("06", Tok::Year),
        ("15", Tok::Hour),
        ("1", Tok::NumMonth),
        ("2006", Tok::LongYear),
        ("2", Tok::Day),
        ("__2", Tok::UnderYearDay),
        ("_2", Tok::UnderDay),
        ("3", Tok::Hour12),
        ("4", Tok::Minute),
        ("5", Tok::Second),
        ("PM", Tok::PM),
        ("pm", Tok::Pm),
        ("-07:00:00", Tok::Zone(false, true, true, false)),
        ("-070000", Tok::Zone(false, false, true, false)),
        ("-07:00", Tok::Zone(false, true, false, false)),
        ("-0700", Tok::Zone(false, false, false, false)),
        ("-07", Tok::Zone(false, false, false, true)),
        ("Z07:00:00", Tok::Zone(true, true, true, false)),
        ("Z070000", Tok::Zone(true, false, true, false)),
        ("Z07:00", Tok::Zone(true, true, false, false)),
        ("Z0700", Tok::Zone(true, false, false, false)),
        ("Z07", Tok::Zone(true, false, false, true)),
    ];
    let b = layout.as_bytes();
    let mut out = Vec::new();
    let mut lit_start = 0;
    let mut i = 0;
    while i < b.len() {
        let rest = &layout[i..];
        let mut found: Option<(usize, Tok)> = None;
        if (b[i] == b'.' || b[i] == b',') && matches!(b.get(i + 1), Some(b'0' | b'9')) {
            let ch = b[i + 1];
            let n = b[i + 1..].iter().take_while(|&&c| c == ch).count();
            if !b.get(i + 1 + n).is_some_and(|c| c.is_ascii_digit()) {
                found = Some((1 + n, Tok::Frac(b[i] as char, n, ch == b'9')));
            }
        }
        if found.is_none() {
            // `_2006` is a literal underscore followed by the year.
            if !rest.starts_with("_2006") {
                found = TABLE
                    .iter()
                    .find(|(p, _)| rest.starts_with(p))
                    .map(|(p, t)| (p.len(), *t));
            }
        }
        // Go only treats "Jan"/"Mon" etc. as elements; a plain "Monday" check is enough here.
        match found {
            Some((n, t)) => {
                if lit_start < i {
                    out.push(Chunk::Lit(&layout[lit_start..i]));
                }
                out.push(Chunk::Tok(t));
                i += n;
                lit_start = i;
            }
            None => i += rest.chars().next().map(|c| c.len_utf8()).unwrap_or(1),
        }
    }
    if lit_start < b.len() {
        out.push(Chunk::Lit(&layout[lit_start..]));
    }
    out
}

fn arg_str(args: &[Value], i: usize) -> Result<String> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("argument {} must be a string", i + 1),
        )),
    }
}

impl Object for Time {
    fn field(&self, name: &str) -> Option<Value> {
        let c = self.civil();
        Some(match name {
            "Unix" => Value::Int(self.secs),
            "UnixMilli" => {
                Value::Int(self.secs.saturating_mul(1000) + (self.nanos / 1_000_000) as i64)
            }
            "UnixNano" => Value::Int(self.secs.saturating_mul(1_000_000_000) + self.nanos as i64),
            "Year" => Value::Int(c.year),
            "Month" => Value::String(MONTHS[c.month as usize - 1].into()),
            "Day" => Value::Int(c.day as i64),
            "Hour" => Value::Int(c.hour as i64),
            "Minute" => Value::Int(c.min as i64),
            "Second" => Value::Int(c.sec as i64),
            "Nanosecond" => Value::Int(self.nanos as i64),
            "YearDay" => Value::Int(c.yday as i64),
            "Weekday" => Value::String(DAYS[c.weekday].into()),
            "UTC" => Value::Object(Arc::new(Time::from_unix(self.secs, self.nanos))),
            "String" => Value::String(self.display()),
            "IsZero" => {
                Value::Bool(self.secs == days_from_civil(1, 1, 1) * 86400 && self.nanos == 0)
            }
            _ => return None,
        })
    }

    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value>> {
        match name {
            "Format" => Some(arg_str(args, 0).map(|l| Value::String(self.format(&l)))),
            _ => None,
        }
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::String(self.format("2006-01-02T15:04:05.999999999Z07:00"))
    }

    fn display(&self) -> String {
        self.format("2006-01-02 15:04:05.999999999 -0700 MST")
    }

    fn type_name(&self) -> String {
        "time.Time".into()
    }
}

/// What the `time` template function returns: `.Now` and `.Parse LAYOUT VALUE`.
pub(crate) struct TimeFuncs;

impl Object for TimeFuncs {
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Now" => Some(Value::Object(Arc::new(Time::now()))),
            _ => None,
        }
    }

    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value>> {
        match name {
            "Parse" => Some((|| {
                if args.len() != 2 {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!("wrong number of args for Parse: want 2 got {}", args.len()),
                    ));
                }
                let t = Time::parse(&arg_str(args, 0)?, &arg_str(args, 1)?)?;
                Ok(Value::Object(Arc::new(t)))
            })()),
            _ => None,
        }
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({})
    }

    fn type_name(&self) -> String {
        "*template.TimeFuncs".into()
    }
}
