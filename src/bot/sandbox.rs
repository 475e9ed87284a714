//! The Lua state a script runs in: only safe libraries, a memory limit, a deadline.
//! (Owned by the sandbox work; see [`run`].)

use super::ScriptEnv;
use crate::Result;

/// Builds a sandboxed state, installs the API, runs the script.
pub fn run(env: &ScriptEnv, name: &str, source: &str) -> Result<()> {
    let _ = (env, name, source);
    Err(crate::Error::new(
        crate::ErrorKind::Unsupported,
        "regbot sandbox not built yet",
    ))
}
