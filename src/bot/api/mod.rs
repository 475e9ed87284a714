//! The Lua API of regbot scripts (`reference`, `repo`, `tag`, `manifest`, `image`, `blob`,
//! `log`). (Owned by the API work; see [`install`].)

use super::ScriptEnv;

/// Installs every API table and global into `lua` for script `name`.
pub fn install(lua: &mlua::Lua, env: &ScriptEnv, name: &str) -> mlua::Result<()> {
    let _ = (lua, env, name);
    Ok(())
}
