//! The pure cores of the registry HTTP transport.
//!
//! The registry scheme talks HTTP through a thin I/O shell (a `ureq` agent, added later) that
//! sends one request at a time and asks these modules what to do next. Everything here is
//! sans-IO: no sockets, no sleeping, no clock or environment reads. Time and the environment
//! are passed in as arguments, and where waiting is needed the policy returns the `Duration`
//! and the caller sleeps (cargo's retry design), so every rule is unit-tested with tables.
//!
//! Layering, outermost first:
//!
//! - [`throttle`]: per-host request slots and request spacing, acquired before a request
//!   starts (source and target together for blob copies).
//! - [`proxy`]: which proxy, if any, a URL goes through (Go's `HTTP_PROXY`/`NO_PROXY` rules,
//!   since ureq's own environment handling differs).
//! - [`url`]: the URL type every other module speaks; resolves `Location` and `Link` targets.
//! - [`redirect`]: whether to follow a redirect and whether `Authorization` may go along.
//!   ureq's redirect following is turned off so this policy applies to every hop.
//! - [`retry`]: what a status code or network error means (retry after a wait, try the next
//!   host, re-authenticate, fail) and the per-host backoff counter.
//! - [`link`]: `Link` header parsing and a bounded pager for tag and catalog listings.
//! - [`warning`]: `Warning: 299` parsing and per-command deduplication.
//!
//! Rate-limit headers are parsed by [`crate::ratelimit`], which is public API of its own.
//!
//! Response headers are passed as `(name, value)` pairs, one pair per header line, so the
//! modules do not depend on any HTTP crate; [`header_values`] does the case-insensitive lookup.

mod absolute;
pub mod client;
mod lex;
pub mod link;
pub mod proxy;
pub mod redirect;
pub mod retry;
pub mod throttle;
pub mod warning;

pub use crate::url::{self, Url};

/// Every value of header `name` (compared case-insensitively), in order.
pub fn header_values<'a>(
    headers: &'a [(&'a str, &'a str)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// The first value of header `name` (compared case-insensitively).
pub fn header_value<'a>(headers: &'a [(&'a str, &'a str)], name: &'a str) -> Option<&'a str> {
    header_values(headers, name).next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_ignores_case_and_keeps_order() {
        let h = [("warning", "a"), ("Content-Type", "x"), ("WARNING", "b")];
        assert_eq!(header_values(&h, "Warning").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(header_value(&h, "content-type"), Some("x"));
        assert_eq!(header_value(&h, "link"), None);
    }
}
