//! The Lua state a script runs in: only safe libraries, a memory limit, a deadline.
//!
//! Upstream regbot runs scripts in gopher-lua (Lua 5.1) with every standard library loaded. We
//! run Lua 5.4 and give scripts only what they need to compute and to call the registry API:
//!
//! - base functions without `dofile`/`loadfile`; `load` compiles text only (a binary chunk gets
//!   Lua's "attempt to load a binary chunk" message); `print` and `warn` go to the log sink;
//! - `table`, `string` (without `string.dump`), `math`, `utf8`, `coroutine`;
//! - `unpack` (= `table.unpack`) for scripts written for Lua 5.1;
//! - a small `os`: `time`, `date`, `clock`, `difftime`. **Times are UTC**: `os.date("%H")` and
//!   `os.date("!%H")` agree, `os.time{...}` reads the table as UTC (and does not write the
//!   normalised fields back, as C Lua does), `%Z` prints `UTC`. `os.clock()` is wall-clock
//!   seconds since the run started (std has no CPU clock).
//!
//! Other Lua 5.1 habits that fail here: `setfenv`/`getfenv`, `module`, `loadstring`,
//! `table.getn`, `math.pow`; numbers are integers or floats (`7 // 2`, `math.type`).
//!
//! Absent: `io`, `debug`, `package`/`require`, `os.execute`/`getenv`/`remove`/..., and `__gc`
//! metamethods on tables (`setmetatable` refuses them: Lua runs finalizers in protected calls, so
//! a finalizer could swallow the stop signal below; gopher-lua never ran them either).
//!
//! Limits: the allocator refuses memory beyond [`Limits::memory`](super::Limits); an
//! instruction-count hook stops the script once [`Limits::timeout`](super::Limits) has passed.
//! Once a run is killed (deadline passed or memory limit hit) it stays killed: `pcall`, `xpcall`,
//! `coroutine.resume`, `coroutine.close` and `load` are wrapped so that they re-raise instead of
//! returning the error to the script, and the hook keeps raising; `__close` handlers lose their
//! metamethod (mlua runs some of them with hooks off while raising the kill). The hook only
//! runs between Lua instructions, so one long C call finishes before the deadline is noticed:
//! `string.rep` of an empty string answers without looping and `table.move`, `table.insert`
//! and `table.remove` refuse more than 2^24 slots, but a pathological `string.find` pattern
//! is a known gap.

use std::cell::RefCell;
use std::time::{Instant, SystemTime};

use mlua::{
    chunk::ChunkMode, Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value,
    VmState,
};

use super::{Level, RunState, ScriptEnv};
use crate::civil::{civil_from_days, days_from_civil, unix_seconds_floor, MONTHS, WEEKDAYS};
use crate::config::GoDuration;
use crate::{Error, ErrorKind, Result};

/// The hook runs after this many VM instructions: often enough to stop within microseconds of
/// the deadline, rarely enough to cost nothing measurable.
const HOOK_INSTRUCTIONS: u32 = 1000;

/// Registry key of the original `tostring`, which `print` uses even if a script replaces the
/// global.
const TOSTRING_KEY: &str = "regbot.sandbox.tostring";

/// Longest line `print` or `warn` hands to the log sink; the rest is cut. The line is built
/// in Rust memory, outside the Lua limit, and `print(table.unpack(t))` with one long string
/// many times would otherwise grow it without bound.
const MAX_LOG_LINE: usize = 1 << 20;

/// Marks a line cut at [`MAX_LOG_LINE`].
const TRUNCATED: &str = "... (truncated)";

/// Chunk name of [`WRAPPERS`] in Lua's messages.
const WRAPPERS_ID: &str = "regbot sandbox";

/// Registry key of the weak set of metatables scripts can reach (filled by the wrappers).
const METATABLES_KEY: &str = "regbot.sandbox.metatables";

/// The message Lua gives every allocation failure (its preallocated memory-error string).
const LUA_MEMORY_MESSAGE: &str = "not enough memory";

/// Why a run was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    Timeout,
    Memory,
}

/// Private app data: the deadline (a copy of [`RunState::deadline`], so the hook never contends
/// with API code borrowing `RunState`) and, once the run is killed, why; from then on
/// everything only re-raises.
#[derive(Debug)]
struct KillState {
    deadline: Option<Instant>,
    kill: Option<Kill>,
}

/// Builds a sandboxed state, installs the API, runs the script.
///
/// A failed run's error names the script and, when Lua knows it, the line:
/// - `script "x": line 3: syntax error: ...` (kind `InvalidInput`);
/// - `script "x": line 7: attempt to index a nil value (global 'io')` (kind `Other`); an API
///   call's own [`Error`] keeps its kind and message;
/// - `script "x": timeout after 2s` (kind `Canceled`, the closest kind to a timeout);
/// - `script "x": memory limit of 256 MiB reached` (kind `SizeLimit`).
pub fn run(env: &ScriptEnv, name: &str, source: &str) -> Result<()> {
    let lua = new_state(env, name).map_err(|e| {
        Error::new(
            ErrorKind::Other,
            format!("setting up the Lua state: {}", mlua_message(&e)),
        )
        .context(format!("script {name:?}"))
    })?;
    super::api::install(&lua, env, name).map_err(|e| {
        Error::new(
            ErrorKind::Other,
            format!("installing the API: {}", mlua_message(&e)),
        )
        .context(format!("script {name:?}"))
    })?;
    lua.load(source)
        .set_name(format!("={name}"))
        .set_mode(ChunkMode::Text)
        .exec()
        .map_err(|e| script_error(&lua, env, name, e))
}

/// A fresh state with only the safe libraries, the limits and our `print`/`os`/wrappers.
fn new_state(env: &ScriptEnv, name: &str) -> mlua::Result<Lua> {
    let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::UTF8 | StdLib::COROUTINE;
    let lua = Lua::new_with(libs, LuaOptions::new())?;
    // 0 means "no limit" to mlua's allocator, which is what a zero limit should mean here too.
    lua.set_memory_limit(env.limits.memory)?;
    let deadline = env
        .limits
        .timeout
        .and_then(|t| Instant::now().checked_add(t));
    lua.set_app_data(RunState {
        script: name.to_string(),
        deadline,
    });
    lua.set_app_data(KillState {
        deadline,
        kill: None,
    });

    let globals = lua.globals();
    globals.set("dofile", Value::Nil)?;
    globals.set("loadfile", Value::Nil)?;
    let string: Table = globals.get("string")?;
    string.set("dump", Value::Nil)?;
    let table: Table = globals.get("table")?;
    globals.set("unpack", table.get::<Function>("unpack")?)?;
    lua.set_named_registry_value(TOSTRING_KEY, globals.get::<Function>("tostring")?)?;

    globals.set("os", os_table(&lua)?)?;
    install_print(&lua, env, name)?;
    install_wrappers(&lua)?;

    lua.set_global_hook(
        HookTriggers::new().every_nth_instruction(HOOK_INSTRUCTIONS),
        |lua, _| {
            enforce(lua)?;
            Ok(VmState::Continue)
        },
    )?;
    Ok(lua)
}

/// `print(...)` and Lua warnings (`warn(...)`) go to the log sink; the library never prints.
fn install_print(lua: &Lua, env: &ScriptEnv, name: &str) -> mlua::Result<()> {
    let log = env.log.clone();
    let script = name.to_string();
    let print = lua.create_function(move |lua, args: MultiValue| {
        let tostring: Function = lua.named_registry_value(TOSTRING_KEY)?;
        let mut line = Vec::new();
        for (i, v) in args.into_iter().enumerate() {
            if i > 0 {
                line.push(b'\t');
            }
            let s: mlua::LuaString = tostring.call(v)?;
            let room = MAX_LOG_LINE.saturating_sub(line.len());
            let bytes = s.as_bytes();
            line.extend_from_slice(&bytes[..bytes.len().min(room)]);
            if bytes.len() > room {
                line.extend_from_slice(TRUNCATED.as_bytes());
                break;
            }
        }
        log(Level::Info, &script, &String::from_utf8_lossy(&line), &[]);
        Ok(())
    })?;
    lua.globals().set("print", print)?;

    let log = env.log.clone();
    let script = name.to_string();
    // Lua delivers one warning in pieces (`warn("a", "b")`); join them into one line.
    let pending = RefCell::new(String::new());
    lua.set_warning_function(move |_, piece, incomplete| {
        let mut buf = pending.borrow_mut();
        // A lone "@on"/"@off" is a control message, not a warning.
        if buf.is_empty() && !incomplete && piece.starts_with('@') {
            return Ok(());
        }
        let room = MAX_LOG_LINE.saturating_sub(buf.len());
        if piece.len() <= room {
            buf.push_str(piece);
        } else if buf.len() <= MAX_LOG_LINE {
            let mut cut = room;
            while !piece.is_char_boundary(cut) {
                cut -= 1;
            }
            buf.push_str(&piece[..cut]);
            // Now past the limit: later pieces are dropped and the marker stays last.
            buf.push_str(TRUNCATED);
        }
        if !incomplete {
            log(Level::Warn, &script, &buf, &[]);
            buf.clear();
        }
        Ok(())
    });
    Ok(())
}

/// Lua side of the kill switch: the functions that can catch errors re-raise once the run is
/// killed, `load` compiles text only, `setmetatable` refuses finalizers.
///
/// `coroutine.wrap` needs no wrapper: it already propagates the coroutine's error to its caller.
/// The wrappers are Lua functions (not Rust ones) so that `coroutine.yield` inside a `pcall`
/// still works; the originals stay reachable only as upvalues, and scripts have no `debug`
/// library to reach upvalues. Locals carry the public names so Lua's argument errors read
/// "bad argument #2 to 'xpcall'".
const WRAPPERS: &str = r##"
local check, note = ...
local pcall, xpcall, load, setmetatable = pcall, xpcall, load, setmetatable
local getmetatable, rawget, select, type, error = getmetatable, rawget, select, type, error
local resume, close = coroutine.resume, coroutine.close

-- Every metatable a script can write to: the ones it sets and the ones it reads (the string
-- metatable, the API's). A kill strips their `__close` fields (see `strip_close_handlers`).
local metatables = setmetatable({}, {__mode = "k"})

_ENV.pcall = function(...)
  return check(pcall(...))
end

_ENV.xpcall = function(f, handler, ...)
  if type(handler) ~= "function" then
    return check(xpcall(f, handler, ...))
  end
  -- The handler sees the error first and could replace it; note it before the handler runs.
  return check(xpcall(f, function(e)
    note(e)
    return handler(e)
  end, ...))
end

coroutine.resume = function(...)
  return check(resume(...))
end

coroutine.close = function(...)
  return check(close(...))
end

_ENV.load = function(...)
  local chunk, chunkname, _, env = ...
  local f, err
  -- An explicit nil env differs from no env (the chunk gets no globals), so keep the arity.
  if select("#", ...) >= 4 then
    f, err = load(chunk, chunkname, "t", env)
  else
    f, err = load(chunk, chunkname, "t")
  end
  if f == nil then
    note(err)
  end
  return f, err
end

_ENV.setmetatable = function(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not available to regbot scripts", 2)
  end
  if type(mt) == "table" then
    metatables[mt] = true
  end
  return setmetatable(t, mt)
end

-- Some library functions loop in C once per element, where the hook cannot stop them: an
-- empty string repeated `math.maxinteger` times, a move of that many table slots, an insert
-- or remove shifting up to a length a `__len` metamethod made up. The empty repeat is
-- answered directly; the others are capped at 2^24 slots, more than a table fits in the
-- default memory limit. Other arguments reach the originals and their errors.
local rep, move, tointeger = string.rep, table.move, math.tointeger
local insert, remove = table.insert, table.remove
local MAX_SLOTS = 1 << 24

local function check_len(t, name)
  if type(t) == "table" then
    local n = tointeger(#t)
    if n and n >= MAX_SLOTS then
      error("bad argument #1 to '" .. name .. "' (table too long for regbot)", 3)
    end
  end
end

table.insert = function(t, ...)
  check_len(t, "insert")
  return insert(t, ...)
end

table.remove = function(t, ...)
  check_len(t, "remove")
  return remove(t, ...)
end

string.rep = function(s, n, sep)
  if s == "" and (sep == nil or sep == "") and tointeger(n) then
    return ""
  end
  return rep(s, n, sep)
end

table.move = function(a1, f, e, t, a2)
  local first, last = tointeger(f), tointeger(e)
  if first and last and last // 2 - first // 2 >= MAX_SLOTS // 2 then
    error("bad argument #3 to 'move' (too many elements to move for regbot)", 2)
  end
  return move(a1, f, e, t, a2)
end

_ENV.getmetatable = function(...)
  local mt = getmetatable(...)
  if type(mt) == "table" then
    metatables[mt] = true
  end
  return mt
end

return metatables
"##;

fn install_wrappers(lua: &Lua) -> mlua::Result<()> {
    // check(ok, ...): the results of a protected call, passed through unless the run is killed.
    let check = lua.create_function(|lua, results: MultiValue| {
        if let Some(Value::Boolean(false)) = results.front() {
            note_error(lua, results.get(1));
        }
        enforce(lua)?;
        Ok(results)
    })?;
    // note(err): an error seen by a handler or by `load`.
    let note = lua.create_function(|lua, err: Value| {
        note_error(lua, Some(&err));
        enforce(lua)
    })?;
    let metatables: Table = lua
        .load(WRAPPERS)
        .set_name(format!("={WRAPPERS_ID}"))
        .set_mode(ChunkMode::Text)
        .call((check, note))?;
    lua.set_named_registry_value(METATABLES_KEY, metatables)
}

/// Removes `__close` from every metatable a script could have written to.
///
/// mlua raises a hook's error after resetting the stack of the Lua function the hook
/// interrupted, and that reset runs the function's to-be-closed handlers while Lua still has
/// hooks switched off for the hook call: a handler that loops would never be stopped. Without
/// its `__close` the variable's close is an immediate error instead. Best effort: a failure
/// here (out of memory) leaves the handlers in place.
fn strip_close_handlers(lua: &Lua) {
    let Ok(metatables) = lua.named_registry_value::<Table>(METATABLES_KEY) else {
        return;
    };
    let list: Vec<Table> = metatables
        .pairs::<Table, Value>()
        .filter_map(|pair| pair.ok().map(|(mt, _)| mt))
        .collect();
    for mt in list {
        let _ = mt.raw_set("__close", Value::Nil);
    }
}

/// Records a memory kill when a caught error is an allocation failure. A script that raises
/// the very string "not enough memory" itself is treated the same; it only stops itself.
fn note_error(lua: &Lua, err: Option<&Value>) {
    let is_memory = match err {
        Some(Value::String(s)) => s.as_bytes().as_ref() == LUA_MEMORY_MESSAGE.as_bytes(),
        Some(Value::Error(e)) => is_memory_error(e),
        _ => false,
    };
    if is_memory {
        set_kill(lua, Kill::Memory);
    }
}

fn set_kill(lua: &Lua, kill: Kill) {
    if let Some(mut state) = lua.app_data_mut::<KillState>() {
        // The first reason wins: a memory bomb that also ran late is still a memory bomb.
        state.kill.get_or_insert(kill);
    }
}

/// Why the run is killed, if it is; notices a passed deadline.
fn kill_state(lua: &Lua) -> Option<Kill> {
    let (recorded, deadline) = match lua.app_data_ref::<KillState>() {
        Some(s) => (s.kill, s.deadline),
        None => (None, None),
    };
    if recorded.is_some() {
        return recorded;
    }
    if crate::deadline::passed(deadline) {
        set_kill(lua, Kill::Timeout);
        return Some(Kill::Timeout);
    }
    None
}

/// Raises the kill error if the run is killed. The message only matters to a script that
/// catches it for a moment; [`run`] reports the kill from the recorded state.
fn enforce(lua: &Lua) -> mlua::Result<()> {
    let kill = kill_state(lua);
    if kill.is_some() {
        strip_close_handlers(lua);
    }
    match kill {
        None => Ok(()),
        Some(Kill::Timeout) => Err(mlua::Error::runtime("script stopped: timeout reached")),
        Some(Kill::Memory) => Err(mlua::Error::runtime("script stopped: memory limit reached")),
    }
}

/// Turns the error of a failed run into the crate's error, naming the script and line.
fn script_error(lua: &Lua, env: &ScriptEnv, name: &str, err: mlua::Error) -> Error {
    let script = format!("script {name:?}");
    let kill = kill_state(lua).or_else(|| is_memory_error(&err).then_some(Kill::Memory));
    match kill {
        Some(Kill::Timeout) => {
            // Go's spelling ("2s", "1m30s"), as the timeout is written in the config.
            let after = GoDuration(env.limits.timeout.unwrap_or_default()).to_string();
            return Error::new(ErrorKind::Canceled, format!("timeout after {after}"))
                .context(script);
        }
        Some(Kill::Memory) => {
            let limit = fmt_bytes(env.limits.memory);
            return Error::new(
                ErrorKind::SizeLimit,
                format!("memory limit of {limit} reached"),
            )
            .context(script);
        }
        None => {}
    }

    // Unwrap callback layers: their tracebacks tell where in the script an API call failed.
    let id = chunk_id(name);
    let mut tracebacks = Vec::new();
    let mut contexts = Vec::new();
    let mut root = &err;
    loop {
        match root {
            mlua::Error::CallbackError { traceback, cause } => {
                tracebacks.push(traceback.as_str());
                root = cause;
            }
            mlua::Error::WithContext { context, cause } => {
                contexts.push(context.as_str());
                root = cause;
            }
            _ => break,
        }
    }

    let (mut line, mut base) = match root {
        mlua::Error::SyntaxError { message, .. } => {
            let (line, msg) = split_position(id, message);
            let e = Error::new(ErrorKind::InvalidInput, format!("syntax error: {msg}"));
            (line, e)
        }
        mlua::Error::RuntimeError(message) => {
            let (msg, traceback) = split_traceback(message);
            let (line, msg) = split_position(id, msg);
            // A library function called through one of our wrappers names the wrapper's
            // line (after the script's, when coroutine.wrap passed the error on); the
            // script's line is in the traceback.
            let msg = split_position(WRAPPERS_ID.as_bytes(), msg).1;
            let line = line.or_else(|| traceback.and_then(|tb| traceback_line(id, tb)));
            (line, Error::new(ErrorKind::Other, msg))
        }
        other => match other.downcast_ref::<Error>() {
            // An API call's own error keeps its kind and message.
            Some(e) => (None, e.clone()),
            None => (None, Error::new(ErrorKind::Other, mlua_message(other))),
        },
    };
    if line.is_none() {
        // The innermost callback ran closest to the failing script line.
        line = tracebacks
            .iter()
            .rev()
            .find_map(|tb| traceback_line(id, tb));
    }
    for ctx in contexts.iter().rev() {
        base = base.context(*ctx);
    }
    match line {
        Some(n) => base.context(format!("{script}: line {n}")),
        None => base.context(script),
    }
}

/// True when `err` is (or wraps) an allocation failure.
fn is_memory_error(err: &mlua::Error) -> bool {
    match err {
        mlua::Error::MemoryError(_) => true,
        // coroutine.wrap re-raises a coroutine's allocation failure as a plain error.
        mlua::Error::RuntimeError(msg) => split_traceback(msg).0 == LUA_MEMORY_MESSAGE,
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
            is_memory_error(cause)
        }
        _ => false,
    }
}

/// mlua's message without its "runtime error: " prefix or appended traceback.
fn mlua_message(err: &mlua::Error) -> String {
    match err {
        mlua::Error::RuntimeError(msg) => split_traceback(msg).0.to_string(),
        mlua::Error::CallbackError { cause, .. } => mlua_message(cause),
        other => split_traceback(&other.to_string()).0.to_string(),
    }
}

/// How Lua names chunk `=name` in messages: the name cut to 59 bytes (LUA_IDSIZE - 1).
fn chunk_id(name: &str) -> &[u8] {
    let b = name.as_bytes();
    &b[..b.len().min(59)]
}

/// Splits mlua's appended "\nstack traceback:" off a message.
fn split_traceback(msg: &str) -> (&str, Option<&str>) {
    match msg.find("\nstack traceback:") {
        Some(i) => (&msg[..i], Some(&msg[i + 1..])),
        None => (msg, None),
    }
}

/// Splits a leading "ID:LINE: " off a Lua message.
fn split_position<'a>(id: &[u8], msg: &'a str) -> (Option<u64>, &'a str) {
    match position(id, msg) {
        Some((line, rest)) => (Some(line), rest.strip_prefix(' ').unwrap_or(rest)),
        None => (None, msg),
    }
}

/// Parses "ID:LINE:" at the start of `s`, returning the line and what follows the colon.
fn position<'a>(id: &[u8], s: &'a str) -> Option<(u64, &'a str)> {
    let rest = s.as_bytes().strip_prefix(id)?.strip_prefix(b":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || rest.get(digits) != Some(&b':') {
        return None;
    }
    let line = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    // The id and digits are ASCII-delimited, so this offset is a char boundary.
    let consumed = s.len() - rest.len() + digits + 1;
    Some((line, &s[consumed..]))
}

/// The line of the innermost script frame of a traceback ("\tNAME:12: in main chunk").
fn traceback_line(id: &[u8], traceback: &str) -> Option<u64> {
    traceback
        .lines()
        .find_map(|l| position(id, l.trim_start()).map(|(line, _)| line))
}

/// "256 MiB", "1 GiB", "1000 bytes".
fn fmt_bytes(n: usize) -> String {
    for (unit, suffix) in [(1usize << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
        if n >= unit && n.is_multiple_of(unit) {
            return format!("{} {suffix}", n / unit);
        }
    }
    format!("{n} bytes")
}

// ---- os ---------------------------------------------------------------------------------------

/// The `os` table: time, date, clock, difftime. Everything in UTC.
fn os_table(lua: &Lua) -> mlua::Result<Table> {
    let os = lua.create_table()?;
    os.set(
        "time",
        lua.create_function(|_, t: Option<Table>| match t {
            None => Ok(now_unix()),
            Some(t) => time_from_table(&t),
        })?,
    )?;
    os.set(
        "date",
        lua.create_function(|lua, (format, t): (Option<mlua::LuaString>, Option<i64>)| {
            let t = t.unwrap_or_else(now_unix);
            let format = format.map(|f| f.as_bytes().to_vec());
            let mut fmt: &[u8] = format.as_deref().unwrap_or(b"%c");
            // "!" asks for UTC, which is all we have.
            fmt = fmt.strip_prefix(b"!").unwrap_or(fmt);
            let tm = Tm::from_unix(t)?;
            // Like Lua, anything after "*t" is ignored.
            if fmt.starts_with(b"*t") {
                return tm.to_table(lua).map(Value::Table);
            }
            lua.create_string(strftime(fmt, &tm)?).map(Value::String)
        })?,
    )?;
    let start = Instant::now();
    os.set(
        "clock",
        lua.create_function(move |_, ()| Ok(start.elapsed().as_secs_f64()))?,
    )?;
    os.set(
        "difftime",
        lua.create_function(|_, (t2, t1): (i64, Option<i64>)| {
            Ok(t2 as f64 - t1.unwrap_or(0) as f64)
        })?,
    )?;
    Ok(os)
}

fn now_unix() -> i64 {
    unix_seconds_floor(SystemTime::now()).unwrap_or(i64::MAX)
}

/// `os.time{year=, month=, day=, hour=12, min=0, sec=0}`, read as UTC; out-of-range fields
/// are normalised like C's mktime (month 13 is January of the next year).
fn time_from_table(t: &Table) -> mlua::Result<i64> {
    let year = date_field(t, "year", None, 1900)?;
    let month = date_field(t, "month", None, 1)?;
    let day = date_field(t, "day", None, 0)?;
    let hour = date_field(t, "hour", Some(12), 0)?;
    let min = date_field(t, "min", Some(0), 0)?;
    let sec = date_field(t, "sec", Some(0), 0)?;
    let month0 = month - 1;
    let days = days_from_civil(
        year + month0.div_euclid(12),
        month0.rem_euclid(12) as u32 + 1,
        1,
    ) + day
        - 1;
    // Fields fit in i32 (checked), so none of this can overflow an i64.
    Ok(days * 86400 + hour * 3600 + min * 60 + sec)
}

/// One field of an `os.time` table, with Lua's messages for missing and bad values.
fn date_field(t: &Table, key: &str, default: Option<i64>, offset: i64) -> mlua::Result<i64> {
    let n = match t.get::<Value>(key)? {
        Value::Nil => {
            return default.ok_or_else(|| {
                mlua::Error::runtime(format!("field '{key}' missing in date table"))
            });
        }
        Value::Integer(i) => i,
        Value::Number(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
        Value::String(s) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .ok_or_else(|| mlua::Error::runtime(format!("field '{key}' is not an integer")))?,
        _ => {
            return Err(mlua::Error::runtime(format!(
                "field '{key}' is not an integer"
            )));
        }
    };
    // Lua keeps each field, minus its C offset, within a C int.
    if i32::try_from(n.saturating_sub(offset)).is_err() {
        return Err(mlua::Error::runtime(format!(
            "field '{key}' is out-of-bound"
        )));
    }
    Ok(n)
}

/// A broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tm {
    year: i64,
    /// 1..=12
    month: i64,
    /// 1..=31
    day: i64,
    hour: i64,
    min: i64,
    sec: i64,
    /// 0 = Sunday
    wday: i64,
    /// 0-based day of the year
    yday: i64,
}

impl Tm {
    fn from_unix(t: i64) -> mlua::Result<Tm> {
        let days = t.div_euclid(86400);
        let secs = t.rem_euclid(86400);
        let (year, month, day) = civil_from_days(days);
        let (month, day) = (i64::from(month), i64::from(day));
        // C's struct tm keeps year - 1900 in an int; Lua reports anything beyond that.
        if i32::try_from(year - 1900).is_err() {
            return Err(mlua::Error::runtime(
                "date result cannot be represented in this installation",
            ));
        }
        Ok(Tm {
            year,
            month,
            day,
            hour: secs / 3600,
            min: secs / 60 % 60,
            sec: secs % 60,
            // 1970-01-01 was a Thursday.
            wday: (days + 4).rem_euclid(7),
            yday: days - days_from_civil(year, 1, 1),
        })
    }

    /// The `os.date("*t")` table.
    fn to_table(self, lua: &Lua) -> mlua::Result<Table> {
        let t = lua.create_table()?;
        t.set("year", self.year)?;
        t.set("month", self.month)?;
        t.set("day", self.day)?;
        t.set("hour", self.hour)?;
        t.set("min", self.min)?;
        t.set("sec", self.sec)?;
        t.set("wday", self.wday + 1)?;
        t.set("yday", self.yday + 1)?;
        t.set("isdst", false)?;
        Ok(t)
    }
}

/// C-locale strftime for the conversions Lua 5.4 accepts on every platform (plus a few C99
/// ones); anything else is an error, as in Lua.
fn strftime(fmt: &[u8], tm: &Tm) -> mlua::Result<Vec<u8>> {
    use std::io::Write;
    let weekday = WEEKDAYS[tm.wday as usize];
    let month = MONTHS[(tm.month - 1) as usize];
    let hour12 = if tm.hour % 12 == 0 { 12 } else { tm.hour % 12 };
    let mut out = Vec::with_capacity(fmt.len() * 2);
    let mut bytes = fmt.iter();
    while let Some(&b) = bytes.next() {
        // This buffer is Rust memory, outside the Lua limit; "%c" grows 12-fold, so cap it.
        if out.len() > MAX_DATE_LEN {
            return Err(mlua::Error::runtime("os.date result too long"));
        }
        if b != b'%' {
            out.push(b);
            continue;
        }
        let Some(&c) = bytes.next() else {
            return Err(bad_conversion("%"));
        };
        // Writing to a Vec cannot fail.
        let _ = match c {
            b'a' => write!(out, "{}", &weekday[..3]),
            b'A' => write!(out, "{weekday}"),
            b'b' | b'h' => write!(out, "{}", &month[..3]),
            b'B' => write!(out, "{month}"),
            b'c' => write!(
                out,
                "{} {} {:>2} {:02}:{:02}:{:02} {}",
                &weekday[..3],
                &month[..3],
                tm.day,
                tm.hour,
                tm.min,
                tm.sec,
                tm.year
            ),
            b'd' => write!(out, "{:02}", tm.day),
            b'e' => write!(out, "{:>2}", tm.day),
            b'D' | b'x' => write!(
                out,
                "{:02}/{:02}/{:02}",
                tm.month,
                tm.day,
                tm.year.rem_euclid(100)
            ),
            b'F' => write!(out, "{}-{:02}-{:02}", tm.year, tm.month, tm.day),
            b'H' => write!(out, "{:02}", tm.hour),
            b'I' => write!(out, "{hour12:02}"),
            b'j' => write!(out, "{:03}", tm.yday + 1),
            b'm' => write!(out, "{:02}", tm.month),
            b'M' => write!(out, "{:02}", tm.min),
            b'n' => writeln!(out),
            b'p' => write!(out, "{}", if tm.hour < 12 { "AM" } else { "PM" }),
            b'R' => write!(out, "{:02}:{:02}", tm.hour, tm.min),
            b'S' => write!(out, "{:02}", tm.sec),
            b't' => write!(out, "\t"),
            b'T' | b'X' => write!(out, "{:02}:{:02}:{:02}", tm.hour, tm.min, tm.sec),
            b'u' => write!(out, "{}", if tm.wday == 0 { 7 } else { tm.wday }),
            b'w' => write!(out, "{}", tm.wday),
            b'y' => write!(out, "{:02}", tm.year.rem_euclid(100)),
            b'Y' => write!(out, "{}", tm.year),
            b'Z' => write!(out, "UTC"),
            b'%' => write!(out, "%"),
            other => {
                return Err(bad_conversion(&format!(
                    "%{}",
                    String::from_utf8_lossy(&[other])
                )));
            }
        };
    }
    Ok(out)
}

/// Longest `os.date` result; real formats are a few dozen bytes.
const MAX_DATE_LEN: usize = 64 << 10;

fn bad_conversion(spec: &str) -> mlua::Error {
    mlua::Error::runtime(format!(
        "bad argument #1 to 'date' (invalid conversion specifier '{spec}')"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::Limits;
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    type Lines = Arc<Mutex<Vec<(Level, String, String)>>>;

    fn test_env(limits: Limits) -> (ScriptEnv, Lines) {
        let lines: Lines = Arc::default();
        let sink = lines.clone();
        let env = ScriptEnv {
            client: Arc::new(crate::Client::new(Default::default())),
            dry_run: true,
            log: Arc::new(move |level, script: &str, msg: &str, _: &[(&str, &str)]| {
                sink.lock()
                    .unwrap()
                    .push((level, script.to_string(), msg.to_string()));
            }),
            limits,
        };
        (env, lines)
    }

    /// Runs a script on its own thread and waits a bounded time, so a sandbox bug that lets a
    /// script run forever fails the test instead of hanging it.
    fn run_with(limits: Limits, name: &str, source: &str) -> (Result<()>, Vec<String>) {
        let (env, lines) = test_env(limits);
        let (tx, rx) = mpsc::channel();
        let (name, source) = (name.to_string(), source.to_string());
        std::thread::spawn(move || {
            let _ = tx.send(run(&env, &name, &source));
        });
        let result = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("script did not stop");
        let lines = lines.lock().unwrap().iter().map(|l| l.2.clone()).collect();
        (result, lines)
    }

    fn run_ok(source: &str) -> Vec<String> {
        let (result, lines) = run_with(Limits::default(), "t", source);
        if let Err(e) = result {
            panic!("script failed: {e}");
        }
        lines
    }

    fn run_err(name: &str, source: &str) -> Error {
        run_with(Limits::default(), name, source)
            .0
            .expect_err("script should fail")
    }

    fn quick_timeout() -> Limits {
        Limits {
            timeout: Some(Duration::from_millis(200)),
            memory: 16 << 20,
        }
    }

    fn small_memory() -> Limits {
        Limits {
            timeout: Some(Duration::from_secs(30)),
            memory: 16 << 20,
        }
    }

    #[test]
    fn safe_libraries_present() {
        run_ok(
            r#"
            assert(type(table.insert) == "function")
            assert(string.format("%03d", 7) == "007")
            assert(("abc"):upper() == "ABC")
            assert(math.max(1, 5, 3) == 5)
            assert(utf8.len("héllo") == 5)
            local co = coroutine.create(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
            local _, x = coroutine.resume(co, 1)
            local _, y = coroutine.resume(co, 10)
            assert(x == 2 and y == 20)
            assert(select('#', pcall(error, "x")) == 2)
            assert(type(tostring) == "function" and type(pairs) == "function")
            "#,
        );
    }

    #[test]
    fn unsafe_libraries_absent() {
        run_ok(
            r#"
            assert(io == nil, "io")
            assert(debug == nil, "debug")
            assert(package == nil, "package")
            assert(require == nil, "require")
            assert(dofile == nil, "dofile")
            assert(loadfile == nil, "loadfile")
            assert(string.dump == nil, "string.dump")
            assert(os.execute == nil, "os.execute")
            assert(os.getenv == nil, "os.getenv")
            assert(os.remove == nil and os.rename == nil and os.exit == nil, "os writes")
            "#,
        );
    }

    #[test]
    fn touching_io_names_script_and_line() {
        let e = run_err("cleanup", "local x = 1\nio.open('/etc/passwd')\n");
        assert_eq!(
            e.to_string(),
            "script \"cleanup\": line 2: attempt to index a nil value (global 'io')"
        );
        let e = run_err("cleanup", "\n\nos.execute('true')");
        assert!(
            e.to_string()
                .starts_with("script \"cleanup\": line 3: attempt to call a nil value"),
            "{e}"
        );
    }

    #[test]
    fn load_accepts_text_only() {
        run_ok(
            r#"
            local f = assert(load("return 1 + 2"))
            assert(f() == 3)
            local g = assert(load("return x", "chunk", "bt", {x = 5}))
            assert(g() == 5)
            local h, err = load("\27Lua\84\0garbage")
            assert(h == nil)
            assert(err:find("binary chunk"), err)
            local k, err2 = load("\27Lua", "c", "b")
            assert(k == nil and err2:find("binary chunk"), err2)
            "#,
        );
    }

    #[test]
    fn unpack_shim() {
        run_ok("local a, b, c = unpack({1, 2, 3}) assert(a == 1 and b == 2 and c == 3)");
    }

    #[test]
    fn os_functions() {
        run_ok(
            r#"
            assert(os.date("!%Y-%m-%d", 0) == "1970-01-01")
            assert(os.date("%Y-%m-%d %H:%M:%S", 86399) == "1970-01-01 23:59:59")
            assert(os.date("!%c", 0) == "Thu Jan  1 00:00:00 1970", os.date("!%c", 0))
            assert(os.date("%a %A %b %B %j %w %p %I %y %Z %%", 1700000000)
              == "Tue Tuesday Nov November 318 2 PM 10 23 UTC %")
            assert(os.date("%x %X", 951782400) == "02/29/00 00:00:00")
            local t = os.date("*t", 951782400)
            assert(t.year == 2000 and t.month == 2 and t.day == 29 and t.yday == 60 and t.wday == 3)
            assert(t.isdst == false)
            assert(os.time({year = 2000, month = 2, day = 29, hour = 0}) == 951782400)
            assert(os.time({year = 1970, month = 1, day = 1}) == 12 * 3600)
            assert(os.time({year = 1999, month = 14, day = 29, hour = 0}) == 951782400)
            assert(os.time({year = 1969, month = 12, day = 31, hour = 23, min = 59, sec = 59}) == -1)
            local now = os.time()
            assert(math.type(now) == "integer" and now > 1700000000)
            assert(os.time(os.date("*t", now)) == now)
            local c = os.clock()
            assert(type(c) == "number" and c >= 0 and c < 60)
            assert(os.difftime(10, 4) == 6.0)
            assert(not pcall(os.date, "%Q"))
            assert(not pcall(os.date, string.rep("%c", 1 << 20)))
            assert(#os.date(string.rep("%Y", 1000), 0) == 4000)
            assert(not pcall(os.time, {year = 2000}))
            "#,
        );
    }

    #[test]
    fn os_date_matches_civil_arithmetic() {
        // Every day boundary over four centuries, both directions.
        for days in (-200_000i64..200_000).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
            assert!((1..=12).contains(&m) && (1..=31).contains(&d));
        }
        let tm = Tm::from_unix(-1).unwrap();
        assert_eq!((tm.year, tm.month, tm.day, tm.hour), (1969, 12, 31, 23));
        assert_eq!(tm.wday, 3);
    }

    #[test]
    fn print_and_warn_reach_the_log() {
        let (env, lines) = test_env(Limits::default());
        run(
            &env,
            "printer",
            "print('a', 1, 2.5, nil, true, setmetatable({}, {__tostring = function() return 'obj' end}))\n\
             tostring = nil\nprint('still')\nwarn('w1', 'w2')",
        )
        .unwrap();
        let lines = lines.lock().unwrap();
        assert_eq!(
            *lines,
            vec![
                (
                    Level::Info,
                    "printer".to_string(),
                    "a\t1\t2.5\tnil\ttrue\tobj".to_string()
                ),
                (Level::Info, "printer".to_string(), "still".to_string()),
                (Level::Warn, "printer".to_string(), "w1w2".to_string()),
            ]
        );
    }

    #[test]
    fn print_and_warn_lines_are_bounded() {
        // One string many times is small in Lua but not once joined into a Rust line.
        let (result, lines) = run_with(
            small_memory(),
            "big",
            "local s = string.rep('x', 1 << 20) local t = {}\n\
             for i = 1, 64 do t[i] = s end\n\
             print(table.unpack(t)) warn(table.unpack(t)) print('after')",
        );
        result.unwrap();
        assert_eq!(lines.len(), 3);
        for line in &lines[..2] {
            assert!(line.len() <= MAX_LOG_LINE + 64, "{}", line.len());
            assert!(
                line.ends_with("... (truncated)"),
                "{}",
                &line[line.len() - 20..]
            );
        }
        assert_eq!(lines[2], "after");
    }

    #[test]
    fn syntax_error_names_script_and_line() {
        let e = run_err("cleanup", "local a = 1\nlocal b = 2\nif then\n");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            e.to_string()
                .starts_with("script \"cleanup\": line 3: syntax error: "),
            "{e}"
        );
        assert!(!e.to_string().contains("traceback"), "{e}");
    }

    #[test]
    fn runtime_error_names_script_and_line() {
        let e = run_err(
            "rt",
            "local t = {}\n\nlocal function f()\n  error('boom')\nend\nf()\n",
        );
        assert_eq!(e.to_string(), "script \"rt\": line 4: boom");
        // No position in the message: the line comes from the traceback.
        let e = run_err("rt", "\nerror({}, 0)\n");
        assert!(
            e.to_string().starts_with("script \"rt\": line 2: table: "),
            "{e}"
        );
        // An error from a Rust function (os.date) names the calling line too.
        let e = run_err("rt", "\n\n\nos.date('%Q')");
        assert_eq!(
            e.to_string(),
            "script \"rt\": line 4: bad argument #1 to 'date' (invalid conversion specifier '%Q')"
        );
    }

    #[test]
    fn errors_raised_through_wrappers_name_the_script_line() {
        let e = run_err(
            "w",
            "\ncoroutine.wrap(function() coroutine.close(coroutine.running()) end)()",
        );
        assert_eq!(
            e.to_string(),
            "script \"w\": line 2: cannot close a running coroutine"
        );
        let e = run_err("w", "\n\nstring.rep('x', 1 << 40)");
        assert_eq!(
            e.to_string(),
            "script \"w\": line 3: resulting string too large"
        );
    }

    #[test]
    fn long_script_names_are_matched_as_lua_truncates_them() {
        let name = "n".repeat(80);
        let e = run_err(&name, "\nerror('x')");
        assert_eq!(e.to_string(), format!("script {name:?}: line 2: x"));
    }

    fn assert_timeout(source: &str) {
        let (result, _) = run_with(quick_timeout(), "loop", source);
        let e = result.expect_err("script should time out");
        assert_eq!(
            e.to_string(),
            "script \"loop\": timeout after 200ms",
            "{source}"
        );
        assert_eq!(e.kind(), ErrorKind::Canceled);
    }

    #[test]
    fn endless_loop_times_out() {
        assert_timeout("while true do end");
    }

    #[test]
    fn protected_calls_cannot_swallow_the_timeout() {
        assert_timeout("while true do pcall(function() while true do end end) end");
        assert_timeout(
            "while true do xpcall(function() while true do end end, function(e) return e end) end",
        );
        // A handler that loops is stopped too.
        assert_timeout("while true do xpcall(error, function() while true do end end) end");
        assert_timeout(
            "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
        );
        assert_timeout("while true do pcall(coroutine.wrap(function() while true do end end)) end");
        assert_timeout("while true do local f = load('while true do end') pcall(f) end");
        assert_timeout("local ok = pcall(function() while true do end end) while true do end");
    }

    #[test]
    fn close_handlers_cannot_outlive_the_timeout() {
        // mlua raises the hook's error after resetting the stack of the interrupted function,
        // which runs that function's `__close` handlers while Lua keeps hooks off.
        assert_timeout(
            "local x <close> = setmetatable({}, {__close = function() while true do end end})\n\
             while true do end",
        );
        assert_timeout(
            "local mt = {} local t = setmetatable({}, mt)\n\
             mt.__close = function() while true do end end\n\
             local x <close> = t while true do end",
        );
        assert_timeout(
            "getmetatable('').__close = function() while true do end end\n\
             local s <close> = 'x' while true do end",
        );
        assert_timeout(
            "coroutine.wrap(function()\n\
               local x <close> = setmetatable({}, {__close = function() while true do end end})\n\
               while true do end\n\
             end)()",
        );
        // Outside a kill, close handlers run as usual.
        run_ok(
            "local n = 0\n\
             do local x <close> = setmetatable({}, {__close = function() n = n + 1 end}) end\n\
             local mt = getmetatable('') mt.__close = function() n = n + 10 end\n\
             do local s <close> = 'x' end\n\
             assert(n == 11, n)",
        );
    }

    #[test]
    fn long_c_loops_are_refused_or_cut_short() {
        // Both ran one C loop per element, out of the hook's reach: hours past any timeout.
        let (result, _) = run_with(
            quick_timeout(),
            "loop",
            r#"
            assert(string.rep("", math.maxinteger) == "")
            assert((""):rep(1e18, "") == "")
            assert(string.rep("ab", 3, ",") == "ab,ab,ab")
            assert(not pcall(string.rep, "", "x"))
            local ok, err = pcall(table.move, {}, 1, math.maxinteger - 1, 1)
            assert(not ok and err:find("too many elements"), err)
            local t = table.move({1, 2, 3}, 1, 3, 2)
            assert(t[1] == 1 and t[2] == 1 and t[3] == 2 and t[4] == 3)
            assert(table.move({1, 2}, 1, 2, 1, {})[2] == 2)
            -- A __len claiming a huge length made insert and remove shift that many slots.
            local long = setmetatable({}, {__len = function() return math.maxinteger - 1 end})
            ok, err = pcall(table.insert, long, 1, "x")
            assert(not ok and err:find("too long"), err)
            ok, err = pcall(table.remove, long, 1)
            assert(not ok and err:find("too long"), err)
            local list = {1, 2, 3}
            table.insert(list, 1, 0) table.insert(list, 4)
            assert(table.remove(list, 1) == 0 and table.remove(list) == 4 and #list == 3)
            assert(not pcall(table.insert, nil, 1))
            "#,
        );
        result.unwrap();
    }

    #[test]
    fn finalizers_are_refused() {
        let e = run_err("gc", "\nsetmetatable({}, {__gc = function() end})");
        assert!(
            e.to_string()
                .starts_with("script \"gc\": line 2: __gc metamethods"),
            "{e}"
        );
        run_ok("local t = setmetatable({}, {__index = {a = 1}}) assert(t.a == 1)");
    }

    fn assert_memory(source: &str) {
        let (result, _) = run_with(small_memory(), "bomb", source);
        let e = result.expect_err("script should run out of memory");
        assert_eq!(
            e.to_string(),
            "script \"bomb\": memory limit of 16 MiB reached",
            "{source}"
        );
        assert_eq!(e.kind(), ErrorKind::SizeLimit);
    }

    #[test]
    fn memory_bombs_stop_with_the_memory_error() {
        assert_memory(r#"local t = {} while true do t[#t + 1] = string.rep("x", 1 << 20) end"#);
        // One allocation far beyond the limit (1 GiB; Lua refuses 2 GiB and more up front).
        assert_memory(r#"local s = string.rep("x", 1 << 30)"#);
        // Lua 5.4 caps string.rep below 2 GiB before allocating: an ordinary error.
        let (result, _) = run_with(
            small_memory(),
            "bomb",
            r#"local s = string.rep("x", 1 << 40)"#,
        );
        assert_eq!(
            result.unwrap_err().to_string(),
            "script \"bomb\": line 1: resulting string too large"
        );
    }

    #[test]
    fn protected_calls_cannot_swallow_the_memory_error() {
        assert_memory(
            r#"while true do pcall(function()
                 local t = {} while true do t[#t + 1] = string.rep("x", 1 << 20) end
               end) end"#,
        );
        assert_memory(r#"while true do pcall(string.rep, "x", 1 << 30) end"#);
        assert_memory(
            r#"while true do xpcall(string.rep, function() return "fine" end, "x", 1 << 30) end"#,
        );
        assert_memory(
            r#"while true do coroutine.resume(coroutine.create(function()
                 return string.rep("x", 1 << 30) end)) end"#,
        );
        assert_memory(
            r#"while true do pcall(coroutine.wrap(function() return string.rep("x", 1 << 30) end)) end"#,
        );
        assert_memory(
            r#"local f = coroutine.wrap(function() return string.rep("x", 1 << 30) end) f()"#,
        );
        assert_memory(
            r#"local big = string.rep("x", 10 << 20)
               while true do load("return '" .. big .. "'") end"#,
        );
    }

    #[test]
    fn state_is_usable_after_a_memory_kill() {
        assert_memory(r#"local s = string.rep("x", 1 << 30)"#);
        // The process survived; a new run works normally.
        run_ok("assert(#string.rep('x', 1000) == 1000)");
    }

    #[test]
    fn yield_inside_pcall_still_works() {
        run_ok(
            r#"
            local co = coroutine.create(function()
              local ok, v = pcall(function() return coroutine.yield(1) + 1 end)
              assert(ok and v == 11)
              return "done"
            end)
            local _, a = coroutine.resume(co)
            local _, b = coroutine.resume(co, 10)
            assert(a == 1 and b == "done")
            assert(select(2, pcall(error, "e", 0)) == "e")
            local ok, err = xpcall(error, function(e) return "handled " .. e end, "x", 0)
            assert(not ok and err == "handled x")
            "#,
        );
    }

    #[test]
    fn api_errors_keep_kind_and_message() {
        let (env, _) = test_env(small_memory());
        let lua = new_state(&env, "api").unwrap();
        // Stands in for an API call failing with the crate's error.
        let ls = lua
            .create_function(|_, ()| -> mlua::Result<()> {
                Err(mlua::Error::external(Error::new(
                    ErrorKind::NotFound,
                    "tag v1 not found",
                )))
            })
            .unwrap();
        lua.globals().set("tag_ls", ls).unwrap();
        let err = lua
            .load("local x = 1\n\ntag_ls()")
            .set_name("=api")
            .exec()
            .unwrap_err();
        let e = script_error(&lua, &env, "api", err);
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.to_string(), "script \"api\": line 3: tag v1 not found");

        // API code finds the run's name and deadline in RunState.
        assert_eq!(lua.app_data_ref::<RunState>().unwrap().script, "api");
        assert!(crate::bot::check_deadline(&lua).is_ok());
        let (env, _) = test_env(Limits {
            timeout: Some(Duration::ZERO),
            memory: 16 << 20,
        });
        let late = new_state(&env, "late").unwrap();
        assert!(crate::bot::check_deadline(&late).is_err());
    }

    #[test]
    fn memory_errors_of_rust_functions_are_not_swallowed() {
        let (env, _) = test_env(small_memory());
        let lua = new_state(&env, "rust").unwrap();
        // Stands in for an API call that fails to allocate (mlua reports MemoryError).
        let alloc = lua
            .create_function(|_, ()| -> mlua::Result<()> {
                Err(mlua::Error::MemoryError("not enough memory".into()))
            })
            .unwrap();
        lua.globals().set("alloc", alloc).unwrap();
        let err = lua
            .load("while true do pcall(alloc) end")
            .set_name("=rust")
            .exec()
            .unwrap_err();
        let e = script_error(&lua, &env, "rust", err);
        assert_eq!(
            e.to_string(),
            "script \"rust\": memory limit of 16 MiB reached"
        );
    }

    #[test]
    fn formatting_helpers() {
        assert_eq!(GoDuration(Duration::from_secs(2)).to_string(), "2s");
        assert_eq!(GoDuration(Duration::from_secs(90)).to_string(), "1m30s");
        assert_eq!(GoDuration(Duration::from_secs(3600)).to_string(), "1h0m0s");
        assert_eq!(GoDuration(Duration::from_millis(1500)).to_string(), "1.5s");
        assert_eq!(GoDuration(Duration::from_millis(250)).to_string(), "250ms");
        assert_eq!(fmt_bytes(256 << 20), "256 MiB");
        assert_eq!(fmt_bytes(1 << 30), "1 GiB");
        assert_eq!(fmt_bytes(1000), "1000 bytes");
    }
}
