//! Reference objects (`reference.new`) and reading "ref" arguments.

use mlua::{Lua, MetaMethod, Table, UserData, UserDataMethods, Value};

use super::{arg_error, enter, fail, string_arg};
use crate::reference::Reference;

/// A reference object: `tostring` gives the common name; `:tag()` and `:digest()` get or set.
#[derive(Debug, Clone)]
pub struct RefObj(pub Reference);

impl UserData for RefObj {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.0.common_name()));
        m.add_method_mut("tag", |_, this, v: Value| match v {
            Value::Nil => Ok(Some(this.0.tag.clone())),
            v => {
                let t = string_arg("ref:tag", 1, &v, "a tag string")?;
                // Validate through the parser rather than trusting any string as a tag.
                let r = this.0.set_tag(&t);
                Reference::parse(&r.common_name()).map_err(fail("ref:tag"))?;
                this.0 = r;
                Ok(None)
            }
        });
        m.add_method_mut("digest", |_, this, v: Value| match v {
            Value::Nil => Ok(Some(this.0.digest.clone())),
            v => {
                let d = string_arg("ref:digest", 1, &v, "a digest string")?;
                crate::Digest::parse(&d).map_err(fail("ref:digest"))?;
                this.0 = this.0.set_digest(&d);
                Ok(None)
            }
        });
        m.add_method("close", |lua, this, ()| close(lua, &this.0, "ref:close"));
    }
}

fn close(lua: &Lua, r: &Reference, func: &str) -> mlua::Result<()> {
    let api = enter(lua)?;
    api.env.client.close(r).map_err(fail(func))
}

/// The `reference` table.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "new",
        lua.create_function(|lua, v: Value| {
            enter(lua)?;
            let r = ref_arg("reference.new", 1, &v)?;
            lua.create_userdata(RefObj(r))
        })?,
    )?;
    t.set(
        "close",
        lua.create_function(|lua, v: Value| {
            let r = ref_arg("reference.close", 1, &v)?;
            close(lua, &r, "reference.close")
        })?,
    )?;
    Ok(t)
}

/// Reads a "ref" argument: a reference string, or a reference, manifest or config object.
pub fn ref_arg(func: &str, n: usize, v: &Value) -> mlua::Result<Reference> {
    const WANT: &str = "a reference string or object";
    match v {
        Value::String(s) => {
            let s = s.to_str()?;
            Reference::parse(&s)
                .map_err(|e| mlua::Error::runtime(format!("{func}: argument {n}: {e}")))
        }
        Value::UserData(ud) => {
            if let Ok(r) = ud.borrow::<RefObj>() {
                return Ok(r.0.clone());
            }
            if let Ok(m) = ud.borrow::<super::manifest::ManifestObj>() {
                return Ok(m.r.clone());
            }
            if let Ok(c) = ud.borrow::<super::image::ConfigObj>() {
                return Ok(c.r.clone());
            }
            Err(arg_error(func, n, WANT, v))
        }
        other => Err(arg_error(func, n, WANT, other)),
    }
}
