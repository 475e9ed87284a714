//! A Go `text/template` engine, so `--format` strings written for regctl keep working.
//!
//! API contract (the implementation lands in its own change):
//! - [`Template::parse`] compiles a template; [`Template::render`] executes it over a [`Value`].
//! - Data is a [`Value`]; Go structs are [`Object`]s, which answer field and zero-argument
//!   method lookups by Go name (`.GetDescriptor`, `.Config`), serialise to JSON for
//!   `json`/`jsonPretty`, and may offer a human layout for `printPretty`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};

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
}

/// A compiled template.
pub struct Template {
    _src: String,
}

impl Template {
    /// Compiles `src`.
    pub fn parse(src: &str) -> Result<Template> {
        Ok(Template {
            _src: src.to_string(),
        })
    }

    /// Executes the template over `data`.
    pub fn render(&self, _data: &Value) -> Result<String> {
        Err(Error::new(
            ErrorKind::Unsupported,
            "templates not implemented yet",
        ))
    }
}
