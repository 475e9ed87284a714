//! Configuration: per-registry host settings, regctl's config file, Docker's config import and
//! credential helpers.
//!
//! Nothing here reads the process environment: constructors that need `HOME` and friends take an
//! [`EnvMap`] snapshot that the binary collects once (`std::env::vars().collect()`).

use std::collections::BTreeMap;

/// A snapshot of environment variables, passed explicitly to the constructors that need one.
pub type EnvMap = BTreeMap<String, String>;

/// A variable from the snapshot, treating empty as unset (like regclient).
pub(crate) fn env_get<'a>(env: &'a EnvMap, key: &str) -> Option<&'a str> {
    env.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

pub mod credhelper;
pub mod docker;
pub mod file;
pub mod host;

pub use credhelper::{HelperCred, ProcessRunner, Runner};
pub use docker::DockerConfig;
pub use file::ConfigFile;
pub use host::{normalize_name, GoDuration, Host, HostName, Tls};
