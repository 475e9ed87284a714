//! Lexer and parser: template source to a tree of [`Node`]s.
//!
//! The source is first cut into text and action items (applying `{{-`/`-}}` trims and dropping
//! comments), then each action's tokens are parsed on their own, and finally the flat item
//! list is folded into nested `if`/`range`/`with`/`define` blocks.

use std::collections::HashMap;

use crate::error::{Error, ErrorKind, Result};

/// Deepest nesting of blocks and parentheses accepted, so hostile input cannot blow the stack.
const MAX_NEST: usize = 100;

/// A token inside an action.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// `.Name` (one element of a field chain).
    Field(String),
    /// `.` alone.
    Dot,
    /// `$` or `$name` (name kept with the `$`).
    Var(String),
    Ident(String),
    Str(String),
    Char(i64),
    Int(i64),
    Float(f64),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Byte offsets into the template source.
    pub start: usize,
    pub end: usize,
    /// Whether whitespace precedes the token (separates `(x).F` chains from `(x) .F` args).
    pub space_before: bool,
}

/// A parsed value-producing operand.
#[derive(Debug, Clone)]
pub(crate) enum Term {
    Dot,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `.A.B` relative to dot.
    Field(Vec<String>),
    /// `$x.A.B`.
    Var(String, Vec<String>),
    /// A function name, optionally followed by a field chain (`time.Now`).
    Func(String, Vec<String>),
    /// `(pipeline).A.B`.
    Sub(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone)]
pub(crate) struct Operand {
    pub term: Term,
    /// Source span, for error messages.
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub args: Vec<Operand>,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    /// Variables declared or assigned (with `$`).
    pub vars: Vec<String>,
    /// `=` rather than `:=`.
    pub assign: bool,
    pub cmds: Vec<Cmd>,
    pub start: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
    Template(String, Option<Pipe>, usize),
    Break,
    Continue,
}

/// Names callable as functions; unknown identifiers are rejected at parse time like Go does.
pub(crate) const FUNCS: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "printf",
    "print",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "call",
    "html",
    "js",
    "urlquery",
    "default",
    "env",
    "file",
    "join",
    "split",
    "json",
    "jsonPretty",
    "printPretty",
    "lower",
    "upper",
    "title",
    "trimSpace",
    "time",
];

/// 1-based line and column (in characters) of byte offset `off`.
pub(crate) fn line_col(src: &str, off: usize) -> (usize, usize) {
    let off = off.min(src.len());
    let before = &src[..off];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

fn perr(src: &str, off: usize, msg: impl std::fmt::Display) -> Error {
    let (l, c) = line_col(src, off);
    Error::new(ErrorKind::Parse, format!("template: :{l}:{c}: {msg}"))
}

/// A raw item: text or an action's tokens.
enum Item {
    Text(String),
    Action(Vec<Token>, usize),
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Cuts `src` into text and action items.
fn lex(src: &str) -> Result<Vec<Item>> {
    let b = src.as_bytes();
    let mut items = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    while pos < b.len() {
        let open = src[pos..].find("{{").map(|i| i + pos);
        let text_end = open.unwrap_or(b.len());
        let mut text = &src[pos..text_end];
        if trim_next {
            text = text.trim_start_matches([' ', '\t', '\r', '\n']);
        }
        let Some(open) = open else {
            if !text.is_empty() {
                items.push(Item::Text(text.to_string()));
            }
            break;
        };
        let mut p = open + 2;
        // `{{-` trims only when followed by whitespace; `{{-3}}` is a number.
        if p + 1 < b.len() && b[p] == b'-' && is_space(b[p + 1]) {
            text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            p += 2;
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        // Comment: `/* ... */` immediately (after an optional trim marker).
        let q = p + src[p..].len() - src[p..].trim_start().len();
        if src[q..].starts_with("/*") && (q == p || p == open + 4) {
            let Some(close) = src[q + 2..].find("*/") else {
                return Err(perr(src, open, "unclosed comment"));
            };
            let after = q + 2 + close + 2;
            if src[after..].starts_with("}}") {
                trim_next = false;
                pos = after + 2;
            } else if src[after..].starts_with(" -}}") {
                trim_next = true;
                pos = after + 4;
            } else {
                return Err(perr(src, open, "comment ends before closing delimiter"));
            }
            continue;
        }
        let (toks, end, trim) = lex_action(src, p, open)?;
        items.push(Item::Action(toks, open));
        trim_next = trim;
        pos = end;
    }
    Ok(items)
}

/// Lexes tokens from `p` up to the closing `}}`; returns tokens, the offset after the
/// delimiter, and whether it was a trimming `-}}`.
fn lex_action(src: &str, mut p: usize, open: usize) -> Result<(Vec<Token>, usize, bool)> {
    let b = src.as_bytes();
    let mut toks = Vec::new();
    let mut space = true;
    loop {
        if p >= b.len() {
            return Err(perr(src, open, "unclosed action"));
        }
        let c = b[p];
        if is_space(c) {
            let s = p;
            while p < b.len() && is_space(b[p]) {
                p += 1;
            }
            if src[p..].starts_with("-}}") && p > s {
                return Ok((toks, p + 3, true));
            }
            space = true;
            continue;
        }
        if src[p..].starts_with("}}") {
            return Ok((toks, p + 2, false));
        }
        let start = p;
        let tok = match c {
            b'(' => {
                p += 1;
                Tok::LParen
            }
            b')' => {
                p += 1;
                Tok::RParen
            }
            b'|' => {
                p += 1;
                Tok::Pipe
            }
            b',' => {
                p += 1;
                Tok::Comma
            }
            b'=' => {
                p += 1;
                Tok::Assign
            }
            b':' => {
                if b.get(p + 1) == Some(&b'=') {
                    p += 2;
                    Tok::Declare
                } else {
                    return Err(perr(src, p, "expected :="));
                }
            }
            b'"' => {
                let (s, np) = lex_quoted(src, p)?;
                p = np;
                Tok::Str(s)
            }
            b'`' => {
                let Some(close) = src[p + 1..].find('`') else {
                    return Err(perr(src, p, "unterminated raw quoted string"));
                };
                let s = src[p + 1..p + 1 + close].to_string();
                p = p + 1 + close + 1;
                Tok::Str(s)
            }
            b'\'' => {
                let (s, np) = lex_char(src, p)?;
                p = np;
                Tok::Char(s)
            }
            b'.' if b.get(p + 1).is_some_and(|c| c.is_ascii_digit()) && space => {
                let (t, np) = lex_number(src, p)?;
                p = np;
                t
            }
            b'.' => {
                p += 1;
                let s = p;
                while p < b.len() && (b[p].is_ascii_alphanumeric() || b[p] == b'_' || b[p] >= 0x80)
                {
                    p += 1;
                }
                if p == s {
                    Tok::Dot
                } else {
                    Tok::Field(src[s..p].to_string())
                }
            }
            b'$' => {
                p += 1;
                while p < b.len() && (b[p].is_ascii_alphanumeric() || b[p] == b'_' || b[p] >= 0x80)
                {
                    p += 1;
                }
                Tok::Var(src[start..p].to_string())
            }
            b'0'..=b'9' | b'-' | b'+' => {
                let (t, np) = lex_number(src, p)?;
                p = np;
                t
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                while p < b.len() && (b[p].is_ascii_alphanumeric() || b[p] == b'_' || b[p] >= 0x80)
                {
                    p += 1;
                }
                Tok::Ident(src[start..p].to_string())
            }
            _ => {
                let ch = src[p..].chars().next().unwrap_or('?');
                return Err(perr(
                    src,
                    p,
                    format!("unexpected {:?} in operand", ch.to_string()),
                ));
            }
        };
        toks.push(Token {
            tok,
            start,
            end: p,
            space_before: space,
        });
        space = false;
    }
}

fn lex_quoted(src: &str, p: usize) -> Result<(String, usize)> {
    let mut out = String::new();
    let mut it = src[p + 1..].char_indices();
    while let Some((i, c)) = it.next() {
        match c {
            '"' => return Ok((out, p + 1 + i + 1)),
            '\n' => break,
            '\\' => {
                let Some((_, e)) = it.next() else { break };
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'v' => out.push('\x0b'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut v: u32 = 0;
                        for _ in 0..n {
                            let d = it.next().and_then(|(_, h)| h.to_digit(16));
                            let Some(d) = d else {
                                return Err(perr(src, p, "invalid escape in quoted string"));
                            };
                            v = v * 16 + d;
                        }
                        match char::from_u32(v) {
                            Some(ch) => out.push(ch),
                            None => return Err(perr(src, p, "invalid escape in quoted string")),
                        }
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            let d = it.next().and_then(|(_, h)| h.to_digit(8));
                            let Some(d) = d else {
                                return Err(perr(src, p, "invalid escape in quoted string"));
                            };
                            v = v * 8 + d;
                        }
                        out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                    }
                    _ => return Err(perr(src, p, format!("unknown escape sequence \\{e}"))),
                }
            }
            c => out.push(c),
        }
    }
    Err(perr(src, p, "unterminated quoted string"))
}

fn lex_char(src: &str, p: usize) -> Result<(i64, usize)> {
    let rest = &src[p + 1..];
    let Some(close) = rest.find('\'') else {
        return Err(perr(src, p, "unterminated character constant"));
    };
    // An escaped quote: `'\''`.
    let close = if rest.starts_with("\\'") { 2 } else { close };
    let body = &rest[..close];
    let c = if let Some(e) = body.strip_prefix('\\') {
        let (s, _) = lex_quoted(&format!("\"\\{e}\""), 0)?;
        s.chars().next()
    } else {
        let mut cs = body.chars();
        let c = cs.next();
        if cs.next().is_some() {
            return Err(perr(src, p, "malformed character constant"));
        }
        c
    };
    match c {
        Some(c) if rest[close..].starts_with('\'') => Ok((c as i64, p + 1 + close + 1)),
        _ => Err(perr(src, p, "malformed character constant")),
    }
}

fn lex_number(src: &str, p: usize) -> Result<(Tok, usize)> {
    let b = src.as_bytes();
    let mut e = p;
    while e < b.len() && (b[e].is_ascii_alphanumeric() || matches!(b[e], b'.' | b'_' | b'+' | b'-'))
    {
        // A sign is part of the number only at the start or after an exponent marker.
        if matches!(b[e], b'+' | b'-') && e > p {
            let prev = b[e - 1].to_ascii_lowercase();
            let hex = src[p..e].contains(['x', 'X']);
            if !((prev == b'e' && !hex) || (prev == b'p' && hex)) {
                break;
            }
        }
        e += 1;
    }
    let text = &src[p..e];
    match parse_number(text) {
        Some(t) => Ok((t, e)),
        None => Err(perr(src, p, format!("bad number syntax: {text:?}"))),
    }
}

fn parse_number(text: &str) -> Option<Tok> {
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    let (neg, body) = match clean.as_bytes().first()? {
        b'-' => (true, &clean[1..]),
        b'+' => (false, &clean[1..]),
        _ => (false, &clean[..]),
    };
    if body.is_empty() {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let radix_int = if let Some(h) = lower.strip_prefix("0x") {
        Some(i64::from_str_radix(h, 16).ok()?)
    } else if let Some(o) = lower.strip_prefix("0o") {
        Some(i64::from_str_radix(o, 8).ok()?)
    } else if let Some(bi) = lower.strip_prefix("0b") {
        Some(i64::from_str_radix(bi, 2).ok()?)
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|c| c.is_ascii_digit())
    {
        Some(i64::from_str_radix(&lower[1..], 8).ok()?)
    } else if lower.bytes().all(|c| c.is_ascii_digit()) {
        Some(lower.parse::<i64>().ok()?)
    } else {
        None
    };
    if let Some(v) = radix_int {
        return Some(Tok::Int(if neg { -v } else { v }));
    }
    if !lower
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'+' | b'-'))
    {
        return None;
    }
    let f: f64 = lower.parse().ok()?;
    let f = if neg { -f } else { f };
    // Go treats a float constant with an integral value as usable as an int too.
    if f.fract() == 0.0 && f.abs() < 9.0e15 && !lower.contains(['.', 'e']) {
        return Some(Tok::Int(f as i64));
    }
    Some(Tok::Float(f))
}

/// The result of parsing: the main tree plus `define`d templates.
pub(crate) struct Tree {
    pub root: Vec<Node>,
    pub defs: HashMap<String, Vec<Node>>,
}

/// Parses template source.
pub(crate) fn parse(src: &str) -> Result<Tree> {
    let items = lex(src)?;
    let mut p = Parser {
        src,
        items,
        pos: 0,
        defs: HashMap::new(),
        loops: 0,
    };
    let (root, stop) = p.list(0)?;
    if let Some((kw, off)) = stop {
        return Err(perr(src, off, format!("unexpected {{{{{kw}}}}}")));
    }
    Ok(Tree { root, defs: p.defs })
}

struct Parser<'a> {
    src: &'a str,
    items: Vec<Item>,
    pos: usize,
    defs: HashMap<String, Vec<Node>>,
    /// How many `range` bodies enclose the current point (for `break`/`continue`).
    loops: usize,
}

/// What ended a list: `end` or `else` (with the rest of the else action's tokens).
type Stop = Option<(String, usize)>;

impl<'a> Parser<'a> {
    /// Parses nodes until `{{end}}`/`{{else ...}}` (returned as the stop) or the input ends.
    fn list(&mut self, depth: usize) -> Result<(Vec<Node>, Stop)> {
        if depth > MAX_NEST {
            return Err(perr(self.src, 0, "template nested too deeply"));
        }
        let mut nodes = Vec::new();
        while self.pos < self.items.len() {
            let idx = self.pos;
            self.pos += 1;
            let (toks, open) = match &self.items[idx] {
                Item::Text(t) => {
                    nodes.push(Node::Text(t.clone()));
                    continue;
                }
                Item::Action(toks, open) => (toks.clone(), *open),
            };
            let Some(first) = toks.first() else {
                return Err(perr(self.src, open, "missing value for command"));
            };
            let kw = match &first.tok {
                Tok::Ident(k) => k.as_str(),
                _ => "",
            };
            match kw {
                "end" => {
                    if toks.len() > 1 {
                        return Err(perr(self.src, toks[1].start, "unexpected token in end"));
                    }
                    return Ok((nodes, Some(("end".into(), open))));
                }
                "else" => {
                    // Leave the tokens after `else` for the enclosing block to inspect.
                    self.pos = idx;
                    return Ok((nodes, Some(("else".into(), open))));
                }
                "if" | "range" | "with" => {
                    let node = self.block(kw, &toks[1..], open, depth)?;
                    nodes.push(node);
                }
                "break" | "continue" => {
                    if self.loops == 0 {
                        return Err(perr(
                            self.src,
                            open,
                            format!("{{{{{kw}}}}} outside {{{{range}}}}"),
                        ));
                    }
                    if toks.len() > 1 {
                        return Err(perr(
                            self.src,
                            toks[1].start,
                            format!("unexpected token in {kw}"),
                        ));
                    }
                    nodes.push(if kw == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    });
                }
                "define" => {
                    let name = self.template_name(&toks[1..], open, "define")?;
                    if toks.len() > 2 {
                        return Err(perr(
                            self.src,
                            toks[2].start,
                            "unexpected token in define clause",
                        ));
                    }
                    let saved = std::mem::take(&mut self.loops);
                    let (body, stop) = self.list(depth + 1)?;
                    self.loops = saved;
                    self.expect_end(stop, open, "define")?;
                    self.defs.insert(name, body);
                }
                "template" | "block" => {
                    let name = self.template_name(&toks[1..], open, kw)?;
                    let pipe = if toks.len() > 2 {
                        Some(self.pipeline(&toks[2..], open, false, depth)?)
                    } else {
                        None
                    };
                    if kw == "block" {
                        let saved = std::mem::take(&mut self.loops);
                        let (body, stop) = self.list(depth + 1)?;
                        self.loops = saved;
                        self.expect_end(stop, open, "block")?;
                        self.defs.insert(name.clone(), body);
                    }
                    nodes.push(Node::Template(name, pipe, open));
                }
                _ => {
                    let pipe = self.pipeline(&toks, open, false, depth)?;
                    nodes.push(Node::Action(pipe));
                }
            }
        }
        Ok((nodes, None))
    }

    fn expect_end(&self, stop: Stop, open: usize, what: &str) -> Result<()> {
        match stop {
            Some((k, _)) if k == "end" => Ok(()),
            Some((_, off)) => Err(perr(
                self.src,
                off,
                format!("unexpected {{{{else}}}} in {what}"),
            )),
            None => Err(perr(
                self.src,
                open,
                format!("unexpected EOF: missing {{{{end}}}} for {what}"),
            )),
        }
    }

    fn template_name(&self, toks: &[Token], open: usize, what: &str) -> Result<String> {
        match toks.first() {
            Some(Token {
                tok: Tok::Str(s), ..
            }) => Ok(s.clone()),
            Some(t) => Err(perr(
                self.src,
                t.start,
                format!("unexpected token in {what} clause: expected template name"),
            )),
            None => Err(perr(
                self.src,
                open,
                format!("missing name in {what} clause"),
            )),
        }
    }

    /// Parses an `if`/`range`/`with` block whose pipeline tokens are `toks`.
    fn block(&mut self, kw: &str, toks: &[Token], open: usize, depth: usize) -> Result<Node> {
        if toks.is_empty() {
            return Err(perr(self.src, open, format!("missing value for {kw}")));
        }
        let pipe = self.pipeline(toks, open, kw == "range", depth)?;
        if kw == "range" {
            self.loops += 1;
        }
        let body = self.list(depth + 1);
        if kw == "range" {
            self.loops -= 1;
        }
        let (body, stop) = body?;
        let else_list = match stop {
            None => {
                return Err(perr(
                    self.src,
                    open,
                    format!("unexpected EOF: missing {{{{end}}}} for {kw}"),
                ));
            }
            Some((k, _)) if k == "end" => Vec::new(),
            Some((_, eoff)) => {
                let Item::Action(etoks, _) = &self.items[self.pos] else {
                    return Err(perr(self.src, eoff, "internal error: else"));
                };
                let etoks = etoks.clone();
                self.pos += 1;
                let chained = match etoks.get(1).map(|t| &t.tok) {
                    Some(Tok::Ident(k)) if (k == "if" || k == "with") && kw != "range" => {
                        Some(k.clone())
                    }
                    None => None,
                    Some(_) => {
                        return Err(perr(self.src, etoks[1].start, "unexpected token in else"));
                    }
                };
                if let Some(k) = chained {
                    // `{{else if x}}` is `{{else}}{{if x}}...{{end}}{{end}}` sharing one end.
                    vec![self.block(&k, &etoks[2..], eoff, depth + 1)?]
                } else {
                    let (els, stop2) = self.list(depth + 1)?;
                    match stop2 {
                        Some((k, _)) if k == "end" => els,
                        Some((_, off)) => {
                            return Err(perr(
                                self.src,
                                off,
                                format!("expected end; found {{{{else}}}} in {kw}"),
                            ));
                        }
                        None => {
                            return Err(perr(
                                self.src,
                                open,
                                format!("unexpected EOF: missing {{{{end}}}} for {kw}"),
                            ));
                        }
                    }
                }
            }
        };
        Ok(match kw {
            "if" => Node::If(pipe, body, else_list),
            "range" => Node::Range(pipe, body, else_list),
            _ => Node::With(pipe, body, else_list),
        })
    }

    /// Parses a whole pipeline (with optional variable declaration) from `toks`.
    fn pipeline(&self, toks: &[Token], open: usize, range: bool, depth: usize) -> Result<Pipe> {
        if depth > MAX_NEST {
            return Err(perr(self.src, open, "template nested too deeply"));
        }
        let start = toks.first().map(|t| t.start).unwrap_or(open);
        let mut i = 0;
        let mut vars = Vec::new();
        let mut assign = false;
        // Declarations: `$x :=`, `$x =`, and in range `$i, $v :=`.
        let mut j = 0;
        let mut names = Vec::new();
        while let Some(Token {
            tok: Tok::Var(v), ..
        }) = toks.get(j)
        {
            names.push(v.clone());
            match toks.get(j + 1).map(|t| &t.tok) {
                Some(Tok::Declare) | Some(Tok::Assign) => {
                    assign = toks[j + 1].tok == Tok::Assign;
                    vars = names;
                    i = j + 2;
                    break;
                }
                Some(Tok::Comma) if range && names.len() < 2 => j += 2,
                Some(Tok::Comma) => {
                    return Err(perr(
                        self.src,
                        toks[j + 1].start,
                        "too many declarations in command",
                    ));
                }
                _ => break,
            }
        }
        let rest = &toks[i..];
        if rest.is_empty() {
            return Err(perr(self.src, open, "missing value for command"));
        }
        let mut cmds = Vec::new();
        for seg in rest.split_inclusive_pipes() {
            if seg.is_empty() {
                return Err(perr(self.src, open, "missing command in pipeline"));
            }
            cmds.push(self.command(seg, depth)?);
        }
        // Later stages receive the previous result as an argument, so, as in Go, they must be
        // something callable rather than a literal.
        for c in cmds.iter().skip(1) {
            let executable = matches!(
                c.args.first().map(|a| &a.term),
                Some(Term::Func(..))
                    | Some(Term::Field(_))
                    | Some(Term::Var(_, _))
                    | Some(Term::Sub(..))
            );
            if !executable {
                return Err(perr(
                    self.src,
                    c.start,
                    "non executable command in pipeline stage",
                ));
            }
        }
        Ok(Pipe {
            vars,
            assign,
            cmds,
            start,
        })
    }

    fn command(&self, toks: &[Token], depth: usize) -> Result<Cmd> {
        let mut args = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let (op, n) = self.operand(&toks[i..], depth)?;
            if n < toks.len() - i && !toks[i + n].space_before && toks[i + n].tok != Tok::RParen {
                let t = &toks[i + n];
                return Err(perr(
                    self.src,
                    t.start,
                    format!("unexpected {:?} in operand", &self.src[t.start..t.end]),
                ));
            }
            args.push(op);
            i += n;
        }
        Ok(Cmd {
            start: toks[0].start,
            end: toks[toks.len() - 1].end,
            args,
        })
    }

    /// Parses one operand (term plus adjacent field chain); returns it and tokens consumed.
    fn operand(&self, toks: &[Token], depth: usize) -> Result<(Operand, usize)> {
        let t = &toks[0];
        let mut n = 1;
        let term = match &t.tok {
            Tok::Dot => Term::Dot,
            Tok::Field(f) => {
                let mut chain = vec![f.clone()];
                n += self.chain(&toks[1..], &mut chain);
                return Ok((
                    Operand {
                        term: Term::Field(chain),
                        start: t.start,
                        end: toks[n - 1].end,
                    },
                    n,
                ));
            }
            Tok::Var(v) => Term::Var(v.clone(), Vec::new()),
            Tok::Ident(id) => match id.as_str() {
                "true" => Term::Bool(true),
                "false" => Term::Bool(false),
                "nil" => Term::Nil,
                f if FUNCS.contains(&f) => Term::Func(f.to_string(), Vec::new()),
                f => {
                    return Err(perr(
                        self.src,
                        t.start,
                        format!("function {f:?} not defined"),
                    ))
                }
            },
            Tok::Str(s) => Term::Str(s.clone()),
            Tok::Char(c) | Tok::Int(c) => Term::Int(*c),
            Tok::Float(f) => Term::Float(*f),
            Tok::LParen => {
                // Find the matching parenthesis.
                let mut level = 0usize;
                let mut close = None;
                for (k, tk) in toks.iter().enumerate() {
                    match tk.tok {
                        Tok::LParen => level += 1,
                        Tok::RParen => {
                            level -= 1;
                            if level == 0 {
                                close = Some(k);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let Some(close) = close else {
                    return Err(perr(self.src, t.start, "unclosed left paren"));
                };
                let inner = &toks[1..close];
                if inner.is_empty() {
                    return Err(perr(
                        self.src,
                        t.start,
                        "missing value for parenthesized pipeline",
                    ));
                }
                let pipe = self.pipeline(inner, t.start, false, depth + 1)?;
                n = close + 1;
                Term::Sub(Box::new(pipe), Vec::new())
            }
            Tok::RParen => return Err(perr(self.src, t.start, "unexpected right paren")),
            Tok::Pipe => return Err(perr(self.src, t.start, "unexpected \"|\" in operand")),
            Tok::Declare | Tok::Assign | Tok::Comma => {
                return Err(perr(
                    self.src,
                    t.start,
                    format!("unexpected {:?} in operand", &self.src[t.start..t.end]),
                ));
            }
        };
        let mut chain = Vec::new();
        let extra = self.chain(&toks[n..], &mut chain);
        if extra > 0 {
            match &term {
                Term::Var(..) | Term::Func(..) | Term::Sub(..) => {}
                _ => {
                    return Err(perr(
                        self.src,
                        toks[n].start,
                        format!(
                            "unexpected . after term {:?}",
                            &self.src[t.start..toks[n - 1].end]
                        ),
                    ));
                }
            }
        }
        n += extra;
        let term = match term {
            Term::Var(v, _) => Term::Var(v, chain),
            Term::Func(f, _) => Term::Func(f, chain),
            Term::Sub(p, _) => Term::Sub(p, chain),
            other => other,
        };
        Ok((
            Operand {
                term,
                start: t.start,
                end: toks[n - 1].end,
            },
            n,
        ))
    }

    /// Collects `.Field` tokens directly adjacent (no space) into `chain`; returns the count.
    fn chain(&self, toks: &[Token], chain: &mut Vec<String>) -> usize {
        let mut n = 0;
        while let Some(Token {
            tok: Tok::Field(f),
            space_before: false,
            ..
        }) = toks.get(n)
        {
            chain.push(f.clone());
            n += 1;
        }
        n
    }
}

/// Splits tokens at top-level `|` (not inside parentheses).
trait SplitPipes {
    fn split_inclusive_pipes(&self) -> Vec<&[Token]>;
}

impl SplitPipes for [Token] {
    fn split_inclusive_pipes(&self) -> Vec<&[Token]> {
        let mut out = Vec::new();
        let mut level = 0i64;
        let mut s = 0;
        for (i, t) in self.iter().enumerate() {
            match t.tok {
                Tok::LParen => level += 1,
                Tok::RParen => level -= 1,
                Tok::Pipe if level == 0 => {
                    out.push(&self[s..i]);
                    s = i + 1;
                }
                _ => {}
            }
        }
        out.push(&self[s..]);
        out
    }
}
