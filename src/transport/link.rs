//! `Link` headers (RFC 8288) and bounded pagination.
//!
//! Tag, catalog and referrer listings are paginated with `Link: </v2/r/tags/list?n=50&last=x>;
//! rel="next"`. The distribution spec says to prefer the `Link` target over building `last=`
//! ourselves, and targets are usually relative, so they are resolved against the URL of the
//! request that returned them. [`Pager`] bounds the walk: some registries ignore `last` and
//! return the same page forever.

use std::collections::HashSet;

use crate::error::Result;
use crate::transport::{header_values, Url};

/// One link from a `Link` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The target as written between `<` and `>` (possibly relative).
    pub target: String,
    /// The relation types from the first `rel` parameter, lower-cased.
    pub rels: Vec<String>,
}

impl Link {
    /// True when one of the relation types is `rel` (case-insensitive).
    pub fn has_rel(&self, rel: &str) -> bool {
        self.rels.iter().any(|r| r.eq_ignore_ascii_case(rel))
    }
}

use super::lex::skip_ws;

/// Reads a quoted string starting at the opening quote; an unterminated one runs to the end.
fn quoted(b: &[u8], i: usize) -> (String, usize) {
    let (s, next, _) = super::lex::quoted(b, i);
    (s, next)
}

/// Reads a bare token up to a delimiter.
fn token(b: &[u8], mut i: usize) -> (String, usize) {
    let start = i;
    while i < b.len() && !matches!(b[i], b';' | b',' | b'=' | b' ' | b'\t' | b'"') {
        i += 1;
    }
    (String::from_utf8_lossy(&b[start..i]).into_owned(), i)
}

/// Skips to the next top-level comma (outside `<...>` and quotes), for malformed values.
fn skip_value(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        match b[i] {
            b',' => return i,
            b'"' => i = quoted(b, i).1,
            b'<' => {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'>')
                    .map_or(b.len(), |p| i + p + 1)
            }
            _ => i += 1,
        }
    }
    i
}

/// Parses one `Link` header value, which may hold several comma-separated links.
///
/// Malformed links are skipped rather than failing the whole header: a listing that cannot
/// find its next page simply ends, which the caller can detect.
pub fn parse_link_header(value: &str) -> Vec<Link> {
    let b = value.as_bytes();
    let mut links = Vec::new();
    let mut i = 0;
    // Every branch below moves `i` forward, so the loop ends.
    while i < b.len() {
        i = skip_ws(b, i);
        if i < b.len() && b[i] == b',' {
            i += 1;
            continue;
        }
        if i >= b.len() {
            break;
        }
        if b[i] != b'<' {
            i = skip_value(b, i + 1);
            continue;
        }
        let Some(close) = b[i..].iter().position(|&c| c == b'>') else {
            break;
        };
        let target = value[i + 1..i + close].trim().to_string();
        i += close + 1;
        let mut rels: Option<Vec<String>> = None;
        loop {
            i = skip_ws(b, i);
            if i >= b.len() || b[i] == b',' {
                break;
            }
            if b[i] != b';' {
                i = skip_value(b, i);
                break;
            }
            i = skip_ws(b, i + 1);
            let (name, next) = token(b, i);
            i = skip_ws(b, next);
            let mut param = String::new();
            if i < b.len() && b[i] == b'=' {
                i = skip_ws(b, i + 1);
                (param, i) = if i < b.len() && b[i] == b'"' {
                    quoted(b, i)
                } else {
                    token(b, i)
                };
            } else if i < b.len() && b[i] == b'"' {
                // A stray quoted string without `=`: skip it.
                i = quoted(b, i).1;
            }
            // RFC 8288: only the first `rel` parameter counts.
            if rels.is_none() && name.eq_ignore_ascii_case("rel") {
                rels = Some(
                    param
                        .split_ascii_whitespace()
                        .map(str::to_ascii_lowercase)
                        .collect(),
                );
            }
        }
        links.push(Link {
            target,
            rels: rels.unwrap_or_default(),
        });
    }
    links
}

/// The `rel="next"` target among all `Link` headers, resolved against `request_url`.
pub fn next_link(headers: &[(&str, &str)], request_url: &Url) -> Result<Option<Url>> {
    for value in header_values(headers, "Link") {
        if let Some(link) = parse_link_header(value)
            .into_iter()
            .find(|l| l.has_rel("next"))
        {
            return request_url.join(&link.target).map(Some);
        }
    }
    Ok(None)
}

/// Why a [`Pager`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageEnd {
    /// The last response had no `rel="next"` link: the listing is complete.
    NoLink,
    /// The next link pointed at a page already fetched: the server ignores `last`.
    Repeated,
    /// The page limit was reached; the listing may be incomplete.
    Limit,
}

/// The pager's answer after a page arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageStep {
    /// Fetch this URL next.
    Fetch(Url),
    /// Stop.
    Done(PageEnd),
}

/// Follows `Link` pagination with a page limit and loop detection.
#[derive(Debug, Clone)]
pub struct Pager {
    max_pages: u32,
    pages: u32,
    seen: HashSet<Url>,
}

impl Pager {
    /// A pager whose first request goes to `first`, fetching at most `max_pages` pages.
    pub fn new(first: &Url, max_pages: u32) -> Pager {
        Pager {
            max_pages,
            pages: 0,
            seen: HashSet::from([first.clone()]),
        }
    }

    /// Pages received so far.
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// Records the page fetched from `request_url` with response `headers`, and says what to
    /// do next.
    pub fn next(&mut self, request_url: &Url, headers: &[(&str, &str)]) -> Result<PageStep> {
        self.pages = self.pages.saturating_add(1);
        let Some(next) = next_link(headers, request_url)? else {
            return Ok(PageStep::Done(PageEnd::NoLink));
        };
        if self.seen.contains(&next) {
            return Ok(PageStep::Done(PageEnd::Repeated));
        }
        if self.pages >= self.max_pages {
            return Ok(PageStep::Done(PageEnd::Limit));
        }
        self.seen.insert(next.clone());
        Ok(PageStep::Fetch(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(target: &str, rels: &[&str]) -> Link {
        Link {
            target: target.to_string(),
            rels: rels.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn parse_table() {
        let cases: Vec<(&str, Vec<Link>)> = vec![
            (
                r#"</v2/r/tags/list?n=2&last=b>; rel="next""#,
                vec![link("/v2/r/tags/list?n=2&last=b", &["next"])],
            ),
            ("<x>;rel=next", vec![link("x", &["next"])]),
            ("<x> ; REL = NEXT", vec![link("x", &["next"])]),
            (
                r#"<a>; rel="prev", <b>; rel="next""#,
                vec![link("a", &["prev"]), link("b", &["next"])],
            ),
            (
                r#"<b>; rel="next last"; title="a, b; c""#,
                vec![link("b", &["next", "last"])],
            ),
            // Commas inside the target do not split links.
            (
                r#"</v2/_catalog?last=a,b&n=1>; rel="next""#,
                vec![link("/v2/_catalog?last=a,b&n=1", &["next"])],
            ),
            // Only the first rel counts.
            (r#"<x>; rel=prev; rel=next"#, vec![link("x", &["prev"])]),
            (r#"<x>; rel="n\"ext""#, vec![link("x", &["n\"ext"])]),
            ("<x>", vec![link("x", &[])]),
            ("<x>; anchor", vec![link("x", &[])]),
            // Malformed values are skipped, later links survive.
            (
                r#"garbage; rel="next", <y>; rel=next"#,
                vec![link("y", &["next"])],
            ),
            (
                r#"<x>; rel=next junk, <y>"#,
                vec![link("x", &["next"]), link("y", &[])],
            ),
            ("<unterminated; rel=next", vec![]),
            ("", vec![]),
            (" , ,", vec![]),
        ];
        for (input, want) in cases {
            assert_eq!(parse_link_header(input), want, "{input}");
        }
    }

    #[test]
    fn next_link_resolves_against_request() {
        let req = Url::parse("https://reg.example.com/v2/r/tags/list?n=2").unwrap();
        let h = [
            ("Content-Type", "application/json"),
            ("link", r#"<https://reg.example.com/other>; rel="prev""#),
            ("Link", r#"</v2/r/tags/list?n=2&last=b>; rel="next""#),
        ];
        assert_eq!(
            next_link(&h, &req).unwrap().unwrap().to_string(),
            "https://reg.example.com/v2/r/tags/list?n=2&last=b"
        );
        assert_eq!(
            next_link(&[("Link", "<?last=c>; rel=next")], &req)
                .unwrap()
                .unwrap()
                .to_string(),
            "https://reg.example.com/v2/r/tags/list?last=c"
        );
        assert_eq!(next_link(&[("Link", "<x>; rel=prev")], &req).unwrap(), None);
        assert_eq!(next_link(&[], &req).unwrap(), None);
        assert!(next_link(&[("Link", "<ftp://x/>; rel=next")], &req).is_err());
    }

    #[test]
    fn pager_follows_until_no_link() {
        let first = Url::parse("https://h/v2/r/tags/list").unwrap();
        let mut pager = Pager::new(&first, 10);
        let p2 = match pager.next(&first, &[("Link", "</v2/r/tags/list?last=a>; rel=next")]) {
            Ok(PageStep::Fetch(u)) => u,
            other => panic!("{other:?}"),
        };
        assert_eq!(p2.query(), Some("last=a"));
        assert_eq!(
            pager.next(&p2, &[]).unwrap(),
            PageStep::Done(PageEnd::NoLink)
        );
        assert_eq!(pager.pages(), 2);
    }

    #[test]
    fn pager_stops_on_repeat() {
        // A server that ignores `last` keeps pointing at page two.
        let first = Url::parse("https://h/v2/_catalog").unwrap();
        let next = [("Link", "</v2/_catalog?last=x>; rel=next")];
        let mut pager = Pager::new(&first, 100);
        let p2 = match pager.next(&first, &next).unwrap() {
            PageStep::Fetch(u) => u,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            pager.next(&p2, &next).unwrap(),
            PageStep::Done(PageEnd::Repeated)
        );
        // Pointing back at the first page is a loop too.
        let mut pager = Pager::new(&first, 100);
        assert_eq!(
            pager
                .next(&first, &[("Link", "</v2/_catalog>; rel=next")])
                .unwrap(),
            PageStep::Done(PageEnd::Repeated)
        );
    }

    #[test]
    fn pager_stops_at_limit() {
        let mut url = Url::parse("https://h/v2/r/tags/list").unwrap();
        let mut pager = Pager::new(&url, 3);
        let mut fetched = 1;
        for i in 0..100 {
            let value = format!("</v2/r/tags/list?last={i}>; rel=next");
            match pager.next(&url, &[("Link", &value)]).unwrap() {
                PageStep::Fetch(u) => {
                    url = u;
                    fetched += 1;
                }
                PageStep::Done(end) => {
                    assert_eq!(end, PageEnd::Limit);
                    break;
                }
            }
        }
        assert_eq!(fetched, 3);
        assert_eq!(pager.pages(), 3);
    }
}
