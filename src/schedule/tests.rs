use super::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::UNIX_EPOCH;

/// A UTC instant from civil fields.
fn t(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> SystemTime {
    let secs = days_from_civil(y, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s);
    from_unix_seconds(secs).unwrap()
}

/// `YYYY-MM-DD HH:MM:SS` of an instant, for readable failures.
fn show(time: Option<SystemTime>) -> String {
    let Some(time) = time else {
        return "never".into();
    };
    let secs = unix_seconds_floor(time).unwrap();
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

#[test]
fn parse_valid() {
    let cases = [
        "* * * * *",
        "0 * * * *",
        "*/15 0-23/2 1,15 * *",
        "0 9 * * MON-FRI",
        "0 9 * * mon-fri",
        "30 4 1 jan,Jul *",
        "0 0 * * 7",
        "0 0 * * 0,7",
        "0 0 ? * SUN",
        "5/20 * * * *",
    ];
    for expr in cases {
        let s = Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(s.to_string(), expr);
        assert_eq!(s.interval(), None);
    }
    for expr in [
        "@hourly",
        "@daily",
        "@midnight",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
        "@DAILY",
        "  @daily  ",
    ] {
        Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    }
    // Descriptors equal their five-field forms.
    let same = [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("0 0 * * 7", "0 0 * * 0"),
        ("0 0 * * SUN", "0 0 * * 0"),
        ("0 0 * * 0,7", "0 0 * * 0"),
        ("0 0 * * 5-7", "0 0 * * 0,5,6"),
        ("0 0 1 JAN-MAR *", "0 0 1 1-3 *"),
        ("*/20 * * * *", "0,20,40 * * * *"),
        ("5/20 * * * *", "5,25,45 * * * *"),
        ("10-40/15 * * * *", "10,25,40 * * * *"),
        ("* * * * *", "0-59 0-23 * 1-12 *"),
        ("*/1 * * * *", "* * * * *"),
        // `*` and `a/n` end at Saturday: Sunday as 7 comes in only when written.
        ("0 0 * * 1/2", "0 0 * * 1,3,5"),
        ("0 0 * * */2", "0 0 * * 0,2,4,6"),
        ("0 0 * * 7/3", "0 0 * * 0"),
        ("0 0 * * 1-7/2", "0 0 * * 0,1,3,5"),
    ];
    for (a, b) in same {
        let (sa, sb) = (Schedule::parse(a).unwrap(), Schedule::parse(b).unwrap());
        assert_eq!(sa.kind, sb.kind, "{a} vs {b}");
    }
    let every = [
        ("@every 1h30m", 5_400_000),
        ("@every 5m", 300_000),
        ("@every 10s", 10_000),
        ("@every 1.5h", 5_400_000),
        ("@every 500ms", 500),
        ("@every   2m", 120_000),
    ];
    for (expr, ms) in every {
        let s = Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(s.interval(), Some(Duration::from_millis(ms)), "{expr}");
    }
    let s = Schedule::every(Duration::from_secs(5400)).unwrap();
    assert_eq!(s.to_string(), "@every 1h30m0s");
    assert_eq!(s.interval(), Some(Duration::from_secs(5400)));
    assert_eq!(
        Schedule::every(Duration::ZERO).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let parsed: Schedule = "@daily".parse().unwrap();
    assert_eq!(parsed, Schedule::parse("@daily").unwrap());
}

#[test]
fn parse_invalid() {
    // Each error names the expression and what is wrong with it.
    let cases = [
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("* * * *", "expected 5 fields"),
        ("* * * * * *", "got 6"),
        ("60 * * * *", "minute field \"60\": 60 is out of range 0-59"),
        ("* 24 * * *", "hour field \"24\": 24 is out of range 0-23"),
        (
            "* * 0 * *",
            "day-of-month field \"0\": 0 is out of range 1-31",
        ),
        ("* * 32 * *", "day-of-month field \"32\""),
        ("* * * 13 *", "month field \"13\": 13 is out of range 1-12"),
        ("* * * 0 *", "month field \"0\""),
        (
            "* * * * 8",
            "day-of-week field \"8\": 8 is out of range 0-7",
        ),
        (
            "*/0 * * * *",
            "minute field \"*/0\": step must be at least 1",
        ),
        ("*/x * * * *", "step \"x\" is not a number"),
        ("*/ * * * *", "step \"\" is not a number"),
        (
            "5-1 * * * *",
            "minute field \"5-1\": range \"5-1\" runs backwards",
        ),
        ("a * * * *", "minute field \"a\": \"a\" is not a number"),
        ("-1 * * * *", "minute field \"-1\""),
        ("1-2-3 * * * *", "minute field \"1-2-3\""),
        ("+5 * * * *", "minute field \"+5\""),
        (
            "* * * FOO *",
            "month field \"FOO\": \"FOO\" is neither a number nor a name (JAN-DEC)",
        ),
        ("* * * * MONDAY", "day-of-week field \"MONDAY\""),
        ("* * * * FRI-MON", "range \"FRI-MON\" runs backwards"),
        ("* * * JAN *x", "day-of-week field \"*x\""),
        ("1,,2 * * * *", "minute field \"1,,2\": empty list item"),
        ("1, * * * *", "empty list item"),
        ("? * * * *", "minute field \"?\""),
        ("* * * ? *", "month field \"?\""),
        ("* * * * SUN/x", "step \"x\""),
        ("99999999999 * * * *", "minute field"),
        ("@reboot", "unknown descriptor @reboot"),
        ("@", "unknown descriptor @"),
        ("@daily 5", "@daily takes no arguments"),
        ("@every", "@every takes exactly one duration"),
        ("@every 1m 2m", "@every takes exactly one duration"),
        ("@every 5", "@every: invalid duration \"5\""),
        ("@every 1d", "@every: invalid duration \"1d\""),
        ("@every -1m", "@every: invalid duration \"-1m\""),
        ("@every 0s", "must be positive"),
        ("@every 0", "must be positive"),
        (
            "TZ=Europe/Berlin 0 * * * *",
            "time zone prefix TZ= is not supported",
        ),
        (
            "CRON_TZ=UTC 0 * * * *",
            "time zone prefix CRON_TZ= is not supported",
        ),
        ("CRON_TZ=UTC @daily", "CRON_TZ="),
        ("tz=UTC @daily", "time zone prefix tz="),
        (
            "a=b * * * *",
            "minute field \"a=b\": \"a=b\" is not a number",
        ),
    ];
    for (expr, want) in cases {
        let err = match Schedule::parse(expr) {
            Ok(s) => panic!("{expr:?} parsed as {s:?}"),
            Err(e) => e,
        };
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{expr:?}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("invalid schedule {expr:?}: ")),
            "{expr:?}: {msg}"
        );
        assert!(msg.contains(want), "{expr:?}: {msg:?} lacks {want:?}");
    }
}

#[test]
fn next_after_table() {
    let cases: &[(&str, SystemTime, Option<SystemTime>)] = &[
        // Strictly after: a time on the minute moves on to the next match.
        (
            "* * * * *",
            t(2024, 1, 1, 0, 0, 0),
            Some(t(2024, 1, 1, 0, 1, 0)),
        ),
        (
            "* * * * *",
            t(2024, 1, 1, 0, 0, 59),
            Some(t(2024, 1, 1, 0, 1, 0)),
        ),
        (
            "* * * * *",
            t(2024, 12, 31, 23, 59, 30),
            Some(t(2025, 1, 1, 0, 0, 0)),
        ),
        (
            "@hourly",
            t(2024, 12, 31, 23, 30, 0),
            Some(t(2025, 1, 1, 0, 0, 0)),
        ),
        (
            "@hourly",
            t(2024, 6, 1, 10, 0, 0),
            Some(t(2024, 6, 1, 11, 0, 0)),
        ),
        (
            "@daily",
            t(2024, 2, 28, 12, 0, 0),
            Some(t(2024, 2, 29, 0, 0, 0)),
        ),
        (
            "@daily",
            t(2023, 2, 28, 12, 0, 0),
            Some(t(2023, 3, 1, 0, 0, 0)),
        ),
        (
            "@midnight",
            t(2024, 2, 29, 0, 0, 0),
            Some(t(2024, 3, 1, 0, 0, 0)),
        ),
        (
            "@monthly",
            t(2026, 12, 15, 8, 0, 0),
            Some(t(2027, 1, 1, 0, 0, 0)),
        ),
        (
            "@monthly",
            t(2026, 1, 31, 23, 59, 59),
            Some(t(2026, 2, 1, 0, 0, 0)),
        ),
        (
            "@yearly",
            t(2026, 11, 27, 0, 0, 0),
            Some(t(2027, 1, 1, 0, 0, 0)),
        ),
        (
            "@annually",
            t(2027, 1, 1, 0, 0, 0),
            Some(t(2028, 1, 1, 0, 0, 0)),
        ),
        // 2026-11-29 is a Sunday.
        (
            "@weekly",
            t(2026, 11, 27, 9, 0, 0),
            Some(t(2026, 11, 29, 0, 0, 0)),
        ),
        (
            "@weekly",
            t(2026, 11, 29, 0, 0, 0),
            Some(t(2026, 12, 6, 0, 0, 0)),
        ),
        // Month ends and February 29th.
        (
            "0 0 31 * *",
            t(2024, 4, 1, 0, 0, 0),
            Some(t(2024, 5, 31, 0, 0, 0)),
        ),
        (
            "0 0 31 * *",
            t(2024, 1, 31, 0, 0, 0),
            Some(t(2024, 3, 31, 0, 0, 0)),
        ),
        (
            "0 12 30 * *",
            t(2025, 1, 30, 12, 0, 0),
            Some(t(2025, 3, 30, 12, 0, 0)),
        ),
        (
            "0 0 29 2 *",
            t(2024, 3, 1, 0, 0, 0),
            Some(t(2028, 2, 29, 0, 0, 0)),
        ),
        (
            "0 0 29 2 *",
            t(2024, 2, 28, 23, 59, 0),
            Some(t(2024, 2, 29, 0, 0, 0)),
        ),
        // 2100 is not a leap year: eight years to the next February 29th.
        (
            "0 0 29 2 *",
            t(2096, 3, 1, 0, 0, 0),
            Some(t(2104, 2, 29, 0, 0, 0)),
        ),
        (
            "0 0 29 2 *",
            t(2099, 1, 1, 0, 0, 0),
            Some(t(2104, 2, 29, 0, 0, 0)),
        ),
        (
            "0 0 29 FEB *",
            t(2000, 1, 1, 0, 0, 0),
            Some(t(2000, 2, 29, 0, 0, 0)),
        ),
        (
            "59 23 31 12 *",
            t(2026, 12, 31, 23, 59, 0),
            Some(t(2027, 12, 31, 23, 59, 0)),
        ),
        (
            "59 23 31 12 *",
            t(2026, 12, 31, 23, 58, 59),
            Some(t(2026, 12, 31, 23, 59, 0)),
        ),
        // Impossible dates.
        ("0 0 30 2 *", t(2024, 1, 1, 0, 0, 0), None),
        ("0 0 31 4,6,9,11 *", t(2024, 1, 1, 0, 0, 0), None),
        // Sunday as 0 and 7 (2026-11-27 is a Friday).
        (
            "0 12 * * 0",
            t(2026, 11, 27, 0, 0, 0),
            Some(t(2026, 11, 29, 12, 0, 0)),
        ),
        (
            "0 12 * * 7",
            t(2026, 11, 27, 0, 0, 0),
            Some(t(2026, 11, 29, 12, 0, 0)),
        ),
        (
            "0 12 * * SUN",
            t(2026, 11, 27, 0, 0, 0),
            Some(t(2026, 11, 29, 12, 0, 0)),
        ),
        (
            "0 0 * * 5-7",
            t(2026, 11, 28, 10, 0, 0),
            Some(t(2026, 11, 29, 0, 0, 0)),
        ),
        (
            "0 0 * * 6-7",
            t(2026, 11, 29, 0, 0, 0),
            Some(t(2026, 12, 5, 0, 0, 0)),
        ),
        (
            "0 9 * * MON-FRI",
            t(2026, 11, 27, 9, 0, 0),
            Some(t(2026, 11, 30, 9, 0, 0)),
        ),
        (
            "0 9 * * MON-FRI",
            t(2026, 11, 27, 8, 59, 0),
            Some(t(2026, 11, 27, 9, 0, 0)),
        ),
        // Steps and ranges.
        (
            "*/15 * * * *",
            t(2024, 5, 5, 10, 7, 0),
            Some(t(2024, 5, 5, 10, 15, 0)),
        ),
        (
            "*/15 * * * *",
            t(2024, 5, 5, 10, 45, 0),
            Some(t(2024, 5, 5, 11, 0, 0)),
        ),
        (
            "10-30/10 * * * *",
            t(2024, 5, 5, 10, 10, 0),
            Some(t(2024, 5, 5, 10, 20, 0)),
        ),
        (
            "10-30/10 * * * *",
            t(2024, 5, 5, 10, 30, 0),
            Some(t(2024, 5, 5, 11, 10, 0)),
        ),
        (
            "5/20 * * * *",
            t(2024, 5, 5, 10, 46, 0),
            Some(t(2024, 5, 5, 11, 5, 0)),
        ),
        (
            "0 */6 * * *",
            t(2024, 5, 5, 18, 0, 0),
            Some(t(2024, 5, 6, 0, 0, 0)),
        ),
        (
            "30 2-4 * * *",
            t(2024, 5, 5, 4, 30, 0),
            Some(t(2024, 5, 6, 2, 30, 0)),
        ),
        (
            "0 0 1-7/3 * *",
            t(2024, 5, 2, 0, 0, 0),
            Some(t(2024, 5, 4, 0, 0, 0)),
        ),
        (
            "0 9 1 JAN,jul *",
            t(2026, 2, 1, 0, 0, 0),
            Some(t(2026, 7, 1, 9, 0, 0)),
        ),
        (
            "0 0 1 */4 *",
            t(2026, 5, 1, 0, 0, 0),
            Some(t(2026, 9, 1, 0, 0, 0)),
        ),
        // Vixie: both day fields restricted → either matches.
        // 13th or Friday: next Friday (Dec 4) comes before Dec 13.
        (
            "0 0 13 * FRI",
            t(2026, 11, 27, 0, 0, 1),
            Some(t(2026, 12, 4, 0, 0, 0)),
        ),
        // The 1st (a Tuesday) or Monday: Monday Nov 30 first.
        (
            "0 0 1 * MON",
            t(2026, 11, 27, 0, 0, 0),
            Some(t(2026, 11, 30, 0, 0, 0)),
        ),
        (
            "0 0 1 * MON",
            t(2026, 11, 30, 0, 0, 0),
            Some(t(2026, 12, 1, 0, 0, 0)),
        ),
        // A step is a restriction: 30 is not in 1,11,21,31, so this is Monday's match.
        (
            "0 0 */10 * MON",
            t(2026, 11, 27, 0, 0, 1),
            Some(t(2026, 11, 30, 0, 0, 0)),
        ),
        // Day of week `*`: only the day of month counts, and the other way round.
        (
            "0 0 1 * *",
            t(2026, 11, 27, 0, 0, 0),
            Some(t(2026, 12, 1, 0, 0, 0)),
        ),
        (
            "0 0 ? * MON",
            t(2026, 11, 27, 0, 0, 0),
            Some(t(2026, 11, 30, 0, 0, 0)),
        ),
        (
            "0 0 * * MON",
            t(2026, 12, 1, 0, 0, 0),
            Some(t(2026, 12, 7, 0, 0, 0)),
        ),
        // Restricted months also restrict the day-of-week matches.
        (
            "0 0 * 2 MON",
            t(2026, 3, 1, 0, 0, 0),
            Some(t(2027, 2, 1, 0, 0, 0)),
        ),
        // Before the epoch.
        ("0 0 1 1 *", t(1969, 6, 1, 0, 0, 0), Some(UNIX_EPOCH)),
        ("* * * * *", t(1969, 12, 31, 23, 59, 30), Some(UNIX_EPOCH)),
    ];
    for (expr, now, want) in cases {
        let s = Schedule::parse(expr).unwrap();
        let got = s.next_after(*now);
        assert_eq!(show(got), show(*want), "{expr} after {}", show(Some(*now)));
    }
    // Sub-second parts of `now` are dropped before stepping to the next minute.
    let s = Schedule::parse("* * * * *").unwrap();
    let now = t(2024, 1, 1, 0, 0, 0) + Duration::from_millis(999);
    assert_eq!(s.next_after(now), Some(t(2024, 1, 1, 0, 1, 0)));
    let now = UNIX_EPOCH - Duration::from_millis(1);
    assert_eq!(s.next_after(now), Some(UNIX_EPOCH));
}

#[test]
fn next_after_every() {
    let now = t(2024, 2, 28, 23, 0, 0) + Duration::from_nanos(123_456_789);
    let s = Schedule::parse("@every 90m").unwrap();
    assert_eq!(
        s.next_after(now),
        Some(t(2024, 2, 29, 0, 30, 0) + Duration::from_nanos(123_456_789))
    );
    let s = Schedule::every(Duration::from_millis(200)).unwrap();
    assert_eq!(s.next_after(now), Some(now + Duration::from_millis(200)));
}

#[test]
fn next_after_walks_consecutive_runs() {
    // Every run of a weekday schedule through a leap-year February and a year end.
    let s = Schedule::parse("30 23 28-31 * MON").unwrap();
    let mut now = t(2023, 12, 1, 0, 0, 0);
    let mut runs = Vec::new();
    for _ in 0..12 {
        let n = s.next_after(now).unwrap();
        runs.push(show(Some(n)));
        now = n;
    }
    // 28-31 or Monday, at 23:30.
    assert_eq!(
        runs,
        [
            "2023-12-04 23:30:00",
            "2023-12-11 23:30:00",
            "2023-12-18 23:30:00",
            "2023-12-25 23:30:00",
            "2023-12-28 23:30:00",
            "2023-12-29 23:30:00",
            "2023-12-30 23:30:00",
            "2023-12-31 23:30:00",
            "2024-01-01 23:30:00",
            "2024-01-08 23:30:00",
            "2024-01-15 23:30:00",
            "2024-01-22 23:30:00",
        ]
    );
    // Every minute for two days matches a brute-force check of each field.
    let s = Schedule::parse("*/7 1-3,22 29,1 2,3 *").unwrap();
    let mut now = t(2024, 2, 27, 0, 0, 0);
    let mut got = Vec::new();
    while got.len() < 40 {
        now = s.next_after(now).unwrap();
        got.push(now);
    }
    let mut want = Vec::new();
    let mut m = unix_seconds_floor(t(2024, 2, 27, 0, 0, 0)).unwrap() / 60 + 1;
    while want.len() < 40 {
        let (_, mo, d) = civil_from_days(m.div_euclid(1440));
        let (h, mi) = (m.rem_euclid(1440) / 60, m % 60);
        if mi % 7 == 0 && (matches!(h, 1..=3) || h == 22) && (d == 29 || d == 1) && mo <= 3 {
            want.push(from_unix_seconds(m * 60).unwrap());
        }
        m += 1;
    }
    assert_eq!(got, want);
}

#[test]
fn next_run_after_a_missed_slot() {
    let s = Schedule::every(Duration::from_secs(10)).unwrap();
    let due = t(2024, 1, 1, 0, 0, 0);
    // Handled on time: keep the rhythm.
    assert_eq!(
        runner::next_run_for_test(&s, due, due + Duration::from_millis(5)),
        Some(due + Duration::from_secs(10))
    );
    // Handled a minute late: one run now, the next one interval after now.
    let late = due + Duration::from_secs(60);
    assert_eq!(
        runner::next_run_for_test(&s, due, late),
        Some(late + Duration::from_secs(10))
    );
    let c = Schedule::parse("@hourly").unwrap();
    assert_eq!(
        runner::next_run_for_test(&c, due, t(2024, 1, 1, 5, 30, 0)),
        Some(t(2024, 1, 1, 6, 0, 0))
    );
}

/// Stops `stop` after `limit` unless something else stopped it first, so a broken runner
/// test fails instead of hanging. Returns a flag that cancels the watchdog.
fn watchdog(stop: &StopFlag, limit: Duration) -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let (stop, c) = (stop.clone(), cancel.clone());
    thread::spawn(move || {
        let end = std::time::Instant::now() + limit;
        while std::time::Instant::now() < end && !c.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(20));
        }
        stop.stop();
    });
    cancel
}

#[test]
fn runner_runs_two_jobs_repeatedly() {
    let stop = StopFlag::new();
    let counts = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let job = |i: usize| {
        let (counts, stop) = (counts.clone(), stop.clone());
        Job::new(
            format!("job{i}"),
            Schedule::every(Duration::from_millis(100)).unwrap(),
            move || {
                counts[i].fetch_add(1, Ordering::SeqCst);
                // The jobs stop the runner themselves once both ran three times.
                if counts.iter().all(|c| c.load(Ordering::SeqCst) >= 3) {
                    stop.stop();
                }
                Ok(())
            },
        )
    };
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let runner = Runner::new(vec![job(0), job(1)])
        .slice(Duration::from_millis(50))
        .grace(Duration::from_secs(5))
        .on_event(move |e| ev.lock().unwrap().push(e.clone()));
    let dog = watchdog(&stop, Duration::from_secs(20));
    let summary = runner.run(&stop);
    dog.store(true, Ordering::SeqCst);
    let (a, b) = (
        counts[0].load(Ordering::SeqCst),
        counts[1].load(Ordering::SeqCst),
    );
    assert!(a >= 3 && b >= 3, "runs: {a}, {b}");
    assert_eq!(summary.started as usize, a + b);
    assert_eq!(summary.succeeded as usize, a + b);
    assert_eq!((summary.failed, summary.skipped), (0, 0));
    assert!(summary.abandoned.is_empty());
    let events = events.lock().unwrap();
    let started = events
        .iter()
        .filter(|e| matches!(e, Event::Started { .. }))
        .count();
    let finished = events
        .iter()
        .filter(|e| matches!(e, Event::Finished { error: None, .. }))
        .count();
    assert_eq!((started, finished), (a + b, a + b));
}

#[test]
fn runner_skips_overlapping_runs() {
    let stop = StopFlag::new();
    let active = Arc::new(AtomicUsize::new(0));
    let max_active = Arc::new(AtomicUsize::new(0));
    let runs = Arc::new(AtomicUsize::new(0));
    let (a, m, r, s) = (
        active.clone(),
        max_active.clone(),
        runs.clone(),
        stop.clone(),
    );
    // Runs for 250 ms on a 50 ms interval: most slots find it still running.
    let job = Job::new(
        "slow",
        Schedule::every(Duration::from_millis(50)).unwrap(),
        move || {
            let now = a.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(250));
            a.fetch_sub(1, Ordering::SeqCst);
            if r.fetch_add(1, Ordering::SeqCst) + 1 == 2 {
                s.stop();
            }
            Err(Error::new(ErrorKind::Other, "boom"))
        },
    );
    let skipped = Arc::new(AtomicUsize::new(0));
    let sk = skipped.clone();
    let runner = Runner::new(vec![job])
        .slice(Duration::from_millis(20))
        .on_event(move |e| {
            if let Event::Skipped { job, .. } = e {
                assert_eq!(job, "slow");
                sk.fetch_add(1, Ordering::SeqCst);
            }
        });
    let dog = watchdog(&stop, Duration::from_secs(20));
    let summary = runner.run(&stop);
    dog.store(true, Ordering::SeqCst);
    assert_eq!(max_active.load(Ordering::SeqCst), 1);
    assert_eq!(summary.started, 2);
    assert_eq!(summary.failed, 2);
    assert_eq!(summary.succeeded, 0);
    assert!(summary.skipped >= 1, "{summary:?}");
    assert_eq!(summary.skipped as usize, skipped.load(Ordering::SeqCst));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[test]
fn runner_waits_for_a_running_job_on_stop() {
    let stop = StopFlag::new();
    let finished = Arc::new(AtomicBool::new(false));
    let (f, s) = (finished.clone(), stop.clone());
    let job = Job::new(
        "long",
        Schedule::every(Duration::from_millis(20)).unwrap(),
        move || {
            // Stop is requested while this run is going; the runner must wait for it.
            s.stop();
            thread::sleep(Duration::from_millis(300));
            f.store(true, Ordering::SeqCst);
            Ok(())
        },
    );
    let runner = Runner::new(vec![job]).grace(Duration::from_secs(10));
    let dog = watchdog(&stop, Duration::from_secs(20));
    let summary = runner.run(&stop);
    dog.store(true, Ordering::SeqCst);
    assert!(finished.load(Ordering::SeqCst));
    assert_eq!(
        summary,
        Summary {
            started: 1,
            succeeded: 1,
            ..Summary::default()
        }
    );
}

#[test]
fn runner_gives_up_after_grace() {
    let stop = StopFlag::new();
    let release = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let (rel, d, s) = (release.clone(), done.clone(), stop.clone());
    let job = Job::new(
        "stuck",
        Schedule::every(Duration::from_millis(20)).unwrap(),
        move || {
            s.stop();
            while !rel.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(5));
            }
            d.store(true, Ordering::SeqCst);
            Ok(())
        },
    );
    let abandoned = Arc::new(Mutex::new(Vec::new()));
    let ab = abandoned.clone();
    let runner = Runner::new(vec![job])
        .grace(Duration::from_millis(50))
        .on_event(move |e| {
            if let Event::Abandoned { job } = e {
                ab.lock().unwrap().push(job.clone());
            }
        });
    let dog = watchdog(&stop, Duration::from_secs(20));
    let summary = runner.run(&stop);
    dog.store(true, Ordering::SeqCst);
    // The job cannot have finished: it waits for `release`, set only now.
    assert!(!done.load(Ordering::SeqCst));
    release.store(true, Ordering::SeqCst);
    assert_eq!(summary.started, 1);
    assert_eq!((summary.succeeded, summary.failed), (0, 0));
    assert_eq!(summary.abandoned, ["stuck"]);
    assert_eq!(*abandoned.lock().unwrap(), ["stuck"]);
}

#[test]
fn runner_reports_panics_and_impossible_schedules() {
    let stop = StopFlag::new();
    let s = stop.clone();
    let panicking = Job::new(
        "panics",
        Schedule::every(Duration::from_millis(20)).unwrap(),
        move || {
            s.stop();
            panic!("oops");
        },
    );
    let never = Job::new("never", Schedule::parse("0 0 30 2 *").unwrap(), || Ok(()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let er = errors.clone();
    let runner = Runner::new(vec![panicking, never]).on_event(move |e| match e {
        Event::Finished {
            job,
            error: Some(err),
            ..
        } => er.lock().unwrap().push(format!("{job}: {err}")),
        Event::NoNextRun { job } => er.lock().unwrap().push(format!("{job}: no next run")),
        _ => {}
    });
    let dog = watchdog(&stop, Duration::from_secs(20));
    let summary = runner.run(&stop);
    dog.store(true, Ordering::SeqCst);
    assert_eq!((summary.started, summary.failed), (1, 1));
    let errors = errors.lock().unwrap();
    assert_eq!(
        *errors,
        ["never: no next run", "panics: job panics panicked: oops"]
    );
}

#[test]
fn runner_returns_at_once_when_already_stopped() {
    let stop = StopFlag::new();
    stop.stop();
    let job = Job::new(
        "x",
        Schedule::every(Duration::from_millis(1)).unwrap(),
        || Ok(()),
    );
    let summary = Runner::new(vec![job]).run(&stop);
    assert_eq!(summary, Summary::default());
    // A flag shared with a signal handler.
    let flag = Arc::new(AtomicBool::new(false));
    let stop = StopFlag::from_arc(flag.clone());
    flag.store(true, Ordering::SeqCst);
    assert!(stop.is_stopped());
    assert!(Arc::ptr_eq(stop.as_arc(), &flag));
}
