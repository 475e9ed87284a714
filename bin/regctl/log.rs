//! Logging to stderr: `level=warn msg="..." key=value` lines, or JSON lines with
//! `--logopt json`. Everything logged goes through [`redact`] first, so a password given with
//! `--host` or an `Authorization` header can never reach a terminal or a CI log.

use std::io::Write;

/// Log levels, most verbose first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_lowercase().as_str() {
            "trace" => Level::Trace,
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warn" | "warning" => Level::Warn,
            "error" => Level::Error,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Where log lines go and which are kept.
#[derive(Debug, Clone)]
pub struct Logger {
    pub level: Level,
    pub json: bool,
}

impl Default for Logger {
    fn default() -> Self {
        Logger {
            level: Level::Warn,
            json: false,
        }
    }
}

impl Logger {
    pub fn enabled(&self, level: Level) -> bool {
        level >= self.level
    }

    pub fn log(&self, level: Level, msg: &str, fields: &[(&str, &str)]) {
        if !self.enabled(level) {
            return;
        }
        let line = format_line(level, msg, fields, self.json);
        // A failed write to stderr has nowhere to be reported.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    pub fn debug(&self, msg: &str, fields: &[(&str, &str)]) {
        self.log(Level::Debug, msg, fields)
    }

    pub fn info(&self, msg: &str, fields: &[(&str, &str)]) {
        self.log(Level::Info, msg, fields)
    }

    pub fn warn(&self, msg: &str, fields: &[(&str, &str)]) {
        self.log(Level::Warn, msg, fields)
    }
}

/// Keys whose values are secrets whatever they contain.
const SECRET_KEYS: &[&str] = &[
    "pass",
    "password",
    "token",
    "access_token",
    "refresh_token",
    "identitytoken",
    "registrytoken",
    "secret",
    "authorization",
    "auth",
    "clientkey",
];

const REDACTED: &str = "[redacted]";

fn is_secret_key(k: &str) -> bool {
    let k = k
        .trim_matches(|c: char| c == '"' || c == '\'')
        .to_ascii_lowercase();
    SECRET_KEYS.contains(&k.as_str())
}

/// One log line, newline-terminated, with secrets removed from the message and fields.
pub fn format_line(level: Level, msg: &str, fields: &[(&str, &str)], json: bool) -> String {
    let msg = redact(msg);
    let fields: Vec<(&str, String)> = fields
        .iter()
        .map(|(k, v)| {
            let v = if is_secret_key(k) {
                REDACTED.to_string()
            } else {
                redact(v)
            };
            (*k, v)
        })
        .collect();
    if json {
        let mut obj = serde_json::Map::new();
        obj.insert("level".into(), level.as_str().to_ascii_uppercase().into());
        obj.insert("msg".into(), msg.into());
        for (k, v) in fields {
            obj.insert(k.to_string(), v.into());
        }
        let mut s = serde_json::Value::Object(obj).to_string();
        s.push('\n');
        s
    } else {
        let mut s = format!("level={} msg={}", level.as_str(), quote(&msg));
        for (k, v) in fields {
            s.push(' ');
            s.push_str(k);
            s.push('=');
            s.push_str(&quote(&v));
        }
        s.push('\n');
        s
    }
}

/// Quotes a text value when it would not survive `key=value` splitting.
fn quote(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '=')
    {
        v.to_string()
    } else {
        format!("{v:?}")
    }
}

/// Removes secrets from free text: values of `pass=`, `token=`, `"password": "..."` and the
/// like, and everything after an `Authorization:` header name or a `Basic`/`Bearer` scheme.
pub fn redact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let lower = s.to_ascii_lowercase();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < s.len() {
        if let Some(end) = secret_value_at(&lower, bytes, i) {
            // Copy the key and separator, replace the value.
            let (key_end, value_end) = end;
            out.push_str(&s[i..key_end]);
            out.push_str(REDACTED);
            i = value_end;
            continue;
        }
        let c = s[i..].chars().next().expect("in bounds");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// When a secret key (or auth scheme) starts at byte `i`, returns (end of key and separator,
/// end of value).
fn secret_value_at(lower: &str, bytes: &[u8], i: usize) -> Option<(usize, usize)> {
    // Keys must start at a word boundary ("bypass=" is not "pass=").
    if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
        return None;
    }
    let rest = &lower[i..];
    for scheme in ["basic ", "bearer "] {
        if rest.starts_with(scheme) {
            let start = i + scheme.len();
            let end = value_end(bytes, start, false);
            // Credentials, not prose ("basic authentication"): long and not all lower case.
            let v = &bytes[start..end];
            let credential = v.len() >= 8 && !v.iter().all(|b| b.is_ascii_lowercase());
            return credential.then_some((start, end));
        }
    }
    if rest.starts_with("authorization") {
        let mut j = i + "authorization".len();
        if bytes.get(j) == Some(&b'"') {
            j += 1;
        }
        let sep_end = separator_end(bytes, j)?;
        // The whole header value (scheme and credentials) up to the end of line or quote.
        let end = bytes[sep_end..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r' || b == b'"' || b == b',')
            .map_or(bytes.len(), |p| sep_end + p);
        return (end > sep_end).then_some((sep_end, end));
    }
    for key in SECRET_KEYS {
        if !rest.starts_with(key) {
            continue;
        }
        let mut j = i + key.len();
        let quoted = bytes.get(j) == Some(&b'"');
        if quoted {
            j += 1;
        }
        // `key=value` anywhere, `"key": value` in JSON; a bare `key: value` is too common in
        // prose ("unexpected token: }}") to treat as a secret.
        let sep_end = match bytes.get(j) {
            Some(b'=') => j + 1,
            Some(b':') if quoted => match separator_end(bytes, j) {
                Some(e) => e,
                None => continue,
            },
            _ => continue,
        };
        let value_quoted = bytes.get(sep_end) == Some(&b'"');
        let start = sep_end + usize::from(value_quoted);
        let end = value_end(bytes, start, value_quoted);
        if end > start {
            return Some((start, end));
        }
    }
    None
}

/// After a key: `=`, `:` or `: ` (JSON `":"` handled by the caller skipping the quote).
fn separator_end(bytes: &[u8], j: usize) -> Option<usize> {
    match bytes.get(j) {
        Some(b'=') => Some(j + 1),
        Some(b':') => {
            let mut k = j + 1;
            while bytes.get(k) == Some(&b' ') {
                k += 1;
            }
            Some(k)
        }
        _ => None,
    }
}

fn value_end(bytes: &[u8], start: usize, quoted: bool) -> usize {
    let mut k = start;
    while k < bytes.len() {
        let b = bytes[k];
        if quoted {
            if b == b'"' && bytes[k - 1] != b'\\' {
                break;
            }
        } else if b.is_ascii_whitespace() || matches!(b, b',' | b'&' | b';' | b'"' | b'}') {
            break;
        }
        k += 1;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(Level::parse("WARN"), Some(Level::Warn));
        assert_eq!(Level::parse("trace"), Some(Level::Trace));
        assert_eq!(Level::parse("loud"), None);
        let l = Logger {
            level: Level::Info,
            json: false,
        };
        assert!(l.enabled(Level::Warn));
        assert!(!l.enabled(Level::Debug));
    }

    #[test]
    fn text_line() {
        let s = format_line(
            Level::Warn,
            "copy failed",
            &[("ref", "ocidir://x:v1")],
            false,
        );
        assert_eq!(s, "level=warn msg=\"copy failed\" ref=ocidir://x:v1\n");
        let s = format_line(Level::Info, "ok", &[("n", "a b")], false);
        assert_eq!(s, "level=info msg=ok n=\"a b\"\n");
    }

    #[test]
    fn json_line() {
        let s = format_line(Level::Debug, "hi", &[("k", "v")], true);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["level"], "DEBUG");
        assert_eq!(v["msg"], "hi");
        assert_eq!(v["k"], "v");
        assert!(s.ends_with('\n'));
    }

    #[test]
    fn secret_fields_redacted() {
        let s = format_line(
            Level::Warn,
            "host",
            &[("pass", "hunter2"), ("user", "bob")],
            false,
        );
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("user=bob"));
        let s = format_line(Level::Warn, "x", &[("Authorization", "Basic abc")], true);
        assert!(!s.contains("abc"), "{s}");
    }

    #[test]
    fn redact_text() {
        let cases = [
            (
                "reg=r.example,user=bob,pass=hunter2,tls=disabled",
                "hunter2",
            ),
            ("Authorization: Bearer eyJhbGciOi.x.y", "eyJhbGciOi"),
            (
                "authorization: Basic Ym9iOmh1bnRlcjI=\nAccept: x",
                "Ym9iOmh1bnRlcjI",
            ),
            (r#"{"user":"bob","password":"hunter2"}"#, "hunter2"),
            (r#"{"identitytoken": "tok123"}"#, "tok123"),
            ("https://auth/token?scope=x&token=abc123&y=1", "abc123"),
            ("refresh_token=zzz9 next", "zzz9"),
            ("header Bearer abc.DEF.ghi", "abc.DEF.ghi"),
        ];
        for (input, secret) in cases {
            let out = redact(input);
            assert!(!out.contains(secret), "{input} -> {out}");
            assert!(out.contains(REDACTED), "{input} -> {out}");
        }
        let out = redact("reg=r.example,user=bob,pass=hunter2,tls=disabled");
        assert_eq!(out, "reg=r.example,user=bob,pass=[redacted],tls=disabled");
        let out = redact("Authorization: Bearer x\nAccept: y");
        assert_eq!(out, "Authorization: [redacted]\nAccept: y");
    }

    #[test]
    fn redact_leaves_normal_text() {
        for s in [
            "bypass=1 compass: north",
            "copying ocidir://testrepo:v1",
            "passed=true",
            "level=warn msg=\"ok\"",
            "token",
            "unexpected token: }}",
            "basic authentication failed",
            "password: required",
        ] {
            assert_eq!(redact(s), s);
        }
    }
}
