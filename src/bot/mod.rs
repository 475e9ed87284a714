//! regbot: user Lua scripts run against registries, in a sandbox, on a schedule.
//!
//! [`config::Config`] reads the YAML; [`run_script`] runs one script once in a fresh Lua state
//! built by [`sandbox`], with the registry API of [`api`] installed. Each run gets its own state
//! on the calling thread; nothing is shared between runs.

pub mod api;
pub mod config;
pub mod sandbox;

use std::sync::Arc;
use std::time::Duration;

use crate::{Client, Result};

/// Log levels of a script run.
pub use crate::sync::Level;

/// Receives log lines: level, script name, message, key/value fields.
pub type LogFn = dyn Fn(Level, &str, &str, &[(&str, &str)]) + Send + Sync;

/// Resource limits of one run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock budget of the run; enforced inside Lua by an instruction-count hook, so a
    /// tight loop stops too. `None`: no deadline.
    pub timeout: Option<Duration>,
    /// Bytes the Lua state may allocate (0: no limit).
    pub memory: usize,
}

/// Default memory limit of a script's Lua state.
pub const DEFAULT_MEMORY: usize = 256 << 20;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: None,
            memory: DEFAULT_MEMORY,
        }
    }
}

/// What a script run may use.
#[derive(Clone)]
pub struct ScriptEnv {
    /// The registry client behind every API call.
    pub client: Arc<Client>,
    /// Writes (copy, deletes, puts, imports) are logged instead of done.
    pub dry_run: bool,
    /// Log sink (`log(msg)` in scripts, dry-run notices, API warnings).
    pub log: Arc<LogFn>,
    /// Limits of the run.
    pub limits: Limits,
}

/// Runs `source` (Lua text) once as script `name`. The error of a failed script names the
/// script and, when Lua knows it, the line.
pub fn run_script(env: &ScriptEnv, name: &str, source: &str) -> Result<()> {
    sandbox::run(env, name, source)
}

/// Per-run state kept in the Lua state's app data (`lua.app_data_ref::<RunState>()`), so API
/// calls can see the script name and stop at the deadline.
#[derive(Debug, Clone)]
pub struct RunState {
    /// The script's name from the config.
    pub script: String,
    /// When the run must stop (from [`Limits::timeout`]).
    pub deadline: Option<std::time::Instant>,
}

/// An API call made after the deadline fails with this error (the sandbox also raises it from
/// its instruction hook). Long waits inside API calls (rate-limit polling) end at the deadline.
pub fn check_deadline(lua: &mlua::Lua) -> mlua::Result<()> {
    if let Some(st) = lua.app_data_ref::<RunState>() {
        if crate::deadline::passed(st.deadline) {
            return Err(mlua::Error::runtime(format!(
                "script {}: timeout reached",
                st.script
            )));
        }
    }
    Ok(())
}
