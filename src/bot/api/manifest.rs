//! Manifest objects and the `manifest` table.
//!
//! A manifest object is userdata holding the manifest as read plus a Lua table of its JSON
//! fields (the userdata's user value). Fields read and write that table in either spelling;
//! `m:export()` turns the (possibly edited) table back into a new manifest, while `tostring`,
//! `manifest.put` and `m:descriptor()` keep using the manifest as read.
//!
//! `m:config()` shares its name with the `config` field. The field is a descriptor table
//! whose metatable makes it callable, so `m.config.digest` and `m:config()` both work; on an
//! index (no config field) the lookup yields a function instead.

use mlua::{AnyUserData, Function, Lua, MetaMethod, Table, UserData, UserDataMethods, Value};

use super::reference::ref_arg;
use super::{arg_error, convert, enter, fail, string_arg, Api};
use crate::descriptor::Descriptor;
use crate::manifest::{Manifest, Source};
use crate::platform::Platform;
use crate::ratelimit::RateLimit;
use crate::reference::Reference;
use crate::scheme::DeleteOpts;

/// Registry key of the metatable that makes a config descriptor callable.
const CONFIG_DESC_MT: &str = "regbot.config_desc_mt";

/// Deepest index nesting followed when resolving a platform.
const MAX_NESTING: usize = 8;

/// What a manifest object holds.
#[derive(Debug, Clone)]
pub(super) enum Content {
    /// A manifest read in full.
    Full(Box<Manifest>),
    /// Only what a HEAD learned (`manifest.head`).
    Head(Box<Descriptor>),
}

/// A manifest object.
#[derive(Debug, Clone)]
pub struct ManifestObj {
    /// The reference it was read from (with the digest added when a platform was resolved).
    pub(super) r: Reference,
    pub(super) content: Content,
    /// Response headers (rate limits).
    headers: Vec<(String, String)>,
    /// Platform of the index entry it was resolved through.
    platform: Option<crate::platform::Platform>,
}

impl ManifestObj {
    fn descriptor(&self) -> Descriptor {
        let mut d = match &self.content {
            Content::Full(m) => m.descriptor(),
            Content::Head(d) => (**d).clone(),
        };
        if d.platform.is_none() {
            d.platform = self.platform.clone();
        }
        d
    }

    /// The manifest, or an error telling the script how to get it.
    pub(super) fn full(&self, func: &str) -> mlua::Result<&Manifest> {
        match &self.content {
            Content::Full(m) => Ok(m),
            Content::Head(_) => Err(mlua::Error::runtime(format!(
                "{func}: the manifest of {} was only HEAD-requested; use m:get() first",
                self.r.common_name()
            ))),
        }
    }
}

/// Wraps a manifest into an object with its field table.
pub(super) fn new_object(lua: &Lua, obj: ManifestObj) -> mlua::Result<AnyUserData> {
    let data = match &obj.content {
        Content::Full(m) => {
            let t = match convert::to_lua(lua, &m.json())? {
                Value::Table(t) => t,
                _ => lua.create_table()?,
            };
            // Scripts add annotations without checking the field exists first.
            if t.raw_get::<Value>("annotations")?.is_nil() {
                t.raw_set("annotations", lua.create_table()?)?;
            }
            if let Value::Table(c) = t.raw_get::<Value>("config")? {
                c.set_metatable(Some(config_desc_metatable(lua)?))?;
            }
            t
        }
        Content::Head(d) => {
            let t = lua.create_table()?;
            t.set_metatable(Some(convert::alias_metatable(lua)?))?;
            t.raw_set("mediaType", d.media_type.as_str())?;
            t
        }
    };
    let ud = lua.create_userdata(obj)?;
    ud.set_user_value(data)?;
    Ok(ud)
}

/// Alias lookups plus `__call(desc, m)` = `image.config(m)`.
fn config_desc_metatable(lua: &Lua) -> mlua::Result<Table> {
    if let Ok(t) = lua.named_registry_value::<Table>(CONFIG_DESC_MT) {
        return Ok(t);
    }
    let alias = convert::alias_metatable(lua)?;
    let mt = lua.create_table()?;
    mt.set("__index", alias.get::<Value>("__index")?)?;
    mt.set("__newindex", alias.get::<Value>("__newindex")?)?;
    mt.set(
        "__call",
        lua.create_function(|lua, (_desc, m): (Value, Value)| {
            super::image::config(lua, "m:config", &m)
        })?,
    )?;
    lua.set_named_registry_value(CONFIG_DESC_MT, &mt)?;
    Ok(mt)
}

fn data_table(ud: &AnyUserData) -> mlua::Result<Table> {
    ud.user_value::<Table>()
}

fn self_arg(func: &str, ud: &AnyUserData) -> mlua::Result<mlua::UserDataRef<ManifestObj>> {
    ud.borrow::<ManifestObj>()
        .map_err(|_| mlua::Error::runtime(format!("{func}: expected a manifest object")))
}

impl UserData for ManifestObj {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            let v = match &this.content {
                Content::Full(m) => m.json(),
                Content::Head(d) => serde_json::to_value(d).unwrap_or_default(),
            };
            serde_json::to_string_pretty(&v).map_err(mlua::Error::external)
        });
        m.add_meta_function(MetaMethod::Index, |lua, (ud, k): (AnyUserData, Value)| {
            let data = data_table(&ud)?;
            let Value::String(s) = &k else {
                return data.raw_get::<Value>(k);
            };
            let key = s.to_str()?.to_string();
            let v = data.raw_get::<Value>(convert::canonical(&key))?;
            if v.is_nil() && (key == "config" || key == "Config") {
                // No config field (an index, a HEAD result): still offer m:config().
                return Ok(Value::Function(lua.create_function(|lua, m: Value| {
                    super::image::config(lua, "m:config", &m)
                })?));
            }
            Ok(v)
        });
        m.add_meta_function(
            MetaMethod::NewIndex,
            |lua, (ud, k, v): (AnyUserData, Value, Value)| {
                let data = data_table(&ud)?;
                let key = match &k {
                    Value::String(s) => {
                        let s = s.to_str()?.to_string();
                        Value::String(lua.create_string(convert::canonical(&s))?)
                    }
                    _ => k,
                };
                if let (Value::String(s), Value::Table(t)) = (&key, &v) {
                    if s.to_str()? == "config" && t.metatable().is_none() {
                        t.set_metatable(Some(config_desc_metatable(lua)?))?;
                    }
                }
                data.raw_set(key, v)
            },
        );
        m.add_meta_function(MetaMethod::Pairs, |lua, ud: AnyUserData| {
            let next: Function = lua.globals().get("next")?;
            Ok((next, data_table(&ud)?, Value::Nil))
        });
        m.add_method("descriptor", |lua, this, ()| {
            descriptor_table(lua, &this.descriptor())
        });
        m.add_function("export", |lua, ud: AnyUserData| {
            const F: &str = "m:export";
            let this = self_arg(F, &ud)?;
            let exported = export(lua, &this, &data_table(&ud)?)?;
            new_object(lua, exported)
        });
        m.add_method("get", |lua, this, ()| {
            let api = enter(lua)?;
            get(lua, &api, "m:get", &this.r, None)
        });
        m.add_method("head", |lua, this, ()| {
            let api = enter(lua)?;
            head_object(lua, &api, "m:head", &this.r)
        });
        m.add_function("put", |lua, (ud, r): (AnyUserData, Value)| {
            let this = self_arg("m:put", &ud)?.clone();
            put(lua, "m:put", &this, &r, 1)
        });
        m.add_method("delete", |lua, this, ()| delete(lua, this));
        m.add_method("ratelimit", |lua, this, ()| {
            ratelimit_table(lua, &ratelimit_of(&this.headers))
        });
        m.add_method(
            "ratelimitWait",
            |lua, this, (limit, poll, timeout): (Value, Value, Value)| {
                super::image::ratelimit_wait(
                    lua,
                    "m:ratelimitWait",
                    &this.r,
                    (&limit, 1),
                    &poll,
                    &timeout,
                )
            },
        );
    }
}

/// Rate limits from response headers.
pub(super) fn ratelimit_of(headers: &[(String, String)]) -> RateLimit {
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    RateLimit::from_headers(&pairs)
}

fn ratelimit_table(lua: &Lua, rl: &RateLimit) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("Remain", rl.remain)?;
    t.set("Limit", rl.limit)?;
    t.set("Reset", rl.reset)?;
    t.set("Set", rl.set)?;
    t.set("Policies", super::string_list(lua, &rl.policies)?)?;
    Ok(t)
}

/// A descriptor as a table with both spellings.
pub(super) fn descriptor_table(lua: &Lua, d: &Descriptor) -> mlua::Result<Value> {
    let v = serde_json::to_value(d).map_err(mlua::Error::external)?;
    convert::to_lua(lua, &v)
}

/// Reads a manifest; an index is resolved to `platform` or, when none, the local platform.
pub(super) fn get(
    lua: &Lua,
    api: &Api,
    func: &str,
    r: &Reference,
    platform: Option<Platform>,
) -> mlua::Result<AnyUserData> {
    let client = &api.env.client;
    let mut m = client.manifest_get(r).map_err(fail(func))?;
    let mut r = r.clone();
    let mut via = None;
    let want = platform.unwrap_or_else(Platform::host);
    for _ in 0..MAX_NESTING {
        if !m.is_index() {
            break;
        }
        super::super::check_deadline(lua)?;
        let d = m
            .select_platform(&want)
            .map_err(|e| fail(func)(e.context(r.common_name())))?;
        r = r.add_digest(&d.digest.to_string());
        m = client.manifest_get(&r).map_err(fail(func))?;
        via = d.platform;
    }
    if m.is_index() {
        return Err(mlua::Error::runtime(format!(
            "{func}: index nesting deeper than {MAX_NESTING} levels"
        )));
    }
    let headers = m.headers().to_vec();
    new_object(
        lua,
        ManifestObj {
            r,
            content: Content::Full(Box::new(m)),
            headers,
            platform: via,
        },
    )
}

/// Reads a manifest as it is (no platform resolution).
fn get_list(lua: &Lua, api: &Api, func: &str, r: &Reference) -> mlua::Result<AnyUserData> {
    let m = api.env.client.manifest_get(r).map_err(fail(func))?;
    let headers = m.headers().to_vec();
    new_object(
        lua,
        ManifestObj {
            r: r.clone(),
            content: Content::Full(Box::new(m)),
            headers,
            platform: None,
        },
    )
}

/// HEAD, with a GET when the server did not give the digest.
pub(super) fn head(
    api: &Api,
    func: &str,
    r: &Reference,
) -> mlua::Result<(Descriptor, Vec<(String, String)>)> {
    let h = api.scheme(func, r)?.manifest_head(r).map_err(fail(func))?;
    if let Some(d) = h.descriptor() {
        return Ok((d, h.headers));
    }
    let m = api.env.client.manifest_get(r).map_err(fail(func))?;
    let mut headers = h.headers;
    headers.extend(m.headers().iter().cloned());
    Ok((m.descriptor(), headers))
}

fn head_object(lua: &Lua, api: &Api, func: &str, r: &Reference) -> mlua::Result<AnyUserData> {
    let (d, headers) = head(api, func, r)?;
    new_object(
        lua,
        ManifestObj {
            r: r.clone(),
            content: Content::Head(Box::new(d)),
            headers,
            platform: None,
        },
    )
}

/// Builds a new manifest from the edited field table.
fn export(_lua: &Lua, this: &ManifestObj, data: &Table) -> mlua::Result<ManifestObj> {
    const F: &str = "m:export";
    let m = this.full(F)?;
    let orig = m.json();
    let mut json = convert::to_json(&Value::Table(data.clone()), Some(&orig))
        .map_err(|e| mlua::Error::runtime(format!("{F}: {e}")))?;
    // The empty annotations table we add for convenience is not an edit.
    if orig.get("annotations").is_none() {
        if let Some(o) = json.as_object_mut() {
            if o.get("annotations")
                .and_then(|a| a.as_object())
                .is_some_and(|a| a.is_empty())
            {
                o.remove("annotations");
            }
        }
    }
    if json == orig {
        // Unchanged: keep the exact bytes (and so the digest).
        return Ok(this.clone());
    }
    let raw = serde_json::to_vec_pretty(&json).map_err(mlua::Error::external)?;
    let has_type = json.get("mediaType").is_some();
    let new = Manifest::from_bytes(
        raw,
        Source {
            descriptor_type: (!has_type).then_some(m.media_type()),
            ..Default::default()
        },
    )
    .map_err(fail(F))?;
    // The old digest no longer names this content.
    let r = if this.r.tag.is_empty() {
        this.r.set_digest(&new.digest().to_string())
    } else {
        this.r.set_tag(&this.r.tag)
    };
    Ok(ManifestObj {
        r,
        content: Content::Full(Box::new(new)),
        headers: Vec::new(),
        platform: this.platform.clone(),
    })
}

/// Pushes the manifest of `this` to `r` (default: where it came from), then closes `r`.
fn put(lua: &Lua, func: &str, this: &ManifestObj, r: &Value, n: usize) -> mlua::Result<()> {
    let api = enter(lua)?;
    let m = this.full(func)?;
    let r = match r {
        Value::Nil => this.r.clone(),
        v => ref_arg(func, n, v)?,
    };
    // A tag wins over a digest left from where the manifest was read.
    let r = if r.tag.is_empty() {
        if r.digest.is_empty() {
            r.set_digest(&m.digest().to_string())
        } else {
            r
        }
    } else {
        r.set_tag(&r.tag)
    };
    if api.env.dry_run {
        api.dry_run(
            "manifest put",
            &[
                ("ref", &r.common_name()),
                ("digest", &m.digest().to_string()),
            ],
        );
        return Ok(());
    }
    api.scheme(func, &r)?
        .manifest_put(&r, m, Default::default())
        .map_err(fail(func))?;
    api.close(&r);
    Ok(())
}

/// Deletes the manifest by digest, then closes the reference.
fn delete(lua: &Lua, this: &ManifestObj) -> mlua::Result<()> {
    const F: &str = "m:delete";
    let api = enter(lua)?;
    let d = this.descriptor().digest;
    let r = this.r.set_digest(&d.to_string());
    if api.env.dry_run {
        api.dry_run(
            "manifest delete",
            &[("ref", &r.common_name()), ("digest", &d.to_string())],
        );
        return Ok(());
    }
    api.scheme(F, &r)?
        .manifest_delete(
            &r,
            DeleteOpts {
                check_referrers: true,
            },
        )
        .map_err(fail(F))?;
    api.close(&r);
    Ok(())
}

/// Reads an optional platform argument.
fn platform_arg(func: &str, n: usize, v: &Value) -> mlua::Result<Option<Platform>> {
    match v {
        Value::Nil => Ok(None),
        v => {
            let s = string_arg(func, n, v, "a platform string like \"linux/amd64\"")?;
            Platform::parse(&s)
                .map(Some)
                .map_err(|e| mlua::Error::runtime(format!("{func}: argument {n}: {e}")))
        }
    }
}

/// `manifest.get`.
pub(super) fn f_get(lua: &Lua, func: &str, r: &Value, p: &Value) -> mlua::Result<AnyUserData> {
    let api = enter(lua)?;
    let r = ref_arg(func, 1, r)?;
    let p = platform_arg(func, 2, p)?;
    get(lua, &api, func, &r, p)
}

/// `manifest.getList`.
pub(super) fn f_get_list(lua: &Lua, func: &str, r: &Value) -> mlua::Result<AnyUserData> {
    let api = enter(lua)?;
    let r = ref_arg(func, 1, r)?;
    get_list(lua, &api, func, &r)
}

/// `manifest.head`.
pub(super) fn f_head(lua: &Lua, func: &str, r: &Value) -> mlua::Result<AnyUserData> {
    let api = enter(lua)?;
    let r = ref_arg(func, 1, r)?;
    head_object(lua, &api, func, &r)
}

/// The `manifest` table.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "get",
        lua.create_function(|lua, (r, p): (Value, Value)| f_get(lua, "manifest.get", &r, &p))?,
    )?;
    t.set(
        "getList",
        lua.create_function(|lua, r: Value| f_get_list(lua, "manifest.getList", &r))?,
    )?;
    t.set(
        "head",
        lua.create_function(|lua, r: Value| f_head(lua, "manifest.head", &r))?,
    )?;
    t.set(
        "descriptor",
        lua.create_function(|lua, v: Value| {
            const F: &str = "manifest.descriptor";
            let api = enter(lua)?;
            if let Value::UserData(ud) = &v {
                if let Ok(m) = ud.borrow::<ManifestObj>() {
                    return descriptor_table(lua, &m.descriptor());
                }
            }
            let r = ref_arg(F, 1, &v)?;
            let (d, _) = head(&api, F, &r)?;
            descriptor_table(lua, &d)
        })?,
    )?;
    t.set(
        "put",
        lua.create_function(|lua, (m, r): (Value, Value)| {
            const F: &str = "manifest.put";
            let obj = match &m {
                Value::UserData(ud) => ud.borrow::<ManifestObj>().ok().map(|m| m.clone()),
                _ => None,
            };
            let Some(obj) = obj else {
                return Err(arg_error(F, 1, "a manifest object", &m));
            };
            put(lua, F, &obj, &r, 2)
        })?,
    )?;
    Ok(t)
}
