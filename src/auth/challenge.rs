//! `WWW-Authenticate` parsing (RFC 7235), pure.
//!
//! Registries send one or more challenges, in one header or spread over several. A challenge is
//! a scheme followed either by a token68 blob or by comma-separated `key=value` parameters whose
//! values may be quoted (with backslash escapes, commas allowed inside). The hard part is that
//! the comma separates both parameters and challenges: after a comma, `name=` continues the
//! current challenge while a bare token starts a new one.

use std::collections::BTreeMap;

use crate::error::{Error, ErrorKind, Result};

/// One parsed challenge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Challenge {
    /// The scheme, lower-cased (`basic`, `bearer`).
    pub scheme: String,
    /// Parameters with lower-cased keys; values as sent (unquoted, unescaped).
    pub params: BTreeMap<String, String>,
    /// The token68 form (`Negotiate abc==`), when the challenge used it instead of parameters.
    pub token68: Option<String>,
}

impl Challenge {
    /// A parameter by (lower-case) name.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
}

/// Parses every challenge of every header, in order.
///
/// Empty headers yield nothing; a syntax error anywhere is a [`ErrorKind::Parse`] error.
pub fn parse(headers: &[&str]) -> Result<Vec<Challenge>> {
    let mut out = Vec::new();
    for h in headers {
        Parser {
            b: h.as_bytes(),
            i: 0,
        }
        .header(&mut out)?;
    }
    Ok(out)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn is_token68(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~+/".contains(&c)
}

impl Parser<'_> {
    fn err(&self, what: &str) -> Error {
        Error::new(
            ErrorKind::Parse,
            format!(
                "invalid WWW-Authenticate header: {what} at offset {}",
                self.i
            ),
        )
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn skip_ws(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
        self.i - start
    }

    fn skip_ws_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> &str {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        // tchars are ASCII, so the slice is valid UTF-8.
        std::str::from_utf8(&self.b[start..self.i]).unwrap_or_default()
    }

    /// An unquoted value. Strictly a token, but registries send bare URLs (`realm=https://…`),
    /// so anything up to whitespace, a comma or a quote is accepted.
    fn bare_value(&mut self) -> String {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| !matches!(c, b' ' | b'\t' | b',' | b'"'))
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.b[start..self.i]).into_owned()
    }

    fn quoted(&mut self) -> Result<String> {
        // Caller saw the opening quote.
        self.i += 1;
        let mut v = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated quoted string")),
                Some(b'"') => {
                    self.i += 1;
                    return String::from_utf8(v).map_err(|_| self.err("invalid UTF-8"));
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.peek().ok_or_else(|| self.err("dangling escape"))?;
                    v.push(c);
                    self.i += 1;
                }
                Some(c) => {
                    v.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// Tries `name = value` at the cursor; restores the cursor and returns None otherwise.
    fn param(&mut self) -> Result<Option<(String, String)>> {
        let start = self.i;
        let name = self.token().to_ascii_lowercase();
        if name.is_empty() {
            return Ok(None);
        }
        self.skip_ws();
        if self.peek() != Some(b'=') {
            self.i = start;
            return Ok(None);
        }
        self.i += 1;
        self.skip_ws();
        let value = if self.peek() == Some(b'"') {
            self.quoted()?
        } else {
            self.bare_value()
        };
        if value.is_empty() || value.starts_with('=') {
            // `abc=` is token68 padding, not a parameter with an empty value.
            self.i = start;
            return Ok(None);
        }
        Ok(Some((name, value)))
    }

    fn token68(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(is_token68) {
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        while self.peek() == Some(b'=') {
            self.i += 1;
        }
        Some(String::from_utf8_lossy(&self.b[start..self.i]).into_owned())
    }

    fn at_end_of_item(&self) -> bool {
        matches!(self.peek(), None | Some(b','))
    }

    fn header(&mut self, out: &mut Vec<Challenge>) -> Result<()> {
        // Every iteration consumes input or returns, so the loop is bounded by the length.
        loop {
            self.skip_ws_commas();
            if self.peek().is_none() {
                return Ok(());
            }
            let scheme = self.token().to_ascii_lowercase();
            if scheme.is_empty() {
                return Err(self.err("expected an auth scheme"));
            }
            let mut ch = Challenge {
                scheme,
                ..Challenge::default()
            };
            let spaced = self.skip_ws() > 0;
            if !self.at_end_of_item() {
                if !spaced {
                    return Err(self.err("expected a space after the scheme"));
                }
                self.params_or_token68(&mut ch)?;
            }
            out.push(ch);
        }
    }

    fn params_or_token68(&mut self, ch: &mut Challenge) -> Result<()> {
        match self.param()? {
            Some((k, v)) => {
                ch.params.entry(k).or_insert(v);
            }
            None => {
                ch.token68 = Some(
                    self.token68()
                        .ok_or_else(|| self.err("unexpected character"))?,
                );
                self.skip_ws();
                if !self.at_end_of_item() {
                    return Err(self.err("unexpected data after token68"));
                }
                return Ok(());
            }
        }
        loop {
            self.skip_ws();
            if self.peek().is_none() {
                return Ok(());
            }
            if self.peek() != Some(b',') {
                return Err(self.err("expected a comma between parameters"));
            }
            self.skip_ws_commas();
            // A parameter continues this challenge; anything else starts the next one.
            match self.param()? {
                Some((k, v)) => {
                    ch.params.entry(k).or_insert(v);
                }
                None => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: scheme.to_string(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            token68: None,
        }
    }

    #[test]
    fn parses_table() {
        let cases: Vec<(&str, Vec<&str>, Vec<Challenge>)> = vec![
            (
                "docker hub bearer",
                vec![
                    r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
                ],
                vec![ch(
                    "bearer",
                    &[
                        ("realm", "https://auth.docker.io/token"),
                        ("service", "registry.docker.io"),
                        ("scope", "repository:library/alpine:pull"),
                    ],
                )],
            ),
            (
                "github basic",
                vec![r#"Basic realm="GitHub Package Registry""#],
                vec![ch("basic", &[("realm", "GitHub Package Registry")])],
            ),
            (
                "case insensitive",
                vec![r#"BEARER Realm="https://a/token", SERVICE="Svc""#],
                vec![ch(
                    "bearer",
                    &[("realm", "https://a/token"), ("service", "Svc")],
                )],
            ),
            (
                "unquoted",
                vec!["Bearer realm=https://a/token, service=reg.example"],
                vec![ch(
                    "bearer",
                    &[("realm", "https://a/token"), ("service", "reg.example")],
                )],
            ),
            (
                "charset",
                vec![r#"Basic realm="x", charset="UTF-8""#],
                vec![ch("basic", &[("realm", "x"), ("charset", "UTF-8")])],
            ),
            (
                "multiple in one header",
                vec![r#"Basic realm="x", Bearer realm="y",service="z""#],
                vec![
                    ch("basic", &[("realm", "x")]),
                    ch("bearer", &[("realm", "y"), ("service", "z")]),
                ],
            ),
            (
                "across headers",
                vec![r#"Basic realm="x""#, r#"Bearer realm="y""#],
                vec![
                    ch("basic", &[("realm", "x")]),
                    ch("bearer", &[("realm", "y")]),
                ],
            ),
            (
                "comma and escapes inside quotes",
                vec![r#"Bearer scope="repository:a:pull,push", realm="say \"hi\" \\ ok""#],
                vec![ch(
                    "bearer",
                    &[
                        ("scope", "repository:a:pull,push"),
                        ("realm", r#"say "hi" \ ok"#),
                    ],
                )],
            ),
            ("scheme only", vec!["Negotiate"], vec![ch("negotiate", &[])]),
            ("empty", vec!["", "  "], vec![]),
            (
                "spaces around equals",
                vec![r#"Bearer realm = "r" , service= s"#],
                vec![ch("bearer", &[("realm", "r"), ("service", "s")])],
            ),
        ];
        for (name, headers, want) in cases {
            let got = parse(&headers).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn token68_tolerated() {
        let got = parse(&["Negotiate abc+/def==, Basic realm=\"r\""]).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].scheme, "negotiate");
        assert_eq!(got[0].token68.as_deref(), Some("abc+/def=="));
        assert_eq!(got[1].param("realm"), Some("r"));
    }

    #[test]
    fn malformed() {
        let cases = [
            r#"Bearer realm="unterminated"#,
            r#"=realm"#,
            r#""Bearer""#,
            r#"Bearer realm="x" service="y""#,
            r#"Bearer realm="a\"#,
            r#"Bearer realm="x", @bad"#,
            r#"Bearer ab cd"#,
            r#"Bearer{realm="x"}"#,
        ];
        for c in cases {
            let e = parse(&[c]).expect_err(c);
            assert_eq!(e.kind(), ErrorKind::Parse, "{c}");
        }
    }
}
