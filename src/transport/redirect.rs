//! Redirect policy, applied by us to every hop (ureq's own redirect following is turned off).
//!
//! Registries redirect blob downloads to object stores and CDNs, usually with presigned URLs.
//! Three rules keep that safe:
//!
//! - at most [`MAX_REDIRECTS`] hops, so a redirect loop ends;
//! - never from `https` to `http`, which would expose the request (and a presigned token) to
//!   anyone on the path;
//! - never from a remote registry to a local address (loopback, link-local, unspecified): a
//!   hostile registry must not be able to make the client probe services on the user's machine
//!   or a cloud metadata endpoint (`169.254.169.254`). A registry that is itself local (a
//!   development registry on `localhost`) may redirect locally. A registry reached through a
//!   proxy is never considered local, since the proxy, not this machine, resolved it.
//!
//! `Authorization` goes along only when the target has the registry's scheme, host and port.
//! Presigned S3/CDN URLs carry their own credentials and reject an extra `Authorization`, and
//! registry credentials must never reach a third party.

use std::net::IpAddr;

use crate::error::{Error, ErrorKind, Result};
use crate::url::{Scheme, Url};

/// The most redirects followed for one request.
pub const MAX_REDIRECTS: u32 = 10;

/// What to do with an allowed redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedirectAction {
    /// Whether the `Authorization` header may be sent to the target.
    ///
    /// Computed against `from`; once a hop drops it, the caller must not add it back on later
    /// hops (pass the original registry URL as `from` to compare against it instead).
    pub keep_authorization: bool,
}

fn refused(from: &Url, to: &Url, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("http redirect refused from {from} to {to}: {why}"),
    )
}

/// True when `ip` is an address of this machine or its link: loopback, link-local or
/// unspecified (IPv4-mapped IPv6 included).
pub fn is_local_ip(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local() || v4.is_unspecified(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unicast_link_local() || v6.is_unspecified(),
    }
}

/// True when the URL's host is local: a local IP literal, `localhost` or a `.localhost` name
/// (RFC 6761 reserves them for loopback).
pub fn is_local(url: &Url) -> bool {
    match url.ip() {
        Some(ip) => is_local_ip(ip),
        None => url.host() == "localhost" || url.host().ends_with(".localhost"),
    }
}

/// Checks redirect number `hop` (1-based) from `from` to `to`, for a registry reached directly.
pub fn check(from: &Url, to: &Url, hop: u32) -> Result<RedirectAction> {
    check_with(from, to, hop, false)
}

/// Like [`check`]; `from_via_proxy` says the request to `from` went through a proxy, in which
/// case `from` is never treated as local.
pub fn check_with(from: &Url, to: &Url, hop: u32, from_via_proxy: bool) -> Result<RedirectAction> {
    if hop > MAX_REDIRECTS {
        return Err(refused(
            from,
            to,
            &format!("stopped after {MAX_REDIRECTS} redirects"),
        ));
    }
    if from.scheme() == Scheme::Https && to.scheme() == Scheme::Http {
        return Err(refused(from, to, "https to http downgrade"));
    }
    let from_local = !from_via_proxy && is_local(from);
    if !from_local && is_local(to) {
        return Err(refused(
            from,
            to,
            "remote host redirected to a local address",
        ));
    }
    Ok(RedirectAction {
        keep_authorization: from.same_origin(to),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn check_table() {
        // (from, to, hop, Some(keep_auth) or None for refused)
        let cases: &[(&str, &str, u32, Option<bool>)] = &[
            // Same origin keeps Authorization.
            ("https://reg.io/v2/a", "https://reg.io/v2/b", 1, Some(true)),
            (
                "https://reg.io/v2/a",
                "https://REG.io:443/v2/b",
                1,
                Some(true),
            ),
            // Another host, port or scheme drops it.
            (
                "https://reg.io/v2/a",
                "https://s3.aws.example/b?sig=x",
                1,
                Some(false),
            ),
            (
                "https://reg.io/v2/a",
                "https://reg.io:8443/b",
                1,
                Some(false),
            ),
            ("http://reg.io/v2/a", "https://reg.io/b", 1, Some(false)),
            (
                "https://reg.io/v2/a",
                "https://cdn.reg.io/b",
                1,
                Some(false),
            ),
            // Downgrade refused, even to the same host.
            ("https://reg.io/v2/a", "http://reg.io/v2/a", 1, None),
            ("https://reg.io/v2/a", "http://cdn.example/x", 1, None),
            ("http://reg.io/v2/a", "http://cdn.example/x", 1, Some(false)),
            // Remote to local refused.
            ("https://reg.io/", "https://127.0.0.1/", 1, None),
            ("https://reg.io/", "https://127.1.2.3:5000/", 1, None),
            ("https://reg.io/", "https://localhost/", 1, None),
            ("https://reg.io/", "https://api.localhost/", 1, None),
            ("https://reg.io/", "https://[::1]/", 1, None),
            ("https://reg.io/", "https://[::ffff:127.0.0.1]/", 1, None),
            (
                "https://reg.io/",
                "https://169.254.169.254/latest/meta-data",
                1,
                None,
            ),
            ("https://reg.io/", "https://[fe80::1]/", 1, None),
            ("https://reg.io/", "https://0.0.0.0/", 1, None),
            ("https://reg.io/", "https://[::]/", 1, None),
            // Private addresses are allowed (on-premise object stores).
            ("https://reg.io/", "https://10.0.0.5/", 1, Some(false)),
            ("https://reg.io/", "https://192.168.1.5/", 1, Some(false)),
            ("https://reg.io/", "https://[fd00::5]/", 1, Some(false)),
            // Local to local is fine (development registries).
            (
                "http://localhost:5000/v2/",
                "http://127.0.0.1:9000/b",
                1,
                Some(false),
            ),
            (
                "http://127.0.0.1:5000/v2/",
                "http://127.0.0.1:5000/v2/x",
                1,
                Some(true),
            ),
            (
                "http://[::1]:5000/v2/",
                "http://localhost:9000/b",
                1,
                Some(false),
            ),
            // Hop limit.
            ("https://reg.io/a", "https://reg.io/b", 10, Some(true)),
            ("https://reg.io/a", "https://reg.io/b", 11, None),
            ("https://reg.io/a", "https://reg.io/b", u32::MAX, None),
        ];
        for (from, to, hop, want) in cases {
            let got = check(&u(from), &u(to), *hop);
            match (got, want) {
                (Ok(action), Some(keep)) => {
                    assert_eq!(action.keep_authorization, *keep, "{from} -> {to}")
                }
                (Err(e), None) => {
                    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{from} -> {to}");
                    assert!(e.to_string().contains("redirect refused"), "{e}");
                }
                (got, want) => panic!("{from} -> {to} hop {hop}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn proxied_local_registry_is_not_local() {
        let from = u("http://localhost:5000/v2/");
        let to = u("http://127.0.0.1:9000/");
        assert!(check_with(&from, &to, 1, false).is_ok());
        assert!(check_with(&from, &to, 1, true).is_err());
    }

    #[test]
    fn local_classification() {
        assert!(is_local(&u("https://localhost/")));
        assert!(is_local(&u("https://169.254.0.1/")));
        assert!(!is_local(&u("https://localhost.example.com/")));
        assert!(!is_local(&u("https://10.0.0.1/")));
        assert!(!is_local(&u("https://[2001:db8::1]/")));
    }
}
