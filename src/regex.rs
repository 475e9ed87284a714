//! A small backtracking regular expression matcher for `--include`/`--exclude` tag filters.
//!
//! No regex crate is available to this project, and tag filters are short patterns applied to
//! short strings (tags are at most 128 characters), so a backtracking matcher is enough.
//! Supported: literals, `.`, `*`, `+`, `?` (greedy, with `?` suffix for lazy), `{n}`, `{n,}`,
//! `{n,m}`, alternation `|`, groups `( )` and `(?: )`, classes `[...]`/`[^...]` with ranges,
//! `\d \w \s \D \W \S`, escaped metacharacters, and the anchors `^` and `$`.
//! A step budget bounds the work on pathological patterns; exceeding it counts as no match.

use std::fmt;

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Regex {
    alt: Vec<Vec<Node>>,
}

/// A pattern that did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegexError {
    pattern: String,
    why: String,
}

impl fmt::Display for RegexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid regexp {:?}: {}", self.pattern, self.why)
    }
}

#[derive(Debug, Clone)]
enum Node {
    Char(char),
    Any,
    Class(Class),
    Start,
    End,
    Group(Vec<Vec<Node>>),
    Repeat {
        node: Box<Node>,
        min: usize,
        max: Option<usize>,
        greedy: bool,
    },
}

#[derive(Debug, Clone)]
struct Class {
    ranges: Vec<(char, char)>,
    negated: bool,
}

impl Class {
    fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

const DIGIT: &[(char, char)] = &[('0', '9')];
const WORD: &[(char, char)] = &[('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')];
const SPACE: &[(char, char)] = &[('\t', '\r'), (' ', ' ')];
const MAX_REPEAT: usize = 1000;
const STEP_BUDGET: usize = 1_000_000;

impl Regex {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Result<Regex, RegexError> {
        let mut p = Parser {
            chars: pattern.chars().collect(),
            pos: 0,
            pattern,
            depth: 0,
        };
        let alt = p.alternation()?;
        if p.pos < p.chars.len() {
            return Err(p.err("unmatched ')'"));
        }
        Ok(Regex { alt })
    }

    /// Compiles `pattern` anchored at both ends, as `^(?:pattern)$`.
    pub fn anchored(pattern: &str) -> Result<Regex, RegexError> {
        let inner = Regex::new(pattern)?;
        Ok(Regex {
            alt: vec![vec![Node::Start, Node::Group(inner.alt), Node::End]],
        })
    }

    /// Does the pattern match anywhere in `s`?
    pub fn is_match(&self, s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        let mut m = Matcher {
            s: &chars,
            steps: 0,
        };
        (0..=chars.len()).any(|start| m.alt(&self.alt, start, &mut |_, _| true))
    }
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    pattern: &'a str,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, why: &str) -> RegexError {
        RegexError {
            pattern: self.pattern.to_string(),
            why: why.to_string(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn alternation(&mut self) -> Result<Vec<Vec<Node>>, RegexError> {
        let mut alts = vec![self.sequence()?];
        while self.peek() == Some('|') {
            self.pos += 1;
            alts.push(self.sequence()?);
        }
        Ok(alts)
    }

    fn sequence(&mut self) -> Result<Vec<Node>, RegexError> {
        let mut seq = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            let atom = self.repeat(atom)?;
            seq.push(atom);
        }
        Ok(seq)
    }

    fn atom(&mut self) -> Result<Node, RegexError> {
        let c = self.peek().expect("caller checked");
        self.pos += 1;
        Ok(match c {
            '.' => Node::Any,
            '^' => Node::Start,
            '$' => Node::End,
            '(' => {
                self.depth += 1;
                if self.depth > 100 {
                    return Err(self.err("groups nested too deeply"));
                }
                if self.chars[self.pos..].starts_with(&['?', ':']) {
                    self.pos += 2;
                }
                let alt = self.alternation()?;
                if self.peek() != Some(')') {
                    return Err(self.err("missing ')'"));
                }
                self.pos += 1;
                self.depth -= 1;
                Node::Group(alt)
            }
            '[' => Node::Class(self.class()?),
            '\\' => self.escape(false)?,
            '*' | '+' | '?' => return Err(self.err("missing argument to repetition operator")),
            c => Node::Char(c),
        })
    }

    /// After a `\`; inside a class only single characters and the shorthand classes are valid.
    fn escape(&mut self, in_class: bool) -> Result<Node, RegexError> {
        let c = self.peek().ok_or_else(|| self.err("trailing backslash"))?;
        self.pos += 1;
        let class = |r: &[(char, char)], negated| {
            Node::Class(Class {
                ranges: r.to_vec(),
                negated,
            })
        };
        Ok(match c {
            'd' => class(DIGIT, false),
            'D' => class(DIGIT, true),
            'w' => class(WORD, false),
            'W' => class(WORD, true),
            's' => class(SPACE, false),
            'S' => class(SPACE, true),
            't' => Node::Char('\t'),
            'n' => Node::Char('\n'),
            'r' => Node::Char('\r'),
            c if c.is_ascii_alphanumeric() && !in_class => {
                return Err(self.err(&format!("unsupported escape \\{c}")))
            }
            c => Node::Char(c),
        })
    }

    fn class(&mut self) -> Result<Class, RegexError> {
        let mut negated = false;
        if self.peek() == Some('^') {
            negated = true;
            self.pos += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = self.peek().ok_or_else(|| self.err("missing ']'"))?;
            self.pos += 1;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = if c == '\\' {
                match self.escape(true)? {
                    Node::Char(c) => c,
                    Node::Class(cl) if !cl.negated => {
                        ranges.extend(cl.ranges);
                        continue;
                    }
                    _ => return Err(self.err("negated class shorthand inside a class")),
                }
            } else {
                c
            };
            // `a-z`, but a `-` before `]` is literal.
            if self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|&n| n != ']') {
                self.pos += 1;
                let mut hi = self.peek().ok_or_else(|| self.err("missing ']'"))?;
                self.pos += 1;
                if hi == '\\' {
                    hi = match self.escape(true)? {
                        Node::Char(c) => c,
                        _ => return Err(self.err("invalid class range")),
                    };
                }
                if hi < lo {
                    return Err(self.err("invalid class range"));
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Ok(Class { ranges, negated })
    }

    fn repeat(&mut self, atom: Node) -> Result<Node, RegexError> {
        let (min, max) = match self.peek() {
            Some('*') => self.one(0, None),
            Some('+') => self.one(1, None),
            Some('?') => self.one(0, Some(1)),
            Some('{') => match self.counted()? {
                Some(mm) => mm,
                None => return Ok(atom),
            },
            _ => return Ok(atom),
        };
        if matches!(atom, Node::Start | Node::End) {
            return Err(self.err("repetition of an anchor"));
        }
        let greedy = if self.peek() == Some('?') {
            self.pos += 1;
            false
        } else {
            true
        };
        if matches!(self.peek(), Some('*' | '+')) {
            return Err(self.err("invalid nested repetition operator"));
        }
        Ok(Node::Repeat {
            node: Box::new(atom),
            min,
            max,
            greedy,
        })
    }

    fn one(&mut self, min: usize, max: Option<usize>) -> (usize, Option<usize>) {
        self.pos += 1;
        (min, max)
    }

    /// `{n}`, `{n,}`, `{n,m}`; a `{` that does not start one is a literal (as in Go).
    fn counted(&mut self) -> Result<Option<(usize, Option<usize>)>, RegexError> {
        let rest: String = self.chars[self.pos..].iter().collect();
        let Some(end) = rest.find('}') else {
            return Ok(None);
        };
        let body = &rest[1..end];
        let num = |s: &str| s.parse::<usize>().ok().filter(|n| *n <= MAX_REPEAT);
        let (min, max) = match body.split_once(',') {
            None => match num(body) {
                Some(n) => (n, Some(n)),
                None => return Ok(None),
            },
            Some((a, "")) => match num(a) {
                Some(n) => (n, None),
                None => return Ok(None),
            },
            Some((a, b)) => match (num(a), num(b)) {
                (Some(a), Some(b)) if a <= b => (a, Some(b)),
                (Some(_), Some(_)) => return Err(self.err("invalid repeat count")),
                _ => return Ok(None),
            },
        };
        self.pos += body.chars().count() + 2;
        Ok(Some((min, max)))
    }
}

/// Continuation-passing backtracking: each matcher calls `k` with every position at which it
/// can end, most preferred first, and stops at the first `k` that succeeds.
struct Matcher<'s> {
    s: &'s [char],
    steps: usize,
}

type Cont<'k> = dyn FnMut(&mut Matcher<'_>, usize) -> bool + 'k;

impl Matcher<'_> {
    fn budget(&mut self) -> bool {
        self.steps += 1;
        self.steps <= STEP_BUDGET
    }

    fn alt(&mut self, alts: &[Vec<Node>], i: usize, k: &mut Cont<'_>) -> bool {
        alts.iter().any(|seq| self.seq(seq, i, k))
    }

    fn seq(&mut self, seq: &[Node], i: usize, k: &mut Cont<'_>) -> bool {
        if !self.budget() {
            return false;
        }
        match seq.split_first() {
            None => k(self, i),
            Some((first, rest)) => self.node(first, i, &mut |m, j| m.seq(rest, j, k)),
        }
    }

    fn node(&mut self, n: &Node, i: usize, k: &mut Cont<'_>) -> bool {
        match n {
            Node::Char(c) => self.s.get(i) == Some(c) && k(self, i + 1),
            Node::Any => self.s.get(i).is_some_and(|&c| c != '\n') && k(self, i + 1),
            Node::Class(cl) => self.s.get(i).is_some_and(|&c| cl.matches(c)) && k(self, i + 1),
            Node::Start => i == 0 && k(self, i),
            Node::End => i == self.s.len() && k(self, i),
            Node::Group(alts) => self.alt(alts, i, k),
            Node::Repeat {
                node,
                min,
                max,
                greedy,
            } => self.repeat(node, *min, *max, *greedy, 0, i, k),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn repeat(
        &mut self,
        n: &Node,
        min: usize,
        max: Option<usize>,
        greedy: bool,
        count: usize,
        i: usize,
        k: &mut Cont<'_>,
    ) -> bool {
        if !self.budget() {
            return false;
        }
        let can_stop = count >= min;
        let can_more = max.is_none_or(|m| count < m);
        // An iteration that consumed nothing cannot make progress; stop repeating there.
        let more = |m: &mut Matcher<'_>, k: &mut Cont<'_>| {
            can_more
                && m.node(n, i, &mut |m, j| {
                    (j > i || count < min) && m.repeat(n, min, max, greedy, count + 1, j, k)
                })
        };
        // Greedy tries one more iteration before stopping; lazy the other way round.
        let order: [bool; 2] = if greedy { [true, false] } else { [false, true] };
        order.into_iter().any(|again| {
            if again {
                more(self, k)
            } else {
                can_stop && k(self, i)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(p: &str, s: &str) -> bool {
        Regex::anchored(p).unwrap().is_match(s)
    }

    #[test]
    fn literals_and_dots() {
        assert!(full("v1", "v1"));
        assert!(!full("v1", "v10"));
        assert!(full("v.", "v2"));
        assert!(!full("v.", "v"));
        assert!(full(r"a\.b", "a.b"));
        assert!(!full(r"a\.b", "axb"));
    }

    #[test]
    fn repetition() {
        assert!(full("v.*", "v"));
        assert!(full("v.*", "v1.2.3"));
        assert!(full("sha256.*", "sha256-abc.sig"));
        assert!(!full("a+", ""));
        assert!(full("a+b?", "aaab"));
        assert!(full("ab?c", "ac"));
        assert!(full("(ab)+", "ababab"));
        assert!(!full("(ab)+", "ababa"));
        assert!(full("a{2,3}", "aaa"));
        assert!(!full("a{2,3}", "aaaa"));
        assert!(full("a{2}", "aa"));
        assert!(full("a{2,}", "aaaaa"));
        assert!(full("a{x}", "a{x}"));
        assert!(full("a.*?b", "axxb"));
        assert!(full("(a*)*", "aaa"));
        assert!(full("(a|)*b", "aab"));
    }

    #[test]
    fn alternation_and_groups() {
        assert!(full("a.*|v.*", "a1"));
        assert!(full("a.*|v.*", "v3"));
        assert!(!full("a.*|v.*", "b1"));
        assert!(full("(?:x|y)z", "yz"));
        assert!(full("v(1|2)", "v2"));
        assert!(!full("v(1|2)", "v3"));
    }

    #[test]
    fn classes() {
        assert!(full("[a-c]+", "abcab"));
        assert!(!full("[a-c]+", "abd"));
        assert!(full("[^a-c]", "d"));
        assert!(!full("[^a-c]", "a"));
        assert!(full(r"\d+", "123"));
        assert!(!full(r"\d+", "12a"));
        assert!(full(r"\w+", "a_B9"));
        assert!(full(r"a\sb", "a b"));
        assert!(full("[-a]", "-"));
        assert!(full("[a-]", "-"));
        assert!(full(r"[\d.]+", "1.2"));
        assert!(full("[]a]", "]"));
    }

    #[test]
    fn anchors_and_search() {
        let r = Regex::new("^v").unwrap();
        assert!(r.is_match("v1"));
        assert!(!r.is_match("av1"));
        let r = Regex::new(r"\.meta$").unwrap();
        assert!(r.is_match("sha256-x.y.meta"));
        assert!(!r.is_match("sha256-x.meta.sig"));
        assert!(Regex::new("b").unwrap().is_match("abc"));
        assert!(full(r".*\.meta", "sha256-1234.abcd.meta"));
    }

    #[test]
    fn errors() {
        for bad in ["(", "a)", "[a", "*a", "a**", r"a\", "[z-a]", r"\q", "^*"] {
            assert!(Regex::new(bad).is_err(), "{bad}");
        }
        let e = Regex::new("(").unwrap_err().to_string();
        assert!(e.contains("invalid regexp"), "{e}");
    }

    #[test]
    fn pathological_pattern_is_bounded() {
        let s = "a".repeat(100) + "b";
        assert!(!full("(a*)*c", &s));
        assert!(!full("(a|a)*c", &"a".repeat(40)));
    }
}
