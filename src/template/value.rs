//! Value helpers: Go truthiness, `%v` printing, JSON conversion, field and index lookup.

use std::collections::BTreeMap;

use super::Value;

/// Converts JSON to a value: scalars become native values so they print and compare like Go's
/// decoded `interface{}`; arrays and objects stay JSON to keep the loose field matching.
pub(crate) fn from_json(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        other => Value::Json(other.clone()),
    }
}

/// Go's truth: false, zero, nil, and empty strings, slices and maps are false.
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Nil => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::Float(f) => *f != 0.0,
        Value::String(s) => !s.is_empty(),
        Value::List(l) => !l.is_empty(),
        Value::Map(m) => !m.is_empty(),
        Value::Json(j) => match j {
            serde_json::Value::Array(a) => !a.is_empty(),
            serde_json::Value::Object(o) => !o.is_empty(),
            other => truthy(&from_json(other)),
        },
        Value::Object(_) => true,
    }
}

/// The Go type name, for error messages and `%T`-like output.
pub(crate) fn type_name(v: &Value) -> String {
    match v {
        Value::Nil => "<nil>".into(),
        Value::Bool(_) => "bool".into(),
        Value::Int(_) => "int".into(),
        Value::Float(_) => "float64".into(),
        Value::String(_) => "string".into(),
        Value::List(_) => "[]interface {}".into(),
        Value::Map(_) => "map[string]interface {}".into(),
        Value::Json(j) => match j {
            serde_json::Value::Array(_) => "[]interface {}".into(),
            serde_json::Value::Object(_) => "map[string]interface {}".into(),
            other => type_name(&from_json(other)),
        },
        Value::Object(o) => o.type_name(),
    }
}

/// Go's `%v` of a float: shortest digits, exponent form below 1e-4 or from 1e6 up (strconv's
/// shortest `'g'` decides with precision 6, so `1000000.0` prints `1e+06`).
pub(crate) fn fmt_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-tripping digits: "1.2345e5".
    let sci = format!("{:e}", f);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if neg { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    let n = digits.len() as i32;
    if exp < 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
    } else if exp + 1 >= n {
        format!("{sign}{digits}{}", "0".repeat((exp + 1 - n) as usize))
    } else {
        let (a, b) = digits.split_at((exp + 1) as usize);
        format!("{sign}{a}.{b}")
    }
}

/// Go's `%v`. Nil prints `<nil>`; the action printer turns a top-level nil into `<no value>`.
pub(crate) fn fmt_v(v: &Value) -> String {
    match v {
        Value::Nil => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => fmt_float(*f),
        Value::String(s) => s.clone(),
        Value::List(l) => {
            let parts: Vec<String> = l.iter().map(fmt_v).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Map(m) => {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{}", fmt_v(v))).collect();
            format!("map[{}]", parts.join(" "))
        }
        Value::Json(j) => match j {
            serde_json::Value::Array(a) => {
                let parts: Vec<String> = a.iter().map(|e| fmt_v(&from_json(e))).collect();
                format!("[{}]", parts.join(" "))
            }
            serde_json::Value::Object(o) => {
                // Go prints maps with sorted keys.
                let sorted: BTreeMap<&String, &serde_json::Value> = o.iter().collect();
                let parts: Vec<String> = sorted
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", fmt_v(&from_json(v))))
                    .collect();
                format!("map[{}]", parts.join(" "))
            }
            other => fmt_v(&from_json(other)),
        },
        Value::Object(o) => o.display(),
    }
}

/// The JSON form of a value (Go's `json.Marshal`).
pub(crate) fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => {
            // Go writes integral floats without ".0".
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                serde_json::Value::from(*f as i64)
            } else {
                serde_json::Number::from_f64(*f)
                    .map(serde_json::Value::Number)
                    .unwrap_or(serde_json::Value::Null)
            }
        }
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::List(l) => serde_json::Value::Array(l.iter().map(to_json).collect()),
        Value::Map(m) => {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
        Value::Json(j) => j.clone(),
        Value::Object(o) => o.to_json(),
    }
}

fn loose(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '_' | '.' | '-'))
        .flat_map(|c| c.to_lowercase())
        .collect()
}

/// Looks up `.name` on `v`; the error text follows Go's.
pub(crate) fn field(v: &Value, name: &str) -> Result<Value, String> {
    match v {
        Value::Nil => Ok(Value::Nil),
        Value::Object(o) => o
            .field(name)
            .ok_or_else(|| format!("can't evaluate field {name} in type {}", o.type_name())),
        Value::Map(m) => Ok(m.get(name).cloned().unwrap_or(Value::Nil)),
        Value::Json(serde_json::Value::Object(o)) => {
            if let Some(x) = o.get(name) {
                return Ok(from_json(x));
            }
            let want = loose(name);
            Ok(o.iter()
                .find(|(k, _)| loose(k) == want)
                .map(|(_, x)| from_json(x))
                .unwrap_or(Value::Nil))
        }
        Value::Json(serde_json::Value::Null) => Ok(Value::Nil),
        other => Err(format!(
            "can't evaluate field {name} in type {}",
            type_name(other)
        )),
    }
}

/// Go's `len`.
pub(crate) fn len(v: &Value) -> Result<usize, String> {
    match v {
        Value::String(s) => Ok(s.len()),
        Value::List(l) => Ok(l.len()),
        Value::Map(m) => Ok(m.len()),
        Value::Json(serde_json::Value::Array(a)) => Ok(a.len()),
        Value::Json(serde_json::Value::Object(o)) => Ok(o.len()),
        Value::Json(serde_json::Value::String(s)) => Ok(s.len()),
        Value::Object(o) => match o.to_json() {
            serde_json::Value::Array(a) => Ok(a.len()),
            _ => Err(format!("len of type {}", o.type_name())),
        },
        // Usually a nil slice or map in the Go original, whose length is 0.
        Value::Nil => Ok(0),
        other => Err(format!("len of type {}", type_name(other))),
    }
}

fn as_index(i: &Value) -> Result<i64, String> {
    match i {
        Value::Int(n) => Ok(*n),
        Value::Float(f) if f.fract() == 0.0 => Ok(*f as i64),
        other => Err(format!(
            "cannot index slice/array with type {}",
            type_name(other)
        )),
    }
}

fn key_string(k: &Value) -> Result<String, String> {
    match k {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!(
            "value has type {}; should be string",
            type_name(other)
        )),
    }
}

/// One step of Go's `index`: list by position, map by key (missing key gives nil).
pub(crate) fn index(v: &Value, i: &Value) -> Result<Value, String> {
    let in_range = |n: i64, len: usize| -> Result<usize, String> {
        if n < 0 || n as u64 >= len as u64 {
            Err(format!("index out of range: {n}"))
        } else {
            Ok(n as usize)
        }
    };
    match v {
        Value::List(l) => Ok(l[in_range(as_index(i)?, l.len())?].clone()),
        Value::String(s) => Ok(Value::Int(
            s.as_bytes()[in_range(as_index(i)?, s.len())?] as i64,
        )),
        Value::Json(serde_json::Value::Array(a)) => {
            Ok(from_json(&a[in_range(as_index(i)?, a.len())?]))
        }
        // A missing key gives Go's zero value: "" for string maps (annotations, labels),
        // nil otherwise.
        Value::Map(m) => Ok(m.get(&key_string(i)?).cloned().unwrap_or_else(|| {
            if m.values().all(|v| matches!(v, Value::String(_))) {
                Value::String(String::new())
            } else {
                Value::Nil
            }
        })),
        Value::Json(serde_json::Value::Object(o)) => {
            Ok(o.get(&key_string(i)?).map(from_json).unwrap_or_else(|| {
                if o.values().all(|v| v.is_string()) {
                    Value::String(String::new())
                } else {
                    Value::Nil
                }
            }))
        }
        // Typically a nil map in the Go original, where a lookup gives the zero value.
        Value::Nil => {
            key_string(i)?;
            Ok(Value::String(String::new()))
        }
        Value::Object(o) => {
            // Objects wrapping a slice or map (e.g. a descriptor list) index through JSON.
            let j = o.to_json();
            if matches!(
                j,
                serde_json::Value::Array(_) | serde_json::Value::Object(_)
            ) {
                index(&Value::Json(j), i)
            } else {
                Err(format!("can't index item of type {}", o.type_name()))
            }
        }
        other => Err(format!("can't index item of type {}", type_name(other))),
    }
}
