//! JSON <-> Lua tables, with upstream's two spellings of every field.
//!
//! Scripts written for regbot read Go field names (`m.Layers`, `d.MediaType`) as often as JSON
//! names (`m.layers`, `d.mediaType`). Tables keep one copy of each field, under its JSON name;
//! a shared metatable maps the other spelling on read (`__index`) and on write
//! (`__newindex`), so an edit made through either name lands in the same place and
//! [`to_json`] sees it. Maps with free-form keys (annotations, labels, ports, volumes) get no
//! metatable: an annotation named `Digest` must not alias `digest`.

use std::collections::HashMap;

use mlua::{Lua, Table, Value};
use serde_json::{Map, Number};

/// Registry key of the shared alias metatable.
const ALIAS_MT: &str = "regbot.alias_mt";

/// Deepest nesting converted either way; deeper (or cyclic) tables are refused.
const MAX_DEPTH: usize = 64;

/// Most JSON (in approximate bytes) one conversion back from Lua may produce: twice the
/// largest manifest or config read. The conversion runs in Rust, out of reach of the script's
/// deadline hook and memory limit, and shared subtables or one string stored many times are
/// small in Lua but not once copied out.
const MAX_JSON: usize = 16 << 20;

/// What each value costs against [`MAX_JSON`] besides its text, so that a table of many
/// small values is bounded too.
const VALUE_COST: usize = 16;

/// Alternative spelling -> the JSON name stored in the table. No JSON name of a manifest,
/// descriptor, platform or image config appears on the left, so the map is unambiguous.
const ALIASES: &[(&str, &str)] = &[
    // Manifests and descriptors.
    ("SchemaVersion", "schemaVersion"),
    ("MediaType", "mediaType"),
    ("ArtifactType", "artifactType"),
    ("Config", "config"),
    ("Layers", "layers"),
    ("Blobs", "blobs"),
    ("Manifests", "manifests"),
    ("Subject", "subject"),
    ("Annotations", "annotations"),
    ("Digest", "digest"),
    ("Size", "size"),
    ("URLs", "urls"),
    ("Data", "data"),
    ("Platform", "platform"),
    // Platforms (also top-level fields of an image config).
    ("Architecture", "architecture"),
    ("OS", "os"),
    ("OSVersion", "os.version"),
    ("OSFeatures", "os.features"),
    ("Variant", "variant"),
    ("Features", "features"),
    // Image config.
    ("Created", "created"),
    ("Author", "author"),
    ("RootFS", "rootfs"),
    ("Type", "type"),
    ("DiffIDs", "diff_ids"),
    ("History", "history"),
    ("CreatedBy", "created_by"),
    ("Comment", "comment"),
    ("EmptyLayer", "empty_layer"),
    // The runtime config section uses Go names in JSON; accept the lower-case forms too.
    ("user", "User"),
    ("exposedPorts", "ExposedPorts"),
    ("env", "Env"),
    ("entrypoint", "Entrypoint"),
    ("cmd", "Cmd"),
    ("volumes", "Volumes"),
    ("workingDir", "WorkingDir"),
    ("labels", "Labels"),
    ("stopSignal", "StopSignal"),
];

/// Fields holding maps with arbitrary keys: converted without the alias metatable.
const FREE_MAPS: &[&str] = &["annotations", "Labels", "ExposedPorts", "Volumes"];

/// Fields that are JSON arrays, to tell what an empty Lua table stands for when the original
/// document does not say.
const ARRAYS: &[&str] = &[
    "layers",
    "blobs",
    "manifests",
    "urls",
    "os.features",
    "features",
    "Env",
    "Cmd",
    "Entrypoint",
    "diff_ids",
    "history",
];

/// The JSON name a field is stored under.
pub fn canonical(key: &str) -> &str {
    ALIASES
        .iter()
        .find(|(alt, _)| *alt == key)
        .map(|(_, json)| *json)
        .unwrap_or(key)
}

/// The shared metatable of struct-like tables (created once per Lua state).
pub fn alias_metatable(lua: &Lua) -> mlua::Result<Table> {
    if let Ok(t) = lua.named_registry_value::<Table>(ALIAS_MT) {
        return Ok(t);
    }
    let mt = lua.create_table()?;
    mt.set(
        "__index",
        lua.create_function(|_, (t, k): (Table, Value)| match &k {
            Value::String(s) => {
                let s = s.to_str()?;
                let c = canonical(&s);
                if c == &*s {
                    Ok(Value::Nil)
                } else {
                    t.raw_get::<Value>(c)
                }
            }
            _ => Ok(Value::Nil),
        })?,
    )?;
    mt.set(
        "__newindex",
        lua.create_function(|_, (t, k, v): (Table, Value, Value)| match &k {
            Value::String(s) => {
                let s = s.to_str()?.to_string();
                t.raw_set(canonical(&s), v)
            }
            _ => t.raw_set(k, v),
        })?,
    )?;
    lua.set_named_registry_value(ALIAS_MT, &mt)?;
    Ok(mt)
}

/// Converts a JSON value to Lua. Objects become alias tables unless `key` (the field holding
/// them) is a free-form map. A `null` field is left out, so it reads as `nil` (Docker writes
/// `"Labels": null`, and scripts test such fields with `if` or `or {}`); a `null` array item
/// becomes `mlua::Value::NULL` so the array keeps its length.
pub fn to_lua(lua: &Lua, v: &serde_json::Value) -> mlua::Result<Value> {
    to_lua_at(lua, v, None, 0)
}

fn to_lua_at(
    lua: &Lua,
    v: &serde_json::Value,
    key: Option<&str>,
    depth: usize,
) -> mlua::Result<Value> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::runtime("JSON nested too deeply"));
    }
    Ok(match v {
        serde_json::Value::Null => Value::NULL,
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::String(lua.create_string(s)?),
        serde_json::Value::Array(a) => {
            let t = lua.create_table_with_capacity(a.len(), 0)?;
            for (i, item) in a.iter().enumerate() {
                t.raw_set(i + 1, to_lua_at(lua, item, key, depth + 1)?)?;
            }
            Value::Table(t)
        }
        serde_json::Value::Object(o) => {
            let t = lua.create_table_with_capacity(0, o.len())?;
            for (k, item) in o {
                if !item.is_null() {
                    t.raw_set(k.as_str(), to_lua_at(lua, item, Some(k), depth + 1)?)?;
                }
            }
            if !key.is_some_and(|k| FREE_MAPS.contains(&k)) {
                t.set_metatable(Some(alias_metatable(lua)?))?;
            }
            Value::Table(t)
        }
    })
}

/// Converts a Lua value back to JSON. `template` is the document the value was made from:
/// it decides whether an empty table is `[]` or `{}` and keeps the original key order (new
/// keys follow, sorted).
pub fn to_json(v: &Value, template: Option<&serde_json::Value>) -> mlua::Result<serde_json::Value> {
    let mut budget = MAX_JSON;
    to_json_at(v, template, None, 0, &mut budget)
}

/// Takes `n` bytes from the conversion budget, failing once it is spent.
fn charge(budget: &mut usize, n: usize) -> mlua::Result<()> {
    match budget.checked_sub(n) {
        Some(left) => {
            *budget = left;
            Ok(())
        }
        None => Err(mlua::Error::runtime(format!(
            "table too large to write as JSON (more than {} MiB)",
            MAX_JSON >> 20
        ))),
    }
}

fn to_json_at(
    v: &Value,
    template: Option<&serde_json::Value>,
    key: Option<&str>,
    depth: usize,
    budget: &mut usize,
) -> mlua::Result<serde_json::Value> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::runtime(
            "table nested too deeply (or refers to itself)",
        ));
    }
    let text = match v {
        Value::String(s) => s.as_bytes().len(),
        _ => 0,
    };
    charge(budget, text.saturating_add(VALUE_COST))?;
    Ok(match v {
        Value::Nil => serde_json::Value::Null,
        v if v.is_null() => serde_json::Value::Null,
        Value::Boolean(b) => serde_json::Value::Bool(*b),
        Value::Integer(i) => serde_json::Value::from(*i),
        // Sizes and counts edited in Lua may arrive as floats (`2^10`); keep them integers.
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
            serde_json::Value::from(*n as i64)
        }
        Value::Number(n) => Number::from_f64(*n)
            .map(serde_json::Value::Number)
            .ok_or_else(|| mlua::Error::runtime(format!("{n} cannot be written as JSON")))?,
        Value::String(s) => serde_json::Value::String(s.to_str()?.to_string()),
        Value::Table(t) => table_to_json(t, template, key, depth, budget)?,
        other => {
            return Err(mlua::Error::runtime(format!(
                "a {} cannot be written as JSON{}",
                other.type_name(),
                key.map(|k| format!(" (field {k:?})")).unwrap_or_default()
            )))
        }
    })
}

fn table_to_json(
    t: &Table,
    template: Option<&serde_json::Value>,
    key: Option<&str>,
    depth: usize,
    budget: &mut usize,
) -> mlua::Result<serde_json::Value> {
    let mut entries: Vec<(Value, Value)> = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        // Charged per entry while collecting: the entries themselves are Rust memory.
        let pair = pair?;
        let key_len = match &pair.0 {
            Value::String(s) => s.as_bytes().len(),
            _ => 0,
        };
        // Quotes and a colon; the value is charged when converted.
        charge(budget, key_len.saturating_add(3))?;
        entries.push(pair);
    }
    let len = t.raw_len();
    let is_seq = len == entries.len()
        && entries
            .iter()
            .all(|(k, _)| matches!(k, Value::Integer(i) if *i >= 1 && (*i as usize) <= len));
    let want_array = match template {
        Some(serde_json::Value::Array(_)) => true,
        Some(serde_json::Value::Object(_)) => false,
        _ => key.is_some_and(|k| ARRAYS.contains(&k)),
    };
    // Fields that were null in the document read as nil; put them back so that an unedited
    // table converts to the same JSON (and an export keeps the digest).
    let mut nulls = Vec::new();
    if let Some(serde_json::Value::Object(o)) = template {
        for (k, v) in o {
            if v.is_null() && t.raw_get::<Value>(k.as_str())?.is_nil() {
                nulls.push(k.clone());
            }
        }
    }
    if entries.is_empty() && nulls.is_empty() {
        return Ok(if want_array {
            serde_json::Value::Array(Vec::new())
        } else {
            serde_json::Value::Object(Map::new())
        });
    }
    if is_seq && nulls.is_empty() {
        let tmpl = template.and_then(|t| t.as_array());
        let mut out = Vec::with_capacity(len);
        for i in 1..=len {
            let item: Value = t.raw_get(i)?;
            out.push(to_json_at(
                &item,
                tmpl.and_then(|a| a.get(i - 1)),
                key,
                depth + 1,
                budget,
            )?);
        }
        return Ok(serde_json::Value::Array(out));
    }
    let tmpl = template.and_then(|t| t.as_object());
    let mut fields: Vec<(String, Value)> = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        let name = match &k {
            Value::String(s) => s.to_str()?.to_string(),
            Value::Integer(i) => i.to_string(),
            other => {
                return Err(mlua::Error::runtime(format!(
                    "a {} key cannot be written as JSON",
                    other.type_name()
                )))
            }
        };
        fields.push((name, v));
    }
    fields.extend(nulls.into_iter().map(|k| (k, Value::Nil)));
    // Original keys first, in their order; new keys after, sorted, so output is stable. The
    // positions are looked up once: objects read from a registry can have many keys.
    let order: HashMap<&str, usize> = tmpl
        .map(|o| o.keys().enumerate().map(|(i, k)| (k.as_str(), i)).collect())
        .unwrap_or_default();
    let pos = |name: &str| order.get(name).copied();
    fields.sort_by(|(a, _), (b, _)| match (pos(a), pos(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    });
    let mut out = Map::new();
    for (name, v) in fields {
        let sub = tmpl.and_then(|o| o.get(&name));
        let j = to_json_at(&v, sub, Some(&name), depth + 1, budget)?;
        out.insert(name, j);
    }
    Ok(serde_json::Value::Object(out))
}

/// A `pairs` iterator over a snapshot of `t`, for objects whose fields live in a hidden
/// table. Built in Rust so it works even when a sandbox removed the global `next`.
pub fn pairs_iter(lua: &Lua, t: &Table) -> mlua::Result<mlua::Function> {
    let mut items: Vec<(Value, Value)> = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        items.push(pair?);
    }
    let mut items = items.into_iter();
    lua.create_function_mut(move |_, _: mlua::MultiValue| {
        Ok(match items.next() {
            Some((k, v)) => (k, v),
            None => (Value::Nil, Value::Nil),
        })
    })
}
