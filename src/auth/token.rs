//! Bearer token requests and responses (the Docker token protocol), pure.
//!
//! With a refresh or identity token we POST an OAuth2 `refresh_token` grant; otherwise we GET the
//! realm with the scopes as query parameters, with HTTP Basic when a user/password is known and
//! anonymously otherwise. The clock is a parameter (`now`, unix seconds) so expiry is testable.

use std::fmt;

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};
use crate::url::{form_encode, Url};

/// Tokens shorter-lived than this are treated as living this long (registries send 0 or omit it).
pub const MIN_TOKEN_LIFE: u64 = 60;
/// A token is not used in its last seconds, so it cannot expire in flight.
pub const EXPIRY_MARGIN: u64 = 5;
/// Largest token response body worth parsing.
pub const MAX_TOKEN_RESPONSE: usize = 1 << 20;

/// Stored credentials for a host. `Debug` hides the secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credential {
    /// User name for Basic auth and the `account` parameter.
    pub user: String,
    /// Password.
    pub pass: String,
    /// Identity (refresh) token, used with the `refresh_token` grant.
    pub token: String,
}

impl Credential {
    /// True when a user and password are both set.
    pub fn has_basic(&self) -> bool {
        !self.user.is_empty() && !self.pass.is_empty()
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("user", &self.user)
            .field("pass", &redact(&self.pass))
            .field("token", &redact(&self.token))
            .finish()
    }
}

pub(crate) fn redact(s: &str) -> &'static str {
    if s.is_empty() {
        ""
    } else {
        "<redacted>"
    }
}

/// A request to the token service.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenRequest {
    /// `POST url` with an `application/x-www-form-urlencoded` body of `form`.
    Post {
        /// Token endpoint (the realm).
        url: Url,
        /// Form fields, in order.
        form: Vec<(String, String)>,
    },
    /// `GET url`, with HTTP Basic when `basic` is set.
    Get {
        /// Realm with the query parameters appended.
        url: Url,
        /// `(user, pass)` for an `Authorization: Basic` header.
        basic: Option<(String, String)>,
    },
}

impl TokenRequest {
    /// The URL to send the request to.
    pub fn url(&self) -> &Url {
        match self {
            TokenRequest::Post { url, .. } | TokenRequest::Get { url, .. } => url,
        }
    }

    /// The form body of a POST, encoded.
    pub fn body(&self) -> Option<String> {
        match self {
            TokenRequest::Post { form, .. } => Some(form_encode(form)),
            TokenRequest::Get { .. } => None,
        }
    }

    /// The `Authorization` header value of a GET with credentials.
    pub fn authorization(&self) -> Option<String> {
        match self {
            TokenRequest::Get {
                basic: Some((u, p)),
                ..
            } => Some(super::basic::header(u, p)),
            _ => None,
        }
    }
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenRequest::Post { url, form } => {
                let form: Vec<(&str, &str)> = form
                    .iter()
                    .map(|(k, v)| {
                        let v = if k == "refresh_token" {
                            redact(v)
                        } else {
                            v.as_str()
                        };
                        (k.as_str(), v)
                    })
                    .collect();
                f.debug_struct("Post")
                    .field("url", &url.to_string())
                    .field("form", &form)
                    .finish()
            }
            TokenRequest::Get { url, basic } => f
                .debug_struct("Get")
                .field("url", &url.to_string())
                .field("basic", &basic.as_ref().map(|(u, p)| (u, redact(p))))
                .finish(),
        }
    }
}

/// Everything a token request is built from.
#[derive(Debug, Clone, Copy)]
pub struct TokenParams<'a> {
    /// The absolute realm.
    pub realm: &'a Url,
    /// The challenge's `service`, possibly empty.
    pub service: &'a str,
    /// Merged scopes.
    pub scopes: &'a [String],
    /// Sent as `client_id` (regclient uses its user agent).
    pub client_id: &'a str,
}

/// A refresh-token grant: `POST realm` with `grant_type=refresh_token`.
pub fn post_request(p: TokenParams<'_>, refresh_token: &str) -> TokenRequest {
    let mut form = vec![
        ("grant_type".to_string(), "refresh_token".to_string()),
        ("refresh_token".to_string(), refresh_token.to_string()),
    ];
    if !p.service.is_empty() {
        form.push(("service".to_string(), p.service.to_string()));
    }
    if !p.scopes.is_empty() {
        form.push(("scope".to_string(), p.scopes.join(" ")));
    }
    form.push(("client_id".to_string(), p.client_id.to_string()));
    TokenRequest::Post {
        url: p.realm.clone(),
        form,
    }
}

/// A GET token request; with `cred` user/pass it carries Basic auth and `account`.
pub fn get_request(p: TokenParams<'_>, cred: &Credential) -> TokenRequest {
    let mut url = p.realm.clone();
    url.append_query("client_id", p.client_id);
    if !p.service.is_empty() {
        url.append_query("service", p.service);
    }
    for s in p.scopes {
        url.append_query("scope", s);
    }
    let basic = if cred.has_basic() {
        url.append_query("account", &cred.user);
        Some((cred.user.clone(), cred.pass.clone()))
    } else {
        None
    };
    TokenRequest::Get { url, basic }
}

/// A bearer token with its lifetime. `Debug` hides the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The bearer token.
    pub token: String,
    /// Unix seconds after which the token is dead.
    pub expires_at: u64,
    /// A refresh token to use for the next fetch instead of credentials.
    pub refresh_token: Option<String>,
}

impl Token {
    /// True when the token can still be used at `now` (until [`EXPIRY_MARGIN`] before expiry).
    pub fn valid_at(&self, now: u64) -> bool {
        now.saturating_add(EXPIRY_MARGIN) < self.expires_at
    }

    /// The `Authorization` header value.
    pub fn header(&self) -> String {
        format!("Bearer {}", self.token)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("token", &redact(&self.token))
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token.as_deref().map(redact))
            .finish()
    }
}

#[derive(Deserialize)]
struct RawToken {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    issued_at: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// Parses a token service response body at time `now`.
///
/// `token` wins over `access_token`; `expires_in` below [`MIN_TOKEN_LIFE`] is raised; an
/// `issued_at` that is missing, unparsable, in the future or already expired is replaced by `now`
/// (clock skew between us and the token server must not make a fresh token look dead).
pub fn parse_response(body: &[u8], now: u64) -> Result<Token> {
    if body.len() > MAX_TOKEN_RESPONSE {
        return Err(Error::new(ErrorKind::SizeLimit, "token response too large"));
    }
    // Only the position: serde messages can quote values, and values here are secrets.
    let raw: RawToken = serde_json::from_slice(body).map_err(|e| {
        Error::new(
            ErrorKind::Parse,
            format!(
                "parsing token response: invalid JSON at line {} column {}",
                e.line(),
                e.column()
            ),
        )
    })?;
    let token = if raw.token.is_empty() {
        raw.access_token
    } else {
        raw.token
    };
    if token.is_empty() {
        return Err(Error::new(
            ErrorKind::Unauthorized,
            "token response contains no token",
        ));
    }
    let expires_in = raw
        .expires_in
        .and_then(|v| v.as_f64())
        .filter(|v| v.is_finite() && *v > 0.0)
        .map_or(0, |v| v as u64)
        .max(MIN_TOKEN_LIFE);
    let issued = raw
        .issued_at
        .as_deref()
        .and_then(parse_rfc3339)
        .filter(|&t| t <= now && t.saturating_add(expires_in) >= now)
        .unwrap_or(now);
    Ok(Token {
        token,
        expires_at: issued.saturating_add(expires_in),
        refresh_token: raw.refresh_token.filter(|r| !r.is_empty()),
    })
}

/// Parses an RFC 3339 timestamp (`2024-05-01T10:00:00.123Z`, `...+02:00`) to unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let off = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
    u64::try_from(secs).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000; // 2023-11-14T22:13:20Z

    fn params<'a>(realm: &'a Url, scopes: &'a [String]) -> TokenParams<'a> {
        TokenParams {
            realm,
            service: "registry.docker.io",
            scopes,
            client_id: "regclient/test",
        }
    }

    #[test]
    fn rfc3339_table() {
        let cases = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2023-11-14T22:13:20Z", Some(NOW)),
            ("2023-11-14T22:13:20.123456789Z", Some(NOW)),
            ("2023-11-15T00:13:20+02:00", Some(NOW)),
            ("2023-11-14T21:13:20-01:00", Some(NOW)),
            ("2000-02-29T00:00:00Z", Some(951_782_400)),
            ("2023-11-14 22:13:20Z", Some(NOW)),
            ("2023-11-14T22:13:20", None),
            ("2023-13-14T22:13:20Z", None),
            ("2023-11-14T22:13:20.Z", None),
            ("yesterday", None),
            ("1969-12-31T23:59:59Z", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_rfc3339(s), want, "{s}");
        }
    }

    #[test]
    fn response_table() {
        struct Case {
            body: &'static str,
            token: &'static str,
            expires_at: u64,
            refresh: Option<&'static str>,
        }
        let cases = [
            Case {
                body: r#"{"token":"t1"}"#,
                token: "t1",
                expires_at: NOW + 60,
                refresh: None,
            },
            Case {
                body: r#"{"access_token":"a1","expires_in":300}"#,
                token: "a1",
                expires_at: NOW + 300,
                refresh: None,
            },
            Case {
                body: r#"{"token":"t","access_token":"a","expires_in":10}"#,
                token: "t",
                expires_at: NOW + 60,
                refresh: None,
            },
            // issued 100 s ago, 300 s life: keeps the server's issue time
            Case {
                body: r#"{"token":"t","expires_in":300,"issued_at":"2023-11-14T22:11:40Z"}"#,
                token: "t",
                expires_at: NOW + 200,
                refresh: None,
            },
            // issued in the future: reset to now
            Case {
                body: r#"{"token":"t","expires_in":300,"issued_at":"2030-01-01T00:00:00Z"}"#,
                token: "t",
                expires_at: NOW + 300,
                refresh: None,
            },
            // already expired by the server's clock: reset to now
            Case {
                body: r#"{"token":"t","expires_in":300,"issued_at":"2020-01-01T00:00:00Z"}"#,
                token: "t",
                expires_at: NOW + 300,
                refresh: None,
            },
            Case {
                body: r#"{"token":"t","issued_at":"garbage","refresh_token":"r"}"#,
                token: "t",
                expires_at: NOW + 60,
                refresh: Some("r"),
            },
        ];
        for c in cases {
            let t = parse_response(c.body.as_bytes(), NOW).unwrap();
            assert_eq!(t.token, c.token, "{}", c.body);
            assert_eq!(t.expires_at, c.expires_at, "{}", c.body);
            assert_eq!(t.refresh_token.as_deref(), c.refresh, "{}", c.body);
        }
        for bad in [r#"{}"#, r#"{"token":""}"#, "not json", r#"{"token":5}"#] {
            assert!(parse_response(bad.as_bytes(), NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn validity_margin() {
        let t = Token {
            token: "x".into(),
            expires_at: NOW + 60,
            refresh_token: None,
        };
        assert!(t.valid_at(NOW));
        assert!(t.valid_at(NOW + 54));
        assert!(!t.valid_at(NOW + 55));
        assert!(!t.valid_at(NOW + 1000));
        assert_eq!(t.header(), "Bearer x");
    }

    #[test]
    fn get_request_anonymous_and_basic() {
        let realm = Url::parse("https://auth.docker.io/token").unwrap();
        let scopes = vec![
            "repository:library/alpine:pull".to_string(),
            "registry:catalog:*".to_string(),
        ];
        let r = get_request(params(&realm, &scopes), &Credential::default());
        assert_eq!(
            r.url().to_string(),
            "https://auth.docker.io/token?client_id=regclient%2Ftest&service=registry.docker.io\
             &scope=repository%3Alibrary%2Falpine%3Apull&scope=registry%3Acatalog%3A%2A"
        );
        assert_eq!(r.authorization(), None);
        let cred = Credential {
            user: "bob".into(),
            pass: "s3cret".into(),
            token: String::new(),
        };
        let r = get_request(params(&realm, &scopes), &cred);
        assert!(r.url().to_string().ends_with("&account=bob"));
        assert_eq!(r.authorization().unwrap(), "Basic Ym9iOnMzY3JldA==");
        assert!(!format!("{r:?}").contains("s3cret"));
    }

    #[test]
    fn post_request_form() {
        let realm = Url::parse("https://auth.example/token").unwrap();
        let scopes = vec![
            "repository:a:pull".to_string(),
            "repository:b:pull,push".to_string(),
        ];
        let r = post_request(params(&realm, &scopes), "idtok");
        assert_eq!(
            r.body().unwrap(),
            "grant_type=refresh_token&refresh_token=idtok&service=registry.docker.io\
             &scope=repository%3Aa%3Apull%20repository%3Ab%3Apull%2Cpush&client_id=regclient%2Ftest"
        );
        assert!(!format!("{r:?}").contains("idtok"));
    }

    #[test]
    fn debug_redacts() {
        let c = Credential {
            user: "u".into(),
            pass: "pw-123".into(),
            token: "tok-456".into(),
        };
        let d = format!("{c:?}");
        assert!(
            d.contains("\"u\"") && !d.contains("pw-123") && !d.contains("tok-456"),
            "{d}"
        );
        let t = Token {
            token: "tok-789".into(),
            expires_at: 1,
            refresh_token: Some("ref-1".into()),
        };
        let d = format!("{t:?}");
        assert!(!d.contains("tok-789") && !d.contains("ref-1"), "{d}");
    }
}
