//! A Go `text/template` engine, so `--format` strings written for regctl keep working.
//!
//! - [`Template::parse`] compiles a template; [`Template::render`] executes it over a [`Value`].
//! - Data is a [`Value`]; Go structs are [`Object`]s, which answer field and zero-argument
//!   method lookups by Go name (`.GetDescriptor`, `.Config`), serialise to JSON for
//!   `json`/`jsonPretty`, and may offer a human layout for `printPretty`. Methods taking
//!   arguments (`.Format "2006-01-02"`) go through [`Object::call`].
//!
//! Supported: text/template actions, trims, comments, pipelines, variables, `if`/`range`/
//! `with` (with `else`, `else if`, `else with`, `break`, `continue`), `define`/`template`/
//! `block`, Go's builtin functions (`call` excepted) and regctl's functions (`default`, `env`,
//! `file`, `join`, `split`, `json`, `jsonPretty`, `printPretty`, `lower`, `upper`, `title`,
//! `trimSpace`, `time`).
//!
//! Deliberate differences from Go, chosen for leniency where regctl data is loosely typed:
//! - Field access on nil or on a missing map/JSON key yields nil (printed `<no value>`)
//!   instead of a nil-pointer error; `len` of nil is 0 and `index` into nil gives `""`.
//! - `index` on a map whose values are all strings gives `""` for a missing key (Go's zero
//!   value for `map[string]string`, e.g. annotations and labels); other maps give nil.
//! - `eq`/`lt`/... compare ints with floats numerically; `eq` with nil on one side is false.
//! - Undefined variables are reported when the template runs, not when it is parsed.
//! - `call` is unsupported (there are no function values); `time.Now` is in UTC and prints
//!   without Go's monotonic-clock suffix.
//! - Limits: 100 nested blocks/`template` calls, `range` over at most 1,000,000 integers,
//!   10,000,000 executed nodes per render, 256 MiB of output, `printf` widths capped at
//!   65,536.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::Result;

mod exec;
mod funcs;
mod parse;
mod time;
mod value;

#[cfg(test)]
mod tests;

pub use time::Time;

/// A value templates operate on.
#[derive(Clone)]
pub enum Value {
    /// Go's nil.
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    String(String),
    /// A slice.
    List(Vec<Value>),
    /// A map with string keys (Go `map[string]T`).
    Map(BTreeMap<String, Value>),
    /// JSON data: objects answer `.Field` by exact key first, then by a loose match that
    /// ignores case and `_`, `.`, `-` (so `.RootFS.DiffIDs` finds `rootfs.diff_ids`).
    Json(serde_json::Value),
    /// A Go-like struct with fields and methods.
    Object(Arc<dyn Object>),
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Nil => f.write_str("Nil"),
            Value::Bool(b) => write!(f, "Bool({b})"),
            Value::Int(i) => write!(f, "Int({i})"),
            Value::Float(x) => write!(f, "Float({x})"),
            Value::String(s) => write!(f, "String({s:?})"),
            Value::List(l) => f.debug_tuple("List").field(l).finish(),
            Value::Map(m) => f.debug_tuple("Map").field(m).finish(),
            Value::Json(j) => write!(f, "Json({j})"),
            Value::Object(o) => write!(f, "Object({})", o.display()),
        }
    }
}

/// A Go-like struct value.
pub trait Object: Send + Sync {
    /// A field or zero-argument method by Go name; `None` when there is none.
    fn field(&self, name: &str) -> Option<Value>;
    /// The JSON form (Go's `json.Marshal` of the struct).
    fn to_json(&self) -> serde_json::Value;
    /// A human layout for `printPretty`, if this type has one (else indented JSON is used).
    fn pretty(&self) -> Option<String> {
        None
    }
    /// How `{{.}}` prints the value (Go's `%v`); defaults to compact JSON.
    fn display(&self) -> String {
        self.to_json().to_string()
    }
    /// A method taking arguments (`{{.Format "2006-01-02"}}`); `None` when there is no such
    /// method.
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value>> {
        let _ = (name, args);
        None
    }
    /// The Go type name used in error messages.
    fn type_name(&self) -> String {
        "struct".to_string()
    }
}

/// A compiled template. Parsing happens once; rendering may run many times and from several
/// threads.
pub struct Template {
    src: String,
    tree: parse::Tree,
}

impl Template {
    /// Compiles `src`; errors name the line, column and problem
    /// (`template: :1:5: unexpected "}" in operand`).
    pub fn parse(src: &str) -> Result<Template> {
        let tree = parse::parse(src)?;
        Ok(Template {
            src: src.to_string(),
            tree,
        })
    }

    /// Executes the template over `data`.
    pub fn render(&self, data: &Value) -> Result<String> {
        exec::render(&self.src, &self.tree, data)
    }
}
