//! Loose semantic versions and ranges for regsync tag filters.
//!
//! Versions: an optional leading `v`, one or more dot-separated numbers (`2`, `1.5`,
//! `1.2.3.4`), and an optional prerelease after `-`. Missing numeric parts count as zero, and
//! a prerelease sorts before the release (`2.0.0-alpine < 2.0.0`, `5-scratch < 5`).
//! Ranges: `||`-separated alternatives, each a space- or comma-separated AND of terms
//! `>= <= > < = !=` (or no operator for `=`), `^` and `~`.

use std::cmp::Ordering;

use crate::{Error, ErrorKind, Result};

/// A parsed version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Numeric parts as written.
    pub parts: Vec<u64>,
    /// Text after the first `-`, empty when none.
    pub pre: String,
}

impl Version {
    /// Parses a tag; `None` when it is not a version.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.strip_prefix('v').unwrap_or(s);
        let (nums, pre) = match s.split_once('-') {
            Some((n, p)) if !p.is_empty() => (n, p),
            Some(_) => return None,
            None => (s, ""),
        };
        let mut parts = Vec::new();
        for p in nums.split('.') {
            if p.is_empty() || p.len() > 18 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            parts.push(p.parse().ok()?);
        }
        Some(Version {
            parts,
            pre: pre.to_string(),
        })
    }

    fn part(&self, i: usize) -> u64 {
        self.parts.get(i).copied().unwrap_or(0)
    }

    fn cmp_nums(&self, other: &Version) -> Ordering {
        let n = self.parts.len().max(other.parts.len());
        (0..n)
            .map(|i| self.part(i).cmp(&other.part(i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

fn cmp_pre(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    let mut ai = a.split('.');
    let mut bi = b.split('.');
    loop {
        match (ai.next(), bi.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let o = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    _ => x.cmp(y),
                };
                if o.is_ne() {
                    return o;
                }
            }
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.cmp_nums(other)
            .then_with(|| cmp_pre(&self.pre, &other.pre))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A parsed range.
#[derive(Debug, Clone)]
pub struct Range {
    alts: Vec<Vec<(Op, Version)>>,
}

fn bump(v: &Version, idx: usize) -> Version {
    let mut parts: Vec<u64> = (0..=idx).map(|i| v.part(i)).collect();
    parts[idx] += 1;
    // The lowest prerelease of the next version, so its prereleases are excluded too.
    Version {
        parts,
        pre: "0".to_string(),
    }
}

impl Range {
    /// Parses a range; errors name the bad term.
    pub fn parse(s: &str) -> Result<Range> {
        let bad = |t: &str| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("invalid semver range {s:?}: bad term {t:?}"),
            )
        };
        let mut alts = Vec::new();
        for alt in s.split("||") {
            let mut terms = Vec::new();
            let mut pending_op: Option<&str> = None;
            for tok in alt.split([' ', ',']).filter(|t| !t.is_empty()) {
                let tok_full;
                let tok = match pending_op.take() {
                    Some(op) => {
                        tok_full = format!("{op}{tok}");
                        tok_full.as_str()
                    }
                    None => tok,
                };
                let (op, rest) = ["!=", ">=", "<=", ">", "<", "=", "^", "~"]
                    .iter()
                    .find_map(|op| tok.strip_prefix(op).map(|r| (*op, r)))
                    .unwrap_or(("", tok));
                if rest.is_empty() {
                    if op.is_empty() {
                        return Err(bad(tok));
                    }
                    // `>= 1.2`: the operator stands alone.
                    pending_op = Some(op);
                    continue;
                }
                let rest = rest.trim_end_matches(".x").trim_end_matches(".*");
                let v = Version::parse(rest).ok_or_else(|| bad(tok))?;
                match op {
                    "^" => {
                        let idx = v
                            .parts
                            .iter()
                            .position(|p| *p != 0)
                            .unwrap_or(v.parts.len() - 1);
                        terms.push((Op::Ge, v.clone()));
                        terms.push((Op::Lt, bump(&v, idx)));
                    }
                    "~" => {
                        let idx = if v.parts.len() > 1 { 1 } else { 0 };
                        terms.push((Op::Ge, v.clone()));
                        terms.push((Op::Lt, bump(&v, idx)));
                    }
                    ">=" => terms.push((Op::Ge, v)),
                    "<=" => terms.push((Op::Le, v)),
                    ">" => terms.push((Op::Gt, v)),
                    "<" => terms.push((Op::Lt, v)),
                    "!=" => terms.push((Op::Ne, v)),
                    _ => terms.push((Op::Eq, v)),
                }
            }
            if let Some(op) = pending_op {
                return Err(bad(op));
            }
            if terms.is_empty() {
                return Err(bad(alt));
            }
            alts.push(terms);
        }
        Ok(Range { alts })
    }

    /// Does `v` satisfy the range?
    pub fn matches(&self, v: &Version) -> bool {
        self.alts.iter().any(|terms| {
            terms.iter().all(|(op, c)| {
                let o = v.cmp(c);
                match op {
                    // `=1.2` matches every 1.2.x without a prerelease difference.
                    Op::Eq => {
                        c.parts.iter().enumerate().all(|(i, p)| v.part(i) == *p) && v.pre == c.pre
                    }
                    Op::Ne => o.is_ne(),
                    Op::Gt => o.is_gt(),
                    Op::Ge => o.is_ge(),
                    Op::Lt => o.is_lt(),
                    Op::Le => o.is_le(),
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(range: &str, v: &str) -> bool {
        Range::parse(range)
            .unwrap()
            .matches(&Version::parse(v).unwrap())
    }

    #[test]
    fn versions() {
        assert!(Version::parse("latest").is_none());
        assert!(Version::parse("v1.2.3.4").is_some());
        assert!(Version::parse("1..2").is_none());
        assert!(Version::parse("v2.0.0-alpine") < Version::parse("2.0.0"));
        assert!(Version::parse("v5-scratch") < Version::parse("5"));
        assert!(Version::parse("v1.10") > Version::parse("v1.9"));
        assert_eq!(
            Version::parse("v2")
                .unwrap()
                .cmp(&Version::parse("2.0.0").unwrap()),
            Ordering::Equal
        );
    }

    #[test]
    fn ranges() {
        assert!(m(">=v2", "v3"));
        assert!(!m(">=v2", "v1.9"));
        assert!(!m(">=2", "2.0.0-rc1"));
        assert!(m(">= 1.2, < 2", "1.5"));
        assert!(!m(">=1.2 <2", "2.0"));
        assert!(m("^1.2", "1.9.9"));
        assert!(!m("^1.2", "2.0.0"));
        assert!(m("^0.2", "0.2.5"));
        assert!(!m("^0.2", "0.3.0"));
        assert!(m("~1.2", "1.2.9"));
        assert!(!m("~1.2", "1.3"));
        assert!(m("<1 || >=3", "3.1"));
        assert!(!m("<1 || >=3", "2"));
        assert!(m("1.2", "1.2.7"));
        assert!(m("1.2.x", "1.2.7"));
        assert!(m("!=1.2.3", "1.2.4"));
        for bad in ["", ">=", "abc", ">=1.a", "^"] {
            assert!(Range::parse(bad).is_err(), "{bad}");
        }
    }
}
