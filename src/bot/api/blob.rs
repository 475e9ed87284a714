//! Blob objects and the `blob` table.
//!
//! `blob.get` checks the blob exists and returns an object whose bytes are read on first
//! use: `tostring` reads them (bounded, then cached) and `blob.put` streams them to the
//! target, so copying a large layer never holds it in Lua memory.

use std::cell::RefCell;
use std::io::Read;

use mlua::{AnyUserData, Lua, MetaMethod, Table, UserData, UserDataMethods, Value};

use super::image::ConfigObj;
use super::reference::ref_arg;
use super::{arg_error, enter, fail, string_arg, Api};
use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::reference::Reference;
use crate::scheme::BlobExpect;

/// Largest blob `tostring` reads into a Lua string (lowered to the run's memory limit).
pub const MAX_BLOB_STRING: usize = 32 << 20;

/// Media type recorded for blobs put from a plain string.
const OCTET_STREAM: &str = "application/octet-stream";

/// A blob object.
#[derive(Debug)]
pub struct BlobObj {
    r: Reference,
    desc: Descriptor,
    /// From `blob.get` (tostring gives the content) rather than `blob.head`.
    fetched: bool,
    content: RefCell<Option<Vec<u8>>>,
}

impl BlobObj {
    /// The content, read once and kept. The read stops at the run's deadline.
    fn bytes(&self, lua: &Lua, api: &Api, func: &str) -> mlua::Result<Vec<u8>> {
        if let Some(b) = self.content.borrow().as_ref() {
            return Ok(b.clone());
        }
        // A memory limit of 0 means none (as in mlua).
        let max = match api.env.limits.memory {
            0 => MAX_BLOB_STRING,
            m => MAX_BLOB_STRING.min(m),
        };
        let rdr = api
            .scheme(func, &self.r)?
            .blob_get(&self.r, &self.desc)
            .map_err(fail(func))?;
        let mut b = Vec::new();
        super::until_deadline(lua, rdr)
            .take(max as u64 + 1)
            .read_to_end(&mut b)
            .map_err(|e| fail(func)(crate::Error::io(e, self.desc.digest.to_string())))?;
        if b.len() > max {
            return Err(fail(func)(crate::Error::new(
                crate::ErrorKind::SizeLimit,
                format!("blob {} exceeds the {max} byte limit", self.desc.digest),
            )));
        }
        *self.content.borrow_mut() = Some(b.clone());
        Ok(b)
    }
}

impl UserData for BlobObj {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::ToString, |lua, this, ()| {
            if !this.fetched {
                return Ok(Value::String(
                    lua.create_string(this.desc.digest.to_string())?,
                ));
            }
            let api = enter(lua)?;
            let b = this.bytes(lua, &api, "tostring(blob)")?;
            Ok(Value::String(lua.create_string(b)?))
        });
        m.add_method("descriptor", |lua, this, ()| {
            super::manifest::descriptor_table(lua, &this.desc)
        });
    }
}

/// The digest of `blob.get`/`blob.head`: the argument, else the reference's.
fn digest_arg(func: &str, r: &Reference, v: &Value) -> mlua::Result<Digest> {
    let s = match v {
        Value::Nil if !r.digest.is_empty() => r.digest.clone(),
        Value::Nil => {
            return Err(mlua::Error::runtime(format!(
                "{func}: no digest given and {} has none",
                r.common_name()
            )))
        }
        v => string_arg(func, 2, v, "a digest string")?,
    };
    Digest::parse(&s).map_err(|e| mlua::Error::runtime(format!("{func}: argument 2: {e}")))
}

fn lookup(lua: &Lua, func: &str, r: &Value, d: &Value, fetched: bool) -> mlua::Result<AnyUserData> {
    let api = enter(lua)?;
    let r = ref_arg(func, 1, r)?;
    let digest = digest_arg(func, &r, d)?;
    let want = Descriptor {
        digest,
        size: -1,
        ..Default::default()
    };
    let desc = api
        .scheme(func, &r)?
        .blob_head(&r, &want)
        .map_err(fail(func))?;
    lua.create_userdata(BlobObj {
        r,
        desc,
        fetched,
        content: RefCell::new(None),
    })
}

/// What `blob.put` writes: bytes in memory, or a blob streamed from where it lives.
enum Source {
    Bytes(Vec<u8>, String),
    Blob(Box<(Reference, Descriptor)>),
}

fn put(lua: &Lua, r: &Value, content: &Value) -> mlua::Result<(String, i64)> {
    const F: &str = "blob.put";
    const WANT: &str = "a string, blob object or config object";
    let api = enter(lua)?;
    let r = ref_arg(F, 1, r)?;
    let src = match content {
        Value::String(s) => Source::Bytes(s.as_bytes().to_vec(), OCTET_STREAM.to_string()),
        Value::UserData(ud) => {
            if let Ok(b) = ud.borrow::<BlobObj>() {
                match b.content.borrow().as_ref() {
                    Some(bytes) => Source::Bytes(bytes.clone(), b.desc.media_type.clone()),
                    None => Source::Blob(Box::new((b.r.clone(), b.desc.clone()))),
                }
            } else if let Ok(c) = ud.borrow::<ConfigObj>() {
                Source::Bytes(c.raw.clone(), c.media_type.clone())
            } else {
                return Err(arg_error(F, 2, WANT, content));
            }
        }
        other => return Err(arg_error(F, 2, WANT, other)),
    };
    let desc = match &src {
        Source::Bytes(b, media_type) => Descriptor::for_bytes(media_type, b),
        Source::Blob(b) => b.1.clone(),
    };
    if api.env.dry_run {
        api.dry_run(
            "blob put",
            &[
                ("ref", &r.common_name()),
                ("digest", &desc.digest.to_string()),
            ],
        );
        return Ok((desc.digest.to_string(), desc.size));
    }
    let expect = BlobExpect::from_descriptor(&desc);
    let target = api.scheme(F, &r)?;
    let got = match src {
        Source::Bytes(b, _) => target.blob_put(&r, &expect, &mut &b[..]),
        Source::Blob(b) => api
            .scheme(F, &b.0)?
            .blob_get(&b.0, &b.1)
            .and_then(|rdr| target.blob_put(&r, &expect, &mut super::until_deadline(lua, rdr))),
    }
    .map_err(fail(F))?;
    Ok((got.digest.to_string(), got.size))
}

/// The `blob` table.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "get",
        lua.create_function(|lua, (r, d): (Value, Value)| lookup(lua, "blob.get", &r, &d, true))?,
    )?;
    t.set(
        "head",
        lua.create_function(|lua, (r, d): (Value, Value)| lookup(lua, "blob.head", &r, &d, false))?,
    )?;
    t.set(
        "put",
        lua.create_function(|lua, (r, c): (Value, Value)| put(lua, &r, &c))?,
    )?;
    Ok(t)
}
