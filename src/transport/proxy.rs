//! Proxy selection with Go's rules (`golang.org/x/net/http/httpproxy`).
//!
//! regclient is a Go program, so users' `HTTP_PROXY`/`NO_PROXY` settings were written for Go's
//! interpretation, which differs from ureq's built-in one (ureq applies the first of
//! `ALL_PROXY`/`HTTPS_PROXY`/`HTTP_PROXY` to every scheme and knows no CIDR or port entries).
//! The rules implemented here:
//!
//! - `HTTPS_PROXY` serves `https://` URLs and `HTTP_PROXY` serves `http://` URLs; for each
//!   variable the upper-case name wins when it is non-empty, else the lower-case one is used.
//! - When `REQUEST_METHOD` is set the process runs under CGI, where a client can inject
//!   `HTTP_PROXY` through a `Proxy:` request header ("httpoxy"); like Go, a plain-HTTP request
//!   that would use it is refused with an error instead of silently going elsewhere.
//! - A proxy without a scheme gets `http://`.
//! - `localhost` and loopback addresses are never proxied.
//! - `NO_PROXY` is a comma-separated list of: `*` (nothing is proxied); an IP address
//!   (optionally with port); a CIDR block (`10.0.0.0/8`, `fd00::/8`); `example.com` (the
//!   domain and its subdomains); `.example.com` or `*.example.com` (subdomains only); any host
//!   entry may carry `:port`, which must then match the URL's effective port.
//!
//! One deliberate difference: Go silently ignores a proxy value it cannot parse, which sends
//! traffic around the proxy the user configured; here it is an error.

use std::net::IpAddr;

use crate::error::{Error, ErrorKind, Result};
use crate::url::{Scheme, Url};

/// The proxy-related environment, captured once by the caller (the library reads no
/// environment itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    /// `HTTP_PROXY`, else `http_proxy`.
    pub http_proxy: String,
    /// `HTTPS_PROXY`, else `https_proxy`.
    pub https_proxy: String,
    /// `NO_PROXY`, else `no_proxy`.
    pub no_proxy: String,
    /// True when `REQUEST_METHOD` is set (running as a CGI script).
    pub cgi: bool,
}

impl ProxyEnv {
    /// Picks the proxy variables out of an environment snapshot such as `std::env::vars()`.
    pub fn from_vars<I, K, V>(vars: I) -> ProxyEnv
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars: Vec<(K, V)> = vars.into_iter().collect();
        let get = |name: &str| {
            vars.iter()
                .find(|(k, v)| k.as_ref() == name && !v.as_ref().is_empty())
                .map(|(_, v)| v.as_ref().to_string())
        };
        // Go's getEnvAny: the first non-empty of the names, upper-case first.
        let any = |upper: &str, lower: &str| get(upper).or_else(|| get(lower)).unwrap_or_default();
        ProxyEnv {
            http_proxy: any("HTTP_PROXY", "http_proxy"),
            https_proxy: any("HTTPS_PROXY", "https_proxy"),
            no_proxy: any("NO_PROXY", "no_proxy"),
            cgi: get("REQUEST_METHOD").is_some(),
        }
    }
}

/// The protocol spoken to a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyScheme {
    /// HTTP proxy (`CONNECT` for https targets).
    Http,
    /// HTTP proxy reached over TLS.
    Https,
    /// SOCKS5, names resolved locally.
    Socks5,
    /// SOCKS5, names resolved by the proxy.
    Socks5h,
}

impl ProxyScheme {
    /// The scheme name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyScheme::Http => "http",
            ProxyScheme::Https => "https",
            ProxyScheme::Socks5 => "socks5",
            ProxyScheme::Socks5h => "socks5h",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            ProxyScheme::Http => 80,
            ProxyScheme::Https => 443,
            ProxyScheme::Socks5 | ProxyScheme::Socks5h => 1080,
        }
    }
}

/// A proxy server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// How to talk to it.
    pub scheme: ProxyScheme,
    /// `user:password` (still percent-encoded), if given.
    pub userinfo: Option<String>,
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// Port, defaulted from the scheme.
    pub port: u16,
}

impl Proxy {
    /// Parses a proxy setting; a value without `scheme://` is taken as an HTTP proxy.
    pub fn parse(value: &str) -> Result<Proxy> {
        let value = value.trim();
        let bad = |why: &str| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("invalid proxy address {value:?}: {why}"),
            )
        };
        let (scheme, rest) = match value.split_once("://") {
            Some((s, rest)) => {
                let scheme = match s.to_ascii_lowercase().as_str() {
                    "http" => ProxyScheme::Http,
                    "https" => ProxyScheme::Https,
                    "socks5" => ProxyScheme::Socks5,
                    "socks5h" => ProxyScheme::Socks5h,
                    _ => return Err(bad("unsupported scheme")),
                };
                (scheme, rest)
            }
            None => (ProxyScheme::Http, value),
        };
        // Reuse the URL parser for the authority; the path of a proxy URL is meaningless.
        let url = Url::parse(&format!("http://{rest}")).map_err(|e| bad(e.message()))?;
        Ok(Proxy {
            scheme,
            userinfo: url.userinfo().map(str::to_string),
            host: url.host().to_string(),
            port: url.port().unwrap_or_else(|| scheme.default_port()),
        })
    }

    /// The proxy as a URI string (`http://user:pass@host:port`), the form HTTP clients take.
    pub fn uri(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let user = self
            .userinfo
            .as_deref()
            .map_or(String::new(), |u| format!("{u}@"));
        format!("{}://{user}{host}:{}", self.scheme.as_str(), self.port)
    }
}

/// An IP network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = s.split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let prefix: u8 = prefix.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// One `NO_PROXY` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NoProxy {
    /// `*`.
    All,
    /// An IP network; ports are not considered (as in Go).
    Cidr(Cidr),
    /// An IP address, optionally with a port.
    Ip(IpAddr, Option<u16>),
    /// A domain stored with a leading dot; `and_self` when the bare domain matches too.
    Domain {
        suffix: String,
        and_self: bool,
        port: Option<u16>,
    },
}

/// Splits `host:port` / `[v6]:port`; `None` when there is no port (Go's `SplitHostPort` fails
/// and the whole entry is the host).
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return Some((host, after.strip_prefix(':')?));
    }
    let (host, port) = s.rsplit_once(':')?;
    // A bare IPv6 address has colons but no port.
    (!host.contains(':')).then_some((host, port))
}

fn parse_no_proxy(list: &str) -> Vec<NoProxy> {
    let mut out = Vec::new();
    for entry in list.split(',') {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() {
            continue;
        }
        if entry == "*" {
            return vec![NoProxy::All];
        }
        if let Some(cidr) = Cidr::parse(&entry) {
            out.push(NoProxy::Cidr(cidr));
            continue;
        }
        let (host, port) = match split_host_port(&entry) {
            Some((h, p)) => match p.parse::<u16>() {
                Ok(p) if !h.is_empty() => (h, Some(p)),
                // A missing host or a bad port: a malformed entry, ignored like Go does.
                _ => continue,
            },
            None => (entry.as_str(), None),
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            out.push(NoProxy::Ip(ip.to_canonical(), port));
            continue;
        }
        let host = host.strip_prefix('*').unwrap_or(host);
        if host.is_empty() || host == "." {
            continue;
        }
        let (suffix, and_self) = match host.strip_prefix('.') {
            Some(_) => (host.to_string(), false),
            None => (format!(".{host}"), true),
        };
        out.push(NoProxy::Domain {
            suffix,
            and_self,
            port,
        });
    }
    out
}

/// Proxy settings ready to answer "which proxy for this URL".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxyConfig {
    http: Option<Proxy>,
    https: Option<Proxy>,
    no_proxy: Vec<NoProxy>,
    cgi: bool,
}

impl ProxyConfig {
    /// Builds the configuration from an environment snapshot; fails on an unparsable proxy.
    pub fn new(env: &ProxyEnv) -> Result<ProxyConfig> {
        let parse = |v: &str| (!v.is_empty()).then(|| Proxy::parse(v)).transpose();
        Ok(ProxyConfig {
            http: parse(&env.http_proxy)?,
            https: parse(&env.https_proxy)?,
            no_proxy: parse_no_proxy(&env.no_proxy),
            cgi: env.cgi,
        })
    }

    /// The proxy for `url`, or `None` to connect directly.
    pub fn proxy_for(&self, url: &Url) -> Result<Option<&Proxy>> {
        let proxy = match url.scheme() {
            Scheme::Https => self.https.as_ref(),
            Scheme::Http => {
                if self.http.is_some() && self.cgi {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        "refusing to use HTTP_PROXY value in CGI environment",
                    ));
                }
                self.http.as_ref()
            }
        };
        match proxy {
            Some(p) if self.use_proxy(url) => Ok(Some(p)),
            _ => Ok(None),
        }
    }

    /// True when requests to `url` go through a proxy (such hosts are never "local").
    pub fn is_proxied(&self, url: &Url) -> bool {
        matches!(self.proxy_for(url), Ok(Some(_)))
    }

    fn use_proxy(&self, url: &Url) -> bool {
        let host = url.host();
        let port = url.port_or_default();
        let ip = url.ip().map(|ip| ip.to_canonical());
        if host == "localhost" || ip.is_some_and(|ip| ip.is_loopback()) {
            return false;
        }
        !self.no_proxy.iter().any(|m| match m {
            NoProxy::All => true,
            NoProxy::Cidr(c) => ip.is_some_and(|ip| c.contains(ip)),
            NoProxy::Ip(want, p) => ip == Some(*want) && p.is_none_or(|p| p == port),
            // Domain entries never match IP literals: `.0.1` must not exempt `10.0.0.1`.
            NoProxy::Domain {
                suffix,
                and_self,
                port: p,
            } => {
                ip.is_none()
                    && (host.ends_with(suffix.as_str()) || (*and_self && host == &suffix[1..]))
                    && p.is_none_or(|p| p == port)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        ProxyEnv::from_vars(vars.iter().copied())
    }

    #[test]
    fn env_snapshot_prefers_upper_case_when_non_empty() {
        let e = env(&[
            ("http_proxy", "lower:1"),
            ("HTTP_PROXY", "upper:1"),
            ("https_proxy", "lower:2"),
            ("HTTPS_PROXY", ""),
            ("no_proxy", "a"),
            ("PATH", "/bin"),
        ]);
        assert_eq!(e.http_proxy, "upper:1");
        assert_eq!(e.https_proxy, "lower:2", "empty upper-case falls through");
        assert_eq!(e.no_proxy, "a");
        assert!(!e.cgi);
        assert!(env(&[("REQUEST_METHOD", "GET")]).cgi);
        assert!(!env(&[("REQUEST_METHOD", "")]).cgi);
    }

    #[test]
    fn proxy_parse_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("proxy.corp:3128", Some("http://proxy.corp:3128")),
            ("proxy.corp", Some("http://proxy.corp:80")),
            ("http://proxy.corp:3128/", Some("http://proxy.corp:3128")),
            ("HTTPS://Proxy.Corp", Some("https://proxy.corp:443")),
            ("socks5://127.0.0.1", Some("socks5://127.0.0.1:1080")),
            ("socks5h://[::1]:9050", Some("socks5h://[::1]:9050")),
            (
                "http://u:p%40w@proxy:8080",
                Some("http://u:p%40w@proxy:8080"),
            ),
            ("u:p@proxy:8080", Some("http://u:p@proxy:8080")),
            ("ftp://proxy", None),
            ("http://", None),
            ("proxy:notaport", None),
            ("prox y:80", None),
        ];
        for (input, want) in cases {
            let got = Proxy::parse(input).map(|p| p.uri()).ok();
            assert_eq!(got.as_deref(), *want, "{input}");
        }
        let err = ProxyConfig::new(&env(&[("HTTPS_PROXY", "ftp://x")])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn scheme_selects_variable() {
        let cfg = ProxyConfig::new(&env(&[
            ("HTTP_PROXY", "plain:1"),
            ("HTTPS_PROXY", "secure:2"),
        ]))
        .unwrap();
        let via = |u: &str| {
            cfg.proxy_for(&Url::parse(u).unwrap())
                .unwrap()
                .map(|p| p.uri())
        };
        assert_eq!(via("http://reg/").as_deref(), Some("http://plain:1"));
        assert_eq!(via("https://reg/").as_deref(), Some("http://secure:2"));

        // Only HTTP_PROXY set: https goes direct (Go does not fall back).
        let cfg = ProxyConfig::new(&env(&[("HTTP_PROXY", "plain:1")])).unwrap();
        assert_eq!(
            cfg.proxy_for(&Url::parse("https://reg/").unwrap()).unwrap(),
            None
        );
        let cfg = ProxyConfig::new(&ProxyEnv::default()).unwrap();
        assert_eq!(
            cfg.proxy_for(&Url::parse("http://reg/").unwrap()).unwrap(),
            None
        );
    }

    #[test]
    fn cgi_refuses_http_proxy() {
        let cfg = ProxyConfig::new(&env(&[
            ("HTTP_PROXY", "evil:1"),
            ("HTTPS_PROXY", "ok:2"),
            ("REQUEST_METHOD", "POST"),
        ]))
        .unwrap();
        let err = cfg
            .proxy_for(&Url::parse("http://reg/").unwrap())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(cfg.is_proxied(&Url::parse("https://reg/").unwrap()));
        // Without an HTTP proxy there is nothing to refuse.
        let cfg = ProxyConfig::new(&env(&[("REQUEST_METHOD", "GET")])).unwrap();
        assert_eq!(
            cfg.proxy_for(&Url::parse("http://reg/").unwrap()).unwrap(),
            None
        );
    }

    #[test]
    fn no_proxy_table() {
        // (NO_PROXY, url, proxied?)
        let cases: &[(&str, &str, bool)] = &[
            ("", "https://registry.example.com/", true),
            // Loopback is never proxied, whatever NO_PROXY says.
            ("", "https://localhost:5000/", false),
            ("", "https://127.0.0.1/", false),
            ("", "https://127.8.9.10/", false),
            ("", "https://[::1]:5000/", false),
            ("", "https://[::ffff:127.0.0.1]/", false),
            ("", "https://localhost.localdomain/", true),
            ("*", "https://anything.example/", false),
            (" * ", "https://anything.example/", false),
            ("a.com, *", "https://b.com/", false),
            // Bare domain: itself and subdomains.
            ("example.com", "https://example.com/", false),
            ("example.com", "https://reg.example.com/", false),
            ("example.com", "https://a.b.example.com/", false),
            ("example.com", "https://badexample.com/", true),
            ("example.com", "https://example.com.evil/", true),
            ("EXAMPLE.com", "https://reg.example.COM/", false),
            // Leading dot or `*.`: subdomains only.
            (".example.com", "https://example.com/", true),
            (".example.com", "https://reg.example.com/", false),
            ("*.example.com", "https://example.com/", true),
            ("*.example.com", "https://reg.example.com/", false),
            // Ports must match the effective port.
            ("example.com:5000", "https://example.com:5000/", false),
            ("example.com:5000", "https://example.com/", true),
            ("example.com:443", "https://example.com/", false),
            ("example.com:80", "http://reg.example.com/", false),
            ("example.com:bad", "https://example.com/", true),
            (":80", "http://example.com/", true),
            // IP addresses.
            ("10.1.2.3", "https://10.1.2.3/", false),
            ("10.1.2.3", "https://10.1.2.4/", true),
            ("10.1.2.3:5000", "https://10.1.2.3:5000/", false),
            ("10.1.2.3:5000", "https://10.1.2.3/", true),
            ("2001:db8::1", "https://[2001:db8::1]/", false),
            ("[2001:db8::1]:5000", "https://[2001:db8::1]:5000/", false),
            ("[2001:db8::1]:5000", "https://[2001:db8::1]:443/", true),
            ("::ffff:10.1.2.3", "https://10.1.2.3/", false),
            // CIDR blocks, any port.
            ("10.0.0.0/8", "https://10.200.3.4:5000/", false),
            ("10.0.0.0/8", "https://11.0.0.1/", true),
            ("192.168.1.77/24", "https://192.168.1.5/", false),
            ("192.168.1.0/24", "https://192.168.2.5/", true),
            ("0.0.0.0/0", "https://8.8.8.8/", false),
            ("10.0.0.0/33", "https://10.0.0.1/", true),
            ("fd00::/8", "https://[fd12::1]/", false),
            ("fd00::/8", "https://[fe80::1]/", true),
            ("10.0.0.0/8", "https://[fd12::1]/", true),
            // Domain entries do not match IP literals.
            (".0.1", "https://10.0.0.1/", true),
            ("0.0.1", "https://10.0.0.1/", true),
            // CIDR entries do not match names.
            ("10.0.0.0/8", "https://ten.example/", true),
            // Lists, spacing, empty and junk entries.
            ("a.com,, .b.com ,10.0.0.0/8", "https://x.b.com/", false),
            ("a.com,, .b.com ,10.0.0.0/8", "https://a.com/", false),
            ("a.com,, .b.com ,10.0.0.0/8", "https://c.com/", true),
            (".,*.", "https://c.com/", true),
        ];
        for (no_proxy, url, proxied) in cases {
            let cfg = ProxyConfig::new(&env(&[
                ("HTTPS_PROXY", "proxy:3128"),
                ("HTTP_PROXY", "proxy:3128"),
                ("NO_PROXY", no_proxy),
            ]))
            .unwrap();
            let u = Url::parse(url).unwrap();
            assert_eq!(
                cfg.proxy_for(&u).unwrap().is_some(),
                *proxied,
                "NO_PROXY={no_proxy:?} url={url}"
            );
        }
    }

    #[test]
    fn lower_case_no_proxy_used_when_upper_missing() {
        let cfg = ProxyConfig::new(&env(&[
            ("https_proxy", "proxy:3128"),
            ("no_proxy", "internal.corp"),
        ]))
        .unwrap();
        assert!(!cfg.is_proxied(&Url::parse("https://reg.internal.corp/").unwrap()));
        assert!(cfg.is_proxied(&Url::parse("https://docker.io/").unwrap()));
    }
}
