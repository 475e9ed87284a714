//! Template functions: Go's builtins and regctl's additions, plus a `printf` implementation.

use std::cmp::Ordering;

use super::time::TimeFuncs;
use super::value::{self, fmt_v, to_json, truthy, type_name};
use super::Value;

type FResult = Result<Value, String>;

fn want(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn want_str(name: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!(
            "wrong type for value; expected string; got {} (in {name})",
            type_name(other)
        )),
    }
}

/// Calls function `name` (already known to exist) with evaluated `args`.
pub(crate) fn call(name: &str, args: &[Value]) -> FResult {
    match name {
        "not" => {
            want(name, args, 1)?;
            Ok(Value::Bool(!truthy(&args[0])))
        }
        "len" => {
            want(name, args, 1)?;
            value::len(&args[0]).map(|n| Value::Int(n as i64))
        }
        "index" => {
            if args.is_empty() {
                return Err("wrong number of args for index: want at least 1 got 0".into());
            }
            let mut v = args[0].clone();
            for i in &args[1..] {
                v = value::index(&v, i)?;
            }
            Ok(v)
        }
        "slice" => slice(args),
        "print" => Ok(Value::String(sprint(args))),
        "println" => {
            let parts: Vec<String> = args.iter().map(fmt_v).collect();
            Ok(Value::String(format!("{}\n", parts.join(" "))))
        }
        "printf" => {
            if args.is_empty() {
                return Err("wrong number of args for printf: want at least 1 got 0".into());
            }
            let f = want_str(name, &args[0])?;
            Ok(Value::String(sprintf(&f, &args[1..])))
        }
        "eq" => {
            if args.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            for b in &args[1..] {
                if compare(&args[0], b, true)? == Some(Ordering::Equal) {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(name, args, 2)?;
            let ord = compare(&args[0], &args[1], name == "ne")?;
            Ok(Value::Bool(match name {
                "ne" => ord != Some(Ordering::Equal),
                "lt" => ord == Some(Ordering::Less),
                "le" => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                "gt" => ord == Some(Ordering::Greater),
                _ => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
            }))
        }
        "call" => Err("call is not supported: templates have no function values".into()),
        "html" => Ok(Value::String(html_escape(&sprint(args)))),
        "js" => Ok(Value::String(js_escape(&sprint(args)))),
        "urlquery" => Ok(Value::String(query_escape(&sprint(args)))),
        "default" => {
            want(name, args, 2)?;
            Ok(if is_zero(&args[1]) {
                args[0].clone()
            } else {
                args[1].clone()
            })
        }
        "env" => {
            want(name, args, 1)?;
            let n = want_str(name, &args[0])?;
            Ok(Value::String(std::env::var(n).unwrap_or_default()))
        }
        "file" => {
            want(name, args, 1)?;
            let p = want_str(name, &args[0])?;
            // Bounded read: a format string should not be able to pull in a huge file.
            let s = read_limited(&p, 16 << 20).unwrap_or_default();
            Ok(Value::String(s.trim().to_string()))
        }
        "join" => {
            want(name, args, 2)?;
            let sep = want_str(name, &args[1])?;
            let items: Vec<String> = match &args[0] {
                Value::List(l) => l.iter().map(fmt_v).collect(),
                Value::Json(serde_json::Value::Array(a)) => {
                    a.iter().map(|x| fmt_v(&value::from_json(x))).collect()
                }
                Value::Nil => Vec::new(),
                other => {
                    return Err(format!(
                        "wrong type for value; expected []string; got {}",
                        type_name(other)
                    ))
                }
            };
            Ok(Value::String(items.join(&sep)))
        }
        "split" => {
            want(name, args, 2)?;
            let s = want_str(name, &args[0])?;
            let sep = want_str(name, &args[1])?;
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                s.split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect()
            };
            Ok(Value::List(parts))
        }
        "json" => {
            want(name, args, 1)?;
            let j = to_json(&args[0]);
            Ok(Value::String(format!("{j}\n")))
        }
        "jsonPretty" => {
            want(name, args, 1)?;
            Ok(Value::String(json_pretty(&args[0])))
        }
        "printPretty" => {
            want(name, args, 1)?;
            if let Value::Object(o) = &args[0] {
                if let Some(p) = o.pretty() {
                    return Ok(Value::String(p));
                }
            }
            Ok(Value::String(json_pretty(&args[0])))
        }
        "lower" => {
            want(name, args, 1)?;
            Ok(Value::String(want_str(name, &args[0])?.to_lowercase()))
        }
        "upper" => {
            want(name, args, 1)?;
            Ok(Value::String(want_str(name, &args[0])?.to_uppercase()))
        }
        "title" => {
            want(name, args, 1)?;
            Ok(Value::String(title(&want_str(name, &args[0])?)))
        }
        "trimSpace" => {
            want(name, args, 1)?;
            Ok(Value::String(want_str(name, &args[0])?.trim().to_string()))
        }
        "time" => {
            want(name, args, 0)?;
            Ok(Value::Object(std::sync::Arc::new(TimeFuncs)))
        }
        other => Err(format!("function {other:?} not defined")),
    }
}

fn read_limited(path: &str, max: u64) -> Option<String> {
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf).ok()?;
    String::from_utf8(buf).ok()
}

fn json_pretty(v: &Value) -> String {
    let j = to_json(v);
    let s = serde_json::to_string_pretty(&j).unwrap_or_else(|_| j.to_string());
    format!("{s}\n")
}

/// Zero in Go's reflect sense, loosely: nil, false, 0, "" and empty collections.
fn is_zero(v: &Value) -> bool {
    !truthy(v)
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

/// Go's `fmt.Sprint`: spaces only between operands that are both non-strings.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            let is_str = |v: &Value| matches!(v, Value::String(_));
            if !is_str(a) && !is_str(&args[i - 1]) {
                out.push(' ');
            }
        }
        out.push_str(&fmt_v(a));
    }
    out
}

fn slice(args: &[Value]) -> FResult {
    if args.is_empty() {
        return Err("wrong number of args for slice: want at least 1 got 0".into());
    }
    if args.len() > 4 {
        return Err("too many slice indexes".into());
    }
    let mut idx = Vec::new();
    for a in &args[1..] {
        match a {
            Value::Int(i) if *i >= 0 => idx.push(*i as usize),
            Value::Int(i) => return Err(format!("index out of range: {i}")),
            other => {
                return Err(format!(
                    "cannot index slice/array with type {}",
                    type_name(other)
                ))
            }
        }
    }
    let bounds = |len: usize| -> Result<(usize, usize), String> {
        let lo = idx.first().copied().unwrap_or(0);
        let hi = idx.get(1).copied().unwrap_or(len);
        if lo > hi || hi > len {
            return Err(format!("index out of range: [{lo}:{hi}] with length {len}"));
        }
        Ok((lo, hi))
    };
    match &args[0] {
        Value::String(s) => {
            if idx.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            let (lo, hi) = bounds(s.len())?;
            let b = &s.as_bytes()[lo..hi];
            Ok(Value::String(String::from_utf8_lossy(b).into_owned()))
        }
        Value::List(l) => {
            let (lo, hi) = bounds(l.len())?;
            Ok(Value::List(l[lo..hi].to_vec()))
        }
        Value::Json(serde_json::Value::Array(a)) => {
            let (lo, hi) = bounds(a.len())?;
            Ok(Value::Json(serde_json::Value::Array(a[lo..hi].to_vec())))
        }
        other => Err(format!("can't slice item of type {}", type_name(other))),
    }
}

/// Orders two values like Go's comparison builtins; `None` means "not equal, unordered"
/// (only allowed for equality checks between different kinds of value).
fn compare(a: &Value, b: &Value, equality: bool) -> Result<Option<Ordering>, String> {
    let norm = |v: &Value| match v {
        Value::Json(j) if !j.is_array() && !j.is_object() => value::from_json(j),
        other => other.clone(),
    };
    let (a, b) = (norm(a), norm(b));
    match (&a, &b) {
        (Value::Int(x), Value::Int(y)) => Ok(Some(x.cmp(y))),
        (Value::Int(x), Value::Float(y)) => Ok((*x as f64).partial_cmp(y)),
        (Value::Float(x), Value::Int(y)) => Ok(x.partial_cmp(&(*y as f64))),
        (Value::Float(x), Value::Float(y)) => Ok(x.partial_cmp(y)),
        (Value::String(x), Value::String(y)) => Ok(Some(x.cmp(y))),
        // Go types such as digest.Digest are strings underneath; compare by display form.
        (Value::Object(o), Value::String(y)) => Ok(Some(o.display().cmp(y))),
        (Value::String(x), Value::Object(o)) => Ok(Some(x.cmp(&o.display()))),
        (Value::Bool(x), Value::Bool(y)) if equality => Ok(Some(x.cmp(y))),
        (Value::Nil, Value::Nil) if equality => Ok(Some(Ordering::Equal)),
        (Value::Nil, _) | (_, Value::Nil) if equality => Ok(None),
        (Value::List(_) | Value::Map(_) | Value::Json(_), _)
        | (_, Value::List(_) | Value::Map(_) | Value::Json(_)) => Err(format!(
            "non-comparable type {}",
            if matches!(a, Value::List(_) | Value::Map(_) | Value::Json(_)) {
                type_name(&a)
            } else {
                type_name(&b)
            }
        )),
        _ if equality => Err("incompatible types for comparison".into()),
        _ => Err("invalid type for comparison".into()),
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `strconv.Quote`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Parsed `%` directive flags.
#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    sharp: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn pad(s: String, sp: &Spec, numeric: bool) -> String {
    let Some(w) = sp.width else { return s };
    let n = s.chars().count();
    if n >= w {
        return s;
    }
    let fill = w - n;
    if sp.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if sp.zero && numeric {
        // Zeros go after the sign.
        let (sign, digits) = match s.strip_prefix(['-', '+']) {
            Some(rest) => (&s[..1], rest),
            None => ("", s.as_str()),
        };
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

fn bad_verb(verb: char, v: &Value) -> String {
    match v {
        Value::Nil => format!("%!{verb}(<nil>)"),
        v => format!("%!{verb}({}={})", type_name(v), fmt_v(v)),
    }
}

fn sign(s: String, sp: &Spec, neg: bool) -> String {
    if neg {
        s
    } else if sp.plus {
        format!("+{s}")
    } else if sp.space {
        format!(" {s}")
    } else {
        s
    }
}

fn fmt_one(verb: char, sp: &Spec, v: &Value) -> String {
    let v = match v {
        Value::Json(j) if !j.is_array() && !j.is_object() => value::from_json(j),
        other => other.clone(),
    };
    match verb {
        'v' | 's' => {
            if verb == 's'
                && !matches!(
                    v,
                    Value::String(_)
                        | Value::Object(_)
                        | Value::List(_)
                        | Value::Map(_)
                        | Value::Json(_)
                )
            {
                if let Value::Nil = v {
                    return pad("%!s(<nil>)".into(), sp, false);
                }
                return bad_verb(verb, &v);
            }
            let mut s = match (&v, verb) {
                (Value::Int(i), 'v') => sign(i.to_string(), sp, *i < 0),
                (Value::Float(f), 'v') => sign(value::fmt_float(*f), sp, *f < 0.0),
                _ => fmt_v(&v),
            };
            if let (Some(p), Value::String(_)) = (sp.prec, &v) {
                s = s.chars().take(p).collect();
            }
            pad(s, sp, false)
        }
        'd' => match v {
            Value::Int(i) => pad(sign(i.to_string(), sp, i < 0), sp, true),
            Value::List(l) => {
                let parts: Vec<String> = l.iter().map(|x| fmt_one('d', sp, x)).collect();
                format!("[{}]", parts.join(" "))
            }
            other => bad_verb(verb, &other),
        },
        'b' | 'o' | 'x' | 'X' => match v {
            Value::Int(i) => {
                let (neg, u) = (i < 0, i.unsigned_abs());
                let body = match verb {
                    'b' => format!("{u:b}"),
                    'o' => format!("{u:o}"),
                    'x' => format!("{u:x}"),
                    _ => format!("{u:X}"),
                };
                let prefix = match (sp.sharp, verb) {
                    (true, 'x') => "0x",
                    (true, 'X') => "0X",
                    (true, 'o') => "0",
                    _ => "",
                };
                let s = format!("{}{prefix}{body}", if neg { "-" } else { "" });
                pad(sign(s, sp, neg), sp, true)
            }
            Value::String(s) if verb == 'x' || verb == 'X' => {
                let h: String = s
                    .bytes()
                    .map(|b| {
                        if verb == 'x' {
                            format!("{b:02x}")
                        } else {
                            format!("{b:02X}")
                        }
                    })
                    .collect();
                pad(h, sp, false)
            }
            other => bad_verb(verb, &other),
        },
        'c' => match v {
            Value::Int(i) => pad(
                char::from_u32(i as u32).unwrap_or('\u{fffd}').to_string(),
                sp,
                false,
            ),
            other => bad_verb(verb, &other),
        },
        'q' => match v {
            Value::String(s) => pad(quote(&s), sp, false),
            Value::Int(i) => {
                let c = char::from_u32(i as u32).unwrap_or('\u{fffd}');
                let q = quote(&c.to_string());
                let inner = &q[1..q.len() - 1];
                let inner = if inner == "\\\"" {
                    "\""
                } else if c == '\'' {
                    "\\'"
                } else {
                    inner
                };
                pad(format!("'{inner}'"), sp, false)
            }
            Value::Object(o) => pad(quote(&o.display()), sp, false),
            Value::List(l) => {
                let parts: Vec<String> = l.iter().map(|x| fmt_one('q', sp, x)).collect();
                format!("[{}]", parts.join(" "))
            }
            other => bad_verb(verb, &other),
        },
        't' => match v {
            Value::Bool(b) => pad(b.to_string(), sp, false),
            other => bad_verb(verb, &other),
        },
        'f' | 'F' | 'e' | 'E' | 'g' | 'G' => match v {
            Value::Float(f) => {
                let s = match verb {
                    'f' | 'F' => format!("{:.*}", sp.prec.unwrap_or(6), f),
                    'e' | 'E' => {
                        let s = go_exp(f, sp.prec.unwrap_or(6));
                        if verb == 'E' {
                            s.to_uppercase()
                        } else {
                            s
                        }
                    }
                    _ => match sp.prec {
                        None => value::fmt_float(f),
                        Some(p) => go_g(f, p.max(1)),
                    },
                };
                pad(sign(s, sp, f < 0.0), sp, true)
            }
            other => bad_verb(verb, &other),
        },
        'T' => pad(type_name(&v), sp, false),
        _ => format!("%!{verb}({}={})", type_name(&v), fmt_v(&v)),
    }
}

/// `%e` with Go's two-digit minimum exponent.
fn go_exp(f: f64, prec: usize) -> String {
    let s = format!("{:.*e}", prec, f);
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

/// `%.Ng`: N significant digits, exponent form when the exponent is < -4 or >= N.
fn go_g(f: f64, prec: usize) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let e = go_exp(f, prec - 1);
    let exp: i32 = e
        .rsplit_once('e')
        .and_then(|(_, x)| x.parse().ok())
        .unwrap_or(0);
    let trim = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if exp < -4 || exp >= prec as i32 {
        let (m, x) = e.split_once('e').unwrap_or((&e, ""));
        format!("{}e{x}", trim(m.to_string()))
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim(format!("{:.*}", decimals, f))
    }
}

/// Go's `fmt.Sprintf` for the common verbs, flags, widths and precisions.
pub(crate) fn sprintf(f: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = f.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut sp = Spec::default();
        while let Some(&fl) = chars.peek() {
            match fl {
                '-' => sp.minus = true,
                '+' => sp.plus = true,
                '0' => sp.zero = true,
                ' ' => sp.space = true,
                '#' => sp.sharp = true,
                _ => break,
            }
            chars.next();
        }
        let num = |chars: &mut std::iter::Peekable<std::str::Chars>, next: &mut usize| {
            if chars.peek() == Some(&'*') {
                chars.next();
                let v = match args.get(*next) {
                    Some(Value::Int(i)) if *i >= 0 => Some((*i as usize).min(1 << 16)),
                    _ => None,
                };
                *next += 1;
                return v;
            }
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                // Cap widths so a format string cannot ask for gigabytes of padding.
                n = Some((n.unwrap_or(0) * 10 + d as usize).min(1 << 16));
                chars.next();
            }
            n
        };
        sp.width = num(&mut chars, &mut next);
        if chars.peek() == Some(&'.') {
            chars.next();
            sp.prec = Some(num(&mut chars, &mut next).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(next) {
            Some(a) => out.push_str(&fmt_one(verb, &sp, a)),
            None => out.push_str(&format!("%!{verb}(MISSING)")),
        }
        next += 1;
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| match a {
                Value::Nil => "<nil>".to_string(),
                a => format!("{}={}", type_name(a), fmt_v(a)),
            })
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}
