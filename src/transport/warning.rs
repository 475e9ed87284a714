//! `Warning` headers (RFC 7234 §5.5), which registries use for deprecation notices.
//!
//! The distribution spec asks clients to show `Warning: 299 - "text"` to the user, deduplicated,
//! and never to act on it. Values are quoted strings with backslash escapes, several may share
//! a header separated by commas, and an optional quoted date (which contains a comma) may
//! follow, so splitting on commas is not enough.

use std::collections::HashSet;

use crate::transport::header_values;

/// One parsed warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The three-digit warn-code (299 = miscellaneous persistent warning).
    pub code: u16,
    /// The warn-agent, `-` when unknown.
    pub agent: String,
    /// The unescaped warn-text.
    pub text: String,
}

use super::lex::skip_ws;

/// Reads a quoted string starting at the opening quote; `None` if it is unterminated.
fn quoted(b: &[u8], i: usize) -> Option<(String, usize)> {
    match super::lex::quoted(b, i) {
        (s, next, true) => Some((s, next)),
        _ => None,
    }
}

/// Skips past the next top-level comma (outside quotes).
fn skip_value(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        match b[i] {
            b',' => return i + 1,
            b'"' => match quoted(b, i) {
                Some((_, next)) => i = next,
                None => return b.len(),
            },
            _ => i += 1,
        }
    }
    i
}

/// Parses one warning value at `i`; returns it (if well-formed) and where parsing stopped.
fn parse_one(b: &[u8], i: usize) -> (Option<Warning>, usize) {
    let code_end = i + 3;
    let code_ok = code_end <= b.len()
        && b[i..code_end].iter().all(u8::is_ascii_digit)
        && b.get(code_end).is_some_and(|&c| c == b' ' || c == b'\t');
    if !code_ok {
        return (None, skip_value(b, i));
    }
    let code = b[i..code_end]
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let agent_start = skip_ws(b, code_end);
    let mut j = agent_start;
    while j < b.len() && !matches!(b[j], b' ' | b'\t' | b',' | b'"') {
        j += 1;
    }
    let agent = String::from_utf8_lossy(&b[agent_start..j]).into_owned();
    j = skip_ws(b, j);
    if agent.is_empty() || j >= b.len() || b[j] != b'"' {
        return (None, skip_value(b, j));
    }
    let Some((text, mut j)) = quoted(b, j) else {
        return (None, b.len());
    };
    // An optional quoted warn-date follows; it is of no use to us.
    let after = skip_ws(b, j);
    if after < b.len() && b[after] == b'"' {
        j = quoted(b, after).map_or(b.len(), |(_, next)| next);
    }
    let j = skip_ws(b, j);
    let warning = Warning { code, agent, text };
    if j < b.len() && b[j] != b',' {
        // Trailing junk: the value is malformed, drop it.
        return (None, skip_value(b, j));
    }
    (Some(warning), j)
}

/// Parses a `Warning` header value holding one or more comma-separated warnings; malformed
/// entries are skipped.
pub fn parse_warning_header(value: &str) -> Vec<Warning> {
    let b = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // Each round consumes at least one byte.
    while i < b.len() {
        i = skip_ws(b, i);
        if i < b.len() && b[i] == b',' {
            i += 1;
            continue;
        }
        if i >= b.len() {
            break;
        }
        let (warning, next) = parse_one(b, i);
        out.extend(warning);
        i = next.max(i + 1);
    }
    out
}

/// The texts of all `299` warnings in the response headers, in order.
pub fn registry_warnings(headers: &[(&str, &str)]) -> Vec<String> {
    header_values(headers, "Warning")
        .flat_map(parse_warning_header)
        .filter(|w| w.code == 299)
        .map(|w| w.text)
        .collect()
}

/// The most distinct warnings a [`WarningSet`] reports; a registry that puts a unique text in
/// every response must not flood the user.
pub const MAX_WARNINGS: usize = 100;

/// Deduplicates warnings for one command, so each text is reported once.
#[derive(Debug, Clone, Default)]
pub struct WarningSet {
    seen: HashSet<String>,
}

impl WarningSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `text`; true when it is new and should be reported. Once [`MAX_WARNINGS`]
    /// distinct texts were seen, new ones are no longer reported.
    pub fn insert(&mut self, text: &str) -> bool {
        if self.seen.contains(text) || self.seen.len() >= MAX_WARNINGS {
            return false;
        }
        self.seen.insert(text.to_string())
    }

    /// The number of distinct warnings recorded.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(code: u16, agent: &str, text: &str) -> Warning {
        Warning {
            code,
            agent: agent.to_string(),
            text: text.to_string(),
        }
    }

    #[test]
    fn parse_table() {
        let cases: Vec<(&str, Vec<Warning>)> = vec![
            (
                r#"299 - "this registry is deprecated""#,
                vec![w(299, "-", "this registry is deprecated")],
            ),
            (
                r#"299 - "a", 299 - "b""#,
                vec![w(299, "-", "a"), w(299, "-", "b")],
            ),
            // Escapes and commas inside the text.
            (
                r#"299 - "say \"hi\", then \\ go""#,
                vec![w(299, "-", r#"say "hi", then \ go"#)],
            ),
            // A warn-date with its own comma.
            (
                r#"299 reg.io:443 "old" "Sun, 06 Nov 1994 08:49:37 GMT", 199 - "misc""#,
                vec![w(299, "reg.io:443", "old"), w(199, "-", "misc")],
            ),
            ("299  -   \"spaces\"  ", vec![w(299, "-", "spaces")]),
            (r#"299 - """#, vec![w(299, "-", "")]),
            ("299 - \"caf\u{e9}\"", vec![w(299, "-", "caf\u{e9}")]),
            // Malformed entries are skipped, good ones kept.
            (r#"29 - "short", 299 - "ok""#, vec![w(299, "-", "ok")]),
            (r#"abc - "x", 299 - "ok""#, vec![w(299, "-", "ok")]),
            (r#"299 "no agent", 299 - "ok""#, vec![w(299, "-", "ok")]),
            (r#"299 - unquoted, 299 - "ok""#, vec![w(299, "-", "ok")]),
            (r#"299 - "x" junk, 299 - "ok""#, vec![w(299, "-", "ok")]),
            (r#"299 - "unterminated"#, vec![]),
            ("299", vec![]),
            ("", vec![]),
            (", ,", vec![]),
        ];
        for (input, want) in cases {
            assert_eq!(parse_warning_header(input), want, "{input}");
        }
    }

    #[test]
    fn registry_warnings_keeps_299_from_all_headers() {
        let h = [
            ("Warning", r#"299 - "first""#),
            ("Content-Type", "text/plain"),
            ("warning", r#"110 - "stale", 299 - "second""#),
        ];
        assert_eq!(registry_warnings(&h), ["first", "second"]);
        assert!(registry_warnings(&[]).is_empty());
    }

    #[test]
    fn warning_set_dedupes_and_caps() {
        let mut set = WarningSet::new();
        assert!(set.is_empty());
        assert!(set.insert("deprecated"));
        assert!(!set.insert("deprecated"));
        assert!(set.insert("other"));
        assert_eq!(set.len(), 2);
        let mut reported = 2;
        for i in 0..1000 {
            if set.insert(&format!("unique {i}")) {
                reported += 1;
            }
        }
        assert_eq!(reported, MAX_WARNINGS);
        assert!(!set.insert("deprecated"));
    }
}
