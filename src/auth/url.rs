//! The little URL handling auth needs: parse an absolute http(s) URL, resolve a relative realm
//! against the request URL, and percent-encode query and form values.
//!
//! Deliberately small (no userinfo, no normalisation of `..`): realms are token-service URLs, and
//! anything exotic is refused rather than guessed at.

use std::fmt;

use crate::error::{Error, ErrorKind, Result};

/// An absolute `http`/`https` URL split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `http` or `https`, lower-cased.
    pub scheme: String,
    /// `host[:port]`, IPv6 hosts in brackets.
    pub authority: String,
    /// The path, starting with `/` (`/` when empty).
    pub path: String,
    /// The query without `?`, if any.
    pub query: Option<String>,
}

impl Url {
    /// Parses an absolute http(s) URL; a fragment is dropped.
    pub fn parse(s: &str) -> Result<Url> {
        let bad =
            |why: &str| Error::new(ErrorKind::InvalidInput, format!("invalid url {s:?}: {why}"));
        let (scheme, rest) = s.split_once("://").ok_or_else(|| bad("not absolute"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad("scheme must be http or https"));
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if authority.is_empty()
            || authority.contains('@')
            || authority.contains(char::is_whitespace)
        {
            return Err(bad("invalid host"));
        }
        let (path, query) = split_query(&rest[end..]);
        Ok(Url {
            scheme,
            authority: authority.to_string(),
            path: if path.is_empty() {
                "/".to_string()
            } else {
                path.to_string()
            },
            query: query.map(str::to_string),
        })
    }

    /// Resolves `reference` (absolute, `//host/...`, `/path`, `path` or `?query`) against self.
    pub fn join(&self, reference: &str) -> Result<Url> {
        if reference.contains("://") {
            return Url::parse(reference);
        }
        if let Some(rest) = reference.strip_prefix("//") {
            return Url::parse(&format!("{}://{rest}", self.scheme));
        }
        let reference = reference.split('#').next().unwrap_or_default();
        let (path, query) = split_query(reference);
        let path = if path.is_empty() {
            self.path.clone()
        } else if path.starts_with('/') {
            path.to_string()
        } else {
            // Relative path: replace the last segment of the base path.
            let dir = &self.path[..self.path.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{path}")
        };
        Ok(Url {
            scheme: self.scheme.clone(),
            authority: self.authority.clone(),
            path: if path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            },
            query: match (query, path_is_empty(reference)) {
                (Some(q), _) => Some(q.to_string()),
                // `""` keeps the base query, like a browser; any path drops it.
                (None, true) => self.query.clone(),
                (None, false) => None,
            },
        })
    }

    /// The host without port or IPv6 brackets.
    pub fn host(&self) -> &str {
        if let Some(rest) = self.authority.strip_prefix('[') {
            return rest.split(']').next().unwrap_or_default();
        }
        self.authority.split(':').next().unwrap_or_default()
    }

    /// Appends `key=value` (value percent-encoded) to the query.
    pub fn append_query(&mut self, key: &str, value: &str) {
        let pair = format!("{}={}", encode(key), encode(value));
        self.query = Some(match self.query.take() {
            Some(q) if !q.is_empty() => format!("{q}&{pair}"),
            _ => pair,
        });
    }
}

fn path_is_empty(reference: &str) -> bool {
    split_query(reference).0.is_empty()
}

fn split_query(s: &str) -> (&str, Option<&str>) {
    match s.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (s, None),
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        Ok(())
    }
}

/// Percent-encodes everything except RFC 3986 unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Encodes pairs as an `application/x-www-form-urlencoded` body.
pub fn form_encode(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok = [
            (
                "https://auth.docker.io/token",
                "https",
                "auth.docker.io",
                "/token",
                None,
            ),
            ("HTTP://h:5000", "http", "h:5000", "/", None),
            (
                "https://[::1]:8/t?a=b#frag",
                "https",
                "[::1]:8",
                "/t",
                Some("a=b"),
            ),
        ];
        for (s, scheme, auth, path, query) in ok {
            let u = Url::parse(s).unwrap();
            assert_eq!(
                (
                    u.scheme.as_str(),
                    u.authority.as_str(),
                    u.path.as_str(),
                    u.query.as_deref()
                ),
                (scheme, auth, path, query),
                "{s}"
            );
        }
        for bad in [
            "/token",
            "ftp://h/x",
            "https:///x",
            "https://user@h/x",
            "token",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Url::parse("https://[::1]:8/").unwrap().host(), "::1");
        assert_eq!(Url::parse("https://h:8/").unwrap().host(), "h");
    }

    #[test]
    fn join_table() {
        let base = Url::parse("https://reg.example:5000/v2/repo/manifests/v1?x=1").unwrap();
        let cases = [
            ("/token", "https://reg.example:5000/token"),
            (
                "token?a=b",
                "https://reg.example:5000/v2/repo/manifests/token?a=b",
            ),
            ("//other/t", "https://other/t"),
            ("http://abs/t", "http://abs/t"),
            ("?y=2", "https://reg.example:5000/v2/repo/manifests/v1?y=2"),
            ("", "https://reg.example:5000/v2/repo/manifests/v1?x=1"),
        ];
        for (r, want) in cases {
            assert_eq!(base.join(r).unwrap().to_string(), want, "{r}");
        }
    }

    #[test]
    fn encoding() {
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(encode("a b~_.-"), "a%20b~_.-");
        assert_eq!(encode("é"), "%C3%A9");
        let mut u = Url::parse("https://h/t?x=1").unwrap();
        u.append_query("scope", "a b");
        assert_eq!(u.to_string(), "https://h/t?x=1&scope=a%20b");
        let form = form_encode(&[("a".into(), "1&2".into()), ("b".into(), "=".into())]);
        assert_eq!(form, "a=1%262&b=%3D");
    }
}
