//! Execution: walks the parsed tree over a [`Value`], tracking dot and variables.

use std::collections::HashMap;

use super::funcs;
use super::parse::{line_col, Cmd, Node, Operand, Pipe, Term, Tree};
use super::value::{self, fmt_v, truthy};
use super::Value;
use crate::error::{Error, ErrorKind, Result};

/// Deepest nesting of blocks plus `template` calls; stops runaway recursion.
const MAX_DEPTH: usize = 100;
/// Longest `range` over an integer.
const MAX_RANGE_INT: i64 = 1_000_000;
/// Total node executions per render, so recursive templates cannot run for ages.
const MAX_STEPS: u64 = 10_000_000;
/// Largest output a render may produce.
const MAX_OUTPUT: usize = 256 << 20;

/// An execution error; `located` once the message names the failing operand.
struct EErr {
    msg: String,
    located: bool,
}

type R<T> = std::result::Result<T, EErr>;

fn plain(msg: impl Into<String>) -> EErr {
    EErr {
        msg: msg.into(),
        located: false,
    }
}

enum Flow {
    Normal,
    Break,
    Continue,
}

struct State<'a> {
    src: &'a str,
    defs: &'a HashMap<String, Vec<Node>>,
    vars: Vec<(String, Value)>,
    out: String,
    steps: u64,
}

/// Executes `tree` (parsed from `src`) over `data`.
pub(crate) fn render(src: &str, tree: &Tree, data: &Value) -> Result<String> {
    let data = match data {
        // Top-level JSON scalars behave like the decoded Go values.
        Value::Json(j) if !j.is_array() && !j.is_object() => value::from_json(j),
        d => d.clone(),
    };
    let mut st = State {
        src,
        defs: &tree.defs,
        vars: vec![("$".to_string(), data.clone())],
        out: String::new(),
        steps: 0,
    };
    match st.walk(&tree.root, &data, 0) {
        Ok(_) => Ok(st.out),
        Err(e) => {
            let msg = if e.located {
                e.msg
            } else {
                format!("template: executing: {}", e.msg)
            };
            Err(Error::new(ErrorKind::InvalidInput, msg))
        }
    }
}

impl<'a> State<'a> {
    /// Attaches the location of `start..end` to an error that has none yet.
    fn locate(&self, e: EErr, start: usize, end: usize) -> EErr {
        if e.located {
            return e;
        }
        let (l, c) = line_col(self.src, start);
        let snippet = &self.src[start..end.min(self.src.len())];
        EErr {
            msg: format!("template: :{l}:{c}: executing at <{snippet}>: {}", e.msg),
            located: true,
        }
    }

    fn emit(&mut self, s: &str) -> R<()> {
        if self.out.len() + s.len() > MAX_OUTPUT {
            return Err(plain(format!(
                "template output exceeded the limit of {MAX_OUTPUT} bytes"
            )));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(plain(format!(
                "template execution exceeded the limit of {MAX_STEPS} steps"
            )));
        }
        Ok(())
    }

    fn walk(&mut self, nodes: &[Node], dot: &Value, depth: usize) -> R<Flow> {
        if depth > MAX_DEPTH {
            return Err(plain(format!(
                "exceeded maximum template depth ({MAX_DEPTH})"
            )));
        }
        for node in nodes {
            self.step()?;
            match node {
                Node::Text(t) => self.emit(t)?,
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.vars.is_empty() {
                        match v {
                            // Go prints a missing value this way rather than `<nil>`.
                            Value::Nil => self.emit("<no value>")?,
                            v => self.emit(&fmt_v(&v))?,
                        }
                    }
                }
                Node::If(p, body, els) | Node::With(p, body, els) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot);
                    let flow = match v {
                        Ok(v) if truthy(&v) => {
                            let d = if matches!(node, Node::With(..)) {
                                &v
                            } else {
                                dot
                            };
                            self.walk(body, d, depth + 1)
                        }
                        Ok(_) => self.walk(els, dot, depth + 1),
                        Err(e) => Err(e),
                    };
                    self.vars.truncate(mark);
                    match flow? {
                        Flow::Normal => {}
                        f => return Ok(f),
                    }
                }
                Node::Range(p, body, els) => {
                    let mark = self.vars.len();
                    let r = self.range(p, body, els, dot, depth);
                    self.vars.truncate(mark);
                    // Only the else branch can pass a break/continue on to an outer range.
                    match r? {
                        Flow::Normal => {}
                        f => return Ok(f),
                    }
                }
                Node::Template(name, p, off) => {
                    let Some(body) = self.defs.get(name) else {
                        let (l, c) = line_col(self.src, *off);
                        return Err(EErr {
                            msg: format!(
                                "template: :{l}:{c}: executing: no such template {name:?}"
                            ),
                            located: true,
                        });
                    };
                    let d = match p {
                        Some(p) => self.pipe(p, dot)?,
                        None => Value::Nil,
                    };
                    // A called template sees only `$`, set to its argument.
                    let saved = std::mem::replace(&mut self.vars, vec![("$".into(), d.clone())]);
                    let r = self.walk(body, &d, depth + 1);
                    self.vars = saved;
                    r?;
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn range(
        &mut self,
        p: &Pipe,
        body: &[Node],
        els: &[Node],
        dot: &Value,
        depth: usize,
    ) -> R<Flow> {
        let v = self.pipe_value(p, dot)?;
        // Lazy, so ranging over a large integer does not allocate every element up front.
        type Items<'v> = Box<dyn Iterator<Item = (Value, Value)> + 'v>;
        let items: Items = match &v {
            Value::Nil => Box::new(std::iter::empty()),
            Value::List(l) => Box::new(
                l.iter()
                    .enumerate()
                    .map(|(i, x)| (Value::Int(i as i64), x.clone())),
            ),
            Value::Map(m) => Box::new(m.iter().map(|(k, x)| (Value::String(k.clone()), x.clone()))),
            Value::Json(serde_json::Value::Array(a)) => Box::new(
                a.iter()
                    .enumerate()
                    .map(|(i, x)| (Value::Int(i as i64), value::from_json(x))),
            ),
            Value::Json(serde_json::Value::Object(o)) => {
                // Go ranges over maps in key order.
                let mut kv: Vec<(&String, &serde_json::Value)> = o.iter().collect();
                kv.sort_by(|a, b| a.0.cmp(b.0));
                Box::new(
                    kv.into_iter()
                        .map(|(k, x)| (Value::String(k.clone()), value::from_json(x))),
                )
            }
            Value::Int(n) => {
                if *n > MAX_RANGE_INT {
                    return Err(self.locate(
                        plain(format!(
                            "range over {n} exceeds the limit of {MAX_RANGE_INT}"
                        )),
                        p.start,
                        p.start,
                    ));
                }
                if p.vars.len() > 1 {
                    return Err(plain("can't use two variables ranging over an integer"));
                }
                Box::new((0..*n.max(&0)).map(|i| (Value::Int(i), Value::Int(i))))
            }
            other => return Err(plain(format!("range can't iterate over {}", fmt_v(other)))),
        };
        let mut items = items.peekable();
        if items.peek().is_none() {
            return self.walk(els, dot, depth + 1);
        }
        let mark = self.vars.len();
        for (k, x) in items {
            // Counted here too: an empty body would otherwise loop without taking steps.
            self.step()?;
            match p.vars.as_slice() {
                [] => {}
                [one] => self.vars.push((one.clone(), x.clone())),
                [a, b, ..] => {
                    self.vars.push((a.clone(), k));
                    self.vars.push((b.clone(), x.clone()));
                }
            }
            let flow = self.walk(body, &x, depth + 1);
            self.vars.truncate(mark);
            match flow? {
                Flow::Break => break,
                Flow::Continue | Flow::Normal => {}
            }
        }
        Ok(Flow::Normal)
    }

    /// Evaluates a pipeline and applies its declaration or assignment.
    fn pipe(&mut self, p: &Pipe, dot: &Value) -> R<Value> {
        let v = self.pipe_value(p, dot)?;
        for name in &p.vars {
            if p.assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => {
                        return Err(self.locate(
                            plain(format!("undefined variable: {name}")),
                            p.start,
                            p.start + name.len(),
                        ))
                    }
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    /// Evaluates a pipeline's commands, feeding each result to the next as its last argument.
    fn pipe_value(&mut self, p: &Pipe, dot: &Value) -> R<Value> {
        let mut last: Option<Value> = None;
        for cmd in &p.cmds {
            let v = self.cmd(cmd, dot, last.take())?;
            last = Some(v);
        }
        Ok(last.unwrap_or(Value::Nil))
    }

    fn cmd(&mut self, cmd: &Cmd, dot: &Value, fin: Option<Value>) -> R<Value> {
        let first = &cmd.args[0];
        let rest = &cmd.args[1..];
        let has_args = !rest.is_empty() || fin.is_some();
        let r = match &first.term {
            Term::Func(name, chain) if chain.is_empty() => self.call_func(name, rest, fin, dot),
            Term::Func(name, chain) => {
                let v = self.call_func(name, &[], None, dot)?;
                let args = self.args(rest, fin, dot)?;
                self.chain(v, chain, Some(args))
            }
            Term::Field(chain) => {
                let args = self.args(rest, fin, dot)?;
                self.chain(dot.clone(), chain, Some(args))
            }
            Term::Var(name, chain) if !chain.is_empty() => {
                let v = self.var(name)?;
                let args = self.args(rest, fin, dot)?;
                self.chain(v, chain, Some(args))
            }
            Term::Sub(p, chain) if !chain.is_empty() => {
                let v = self.pipe(p, dot)?;
                let args = self.args(rest, fin, dot)?;
                self.chain(v, chain, Some(args))
            }
            _ if has_args => Err(plain(format!(
                "can't give argument to non-function {}",
                &self.src[first.start..first.end]
            ))),
            _ => self.arg(first, dot),
        };
        r.map_err(|e| self.locate(e, cmd.start, cmd.end))
    }

    fn args(&mut self, ops: &[Operand], fin: Option<Value>, dot: &Value) -> R<Vec<Value>> {
        let mut out = Vec::with_capacity(ops.len() + 1);
        for op in ops {
            out.push(self.arg(op, dot)?);
        }
        out.extend(fin);
        Ok(out)
    }

    /// Evaluates an operand used as a value (functions are called without arguments).
    fn arg(&mut self, op: &Operand, dot: &Value) -> R<Value> {
        let r = match &op.term {
            Term::Dot => Ok(dot.clone()),
            Term::Nil => Ok(Value::Nil),
            Term::Bool(b) => Ok(Value::Bool(*b)),
            Term::Int(i) => Ok(Value::Int(*i)),
            Term::Float(f) => Ok(Value::Float(*f)),
            Term::Str(s) => Ok(Value::String(s.clone())),
            Term::Field(chain) => self.chain(dot.clone(), chain, None),
            Term::Var(name, chain) => {
                let v = self.var(name)?;
                self.chain(v, chain, None)
            }
            Term::Func(name, chain) => {
                let v = self.call_func(name, &[], None, dot)?;
                self.chain(v, chain, None)
            }
            Term::Sub(p, chain) => {
                let v = self.pipe(p, dot)?;
                self.chain(v, chain, None)
            }
        };
        r.map_err(|e| self.locate(e, op.start, op.end))
    }

    fn var(&self, name: &str) -> R<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| plain(format!("undefined variable: {name}")))
    }

    /// Follows `.A.B.C` from `v`; `args` (if any) go to the last element as a method call.
    fn chain(&mut self, mut v: Value, chain: &[String], args: Option<Vec<Value>>) -> R<Value> {
        let args = args.unwrap_or_default();
        for (i, name) in chain.iter().enumerate() {
            let last = i + 1 == chain.len();
            if last && !args.is_empty() {
                return match &v {
                    Value::Object(o) => match o.call(name, &args) {
                        Some(r) => r.map_err(|e| plain(e.to_string())),
                        None if o.field(name).is_some() => Err(plain(format!(
                            "can't give argument to non-function .{name}"
                        ))),
                        None => Err(plain(format!(
                            "can't evaluate field {name} in type {}",
                            o.type_name()
                        ))),
                    },
                    _ => Err(plain(format!(
                        "can't give argument to non-function .{name}"
                    ))),
                };
            }
            v = match value::field(&v, name) {
                Ok(x) => x,
                // A method that wants arguments gets called with none, so its own error
                // (wrong number of args) is reported instead of "can't evaluate field".
                Err(e) => match &v {
                    Value::Object(o) => match o.call(name, &[]) {
                        Some(r) => r.map_err(|e| plain(e.to_string()))?,
                        None => return Err(plain(e)),
                    },
                    _ => return Err(plain(e)),
                },
            };
        }
        if chain.is_empty() && !args.is_empty() {
            return Err(plain("can't give argument to non-function"));
        }
        Ok(v)
    }

    fn call_func(
        &mut self,
        name: &str,
        ops: &[Operand],
        fin: Option<Value>,
        dot: &Value,
    ) -> R<Value> {
        // `and` and `or` stop evaluating at the deciding argument, like Go 1.18+.
        if name == "and" || name == "or" {
            let n = ops.len() + fin.is_some() as usize;
            if n == 0 {
                return Err(plain(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                )));
            }
            let mut last = Value::Nil;
            for op in ops {
                last = self.arg(op, dot)?;
                if truthy(&last) != (name == "and") {
                    return Ok(last);
                }
            }
            if let Some(f) = fin {
                last = f;
            }
            return Ok(last);
        }
        let args = self.args(ops, fin, dot)?;
        funcs::call(name, &args).map_err(|e| {
            if e.starts_with("wrong number of args") || e.starts_with("wrong type") {
                plain(e)
            } else {
                plain(format!("error calling {name}: {e}"))
            }
        })
    }
}
