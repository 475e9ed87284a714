//! Config objects and the `image` table (config, copy, tar export/import, rate-limit wait,
//! and aliases of the manifest calls).

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use mlua::{AnyUserData, Lua, MetaMethod, Table, UserData, UserDataMethods, Value};

use super::manifest::{self, Content, ManifestObj};
use super::reference::ref_arg;
use super::{convert, enter, fail, opts_arg, string_arg, Api};
use crate::config::GoDuration;
use crate::copy::{self, CopyOpts};
use crate::error::{Error, ErrorKind};
use crate::image_config::{ImageConfig, MAX_CONFIG};
use crate::mediatype as mt;
use crate::platform::Platform;
use crate::ratelimit::RateLimit;
use crate::reference::Reference;

/// Longest single sleep of the rate-limit wait, so the deadline is noticed promptly.
const WAIT_SLICE: Duration = Duration::from_millis(200);

/// An image config object: the raw JSON as read plus a table of its fields.
#[derive(Debug, Clone)]
pub struct ConfigObj {
    /// The reference of the image it belongs to.
    pub(super) r: Reference,
    /// The config bytes.
    pub(super) raw: Vec<u8>,
    /// Media type of the config blob.
    pub(super) media_type: String,
}

impl ConfigObj {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.raw).unwrap_or(serde_json::Value::Null)
    }
}

fn new_config(lua: &Lua, obj: ConfigObj) -> mlua::Result<AnyUserData> {
    let data = match convert::to_lua(lua, &obj.json())? {
        Value::Table(t) => t,
        _ => lua.create_table()?,
    };
    let ud = lua.create_userdata(obj)?;
    ud.set_user_value(data)?;
    Ok(ud)
}

impl UserData for ConfigObj {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            serde_json::to_string_pretty(&this.json()).map_err(mlua::Error::external)
        });
        m.add_meta_function(MetaMethod::Index, |_, (ud, k): (AnyUserData, Value)| {
            let data = ud.user_value::<Table>()?;
            match &k {
                Value::String(s) => data.raw_get::<Value>(convert::canonical(&s.to_str()?)),
                _ => data.raw_get::<Value>(k),
            }
        });
        m.add_meta_function(
            MetaMethod::NewIndex,
            |lua, (ud, k, v): (AnyUserData, Value, Value)| {
                let data = ud.user_value::<Table>()?;
                match &k {
                    Value::String(s) => {
                        let c = lua.create_string(convert::canonical(&s.to_str()?))?;
                        data.raw_set(c, v)
                    }
                    _ => data.raw_set(k, v),
                }
            },
        );
        m.add_meta_function(MetaMethod::Pairs, |lua, ud: AnyUserData| {
            convert::pairs_iter(lua, &ud.user_value::<Table>()?)
        });
        m.add_function("export", |lua, ud: AnyUserData| {
            const F: &str = "cfg:export";
            let this = ud
                .borrow::<ConfigObj>()
                .map_err(|_| mlua::Error::runtime(format!("{F}: expected a config object")))?
                .clone();
            let orig = this.json();
            let data = ud.user_value::<Table>()?;
            let json = convert::to_json(&Value::Table(data), Some(&orig))
                .map_err(|e| mlua::Error::runtime(format!("{F}: {e}")))?;
            if json == orig {
                return new_config(lua, this);
            }
            let raw = serde_json::to_vec(&json).map_err(mlua::Error::external)?;
            // Refuse what no runtime would read back as a config.
            ImageConfig::parse(&raw).map_err(fail(F))?;
            new_config(lua, ConfigObj { raw, ..this })
        });
    }
}

/// Reads the config of an image manifest (embedded data or the blob).
fn config_of(api: &Api, r: &Reference, m: &crate::manifest::Manifest) -> crate::Result<ConfigObj> {
    let cd = match m.config() {
        Some(c)
            if c.media_type == mt::OCI1_IMAGE_CONFIG
                || c.media_type == mt::DOCKER2_IMAGE_CONFIG =>
        {
            c.clone()
        }
        _ => {
            return Err(Error::new(
                ErrorKind::UnsupportedMediaType,
                format!("{} is not an image (no image config)", r.common_name()),
            ))
        }
    };
    let raw = match cd.embedded_data() {
        Some(d) => d,
        None => api
            .env
            .client
            .scheme(r)?
            .blob_get(r, &cd)?
            .read_all(MAX_CONFIG)?,
    };
    ImageConfig::parse(&raw)?;
    Ok(ConfigObj {
        r: r.clone(),
        raw,
        media_type: cd.media_type,
    })
}

/// `image.config(ref|manifest)`: an index is resolved to the local platform.
pub(super) fn config(lua: &Lua, func: &str, v: &Value) -> mlua::Result<AnyUserData> {
    let api = enter(lua)?;
    if let Value::UserData(ud) = v {
        if let Ok(m) = ud.borrow::<ManifestObj>() {
            if let Content::Full(man) = &m.content {
                if !man.is_index() {
                    let c = config_of(&api, &m.r, man).map_err(fail(func))?;
                    return new_config(lua, c);
                }
            }
        }
    }
    let r = ref_arg(func, 1, v)?;
    let (m, _, raw) = api
        .env
        .client
        .image_config(&r, &Platform::host())
        .map_err(fail(func))?;
    let media_type = m
        .config()
        .map(|c| c.media_type.clone())
        .unwrap_or_else(|| mt::OCI1_IMAGE_CONFIG.to_string());
    new_config(lua, ConfigObj { r, raw, media_type })
}

/// A Go duration argument (`"5m"`), or the default when absent.
fn duration_arg(func: &str, n: usize, v: &Value, default: Duration) -> mlua::Result<Duration> {
    match v {
        Value::Nil => Ok(default),
        v => {
            let s = string_arg(func, n, v, "a duration string like \"5m\"")?;
            GoDuration::parse(&s)
                .map(|d| d.0)
                .map_err(|e| mlua::Error::runtime(format!("{func}: argument {n}: {e}")))
        }
    }
}

/// Sleeps `d` in short slices, stopping with an error at the run's deadline. Go durations
/// reach centuries, past what an `Instant` can hold: such a sleep only ends at the deadline.
fn sleep(lua: &Lua, d: Duration) -> mlua::Result<()> {
    let end = Instant::now().checked_add(d);
    loop {
        super::super::check_deadline(lua)?;
        let now = Instant::now();
        let left = match end {
            Some(end) if now >= end => return Ok(()),
            Some(end) => end - now,
            None => WAIT_SLICE,
        };
        std::thread::sleep(left.min(WAIT_SLICE));
    }
}

/// Polls `probe` until no limit applies or at least `limit` requests remain (`true`), or
/// until the next poll would pass `timeout` (`false`).
pub(super) fn wait_loop(
    lua: &Lua,
    limit: i64,
    poll: Duration,
    timeout: Duration,
    mut probe: impl FnMut() -> mlua::Result<RateLimit>,
) -> mlua::Result<bool> {
    let start = Instant::now();
    loop {
        super::super::check_deadline(lua)?;
        let rl = probe()?;
        if !rl.set || rl.remain >= limit {
            return Ok(true);
        }
        if start
            .elapsed()
            .checked_add(poll)
            .is_none_or(|next| next > timeout)
        {
            return Ok(false);
        }
        sleep(lua, poll)?;
    }
}

/// `image.ratelimitWait(ref, limit [, poll [, timeout]])`.
pub(super) fn ratelimit_wait(
    lua: &Lua,
    func: &str,
    r: &Reference,
    (limit, n): (&Value, usize),
    poll: &Value,
    timeout: &Value,
) -> mlua::Result<bool> {
    let api = enter(lua)?;
    let limit = match limit {
        Value::Integer(i) => *i,
        Value::Number(f) if f.fract() == 0.0 => *f as i64,
        other => return Err(super::arg_error(func, n, "an integer limit", other)),
    };
    let poll = duration_arg(func, n + 1, poll, Duration::from_secs(5 * 60))?;
    let timeout = duration_arg(func, n + 2, timeout, Duration::from_secs(6 * 3600))?;
    if poll.is_zero() {
        return Err(mlua::Error::runtime(format!(
            "{func}: argument {}: poll interval must be positive",
            n + 1
        )));
    }
    wait_loop(lua, limit, poll, timeout, || {
        let (_, headers) = manifest::head(&api, func, r)?;
        Ok(manifest::ratelimit_of(&headers))
    })
}

fn copy_opts(func: &str, v: &Value) -> mlua::Result<CopyOpts> {
    let mut o = CopyOpts::default();
    let Some(t) = opts_arg(
        func,
        3,
        v,
        &[
            "digestTags",
            "fastCheck",
            "forceRecursive",
            "includeExternal",
            "referrers",
            "platforms",
        ],
    )?
    else {
        return Ok(o);
    };
    let flag = |name: &str| -> mlua::Result<bool> {
        match t.get::<Value>(name)? {
            Value::Nil => Ok(false),
            Value::Boolean(b) => Ok(b),
            other => Err(super::arg_error(
                func,
                3,
                &format!("{name} to be a boolean"),
                &other,
            )),
        }
    };
    o.digest_tags = flag("digestTags")?;
    o.fast = flag("fastCheck")?;
    o.force_recursive = flag("forceRecursive")?;
    o.include_external = flag("includeExternal")?;
    o.referrers = flag("referrers")?;
    match t.get::<Value>("platforms")? {
        Value::Nil => {}
        Value::Table(list) => {
            for p in list.sequence_values::<Value>() {
                let s = string_arg(func, 3, &p?, "platforms to hold strings")?;
                let p = Platform::parse(&s)
                    .map_err(|e| mlua::Error::runtime(format!("{func}: argument 3: {e}")))?;
                o.platforms.push(p);
            }
        }
        other => {
            return Err(super::arg_error(
                func,
                3,
                "platforms to be a list of strings",
                &other,
            ))
        }
    }
    Ok(o)
}

fn copy(lua: &Lua, src: &Value, tgt: &Value, opts: &Value) -> mlua::Result<()> {
    const F: &str = "image.copy";
    let api = enter(lua)?;
    let src = ref_arg(F, 1, src)?;
    let tgt = ref_arg(F, 2, tgt)?;
    let mut opts = copy_opts(F, opts)?;
    // A copy still running at the script's deadline stops there (nothing is tagged).
    opts.deadline = super::run_deadline(lua);
    if api.env.dry_run {
        // Reading is allowed: a missing source fails here as it would for real.
        let (d, _) = manifest::head(&api, F, &src)?;
        api.dry_run(
            "image copy",
            &[
                ("source", &src.common_name()),
                ("target", &tgt.common_name()),
                ("digest", &d.digest.to_string()),
            ],
        );
        return Ok(());
    }
    let client = &api.env.client;
    let res = copy::image_copy(
        client.scheme(&src).map_err(fail(F))?,
        &src,
        client.scheme(&tgt).map_err(fail(F))?,
        &tgt,
        &opts,
        client.pool(),
        &|_| {},
    );
    api.close(&tgt);
    res.map_err(|e| {
        fail(F)(e.context(format!(
            "copying {} to {}",
            src.common_name(),
            tgt.common_name()
        )))
    })?;
    Ok(())
}

fn export_tar(lua: &Lua, r: &Value, file: &Value) -> mlua::Result<()> {
    const F: &str = "image.exportTar";
    let api = enter(lua)?;
    let r = ref_arg(F, 1, r)?;
    let file = string_arg(F, 2, file, "a file name")?;
    let scheme = api.scheme(F, &r)?;
    let path = Path::new(&file);
    let f = std::fs::File::create(path).map_err(|e| fail(F)(Error::io(e, file.clone())))?;
    let mut out = super::until_deadline(lua, BufWriter::with_capacity(256 * 1024, f));
    let res = crate::archive::export(scheme, &r, &Default::default(), &mut out)
        .and_then(|_| out.flush().map_err(|e| Error::io(e, file.clone())));
    if let Err(e) = res {
        // Never leave a partial tar that looks like a good one (nor flush more of it).
        drop(out.into_inner().into_parts());
        let _ = std::fs::remove_file(path);
        return Err(fail(F)(e));
    }
    Ok(())
}

fn import_tar(lua: &Lua, r: &Value, file: &Value) -> mlua::Result<()> {
    const F: &str = "image.importTar";
    let api = enter(lua)?;
    let r = ref_arg(F, 1, r)?;
    let file = string_arg(F, 2, file, "a file name")?;
    if api.env.dry_run {
        // Still catch a missing file: the dry run should fail where the real run would.
        std::fs::metadata(&file).map_err(|e| fail(F)(Error::io(e, file.clone())))?;
        api.dry_run(
            "image import",
            &[("ref", &r.common_name()), ("file", &file)],
        );
        return Ok(());
    }
    let scheme = api.scheme(F, &r)?;
    let opts = crate::archive::ImportOpts {
        deadline: super::run_deadline(lua),
        ..Default::default()
    };
    let res = crate::archive::import(scheme, &r, Path::new(&file), &opts);
    api.close(&r);
    res.map_err(fail(F))?;
    Ok(())
}

/// The `image` table.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "config",
        lua.create_function(|lua, v: Value| config(lua, "image.config", &v))?,
    )?;
    t.set(
        "copy",
        lua.create_function(|lua, (s, d, o): (Value, Value, Value)| copy(lua, &s, &d, &o))?,
    )?;
    t.set(
        "exportTar",
        lua.create_function(|lua, (r, f): (Value, Value)| export_tar(lua, &r, &f))?,
    )?;
    t.set(
        "importTar",
        lua.create_function(|lua, (r, f): (Value, Value)| import_tar(lua, &r, &f))?,
    )?;
    t.set(
        "manifest",
        lua.create_function(|lua, (r, p): (Value, Value)| {
            manifest::f_get(lua, "image.manifest", &r, &p)
        })?,
    )?;
    t.set(
        "manifestHead",
        lua.create_function(|lua, r: Value| manifest::f_head(lua, "image.manifestHead", &r))?,
    )?;
    t.set(
        "manifestList",
        lua.create_function(|lua, r: Value| manifest::f_get_list(lua, "image.manifestList", &r))?,
    )?;
    t.set(
        "ratelimitWait",
        lua.create_function(
            |lua, (r, limit, poll, timeout): (Value, Value, Value, Value)| {
                const F: &str = "image.ratelimitWait";
                let r = ref_arg(F, 1, &r)?;
                ratelimit_wait(lua, F, &r, (&limit, 2), &poll, &timeout)
            },
        )?,
    )?;
    Ok(t)
}
