//! A small URL type for registry requests.
//!
//! Registries only ever need `http`/`https` URLs with a host, an optional port, a path and a
//! query, so this type covers exactly that instead of pulling in a general URL crate. Paths and
//! queries are kept as the server sent them (percent-encoded); only values we add ourselves are
//! encoded, by [`Url::append_query`]. Fragments are dropped: they never reach the server.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use crate::error::{Error, ErrorKind, Result};

/// The URL schemes a registry can be reached with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP (registries configured with `tls: disabled`).
    Http,
    /// HTTP over TLS, the default.
    Https,
}

impl Scheme {
    /// The scheme name as written in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The port used when a URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// An absolute `http`/`https` URL.
///
/// The host is stored lower-cased and without IPv6 brackets; [`fmt::Display`] puts the brackets
/// back. Two URLs compare equal when all parts are equal as stored (no port defaulting, see
/// [`Url::same_origin`] for that).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Url {
    scheme: Scheme,
    userinfo: Option<String>,
    host: String,
    port: Option<u16>,
    path: String,
    query: Option<String>,
}

fn invalid(input: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("invalid url {input:?}: {why}"),
    )
}

/// True for bytes allowed unencoded in a path or query as we pass them through. Anything else
/// (spaces, controls, quotes, non-ASCII) means the server sent something we would have to guess
/// how to encode, so parsing rejects it.
fn is_url_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%[]".contains(&b)
}

/// Splits `scheme:` off a reference, if it has one (RFC 3986 scheme syntax).
fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let colon = s.find(':')?;
    let name = &s[..colon];
    let mut chars = name.chars();
    let first = chars.next()?;
    if !first.is_ascii_alphabetic()
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    Some((name, &s[colon + 1..]))
}

impl Url {
    /// Parses an absolute `http://` or `https://` URL.
    pub fn parse(input: &str) -> Result<Url> {
        let Some((scheme, rest)) = split_scheme(input) else {
            return Err(invalid(input, "missing scheme"));
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(invalid(input, "scheme must be http or https")),
        };
        let Some(rest) = rest.strip_prefix("//") else {
            return Err(invalid(input, "missing host"));
        };
        // Fragments stay on the client.
        let rest = rest.split('#').next().unwrap_or_default();
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_query) = rest.split_at(auth_end);
        let (userinfo, host, port) = parse_authority(input, authority)?;
        let (path, query) = split_path_query(input, path_query)?;
        let path = if path.is_empty() { "/" } else { path };
        Ok(Url {
            scheme,
            userinfo,
            host,
            port,
            path: path.to_string(),
            query,
        })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The `user:password` part, if present (proxy URLs; never used for registries).
    pub fn userinfo(&self) -> Option<&str> {
        self.userinfo.as_deref()
    }

    /// The host, lower-cased, IPv6 literals without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The explicit port or the scheme's default.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or_else(|| self.scheme.default_port())
    }

    /// The host as an IP address when it is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// `host[:port]` as written in a URL (IPv6 bracketed), e.g. for the `Host` header.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }

    /// The path, always starting with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query without `?`, if present.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// Replaces the path (must start with `/`).
    pub fn set_path(&mut self, path: &str) -> Result<()> {
        let (p, q) = split_path_query(path, path)?;
        if q.is_some() || !p.starts_with('/') {
            return Err(invalid(path, "path must start with / and hold no query"));
        }
        self.path = p.to_string();
        Ok(())
    }

    /// Replaces the raw query (`None` removes it). The caller is responsible for encoding.
    pub fn set_query(&mut self, query: Option<&str>) {
        self.query = query.map(str::to_string);
    }

    /// Appends `key=value` to the query, percent-encoding both, with `&` when a query exists.
    ///
    /// Upload `Location`s carry opaque query parameters of their own, so `digest=` must be added
    /// to them rather than replace them.
    pub fn append_query(&mut self, key: &str, value: &str) {
        let pair = format!("{}={}", encode_query_value(key), encode_query_value(value));
        self.query = Some(match self.query.take() {
            Some(q) if !q.is_empty() => format!("{q}&{pair}"),
            _ => pair,
        });
    }

    /// True when both URLs share scheme, host and effective port, the unit that credentials
    /// are scoped to.
    pub fn same_origin(&self, other: &Url) -> bool {
        self.scheme == other.scheme
            && self.host == other.host
            && self.port_or_default() == other.port_or_default()
    }

    /// Resolves `reference` (a `Location` or `Link` target) against this URL (RFC 3986 §5.2).
    ///
    /// Handles absolute URLs, scheme-relative `//host/path`, absolute paths, relative paths,
    /// query-only (`?x=1`) and empty references.
    pub fn join(&self, reference: &str) -> Result<Url> {
        let reference = reference.trim();
        if split_scheme(reference).is_some() {
            return Url::parse(reference);
        }
        if reference.starts_with("//") {
            return Url::parse(&format!("{}:{reference}", self.scheme.as_str()));
        }
        let reference = reference.split('#').next().unwrap_or_default();
        let (ref_path, ref_query) = split_path_query(reference, reference)?;
        let mut out = self.clone();
        if ref_path.is_empty() {
            // Query-only or empty reference: keep the base path.
            if ref_query.is_some() {
                out.query = ref_query;
            }
            return Ok(out);
        }
        let merged = if ref_path.starts_with('/') {
            ref_path.to_string()
        } else {
            // Merge with the base path minus its last segment.
            let dir_end = self.path.rfind('/').map(|i| i + 1).unwrap_or(0);
            format!("{}{ref_path}", &self.path[..dir_end])
        };
        out.path = remove_dot_segments(&merged);
        out.query = ref_query;
        Ok(out)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        if let Some(u) = &self.userinfo {
            write!(f, "{u}@")?;
        }
        write!(f, "{}{}", self.authority(), self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Url {
    type Err = Error;
    fn from_str(s: &str) -> Result<Url> {
        Url::parse(s)
    }
}

type Authority = (Option<String>, String, Option<u16>);

fn parse_authority(input: &str, authority: &str) -> Result<Authority> {
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => {
            if u.bytes().any(|b| !is_url_byte(b) || b == b'/') {
                return Err(invalid(input, "bad userinfo"));
            }
            (Some(u.to_string()), h)
        }
        None => (None, authority),
    };
    let (host, port_str) = if let Some(rest) = hostport.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return Err(invalid(input, "unclosed ["));
        };
        if v6.parse::<Ipv6Addr>().is_err() {
            return Err(invalid(input, "bad IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => return Err(invalid(input, "junk after IPv6 address")),
            },
        };
        (v6.to_ascii_lowercase(), port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
            None => (hostport.to_ascii_lowercase(), None),
        }
    };
    if host.is_empty() {
        return Err(invalid(input, "missing host"));
    }
    if !host.contains(':')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(invalid(input, "bad host"));
    }
    let port = match port_str {
        // `host:` with an empty port is legal and means the default.
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => match p.parse::<u16>() {
            Ok(n) => Some(n),
            Err(_) => return Err(invalid(input, "port out of range")),
        },
        Some(_) => return Err(invalid(input, "bad port")),
    };
    Ok((userinfo, host, port))
}

fn split_path_query<'a>(input: &str, s: &'a str) -> Result<(&'a str, Option<String>)> {
    if let Some(b) = s.bytes().find(|&b| !is_url_byte(b)) {
        return Err(invalid(
            input,
            &format!("character {:?} must be encoded", b as char),
        ));
    }
    Ok(match s.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (s, None),
    })
}

/// Removes `.` and `..` segments from an absolute path (RFC 3986 §5.2.4), never climbing
/// above the root.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// Percent-encodes a query key or value: everything but RFC 3986 unreserved characters.
///
/// Encoding `:`, `/`, `+` and `=` too keeps values such as `repository:a/b:pull` or base64
/// tokens intact whatever the server's query parser does with them.
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Encodes pairs as an `application/x-www-form-urlencoded` body (token POSTs).
pub fn form_encode(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode_query_value(k), encode_query_value(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        // (input, scheme, host, port, path, query, display)
        type Case<'a> = (
            &'a str,
            Scheme,
            &'a str,
            Option<u16>,
            &'a str,
            Option<&'a str>,
            &'a str,
        );
        let cases: &[Case] = &[
            (
                "https://registry.example.com/v2/",
                Scheme::Https,
                "registry.example.com",
                None,
                "/v2/",
                None,
                "https://registry.example.com/v2/",
            ),
            (
                "HTTP://Localhost:5000",
                Scheme::Http,
                "localhost",
                Some(5000),
                "/",
                None,
                "http://localhost:5000/",
            ),
            (
                "https://[::1]:5000/v2/a/tags/list?n=10#frag",
                Scheme::Https,
                "::1",
                Some(5000),
                "/v2/a/tags/list",
                Some("n=10"),
                "https://[::1]:5000/v2/a/tags/list?n=10",
            ),
            (
                "http://[FE80::1]/x",
                Scheme::Http,
                "fe80::1",
                None,
                "/x",
                None,
                "http://[fe80::1]/x",
            ),
            (
                "https://h?q",
                Scheme::Https,
                "h",
                None,
                "/",
                Some("q"),
                "https://h/?q",
            ),
            (
                "https://h:/p",
                Scheme::Https,
                "h",
                None,
                "/p",
                None,
                "https://h/p",
            ),
        ];
        for (input, scheme, host, port, path, query, display) in cases {
            let u = Url::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(u.scheme(), *scheme, "{input}");
            assert_eq!(u.host(), *host, "{input}");
            assert_eq!(u.port(), *port, "{input}");
            assert_eq!(u.path(), *path, "{input}");
            assert_eq!(u.query(), *query, "{input}");
            assert_eq!(u.to_string(), *display, "{input}");
        }
    }

    #[test]
    fn parse_rejects() {
        for bad in [
            "",
            "registry.example.com/v2/",
            "ftp://h/",
            "https:/h",
            "https://",
            "https://:80/",
            "https://h:99999/",
            "https://h:8o/",
            "https://[::1/",
            "https://[nothex]/",
            "https://[::1]x/",
            "https://h/a b",
            "https://h/\u{e9}",
            "https://h\"/",
        ] {
            let err = Url::parse(bad).expect_err(bad);
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn userinfo_kept_for_proxies() {
        let u = Url::parse("http://user:p%40ss@proxy:3128").unwrap();
        assert_eq!(u.userinfo(), Some("user:p%40ss"));
        assert_eq!(u.host(), "proxy");
        assert_eq!(u.to_string(), "http://user:p%40ss@proxy:3128/");
    }

    #[test]
    fn join_table() {
        let base =
            Url::parse("https://reg.example.com:5000/v2/repo/blobs/uploads/abc?state=x").unwrap();
        let cases = [
            // Absolute URLs replace everything (S3 presigned redirects).
            (
                "https://s3.example.com/b?sig=1",
                "https://s3.example.com/b?sig=1",
            ),
            ("http://other/", "http://other/"),
            // Scheme-relative keeps the scheme.
            ("//cdn.example.com/x", "https://cdn.example.com/x"),
            // Absolute path keeps scheme and authority.
            (
                "/v2/repo/blobs/uploads/def?_state=y",
                "https://reg.example.com:5000/v2/repo/blobs/uploads/def?_state=y",
            ),
            ("/v2/_catalog", "https://reg.example.com:5000/v2/_catalog"),
            // Relative path merges with the base directory.
            (
                "def",
                "https://reg.example.com:5000/v2/repo/blobs/uploads/def",
            ),
            (
                "../x?y=1",
                "https://reg.example.com:5000/v2/repo/blobs/x?y=1",
            ),
            ("./", "https://reg.example.com:5000/v2/repo/blobs/uploads/"),
            ("../../../../../../up", "https://reg.example.com:5000/up"),
            // Query only keeps the path.
            (
                "?last=b&n=2",
                "https://reg.example.com:5000/v2/repo/blobs/uploads/abc?last=b&n=2",
            ),
            // Empty and fragment-only references are the base itself.
            (
                "",
                "https://reg.example.com:5000/v2/repo/blobs/uploads/abc?state=x",
            ),
            (
                "#top",
                "https://reg.example.com:5000/v2/repo/blobs/uploads/abc?state=x",
            ),
            ("  /trimmed  ", "https://reg.example.com:5000/trimmed"),
        ];
        for (reference, want) in cases {
            let got = base
                .join(reference)
                .unwrap_or_else(|e| panic!("{reference}: {e}"));
            assert_eq!(got.to_string(), want, "{reference}");
        }
        assert!(base.join("mailto:x@y").is_err());
        assert!(base.join("/a b").is_err());
    }

    #[test]
    fn remove_dot_segments_table() {
        for (input, want) in [
            ("/a/b/c/./../../g", "/a/g"),
            ("/a/./b/", "/a/b/"),
            ("/a/..", "/"),
            ("/..", "/"),
            ("/a/b/..", "/a/"),
            ("/", "/"),
        ] {
            assert_eq!(remove_dot_segments(input), want, "{input}");
        }
    }

    #[test]
    fn append_query_table() {
        let mut u = Url::parse("https://h/v2/r/blobs/uploads/1?_state=abc").unwrap();
        u.append_query("digest", "sha256:0123");
        assert_eq!(u.query(), Some("_state=abc&digest=sha256%3A0123"));

        let mut u = Url::parse("https://h/v2/r/blobs/uploads/1").unwrap();
        u.append_query("scope", "repository:a/b:pull,push");
        assert_eq!(u.query(), Some("scope=repository%3Aa%2Fb%3Apull%2Cpush"));

        // An empty query (`?` alone) gets no leading `&`.
        let mut u = Url::parse("https://h/x?").unwrap();
        u.append_query("n", "1");
        assert_eq!(u.to_string(), "https://h/x?n=1");
    }

    #[test]
    fn encode_query_value_table() {
        for (input, want) in [
            ("abc-._~XYZ09", "abc-._~XYZ09"),
            ("a b", "a%20b"),
            ("a+b=c&d", "a%2Bb%3Dc%26d"),
            ("é", "%C3%A9"),
            ("", ""),
        ] {
            assert_eq!(encode_query_value(input), want, "{input}");
        }
    }

    #[test]
    fn same_origin_defaults_ports() {
        let a = Url::parse("https://reg.example.com/v2/").unwrap();
        assert!(a.same_origin(&Url::parse("https://REG.example.com:443/x").unwrap()));
        assert!(!a.same_origin(&Url::parse("http://reg.example.com/x").unwrap()));
        assert!(!a.same_origin(&Url::parse("https://reg.example.com:5000/").unwrap()));
        assert!(!a.same_origin(&Url::parse("https://cdn.example.com/").unwrap()));
    }

    #[test]
    fn set_path_and_authority() {
        let mut u = Url::parse("https://[::1]:5000/").unwrap();
        u.set_path("/v2/a/manifests/latest").unwrap();
        assert_eq!(u.authority(), "[::1]:5000");
        assert_eq!(u.ip(), Some("::1".parse().unwrap()));
        assert_eq!(u.port_or_default(), 5000);
        assert!(u.set_path("relative").is_err());
        assert!(u.set_path("/x?y").is_err());
        assert_eq!(u.to_string(), "https://[::1]:5000/v2/a/manifests/latest");
    }
}
