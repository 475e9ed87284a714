//! Retry policy: what one response or network error means for the request.
//!
//! The policy is pure: [`RetryPolicy::decide`] looks at the attempt number, the outcome and the
//! response headers and returns a [`Decision`]; the caller sleeps, rotates hosts, runs the auth
//! handler or fails. That keeps every branch testable without a server (cargo's design).
//!
//! Rules (regclient's `reghttp`, with the choices noted):
//!
//! - 2xx and 304 are done.
//! - 401 asks for re-authentication; the auth layer decides whether anything new can be tried.
//! - 404 and 416 drop the host for this request without backoff: a mirror that lacks an image
//!   is not unhealthy.
//! - 408, 429, 500, 502, 503 and 504 are transient: wait and retry. 503 is included although
//!   regclient's list omits it, because it is the status that most often carries `Retry-After`.
//! - Other statuses drop the host with backoff: retrying the same host will not help, but a
//!   mirror or the upstream might.
//! - Network errors are transient, except TLS failures (a bad certificate does not heal), which
//!   drop the host.
//! - At most `retry_limit + 1` attempts; the last failure becomes [`Decision::Fail`].
//! - Requests whose failure is an expected answer (anonymous mount, referrers probe) use
//!   [`RetryPolicy::decide_no_backoff`] and move on without waiting.
//!
//! Waits grow exponentially from `delay_init` (100 ms) to `delay_max` (30 s). `Retry-After`
//! (seconds or an HTTP date) overrides the wait for 429 and 503, capped by `retry_after_max` so a
//! registry asking for an hour cannot stall a command; the attempt limit still applies.

use std::time::{Duration, Instant, SystemTime};

use crate::error::ErrorKind;
use crate::transport::header_value;

/// Classes of network failure, as the I/O layer reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetError {
    /// The connection was refused.
    ConnectRefused,
    /// The connection was reset or closed early.
    Reset,
    /// Connecting or waiting for a response timed out.
    Timeout,
    /// The TLS handshake or certificate verification failed.
    Tls,
    /// The host name did not resolve.
    Dns,
    /// Any other I/O failure.
    Other,
}

/// What one attempt produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered with this status code.
    Status(u16),
    /// The request failed before a response arrived.
    Network(NetError),
    /// The request cannot be re-sent (its body was a stream that cannot be rewound).
    NotRetryable,
}

/// What the caller should do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The response is a success; record it on the host's [`HostBackoff`].
    Done,
    /// Transient failure: record a host failure, wait this long, then retry (rotating hosts
    /// when there are several).
    RetryAfter(Duration),
    /// Drop this host for this request without recording a failure (404/416 on a mirror); if
    /// no host remains, fail with the kind.
    NextHost(ErrorKind),
    /// Record a host failure and drop this host for this request; if no host remains, fail
    /// with the kind.
    DropHost(ErrorKind),
    /// Run the auth handler; if it produced new credentials retry the same host at once,
    /// otherwise drop the host (unauthorized when no host remains).
    Reauth,
    /// Stop: no further attempt can succeed (retry limit reached, or not retryable).
    Fail(ErrorKind),
}

/// The error kind for a failed HTTP status: 401/403 unauthorized, 404 not found, 429 rate
/// limit, anything else an unexpected status.
pub fn status_error_kind(status: u16) -> ErrorKind {
    match status {
        401 | 403 => ErrorKind::Unauthorized,
        404 => ErrorKind::NotFound,
        429 => ErrorKind::RateLimit,
        _ => ErrorKind::HttpStatus,
    }
}

/// Jitter spreads retries of many clients hit by the same outage.
///
/// It is supplied by the caller so the policy stays deterministic: tests use `None`, the
/// client seeds once from whatever entropy it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// Exact exponential delays.
    #[default]
    None,
    /// Shortens each delay by up to a quarter, pseudo-randomly from this seed and the count.
    Seeded(u64),
}

/// Retry and backoff settings (`reg.WithDelay`, `reg.WithRetryLimit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first backoff delay.
    pub delay_init: Duration,
    /// The longest backoff delay.
    pub delay_max: Duration,
    /// Retries after the first attempt; a request makes at most `retry_limit + 1` attempts.
    /// Also the per-host backoff count at which a host is dropped.
    pub retry_limit: u32,
    /// The longest wait a `Retry-After` header can impose.
    pub retry_after_max: Duration,
    /// Delay jitter.
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            delay_init: Duration::from_millis(100),
            delay_max: Duration::from_secs(30),
            retry_limit: 5,
            retry_after_max: Duration::from_secs(60),
            jitter: Jitter::None,
        }
    }
}

/// splitmix64: a tiny, well-distributed mixer, enough for jitter.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl RetryPolicy {
    /// Attempts a request may make.
    pub fn max_attempts(&self) -> u32 {
        self.retry_limit.saturating_add(1)
    }

    /// The backoff after `failures` consecutive failures (1 or more): `delay_init <<
    /// (failures - 1)`, capped at `delay_max`, then jittered. Zero failures wait nothing.
    pub fn backoff(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let base = 1u32
            .checked_shl(failures - 1)
            .and_then(|m| self.delay_init.checked_mul(m))
            .map_or(self.delay_max, |d| d.min(self.delay_max));
        match self.jitter {
            Jitter::None => base,
            Jitter::Seeded(seed) => {
                // Up to a quarter shorter, so the cap still holds.
                let frac = (mix(seed ^ u64::from(failures)) >> 11) as f64 / (1u64 << 53) as f64;
                base.saturating_sub(base.mul_f64(frac / 4.0))
            }
        }
    }

    /// Decides what to do after attempt number `attempt` (1-based) ended with `outcome`.
    ///
    /// `headers` are the response headers (for `Retry-After`); `now` is the current wall-clock
    /// time, needed to turn an HTTP-date `Retry-After` into a wait.
    pub fn decide(
        &self,
        attempt: u32,
        outcome: &Outcome,
        headers: &[(&str, &str)],
        now: SystemTime,
    ) -> Decision {
        let attempt = attempt.max(1);
        let exhausted = attempt >= self.max_attempts();
        let status = match *outcome {
            Outcome::NotRetryable => return Decision::Fail(ErrorKind::Network),
            Outcome::Network(NetError::Tls) => return Decision::DropHost(ErrorKind::Network),
            Outcome::Network(_) if exhausted => return Decision::Fail(ErrorKind::Network),
            Outcome::Network(_) => return Decision::RetryAfter(self.backoff(attempt)),
            Outcome::Status(s) => s,
        };
        let kind = status_error_kind(status);
        match status {
            200..=299 | 304 => Decision::Done,
            401 if exhausted => Decision::Fail(kind),
            401 => Decision::Reauth,
            404 | 416 => Decision::NextHost(kind),
            408 | 429 | 500 | 502 | 503 | 504 if exhausted => Decision::Fail(kind),
            429 | 503 => {
                let wait = header_value(headers, "Retry-After")
                    .and_then(|v| retry_after(v, now))
                    .map(|d| d.min(self.retry_after_max));
                Decision::RetryAfter(wait.unwrap_or_else(|| self.backoff(attempt)))
            }
            408 | 500 | 502 | 504 => Decision::RetryAfter(self.backoff(attempt)),
            _ => Decision::DropHost(kind),
        }
    }
}

impl Outcome {
    /// The error kind this outcome reports when it ends a request.
    pub fn error_kind(&self) -> ErrorKind {
        match self {
            Outcome::Status(s) => status_error_kind(*s),
            Outcome::Network(_) | Outcome::NotRetryable => ErrorKind::Network,
        }
    }
}

impl RetryPolicy {
    /// [`Self::decide`] for requests whose failures are expected (anonymous blob mount,
    /// referrers API probe, tag DELETE API): they never back off or wait, the host is simply
    /// dropped for this request so the caller can fall back at once.
    pub fn decide_no_backoff(
        &self,
        attempt: u32,
        outcome: &Outcome,
        headers: &[(&str, &str)],
        now: SystemTime,
    ) -> Decision {
        match self.decide(attempt, outcome, headers, now) {
            Decision::RetryAfter(_) | Decision::DropHost(_) => {
                Decision::NextHost(outcome.error_kind())
            }
            other => other,
        }
    }
}

/// Parses a `Retry-After` value (delay seconds or an IMF-fixdate) into a wait from `now`.
/// A date in the past waits nothing; anything unparsable is `None`.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More than 20 digits cannot be a u64; such a value is garbage, not "forever".
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian calendar).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Count years from March so the leap day is the last day of the (shifted) year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let shifted_month = i64::from((month + 9) % 12); // March = 0
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn fixed_digits(s: &str, len: usize) -> Option<u32> {
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses an HTTP date in IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7).
///
/// The obsolete RFC 850 and asctime forms are not accepted; servers have sent IMF-fixdate for
/// decades and `Retry-After` falls back to exponential backoff when the value does not parse.
pub fn parse_http_date(value: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = value.split(' ').collect();
    let [weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let weekday = weekday.strip_suffix(',')?;
    let weekday_index = WEEKDAYS.iter().position(|w| w == &weekday)?;
    let day = fixed_digits(day, 2)?;
    let month = MONTHS.iter().position(|m| m == month)? as u32 + 1;
    let year = i64::from(fixed_digits(year, 4)?);
    let mut hms = time.split(':');
    let (Some(h), Some(m), Some(s), None) = (hms.next(), hms.next(), hms.next(), hms.next()) else {
        return None;
    };
    let (h, m, s) = (
        fixed_digits(h, 2)?,
        fixed_digits(m, 2)?,
        fixed_digits(s, 2)?,
    );
    // Second 60 is a leap second, which the grammar allows.
    if day == 0 || day > days_in_month(year, month) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    // 1970-01-01 was a Thursday; a mismatched weekday means a corrupt date.
    if (days + 3).rem_euclid(7) != weekday_index as i64 {
        return None;
    }
    let secs = days * 86_400 + i64::from(h * 3600 + m * 60 + s);
    let secs = u64::try_from(secs).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// The successes after which a host's backoff count drops by one.
const SUCCESSES_PER_RECOVERY: u32 = 6;

/// Per-host backoff state, shared by all requests to one host (wrap it in a `Mutex`).
///
/// Each failure raises the count and pushes back the earliest time of the next request; every
/// six successes lower it by one, so a host that fails now and then recovers slowly instead of
/// being trusted again after one lucky response. At the retry limit the host is dropped
/// ("backoff limit reached").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostBackoff {
    count: u32,
    successes: u32,
    limit: u32,
    until: Option<Instant>,
}

impl HostBackoff {
    /// A healthy host that is dropped after `limit` unrecovered failures.
    pub fn new(limit: u32) -> Self {
        HostBackoff {
            count: 0,
            successes: 0,
            limit,
            until: None,
        }
    }

    /// The current failure count.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// True once the count has reached the limit: the host should not be used.
    pub fn limit_reached(&self) -> bool {
        self.count >= self.limit
    }

    /// Records a failure at `now`; the next request must wait for the policy's backoff or for
    /// `min_wait` (a `Retry-After`), whichever is longer. Returns [`Self::limit_reached`].
    pub fn failure(&mut self, now: Instant, policy: &RetryPolicy, min_wait: Duration) -> bool {
        self.count = self.count.saturating_add(1).min(self.limit.max(1));
        self.successes = 0;
        let wait = policy.backoff(self.count).max(min_wait);
        self.until = now.checked_add(wait);
        self.limit_reached()
    }

    /// Records a success.
    pub fn success(&mut self) {
        if self.count == 0 {
            return;
        }
        self.successes += 1;
        if self.successes >= SUCCESSES_PER_RECOVERY {
            self.successes = 0;
            self.count -= 1;
        }
    }

    /// How long a request starting at `now` must wait.
    pub fn wait(&self, now: Instant) -> Duration {
        self.until
            .map_or(Duration::ZERO, |u| u.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn decide_table() {
        let p = RetryPolicy::default();
        let now = at(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let none: &[(&str, &str)] = &[];
        let ra_secs: &[(&str, &str)] = &[("retry-after", "7")];
        let ra_date: &[(&str, &str)] = &[("Retry-After", "Sun, 06 Nov 1994 08:49:47 GMT")];
        let ra_past: &[(&str, &str)] = &[("Retry-After", "Sun, 06 Nov 1994 08:00:00 GMT")];
        let ra_huge: &[(&str, &str)] = &[("Retry-After", "86400")];
        let ra_bad: &[(&str, &str)] = &[("Retry-After", "soon")];
        use Decision::*;
        use ErrorKind as K;
        use Outcome::{Network, Status};
        type Case<'a> = (u32, Outcome, &'a [(&'a str, &'a str)], Decision);
        let cases: &[Case] = &[
            (1, Status(200), none, Done),
            (6, Status(201), none, Done),
            (1, Status(304), none, Done),
            (1, Status(401), none, Reauth),
            (6, Status(401), none, Fail(K::Unauthorized)),
            (1, Status(403), none, DropHost(K::Unauthorized)),
            (1, Status(404), none, NextHost(K::NotFound)),
            (6, Status(404), none, NextHost(K::NotFound)),
            (1, Status(416), none, NextHost(K::HttpStatus)),
            (1, Status(400), none, DropHost(K::HttpStatus)),
            (1, Status(405), none, DropHost(K::HttpStatus)),
            (1, Status(501), none, DropHost(K::HttpStatus)),
            (1, Status(302), none, DropHost(K::HttpStatus)),
            // Exponential backoff by attempt.
            (1, Status(500), none, RetryAfter(MS(100))),
            (2, Status(502), none, RetryAfter(MS(200))),
            (3, Status(504), none, RetryAfter(MS(400))),
            (5, Status(408), none, RetryAfter(MS(1600))),
            (6, Status(500), none, Fail(K::HttpStatus)),
            (6, Status(504), none, Fail(K::HttpStatus)),
            // Retry-After for 429/503 only.
            (1, Status(429), ra_secs, RetryAfter(MS(7000))),
            (1, Status(503), ra_date, RetryAfter(MS(10_000))),
            (1, Status(429), ra_past, RetryAfter(Duration::ZERO)),
            (1, Status(429), ra_huge, RetryAfter(Duration::from_secs(60))),
            (2, Status(429), ra_bad, RetryAfter(MS(200))),
            (1, Status(500), ra_secs, RetryAfter(MS(100))),
            (6, Status(429), ra_secs, Fail(K::RateLimit)),
            // Network errors.
            (
                1,
                Network(NetError::ConnectRefused),
                none,
                RetryAfter(MS(100)),
            ),
            (4, Network(NetError::Reset), none, RetryAfter(MS(800))),
            (2, Network(NetError::Timeout), none, RetryAfter(MS(200))),
            (2, Network(NetError::Dns), none, RetryAfter(MS(200))),
            (6, Network(NetError::Other), none, Fail(K::Network)),
            (1, Network(NetError::Tls), none, DropHost(K::Network)),
            (1, Outcome::NotRetryable, none, Fail(K::Network)),
            // Attempt 0 is treated as the first.
            (0, Status(500), none, RetryAfter(MS(100))),
        ];
        for (attempt, outcome, headers, want) in cases {
            assert_eq!(
                p.decide(*attempt, outcome, headers, now),
                *want,
                "attempt {attempt} {outcome:?} {headers:?}"
            );
        }
    }

    #[test]
    fn retry_limit_bounds_attempts() {
        let p = RetryPolicy {
            retry_limit: 2,
            ..RetryPolicy::default()
        };
        assert_eq!(p.max_attempts(), 3);
        let now = at(0);
        let mut attempts = 0;
        for attempt in 1..=100 {
            attempts = attempt;
            match p.decide(attempt, &Outcome::Status(502), &[], now) {
                Decision::RetryAfter(_) => continue,
                Decision::Fail(kind) => {
                    assert_eq!(kind, ErrorKind::HttpStatus);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(attempts, 3);
    }

    #[test]
    fn backoff_caps_and_survives_huge_counts() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0), Duration::ZERO);
        assert_eq!(p.backoff(1), MS(100));
        assert_eq!(p.backoff(9), MS(25_600));
        assert_eq!(p.backoff(10), Duration::from_secs(30));
        assert_eq!(p.backoff(33), Duration::from_secs(30));
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn jitter_is_deterministic_and_bounded() {
        let p = RetryPolicy {
            jitter: Jitter::Seeded(42),
            ..RetryPolicy::default()
        };
        let q = p.clone();
        let mut differs = false;
        for n in 1..=12 {
            let base = RetryPolicy::default().backoff(n);
            let d = p.backoff(n);
            assert_eq!(d, q.backoff(n), "same seed, same delay");
            assert!(d <= base && d >= base * 3 / 4, "{n}: {d:?} vs {base:?}");
            differs |= d != base;
        }
        assert!(differs, "jitter never changed a delay");
        let other = RetryPolicy {
            jitter: Jitter::Seeded(43),
            ..RetryPolicy::default()
        };
        assert!((1..=12).any(|n| other.backoff(n) != p.backoff(n)));
    }

    #[test]
    fn http_date_table() {
        let cases: &[(&str, Option<u64>)] = &[
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(784_111_777)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
            ("Tue, 29 Feb 2000 12:00:00 GMT", Some(951_825_600)),
            ("Sat, 01 Jan 2000 00:00:00 GMT", Some(946_684_800)),
            ("Fri, 31 Dec 2038 23:59:60 GMT", Some(2_177_452_800)),
            ("Wed, 31 Dec 1969 23:59:59 GMT", None), // before the epoch
            ("Mon, 06 Nov 1994 08:49:37 GMT", None), // wrong weekday
            ("Sun, 6 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06 nov 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 08:49:37 UTC", None),
            ("Sun, 06 Nov 1994 24:00:00 GMT", None),
            ("Sun, 06 Nov 1994 08:49 GMT", None),
            ("Thu, 29 Feb 2001 00:00:00 GMT", None),
            ("Sunday, 06-Nov-94 08:49:37 GMT", None), // RFC 850 form
            ("Sun Nov  6 08:49:37 1994", None),       // asctime form
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_http_date(input), want.map(at), "{input}");
        }
    }

    #[test]
    fn retry_after_table() {
        let now = at(1000);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(retry_after("-1", now), None);
        assert_eq!(retry_after("1.5", now), None);
        assert_eq!(retry_after("99999999999999999999999", now), None);
        assert_eq!(
            retry_after("Thu, 01 Jan 1970 00:20:00 GMT", now),
            Some(Duration::from_secs(200))
        );
        assert_eq!(
            retry_after("Thu, 01 Jan 1970 00:00:01 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn host_backoff_counts_and_recovers() {
        let p = RetryPolicy::default();
        let t0 = Instant::now();
        let mut h = HostBackoff::new(p.retry_limit);
        assert_eq!(h.wait(t0), Duration::ZERO);
        assert!(!h.failure(t0, &p, Duration::ZERO));
        assert_eq!(h.count(), 1);
        assert_eq!(h.wait(t0), MS(100));
        assert!(!h.failure(t0, &p, Duration::ZERO));
        assert_eq!(h.wait(t0), MS(200));
        assert_eq!(h.wait(t0 + MS(150)), MS(50));
        assert_eq!(h.wait(t0 + MS(500)), Duration::ZERO);
        // Retry-After longer than the backoff wins.
        h.failure(t0, &p, Duration::from_secs(5));
        assert_eq!(h.wait(t0), Duration::from_secs(5));
        assert_eq!(h.count(), 3);

        // Five successes are not enough to lower the count, the sixth is.
        for _ in 0..5 {
            h.success();
        }
        assert_eq!(h.count(), 3);
        h.success();
        assert_eq!(h.count(), 2);
        // A failure resets the success streak.
        for _ in 0..5 {
            h.success();
        }
        h.failure(t0, &p, Duration::ZERO);
        assert_eq!(h.count(), 3);
        h.success();
        assert_eq!(h.count(), 3);

        h.failure(t0, &p, Duration::ZERO);
        assert!(
            h.failure(t0, &p, Duration::ZERO),
            "5th failure reaches the limit"
        );
        assert!(h.limit_reached());
        // The count saturates at the limit.
        h.failure(t0, &p, Duration::ZERO);
        assert_eq!(h.count(), 5);
        for _ in 0..6 {
            h.success();
        }
        assert!(!h.limit_reached());
    }

    #[test]
    fn no_backoff_requests_move_on() {
        let p = RetryPolicy::default();
        let now = at(0);
        let ra: &[(&str, &str)] = &[("Retry-After", "30")];
        use Decision::*;
        use ErrorKind as K;
        let cases = [
            (Outcome::Status(202), Done),
            (Outcome::Status(401), Reauth),
            (Outcome::Status(404), NextHost(K::NotFound)),
            (Outcome::Status(405), NextHost(K::HttpStatus)),
            (Outcome::Status(403), NextHost(K::Unauthorized)),
            (Outcome::Status(429), NextHost(K::RateLimit)),
            (Outcome::Status(502), NextHost(K::HttpStatus)),
            (Outcome::Network(NetError::Reset), NextHost(K::Network)),
            (Outcome::Network(NetError::Tls), NextHost(K::Network)),
            (Outcome::NotRetryable, Fail(K::Network)),
        ];
        for (outcome, want) in cases {
            assert_eq!(
                p.decide_no_backoff(1, &outcome, ra, now),
                want,
                "{outcome:?}"
            );
        }
    }

    #[test]
    fn status_kinds() {
        assert_eq!(status_error_kind(401), ErrorKind::Unauthorized);
        assert_eq!(status_error_kind(403), ErrorKind::Unauthorized);
        assert_eq!(status_error_kind(404), ErrorKind::NotFound);
        assert_eq!(status_error_kind(429), ErrorKind::RateLimit);
        assert_eq!(status_error_kind(418), ErrorKind::HttpStatus);
    }
}
